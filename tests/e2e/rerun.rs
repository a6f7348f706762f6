//! Running a finished run again from one node (`POST /api/v1/runs/{id}/rerun`): the nodes
//! before it that succeeded keep their outputs and do not run; it and everything after it run.

use crate::on_both_backends;
use crate::support::{Backend, TestServer, assert_error, node, send};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

on_both_backends!(a_failed_run_runs_again_from_a_node_reusing_what_succeeded_before_it);

async fn rerun(server: &TestServer, run: &str, from: &str) -> (StatusCode, Value) {
    send(
        server
            .admin(Method::POST, &format!("/api/v1/runs/{run}/rerun"))
            .json(&json!({ "from": from })),
    )
    .await
}

async fn a_failed_run_runs_again_from_a_node_reusing_what_succeeded_before_it(backend: Backend) {
    let server = TestServer::start(backend).await;
    // f feeds t, which fails (a number has no field `x`); g feeds nothing but comes before t
    // (standing apart, it could be cancelled by t's failure before it finished).
    let first = server
        .run_workflow(
            &server.admin_token,
            json!({"name": "again",
                   "nodes": [{"id": "f", "type": "fibo", "config": {"n": 10}},
                             {"id": "t", "type": "json-transform", "config": {"query": ".x"}},
                             {"id": "g", "type": "fibo", "config": {"n": 5}}],
                   "edges": [{"source": "f", "target": "t", "target_port": "in"},
                             {"source": "g", "target": "t"}]}),
        )
        .await;
    assert_eq!(first["status"], "failed", "{first}");
    assert_eq!(node(&first, "t")["status"], "failed", "{first}");
    let old = first["id"].as_str().unwrap();

    let (status, again) = rerun(&server, old, "t").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{again}");
    let new = again["id"].as_str().unwrap();
    assert_ne!(new, old);
    assert_eq!(again["workflow_id"], first["workflow_id"]);
    let second = server.wait_run(&server.admin_token, new).await;
    for reused in ["f", "g"] {
        let before = node(&first, reused);
        let now = node(&second, reused);
        assert_eq!(now["status"], "succeeded", "{second}");
        assert_eq!(now["outputs"], before["outputs"], "{second}");
        assert_eq!(
            now["started_at"],
            Value::Null,
            "{reused} ran again: {second}"
        );
    }
    let t = node(&second, "t");
    assert_eq!(t["status"], "failed", "{second}");
    assert_eq!(t["attempts"], 1, "{second}");
    assert_ne!(
        t["started_at"],
        Value::Null,
        "t did not run again: {second}"
    );
    assert_eq!(
        t["inputs"]["in"],
        node(&first, "f")["outputs"]["out"],
        "{second}"
    );

    // From the first node, it and what follows run again; what does not follow it does not.
    let (status, again) = rerun(&server, new, "f").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{again}");
    let third = server
        .wait_run(&server.admin_token, again["id"].as_str().unwrap())
        .await;
    assert_ne!(node(&third, "f")["started_at"], Value::Null, "{third}");
    assert_eq!(node(&third, "f")["outputs"]["out"], 55, "{third}");
    assert_eq!(node(&third, "g")["started_at"], Value::Null, "{third}");

    let (status, body) = rerun(&server, old, "nope").await;
    assert_error(status, &body, 422, "90402");
    let (status, body) = rerun(&server, "no-such-run", "t").await;
    assert_error(status, &body, 404, "90203");
    // Someone else's run is not theirs to run again.
    let (_, bob) = server.user("bob").await;
    let (status, body) = send(
        server
            .with_token(&bob, Method::POST, &format!("/api/v1/runs/{old}/rerun"))
            .json(&json!({ "from": "t" })),
    )
    .await;
    assert_error(status, &body, 404, "90203");
}
