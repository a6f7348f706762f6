//! Every attempt of a run's nodes (`GET /api/v1/runs/{id}/nodes/{node}/attempts`): a retried
//! node keeps each failed attempt with its error and times, a cancelled run closes the attempt
//! that was running, and no one else reaches them.

use crate::on_both_backends;
use crate::support::fixtures::fixture;
use crate::support::{Backend, TestServer, assert_error, millis, node, send};
use crate::workflows::{counting_flaky_node, succeeds_on_third_attempt};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

on_both_backends!(every_attempt_of_a_retried_node_is_kept);

/// The attempts of `node` of `run` as `token` reads them.
async fn attempts(server: &TestServer, token: &str, run: &str, node: &str) -> (StatusCode, Value) {
    send(server.with_token(
        token,
        Method::GET,
        &format!("/api/v1/runs/{run}/nodes/{node}/attempts"),
    ))
    .await
}

async fn every_attempt_of_a_retried_node_is_kept(backend: Backend) {
    let server = TestServer::start(backend).await;
    counting_flaky_node(&server).await;
    let (_, alice) = server.user("alice").await;
    let (_, bob) = server.user("bob").await;
    let run = server
        .run_workflow(
            &alice,
            json!({"name": "retried", "nodes": [
                succeeds_on_third_attempt("flaky"),
                {"id": "after", "type": "fibo", "config": {"n": 3}}
            ], "edges": [{"source": "flaky", "target": "after"}]}),
        )
        .await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(node(&run, "flaky")["attempts"], 3, "{run}");
    let run_id = run["id"].as_str().unwrap();

    let (status, tried) = attempts(&server, &alice, run_id, "flaky").await;
    assert_eq!(status, StatusCode::OK, "{tried}");
    let tried = tried.as_array().expect("a list");
    let summary: Vec<String> = tried
        .iter()
        .map(|a| format!("{} {}", a["attempt"], a["status"].as_str().unwrap()))
        .collect();
    assert_eq!(summary, ["1 failed", "2 failed", "3 succeeded"]);
    for failed in &tried[..2] {
        assert_eq!(failed["error"]["retryable"], true, "{failed}");
        let message = failed["error"]["message"].as_str().unwrap();
        assert!(message.contains("fails on purpose"), "{failed}");
    }
    assert!(tried[2]["error"].is_null(), "{}", tried[2]);
    // Each attempt ends before the next starts, after its backoff.
    for pair in tried.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        assert!(millis(&a["started_at"]) <= millis(&a["finished_at"]), "{a}");
        assert!(
            millis(&a["finished_at"]) <= millis(&b["started_at"]),
            "{a} {b}"
        );
    }
    let (status, after) = attempts(&server, &alice, run_id, "after").await;
    assert_eq!(status, StatusCode::OK, "{after}");
    assert_eq!(after.as_array().map(Vec::len), Some(1), "{after}");
    assert_eq!(after[0]["status"], "succeeded", "{after}");

    // An unknown node, and another user's run, are not found.
    let (status, body) = attempts(&server, &alice, run_id, "nope").await;
    assert_error(status, &body, 404, "90203");
    let (status, body) = attempts(&server, &bob, run_id, "flaky").await;
    assert_error(status, &body, 404, "90203");
}

/// Cancelling a run closes the attempt that was running, with the cancellation as its error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_run_closes_its_running_attempt() {
    let server = TestServer::start(Backend::Sqlite).await;
    let (status, body) = server.upload(fixture("slow-node")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let token = server.admin_token.clone();
    let workflow = server
        .create_workflow(
            &token,
            json!({"name": "slow", "nodes": [
                {"id": "nap", "type": "slow-node", "config": {"ms": 20000}}]}),
        )
        .await;
    let run_id = server
        .execute(&token, workflow["id"].as_str().unwrap(), json!({}))
        .await;
    server.wait_node_running(&token, &run_id, "nap").await;
    let (_, running) = attempts(&server, &token, &run_id, "nap").await;
    assert_eq!(running[0]["status"], "running", "{running}");
    assert!(running[0]["finished_at"].is_null(), "{running}");
    let (status, body) =
        send(server.admin(Method::POST, &format!("/api/v1/runs/{run_id}/cancel"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    server.wait_run(&token, &run_id).await;
    let (_, stopped) = attempts(&server, &token, &run_id, "nap").await;
    assert_eq!(stopped.as_array().map(Vec::len), Some(1), "{stopped}");
    assert_eq!(stopped[0]["status"], "cancelled", "{stopped}");
    assert_eq!(stopped[0]["error"]["kind"], "cancelled", "{stopped}");
    assert!(stopped[0]["finished_at"].is_string(), "{stopped}");
}
