//! A lean JSON-over-HTTP/1.1 client for the scheduler's hot paths (a task costs one call to
//! its instance and one report back): hyper's pooled keep-alive connections with a timeout per
//! exchange and a bound on answers, without per-call URL parsing or middleware.

use bytes::Bytes;
use http::{Method, StatusCode, header};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

/// The most of an answer that is read.
const MAX_ANSWER_BYTES: usize = 1 << 20;

/// Cheap to clone; clones share the connection pool.
#[derive(Clone)]
pub struct HttpClient {
    http: Client<HttpConnector, Full<Bytes>>,
    timeout: Duration,
}

impl HttpClient {
    /// Each exchange (connecting included) must finish within `timeout`.
    pub fn new(timeout: Duration) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(timeout.min(Duration::from_secs(2))));
        connector.set_nodelay(true);
        let http = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(256)
            .build(connector);
        Self { http, timeout }
    }

    /// One exchange: the answer's status and body. Errors read "connection refused or
    /// unreachable" or "timed out" when those are the cause.
    pub async fn call(
        &self,
        method: Method,
        url: &str,
        json_body: Option<Bytes>,
        bearer: Option<&str>,
    ) -> Result<(StatusCode, Bytes), String> {
        let mut request = http::Request::builder().method(method).uri(url);
        if json_body.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        if let Some(token) = bearer {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = request
            .body(Full::new(json_body.unwrap_or_default()))
            .map_err(|e| format!("bad request to {url}: {e}"))?;
        let exchange = async {
            let response = self.http.request(request).await.map_err(describe)?;
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
                .collect()
                .await
                .map_err(|e| format!("cannot read the answer: {e}"))?
                .to_bytes();
            Ok((status, body))
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| "timed out".to_string())?
    }
}

fn describe(err: hyper_util::client::legacy::Error) -> String {
    if err.is_connect() {
        return "connection refused or unreachable".into();
    }
    let mut text = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    text
}
