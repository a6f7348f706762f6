//! One JSON error shape for every failure: bad bodies, unknown routes, wrong methods, limits.

use crate::on_both_backends;
use crate::support::{Backend, TestServer, assert_error, send};
use reqwest::{Method, StatusCode};

on_both_backends!(
    unknown_routes_and_wrong_methods,
    malformed_json_is_400_and_wrong_shapes_name_the_field,
    wrong_content_type_is_415,
    oversized_bodies_are_413,
    bad_path_and_query_parameters_are_400,
    nul_characters_are_refused_on_every_backend,
);

async fn unknown_routes_and_wrong_methods(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (status, body) = send(server.admin(Method::GET, "/api/v1/nothing-here")).await;
    assert_error(status, &body, 404, "90201");
    assert_eq!(body["details"]["path"], "/api/v1/nothing-here");

    // Unknown routes answer 404 even without a token (nothing to protect there).
    let (status, body) = send(server.anon(Method::GET, "/no/such/page")).await;
    assert_error(status, &body, 404, "90201");

    let (status, body) = send(server.admin(Method::PUT, "/api/v1/health")).await;
    assert_error(status, &body, 405, "90202");
    let (status, body) = send(server.admin(Method::PATCH, "/api/v1/users")).await;
    assert_error(status, &body, 405, "90202");
}

async fn malformed_json_is_400_and_wrong_shapes_name_the_field(backend: Backend) {
    let server = TestServer::start(backend).await;
    let post = |body: &'static str| {
        server
            .admin(Method::POST, "/api/v1/users")
            .header("content-type", "application/json")
            .body(body)
    };

    let (status, body) = send(post("{\"name\": ")).await;
    assert_error(status, &body, 400, "90401");
    assert!(body["details"]["line"].is_number(), "{body}");

    let (status, body) = send(post(r#"{"name": 42}"#)).await;
    assert_error(status, &body, 422, "90402");
    assert_eq!(body["details"]["field"], "name");

    let (status, body) = send(post(r#"{}"#)).await;
    assert_error(status, &body, 422, "90402");
    assert!(body["message"].as_str().unwrap().contains("name"), "{body}");

    let (status, body) = send(post(r#"{"name": "ok", "role": "emperor"}"#)).await;
    assert_error(status, &body, 422, "90402");
    assert_eq!(body["details"]["field"], "role");

    let (status, body) = send(post(r#"{"name": "ok", "colour": "red"}"#)).await;
    assert_error(status, &body, 422, "90402");
    assert!(
        body["message"].as_str().unwrap().contains("colour"),
        "{body}"
    );

    // A field that parses but breaks a rule is also a 422 naming it.
    let (status, body) = send(post(r#"{"name": "no spaces allowed"}"#)).await;
    assert_error(status, &body, 422, "90402");
    assert_eq!(body["details"]["field"], "name");

    // Nothing was stored by the failed attempts.
    let (_, users) = send(server.admin(Method::GET, "/api/v1/users")).await;
    assert_eq!(users.as_array().unwrap().len(), 1, "{users}");
}

async fn wrong_content_type_is_415(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (status, body) = send(
        server
            .admin(Method::POST, "/api/v1/users")
            .header("content-type", "text/plain")
            .body(r#"{"name":"x"}"#),
    )
    .await;
    assert_error(status, &body, 415, "90404");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("application/json")
    );
}

async fn oversized_bodies_are_413(backend: Backend) {
    let server = TestServer::start_with(backend, |c| c.api.max_body_bytes = 1024).await;
    let big = format!(r#"{{"name": "{}"}}"#, "a".repeat(4096));
    let (status, body) = send(
        server
            .admin(Method::POST, "/api/v1/users")
            .header("content-type", "application/json")
            .body(big),
    )
    .await;
    assert_error(status, &body, 413, "90403");
    assert!(body["hint"].as_str().unwrap().contains("max_body_bytes"));
}

async fn bad_path_and_query_parameters_are_400(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (status, body) = send(server.admin(Method::GET, "/api/v1/tokens?user_id=a&bogus=1")).await;
    assert_error(status, &body, 400, "90405");
    assert_eq!(body["details"]["in"], "query");
}

/// PostgreSQL cannot store a NUL in text (it answered 500); both backends refuse one, naming
/// the field, in bodies, queries and paths, and store nothing.
async fn nul_characters_are_refused_on_every_backend(backend: Backend) {
    let server = TestServer::start(backend).await;
    let definition = serde_json::json!({
        "name": "a\u{0}b",
        "nodes": [{"id": "f", "type": "fibo", "config": {"n": 3}}],
        "edges": []
    });
    let (status, body) = send(
        server
            .admin(Method::POST, "/api/v1/workflows")
            .json(&definition),
    )
    .await;
    assert_error(status, &body, 422, "90402");
    assert_eq!(body["details"]["field"], "name", "{body}");
    let mut nested = definition.clone();
    nested["name"] = "fine".into();
    nested["nodes"][0]["id"] = "f\u{0}".into();
    let (status, body) = send(
        server
            .admin(Method::POST, "/api/v1/workflows")
            .json(&nested),
    )
    .await;
    assert_error(status, &body, 422, "90402");
    assert_eq!(body["details"]["field"], "nodes[0].id", "{body}");
    let (status, body) = send(server.admin(Method::GET, "/api/v1/workflows")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["items"],
        serde_json::json!([]),
        "nothing stored: {body}"
    );
    let (status, body) = send(server.admin(Method::GET, "/api/v1/tokens?user_id=a%00b")).await;
    assert_error(status, &body, 400, "90405");
    let (status, body) = send(server.admin(Method::GET, "/api/v1/workflows/a%00b")).await;
    assert_error(status, &body, 400, "90405");
    // A backslash before "u0000" is text, not a NUL.
    nested["nodes"][0]["id"] = "f".into();
    nested["description"] = "a \\u0000 b".into();
    let (status, body) = send(
        server
            .admin(Method::POST, "/api/v1/workflows")
            .json(&nested),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

/// A real `weft` whose health handler panics (`WEFT_PANIC_AT`, debug builds only): the
/// answer is the JSON 500 of every error, without the panic's text, and the server serves on.
#[cfg(debug_assertions)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_handler_is_a_json_500_and_the_server_lives_on() {
    let dir = tempfile::tempdir().unwrap();
    let common = ["--data-dir", dir.path().to_str().unwrap()];
    let token = crate::support::bootstrap(&[], &common);
    let server = crate::support::WeftProcess::serve_with(&common, &[("WEFT_PANIC_AT", "health")]);
    let client = reqwest::Client::new();
    for _ in 0..2 {
        let (status, body) = send(client.get(format!("{}/api/v1/health", server.base_url()))).await;
        assert_error(status, &body, 500, "90101");
        assert!(
            !body["message"].as_str().unwrap().contains("deliberate"),
            "panic text leaked: {body}"
        );
    }
    let (status, me) = send(
        client
            .get(format!("{}/api/v1/users/me", server.base_url()))
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "the server lives on: {me}");
    assert!(server.stderr_contains("deliberate panic in health"));
}
