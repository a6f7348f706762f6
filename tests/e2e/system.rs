//! Health, docs, OpenAPI and metrics.

use crate::on_both_backends;
use crate::support::{Backend, TestServer, WeftProcess, assert_error, send};
use reqwest::{Method, StatusCode};
use std::time::Duration;

on_both_backends!(
    health_is_public_and_reports_the_database,
    public_metrics_need_no_token,
    a_database_gone_is_503_unavailable,
    docs_and_openapi_are_public,
    metrics_count_requests_by_route_and_need_an_admin,
    made_up_methods_share_one_metrics_label,
    every_answer_carries_a_request_id,
);

async fn health_is_public_and_reports_the_database(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (status, body) = send(server.anon(Method::GET, "/api/v1/health")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ok");
    assert_eq!(body["database"], "ok");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));

    // With the database gone, health says so instead of pretending.
    server.state.store.close().await;
    let (status, body) = send(server.anon(Method::GET, "/api/v1/health")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["database"], "unavailable");
}

async fn docs_and_openapi_are_public(backend: Backend) {
    let server = TestServer::start(backend).await;
    let response = server
        .anon(Method::GET, "/docs/")
        .send()
        .await
        .expect("docs");
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await.unwrap();
    assert!(html.contains("swagger"), "docs page: {html}");

    let (status, spec) = send(server.anon(Method::GET, "/api/v1/openapi.json")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(spec["openapi"].as_str().unwrap().starts_with("3."));
    let paths = spec["paths"].as_object().expect("paths");
    for path in [
        "/api/v1/health",
        "/api/v1/users",
        "/api/v1/tokens",
        "/api/v1/tokens/{id}",
    ] {
        assert!(paths.contains_key(path), "{path} missing from {paths:?}");
    }
    assert!(spec["components"]["securitySchemes"]["bearer"].is_object());
    assert!(spec["components"]["schemas"]["ErrorBody"].is_object());
    assert_valid_openapi(&spec);
}

/// Checks the document with a real validator (openapi-spec-validator, from PyPI): clients and
/// the web app generate code from it.
fn assert_valid_openapi(spec: &serde_json::Value) {
    let python = std::env::var("WEFT_TEST_PYTHON").unwrap_or_else(|_| {
        panic!("WEFT_TEST_PYTHON is not set: run the tests with tests/run.sh, which installs openapi-spec-validator")
    });
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, spec.to_string()).unwrap();
    let checked = std::process::Command::new(python)
        .args(["-m", "openapi_spec_validator", "--errors", "all"])
        .arg(&file)
        .output()
        .expect("run openapi-spec-validator");
    assert!(
        checked.status.success(),
        "the OpenAPI document is invalid:\n{}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
}

async fn metrics_count_requests_by_route_and_need_an_admin(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (_, user_token) = server.user("metrics-reader").await;
    for _ in 0..3 {
        send(server.anon(Method::GET, "/api/v1/health")).await;
    }
    // A raw id must not become a label: the route template is used.
    send(server.admin(Method::DELETE, "/api/v1/tokens/does-not-exist")).await;

    let (status, body) = send(server.anon(Method::GET, "/metrics")).await;
    assert_error(status, &body, 401, "90301");
    let (status, body) = send(server.with_token(&user_token, Method::GET, "/metrics")).await;
    assert_error(status, &body, 403, "90305");

    let text = server
        .admin(Method::GET, "/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let health_line = text
        .lines()
        .find(|l| {
            l.starts_with("weft_http_requests_total")
                && l.contains("route=\"/api/v1/health\"")
                && l.contains("status=\"200\"")
        })
        .unwrap_or_else(|| panic!("no health counter in:\n{text}"));
    assert!(health_line.ends_with(" 3"), "{health_line}");
    assert!(text.contains("route=\"/api/v1/tokens/{id}\""), "{text}");
    assert!(!text.contains("does-not-exist"));
    assert!(text.contains("weft_http_request_duration_seconds_bucket"));
}

/// Clients choose the method: made-up ones must not each grow the metrics (and Weft's
/// memory) by a label value of their own.
async fn made_up_methods_share_one_metrics_label(backend: Backend) {
    let server = TestServer::start(backend).await;
    for method in ["FOO", "BAR-1", "PROPFIND"] {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let (status, _) = send(server.anon(method.clone(), "/api/v1/health")).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
    }
    send(server.anon(Method::GET, "/api/v1/health")).await;
    let text = server
        .admin(Method::GET, "/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for made_up in ["FOO", "BAR-1", "PROPFIND"] {
        assert!(!text.contains(made_up), "{made_up} became a label:\n{text}");
    }
    let counted: u64 = text
        .lines()
        .filter(|l| l.starts_with("weft_http_requests_total") && l.contains("method=\"other\""))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(
        counted, 3,
        "every made-up method is counted as 'other':\n{text}"
    );
    assert!(text.contains("method=\"GET\""), "{text}");
}

async fn every_answer_carries_a_request_id(backend: Backend) {
    let server = TestServer::start(backend).await;
    let response = server
        .anon(Method::GET, "/api/v1/health")
        .send()
        .await
        .unwrap();
    let id = response.headers()["x-request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");

    let response = server
        .anon(Method::GET, "/api/v1/health")
        .header("x-request-id", "caller-chosen-id")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "caller-chosen-id");

    // The scheduler's SwarmPilot paths too.
    let response = server.anon(Method::GET, "/health").send().await.unwrap();
    let id = response.headers()["x-request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
}

/// `[api] public_metrics = true`: `/metrics` answers without a token.
async fn public_metrics_need_no_token(backend: Backend) {
    let server = TestServer::start_with(backend, |c| c.api.public_metrics = true).await;
    send(server.anon(Method::GET, "/api/v1/health")).await;
    let response = server.anon(Method::GET, "/metrics").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    assert!(
        text.contains("weft_http_requests_total") && text.contains("route=\"/api/v1/health\""),
        "{text}"
    );
}

/// `log_format = "json"`: every line Weft logs is one JSON object with its level and message.
/// The SIGTERM comes right after Weft says it listens: it stops gracefully (it was killed by
/// the signal while its handler was installed only at the first poll).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_json_log_is_one_object_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let common = ["--data-dir", dir.path().to_str().unwrap()];
    let mut server = WeftProcess::serve_with(&common, &[("WEFT_LOG_FORMAT", "json")]);
    let status = server.terminate(Duration::from_secs(20));
    let lines = server.log_lines();
    assert!(status.success(), "{status:?}: {lines:#?}");
    assert!(!lines.is_empty());
    for line in &lines {
        let entry: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON object ({e}): {line}"));
        assert!(entry["level"].is_string(), "{line}");
        assert!(entry["message"].is_string(), "{line}");
    }
    assert!(
        lines
            .iter()
            .any(|l| l.contains("\"message\":\"weft listening on http://")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("\"message\":\"weft stopped\"")),
        "{lines:?}"
    );
}

/// With the database gone, a request that needs it is answered 503 `90102`, not 500.
async fn a_database_gone_is_503_unavailable(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.state.store.close().await;
    let (status, body) = send(server.admin(Method::GET, "/api/v1/users/me")).await;
    assert_error(status, &body, 503, "90102");
}
