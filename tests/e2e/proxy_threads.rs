//! `weft serve`'s sessions listener, served by event loops of their own (`[workspaces]
//! proxy_threads`): a session's requests from many connections at once and its WebSocket go
//! through it, and SIGTERM still stops Weft.

use crate::support::docker::{self, Cleanup};
use crate::support::loopback::ws_connect;
use crate::support::{WeftProcess, bootstrap, send, wait, wait_for_session, weft};
use futures::{SinkExt, StreamExt};
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// The proxy benchmark's upstream (tests/images/build.sh) as the code-server kind: nginx
/// serving `/small.txt` (64 bytes) and echoing WebSockets on `/ws`.
const UPSTREAM: &str = "[workspaces.code_server]\nimage = \"weft-test/upstream:1\"\nport = 8888\n\
    command = [\"/usr/local/bin/upstream\"]\nready_path = \"small.txt\"\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weft_serve_proxies_sessions_on_its_own_threads() {
    docker::require();
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_str().unwrap().to_string();
    let config = data.path().join("weft.toml");
    std::fs::write(&config, UPSTREAM).unwrap();
    let token = bootstrap(&["--name", "admin"], &["--data-dir", &dir]);
    let mut process = WeftProcess::serve(
        weft()
            .env("WEFT_LISTEN", "127.0.0.1:0")
            .env("WEFT_WORKSPACES__PROXY_THREADS", "2")
            .arg("--config")
            .arg(&config)
            .args(["serve", "--data-dir", &dir]),
    );
    let base = process.base_url();
    // A thread takes its name as it starts running, a moment after it is made.
    let proxy_threads = || {
        let mut threads: Vec<String> = std::fs::read_dir(format!("/proc/{}/task", process.pid()))
            .unwrap()
            .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
            .map(|name| name.trim().to_string())
            .filter(|name| name.starts_with("weft-proxy"))
            .collect();
        threads.sort();
        threads
    };
    let threads = wait::until(
        "the proxy threads named",
        Duration::from_secs(10),
        || async {
            let threads = proxy_threads();
            if threads.len() < 2 {
                Err(threads)
            } else {
                Ok(threads)
            }
        },
    )
    .await;
    assert_eq!(threads, ["weft-proxy-0", "weft-proxy-1"]);
    let sessions = process.logged_url("sessions listening on ");
    let client = reqwest::Client::new();
    let api = |method: Method, path: &str| {
        client
            .request(method, format!("{base}{path}"))
            .bearer_auth(&token)
    };
    let (status, project) =
        send(api(Method::POST, "/api/v1/projects").json(&json!({ "name": "threads" }))).await;
    assert_eq!(status, StatusCode::CREATED, "{project}");
    let project = project["id"].as_str().unwrap();
    let path = format!("/api/v1/projects/{project}/session");
    let (status, opened) =
        send(api(Method::POST, &path).json(&json!({ "kind": "code-server" }))).await;
    assert_eq!(status, StatusCode::CREATED, "{opened}");
    let session = wait_for_session(&client, &base, &token, project).await;
    let (_, container) = send(api(
        Method::GET,
        &format!(
            "/api/v1/containers/{}",
            session["container_id"].as_str().unwrap()
        ),
    ))
    .await;
    let engine = container["engine_id"].as_str().unwrap();
    let install = docker::inspect(engine).unwrap()["Config"]["Labels"]["weft.install"]
        .as_str()
        .unwrap()
        .to_string();
    let _cleanup = Cleanup(install);
    let host = format!(
        "{}.{}",
        session["session_id"].as_str().unwrap(),
        sessions
            .trim_start_matches("http://")
            .replace("127.0.0.1", "localhost")
    );

    // Connections enough to land on both threads, each with requests kept alive.
    let mut clients = Vec::new();
    for _ in 0..16 {
        let (sessions, host, token) = (sessions.clone(), host.clone(), token.clone());
        clients.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            for _ in 0..10 {
                let answer = http
                    .get(format!("{sessions}/small.txt"))
                    .header("host", &host)
                    .bearer_auth(&token)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(answer.status(), StatusCode::OK);
                assert_eq!(answer.bytes().await.unwrap().len(), 64);
            }
        }));
    }
    for client in clients {
        client.await.unwrap();
    }
    let (status, _) = send(
        client
            .get(format!("{sessions}/small.txt"))
            .header("host", &host)
            .bearer_auth("weft_not_a_token"),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "auth on every request");

    let mut request = format!("ws://{host}/ws").into_client_request().unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (mut socket, _) = ws_connect(request).await.unwrap();
    for n in 0..3u8 {
        socket
            .send(Message::Binary(vec![n; 64].into()))
            .await
            .unwrap();
        match socket.next().await {
            Some(Ok(Message::Binary(echo))) => assert_eq!(echo[..], [n; 64]),
            other => panic!("no echo: {other:?}"),
        }
    }
    drop(socket);

    let (status, _) = send(api(Method::DELETE, &path)).await;
    assert!(status.is_success(), "{status}");
    let status = process.terminate(Duration::from_secs(30));
    assert!(status.success(), "weft exited with {status}");
    assert!(process.stderr_contains("weft stopped"));
}
