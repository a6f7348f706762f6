//! Workspace sessions on the real engine with the real Jupyter image (`weft/jupyter:2`, built
//! by the test command): files in, Jupyter's REST API and a kernel WebSocket through the proxy
//! on the session's own origin, a file written by the kernel synced back, stop, reopen, and the
//! file is there.

use crate::on_both_backends;
use crate::support::docker::{self, Cleanup};
use crate::support::loopback::{self, ws_connect};
use crate::support::{Backend, Site, TestServer, assert_error, millis, send, wait};
use futures::{SinkExt, StreamExt};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Request;

/// A WebSocket request for `path` on the session served at `site` (its origin's root URL), as
/// `token`.
fn session_ws(site: &str, token: &str, path: &str) -> Request {
    let mut request = format!("{}{path}", site.replacen("http", "ws", 1))
        .into_client_request()
        .expect("WebSocket URL");
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("header"),
    );
    request
}

// The ones whose state the database carries across requests and restarts; the others run on
// SQLite alone, each costing a real workspace server's start.
on_both_backends!(
    the_one_time_link_becomes_a_host_only_cookie,
    sync_and_stop_save_the_workspace_and_reopening_brings_it_back,
    a_session_survives_a_restart,
    the_reaper_saves_and_stops_idle_sessions,
    time_quota_stops_and_refuses
);

/// Opening the project's session again returns the same session with a fresh one-time link
/// token; the new link opens it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opening_again_gives_the_same_session_a_fresh_token() {
    docker::require();
    let (server, _cleanup) = docker::server(Backend::Sqlite, |c| {
        c.workspaces.start_timeout_secs = 90;
        c.workspaces.memory = "512Mi".into();
    })
    .await;
    let (_, bob) = server.user("bob").await;
    let project = server.project(&bob, "twice").await;
    let (status, first) = server.open_session(&bob, &project, "jupyter").await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    server.session_ready(&bob, &project).await;
    let (status, again) = server.open_session(&bob, &project, "jupyter").await;
    assert!(status.is_success(), "{again}");
    assert_eq!(again["session_id"], first["session_id"], "{again}");
    let (old, new) = (
        first["access_token"].as_str().unwrap(),
        again["access_token"].as_str().unwrap(),
    );
    assert_ne!(old, new, "a fresh token");
    let browser = loopback::no_redirects();
    let opened = browser
        .get(format!(
            "{}api/status?token={new}",
            again["url"].as_str().unwrap()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        opened.status(),
        StatusCode::SEE_OTHER,
        "the new link opens it"
    );
    assert!(opened.headers().contains_key("set-cookie"));
    let (status, stopped) = server.stop_session(&bob, &project).await;
    assert_eq!(status, StatusCode::OK, "{stopped}");
}

/// The address of a ready session's container on its engine network, from `docker inspect`.
async fn session_ip(server: &TestServer, token: &str, session: &Value) -> String {
    let (_, container) = send(server.with_token(
        token,
        Method::GET,
        &format!(
            "/api/v1/containers/{}",
            session["container_id"].as_str().unwrap()
        ),
    ))
    .await;
    let engine = docker::inspect(container["engine_id"].as_str().unwrap()).unwrap();
    let networks = engine["NetworkSettings"]["Networks"].as_object().unwrap();
    networks
        .values()
        .find_map(|n| n["IPAddress"].as_str().filter(|ip| !ip.is_empty()))
        .expect("the container has an address")
        .to_string()
}

/// Sends `code` to a kernel over its WebSocket (through the proxy) without waiting for it: the
/// socket and the request's id.
async fn begin_in_kernel(
    token: &str,
    site: &str,
    kernel: &str,
    code: &str,
) -> (KernelSocket, String) {
    let request = session_ws(site, token, &format!("api/kernels/{kernel}/channels"));
    let (mut socket, _) = ws_connect(request)
        .await
        .expect("kernel WebSocket through the proxy");
    let msg_id = uuid::Uuid::new_v4().to_string();
    let execute = json!({
        "header": { "msg_id": msg_id, "username": "test", "session": "test", "msg_type": "execute_request", "version": "5.3", "date": "" },
        "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
        "content": { "code": code, "silent": false, "store_history": true, "user_expressions": {}, "allow_stdin": false, "stop_on_error": true }
    });
    socket
        .send(Message::Text(execute.to_string().into()))
        .await
        .unwrap();
    (socket, msg_id)
}

/// A kernel's WebSocket, as [`begin_in_kernel`] opened it.
type KernelSocket = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// The next message of `socket` answering request `msg_id` (within a minute).
async fn next_reply(socket: &mut KernelSocket, msg_id: &str) -> Value {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(60), socket.next())
            .await
            .expect("the kernel answered in time")
            .expect("socket open")
            .expect("message");
        let Ok(text) = message.to_text() else {
            continue;
        };
        let Ok(reply) = serde_json::from_str::<Value>(text) else {
            continue;
        };
        if reply["parent_header"]["msg_id"] == msg_id {
            return reply;
        }
    }
}

/// Reads `socket` until the kernel says it is busy with request `msg_id`.
async fn wait_busy(socket: &mut KernelSocket, msg_id: &str) {
    while next_reply(socket, msg_id).await["content"]["execution_state"] != "busy" {}
}

/// Reads `socket` until request `msg_id` is done; returns its stdout.
async fn finish_in_kernel(socket: &mut KernelSocket, msg_id: &str) -> String {
    let mut stdout = String::new();
    let (mut replied, mut idle) = (false, false);
    while !(replied && idle) {
        let reply = next_reply(socket, msg_id).await;
        // The reply (shell) can overtake the output (iopub): done once both the reply and
        // the kernel's return to idle have come.
        match reply["header"]["msg_type"].as_str() {
            Some("stream") => {
                stdout.push_str(reply["content"]["text"].as_str().unwrap_or_default())
            }
            Some("error") => panic!("the kernel raised: {reply}"),
            Some("execute_reply") => replied = true,
            Some("status") if reply["content"]["execution_state"] == "idle" => idle = true,
            _ => {}
        }
    }
    stdout
}

/// Runs `code` in a kernel over its WebSocket (through the proxy) and returns its stdout.
pub(crate) async fn run_in_kernel(token: &str, site: &str, kernel: &str, code: &str) -> String {
    let (mut socket, msg_id) = begin_in_kernel(token, site, kernel, code).await;
    finish_in_kernel(&mut socket, &msg_id).await
}

/// A Jupyter test server on `backend` with users bob and eve (tokens), and bob's project
/// "analysis" holding `data/input.txt` (21) and `stale.txt`.
async fn jupyter_server(backend: Backend) -> (TestServer, Cleanup, String, String, String) {
    docker::require();
    let image = weft::config::WorkspacesConfig::default().jupyter.image;
    assert!(
        docker::docker(&["image", "inspect", &image]).0,
        "{image} is missing: run tests/run.sh (it builds it)"
    );
    let (server, cleanup) = docker::server(backend, |c| {
        c.workspaces.start_timeout_secs = 90;
        c.workspaces.memory = "512Mi".into();
    })
    .await;
    let (_, bob) = server.user("bob").await;
    let (_, eve) = server.user("eve").await;
    let project = server.project(&bob, "analysis").await;
    server
        .put_file(&bob, &project, "data/input.txt", "21")
        .await;
    server
        .put_file(&bob, &project, "stale.txt", "delete me in the workspace")
        .await;
    (server, cleanup, bob, eve, project)
}

/// Bob's ready Jupyter session on `project`, reached through its one-time link: the session's
/// id, its site (origin root URL), the session as ready, and the cookie the link gave.
async fn opened_by_link(
    server: &TestServer,
    bob: &str,
    project: &str,
) -> (String, String, Value, String) {
    let (status, opened) = server.open_session(bob, project, "jupyter").await;
    assert_eq!(status, StatusCode::CREATED, "{opened}");
    let session = opened["session_id"].as_str().unwrap().to_string();
    let site = opened["url"].as_str().unwrap().to_string();
    let access = opened["access_token"].as_str().unwrap();
    let ready = server.session_ready(bob, project).await;
    let first = loopback::no_redirects()
        .get(format!("{site}api/status?token={access}"))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::SEE_OTHER);
    let cookie = first.headers()["set-cookie"].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_string();
    (session, site, ready, cookie)
}

/// A session opens on its own origin with a one-time link token, spent on first use for a
/// cookie of that host alone; anyone else, and another site's page, are refused; a link from
/// anywhere opens the page.
async fn the_one_time_link_becomes_a_host_only_cookie(backend: Backend) {
    let (server, _cleanup, bob, eve, project) = jupyter_server(backend).await;
    // Open: a one-time token, then ready.
    let (status, opened) = server.open_session(&bob, &project, "jupyter").await;
    assert_eq!(status, StatusCode::CREATED, "{opened}");
    let session = opened["session_id"].as_str().unwrap().to_string();
    let access = opened["access_token"].as_str().unwrap().to_string();
    // Its own origin, on the sessions listener.
    let site = format!(
        "http://{session}.localhost:{}/",
        server.sessions_addr.port()
    );
    assert_eq!(opened["url"], site.as_str());
    assert_eq!(opened["link"], format!("{site}?token={access}"));
    let (status, body) = server.open_session(&bob, &project, "code-server").await;
    assert_error(status, &body, 409, "10209");
    let ready = server.session_ready(&bob, &project).await;
    assert_eq!(ready["session_id"], session.as_str());
    assert!(
        ready.get("access_token").is_none() && ready.get("link").is_none(),
        "the token is shown once"
    );

    // The token is spent on first use for a cookie of the session's host alone.
    let no_redirects = loopback::no_redirects();
    let url = |path: &str| format!("{site}{path}");
    let first = no_redirects
        .get(url(&format!("api/contents/data/input.txt?token={access}")))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::SEE_OTHER);
    assert_eq!(first.headers()["location"], "/api/contents/data/input.txt");
    let set_cookie = first.headers()["set-cookie"].to_str().unwrap().to_string();
    let attributes: Vec<&str> = set_cookie.split("; ").skip(1).collect();
    assert_eq!(
        attributes,
        ["Path=/", "HttpOnly", "SameSite=Lax"],
        "host-only (no Domain), not Secure over http: {set_cookie}"
    );
    let cookie = set_cookie.split(';').next().unwrap().to_string();
    let content: Value = no_redirects
        .get(url("api/contents/data/input.txt"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        content["content"], "21",
        "the project's files are in /workspace"
    );
    let again = no_redirects
        .get(url(&format!("api/status?token={access}")))
        .send()
        .await
        .unwrap();
    // A spent token opens nothing.
    let status = again.status();
    assert_error(status, &again.json().await.unwrap(), 403, "90305");
    let (status, body) = send(no_redirects.get(url("api/status")).bearer_auth(&eve)).await;
    assert_error(status, &body, 403, "90305");
    // No credential at all: refused the same way.
    let (status, body) = send(no_redirects.get(url("api/status"))).await;
    assert_error(status, &body, 403, "90305");
    // Another site's page cannot use the cookie; a link from anywhere opens the page.
    let (status, body) = send(
        no_redirects
            .post(url("api/kernels"))
            .header("cookie", &cookie)
            .header("origin", "http://attacker.localhost")
            .header("sec-fetch-site", "cross-site"),
    )
    .await;
    assert_error(status, &body, 403, "10305");
    let navigation = no_redirects
        .get(url("api/status"))
        .header("cookie", &cookie)
        .header("sec-fetch-site", "cross-site")
        .header("sec-fetch-mode", "navigate")
        .header("sec-fetch-dest", "document")
        .send()
        .await
        .unwrap();
    assert_eq!(navigation.status(), StatusCode::OK);
    let (status, stopped) = server.stop_session(&bob, &project).await;
    assert_eq!(status, StatusCode::OK, "{stopped}");
}

/// Only the session's origin serves it: not the API's listener, not another host name; the
/// workspace server reached around Weft demands its own token; its own errors pass through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_sessions_origin_serves_it() {
    let (server, _cleanup, bob, _, project) = jupyter_server(Backend::Sqlite).await;
    let (session, site, ready, cookie) = opened_by_link(&server, &bob, &project).await;
    let no_redirects = loopback::no_redirects();
    let url = |path: &str| format!("{site}{path}");
    // Neither the API's listener nor another host name serves the session.
    let (status, body) = send(
        no_redirects
            .get(format!("http://{}/s/{session}/api/status", server.addr))
            .bearer_auth(&bob),
    )
    .await;
    assert_error(status, &body, 404, "90201");
    for host in [
        format!("127.0.0.1:{}", server.sessions_addr.port()),
        format!("{session}.evil.localhost:{}", server.sessions_addr.port()),
    ] {
        let (status, body) = send(
            no_redirects
                .get(format!("http://{}/api/status", server.sessions_addr))
                .header("host", host)
                .header("cookie", &cookie),
        )
        .await;
        assert_error(status, &body, 404, "10208");
    }
    // Jupyter itself, reached around Weft, demands its token.
    let direct = format!(
        "http://{}:8888/api/kernels",
        session_ip(&server, &bob, &ready).await
    );
    let (status, _) = send(no_redirects.get(&direct)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "no token");
    let (status, _) = send(no_redirects.get(&direct).header("cookie", &cookie)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "Weft's cookie is no token");
    // Jupyter's own errors pass through untouched.
    let missing = no_redirects
        .get(url("api/contents/nope.txt"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let answer = missing.text().await.unwrap();
    assert!(
        answer.contains("nope.txt") && !answer.contains("\"code\""),
        "Jupyter's answer, not Weft's: {answer}"
    );
    let (status, stopped) = server.stop_session(&bob, &project).await;
    assert_eq!(status, StatusCode::OK, "{stopped}");
}

/// Work done in the workspace (a kernel through the proxy writes a file, deletes one) is
/// synced on demand (ignored folders left out) and by the stop; reopened, the files are there.
async fn sync_and_stop_save_the_workspace_and_reopening_brings_it_back(backend: Backend) {
    let (server, _cleanup, bob, _, project) = jupyter_server(backend).await;
    let (session, site, _, cookie) = opened_by_link(&server, &bob, &project).await;
    let no_redirects = loopback::no_redirects();
    let url = |path: &str| format!("{site}{path}");
    let files = |path: &str| format!("/api/v1/projects/{project}/files/{path}");
    // A kernel through the proxy: REST to start it, its WebSocket to run code that writes a file.
    let (status, kernel) = send(
        no_redirects
            .post(url("api/kernels"))
            .header("cookie", &cookie)
            .json(&json!({ "name": "python3" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{kernel}");
    let kernel = kernel["id"].as_str().unwrap().to_string();
    let out = run_in_kernel(
        &bob,
        &site,
        &kernel,
        "import os\nn = int(open('data/input.txt').read())\nopen('result.txt', 'w').write(str(n * 2))\nos.remove('stale.txt')\nos.makedirs('__pycache__', exist_ok=True)\nopen('__pycache__/x.pyc', 'w').write('junk')\nprint(n * 2)",
    )
    .await;
    assert_eq!(out.trim(), "42");

    // Sync now: the new file in, the deleted one out, the ignored folder left out.
    let (status, report) = send(server.with_token(
        &bob,
        Method::POST,
        &format!("/api/v1/projects/{project}/session/sync"),
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["written"], json!(["result.txt"]));
    assert_eq!(report["deleted"], json!(["stale.txt"]));
    let stored = server.download(&bob, &files("result.txt")).await;
    assert_eq!(stored, "42");
    assert_eq!(
        server.file_paths(&bob, &project).await,
        ["data/input.txt", "result.txt"]
    );

    // A change after the sync is saved by the stop.
    run_in_kernel(
        &bob,
        &site,
        &kernel,
        "open('late.txt', 'w').write('saved at stop')",
    )
    .await;
    let (status, stopped) = server.stop_session(&bob, &project).await;
    assert_eq!(status, StatusCode::OK, "{stopped}");
    assert_eq!(stopped["status"], "stopped");
    // The answer says what the stop's sync brought back.
    assert_eq!(stopped["sync"]["written"], json!(["late.txt"]), "{stopped}");
    assert_eq!(stopped["sync"]["refused_count"], 0, "{stopped}");
    let container = stopped["container_id"].as_str().unwrap();
    let (status, body) = send(server.with_token(
        &bob,
        Method::GET,
        &format!("/api/v1/containers/{container}"),
    ))
    .await;
    // The container is gone.
    assert_error(status, &body, 404, "10201");
    let (status, body) = send(no_redirects.get(url("api/status")).bearer_auth(&bob)).await;
    assert_error(status, &body, 409, "10210");
    let late = server.download(&bob, &files("late.txt")).await;
    assert_eq!(late, "saved at stop");

    // Reopen: the files are there.
    let (status, reopened) = server.open_session(&bob, &project, "jupyter").await;
    assert_eq!(status, StatusCode::CREATED, "{reopened}");
    let second = reopened["session_id"].as_str().unwrap().to_string();
    assert_ne!(second, session);
    server.session_ready(&bob, &project).await;
    let (status, content) = send(
        no_redirects
            .get(format!(
                "{}api/contents/late.txt",
                reopened["url"].as_str().unwrap()
            ))
            .bearer_auth(&bob),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{content}");
    assert_eq!(content["content"], "saved at stop");
    let (status, _) = server.stop_session(&bob, &project).await;
    assert_eq!(status, StatusCode::OK);
}

/// Heartbeats for a project's session every 200 ms until dropped: the session is not idle
/// while a test sets it up, however slow the machine, and idles from the drop on.
struct KeepAlive(tokio::task::JoinHandle<()>);

impl KeepAlive {
    fn start(server: &TestServer, token: &str, project: &str) -> Self {
        let heartbeat = server.with_token(
            token,
            Method::POST,
            &format!("/api/v1/projects/{project}/session/heartbeat"),
        );
        Self(tokio::spawn(async move {
            loop {
                // Refused while the session starts: only the beats of a ready one count.
                let _ = heartbeat.try_clone().expect("a plain request").send().await;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }))
    }
}

impl Drop for KeepAlive {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Opens a Jupyter session on a new project, waits until ready, and saves `file` in the
/// workspace through Jupyter's contents API (through the proxy). Returns (project, session,
/// the heartbeats that kept it from idling meanwhile: drop them to let it idle).
async fn ready_with_file(
    server: &TestServer,
    token: &str,
    name: &str,
    file: &str,
    text: &str,
) -> (String, Value, KeepAlive) {
    let project = server.project(token, name).await;
    let (status, opened) = server.open_session(token, &project, "jupyter").await;
    assert_eq!(status, StatusCode::CREATED, "{opened}");
    let alive = KeepAlive::start(server, token, &project);
    let session = server.session_ready(token, &project).await;
    let site = session["url"].as_str().unwrap();
    let (status, saved) = send(
        server
            .client
            .put(format!("{site}api/contents/{file}"))
            .bearer_auth(token)
            .json(&json!({ "type": "file", "format": "text", "content": text })),
    )
    .await;
    assert!(status.is_success(), "{saved}");
    (project, session, alive)
}

/// Polls the project's session until it stopped or failed (at most a minute) and returns it.
#[track_caller]
fn wait_ended<'a>(
    server: &'a TestServer,
    token: &'a str,
    project: &'a str,
) -> impl Future<Output = Value> + 'a {
    wait::until(
        "the session to end",
        Duration::from_secs(60),
        move || async move {
            let (_, session) = send(server.with_token(
                token,
                Method::GET,
                &format!("/api/v1/projects/{project}/session"),
            ))
            .await;
            if matches!(session["status"].as_str(), Some("stopped" | "failed")) {
                Ok(session)
            } else {
                Err(session)
            }
        },
    )
}

async fn stored(server: &TestServer, token: &str, project: &str, path: &str) -> String {
    server
        .download(token, &format!("/api/v1/projects/{project}/files/{path}"))
        .await
}

/// A Docker test server whose reaper runs every second, `customize`d, with user bob and the
/// session events as he sees them.
async fn reaping_server(
    backend: Backend,
    customize: impl FnOnce(&mut weft::config::Config),
) -> (
    TestServer,
    Cleanup,
    String,
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
) {
    docker::require();
    let (server, cleanup) = docker::server(backend, |c| {
        c.workspaces.start_timeout_secs = 90;
        c.workspaces.memory = "512Mi".into();
        c.workspaces.reap_interval_secs = 1;
        customize(c);
    })
    .await;
    let (_, bob) = server.user("bob").await;
    let (events, _) =
        tokio_tungstenite::connect_async(server.ws_request(&bob, "/api/v1/sessions/events"))
            .await
            .expect("events");
    (server, cleanup, bob, events)
}

/// The (type, status) of the session events that came so far.
async fn event_kinds<S>(events: &mut S) -> Vec<(String, String)>
where
    S: futures::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    let mut kinds = Vec::new();
    while let Ok(Some(Ok(message))) =
        tokio::time::timeout(Duration::from_millis(200), events.next()).await
    {
        if let Ok(event) = serde_json::from_str::<Value>(message.to_text().unwrap_or_default()) {
            kinds.push((
                event["type"].as_str().unwrap_or_default().to_string(),
                event["status"].as_str().unwrap_or_default().to_string(),
            ));
        }
    }
    kinds
}

#[track_caller]
fn assert_event(kinds: &[(String, String)], wanted: (&str, &str)) {
    assert!(
        kinds
            .iter()
            .any(|(k, s)| (k.as_str(), s.as_str()) == wanted),
        "no {wanted:?} in {kinds:?}"
    );
}

/// An idle session is synced and stopped.
async fn the_reaper_saves_and_stops_idle_sessions(backend: Backend) {
    let (server, _cleanup, bob, mut events) =
        reaping_server(backend, |c| c.workspaces.idle_timeout_secs = 3).await;
    let (idle, _, alive) =
        ready_with_file(&server, &bob, "idle", "idle.txt", "saved when idle").await;
    drop(alive);
    let ended = wait_ended(&server, &bob, &idle).await;
    assert_eq!(ended["status"], "stopped", "{ended}");
    assert!(ended["error"].as_str().unwrap().contains("idle"), "{ended}");
    assert_eq!(
        stored(&server, &bob, &idle, "idle.txt").await,
        "saved when idle"
    );
    let kinds = event_kinds(&mut events).await;
    assert_event(&kinds, ("sync", "syncing"));
    assert_event(&kinds, ("status", "stopped"));
}

/// A session kept busy with heartbeats is warned, then synced and stopped at its maximum
/// lifetime.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reaper_stops_sessions_at_their_maximum_lifetime() {
    let (server, _cleanup, bob, mut events) = reaping_server(Backend::Sqlite, |c| {
        c.workspaces.max_lifetime_secs = 10;
        c.workspaces.warn_before_secs = 9;
    })
    .await;
    let (old, ready, _alive) =
        ready_with_file(&server, &bob, "old", "old.txt", "saved at the limit").await;
    // A ready session says when the reaper stops it: idle (default 30 min) and lifetime.
    let after = |at: &str, since: &str| millis(&ready[at]) - millis(&ready[since]);
    assert_eq!(after("lifetime_stop_at", "ready_at"), 10_000, "{ready}");
    assert_eq!(
        after("idle_stop_at", "last_activity_at"),
        1_800_000,
        "{ready}"
    );
    let ended = wait_ended(&server, &bob, &old).await;
    assert_eq!(ended["status"], "stopped", "{ended}");
    assert!(
        ended["lifetime_stop_at"].is_null() && ended["idle_stop_at"].is_null(),
        "{ended}"
    );
    assert!(
        ended["error"]
            .as_str()
            .unwrap()
            .contains("maximum lifetime"),
        "{ended}"
    );
    assert_eq!(
        stored(&server, &bob, &old, "old.txt").await,
        "saved at the limit"
    );
    let kinds = event_kinds(&mut events).await;
    assert_event(&kinds, ("warning", "ready"));
    assert_event(&kinds, ("status", "stopped"));
}

/// The container dies under the session: failed, and what it held is still saved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reaper_fails_dead_sessions_and_saves_their_files() {
    let (server, _cleanup, bob, mut events) = reaping_server(Backend::Sqlite, |_| {}).await;
    let (dead, session, _alive) =
        ready_with_file(&server, &bob, "dead", "dead.txt", "saved from the dead").await;
    let container = session["container_id"].as_str().unwrap();
    let (_, c) = send(server.with_token(
        &bob,
        Method::GET,
        &format!("/api/v1/containers/{container}"),
    ))
    .await;
    assert!(docker::docker(&["kill", c["engine_id"].as_str().unwrap()]).0);
    let ended = wait_ended(&server, &bob, &dead).await;
    assert_eq!(ended["status"], "failed", "{ended}");
    assert!(
        ended["error"]
            .as_str()
            .unwrap()
            .contains("container stopped"),
        "{ended}"
    );
    assert_eq!(
        stored(&server, &bob, &dead, "dead.txt").await,
        "saved from the dead"
    );
    let kinds = event_kinds(&mut events).await;
    assert_event(&kinds, ("status", "failed"));
}

/// SIGKILL a real `weft` with a session open, restart it: the session is still ready, reached
/// through the proxy (routes come from the store), and stops with its files synced.
async fn a_session_survives_a_restart(backend: Backend) {
    docker::require();
    let data = Site::new(backend).await;
    let token = &data.token;
    let serve = || data.serve(&[]);
    let client = loopback::client_builder().build().unwrap();
    let call = |base: &str, method: Method, path: &str, body: Option<Value>| {
        crate::support::call(&client, base, token, method, path, body)
    };
    let mut first = serve();
    let base = first.base_url();
    let (_, project) = call(
        &base,
        Method::POST,
        "/api/v1/projects",
        Some(json!({ "name": "durable" })),
    )
    .await;
    let project = project["id"].as_str().unwrap().to_string();
    let (status, opened) = call(
        &base,
        Method::POST,
        &format!("/api/v1/projects/{project}/session"),
        Some(json!({ "kind": "jupyter" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{opened}");
    let site = opened["url"]
        .as_str()
        .unwrap()
        .trim_end_matches('/')
        .to_string();
    crate::support::wait_for_session(&client, &base, token, &project).await;
    let (_, container) = call(&base, Method::GET, "/api/v1/containers", None).await;
    let install = docker::inspect(container[0]["engine_id"].as_str().unwrap()).unwrap()["Config"]["Labels"]["weft.install"]
        .as_str()
        .unwrap()
        .to_string();
    let _cleanup = Cleanup(install);
    let (status, _) = call(
        &site,
        Method::PUT,
        "/api/contents/kept.txt",
        Some(json!({ "type": "file", "format": "text", "content": "written before the crash" })),
    )
    .await;
    assert!(status.is_success());
    first.kill();

    let second = serve();
    let base = second.base_url();
    let (_, s) = call(
        &base,
        Method::GET,
        &format!("/api/v1/projects/{project}/session"),
        None,
    )
    .await;
    assert_eq!(s["status"], "ready", "{s}");
    // The new process listens on another ephemeral port: the session's origin follows it.
    let site = s["url"].as_str().unwrap().trim_end_matches('/').to_string();
    let (status, content) = call(&site, Method::GET, "/api/contents/kept.txt", None).await;
    assert_eq!(status, StatusCode::OK, "{content}");
    assert_eq!(content["content"], "written before the crash");
    let (status, stopped) = call(
        &base,
        Method::DELETE,
        &format!("/api/v1/projects/{project}/session"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{stopped}");
    let saved = client
        .get(format!("{base}/api/v1/projects/{project}/files/kept.txt"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(saved, "written before the crash");
}

/// A code-server session of bob's (with `main.rs` in its project), opened with its link:
/// the server, its cleanup, bob's and eve's tokens, the project, the site, the session as
/// ready and the cookie the link gave.
struct CodeServer {
    server: TestServer,
    _cleanup: Cleanup,
    bob: String,
    eve: String,
    project: String,
    site: String,
    ready: Value,
    cookie: String,
}

impl CodeServer {
    async fn open() -> Self {
        docker::require();
        let image = weft::config::WorkspacesConfig::default().code_server.image;
        assert!(
            docker::docker(&["image", "inspect", &image]).0,
            "{image} is missing: run tests/run.sh (it builds it)"
        );
        let (server, cleanup) =
            docker::server(Backend::Sqlite, |c| c.workspaces.start_timeout_secs = 90).await;
        let (_, bob) = server.user("bob").await;
        let (_, eve) = server.user("eve").await;
        let project = server.project(&bob, "code").await;
        server
            .put_file(&bob, &project, "main.rs", "fn main() {}")
            .await;
        let (status, opened) = server.open_session(&bob, &project, "code-server").await;
        assert_eq!(status, StatusCode::CREATED, "{opened}");
        let link = opened["link"].as_str().unwrap().to_string();
        let site = opened["url"].as_str().unwrap().to_string();
        let ready = server.session_ready(&bob, &project).await;
        let first = loopback::no_redirects().get(&link).send().await.unwrap();
        assert_eq!(first.status(), StatusCode::SEE_OTHER);
        let cookie = first.headers()["set-cookie"].to_str().unwrap();
        let cookie = cookie.split(';').next().unwrap().to_string();
        Self {
            server,
            _cleanup: cleanup,
            bob,
            eve,
            project,
            site,
            ready,
            cookie,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.site)
    }
}

/// The real code-server image behind the proxy: the link signs the browser in, its
/// `/healthz` and workbench answer with no password page; anyone else is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_server_opens_on_its_link_without_a_password() {
    let session = CodeServer::open().await;
    let (cookie, eve) = (session.cookie.clone(), session.eve.clone());
    let no_redirects = loopback::no_redirects();
    let url = |path: &str| session.url(path);
    let (status, health) = send(no_redirects.get(url("healthz")).header("cookie", &cookie)).await;
    assert_eq!(status, StatusCode::OK, "{health}");
    assert!(
        health["status"].is_string(),
        "code-server's own answer: {health}"
    );
    let root = no_redirects
        .get(url(""))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(
        root.headers().get("location").map(|l| l.to_str().unwrap()),
        Some("./?folder=/workspace"),
        "to the workspace, not to a login page"
    );
    let page = no_redirects
        .get(url("?folder=/workspace"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let page = page.text().await.unwrap();
    assert!(
        page.contains("workbench") && !page.contains("name=\"password\""),
        "the workbench: {page}"
    );
    let (status, body) = send(no_redirects.get(url("healthz")).bearer_auth(&eve)).await;
    assert_error(status, &body, 403, "90305");
}

/// code-server reached around Weft wants its own password: Weft's cookie is not it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_server_reached_directly_wants_its_password() {
    let session = CodeServer::open().await;
    let CodeServer {
        server,
        bob,
        ready,
        cookie,
        ..
    } = &session;
    let no_redirects = loopback::no_redirects();
    // code-server itself, reached around Weft, wants its password: Weft's cookie is not it.
    let direct = format!("http://{}:8888/", session_ip(server, bob, ready).await);
    for jar in ["", cookie.as_str(), "code-server-session=guess"] {
        let answer = no_redirects
            .get(&direct)
            .header("cookie", jar)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::FOUND, "cookie '{jar}'");
        let location = answer.headers()["location"].to_str().unwrap();
        assert!(location.contains("login"), "{location}");
    }
    let login = no_redirects
        .get(format!("{direct}login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        login.contains("name=\"password\""),
        "the login page: {login}"
    );
}

/// code-server's WebSocket upgrades through the proxy with the session's Origin, a
/// cross-origin one is refused; the stop keeps the project's files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_servers_websocket_upgrades_only_from_its_origin() {
    let session = CodeServer::open().await;
    let CodeServer {
        server,
        bob,
        project,
        site,
        ..
    } = &session;
    let origin = site.trim_end_matches('/').to_string();
    let mut request = session_ws(
        site,
        bob,
        "?reconnectionToken=weft-test&reconnection=false&skipWebSocketFrames=false",
    );
    request
        .headers_mut()
        .insert("origin", origin.parse().unwrap());
    let (_, response) = ws_connect(request)
        .await
        .expect("code-server's WebSocket through the proxy");
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    let mut foreign = session_ws(
        site,
        bob,
        "?reconnectionToken=weft-test-2&reconnection=false&skipWebSocketFrames=false",
    );
    foreign
        .headers_mut()
        .insert("origin", "http://evil.localhost".parse().unwrap());
    assert!(
        ws_connect(foreign).await.is_err(),
        "a cross-origin upgrade is refused"
    );

    let (status, stopped) = server.stop_session(bob, project).await;
    assert_eq!(status, StatusCode::OK, "{stopped}");
    let files = server.file_paths(bob, project).await;
    assert!(files.iter().any(|f| f == "main.rs"), "{files:?}");
}

/// A time quota of 8 seconds: a warning, then the session is synced and stopped; the next
/// start is refused with the time left (none) and when it resets; the usage says the same.
async fn time_quota_stops_and_refuses(backend: Backend) {
    docker::require();
    let (server, _cleanup) = docker::server(backend, |c| {
        c.workspaces.start_timeout_secs = 90;
        c.workspaces.memory = "512Mi".into();
        c.workspaces.quota_minutes = 8.0 / 60.0;
        c.workspaces.warn_before_secs = 5;
        c.workspaces.reap_interval_secs = 1;
    })
    .await;
    let (_, bob) = server.user("bob").await;
    let (_, fresh) = send(server.with_token(&bob, Method::GET, "/api/v1/users/me/usage")).await;
    assert_eq!(fresh["used_seconds"], 0.0);
    assert_eq!(fresh["remaining_seconds"], 8.0);
    assert_eq!(fresh["period"], "month");
    let (mut events, _) =
        tokio_tungstenite::connect_async(server.ws_request(&bob, "/api/v1/sessions/events"))
            .await
            .expect("events");

    let (project, _, _) = ready_with_file(
        &server,
        &bob,
        "metered",
        "work.txt",
        "saved when the quota ran out",
    )
    .await;
    let ended = wait_ended(&server, &bob, &project).await;
    assert_eq!(ended["status"], "stopped", "{ended}");
    assert!(
        ended["error"].as_str().unwrap().contains("quota"),
        "{ended}"
    );
    assert_eq!(
        stored(&server, &bob, &project, "work.txt").await,
        "saved when the quota ran out"
    );
    let mut warned = false;
    while let Ok(Some(Ok(message))) =
        tokio::time::timeout(Duration::from_millis(200), events.next()).await
    {
        let event: Value =
            serde_json::from_str(message.to_text().unwrap_or("{}")).unwrap_or_default();
        warned |= event["type"] == "warning"
            && event["message"]
                .as_str()
                .unwrap_or_default()
                .contains("time quota");
    }
    assert!(warned, "a warning came before the stop");

    let (status, body) = server.open_session(&bob, &project, "jupyter").await;
    assert_error(status, &body, 429, "10211");
    assert_eq!(body["details"]["remaining_seconds"], 0);
    assert!(body["details"]["resets_at"].is_string());
    let (_, usage) = send(server.with_token(&bob, Method::GET, "/api/v1/users/me/usage")).await;
    assert!(usage["used_seconds"].as_f64().unwrap() >= 8.0, "{usage}");
    assert_eq!(usage["remaining_seconds"], 0.0);
    assert_eq!(usage["active_sessions"], 0);
    // Another user's time is their own.
    let (_, eve) = server.user("eve").await;
    let (_, theirs) = send(server.with_token(&eve, Method::GET, "/api/v1/users/me/usage")).await;
    assert_eq!(theirs["used_seconds"], 0.0);
}

/// Past `max_starting`, sessions wait `pending` for a start to end (a class opening its
/// sessions at once must not share the CPU so evenly that all miss the start timeout), and one
/// stopped while it waits stays stopped and never gets a container.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_past_max_starting_wait_their_turn() {
    let (server, _cleanup, bob, mut events) =
        reaping_server(Backend::Sqlite, |c| c.workspaces.max_starting = 1).await;
    let mut projects = Vec::new();
    for name in ["first", "second", "stopped"] {
        projects.push(server.project(&bob, name).await);
    }
    let mut ids = Vec::new();
    for project in &projects[..2] {
        let (status, session) = server.open_session(&bob, project, "jupyter").await;
        assert_eq!(status, StatusCode::CREATED, "{session}");
        ids.push(session["session_id"].as_str().expect("id").to_string());
    }
    let mut starting = std::collections::HashSet::new();
    let mut ready = 0;
    let mut waiting_one_stopped = false;
    while ready < 2 {
        let message = tokio::time::timeout(Duration::from_secs(120), events.next())
            .await
            .expect("session events within 120 s")
            .expect("the events stream is open")
            .expect("an event");
        let event: Value = serde_json::from_str(message.to_text().unwrap_or_default()).unwrap();
        let id = event["session_id"].as_str().unwrap_or_default().to_string();
        match event["status"].as_str() {
            Some("starting") => {
                starting.insert(id);
                assert!(
                    starting.len() <= 1,
                    "two sessions starting at once: {starting:?}"
                );
            }
            Some("ready") if ids.contains(&id) => {
                starting.remove(&id);
                ready += 1;
            }
            Some("failed") => panic!("a session failed: {event}"),
            _ => {}
        }
        if !starting.is_empty() && !waiting_one_stopped {
            // While one starts, a third one waits; stopped now, it stays stopped.
            let (status, third) = server.open_session(&bob, &projects[2], "jupyter").await;
            assert_eq!(status, StatusCode::CREATED, "{third}");
            let (status, stopped) = server.stop_session(&bob, &projects[2]).await;
            assert_eq!(
                (status, &stopped["status"]),
                (StatusCode::OK, &json!("stopped"))
            );
            waiting_one_stopped = true;
        }
    }
    let (_, third) = send(server.with_token(
        &bob,
        Method::GET,
        &format!("/api/v1/projects/{}/session", projects[2]),
    ))
    .await;
    assert_eq!(third["status"], "stopped", "{third}");
    assert_eq!(third["container_id"], Value::Null, "{third}");
    let (_, containers) = send(server.with_token(&bob, Method::GET, "/api/v1/containers")).await;
    assert_eq!(containers.as_array().map(Vec::len), Some(2), "{containers}");
}

/// A session whose server never answers is failed after the start timeout, with the reason, and
/// its container removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_not_ready_in_time_fails() {
    docker::require();
    let (server, _cleanup) = docker::server(Backend::Sqlite, |c| {
        c.workspaces.start_timeout_secs = 3;
        c.workspaces.jupyter.ready_path = "never/answers".into();
    })
    .await;
    let (_, bob) = server.user("bob").await;
    let project = server.project(&bob, "slow").await;
    let (status, _) = server.open_session(&bob, &project, "jupyter").await;
    assert_eq!(status, StatusCode::CREATED);
    let ended = wait_ended(&server, &bob, &project).await;
    assert_eq!(ended["status"], "failed", "{ended}");
    assert_eq!(ended["error"], "not ready within 3 s");
    let (_, containers) = send(server.with_token(&bob, Method::GET, "/api/v1/containers")).await;
    assert_eq!(
        containers,
        json!([]),
        "the failed session's container is removed"
    );
}

/// Storage failing under a sync: the sync is refused with 10106, the session stays open with
/// the reason and keeps its container; once storage is back, the sync goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_sync_keeps_the_session() {
    docker::require();
    let (server, _cleanup) = docker::server(Backend::Sqlite, |c| {
        c.workspaces.start_timeout_secs = 90;
        c.workspaces.memory = "512Mi".into();
    })
    .await;
    let (_, bob) = server.user("bob").await;
    let (project, session, _) =
        ready_with_file(&server, &bob, "fragile", "precious.txt", "do not lose me").await;
    // The fault: the project's storage folder replaced by a plain file (named as such: it
    // stands in for a storage outage, which a local folder cannot otherwise have).
    let folder = server.config.data_dir.join("projects").join(&project);
    let aside = server.config.data_dir.join("projects").join("aside");
    if folder.exists() {
        std::fs::rename(&folder, &aside).unwrap();
    }
    std::fs::write(&folder, b"not a folder").unwrap();
    let (status, body) = send(server.with_token(
        &bob,
        Method::POST,
        &format!("/api/v1/projects/{project}/session/sync"),
    ))
    .await;
    assert_error(status, &body, 502, "10106");
    let (status, body) = server.stop_session(&bob, &project).await;
    assert_error(status, &body, 502, "10106");
    let (_, now) = send(server.with_token(
        &bob,
        Method::GET,
        &format!("/api/v1/projects/{project}/session"),
    ))
    .await;
    assert_eq!(now["status"], "ready", "{now}");
    assert!(
        now["error"].as_str().unwrap().starts_with("sync failed"),
        "{now}"
    );
    let container = session["container_id"].as_str().unwrap();
    let (status, _) = send(server.with_token(
        &bob,
        Method::GET,
        &format!("/api/v1/containers/{container}"),
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "the container is kept");

    std::fs::remove_file(&folder).unwrap();
    if aside.exists() {
        std::fs::rename(&aside, &folder).unwrap();
    }
    let (status, stopped) = server.stop_session(&bob, &project).await;
    assert_eq!(status, StatusCode::OK, "{stopped}");
    assert_eq!(
        stored(&server, &bob, &project, "precious.txt").await,
        "do not lose me"
    );
}

/// A busy Jupyter kernel is activity: the session outlives the idle timeout while code runs,
/// and is reaped once the kernel is idle again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_kernel_keeps_the_session() {
    docker::require();
    let (server, _cleanup) = docker::server(Backend::Sqlite, |c| {
        c.workspaces.start_timeout_secs = 90;
        c.workspaces.memory = "512Mi".into();
        c.workspaces.idle_timeout_secs = 3;
        c.workspaces.reap_interval_secs = 1;
    })
    .await;
    let (_, bob) = server.user("bob").await;
    let (project, session, alive) = ready_with_file(&server, &bob, "busy", "x.txt", "x").await;
    let site = session["url"].as_str().unwrap().to_string();
    let (status, kernel) = send(
        server
            .client
            .post(format!("{site}api/kernels"))
            .bearer_auth(&bob)
            .json(&json!({ "name": "python3" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{kernel}");
    let kernel = kernel["id"].as_str().unwrap().to_string();
    // Three idle timeouts of work; the session idles (no heartbeat) from the moment it began.
    let (mut socket, msg_id) = begin_in_kernel(
        &bob,
        &site,
        &kernel,
        "import time\ntime.sleep(9)\nprint('done')",
    )
    .await;
    wait_busy(&mut socket, &msg_id).await;
    drop(alive);
    let out = finish_in_kernel(&mut socket, &msg_id).await;
    assert_eq!(out.trim(), "done");
    let (_, now) = send(server.with_token(
        &bob,
        Method::GET,
        &format!("/api/v1/projects/{project}/session"),
    ))
    .await;
    assert_eq!(
        now["status"], "ready",
        "kept while the kernel was busy: {now}"
    );
    let ended = wait_ended(&server, &bob, &project).await;
    assert!(ended["error"].as_str().unwrap().contains("idle"), "{ended}");
}

/// A kernel busy for ever postpones only the idle timeout: the session still ends at its maximum
/// lifetime, and when the user's time quota is spent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_kernel_ends_at_lifetime_and_quota() {
    docker::require();
    for (limit, reason) in [("lifetime", "maximum lifetime"), ("quota", "quota")] {
        let (server, _cleanup) = docker::server(Backend::Sqlite, |c| {
            c.workspaces.start_timeout_secs = 90;
            c.workspaces.memory = "512Mi".into();
            c.workspaces.idle_timeout_secs = 4;
            c.workspaces.reap_interval_secs = 1;
            if limit == "lifetime" {
                c.workspaces.max_lifetime_secs = 20;
            } else {
                c.workspaces.quota_minutes = 20.0 / 60.0;
            }
        })
        .await;
        let (_, bob) = server.user("bob").await;
        let (project, session, alive) = ready_with_file(&server, &bob, limit, "x.txt", "x").await;
        let site = session["url"].as_str().unwrap().to_string();
        let (status, kernel) = send(
            server
                .client
                .post(format!("{site}api/kernels"))
                .bearer_auth(&bob)
                .json(&json!({ "name": "python3" })),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{kernel}");
        let kernel = kernel["id"].as_str().unwrap();
        let (mut busy, msg_id) =
            begin_in_kernel(&bob, &site, kernel, "import time\ntime.sleep(10**9)").await;
        // The reaper must find it running: wait for the kernel to say it is busy with it.
        wait_busy(&mut busy, &msg_id).await;
        drop(alive);
        let ended = wait_ended(&server, &bob, &project).await;
        assert_eq!(ended["status"], "stopped", "{limit}: {ended}");
        assert!(
            ended["error"].as_str().unwrap().contains(reason),
            "{limit}: {ended}"
        );
    }
}
