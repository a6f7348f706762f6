//! Users, roles and tokens: who may call what.

use crate::on_both_backends;
use crate::support::{Backend, TestServer, assert_error, send};
use futures::{SinkExt, StreamExt};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

on_both_backends!(
    every_non_public_endpoint_needs_a_token,
    bad_tokens_are_refused_with_their_own_codes,
    users_cannot_call_admin_endpoints,
    admins_manage_users_and_tokens,
    revoked_and_expired_tokens_stop_working,
    users_only_see_and_revoke_their_own_tokens,
    a_child_token_never_outlives_its_parent,
    revoking_a_token_revokes_every_token_minted_from_it,
    disabled_users_are_shut_out_at_once,
    failed_sign_ins_are_limited_per_address,
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
    assert!(response.headers().contains_key("www-authenticate"));
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_error(status, &body, 401, "90301");

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

/// Mints a token with `parent` (the caller's token) and returns the answer.
async fn mint(server: &TestServer, parent: &str, body: serde_json::Value) -> (StatusCode, Value) {
    send(
        server
            .with_token(parent, Method::POST, "/api/v1/tokens")
            .json(&body),
    )
    .await
}

async fn a_child_token_never_outlives_its_parent(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (alice_id, _) = server.user("alice").await;
    // An hour-long token for alice, minted by the admin.
    let (status, parent) = mint(
        &server,
        &server.admin_token,
        json!({"name": "hour", "user_id": alice_id, "expires_in_seconds": 3600}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{parent}");
    let parent_token = parent["token"].as_str().unwrap();

    // It cannot mint a token that lives forever, nor one that outlives it.
    for asked in [
        json!({"name": "forever"}),
        json!({"name": "longer", "expires_in_seconds": 7200}),
    ] {
        let (status, body) = mint(&server, parent_token, asked).await;
        assert_error(status, &body, 403, "90306");
        assert_eq!(body["details"]["field"], "expires_in_seconds", "{body}");
        assert_eq!(
            body["details"]["parent_expires_at"], parent["expires_at"],
            "{body}"
        );
        let max = body["details"]["max_expires_in_seconds"].as_i64().unwrap();
        assert!((3500..=3600).contains(&max), "{body}");
    }
    // Within its parent's life it can, and it names its parent.
    let (status, child) = mint(
        &server,
        parent_token,
        json!({"name": "minute", "expires_in_seconds": 60}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{child}");
    assert_eq!(child["parent_id"], parent["id"], "{child}");
    assert_eq!(child["user_id"], alice_id.as_str(), "{child}");
    let (status, _) = send(server.with_token(
        child["token"].as_str().unwrap(),
        Method::GET,
        "/api/v1/users/me",
    ))
    .await;
    assert_eq!(status, StatusCode::OK);
    // A parent that never expires bounds nothing.
    let (status, free) = mint(&server, &server.admin_token, json!({"name": "free"})).await;
    assert_eq!(status, StatusCode::CREATED, "{free}");
    assert!(free["expires_at"].is_null(), "{free}");

    // A parent past its expiry is refused as such (its children were bound to expire with it).
    sqlx::query("UPDATE api_tokens SET expires_at = $1 WHERE id = $2")
        .bind(weft::store::now_ms() - 1_000)
        .bind(parent["id"].as_str().unwrap())
        .execute(server.state.store.pool())
        .await
        .unwrap();
    let (status, body) = mint(
        &server,
        parent_token,
        json!({"name": "late", "expires_in_seconds": 1}),
    )
    .await;
    assert_error(status, &body, 401, "90303");
}

async fn revoking_a_token_revokes_every_token_minted_from_it(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (_, alice) = server.user("alice").await;
    let me = |token: &str| send(server.with_token(token, Method::GET, "/api/v1/users/me"));
    let token_of = |body: &Value| body["token"].as_str().unwrap().to_string();
    // alice -> child -> grandchild, and a sibling minted by the admin.
    let (_, child) = mint(&server, &alice, json!({"name": "child"})).await;
    let (_, grandchild) = mint(&server, &token_of(&child), json!({"name": "grandchild"})).await;
    let (_, great) = mint(&server, &token_of(&grandchild), json!({"name": "great"})).await;
    let (_, sibling) = mint(&server, &alice, json!({"name": "sibling"})).await;
    for body in [&child, &grandchild, &great, &sibling] {
        assert_eq!(me(&token_of(body)).await.0, StatusCode::OK, "{body}");
    }

    // Revoking the child (as alice, with another of her tokens) takes its line with it.
    let (status, revoked) = send(server.with_token(
        &token_of(&sibling),
        Method::DELETE,
        &format!("/api/v1/tokens/{}", child["id"].as_str().unwrap()),
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{revoked}");
    assert_eq!(revoked["revoked_descendants"], 2, "{revoked}");
    for body in [&child, &grandchild, &great] {
        let (status, refused) = me(&token_of(body)).await;
        assert_error(status, &refused, 401, "90304");
    }
    for token in [alice.clone(), token_of(&sibling)] {
        assert_eq!(
            me(&token).await.0,
            StatusCode::OK,
            "the rest of the tree is untouched"
        );
    }
    let (_, listed) = send(server.with_token(&alice, Method::GET, "/api/v1/tokens")).await;
    let revoked_names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["revoked_at"].is_string())
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(revoked_names, ["child", "grandchild", "great"]);

    // A child that escaped the cascade (minted while its parent was being revoked) is refused
    // all the same, since its parent is.
    let (_, late) = mint(&server, &token_of(&sibling), json!({"name": "late"})).await;
    sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE id = $2")
        .bind(weft::store::now_ms())
        .bind(sibling["id"].as_str().unwrap())
        .execute(server.state.store.pool())
        .await
        .unwrap();
    let (status, refused) = me(&token_of(&late)).await;
    assert_error(status, &refused, 401, "90304");
}

async fn disabled_users_are_shut_out_at_once(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (alice_id, alice) = server.user("alice").await;
    let (_, second) = mint(&server, &alice, json!({"name": "laptop"})).await;
    let second = second["token"].as_str().unwrap().to_string();
    let (_, bob) = server.user("bob").await;
    let me = |token: &str| send(server.with_token(token, Method::GET, "/api/v1/users/me"));

    // Only an admin disables, and not themselves.
    let disable = |token: &str, id: &str| {
        send(server.with_token(token, Method::POST, &format!("/api/v1/users/{id}/disable")))
    };
    let (status, body) = disable(&bob, &alice_id).await;
    assert_error(status, &body, 403, "90305");
    let (_, admin) = me(&server.admin_token).await;
    let (status, body) = disable(&server.admin_token, admin["id"].as_str().unwrap()).await;
    assert_error(status, &body, 409, "90204");
    let (status, body) = disable(&server.admin_token, "no-such-user").await;
    assert_error(status, &body, 404, "90203");

    let (status, disabled) = disable(&server.admin_token, &alice_id).await;
    assert_eq!(status, StatusCode::OK, "{disabled}");
    assert!(disabled["disabled_at"].is_string(), "{disabled}");
    // Every token of hers stops at once, on the API and on the scheduler's paths.
    for token in [&alice, &second] {
        let (status, body) = me(token).await;
        assert_error(status, &body, 401, "90307");
        let (status, body) = send(
            server
                .with_token(token, Method::POST, "/queue/submit")
                .json(&json!({"model_name": "m", "task_input": {}})),
        )
        .await;
        assert_eq!(
            (status.as_u16(), &body["code"]),
            (401, &json!("90307")),
            "{body}"
        );
    }
    assert_eq!(me(&bob).await.0, StatusCode::OK, "others are not affected");
    let (_, users) = send(server.admin(Method::GET, "/api/v1/users")).await;
    let listed = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["id"] == alice_id.as_str())
        .unwrap();
    assert!(listed["disabled_at"].is_string(), "{users}");

    let (status, enabled) =
        send(server.admin(Method::POST, &format!("/api/v1/users/{alice_id}/enable"))).await;
    assert_eq!(status, StatusCode::OK, "{enabled}");
    assert!(enabled["disabled_at"].is_null(), "{enabled}");
    for token in [&alice, &second] {
        assert_eq!(me(token).await.0, StatusCode::OK);
    }
}

async fn failed_sign_ins_are_limited_per_address(backend: Backend) {
    let server = TestServer::start_with(backend, |c| {
        c.api.sign_in_max_failures = 3;
        c.api.sign_in_window_secs = 600;
    })
    .await;
    let (_, alice) = server.user("alice").await;
    let from = |ip: &str| {
        reqwest::Client::builder()
            .local_address(ip.parse::<std::net::IpAddr>().unwrap())
            .build()
            .unwrap()
    };
    let me = |client: &reqwest::Client, token: &str| {
        send(
            client
                .get(server.url("/api/v1/users/me"))
                .bearer_auth(token),
        )
    };
    let (attacker, neighbour, quiet) = (from("127.0.0.3"), from("127.0.0.4"), from("127.0.0.5"));

    // Successful sign-ins and requests without a token count for nothing.
    for _ in 0..10 {
        assert_eq!(me(&quiet, &alice).await.0, StatusCode::OK);
        let (status, body) = send(quiet.get(server.url("/api/v1/users/me"))).await;
        assert_error(status, &body, 401, "90301");
    }
    // Three guesses are answered as such; then the address is refused, even with a valid
    // token, with when to come back.
    for i in 0..3 {
        let (status, body) = me(&attacker, &format!("weft_guess-{i}")).await;
        assert_error(status, &body, 401, "90302");
    }
    let response = attacker
        .get(server.url("/api/v1/users/me"))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((590..=600).contains(&retry_after), "{retry_after}");
    let body: Value = response.json().await.unwrap();
    assert_error(status, &body, 429, "90205");
    assert_eq!(body["details"]["retry_after_secs"], retry_after);
    // The scheduler's paths and the metrics are closed to it too; in their own shape.
    let (status, body) = send(
        attacker
            .post(server.url("/queue/submit"))
            .header("x-weft-token", &alice)
            .json(&json!({"model_name": "m", "task_input": {}})),
    )
    .await;
    assert_eq!(
        (status.as_u16(), &body["code"], &body["status"]),
        (429, &json!("90205"), &json!("error")),
        "{body}"
    );

    // Other addresses are not: the neighbour signs in, and has guesses of its own.
    assert_eq!(me(&neighbour, &alice).await.0, StatusCode::OK);
    let (status, body) = me(&neighbour, "weft_guess").await;
    assert_error(status, &body, 401, "90302");
    assert_eq!(me(&quiet, &alice).await.0, StatusCode::OK);
}

/// A disabled user's session keeps running, but its link and cookie (which stand for the
/// user) stop working until the user is enabled again, and the WebSockets they opened close.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_users_session_links_stop_working() {
    let (server, _cleanup) = crate::support::docker::server(Backend::Sqlite, |c| {
        c.workspaces.start_timeout_secs = 90;
        c.workspaces.memory = "512Mi".into();
    })
    .await;
    let (bob_id, bob) = server.user("bob").await;
    let project = server.project(&bob, "work").await;
    let (status, opened) = server.open_session(&bob, &project, "jupyter").await;
    assert_eq!(status, StatusCode::CREATED, "{opened}");
    let site = opened["url"].as_str().unwrap().to_string();
    let access = opened["access_token"].as_str().unwrap().to_string();
    server.session_ready(&bob, &project).await;
    let browser = crate::support::loopback::no_redirects();
    let url = |path: &str| format!("{site}{path}");
    let first = browser
        .get(url(&format!("api/status?token={access}")))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::SEE_OTHER);
    let cookie = first.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let status_with = |cookie: String| {
        let request = browser.get(url("api/status")).header("cookie", cookie);
        async move { request.send().await.unwrap().status() }
    };
    assert_eq!(status_with(cookie.clone()).await, StatusCode::OK);
    // A WebSocket the cookie opened (Jupyter's event stream), alive: it answers a ping.
    let mut request = url("api/events/subscribe")
        .replacen("http://", "ws://", 1)
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("cookie", cookie.parse().unwrap());
    let port = request.uri().port_u16().unwrap();
    // The session's host name is `<id>.localhost`: connect to loopback, as a browser does.
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let (mut socket, _) = tokio_tungstenite::client_async(request, tcp)
        .await
        .expect("the event WebSocket opens");
    socket
        .send(Message::Ping(b"alive".to_vec().into()))
        .await
        .unwrap();
    loop {
        match socket.next().await {
            Some(Ok(Message::Pong(_))) => break,
            Some(Ok(_)) => {}
            other => panic!("the WebSocket is not open: {other:?}"),
        }
    }

    // The owner's API token opens the session too; the proxy keeps it as read lately, so
    // revoking it must still stop it at once.
    assert_eq!(
        send(browser.get(url("api/status")).bearer_auth(&bob))
            .await
            .0,
        StatusCode::OK
    );
    let (status, spare) = send(
        server
            .with_token(&bob, Method::POST, "/api/v1/tokens")
            .json(&json!({ "name": "spare" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{spare}");
    let spare_token = spare["token"].as_str().unwrap();
    let with_spare = || browser.get(url("api/status")).bearer_auth(spare_token);
    assert_eq!(send(with_spare()).await.0, StatusCode::OK);
    let revoke = format!("/api/v1/tokens/{}", spare["id"].as_str().unwrap());
    let (status, _) = send(server.with_token(&bob, Method::DELETE, &revoke)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = send(with_spare()).await;
    assert_error(status, &body, 403, "90305");

    let (status, _) =
        send(server.admin(Method::POST, &format!("/api/v1/users/{bob_id}/disable"))).await;
    assert_eq!(status, StatusCode::OK);
    // It is closed at once (the bound only keeps a failing test from hanging).
    let closed = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        loop {
            match socket.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the disabled user's WebSocket stayed open");
    let (status, body) = send(browser.get(url("api/status")).header("cookie", &cookie)).await;
    assert_error(status, &body, 401, "90307");
    let (status, body) = send(browser.get(url("api/status")).bearer_auth(&bob)).await;
    assert_error(status, &body, 403, "90305");
    // The session itself is left as it was.
    let (_, containers) = send(server.admin(Method::GET, "/api/v1/containers")).await;
    assert_eq!(containers[0]["status"], "running", "{containers}");

    let (status, _) =
        send(server.admin(Method::POST, &format!("/api/v1/users/{bob_id}/enable"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(status_with(cookie).await, StatusCode::OK);
    let (status, _) = server.stop_session(&bob, &project).await;
    assert_eq!(status, StatusCode::OK);
}
