//! Per-user caps: one user's unfinished workflow runs and running nodes are bounded, so one
//! account cannot queue work without end or hold every node slot of the host; other users are
//! not held up. (Notebook executions: `notebooks::executions_per_user_are_capped`.)

use crate::support::fixtures::fixture;
use crate::support::{Backend, TestServer, assert_error, send};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// A workflow of one `slow-node` that sleeps for ten minutes: it runs until cancelled.
fn sleeper() -> Value {
    json!({"name": "sleeper", "nodes": [
        {"id": "wait", "type": "slow-node", "config": {"ms": 600_000}, "timeout": "10m"}],
        "edges": []})
}

async fn start(server: &TestServer, token: &str, workflow: &str) -> (StatusCode, Value) {
    send(
        server
            .with_token(
                token,
                Method::POST,
                &format!("/api/v1/workflows/{workflow}/execute"),
            )
            .json(&json!({"inputs": {}})),
    )
    .await
}

async fn cancel(server: &TestServer, token: &str, run: &str) {
    let (status, body) =
        send(server.with_token(token, Method::POST, &format!("/api/v1/runs/{run}/cancel"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "cancelled", "{body}");
}

/// With `max_runs_per_user = 2`, alice's third unfinished run is refused with 40203 while bob
/// starts his; a finished (cancelled) run gives its place back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unfinished_runs_per_user_are_capped() {
    let server = TestServer::start_with(Backend::Sqlite, |c| {
        c.workflows.max_runs_per_user = 2;
    })
    .await;
    let (status, _) = server.upload(fixture("slow-node")).await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, alice) = server.user("alice").await;
    let (_, bob) = server.user("bob").await;
    let mine = server.create_workflow(&alice, sleeper()).await;
    let mine = mine["id"].as_str().unwrap();
    let theirs = server.create_workflow(&bob, sleeper()).await;
    let theirs = theirs["id"].as_str().unwrap();

    let first = server.execute(&alice, mine, json!({})).await;
    let second = server.execute(&alice, mine, json!({})).await;
    let (status, err) = start(&server, &alice, mine).await;
    assert_error(status, &err, 429, "40203");
    assert_eq!(err["details"]["limit"], 2, "{err}");
    assert_eq!(err["details"]["active"], 2, "{err}");
    assert!(
        err["hint"].as_str().unwrap().contains("max_runs_per_user"),
        "{err}"
    );
    let (_, runs) = send(server.with_token(
        &alice,
        Method::GET,
        &format!("/api/v1/workflows/{mine}/runs"),
    ))
    .await;
    assert_eq!(
        runs["items"].as_array().unwrap().len(),
        2,
        "the refused run was not stored"
    );

    let bobs = server.execute(&bob, theirs, json!({})).await;

    cancel(&server, &alice, &first).await;
    let third = server.execute(&alice, mine, json!({})).await;
    for run in [&second, &third] {
        cancel(&server, &alice, run).await;
    }
    cancel(&server, &bob, &bobs).await;
}

/// With `max_running_nodes_per_user = 1`, a direct run by alice while her workflow's node
/// runs is refused with 60207; bob's is not; once her run ends, hers runs again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_nodes_per_user_are_capped() {
    let server = TestServer::start_with(Backend::Sqlite, |c| {
        c.workflows.max_running_nodes_per_user = 1;
    })
    .await;
    let (status, _) = server.upload(fixture("slow-node")).await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, alice) = server.user("alice").await;
    let (_, bob) = server.user("bob").await;
    let fibo = |token: &str| {
        send(
            server
                .with_token(token, Method::POST, "/api/v1/plugins/fibo/run")
                .json(&json!({"config": {"n": 10}})),
        )
    };

    let workflow = server.create_workflow(&alice, sleeper()).await;
    let run = server
        .execute(&alice, workflow["id"].as_str().unwrap(), json!({}))
        .await;
    server.wait_node_running(&alice, &run, "wait").await;

    let (status, err) = fibo(&alice).await;
    assert_error(status, &err, 429, "60207");
    assert_eq!(err["details"]["limit"], 1, "{err}");
    let (status, out) = fibo(&bob).await;
    assert_eq!(status, StatusCode::OK, "{out}");

    cancel(&server, &alice, &run).await;
    let (status, out) = fibo(&alice).await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out["outputs"]["out"], 55);
}
