//! Notebooks against a real Jupyter session (the `weft/jupyter:2` image the test command
//! builds): outputs of every kind, streamed over the WebSocket and saved to a `.ipynb` that
//! Jupyter's own nbformat validates; timeouts, a crashing kernel, queued executions, history.

use crate::support::docker::{self, Cleanup};
use crate::support::{Backend, TestServer, assert_error, send, wait};
use base64::Engine as _;
use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::panic::Location;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

async fn server(backend: Backend) -> (TestServer, Cleanup) {
    server_with(backend, |_| {}).await
}

async fn server_with(
    backend: Backend,
    customize: impl FnOnce(&mut weft::config::Config),
) -> (TestServer, Cleanup) {
    let image = weft::config::WorkspacesConfig::default().jupyter.image;
    docker::require();
    assert!(
        docker::docker(&["image", "inspect", &image]).0,
        "{image} is missing: run tests/run.sh (it builds it)"
    );
    docker::server(backend, |c| {
        c.workspaces.start_timeout_secs = 90;
        c.workspaces.memory = "512Mi".into();
        c.notebooks.interrupt_grace_secs = 5;
        customize(c);
    })
    .await
}

async fn create(server: &TestServer, token: &str, body: Value) -> (StatusCode, Value) {
    send(
        server
            .with_token(token, Method::POST, "/api/v1/notebooks")
            .json(&body),
    )
    .await
}

/// `POST …/execute` with `body`, asserting it answered; returns the execution.
#[track_caller]
fn execute(
    server: &TestServer,
    token: &str,
    notebook: &str,
    body: Value,
) -> impl Future<Output = Value> {
    let caller = Location::caller();
    let request = server
        .with_token(
            token,
            Method::POST,
            &format!("/api/v1/notebooks/{notebook}/execute"),
        )
        .json(&body);
    async move {
        let (status, execution) = send(request).await;
        assert!(
            status == StatusCode::OK,
            "{caller}: status {status}: {execution}"
        );
        execution
    }
}

/// Runs `code` in a new cell of the notebook; returns the execution.
#[track_caller]
fn run(
    server: &TestServer,
    token: &str,
    notebook: &str,
    code: &str,
) -> impl Future<Output = Value> {
    execute(server, token, notebook, json!({ "code": code }))
}

/// `GET path`, asserting 200; returns the body.
#[track_caller]
fn get(server: &TestServer, token: &str, path: &str) -> impl Future<Output = Value> {
    let caller = Location::caller();
    let request = server.with_token(token, Method::GET, path);
    let path = path.to_string();
    async move {
        let (status, body) = send(request).await;
        assert!(
            status == StatusCode::OK,
            "{caller}: GET {path}: status {status}: {body}"
        );
        body
    }
}

/// The text of a stream output (a string while streamed, lines once saved).
fn text(output: &Value) -> String {
    match &output["text"] {
        Value::Array(lines) => lines.iter().filter_map(Value::as_str).collect(),
        other => other.as_str().unwrap_or_default().to_string(),
    }
}

fn stdout(execution: &Value) -> String {
    execution["outputs"]
        .as_array()
        .expect("outputs")
        .iter()
        .filter(|o| o["output_type"] == "stream" && o["name"] == "stdout")
        .map(text)
        .collect()
}

/// The notebook's output WebSocket.
async fn output(
    server: &TestServer,
    token: &str,
    notebook: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let request = server.ws_request(token, &format!("/api/v1/notebooks/{notebook}/output"));
    let (socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("output WebSocket");
    socket
}

/// The statuses of a notebook's history, newest first.
fn statuses(history: &Value) -> Vec<&str> {
    history
        .as_array()
        .expect("a history")
        .iter()
        .map(|e| e["status"].as_str().expect("a status"))
        .collect()
}

/// Polls the notebook's status until `done` holds (at most 60 s).
#[track_caller]
fn wait_status<'a>(
    server: &'a TestServer,
    token: &'a str,
    notebook: &'a str,
    done: fn(&Value) -> bool,
) -> impl Future<Output = Value> + 'a {
    wait::until(
        "the notebook's status",
        Duration::from_secs(60),
        move || async move {
            let status = get(
                server,
                token,
                &format!("/api/v1/notebooks/{notebook}/status"),
            )
            .await;
            if done(&status) {
                Ok(status)
            } else {
                Err(status)
            }
        },
    )
}

/// Validates `ipynb` with Jupyter's own nbformat (from PyPI; the test command installs it).
fn nbformat_validate(ipynb: &str) {
    let python = std::env::var("WEFT_TEST_PYTHON").unwrap_or_else(|_| {
        panic!(
            "WEFT_TEST_PYTHON is not set: run the tests with tests/run.sh, which installs nbformat"
        )
    });
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), ipynb).unwrap();
    let out = std::process::Command::new(python)
        .args([
            "-c",
            "import sys, nbformat; nb = nbformat.read(sys.argv[1], as_version=4); \
             nbformat.validate(nb); print(len(nb.cells))",
        ])
        .arg(file.path())
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "nbformat refuses the saved notebook: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

const PNG: &str = r#"
import struct, zlib
from IPython.display import Image, display
def chunk(kind, data):
    return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data) & 0xffffffff)
rows = b'\x00\xff\x00\x00\x00\x00\xff'  # one row: filter 0, a red and a blue pixel
png = b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', 2, 1, 8, 2, 0, 0, 0)) \
    + chunk(b'IDAT', zlib.compress(rows)) + chunk(b'IEND', b'')
display(Image(data=png))
"#;

/// A server with Jupyter, user bob (and his id), and a notebook `path` in a new project of his;
/// returns them with the project's and the notebook's ids.
async fn bobs_notebook(path: &str) -> (TestServer, Cleanup, String, String, String, String) {
    let (server, cleanup) = server(Backend::Sqlite).await;
    let (bob_id, bob) = server.user("bob").await;
    let project = server.project(&bob, "analysis").await;
    let (status, notebook) =
        create(&server, &bob, json!({"project_id": project, "path": path})).await;
    assert_eq!(status, StatusCode::CREATED, "{notebook}");
    let id = notebook["id"].as_str().unwrap().to_string();
    (server, cleanup, bob_id, bob, project, id)
}

/// Bad paths, another user's project and a file that is no notebook are refused and create
/// nothing; a notebook is created once (as a valid, empty file), and only its owner sees it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notebooks_are_created_once_valid_and_private() {
    let (server, _cleanup) = server(Backend::Sqlite).await;
    let (_, bob) = server.user("bob").await;
    let (_, eve) = server.user("eve").await;
    let project = server.project(&bob, "analysis").await;

    // Bad requests first: nothing is created by them.
    for (path, code) in [("notes.txt", "90402"), ("../up.ipynb", "90402")] {
        let (status, body) =
            create(&server, &bob, json!({"project_id": project, "path": path})).await;
        assert_error(status, &body, 422, code);
    }
    let (status, body) = create(&server, &eve, json!({"project_id": project})).await;
    assert_error(status, &body, 404, "10205");
    server
        .put_file(&bob, &project, "broken.ipynb", "{\"cells\": 1}")
        .await;
    let (status, body) = create(
        &server,
        &bob,
        json!({"project_id": project, "path": "broken.ipynb"}),
    )
    .await;
    assert_error(status, &body, 422, "20401");

    let (status, notebook) = create(
        &server,
        &bob,
        json!({"project_id": project, "path": "work/first.ipynb"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{notebook}");
    let id = notebook["id"].as_str().unwrap().to_string();
    assert_eq!(notebook["path"], "work/first.ipynb");
    assert_eq!(notebook["cells"], json!([]));
    assert_eq!(notebook["kernel"]["state"], "starting");
    let (status, body) = create(
        &server,
        &bob,
        json!({"project_id": project, "path": "work/first.ipynb"}),
    )
    .await;
    assert_error(status, &body, 409, "20202");
    assert_eq!(body["details"]["notebook_id"], id.as_str());
    let (status, body) =
        send(server.with_token(&eve, Method::GET, &format!("/api/v1/notebooks/{id}"))).await;
    assert_error(status, &body, 404, "20201");
    let listed = get(
        &server,
        &bob,
        &format!("/api/v1/notebooks?project_id={project}"),
    )
    .await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(get(&server, &eve, "/api/v1/notebooks").await, json!([]));
    // The file is a valid, empty notebook in the project at once.
    let saved = server
        .download(
            &bob,
            &format!("/api/v1/projects/{project}/files/work/first.ipynb"),
        )
        .await;
    nbformat_validate(&saved);
}

/// Each kind of output comes back from its execution (stream, result, image, error), a cell
/// run again with new code is replaced, and the history lists every execution.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outputs_of_every_kind_come_back_and_cells_are_replaced() {
    let (server, _cleanup, bob_id, bob, _, id) = bobs_notebook("work/first.ipynb").await;
    let printed = run(&server, &bob, &id, "print('hello')").await;
    assert_eq!(printed["status"], "ok", "{printed}");
    assert_eq!(stdout(&printed), "hello\n");
    assert_eq!(printed["user_id"], bob_id.as_str());
    let print_cell = printed["cell_id"].as_str().unwrap().to_string();

    let result = run(&server, &bob, &id, "x = 20\nx + 22").await;
    assert_eq!(result["status"], "ok", "{result}");
    let value = &result["outputs"][0];
    assert_eq!(value["output_type"], "execute_result");
    assert_eq!(value["data"]["text/plain"], "42");
    assert!(
        result["execution_count"].as_i64().unwrap() > printed["execution_count"].as_i64().unwrap()
    );

    let image = run(&server, &bob, &id, PNG).await;
    assert_eq!(image["status"], "ok", "{image}");
    let display = &image["outputs"][0];
    assert_eq!(display["output_type"], "display_data");
    let png = base64::engine::general_purpose::STANDARD
        .decode(
            display["data"]["image/png"]
                .as_str()
                .unwrap()
                .replace('\n', ""),
        )
        .expect("base64 PNG");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(
        &png[16..24],
        &[0, 0, 0, 2, 0, 0, 0, 1],
        "2 x 1 pixels, as drawn"
    );

    let raised = run(
        &server,
        &bob,
        &id,
        "def f():\n    raise ValueError('bad value')\nf()",
    )
    .await;
    assert_eq!(raised["status"], "error", "{raised}");
    assert_eq!(raised["error"]["ename"], "ValueError");
    assert_eq!(raised["error"]["evalue"], "bad value");
    let traceback = raised["error"]["traceback"].as_array().unwrap();
    assert!(
        traceback
            .iter()
            .any(|l| l.as_str().unwrap().contains("f()")),
        "the traceback shows the call: {traceback:?}"
    );
    assert_eq!(raised["outputs"][0]["output_type"], "error");

    // Run an existing cell again with new code: the cell is replaced, not added.
    let again = execute(
        &server,
        &bob,
        &id,
        json!({"cell_id": print_cell, "code": "print('again')"}),
    )
    .await;
    assert_eq!(stdout(&again), "again\n");
    assert_eq!(again["cell_id"], print_cell.as_str());
    let rerun = execute(&server, &bob, &id, json!({"cell_id": print_cell})).await;
    assert_eq!(stdout(&rerun), "again\n", "the cell's own source ran");

    let status = get(&server, &bob, &format!("/api/v1/notebooks/{id}/status")).await;
    assert_eq!(status["kernel"]["state"], "idle", "{status}");
    assert_eq!(status["running"], Value::Null);
    assert_eq!(status["queued"], 0);

    let history = get(&server, &bob, &format!("/api/v1/notebooks/{id}/history")).await;
    assert_eq!(
        statuses(&history),
        ["ok", "ok", "error", "ok", "ok", "ok"],
        "newest first"
    );
    assert_eq!(history[0]["code"], "print('again')");
    assert_eq!(history[5]["code"], "print('hello')");
    for entry in history.as_array().unwrap() {
        assert_eq!(entry["user_id"], bob_id.as_str());
        assert!(entry["duration_ms"].is_u64(), "whole milliseconds: {entry}");
        assert!(
            entry.get("outputs").is_none(),
            "the history holds no outputs"
        );
    }

    // The notebook as Weft shows it: four cells, outputs saved.
    let shown = get(&server, &bob, &format!("/api/v1/notebooks/{id}")).await;
    let cells = shown["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 4);
    assert_eq!(cells[0]["id"], print_cell.as_str());
    assert_eq!(cells[0]["source"], "print('again')");
    assert_eq!(cells[1]["outputs"][0]["data"]["text/plain"], "42");
    assert_eq!(cells[3]["outputs"][0]["ename"], "ValueError");
}

/// Lines a cell prints come over the notebook's WebSocket one by one, as they are printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn printed_lines_stream_as_they_are_printed() {
    let (server, _cleanup, _, bob, _, id) = bobs_notebook("stream.ipynb").await;
    let mut socket = output(&server, &bob, &id).await;
    // A loop printing once a second: each line comes over the WebSocket as it is printed.
    let looping = {
        let (client, url, token) = (
            server.client.clone(),
            server.url(&format!("/api/v1/notebooks/{id}/execute")),
            bob.clone(),
        );
        tokio::spawn(async move {
            let code = "import time\nfor i in range(3):\n    print(f'tick {i}', flush=True)\n    time.sleep(1)";
            send(
                client
                    .post(url)
                    .bearer_auth(token)
                    .json(&json!({ "code": code })),
            )
            .await
        })
    };
    let mut ticks = Vec::new();
    let mut kinds = Vec::new();
    let finished_at = loop {
        let message = tokio::time::timeout(Duration::from_secs(60), socket.next())
            .await
            .expect("events in time")
            .expect("socket open")
            .expect("message");
        let Message::Text(message) = message else {
            continue;
        };
        let event: Value = serde_json::from_str(&message).unwrap();
        assert_eq!(event["notebook_id"], id.as_str());
        if event["type"] == "kernel" {
            continue;
        }
        kinds.push(event["type"].as_str().unwrap().to_string());
        let streamed = event["type"] == "output" && text(&event["output"]).starts_with("tick");
        if streamed {
            ticks.push((text(&event["output"]), Instant::now()));
        }
        if event["type"] == "execution_finished" && !ticks.is_empty() {
            assert_eq!(event["status"], "ok");
            break Instant::now();
        }
    };
    let (status, looped) = looping.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{looped}");
    assert_eq!(stdout(&looped), "tick 0\ntick 1\ntick 2\n");
    let lines: Vec<&str> = ticks.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        lines,
        ["tick 0\n", "tick 1\n", "tick 2\n"],
        "one event per line, in order"
    );
    assert!(
        finished_at - ticks[0].1 >= Duration::from_millis(1500),
        "the first line came as it was printed, not with the end"
    );
    assert!(kinds.contains(&"execution_started".to_string()));
    let history = get(&server, &bob, &format!("/api/v1/notebooks/{id}/history")).await;
    assert!(
        history[0]["duration_ms"].as_i64().unwrap() >= 2000,
        "the loop took its seconds: {history}"
    );
}

/// Stopping the session shuts the kernel down and the saved file holds every output;
/// reopened, the notebook reads back from the project and runs in a new session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_saves_every_output_and_reopening_starts_afresh() {
    let (server, _cleanup, _, bob, project, id) = bobs_notebook("work/first.ipynb").await;
    for code in [
        "print('hello')",
        "x = 20\nx + 22",
        PNG,
        "raise ValueError('bad value')",
    ] {
        run(&server, &bob, &id, code).await;
    }
    let status = get(&server, &bob, &format!("/api/v1/notebooks/{id}/status")).await;
    let session = status["kernel"]["session_id"].as_str().unwrap().to_string();
    let (status, stopped) = server.stop_session(&bob, &project).await;
    assert_eq!(status, StatusCode::OK, "{stopped}");
    let status = get(&server, &bob, &format!("/api/v1/notebooks/{id}/status")).await;
    assert_eq!(status["kernel"]["state"], "shutdown", "{status}");
    let saved = server
        .download(
            &bob,
            &format!("/api/v1/projects/{project}/files/work/first.ipynb"),
        )
        .await;
    nbformat_validate(&saved);
    let ipynb: Value = serde_json::from_str(&saved).unwrap();
    assert_eq!(ipynb["nbformat"], 4);
    assert_eq!(ipynb["metadata"]["kernelspec"]["name"], "python3");
    let saved_cells = ipynb["cells"].as_array().unwrap();
    assert_eq!(saved_cells.len(), 4);
    assert_eq!(text(&saved_cells[0]["outputs"][0]), "hello\n");
    assert_eq!(saved_cells[1]["outputs"][0]["data"]["text/plain"], "42");
    assert!(saved_cells[2]["outputs"][0]["data"]["image/png"].is_string());
    assert_eq!(saved_cells[3]["outputs"][0]["evalue"], "bad value");

    let reopened = get(&server, &bob, &format!("/api/v1/notebooks/{id}")).await;
    assert_eq!(reopened["cells"].as_array().unwrap().len(), 4);
    assert_eq!(reopened["kernel"]["state"], "shutdown");
    let fresh = run(&server, &bob, &id, "x").await;
    assert_eq!(fresh["status"], "error", "a new kernel: {fresh}");
    assert_eq!(fresh["error"]["ename"], "NameError");
    let status = get(&server, &bob, &format!("/api/v1/notebooks/{id}/status")).await;
    assert_ne!(
        status["kernel"]["session_id"],
        session.as_str(),
        "a new session"
    );
    assert_eq!(
        get(&server, &bob, &format!("/api/v1/notebooks/{id}")).await["cells"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
}

/// A server with Jupyter on PostgreSQL, user bob and an untitled notebook in a new project of
/// his; returns them with the project's and the notebook's ids.
async fn bobs_job() -> (TestServer, Cleanup, String, String, String) {
    let (server, cleanup) = server(Backend::Postgres).await;
    let (_, bob) = server.user("bob").await;
    let project = server.project(&bob, "jobs").await;
    let (status, notebook) = create(&server, &bob, json!({"project_id": project})).await;
    assert_eq!(status, StatusCode::CREATED, "{notebook}");
    assert_eq!(notebook["path"], "Untitled.ipynb");
    let id = notebook["id"].as_str().unwrap().to_string();
    (server, cleanup, bob, project, id)
}

/// Executions with a bad body, of an unknown cell or notebook are refused with their codes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_executions_are_refused() {
    let (server, _cleanup, bob, _, id) = bobs_job().await;
    // Bad executions change nothing.
    let execute_path = format!("/api/v1/notebooks/{id}/execute");
    for (body, status, code) in [
        (json!({}), 422, "90402"),
        (json!({"code": "1", "timeout_secs": -1}), 422, "90402"),
        (json!({"code": "1", "what": 1}), 422, "90402"),
        (json!({"cell_id": "nope"}), 404, "20203"),
    ] {
        let (got, answer) = send(
            server
                .with_token(&bob, Method::POST, &execute_path)
                .json(&body),
        )
        .await;
        assert_error(got, &answer, status, code);
    }
    let (got, answer) = send(
        server
            .with_token(&bob, Method::POST, "/api/v1/notebooks/nope/execute")
            .json(&json!({"code": "1"})),
    )
    .await;
    assert_error(got, &answer, 404, "20201");
    let history = get(&server, &bob, &format!("/api/v1/notebooks/{id}/history")).await;
    assert_eq!(history, json!([]), "nothing ran");
}

/// A timeout interrupts the kernel, which lives on with its variables.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_interrupts_the_kernel_which_lives_on() {
    let (server, _cleanup, bob, _, id) = bobs_job().await;
    // A timeout interrupts the kernel, which lives on.
    let slow = execute(
        &server,
        &bob,
        &id,
        json!({"code": "x = 7\nimport time\ntime.sleep(120)", "timeout_secs": 2}),
    )
    .await;
    assert_eq!(slow["status"], "timeout", "{slow}");
    assert!(
        slow["message"].as_str().unwrap().contains("interrupted"),
        "{slow}"
    );
    assert_eq!(slow["error"]["ename"], "KeyboardInterrupt");
    assert!(
        slow["duration_ms"].as_i64().unwrap() < 60_000,
        "it did not run to its end"
    );
    let alive = run(&server, &bob, &id, "x * 6").await;
    assert_eq!(
        alive["outputs"][0]["data"]["text/plain"], "42",
        "same kernel: {alive}"
    );
    let history = get(&server, &bob, &format!("/api/v1/notebooks/{id}/history")).await;
    assert_eq!(statuses(&history), ["ok", "timeout"]);
}

/// Executions sent while one runs wait their turn, and run in the order they came.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executions_wait_their_turn_in_order() {
    let (server, _cleanup, bob, _, id) = bobs_job().await;
    let execute_path = format!("/api/v1/notebooks/{id}/execute");
    // Executions sent while one runs wait their turn, in order.
    let send_code = |code: &'static str| {
        let (client, url, token) = (
            server.client.clone(),
            server.url(&execute_path),
            bob.clone(),
        );
        tokio::spawn(async move {
            send(
                client
                    .post(url)
                    .bearer_auth(token)
                    .json(&json!({ "code": code })),
            )
            .await
        })
    };
    let first = send_code("import time\ntime.sleep(2)\nprint('first')");
    wait_status(&server, &bob, &id, |s| {
        s["running"]["code"]
            .as_str()
            .is_some_and(|c| c.contains("first"))
    })
    .await;
    let second = send_code("print('second')");
    wait_status(&server, &bob, &id, |s| s["queued"] == 1).await;
    let third = send_code("print('third')");
    let busy = wait_status(&server, &bob, &id, |s| s["queued"] == 2).await;
    assert_eq!(busy["kernel"]["state"], "busy");
    let mut done = Vec::new();
    for handle in [first, second, third] {
        let (status, execution) = handle.await.unwrap();
        assert_eq!(status, StatusCode::OK, "{execution}");
        done.push(execution);
    }
    assert_eq!(
        done.iter().map(stdout).collect::<Vec<_>>(),
        ["first\n", "second\n", "third\n"]
    );
    let counts: Vec<i64> = done
        .iter()
        .map(|e| e["execution_count"].as_i64().unwrap())
        .collect();
    assert!(
        counts[0] < counts[1] && counts[1] < counts[2],
        "ran in order: {counts:?}"
    );
    let time = |e: &Value, field: &str| {
        chrono::DateTime::parse_from_rfc3339(e[field].as_str().unwrap()).unwrap()
    };
    assert!(
        time(&done[1], "started_at") >= time(&done[0], "finished_at"),
        "one at a time"
    );
}

/// A kernel that dies is restarted and the failure reported; its variables are gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_kernel_is_restarted_and_reported() {
    let (server, _cleanup, bob, _, id) = bobs_job().await;
    let set = run(&server, &bob, &id, "x = 1").await;
    assert_eq!(set["status"], "ok", "{set}");
    // A kernel that dies is restarted and the failure reported; its variables are gone.
    let mut socket = output(&server, &bob, &id).await;
    let crashed = run(&server, &bob, &id, "import os\nos._exit(1)").await;
    assert_eq!(crashed["status"], "kernel_died", "{crashed}");
    assert!(
        crashed["message"].as_str().unwrap().contains("restarted"),
        "{crashed}"
    );
    let mut states = Vec::new();
    while let Ok(Some(Ok(Message::Text(message)))) =
        tokio::time::timeout(Duration::from_millis(500), socket.next()).await
    {
        let event: Value = serde_json::from_str(&message).unwrap();
        if event["type"] == "kernel" {
            states.push(event["kernel_state"].as_str().unwrap().to_string());
        }
    }
    assert!(states.contains(&"restarting".to_string()), "{states:?}");
    let after = run(&server, &bob, &id, "print('back')\nx").await;
    assert_eq!(stdout(&after), "back\n", "{after}");
    assert_eq!(after["error"]["ename"], "NameError", "a new kernel process");
    let history = get(
        &server,
        &bob,
        &format!("/api/v1/notebooks/{id}/history?limit=2"),
    )
    .await;
    assert_eq!(statuses(&history), ["error", "kernel_died"]);
}

/// A deleted notebook takes its kernel, its file (in the project and in the session) and its
/// history with it; the project's other notebooks stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_notebook_goes_with_its_file() {
    let (server, _cleanup, bob, project, id) = bobs_job().await;
    let (status, second) = create(&server, &bob, json!({"project_id": project})).await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    assert_eq!(second["path"], "Untitled1.ipynb");
    let ran = run(&server, &bob, &id, "print('kept?')").await;
    assert_eq!(ran["status"], "ok", "{ran}");
    // Deleted: the kernel, the file and the history go.
    let (status, _) =
        send(server.with_token(&bob, Method::DELETE, &format!("/api/v1/notebooks/{id}"))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) =
        send(server.with_token(&bob, Method::GET, &format!("/api/v1/notebooks/{id}"))).await;
    assert_error(status, &body, 404, "20201");
    assert_eq!(server.file_paths(&bob, &project).await, ["Untitled1.ipynb"]);
    let (status, report) = send(server.with_token(
        &bob,
        Method::POST,
        &format!("/api/v1/projects/{project}/session/sync"),
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(
        server.file_paths(&bob, &project).await,
        ["Untitled1.ipynb"],
        "the session's copy went too"
    );
}

/// A kernel that ignores the interrupt is restarted once the grace is over: the execution
/// ends as a timeout that says so, and the next one runs on a fresh kernel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kernel_ignoring_the_interrupt_is_restarted() {
    let (server, _cleanup, bob, _, id) = bobs_job().await;
    let stubborn = execute(
        &server,
        &bob,
        &id,
        json!({
            "code": "x = 7\nimport signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n\
                     while True:\n    time.sleep(0.1)",
            "timeout_secs": 2
        }),
    )
    .await;
    assert_eq!(stubborn["status"], "timeout", "{stubborn}");
    let message = stubborn["message"].as_str().unwrap();
    assert!(
        message.contains("did not stop when interrupted") && message.contains("restarted"),
        "{stubborn}"
    );
    let after = run(&server, &bob, &id, "print('back')\nx").await;
    assert_eq!(stdout(&after), "back\n", "{after}");
    assert_eq!(
        after["error"]["ename"], "NameError",
        "a fresh kernel: {after}"
    );
}

/// A valid notebook already at the path is adopted, with its cells, not replaced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_notebook_is_adopted() {
    let (server, _cleanup) = server(Backend::Sqlite).await;
    let (_, bob) = server.user("bob").await;
    let project = server.project(&bob, "kept").await;
    let existing = json!({
        "nbformat": 4, "nbformat_minor": 5,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "cells": [{"cell_type": "code", "id": "kept-cell", "metadata": {}, "execution_count": null,
                   "outputs": [], "source": "print('written before')"}]
    });
    server
        .put_file(&bob, &project, "old.ipynb", &existing.to_string())
        .await;
    let (status, notebook) = create(
        &server,
        &bob,
        json!({"project_id": project, "path": "old.ipynb"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{notebook}");
    let cells = notebook["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 1, "{notebook}");
    assert_eq!(cells[0]["source"], "print('written before')", "{notebook}");
    let id = notebook["id"].as_str().unwrap();
    let ran = execute(&server, &bob, id, json!({"cell_id": cells[0]["id"]})).await;
    assert_eq!(stdout(&ran), "written before\n", "{ran}");
}

/// With `max_pending_per_user = 1`, an execution sent while the user's first one runs is
/// refused with 20301 (not queued); once the first ended, the next runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executions_per_user_are_capped() {
    let (server, _cleanup) = server_with(Backend::Sqlite, |c| {
        c.notebooks.max_pending_per_user = 1;
    })
    .await;
    let (_, bob) = server.user("bob").await;
    let project = server.project(&bob, "capped").await;
    let (status, notebook) = create(&server, &bob, json!({"project_id": project})).await;
    assert_eq!(status, StatusCode::CREATED, "{notebook}");
    let id = notebook["id"].as_str().unwrap().to_string();
    let execute_path = format!("/api/v1/notebooks/{id}/execute");

    let first = {
        let request = server
            .with_token(&bob, Method::POST, &execute_path)
            .json(&json!({"code": "import time\ntime.sleep(2)\nprint('first')"}));
        tokio::spawn(send(request))
    };
    wait_status(&server, &bob, &id, |s| !s["running"].is_null()).await;
    let (status, err) = send(
        server
            .with_token(&bob, Method::POST, &execute_path)
            .json(&json!({"code": "print('second')"})),
    )
    .await;
    assert_error(status, &err, 403, "20301");
    assert_eq!(err["details"]["limit"], 1, "{err}");
    let queue = get(&server, &bob, &format!("/api/v1/notebooks/{id}/status")).await;
    assert_eq!(
        queue["queued"], 0,
        "the refused execution was not queued: {queue}"
    );

    let (status, done) = first.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(stdout(&done), "first\n");
    let next = run(&server, &bob, &id, "print('next')").await;
    assert_eq!(stdout(&next), "next\n");
}

/// A notebook whose session waits `pending` behind `max_starting` other starts does not time
/// out in the queue: the start timeout counts from its session's own start. Two code-server
/// sessions that never answer hold the one start slot for a start timeout each, so the
/// notebook's session waits twice the start timeout (longer than the notebook's wait for it)
/// before it starts; its kernel still comes up, without a second try, and runs the cell.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kernel_waits_out_the_start_queue() {
    let code_server = weft::config::WorkspacesConfig::default().code_server.image;
    let (server, _cleanup) = server_with(Backend::Sqlite, |c| {
        c.workspaces.max_starting = 1;
        c.workspaces.start_timeout_secs = 15;
        c.workspaces.code_server.ready_path = "never/answers".into();
    })
    .await;
    assert!(
        docker::docker(&["image", "inspect", &code_server]).0,
        "{code_server} is missing: run tests/run.sh (it builds it)"
    );
    let (_, bob) = server.user("bob").await;
    let mut slow = Vec::new();
    for name in ["slow-1", "slow-2"] {
        let project = server.project(&bob, name).await;
        let (status, opened) = server.open_session(&bob, &project, "code-server").await;
        assert_eq!(status, StatusCode::CREATED, "{opened}");
        slow.push(project);
    }
    let project = server.project(&bob, "queued").await;
    let (status, notebook) = create(&server, &bob, json!({"project_id": project})).await;
    assert_eq!(status, StatusCode::CREATED, "{notebook}");
    let id = notebook["id"].as_str().unwrap().to_string();
    // The kernel the notebook's creation started comes up; a wait that gave up in the queue
    // would have left it detached until the next execution tried again.
    let path = format!("/api/v1/notebooks/{id}/status");
    let started = wait::until("the kernel started", Duration::from_secs(180), || async {
        let status = get(&server, &bob, &path).await;
        match status["kernel"]["state"].as_str() {
            Some("starting") => Err(status),
            _ => Ok(status),
        }
    })
    .await;
    assert_eq!(started["kernel"]["state"], "idle", "{started}");
    let ran = run(&server, &bob, &id, "print(1 + 1)").await;
    assert_eq!(stdout(&ran), "2\n", "{ran}");
    // The slow sessions held the slot to their timeout: the queue was as long as claimed.
    for project in &slow {
        let (_, session) = send(server.with_token(
            &bob,
            Method::GET,
            &format!("/api/v1/projects/{project}/session"),
        ))
        .await;
        assert_eq!(
            (&session["status"], &session["error"]),
            (&json!("failed"), &json!("not ready within 15 s")),
            "{session}"
        );
    }
}
