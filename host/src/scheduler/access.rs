//! Who may use the SwarmPilot paths: callers from a trusted network as they are (SwarmPilot
//! clients send no token), everyone else with a Bearer token, an admin's to register or remove
//! instances.
//!
//! A tower layer rather than a `from_fn` one: every submit and completion passes it, and a
//! `from_fn` layer clones the inner service and boxes a future on each request. Only a caller
//! that must be authenticated pays for that here.

use super::routes::SpError;
use crate::state::AppState;
use axum::extract::{ConnectInfo, Request};
use axum::response::{IntoResponse, Response};
use futures::future::{BoxFuture, Either};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::task::{Context, Poll};
use tower::Service;
use tower::layer::LayerFn;

/// Lets trusted networks through; asks everyone else for a token.
pub fn trusted_or_token<S>(state: AppState) -> LayerFn<impl Fn(S) -> TrustedOrToken<S> + Clone> {
    tower::layer::layer_fn(move |inner| TrustedOrToken {
        inner,
        state: state.clone(),
    })
}

/// The service [`trusted_or_token`] wraps around `S`.
#[derive(Clone)]
pub struct TrustedOrToken<S> {
    inner: S,
    state: AppState,
}

impl<S> TrustedOrToken<S> {
    fn trusted(&self, request: &Request) -> bool {
        let Some(ConnectInfo(peer)) = request.extensions().get::<ConnectInfo<SocketAddr>>() else {
            return false;
        };
        let ip = peer.ip();
        self.state
            .config
            .scheduler
            .trusted_networks
            .iter()
            .any(|n| n.contains(&ip))
    }
}

impl<S> Service<Request> for TrustedOrToken<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<S::Future, BoxFuture<'static, Result<Response, Infallible>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        if self.trusted(&request) {
            return Either::Left(self.inner.call(request));
        }
        // The ready service answers once the caller is known; a clone takes its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let state = self.state.clone();
        Either::Right(Box::pin(async move {
            let admin_only = request.uri().path().starts_with("/ti/");
            let allowed = match crate::api::auth::authenticate(&state, &mut request).await {
                Ok(caller) if admin_only => caller.require_admin(),
                Ok(_) => Ok(()),
                Err(err) => Err(err),
            };
            match allowed {
                Ok(()) => inner.call(request).await,
                Err(err) => Ok(SpError::from(err).into_response()),
            }
        }))
    }
}
