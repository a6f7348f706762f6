//! Prometheus metrics: requests by route and status, and a latency histogram.

use axum::extract::MatchedPath;
use axum::http::{Method, Request, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;
use tower::Service;
use tower::layer::LayerFn;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: &'static str,
    route: String,
}

/// The method as a label: the standard ones by name, any other as `other`, so that clients
/// sending made-up methods cannot grow the label set (and the memory it takes) without bound.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

/// The server's metric registry.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
}

impl Metrics {
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::with_prefix("weft");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            // 50 us .. ~100 s
            Histogram::new(exponential_buckets(0.00005, 2.5, 17))
        });
        registry.register(
            "http_requests",
            "HTTP requests by method, route and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by method and route",
            latency.clone(),
        );
        Arc::new(Self {
            registry,
            requests,
            latency,
        })
    }

    /// The registry in Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            tracing::error!("cannot encode metrics");
        }
        out
    }
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
            this.metrics
                .latency
                .get_or_create(&labels)
                .observe(this.start.elapsed().as_secs_f64());
            this.metrics
                .requests
                .get_or_create(&RequestLabels {
                    method: labels.method,
                    route: labels.route,
                    status: response.status().as_u16(),
                })
                .inc();
        }
        Poll::Ready(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_standard_methods_are_labels_of_their_own() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        for made_up in ["FOO", "get", "PROPFIND", "X-1"] {
            let method = Method::from_bytes(made_up.as_bytes()).unwrap();
            assert_eq!(method_label(&method), "other", "{made_up}");
        }
    }
}
