//! The web app's sign-in: name + password give a short-lived token and an HttpOnly,
//! SameSite=Strict refresh cookie scoped to /api/v1/auth; admins set passwords; wrong ones are
//! refused alike for unknown names, counted and limited; signing out ends every token the
//! sign-in handed out.

use crate::on_both_backends;
use crate::support::{Backend, TestServer, assert_error, send};
use reqwest::header::{CACHE_CONTROL, COOKIE, RETRY_AFTER, SET_COOKIE};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

on_both_backends!(
    wrong_and_missing_passwords_are_refused_alike,
    a_sign_in_gives_a_short_token_and_a_strict_refresh_cookie,
    the_refresh_cookie_gives_new_tokens_and_is_no_bearer_token,
    signing_out_ends_every_token_of_the_sign_in,
    a_disabled_users_password_signs_nobody_in,
    only_admins_set_others_passwords_and_users_change_their_own,
    failed_password_sign_ins_are_limited_per_address,
    a_browsers_websocket_carries_its_token_as_a_subprotocol,
);

/// Signs in; returns the answer's status and body, and the refresh cookie's `name=value` and
/// its attributes when one was set.
async fn sign_in(
    server: &TestServer,
    name: &str,
    password: &str,
) -> (StatusCode, Value, Option<String>) {
    let response = server
        .anon(Method::POST, "/api/v1/auth/sign-in")
        .json(&json!({ "name": name, "password": password }))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let cookie = response
        .headers()
        .get(SET_COOKIE)
        .map(|v| v.to_str().unwrap().to_string());
    if status.is_success() {
        assert_eq!(response.headers()[CACHE_CONTROL], "no-store");
    }
    (status, response.json().await.unwrap(), cookie)
}

async fn set_password(
    server: &TestServer,
    as_token: &str,
    user: &str,
    body: Value,
) -> (StatusCode, Value) {
    send(
        server
            .with_token(
                as_token,
                Method::PUT,
                &format!("/api/v1/users/{user}/password"),
            )
            .json(&body),
    )
    .await
}

async fn me(server: &TestServer, token: &str) -> (StatusCode, Value) {
    send(server.with_token(token, Method::GET, "/api/v1/users/me")).await
}

/// The admin gives user `alice` the password `correct horse`.
#[track_caller]
fn set_correct_horse<'a>(server: &'a TestServer, alice: &'a str) -> impl Future<Output = ()> + 'a {
    let caller = std::panic::Location::caller();
    async move {
        let (status, body) = set_password(
            server,
            &server.admin_token,
            alice,
            json!({"password": "correct horse"}),
        )
        .await;
        crate::support::expect_status(caller, status, StatusCode::NO_CONTENT, &body);
    }
}

/// A server where alice has the password `correct horse`: the server and alice's id.
async fn alice_with_a_password(backend: Backend) -> (TestServer, String) {
    let server = TestServer::start(backend).await;
    let (alice, _) = server.user("alice").await;
    set_correct_horse(&server, &alice).await;
    (server, alice)
}

/// Alice signed in: her session (token, expiry, user) and the refresh cookie's `name=value`
/// with its attributes.
#[track_caller]
fn alice_signed_in(server: &TestServer) -> impl Future<Output = (Value, String)> + '_ {
    let caller = std::panic::Location::caller();
    async move {
        let (status, session, cookie) = sign_in(server, "alice", "correct horse").await;
        crate::support::expect_status(caller, status, StatusCode::OK, &session);
        (session, cookie.expect("a refresh cookie"))
    }
}

/// With no password set there is no sign-in, answered as a wrong one; a short password is
/// refused; a wrong password and an unknown name are answered alike, with no cookie.
async fn wrong_and_missing_passwords_are_refused_alike(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (alice, _) = server.user("alice").await;
    let (status, body, cookie) = sign_in(&server, "alice", "anything-at-all").await;
    assert_error(status, &body, 401, "90308");
    assert!(cookie.is_none());
    let (status, body) = set_password(
        &server,
        &server.admin_token,
        &alice,
        json!({"password": "short"}),
    )
    .await;
    assert_error(status, &body, 422, "90402");
    set_correct_horse(&server, &alice).await;
    for (name, password) in [("alice", "wrong horse"), ("nobody", "correct horse")] {
        let (status, body, cookie) = sign_in(&server, name, password).await;
        assert_error(status, &body, 401, "90308");
        assert_eq!(body["message"], "wrong name or password");
        assert!(cookie.is_none());
    }
}

/// The right password gives a token of 15 minutes that works, and an HttpOnly,
/// SameSite=Strict refresh cookie of 12 hours scoped to /api/v1/auth.
async fn a_sign_in_gives_a_short_token_and_a_strict_refresh_cookie(backend: Backend) {
    let (server, alice) = alice_with_a_password(backend).await;
    let (session, cookie) = alice_signed_in(&server).await;
    assert_eq!(session["user"]["name"], "alice");
    for attribute in [
        "HttpOnly",
        "SameSite=Strict",
        "Path=/api/v1/auth",
        "Max-Age=43200",
    ] {
        assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
    }
    let expires: chrono::DateTime<chrono::Utc> =
        session["expires_at"].as_str().unwrap().parse().unwrap();
    let left = expires - chrono::Utc::now();
    assert!(left <= chrono::Duration::minutes(15) && left > chrono::Duration::minutes(14));
    let (status, body) = me(&server, session["token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["id"], alice);
}

/// The cookie's `name=value`.
fn cookie_pair(cookie: &str) -> String {
    cookie.split(';').next().unwrap().to_string()
}

/// `POST /auth/refresh` with the refresh cookie `pair` among others.
async fn refresh(server: &TestServer, pair: &str) -> (StatusCode, Value) {
    send(
        server
            .anon(Method::POST, "/api/v1/auth/refresh")
            .header(COOKIE, format!("theme=dark; {pair}")),
    )
    .await
}

/// The refresh cookie gives a new token (none without it); its secret is no Bearer token.
async fn the_refresh_cookie_gives_new_tokens_and_is_no_bearer_token(backend: Backend) {
    let (server, _) = alice_with_a_password(backend).await;
    let (session, cookie) = alice_signed_in(&server).await;
    let pair = cookie_pair(&cookie);
    let secret = pair.split_once('=').unwrap().1;
    let (status, body) = me(&server, secret).await;
    assert_error(status, &body, 401, "90302");
    let (status, again) = refresh(&server, &pair).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    let second = again["token"].as_str().unwrap();
    assert_ne!(second, session["token"].as_str().unwrap());
    assert_eq!(me(&server, second).await.0, StatusCode::OK);
    let (status, body) = send(server.anon(Method::POST, "/api/v1/auth/refresh")).await;
    assert_error(status, &body, 401, "90301");
}

/// Signing out ends the sign-in, every token it handed out (refreshed ones too), and clears
/// the cookie.
async fn signing_out_ends_every_token_of_the_sign_in(backend: Backend) {
    let (server, _) = alice_with_a_password(backend).await;
    let (session, cookie) = alice_signed_in(&server).await;
    let pair = cookie_pair(&cookie);
    let (status, again) = refresh(&server, &pair).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    let out = server
        .anon(Method::POST, "/api/v1/auth/sign-out")
        .header(COOKIE, &pair)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::NO_CONTENT);
    let cleared = out.headers()[SET_COOKIE].to_str().unwrap();
    assert!(
        cleared.starts_with("weft_refresh=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    for token in [&session["token"], &again["token"]] {
        let (status, body) = me(&server, token.as_str().unwrap()).await;
        assert_error(status, &body, 401, "90304");
    }
    let (status, body) = refresh(&server, &pair).await;
    assert_error(status, &body, 401, "90304");
}

/// A disabled user's right password signs nobody in.
async fn a_disabled_users_password_signs_nobody_in(backend: Backend) {
    let (server, alice) = alice_with_a_password(backend).await;
    alice_signed_in(&server).await;
    let (status, body) =
        send(server.admin(Method::POST, &format!("/api/v1/users/{alice}/disable"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body, cookie) = sign_in(&server, "alice", "correct horse").await;
    assert_error(status, &body, 401, "90307");
    assert!(cookie.is_none());
}

async fn only_admins_set_others_passwords_and_users_change_their_own(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (alice, alice_token) = server.user("alice").await;
    let (bob, _) = server.user("bob").await;
    let (status, body) = set_password(
        &server,
        &alice_token,
        &bob,
        json!({"password": "mallory's choice"}),
    )
    .await;
    assert_error(status, &body, 403, "90305");
    let (status, body) = set_password(
        &server,
        &server.admin_token,
        &alice,
        json!({"password": "first password"}),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    // Her own: only with the current one.
    let (status, body) = set_password(
        &server,
        &alice_token,
        &alice,
        json!({"password": "second password"}),
    )
    .await;
    assert_error(status, &body, 403, "90309");
    let (status, body) = set_password(
        &server,
        &alice_token,
        &alice,
        json!({"password": "second password", "current_password": "not it at all"}),
    )
    .await;
    assert_error(status, &body, 403, "90309");
    let (status, body) = set_password(
        &server,
        &alice_token,
        &alice,
        json!({"password": "second password", "current_password": "first password"}),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(
        sign_in(&server, "alice", "first password").await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        sign_in(&server, "alice", "second password").await.0,
        StatusCode::OK
    );
    let (status, body) = set_password(
        &server,
        &server.admin_token,
        "no-such-user",
        json!({"password": "whatever it is"}),
    )
    .await;
    assert_error(status, &body, 404, "90203");
}

async fn failed_password_sign_ins_are_limited_per_address(backend: Backend) {
    let server = TestServer::start_with(backend, |c| {
        c.api.sign_in_max_failures = 3;
        c.api.sign_in_window_secs = 600;
    })
    .await;
    let (alice, _) = server.user("alice").await;
    set_password(
        &server,
        &server.admin_token,
        &alice,
        json!({"password": "correct horse"}),
    )
    .await;
    for guess in ["guess one", "guess two", "guess three"] {
        let (status, body, _) = sign_in(&server, "alice", guess).await;
        assert_error(status, &body, 401, "90308");
    }
    // Now even the right password is refused from this address, unchecked.
    let response = server
        .anon(Method::POST, "/api/v1/auth/sign-in")
        .json(&json!({ "name": "alice", "password": "correct horse" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().get(RETRY_AFTER).is_some());
    let body: Value = response.json().await.unwrap();
    assert_error(StatusCode::TOO_MANY_REQUESTS, &body, 429, "90205");
    // Another address is not affected.
    let other = reqwest::Client::builder()
        .local_address("127.0.0.2".parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap();
    let (status, body) = send(
        other
            .post(server.url("/api/v1/auth/sign-in"))
            .json(&json!({ "name": "alice", "password": "correct horse" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// Browsers cannot set headers on a WebSocket handshake: the app offers its token as the
/// subprotocol `weft.bearer.<token>` beside `weft`, and the answer selects `weft`. A wrong
/// token there is refused like a wrong Bearer token.
async fn a_browsers_websocket_carries_its_token_as_a_subprotocol(backend: Backend) {
    use futures::StreamExt as _;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
    let server = TestServer::start(backend).await;
    let workflow = server
        .create_workflow(
            &server.admin_token,
            json!({"name": "one", "nodes": [{"id": "f", "type": "fibo", "config": {"n": 5}}]}),
        )
        .await;
    let run = server
        .execute(
            &server.admin_token,
            workflow["id"].as_str().unwrap(),
            json!({}),
        )
        .await;
    let request = |token: &str| {
        let mut request = format!("ws://{}/api/v1/runs/{run}/events", server.addr)
            .into_client_request()
            .unwrap();
        request.headers_mut().insert(
            "sec-websocket-protocol",
            format!("weft, weft.bearer.{token}").parse().unwrap(),
        );
        request
    };
    let (mut socket, response) = crate::support::loopback::ws_connect(request(&server.admin_token))
        .await
        .expect("the handshake succeeds");
    assert_eq!(response.headers()["sec-websocket-protocol"], "weft");
    let first = socket.next().await.expect("a message").expect("a frame");
    let first: Value = serde_json::from_str(first.to_text().unwrap()).unwrap();
    assert_eq!(first["type"], "snapshot", "{first}");
    assert_eq!(first["run"]["id"], run.as_str());

    let refused = crate::support::loopback::ws_connect(request("weft_not-a-token")).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED)
        }
        other => panic!(
            "a wrong token was let in: {:?}",
            other.map(|(_, r)| r.status())
        ),
    }
}
