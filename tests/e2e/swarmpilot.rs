//! Conformance with SwarmPilot's own side of the protocol: task instances written in Python
//! from SwarmPilot's sources (tests/peers/swarmpilot_task_instance.py), not by Weft's code,
//! registered with the seed's exact body and reporting as SwarmPilot's instances do.

use crate::on_both_backends;
use crate::scheduler::wait_finished;
use crate::support::{Backend, TestServer, send, wait};
use futures::{SinkExt as _, StreamExt as _};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

/// A running Python peer; killed when dropped.
struct Peer {
    child: Child,
    port: u16,
    /// What it printed after `listening`: one `reported TASK ANSWER` line per report.
    lines: Arc<Mutex<Vec<String>>>,
}

impl Peer {
    fn start(model: &str, scheduler: &str, args: &[&str]) -> Self {
        let python = std::env::var("WEFT_TEST_PYTHON").unwrap_or_else(|_| {
            panic!("WEFT_TEST_PYTHON is not set: run the tests with tests/run.sh, which installs websockets")
        });
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/peers/swarmpilot_task_instance.py"
        );
        let mut child = Command::new(python)
            .arg(script)
            .args(["--model", model, "--scheduler", scheduler])
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the SwarmPilot peer");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let kept = lines.clone();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines().map_while(Result::ok);
            if let Some(first) = lines.next() {
                let _ = tx.send(first);
            }
            for line in lines {
                kept.lock().unwrap().push(line);
            }
        });
        let first = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the peer started");
        let port = first
            .strip_prefix("listening ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line '{first}'"));
        Self { child, port, lines }
    }

    fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The answers the scheduler gave its reports.
    fn answers(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn server(backend: Backend, customize: impl FnOnce(&mut weft::config::Config)) -> TestServer {
    TestServer::start_with(backend, |c| {
        c.scheduler.health_interval_ms = 150;
        customize(c);
    })
    .await
}

/// `/ti/register` with the seed's exact body, `{"host", "port"}`: no model name.
async fn register(server: &TestServer, peer: &Peer) -> String {
    crate::scheduler::register(server, peer.port, None).await
}

async fn submit(server: &TestServer, input: Value) -> (StatusCode, Value) {
    send(
        server
            .admin(Method::POST, "/queue/submit")
            .json(&json!({"model_name": "sp", "task_input": input, "metadata": {}})),
    )
    .await
}

async fn instances(server: &TestServer) -> Vec<Value> {
    let (status, list) = send(server.admin(Method::GET, "/api/v1/scheduler/instances")).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    list.as_array().unwrap().clone()
}

on_both_backends!(
    a_swarmpilot_instance_serves_tasks_end_to_end,
    a_reported_queue_counts_in_the_predicted_wait,
    reports_from_the_wrong_instance_are_answered_as_swarmpilot_does,
    the_result_socket_refuses_an_unknown_instance,
    an_instance_is_removed_by_host_and_port
);

/// Three peers, one per way SwarmPilot's instances report (`/notify/task_complete`,
/// `/result/submit`, `/ws/result_submit`), all naming themselves by `host:port` and sending
/// no token: every task completes, results show on `/task/query`, and `/queue/info` follows
/// the queues the instances report.
async fn a_swarmpilot_instance_serves_tasks_end_to_end(backend: Backend) {
    let server = server(backend, |_| {}).await;
    let base = server.url("");
    let notify = Peer::start("sp", &base, &["--report", "notify"]);
    let result = Peer::start("sp", &base, &["--report", "result"]);
    // Its predictor is off and 40 tasks from elsewhere wait in its queue: only /info says so.
    let socket = Peer::start(
        "sp",
        &base,
        &["--report", "ws", "--no-predict", "--backlog", "40"],
    );
    let ids: HashMap<String, String> = [
        (register(&server, &notify).await, "notify"),
        (register(&server, &result).await, "result"),
        (register(&server, &socket).await, "ws"),
    ]
    .into_iter()
    .map(|(id, how)| (id, how.to_string()))
    .collect();
    for ti in instances(&server).await {
        assert_eq!(
            ti["model_name"], "sp",
            "the model comes from deployed_model: {ti}"
        );
    }

    let (status, body) = crate::scheduler::activate(&server, "round-robin", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut tasks = Vec::new();
    for i in 0..24 {
        let (status, answer) = submit(&server, json!({"n": i})).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert!(
            ids.contains_key(answer["scheduled_ti"].as_str().unwrap()),
            "{answer}"
        );
        tasks.push(answer["task_id"].as_str().unwrap().to_string());
    }
    let done = wait_finished(&server, &tasks).await;
    let mut by_way: HashMap<&str, usize> = HashMap::new();
    for (i, id) in tasks.iter().enumerate() {
        let task = &done[id];
        assert_eq!(task["task_status"], "completed", "{task}");
        let way = ids[task["scheduled_ti"].as_str().unwrap()].as_str();
        *by_way.entry(way).or_default() += 1;
        if way == "notify" {
            // SwarmPilot's completion notification carries no result.
            assert!(task["result"].is_null(), "{task}");
        } else {
            assert_eq!(task["result"]["echo"]["n"], i, "{task}");
            assert_eq!(task["result"]["model"], "sp", "{task}");
        }
        assert!(task["execution_time"].as_f64().unwrap() > 0.0, "{task}");
    }
    assert_eq!(
        by_way.len(),
        3,
        "every way of reporting was used: {by_way:?}"
    );
    for (peer, answer) in [
        (&notify, "\"success\""),
        (&result, "\"success\""),
        (&socket, "\"ack\""),
    ] {
        let answers = peer.answers();
        assert!(!answers.is_empty());
        for line in answers {
            assert!(
                line.starts_with("reported ") && line.contains(answer) && !line.contains("false"),
                "{line}"
            );
        }
    }
}

/// The queue an instance reports on its `/info` (40 tasks from elsewhere waiting, its
/// predictor off) counts in its predicted wait on `/queue/info`.
async fn a_reported_queue_counts_in_the_predicted_wait(backend: Backend) {
    let server = server(backend, |_| {}).await;
    let base = server.url("");
    let result = Peer::start("sp", &base, &["--report", "result"]);
    let socket = Peer::start(
        "sp",
        &base,
        &["--report", "ws", "--no-predict", "--backlog", "40"],
    );
    let result_id = register(&server, &result).await;
    let socket_id = register(&server, &socket).await;
    // A wait is predicted from service times seen: a few tasks on each first.
    let (status, body) = crate::scheduler::activate(&server, "round-robin", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut tasks = Vec::new();
    for i in 0..6 {
        let (status, answer) = submit(&server, json!({"n": i})).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        tasks.push(answer["task_id"].as_str().unwrap().to_string());
    }
    wait_finished(&server, &tasks).await;
    let heard = wait::until(
        "the socket peer's reported queue",
        Duration::from_secs(10),
        || async {
            let listed = instances(&server).await;
            let heard = listed
                .iter()
                .find(|ti| ti["ti_uuid"] == socket_id.as_str())
                .unwrap()
                .clone();
            if heard["reported_queue"] == 40 {
                Ok(heard)
            } else {
                Err(heard)
            }
        },
    )
    .await;
    assert_eq!(heard["instance_status"], "running", "{heard}");
    let (status, info) = send(server.admin(Method::GET, "/queue/info?model_name=sp")).await;
    assert_eq!(status, StatusCode::OK, "{info}");
    let wait = |id: &str| {
        info["queues"]
            .as_array()
            .unwrap()
            .iter()
            .find(|q| q["ti_uuid"] == id)
            .unwrap()["waiting_time_expect"]
            .as_f64()
            .unwrap()
    };
    assert!(
        wait(&socket_id) > 10.0 * wait(&result_id).max(1.0),
        "40 queued tasks wait longer than an idle queue: {info}"
    );
}

/// Reports naming no registered instance get the seed's answer (a warning) and SwarmPilot's
/// (an error); a task is reported only by the instance that holds it, by whatever name.
async fn reports_from_the_wrong_instance_are_answered_as_swarmpilot_does(backend: Backend) {
    let server = server(backend, |_| {}).await;
    let base = server.url("");
    let notify = Peer::start("sp", &base, &["--report", "notify"]);
    let result = Peer::start("sp", &base, &["--report", "result"]);
    let notify_id = register(&server, &notify).await;
    register(&server, &result).await;
    let (status, body) = crate::scheduler::activate(&server, "round-robin", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut tasks = Vec::new();
    for i in 0..2 {
        let (status, answer) = submit(&server, json!({"n": i})).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        tasks.push(answer["task_id"].as_str().unwrap().to_string());
    }
    let done = wait_finished(&server, &tasks).await;
    // The seed's answers to reports naming no registered instance, and SwarmPilot's.
    let unknown = json!({"task_id": tasks[0], "instance_id": "127.0.0.1:1", "execution_time": 1.0, "result": {}});
    let (status, warned) = send(
        server
            .anon(Method::POST, "/notify/task_complete")
            .json(&unknown),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{warned}");
    assert_eq!(warned["status"], "warning", "{warned}");
    assert_eq!(
        warned["message"], "Instance 127.0.0.1:1 not found",
        "{warned}"
    );
    let (status, refused) = send(server.anon(Method::POST, "/result/submit").json(&unknown)).await;
    assert_eq!(
        (status, &refused["status"]),
        (StatusCode::OK, &json!("error")),
        "{refused}"
    );
    // A task is reported only by the instance that holds it, by whatever name it goes.
    let held_by_notify = tasks
        .iter()
        .find(|id| done[*id]["scheduled_ti"] == notify_id.as_str())
        .expect("round-robin gave each peer a task");
    let forged = json!({"task_id": held_by_notify, "instance_id": format!("http://{}", result.address()), "execution_time": 1.0, "result": {"forged": true}});
    let (status, wrong) = send(server.anon(Method::POST, "/result/submit").json(&forged)).await;
    assert_eq!(
        (status, &wrong["code"]),
        (StatusCode::CONFLICT, &json!("50202")),
        "{wrong}"
    );
}

/// The result socket closes (1008) on a registration naming no instance.
async fn the_result_socket_refuses_an_unknown_instance(backend: Backend) {
    let server = server(backend, |_| {}).await;
    let base = server.url("");
    // The result socket closes on a registration naming no instance.
    let (mut ws, _) = tokio_tungstenite::connect_async(format!(
        "ws://{}/ws/result_submit",
        base.trim_start_matches("http://")
    ))
    .await
    .expect("connect");
    ws.send(Message::text(
        json!({"type": "register", "instance_id": "127.0.0.1:1"}).to_string(),
    ))
    .await
    .unwrap();
    match ws.next().await {
        Some(Ok(Message::Close(Some(frame)))) => {
            assert_eq!(u16::from(frame.code), 1008);
            assert!(frame.reason.contains("not found"), "{}", frame.reason);
        }
        other => panic!("expected a close, got {other:?}"),
    }
}

/// SwarmPilot's newer scheduler removes an instance by host and port; so does Weft.
async fn an_instance_is_removed_by_host_and_port(backend: Backend) {
    let server = server(backend, |_| {}).await;
    let base = server.url("");
    let notify = Peer::start("sp", &base, &["--report", "notify"]);
    let result = Peer::start("sp", &base, &["--report", "result"]);
    let notify_id = register(&server, &notify).await;
    register(&server, &result).await;
    // SwarmPilot's newer scheduler removes an instance by host and port.
    let (status, removed) = send(
        server
            .admin(Method::POST, "/ti/remove")
            .json(&json!({"host": "127.0.0.1", "port": notify.port})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{removed}");
    assert_eq!(removed["status"], "success", "{removed}");
    assert_eq!(removed["ti_uuid"], notify_id.as_str(), "{removed}");
    assert_eq!(instances(&server).await.len(), 1);
}

/// A task its instance never reports fails after `task_timeout_secs` with the reason and
/// leaves the scheduler's memory; at most `max_unfinished_tasks` are held at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreported_tasks_time_out_and_unfinished_ones_are_bounded() {
    let server = server(Backend::Sqlite, |c| {
        c.scheduler.task_timeout_secs = 1;
        c.scheduler.max_unfinished_tasks = 2;
    })
    .await;
    let silent = Peer::start("sp", &server.url(""), &["--report", "none"]);
    let ti_uuid = register(&server, &silent).await;
    let mut tasks = Vec::new();
    for i in 0..2 {
        let (status, answer) = submit(&server, json!({"n": i})).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        tasks.push(answer["task_id"].as_str().unwrap().to_string());
    }
    let (status, busy) = submit(&server, json!({"n": 2})).await;
    assert_eq!(
        (status, &busy["code"]),
        (StatusCode::SERVICE_UNAVAILABLE, &json!("50103")),
        "{busy}"
    );
    assert_eq!(busy["status"], "error", "{busy}");

    let done = wait_finished(&server, &tasks).await;
    for task in done.values() {
        assert_eq!(task["task_status"], "failed", "{task}");
        let error = task["error"].as_str().unwrap();
        assert!(
            error.contains(&ti_uuid) && error.contains("did not report"),
            "{error}"
        );
    }
    let listed = instances(&server).await;
    assert_eq!(listed[0]["in_flight"], 0, "{listed:?}");
    let (status, answer) = submit(&server, json!({"n": 3})).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "room again once the others timed out: {answer}"
    );
}
