//! Attacks whose victim is a browser, in headless Chromium (Debian's `chromium`, driven by
//! `playwright-core` from tests/browser; the test command installs both) against real sessions
//! on the real engine and images.

use crate::support::docker;
use crate::support::{Backend, TestServer, send};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

const BROWSER_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/browser");

/// Fails the test with what to do when Chromium or playwright-core is missing.
fn require_browser() {
    let chromium = std::env::var("WEFT_TEST_CHROMIUM").unwrap_or("/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists()
            && Path::new(BROWSER_DIR)
                .join("node_modules/playwright-core")
                .is_dir(),
        "no {chromium} or no tests/browser/node_modules: run the tests with tests/run.sh (it \
         installs Debian's chromium and runs `npm ci` in tests/browser)"
    );
}

/// Runs `node tests/browser/SCRIPT ARGS` and returns what it printed, parsed as JSON.
fn node(script: &str, args: &[&str]) -> Value {
    let out = std::process::Command::new("node")
        .arg(Path::new(BROWSER_DIR).join(script))
        .args(args)
        .output()
        .expect("run node");
    assert!(
        out.status.success(),
        "{script} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{script} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

async fn ready(server: &TestServer, token: &str, project: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let (_, session) = send(server.with_token(
            token,
            Method::GET,
            &format!("/api/v1/projects/{project}/session"),
        ))
        .await;
        match session["status"].as_str() {
            Some("ready") => return session,
            Some("failed") => panic!("the session failed: {session}"),
            _ => {}
        }
        assert!(Instant::now() < deadline, "not ready in time: {session}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A victim signed in to their Jupyter session opens the link to an attacker's session. The
/// attacker's page (served by their own server in their workspace, with the headers they
/// chose) tries to read and start kernels in the victim's session with the victim's cookie,
/// to call the API with the browser's credentials, and to register a service worker for the
/// whole origin. With one origin for the API and every session, all of it worked; with an
/// origin per session, nothing does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_session_page_reaches_neither_the_victims_session_nor_the_api() {
    docker::require();
    require_browser();
    let (server, _cleanup) = docker::server(Backend::Sqlite, |c| {
        c.workspaces.start_timeout_secs = 90;
        c.workspaces.memory = "512Mi".into();
    })
    .await;
    let (_, alice) = server.user("alice").await;
    let (_, mallory) = server.user("mallory").await;

    let thesis = server.project(&alice, "thesis").await;
    let (status, victim) = server.open_session(&alice, &thesis, "jupyter").await;
    assert_eq!(status, StatusCode::CREATED, "{victim}");
    let bait = server.project(&mallory, "bait").await;
    for (name, text) in [
        ("evil.html", include_str!("../browser/hostile/evil.html")),
        ("sw.js", include_str!("../browser/hostile/sw.js")),
        ("serve.py", include_str!("../browser/hostile/serve.py")),
    ] {
        let (status, body) = send(
            server
                .with_token(
                    &mallory,
                    Method::PUT,
                    &format!("/api/v1/projects/{bait}/files/{name}"),
                )
                .body(text),
        )
        .await;
        assert!(status.is_success(), "{body}");
    }
    let (status, attacker) = server.open_session(&mallory, &bait, "code-server").await;
    assert_eq!(status, StatusCode::CREATED, "{attacker}");
    ready(&server, &alice, &thesis).await;
    let attacker = ready(&server, &mallory, &bait).await;
    let victim_site = victim["url"].as_str().unwrap();
    let attacker_site = attacker["url"].as_str().unwrap();

    // The attacker starts their server in their workspace (as their code-server terminal
    // would) and waits until it answers through code-server's /proxy/9000/.
    let (_, container) = send(server.with_token(
        &mallory,
        Method::GET,
        &format!(
            "/api/v1/containers/{}",
            attacker["container_id"].as_str().unwrap()
        ),
    ))
    .await;
    let engine = container["engine_id"].as_str().unwrap();
    let (ok, _, err) = docker::docker(&[
        "exec",
        "-d",
        "-w",
        "/workspace",
        engine,
        "python3",
        "serve.py",
        "9000",
    ]);
    assert!(ok, "{err}");
    let page = format!("{attacker_site}proxy/9000/evil.html");
    let deadline = Instant::now() + Duration::from_secs(20);
    while send(server.client.get(&page).bearer_auth(&mallory)).await.0 != StatusCode::OK {
        assert!(
            Instant::now() < deadline,
            "the attacker's server never answered"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The link the attacker sends: their session's, with a fresh one-time token.
    let (_, again) = server.open_session(&mallory, &bait, "code-server").await;
    let lure = reqwest::Url::parse_with_params(
        &page,
        [
            ("victim", victim_site),
            ("api", &server.url("")),
            ("token", again["access_token"].as_str().unwrap()),
        ],
    )
    .unwrap();
    let seen = node(
        "hostile-page.mjs",
        &[
            victim["link"].as_str().unwrap(),
            &format!("{victim_site}api/kernels"),
            lure.as_str(),
        ],
    );
    assert_eq!(
        seen["own"], 200,
        "the victim's browser opens its own session: {seen}"
    );
    let attack = &seen["attack"];
    for name in ["read_victim_kernels", "call_api"] {
        assert_ne!(attack[name]["status"], 200, "{name} answered: {seen}");
    }
    assert!(
        attack["service_worker"]["error"].is_string(),
        "a service worker took the whole origin: {seen}"
    );
    let (status, kernels) = send(
        server
            .client
            .get(format!("{victim_site}api/kernels"))
            .bearer_auth(&alice),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{kernels}");
    assert_eq!(
        kernels,
        serde_json::json!([]),
        "the page started a kernel in the victim's session: {seen}"
    );
}
