//! Who may use the SwarmPilot paths, and as whom.
//!
//! - Callers from `[scheduler] trusted_networks` (none by default) act as an admin would,
//!   without a token: SwarmPilot clients send none.
//! - Everyone else signs in with an API token, in `Authorization: Bearer` or in the
//!   configured `token_header` (for clients that can add one header); an admin's token
//!   registers and removes instances.
//! - `/notify/task_complete` alone is let through without a token, or with an instance's
//!   secret: whether the reporter is the instance the task was sent to is the scheduler's to
//!   say ([`super::Reporter`]), once the report names the instance.
//!
//! The handlers read the outcome as an [`SpAccess`]. A tower layer rather than a `from_fn`
//! one: every submit and completion passes it, and a `from_fn` layer clones the inner service
//! and boxes a future on each request. Only a caller whose token must be looked up pays for
//! that here.

use super::config::SchedulerConfig;
use super::sp_http::SpError;
use super::{Reporter, Viewer};
use crate::auth::{Auth, Caller};
use crate::error::{Code, Error};
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, header};
use axum::response::{IntoResponse, Response};
use futures::future::{BoxFuture, Either};
use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use tower::Service;
use tower::layer::LayerFn;

/// The path task instances report completions on.
pub(super) const COMPLETION_PATH: &str = "/notify/task_complete";
/// SwarmPilot's newer paths for results: the body and the WebSocket.
pub(super) const RESULT_PATH: &str = "/result/submit";
pub(super) const RESULT_SOCKET_PATH: &str = "/ws/result_submit";

/// Whether `path` is one an instance reports finished tasks on.
fn is_completion(path: &str) -> bool {
    matches!(path, COMPLETION_PATH | RESULT_PATH | RESULT_SOCKET_PATH)
}

/// Who is calling a SwarmPilot path.
#[derive(Clone)]
pub(super) struct SpAccess {
    /// The client's address, when the listener tells it.
    pub peer: Option<IpAddr>,
    pub who: Who,
}

/// The credential a SwarmPilot caller was let in with.
#[derive(Clone)]
pub(super) enum Who {
    /// From a trusted network: as an admin.
    Trusted,
    /// Signed in with an API token.
    User(Caller),
    /// An instance's secret, on the completion path only.
    InstanceSecret(String),
    /// Nothing, on the completion path only: the address speaks for it.
    Nobody,
}

impl SpAccess {
    /// Whose task a submit makes: the signed-in user's, or nobody's for a trusted network.
    pub(super) fn owner(&self) -> Option<&str> {
        match &self.who {
            Who::User(caller) => Some(&caller.user_id),
            _ => None,
        }
    }

    /// Which tasks the caller may query.
    pub(super) fn viewer(&self) -> Viewer<'_> {
        match &self.who {
            Who::Trusted => Viewer::All,
            Who::User(caller) if caller.is_admin() => Viewer::All,
            Who::User(caller) => Viewer::Owner(&caller.user_id),
            Who::InstanceSecret(_) | Who::Nobody => Viewer::Nobody,
        }
    }

    /// The caller as the reporter of a completion.
    pub(super) fn reporter(&self) -> Reporter<'_> {
        match &self.who {
            Who::Trusted => Reporter::Admin,
            Who::User(caller) if caller.is_admin() => Reporter::Admin,
            Who::User(_) | Who::Nobody => Reporter::Peer {
                peer: self.peer,
                secret: None,
            },
            Who::InstanceSecret(secret) => Reporter::Peer {
                peer: self.peer,
                secret: Some(secret),
            },
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for SpAccess {
    type Rejection = SpError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, SpError> {
        parts.extensions.get::<SpAccess>().cloned().ok_or_else(|| {
            SpError::from(Error::new(Code::Unauthenticated, "authentication required"))
        })
    }
}

/// Lets trusted networks through; asks everyone else for a token (or, for completions, leaves
/// the question to the scheduler).
pub(super) fn trusted_or_token<S>(
    auth: Auth,
    config: &SchedulerConfig,
) -> LayerFn<impl Fn(S) -> TrustedOrToken<S> + Clone + use<S>> {
    let header =
        HeaderName::from_bytes(config.token_header.as_bytes()).unwrap_or(header::AUTHORIZATION);
    let trusted_networks = Arc::new(config.trusted_networks.clone());
    tower::layer::layer_fn(move |inner| TrustedOrToken {
        inner,
        auth: auth.clone(),
        trusted_networks: trusted_networks.clone(),
        header: header.clone(),
    })
}

/// The service [`trusted_or_token`] wraps around `S`.
#[derive(Clone)]
pub(super) struct TrustedOrToken<S> {
    inner: S,
    auth: Auth,
    /// `[scheduler] trusted_networks`.
    trusted_networks: Arc<Vec<ipnet::IpNet>>,
    /// `[scheduler] token_header`.
    header: HeaderName,
}

impl<S> TrustedOrToken<S> {
    fn trusted(&self, peer: Option<IpAddr>) -> bool {
        peer.is_some_and(|ip| self.trusted_networks.iter().any(|n| n.contains(&ip)))
    }
}

/// The credential presented: `Authorization: Bearer`, else the configured header (bare or
/// with `Bearer `). `Err` for an `Authorization` header of another scheme.
fn credential<'a>(headers: &'a HeaderMap, extra: &HeaderName) -> Result<Option<&'a str>, Error> {
    if headers.contains_key(header::AUTHORIZATION) {
        return crate::auth::bearer_token(headers).map(Some);
    }
    let Some(value) = headers.get(extra).and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    let value = value.trim();
    let token = match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
        _ => value,
    };
    Ok((!token.is_empty()).then_some(token))
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
        let peer = crate::auth::peer(&request);
        let completion = is_completion(request.uri().path());
        let who = if self.trusted(peer) {
            Who::Trusted
        } else {
            match credential(request.headers(), &self.header) {
                Err(err) => return refuse(err),
                Ok(None) if completion => Who::Nobody,
                Ok(None) => {
                    return refuse(
                        Error::new(Code::Unauthenticated, "authentication required").hint(format!(
                            "send Authorization: Bearer <token> or {}: <token>",
                            self.header
                        )),
                    );
                }
                Ok(Some(secret)) if super::is_instance_secret(secret) => {
                    if !completion {
                        return refuse(Error::new(
                            Code::InvalidToken,
                            "an instance's secret only reports its completions",
                        ));
                    }
                    Who::InstanceSecret(secret.to_string())
                }
                Ok(Some(token)) => {
                    let token = token.to_string();
                    return Either::Right(self.sign_in(token, peer, request));
                }
            }
        };
        request.extensions_mut().insert(SpAccess { peer, who });
        Either::Left(self.inner.call(request))
    }
}

impl<S> TrustedOrToken<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    /// Answers once `token` is signed in (an admin's for `/ti/*`).
    fn sign_in(
        &mut self,
        token: String,
        peer: Option<IpAddr>,
        mut request: Request,
    ) -> BoxFuture<'static, Result<Response, Infallible>> {
        // The ready service answers once the caller is known; a clone takes its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let auth = self.auth.clone();
        Box::pin(async move {
            let admin_only = request.uri().path().starts_with("/ti/");
            let allowed = match crate::auth::sign_in(&auth, &token, &mut request).await {
                Ok(caller) if admin_only => caller.require_admin().map(|()| caller),
                other => other,
            };
            match allowed {
                Ok(caller) => {
                    request.extensions_mut().insert(SpAccess {
                        peer,
                        who: Who::User(caller),
                    });
                    inner.call(request).await
                }
                Err(err) => Ok(SpError::from(err).into_response()),
            }
        })
    }
}

fn refuse<F>(err: Error) -> Either<F, BoxFuture<'static, Result<Response, Infallible>>> {
    let response = SpError::from(err).into_response();
    Either::Right(Box::pin(std::future::ready(Ok(response))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (k.parse().unwrap(), v.parse().unwrap()))
            .collect()
    }

    #[test]
    fn tokens_come_from_authorization_or_the_configured_header() {
        let extra = HeaderName::from_static("x-weft-token");
        let found = |pairs: &[(&str, &str)]| {
            credential(&headers(pairs), &extra).map(|t| t.map(str::to_string))
        };
        assert_eq!(found(&[]).unwrap(), None);
        assert_eq!(
            found(&[("authorization", "Bearer weft_a")]).unwrap(),
            Some("weft_a".into())
        );
        assert_eq!(
            found(&[("x-weft-token", "weft_b")]).unwrap(),
            Some("weft_b".into())
        );
        assert_eq!(
            found(&[("x-weft-token", "bearer  weft_c ")]).unwrap(),
            Some("weft_c".into())
        );
        assert_eq!(found(&[("x-weft-token", " ")]).unwrap(), None);
        assert_eq!(
            found(&[
                ("authorization", "Bearer weft_a"),
                ("x-weft-token", "weft_b")
            ])
            .unwrap(),
            Some("weft_a".into()),
            "Authorization comes first"
        );
        assert!(found(&[("authorization", "Basic dXNlcjpwYXNz")]).is_err());
    }
}
