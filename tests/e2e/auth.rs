//! Users, roles and tokens: who may call what.

use crate::on_both_backends;
use crate::support::{Backend, TestServer, assert_error, send};
use reqwest::{Method, StatusCode};
use serde_json::json;

on_both_backends!(
    every_non_public_endpoint_needs_a_token,
    bad_tokens_are_refused_with_their_own_codes,
    users_cannot_call_admin_endpoints,
    admins_manage_users_and_tokens,
    revoked_and_expired_tokens_stop_working,
    users_only_see_and_revoke_their_own_tokens,
);

async fn every_non_public_endpoint_needs_a_token(backend: Backend) {
    // Nothing is trusted by network here: the scheduler's SwarmPilot paths need a token too.
    let server = TestServer::start_with(backend, |c| c.scheduler.trusted_networks.clear()).await;
    let (_, spec) = send(server.anon(Method::GET, "/api/v1/openapi.json")).await;
    let mut checked = 0;
    for (path, item) in spec["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let public = item[method]["security"].as_array().is_some_and(|s| {
                s.iter()
                    .any(|r| r.as_object().is_some_and(|o| o.is_empty()))
            });
            if public {
                continue;
            }
            let concrete = path.replace("{id}", "some-id");
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let (status, body) = send(server.anon(method.clone(), &concrete)).await;
            if body["status"] == "error" {
                // SwarmPilot's shape: Weft's code next to its `status`.
                assert_eq!(
                    (status.as_u16(), &body["code"]),
                    (401, &json!("90301")),
                    "{path}"
                );
            } else {
                assert_error(status, &body, 401, "90301");
            }
            checked += 1;
        }
    }
    assert!(checked >= 6, "only {checked} protected operations found");
}

async fn bad_tokens_are_refused_with_their_own_codes(backend: Backend) {
    let server = TestServer::start(backend).await;
    let response = server
        .anon(Method::GET, "/api/v1/users/me")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.headers().contains_key("www-authenticate"));

    let (status, body) =
        send(server.with_token("weft_not-a-real-token", Method::GET, "/api/v1/users/me")).await;
    assert_error(status, &body, 401, "90302");

    let (status, body) = send(
        server
            .anon(Method::GET, "/api/v1/users/me")
            .header("authorization", "Basic dXNlcjpwYXNz"),
    )
    .await;
    assert_error(status, &body, 401, "90301");
    assert!(body["hint"].as_str().unwrap().contains("Bearer"), "{body}");
}

async fn users_cannot_call_admin_endpoints(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (_, token) = server.user("alice").await;
    let (status, body) = send(
        server
            .with_token(&token, Method::POST, "/api/v1/users")
            .json(&json!({"name": "mallory", "role": "admin"})),
    )
    .await;
    assert_error(status, &body, 403, "90305");
    let (status, body) = send(server.with_token(&token, Method::GET, "/api/v1/users")).await;
    assert_error(status, &body, 403, "90305");

    // Nor issue a token for someone else.
    let (_, admin) = send(server.admin(Method::GET, "/api/v1/users/me")).await;
    let (status, body) = send(
        server
            .with_token(&token, Method::POST, "/api/v1/tokens")
            .json(&json!({"name": "steal", "user_id": admin["id"]})),
    )
    .await;
    assert_error(status, &body, 403, "90305");

    // The refused calls created nothing.
    let (_, users) = send(server.admin(Method::GET, "/api/v1/users")).await;
    let names: Vec<&str> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["admin", "alice"]);
}

async fn admins_manage_users_and_tokens(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (status, user) = send(
        server
            .admin(Method::POST, "/api/v1/users")
            .json(&json!({"name": "bob"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(user["role"], "user");

    let (status, body) = send(
        server
            .admin(Method::POST, "/api/v1/users")
            .json(&json!({"name": "bob"})),
    )
    .await;
    assert_error(status, &body, 409, "90204");

    let (status, issued) = send(
        server
            .admin(Method::POST, "/api/v1/tokens")
            .json(&json!({"name": "ci", "user_id": user["id"], "expires_in_seconds": 3600})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{issued}");
    let token = issued["token"].as_str().unwrap();
    assert!(token.starts_with("weft_"));
    assert!(issued["expires_at"].is_string());

    let (status, me) = send(server.with_token(token, Method::GET, "/api/v1/users/me")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["name"], "bob");

    // Listing never shows a secret, and the store holds only a hash.
    let (_, tokens) = send(server.admin(Method::GET, "/api/v1/tokens")).await;
    let listed = tokens.to_string();
    assert!(!listed.contains(token), "secret leaked in listing");
    assert_eq!(tokens.as_array().unwrap().len(), 2, "{tokens}");
    let stored: Vec<(String,)> = sqlx::query_as("SELECT token_hash FROM api_tokens")
        .fetch_all(server.state.store.pool())
        .await
        .unwrap();
    assert!(
        stored
            .iter()
            .all(|(hash,)| !hash.contains(&token["weft_".len()..]))
    );

    let (status, filtered) = send(server.admin(
        Method::GET,
        &format!("/api/v1/tokens?user_id={}", user["id"].as_str().unwrap()),
    ))
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(filtered.as_array().unwrap().len(), 1);
    assert_eq!(filtered[0]["name"], "ci");

    let (status, body) = send(
        server
            .admin(Method::POST, "/api/v1/tokens")
            .json(&json!({"name": "x", "user_id": "no-such-user"})),
    )
    .await;
    assert_error(status, &body, 404, "90203");

    let (status, body) = send(
        server
            .admin(Method::POST, "/api/v1/tokens")
            .json(&json!({"name": "x", "expires_in_seconds": 0})),
    )
    .await;
    assert_error(status, &body, 422, "90402");
    assert_eq!(body["details"]["field"], "expires_in_seconds");
}

async fn revoked_and_expired_tokens_stop_working(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (_, token) = server.user("carol").await;
    let (_, tokens) = send(server.with_token(&token, Method::GET, "/api/v1/tokens")).await;
    let id = tokens[0]["id"].as_str().unwrap().to_string();

    let (status, revoked) =
        send(server.with_token(&token, Method::DELETE, &format!("/api/v1/tokens/{id}"))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(revoked["revoked_at"].is_string());
    let (status, body) = send(server.with_token(&token, Method::GET, "/api/v1/users/me")).await;
    assert_error(status, &body, 401, "90304");
    // Revoking twice is harmless.
    let (status, _) = send(server.admin(Method::DELETE, &format!("/api/v1/tokens/{id}"))).await;
    assert_eq!(status, StatusCode::OK);

    let (_, issued) = send(
        server
            .admin(Method::POST, "/api/v1/tokens")
            .json(&json!({"name": "short", "expires_in_seconds": 3600})),
    )
    .await;
    let short = issued["token"].as_str().unwrap();
    let (status, _) = send(server.with_token(short, Method::GET, "/api/v1/users/me")).await;
    assert_eq!(status, StatusCode::OK);
    // Move the expiry into the past rather than waiting for it.
    sqlx::query("UPDATE api_tokens SET expires_at = $1 WHERE id = $2")
        .bind(weft::store::now_ms() - 1_000)
        .bind(issued["id"].as_str().unwrap())
        .execute(server.state.store.pool())
        .await
        .unwrap();
    let (status, body) = send(server.with_token(short, Method::GET, "/api/v1/users/me")).await;
    assert_error(status, &body, 401, "90303");
}

async fn users_only_see_and_revoke_their_own_tokens(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (_, alice) = server.user("alice").await;
    let (bob_id, bob) = server.user("bob").await;
    let (_, bob_tokens) = send(server.with_token(&bob, Method::GET, "/api/v1/tokens")).await;
    let bob_token_id = bob_tokens[0]["id"].as_str().unwrap();

    let (_, alice_tokens) = send(server.with_token(&alice, Method::GET, "/api/v1/tokens")).await;
    assert_eq!(alice_tokens.as_array().unwrap().len(), 1);
    assert!(!alice_tokens.to_string().contains(bob_token_id));

    let (status, body) = send(server.with_token(
        &alice,
        Method::GET,
        &format!("/api/v1/tokens?user_id={bob_id}"),
    ))
    .await;
    assert_error(status, &body, 403, "90305");

    let (status, body) = send(server.with_token(
        &alice,
        Method::DELETE,
        &format!("/api/v1/tokens/{bob_token_id}"),
    ))
    .await;
    assert_error(status, &body, 404, "90203");
    let (status, _) = send(server.with_token(&bob, Method::GET, "/api/v1/users/me")).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "bob's token must survive alice's attempt"
    );
}
