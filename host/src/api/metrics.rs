//! The middleware that counts and times every request into the registry's HTTP meters
//! (`crate::telemetry`).

use crate::telemetry::Metrics;
use crate::telemetry::http::method_label;
use axum::extract::MatchedPath;
use axum::http::{Request, Response};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;
use tower::Service;
use tower::layer::LayerFn;

/// A request's method and route template, taken as it arrives.
struct RouteLabels {
    method: &'static str,
    route: String,
}

/// Middleware: counts and times each request by its route template (never the raw path). A
/// tower layer rather than a `from_fn` one: it runs on every request, and a `from_fn` layer
/// clones the inner service and boxes a future on each.
pub(crate) fn track<S>(metrics: Arc<Metrics>) -> LayerFn<impl Fn(S) -> Track<S> + Clone> {
    tower::layer::layer_fn(move |inner| Track {
        inner,
        metrics: metrics.clone(),
    })
}

/// The service [`track`] wraps around `S`.
#[derive(Clone)]
pub(crate) struct Track<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

impl<S, B, RB> Service<Request<B>> for Track<S>
where
    S: Service<Request<B>, Response = Response<RB>>,
{
    type Response = Response<RB>;
    type Error = S::Error;
    type Future = Tracked<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let route = request
            .extensions()
            .get::<MatchedPath>()
            .map_or("unmatched", |p| p.as_str())
            .to_string();
        let labels = RouteLabels {
            method: method_label(request.method()),
            route,
        };
        Tracked {
            inner: self.inner.call(request),
            metrics: self.metrics.clone(),
            labels: Some(labels),
            start: Instant::now(),
        }
    }
}

pin_project_lite::pin_project! {
    /// A request being answered; counted when the answer is ready.
    pub struct Tracked<F> {
        #[pin]
        inner: F,
        metrics: Arc<Metrics>,
        labels: Option<RouteLabels>,
        start: Instant,
    }
}

impl<F, RB, E> Future for Tracked<F>
where
    F: Future<Output = Result<Response<RB>, E>>,
{
    type Output = Result<Response<RB>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = std::task::ready!(this.inner.poll(cx));
        if let (Ok(response), Some(labels)) = (&result, this.labels.take()) {
            this.metrics.http.observe(
                labels.method,
                labels.route,
                response.status().as_u16(),
                this.start.elapsed().as_secs_f64(),
            );
        }
        Poll::Ready(result)
    }
}
