//! What the README promises of workflows beyond running them: a workflow with a run in
//! progress is not deleted (40202), nor a plugin a running run uses (60202); a node's timeout
//! only shortens its plugin's limit; the node limits per run, across runs and per workflow;
//! progress and log events reach the run's stream.

use crate::support::fixtures::fixture;
use crate::support::{Backend, TestServer, assert_error, millis, node, send};
use crate::workflows::events_until_finished;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Plugin instances the host may hold at once in the out-of-instances test: the active
/// strategy's warm one and the running node's.
const INSTANCES: u32 = 2;

/// A server (customized) with the `slow-node` fixture uploaded.
async fn server_with_slow_node(customize: impl FnOnce(&mut weft::config::Config)) -> TestServer {
    let server = TestServer::start_with(Backend::Sqlite, customize).await;
    let (status, body) = server.upload(fixture("slow-node")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    server
}

/// A workflow of `n` independent `slow-node`s sleeping `ms` each.
fn sleepers(name: &str, n: usize, ms: u64) -> Value {
    let nodes: Vec<Value> = (0..n)
        .map(|i| json!({"id": format!("s{i}"), "type": "slow-node", "config": {"ms": ms}}))
        .collect();
    json!({"name": name, "nodes": nodes})
}

/// The most nodes of `runs` that ran at the same time, from their stored start and end.
fn most_at_once(runs: &[Value]) -> usize {
    let mut edges: Vec<(i64, i32)> = Vec::new();
    for run in runs {
        for n in run["nodes"].as_array().expect("nodes") {
            edges.push((millis(&n["started_at"]), 1));
            edges.push((millis(&n["finished_at"]), -1));
        }
    }
    // An end and a start in the same millisecond: the end first.
    edges.sort();
    let (mut now, mut most) = (0i32, 0i32);
    for (_, step) in edges {
        now += step;
        most = most.max(now);
    }
    most as usize
}

/// Deleting a workflow while a run of it is in progress is a conflict (40202); once the run
/// is cancelled, it goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workflow_with_a_run_in_progress_is_not_deleted() {
    let server = server_with_slow_node(|_| {}).await;
    let token = server.admin_token.clone();
    let workflow = server
        .create_workflow(&token, sleepers("busy", 1, 60_000))
        .await;
    let id = workflow["id"].as_str().unwrap();
    let run = server.execute(&token, id, json!({})).await;
    server.wait_node_running(&token, &run, "s0").await;
    let path = format!("/api/v1/workflows/{id}");
    let (status, body) = send(server.admin(Method::DELETE, &path)).await;
    assert_error(status, &body, 409, "40202");
    assert!(body["hint"].as_str().unwrap().contains("cancel"), "{body}");
    let (status, body) = send(server.admin(Method::GET, &path)).await;
    assert_eq!(status, StatusCode::OK, "still there: {body}");

    let (status, body) =
        send(server.admin(Method::POST, &format!("/api/v1/runs/{run}/cancel"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    server.wait_run(&token, &run).await;
    let (status, body) = send(server.admin(Method::DELETE, &path)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
}

/// A plugin version a running run uses cannot be removed, even when no stored workflow names
/// it any more; once the run is over, it can.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_a_running_run_uses_stays() {
    let server = server_with_slow_node(|_| {}).await;
    let token = server.admin_token.clone();
    let workflow = server
        .create_workflow(&token, sleepers("uses", 1, 60_000))
        .await;
    let id = workflow["id"].as_str().unwrap();
    let run = server.execute(&token, id, json!({})).await;
    server.wait_node_running(&token, &run, "s0").await;
    // The workflow's new version no longer names the plugin; the run still runs it.
    let (status, body) = send(
        server
            .admin(Method::PUT, &format!("/api/v1/workflows/{id}"))
            .json(&json!({"name": "uses", "nodes": [{"id": "f", "type": "fibo"}]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = send(server.admin(Method::DELETE, "/api/v1/plugins/slow-node")).await;
    assert_error(status, &body, 409, "60202");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains(&format!("run {run}")),
        "named by the run: {body}"
    );

    let (status, body) =
        send(server.admin(Method::POST, &format!("/api/v1/runs/{run}/cancel"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    server.wait_run(&token, &run).await;
    let (status, body) = send(server.admin(Method::DELETE, "/api/v1/plugins/slow-node")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// A node's `timeout` can only shorten its plugin's wall-time limit: a longer one leaves the
/// admin's limit in force.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_timeout_only_shortens_the_plugins_limit() {
    let server = server_with_slow_node(|_| {}).await;
    let (status, body) = send(
        server
            .admin(Method::PUT, "/api/v1/plugins/slow-node/limits")
            .json(&json!({"timeout_ms": 300})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let run = server
        .run_workflow(
            &server.admin_token,
            json!({"name": "longer", "nodes": [
                {"id": "nap", "type": "slow-node", "config": {"ms": 20_000}, "timeout": "60s"}
            ]}),
        )
        .await;
    assert_eq!(run["status"], "failed", "{run}");
    let nap = node(&run, "nap");
    assert_eq!(nap["error"]["kind"], "timeout", "{nap}");
    let ran = millis(&nap["finished_at"]) - millis(&nap["started_at"]);
    assert!(
        ran < 20_000,
        "stopped at the plugin's 300 ms, not the node's 60 s: {ran} ms"
    );
}

/// `max_parallel_nodes`: of four independent nodes, at most two run at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_runs_at_most_max_parallel_nodes_at_once() {
    let server = server_with_slow_node(|c| c.workflows.max_parallel_nodes = 2).await;
    let run = server
        .run_workflow(&server.admin_token, sleepers("wide", 4, 300))
        .await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert!(most_at_once(std::slice::from_ref(&run)) <= 2, "{run}");
}

/// `max_total_nodes`: two runs of two independent nodes each share two places.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_runs_together_run_at_most_max_total_nodes() {
    let server = server_with_slow_node(|c| c.workflows.max_total_nodes = 2).await;
    let token = server.admin_token.clone();
    let workflow = server
        .create_workflow(&token, sleepers("pair", 2, 300))
        .await;
    let id = workflow["id"].as_str().unwrap();
    let first = server.execute(&token, id, json!({})).await;
    let second = server.execute(&token, id, json!({})).await;
    let runs = [
        server.wait_run(&token, &first).await,
        server.wait_run(&token, &second).await,
    ];
    for run in &runs {
        assert_eq!(run["status"], "succeeded", "{run}");
    }
    assert!(most_at_once(&runs) <= 2, "{runs:?}");
}

/// `max_nodes`: a workflow with more nodes is refused when saved, saying how many are allowed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workflow_over_max_nodes_is_refused() {
    let server = TestServer::start_with(Backend::Sqlite, |c| c.workflows.max_nodes = 3).await;
    let nodes: Vec<Value> = (0..4)
        .map(|i| json!({"id": format!("f{i}"), "type": "fibo"}))
        .collect();
    let (status, body) = send(
        server
            .admin(Method::POST, "/api/v1/workflows")
            .json(&json!({"name": "big", "nodes": nodes})),
    )
    .await;
    assert_error(status, &body, 422, "40401");
    let errors = body["details"]["errors"].as_array().unwrap();
    assert_eq!(errors[0]["kind"], "too-large", "{body}");
    assert!(
        errors[0]["message"].as_str().unwrap().contains("at most 3"),
        "{body}"
    );
}

/// A node's progress reports and log lines come over the run's stream as `node_progress` and
/// `node_log` events, in the order it made them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_and_log_events_reach_the_runs_stream() {
    let server = TestServer::start(Backend::Sqlite).await;
    let (status, body) = server.upload(fixture("noisy-node")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let token = server.admin_token.clone();
    let workflow = server
        .create_workflow(
            &token,
            json!({"name": "talks", "nodes": [
                {"id": "talker", "type": "noisy-node", "config": {"progress": 2, "logs": 2}}
            ]}),
        )
        .await;
    let (mut stream, _) =
        tokio_tungstenite::connect_async(server.ws_request(&token, "/api/v1/workflows/status"))
            .await
            .expect("status stream");
    server
        .execute(&token, workflow["id"].as_str().unwrap(), json!({}))
        .await;
    let events = events_until_finished(&mut stream).await;
    let told: Vec<Value> = events
        .iter()
        .filter(|e| e["type"] == "node_progress" || e["type"] == "node_log")
        .map(|e| {
            assert_eq!(e["node"], "talker", "{e}");
            json!([e["type"], e["fraction"], e["level"], e["message"]])
        })
        .collect();
    assert_eq!(
        told,
        [
            json!(["node_progress", 0.5, null, "step 1 of 2"]),
            json!(["node_progress", 1.0, null, "step 2 of 2"]),
            json!(["node_log", null, "info", "log line 0"]),
            json!(["node_log", null, "info", "log line 1"]),
        ],
        "{events:?}"
    );
}

/// With every plugin instance of the host in use, another call is answered 503 `60101`
/// (retryable), not queued without bound or failed as the plugin's fault.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_out_of_plugin_instances_says_so() {
    let server = server_with_slow_node(|c| c.plugins.max_instances = INSTANCES).await;
    let token = server.admin_token.clone();
    let workflow = server
        .create_workflow(&token, sleepers("holds", 1, 60_000))
        .await;
    let run = server
        .execute(&token, workflow["id"].as_str().unwrap(), json!({}))
        .await;
    server.wait_node_running(&token, &run, "s0").await;
    let (status, body) = server
        .run_plugin("fibo", json!({"config": {"n": 10}}))
        .await;
    assert_error(status, &body, 503, "60101");
    let (status, body) =
        send(server.admin(Method::POST, &format!("/api/v1/runs/{run}/cancel"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    server.wait_run(&token, &run).await;
    let (status, out) = server
        .run_plugin("fibo", json!({"config": {"n": 10}}))
        .await;
    assert_eq!(status, StatusCode::OK, "a free instance again: {out}");
}
