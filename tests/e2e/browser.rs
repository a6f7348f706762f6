//! Attacks whose victim is a browser, in headless Chromium (Debian's `chromium`, driven by
//! `playwright-core` from tests/browser; the test command installs both) against real sessions
//! on the real engine and images.

use crate::support::docker;
use crate::support::{Backend, TestServer, expect_status, send, wait};
use crate::workflows::{counting_flaky_node, succeeds_on_third_attempt};
use rand::RngCore as _;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use std::path::Path;
use std::time::Duration;

const BROWSER_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/browser");

/// Fails the test with what to do when Chromium or playwright-core is missing.
fn require_browser() {
    let chromium = std::env::var("WEFT_TEST_CHROMIUM").unwrap_or("/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists()
            && ["playwright-core", "axe-core"]
                .iter()
                .all(|package| Path::new(BROWSER_DIR)
                    .join("node_modules")
                    .join(package)
                    .is_dir()),
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

/// The victim and the attacker of [`a_hostile_session_page_reaches_neither_the_victims_session_nor_the_api`].
struct Sessions {
    alice: String,
    mallory: String,
    /// Mallory's project, holding the hostile page.
    bait: String,
    /// Alice's Jupyter session, as opened (with its one-time link).
    victim: Value,
    /// Mallory's code-server session's origin.
    attacker_site: String,
}

/// Alice's Jupyter session and Mallory's code-server session, both ready; Mallory's project
/// holds the hostile page, its service worker and the server for them.
#[track_caller]
fn victim_and_attacker(server: &TestServer) -> impl Future<Output = Sessions> + '_ {
    let caller = std::panic::Location::caller();
    async move {
        let (_, alice) = server.user("alice").await;
        let (_, mallory) = server.user("mallory").await;
        let thesis = server.project(&alice, "thesis").await;
        let (status, victim) = server.open_session(&alice, &thesis, "jupyter").await;
        expect_status(caller, status, StatusCode::CREATED, &victim);
        let bait = server.project(&mallory, "bait").await;
        for (name, text) in [
            ("evil.html", include_str!("../browser/hostile/evil.html")),
            ("sw.js", include_str!("../browser/hostile/sw.js")),
            ("serve.py", include_str!("../browser/hostile/serve.py")),
        ] {
            server.put_file(&mallory, &bait, name, text).await;
        }
        let (status, attacker) = server.open_session(&mallory, &bait, "code-server").await;
        expect_status(caller, status, StatusCode::CREATED, &attacker);
        server.session_ready(&alice, &thesis).await;
        let attacker = server.session_ready(&mallory, &bait).await;
        Sessions {
            attacker_site: attacker["url"].as_str().unwrap().to_string(),
            alice,
            mallory,
            bait,
            victim,
        }
    }
}

/// The attacker starts their server in their workspace (as their code-server terminal would);
/// returns the hostile page's address through code-server's /proxy/9000/, once it answers.
#[track_caller]
fn attackers_page<'a>(
    server: &'a TestServer,
    sessions: &'a Sessions,
) -> impl Future<Output = String> + 'a {
    let engine = server.session_engine_id(&sessions.mallory, &sessions.bait);
    let waited = std::panic::Location::caller();
    async move {
        let engine = engine.await;
        let (ok, _, err) = docker::docker(&[
            "exec",
            "-d",
            "-w",
            "/workspace",
            &engine,
            "python3",
            "serve.py",
            "9000",
        ]);
        assert!(ok, "{waited}: {err}");
        let page = format!("{}proxy/9000/evil.html", sessions.attacker_site);
        wait::until_at(
            waited,
            "the attacker's server to answer",
            Duration::from_secs(20),
            || async {
                let (status, body) =
                    send(server.client.get(&page).bearer_auth(&sessions.mallory)).await;
                if status == StatusCode::OK {
                    Ok(())
                } else {
                    Err((status, body))
                }
            },
        )
        .await;
        page
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
    let sessions = victim_and_attacker(&server).await;
    let page = attackers_page(&server, &sessions).await;
    let victim_site = sessions.victim["url"].as_str().unwrap();

    // The link the attacker sends: their session's, with a fresh one-time token.
    let (_, again) = server
        .open_session(&sessions.mallory, &sessions.bait, "code-server")
        .await;
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
            sessions.victim["link"].as_str().unwrap(),
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
            .bearer_auth(&sessions.alice),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{kernels}");
    assert_eq!(
        kernels,
        serde_json::json!([]),
        "the page started a kernel in the victim's session: {seen}"
    );
}

/// Where workspace-ui.mjs saves its screenshot when a flow fails (printed by the test).
fn screenshot_dir() -> String {
    let dir = std::env::temp_dir().join(format!("weft-browser-shots-{}", std::process::id()));
    dir.to_string_lossy().into_owned()
}

/// A student's server, token and project (a test's engine cleaned up with the guard).
async fn student() -> (TestServer, docker::Cleanup, String, String) {
    student_with(|_| {}).await
}

/// [`student`] with the server's configuration `customize`d.
async fn student_with(
    customize: impl FnOnce(&mut weft::config::Config),
) -> (TestServer, docker::Cleanup, String, String) {
    docker::require();
    require_browser();
    let (server, cleanup) = docker::server(Backend::Sqlite, |c| {
        c.workspaces.start_timeout_secs = 90;
        customize(c);
    })
    .await;
    let (_, alice) = server.user("alice").await;
    let project = server.project(&alice, "course").await;
    (server, cleanup, alice, project)
}

/// Opens `kind`'s session, waits for it and runs the person at work
/// (tests/browser/workspace-ui.mjs, with `args` after the flow's own) from a fresh one-time
/// link, and asserts the flow finished with no failed response (404/5xx or any other 4xx, failed
/// request, WebSocket error) in the browser's network log, bar the benign ones the script names.
/// Chromium aborts what is in flight when the host's interfaces change (`ERR_NETWORK_CHANGED`),
/// as they do whenever a test running alongside creates a user network: a flow that lost a
/// request that way (cut short, or only missing a file loaded on the side) runs again from a
/// new link, up to 3 times in all (the flows do the same work when run again in a session).
async fn work_in_browser(
    server: &TestServer,
    token: &str,
    project: &str,
    kind: &str,
    args: &[&str],
) -> Value {
    let shots = screenshot_dir();
    let mut attempts = 0;
    let seen = loop {
        attempts += 1;
        let (status, session) = server.open_session(token, project, kind).await;
        assert!(status.is_success(), "{session}");
        server.session_ready(token, project).await;
        let link = session["link"].as_str().unwrap().to_string();
        let seen = node(
            "workspace-ui.mjs",
            &[&[kind, "work", &link, &shots], args].concat(),
        );
        let network_changed = seen["failed"].to_string().contains("ERR_NETWORK_CHANGED");
        if !network_changed || attempts == 3 {
            break seen;
        }
        println!("the {kind} flow lost a request to a change of the host's network; once more");
    };
    assert_eq!(
        seen["ok"], true,
        "the {kind} flow failed (screenshot in {shots}): {seen}"
    );
    assert!(
        seen["responses"].as_u64() > Some(0),
        "the browser's network log is empty: {seen}"
    );
    assert_eq!(
        seen["failed"],
        serde_json::json!([]),
        "failed responses in the browser (the network log is in {shots}/{kind}-network.json): \
         {seen}"
    );
    seen
}

/// A notebook's multiline string (nbformat stores one as a string or a list of lines).
fn multiline(value: &Value) -> String {
    match value {
        Value::Array(lines) => lines.iter().filter_map(Value::as_str).collect(),
        other => other.as_str().unwrap_or_default().to_string(),
    }
}

/// Puts `content` in the project as `path`.
async fn put_file(server: &TestServer, token: &str, project: &str, path: &str, content: &[u8]) {
    let (status, body) = send(
        server
            .with_token(
                token,
                Method::PUT,
                &format!("/api/v1/projects/{project}/files/{path}"),
            )
            .body(content.to_vec()),
    )
    .await;
    assert!(status.is_success(), "{body}");
}

/// The project's file at `path`, as bytes.
async fn project_file(server: &TestServer, token: &str, project: &str, path: &str) -> Vec<u8> {
    let response = server
        .with_token(
            token,
            Method::GET,
            &format!("/api/v1/projects/{project}/files/{path}"),
        )
        .send()
        .await
        .expect("request sent");
    assert_eq!(response.status(), StatusCode::OK, "GET {path}");
    response.bytes().await.expect("body read").to_vec()
}

/// `len` random bytes.
fn random_bytes(len: usize) -> Vec<u8> {
    let mut bytes = vec![0; len];
    rand::rng().fill_bytes(&mut bytes);
    bytes
}

/// A student opens their Jupyter session's link: JupyterLab shows the project's files; they
/// upload a 16 MB file with the file browser (over 15 MiB, so JupyterLab sends it in chunks),
/// download one of the project's files from it, run `python3` in a Terminal opened from the
/// launcher and read `42` there, then open the project's notebook, type `6*7` in a cell, run it,
/// see `42`, save. On stop (which syncs) the project holds the uploaded file, byte for byte, and
/// the notebook with the cell and its output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_student_runs_and_saves_a_notebook_in_jupyterlab() {
    let (server, _cleanup, alice, project) = student().await;
    let empty = serde_json::json!({
        "nbformat": 4, "nbformat_minor": 5,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "cells": [{"cell_type": "code", "id": "first", "source": "", "metadata": {},
                   "outputs": [], "execution_count": null}],
    });
    put_file(
        &server,
        &alice,
        &project,
        "hello.ipynb",
        empty.to_string().as_bytes(),
    )
    .await;
    let data = random_bytes(64 * 1024);
    put_file(&server, &alice, &project, "data.bin", &data).await;
    let upload_dir = tempfile::tempdir().unwrap();
    let upload = upload_dir.path().join("dataset.bin");
    let dataset = random_bytes(16_000_000);
    std::fs::write(&upload, &dataset).unwrap();

    let seen = work_in_browser(
        &server,
        &alice,
        &project,
        "jupyter",
        &[upload.to_str().unwrap()],
    )
    .await;
    assert!(
        seen["url"].as_str().unwrap().contains("/lab"),
        "the link opens JupyterLab: {seen}"
    );
    let download = &seen["download"];
    assert!(
        download["url"]
            .as_str()
            .unwrap()
            .contains("/files/data.bin"),
        "{seen}"
    );
    assert_eq!(download["size"], data.len(), "{seen}");
    assert_eq!(
        download["sha256"],
        hex::encode(Sha256::digest(&data)),
        "the browser downloaded the project's bytes: {seen}"
    );
    assert!(
        seen["terminal"]
            .as_array()
            .unwrap()
            .iter()
            .any(|row| row == "42"),
        "{seen}"
    );
    assert_eq!(seen["output"], "42", "{seen}");
    assert_eq!(seen["save_status"], 200, "{seen}");

    let (status, stopped) = server.stop_session(&alice, &project).await;
    assert!(status.is_success(), "{stopped}");
    let uploaded = project_file(&server, &alice, &project, "dataset.bin").await;
    assert!(
        uploaded == dataset,
        "the uploaded file reached the project changed: {} bytes of {}",
        uploaded.len(),
        dataset.len()
    );
    let saved: Value =
        serde_json::from_slice(&project_file(&server, &alice, &project, "hello.ipynb").await)
            .expect("the saved notebook is JSON");
    let cell = &saved["cells"][0];
    assert_eq!(multiline(&cell["source"]), "6*7", "{saved}");
    assert_eq!(
        multiline(&cell["outputs"][0]["data"]["text/plain"]),
        "42",
        "the output reached the project: {saved}"
    );
}

/// A student opens their code-server session's link: the workbench shows the project with no
/// trust dialog; they open a file with Quick Open, type, save, run python3 in a terminal, and
/// open the Extensions view, which lists the built-in ones (the marketplace is out of reach
/// here); on stop (which syncs) the project has the file and the terminal's output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_student_edits_saves_and_runs_python_in_code_server() {
    let (server, _cleanup, alice, project) = student().await;
    put_file(&server, &alice, &project, "notes.txt", b"first line\n").await;

    let seen = work_in_browser(&server, &alice, &project, "code-server", &[]).await;
    assert_eq!(seen["trust_dialog"], 0, "a trust dialog showed: {seen}");
    assert!(
        seen["extensions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|name| name == "Python Language Basics"),
        "the Extensions view lists the built-in ones: {seen}"
    );

    let (status, stopped) = server.stop_session(&alice, &project).await;
    assert!(status.is_success(), "{stopped}");
    let file = |path: &str| format!("/api/v1/projects/{project}/files/{path}");
    assert_eq!(
        server.download(&alice, &file("notes.txt")).await,
        "first line\ntyped in the browser",
        "the typed line reached the project"
    );
    assert_eq!(
        server.download(&alice, &file("terminal-out.txt")).await,
        "42\n",
        "the terminal ran python3"
    );
}

/// The web app's sign-in password of the bootstrap admin.
const ADMIN_PASSWORD: &str = "a long enough password";

/// A server whose bootstrap admin has [`ADMIN_PASSWORD`], for the web app's flows.
async fn web_app_server() -> TestServer {
    require_browser();
    let server = TestServer::start(Backend::Sqlite).await;
    give_password(&server, &server.admin_token, ADMIN_PASSWORD).await;
    server
}

/// Gives the user of `token` `password`, to sign in to the web app with.
#[track_caller]
fn give_password<'a>(
    server: &'a TestServer,
    token: &'a str,
    password: &'a str,
) -> impl Future<Output = ()> + 'a {
    let caller = std::panic::Location::caller();
    async move {
        let (status, me) = send(server.with_token(token, Method::GET, "/api/v1/users/me")).await;
        expect_status(caller, status, StatusCode::OK, &me);
        server
            .state
            .auth
            .set_password(me["id"].as_str().unwrap(), password)
            .await
            .unwrap();
    }
}

/// Runs `flow` of tests/browser/web-app.mjs as the admin (with `target`, the workflow or run
/// it opens) and returns what it saw, asserting that no page raised an error or met a refusal
/// of the Content-Security-Policy (which allows no eval), and that axe-core found no serious
/// or critical accessibility violation on `pages`.
#[track_caller]
fn web_app(server: &TestServer, flow: &str, target: &str, pages: &[&str]) -> Value {
    let shots = screenshot_dir();
    let seen = node(
        "web-app.mjs",
        &[
            flow,
            &server.url("/"),
            "admin",
            ADMIN_PASSWORD,
            &shots,
            target,
        ],
    );
    assert_eq!(seen["console_errors"], serde_json::json!([]), "{seen}");
    assert_eq!(seen["csp_violations"], serde_json::json!([]), "{seen}");
    for page in pages {
        assert_eq!(
            seen["a11y"][page],
            serde_json::json!([]),
            "axe-core found serious or critical violations on the {page} page"
        );
    }
    seen
}

/// In Weft's own web app, served by the host, a wrong password is refused; signed in, a reload
/// keeps the person signed in, and signing out ends it (a reload after that does not undo it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_app_refuses_a_wrong_password_and_keeps_a_sign_in_until_sign_out() {
    let server = web_app_server().await;
    let seen = web_app(&server, "sign-in", "", &["sign-in", "workflows"]);
    assert!(
        seen["wrong_password"]
            .as_str()
            .unwrap()
            .starts_with("wrong name or password (90308)"),
        "{seen}"
    );
    assert_eq!(seen["signed_in_after_reload"], true, "{seen}");
    assert_eq!(seen["signed_out_after_reload"], true, "{seen}");
}

/// In the web app's designer a person drags three nodes from the palette onto the canvas, sees
/// a connection of the wrong kind refused, connects the ports, undoes and redoes, fills the
/// config forms (an out-of-range value shows its error inline: validated without eval), saves
/// and runs the workflow and watches every node succeed, over the run's WebSocket and on the
/// timeline.
/// With `WEFT_UPDATE_SCREENSHOTS=1` the designer's screenshot replaces the README's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workflow_drawn_in_the_web_app_runs_with_every_node_succeeding() {
    let server = web_app_server().await;
    let seen = web_app(&server, "design", "", &["designer", "run"]);
    assert_eq!(seen["nodes_dropped"], 3, "{seen}");
    assert_eq!(
        seen["refused"], "output 'out' (integer) cannot feed input 'in' (array)",
        "{seen}"
    );
    assert_eq!(seen["edges_after_refusal"], 0, "{seen}");
    assert_eq!(seen["edges_connected"], 2, "{seen}");
    assert_eq!(seen["edges_after_undo"], 1, "{seen}");
    assert_eq!(seen["edges_after_redo"], 2, "{seen}");
    assert_eq!(seen["inline_error"], "must be <= 93", "{seen}");
    assert_eq!(seen["run_status"], "succeeded", "{seen}");
    assert!(
        seen["websocket_messages"].as_u64().unwrap() >= 1,
        "the run view did not follow the run's events: {seen}"
    );
    for node in ["fibo", "math", "template"] {
        assert_eq!(seen["node_states"][node], "succeeded", "{seen}");
    }
    assert!(
        seen["template_output"]
            .as_str()
            .unwrap()
            .contains("fib(10) + 1 = 56"),
        "{seen}"
    );
    assert_eq!(seen["timeline_bars"], 3, "{seen}");
    if std::env::var_os("WEFT_UPDATE_SCREENSHOTS").is_some() {
        std::fs::copy(
            Path::new(&screenshot_dir()).join("designer.png"),
            Path::new(BROWSER_DIR).join("screenshots/designer.png"),
        )
        .expect("copy the designer's screenshot");
    }
}

/// In the web app a person saves a second version of a workflow (fibo -> math -> template, run
/// once) and compares it with the first on the canvas (fibo changed, nothing else); the
/// workflow's runs list its run, and none when filtered to the failed ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workflows_next_version_compares_with_the_first_and_its_runs_filter_by_state() {
    let server = web_app_server().await;
    let run = server
        .run_workflow(
            &server.admin_token,
            serde_json::json!({"name": "fib plus one",
                "nodes": [{"id": "fibo", "type": "fibo", "config": {"n": 10}},
                          {"id": "math", "type": "math", "config": {"op": "add", "b": 1}},
                          {"id": "template", "type": "template",
                           "config": {"template": "fib(10) + 1 = {{ input }}"}}],
                "edges": [{"source": "fibo", "target": "math", "target_port": "a"},
                          {"source": "math", "target": "template", "target_port": "in"}]}),
        )
        .await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let workflow = run["workflow_id"].as_str().unwrap();
    let seen = web_app(&server, "versions", workflow, &["runs", "workspaces"]);
    assert_eq!(
        seen["diff"],
        serde_json::json!({"fibo": "changed", "math": null, "template": null}),
        "{seen}"
    );
    assert_eq!(seen["runs_listed"], 1, "{seen}");
    assert_eq!(seen["runs_failed_listed"], 0, "{seen}");
}

/// In the web app a person opens a run whose node t failed after f succeeded and runs it again
/// from t: a new run, where f's result is reused (it did not run again) and t fails again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_run_runs_again_from_its_failed_node_in_the_web_app() {
    let server = web_app_server().await;
    let failed = server
        .run_workflow(
            &server.admin_token,
            serde_json::json!({"name": "fails",
                "nodes": [{"id": "f", "type": "fibo", "config": {"n": 10}},
                          {"id": "t", "type": "json-transform", "config": {"query": ".x"}}],
                "edges": [{"source": "f", "target": "t", "target_port": "in"}]}),
        )
        .await;
    assert_eq!(failed["status"], "failed", "{failed}");
    let failed = failed["id"].as_str().unwrap();
    let seen = web_app(&server, "rerun", failed, &[]);
    assert_ne!(seen["rerun"]["run"], failed, "{seen}");
    assert_eq!(seen["rerun"]["f"], "succeeded", "{seen}");
    assert_eq!(seen["rerun"]["t"], "failed", "{seen}");
    let (_, again) = send(server.admin(
        Method::GET,
        &format!("/api/v1/runs/{}", seen["rerun"]["run"].as_str().unwrap()),
    ))
    .await;
    assert_eq!(
        crate::support::node(&again, "f")["started_at"],
        serde_json::Value::Null,
        "f ran again: {again}"
    );
}

/// In the web app's run view a person opens a node that failed twice before it succeeded and
/// reads every attempt: the two that failed with the node's error, the one that succeeded, each
/// with its times and logs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_reads_every_attempt_of_a_retried_node_in_the_web_app() {
    let server = web_app_server().await;
    counting_flaky_node(&server).await;
    let run = server
        .run_workflow(
            &server.admin_token,
            serde_json::json!({"name": "retried", "nodes": [succeeds_on_third_attempt("flaky")]}),
        )
        .await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let seen = web_app(&server, "attempts", run["id"].as_str().unwrap(), &["run"]);
    let attempts = seen["attempts"].as_array().expect("attempts");
    let states: Vec<&str> = attempts
        .iter()
        .map(|a| a["status"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["failed", "failed", "succeeded"], "{seen}");
    for (i, attempt) in attempts.iter().enumerate() {
        let head = attempt["head"].as_str().unwrap();
        assert!(head.starts_with(&format!("Attempt {}", i + 1)), "{seen}");
        assert!(head.contains(" ms)") || head.contains(" s)"), "{seen}");
    }
    for failed in &attempts[..2] {
        let error = failed["error"].as_str().unwrap();
        assert!(
            error.contains("fails on purpose") && error.ends_with("(retryable)"),
            "{seen}"
        );
    }
    assert_eq!(attempts[2]["error"], Value::Null, "{seen}");
}

/// On the web app's Workspaces page a person opens their project, sees and uploads files,
/// opens Jupyter (the start shown on the page) and JupyterLab loads in the new tab, on the
/// session's own origin, listing the uploaded file (real engine, real image). The page shows
/// when the session will be stopped and the time used against the quota; stopping it shows the
/// sync running, then what it synced and what it refused (a file over the size limit).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_opens_jupyter_from_the_web_apps_workspaces_page() {
    let (server, _cleanup, alice, project) = student_with(|c| {
        c.workspaces.max_file_bytes = 1024;
        c.workspaces.quota_minutes = 600.0;
    })
    .await;
    let password = "alice's long password";
    give_password(&server, &alice, password).await;
    put_file(&server, &alice, &project, "hello.txt", b"hello\n").await;
    let shots = screenshot_dir();
    let upload = Path::new(&shots).join("uploaded-from-the-app.txt");
    std::fs::create_dir_all(&shots).unwrap();
    std::fs::write(&upload, "from the web app\n").unwrap();
    let seen = node(
        "web-app-workspace.mjs",
        &[
            &server.url("/"),
            "alice",
            password,
            "course",
            upload.to_str().unwrap(),
            &shots,
        ],
    );
    assert_eq!(
        seen["files"],
        serde_json::json!(["hello.txt", "uploaded-from-the-app.txt"]),
        "{seen}"
    );
    assert_eq!(
        project_file(&server, &alice, &project, "uploaded-from-the-app.txt").await,
        b"from the web app\n"
    );
    assert_eq!(seen["jupyterlab"], true, "{seen}");
    let origin = seen["tab_origin"].as_str().unwrap();
    assert!(
        origin.ends_with(&format!(".localhost:{}", server.sessions_addr.port())),
        "JupyterLab is not on the session's own origin: {origin}"
    );
    let text = |key: &str| seen[key].as_str().unwrap_or_default().to_string();
    assert!(
        text("idle").starts_with("Stops if idle in 29 min"),
        "{seen}"
    );
    assert!(
        text("lifetime").starts_with("Stops in any case in 3 h 5"),
        "{seen}"
    );
    assert!(text("usage").contains("of 600 min used"), "{seen}");
    assert_eq!(seen["usage_bar"], 36000, "the bar counts seconds: {seen}");
    let progress: Vec<String> = serde_json::from_value(seen["stop_progress"].clone()).unwrap();
    assert!(
        progress[0].starts_with("Syncing the workspace's files back to the project"),
        "{seen}"
    );
    assert_eq!(
        progress.last().unwrap(),
        "Stopped. 1 file synced, 1 refused",
        "{seen}"
    );
    assert!(text("not_synced").starts_with("too-big.txt:"), "{seen}");
    assert_eq!(
        project_file(&server, &alice, &project, "made-in-jupyter.txt").await,
        b"hello"
    );
}
