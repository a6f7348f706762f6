//! The layout part of a definition (`ui.positions`): saved with each version and read back,
//! validated (only the definition's nodes, coordinates in range, no unknown fields), and left
//! out of the runs, which the engine runs without it.

use crate::on_both_backends;
use crate::support::{Backend, TestServer, assert_error, send};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

on_both_backends!(positions_are_kept_with_each_version);

fn placed(positions: Value) -> Value {
    json!({"name": "placed",
           "nodes": [{"id": "a", "type": "fibo", "config": {"n": 3}},
                     {"id": "b", "type": "fibo", "config": {"n": 4}}],
           "edges": [{"source": "a", "target": "b"}],
           "ui": {"positions": positions}})
}

async fn positions_are_kept_with_each_version(backend: Backend) {
    let server = TestServer::start(backend).await;
    let token = server.admin_token.clone();
    let first = json!({"a": {"x": 0.0, "y": 0.0}, "b": {"x": 280.0, "y": -40.5}});
    let created = server.create_workflow(&token, placed(first.clone())).await;
    let id = created["id"].as_str().unwrap();
    assert_eq!(created["definition"]["ui"]["positions"], first, "{created}");
    // Moving a node is a new version; the first keeps its positions.
    let moved = json!({"a": {"x": 0.0, "y": 0.0}, "b": {"x": 300.0, "y": 120.0}});
    let (status, body) = send(
        server
            .admin(Method::PUT, &format!("/api/v1/workflows/{id}"))
            .json(&placed(moved.clone())),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let version =
        |v: i64| server.admin(Method::GET, &format!("/api/v1/workflows/{id}?version={v}"));
    let (_, one) = send(version(1)).await;
    assert_eq!(one["definition"]["ui"]["positions"], first, "{one}");
    let (_, two) = send(version(2)).await;
    assert_eq!(two["definition"]["ui"]["positions"], moved, "{two}");
    // A run has no use for the layout.
    let run = server.execute(&token, id, json!({})).await;
    let run = server.wait_run(&token, &run).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert!(run["definition"].get("ui").is_none(), "{run}");
}

/// A layout naming a node the workflow does not have, or far off the canvas, is a validation
/// fault naming it; an unknown field in it is refused like any other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_layout_is_validated() {
    let server = TestServer::start(Backend::Sqlite).await;
    let wrong = placed(json!({"a": {"x": 1e9, "y": 0}, "ghost": {"x": 0, "y": 0}}));
    let (status, body) = send(server.admin(Method::POST, "/api/v1/workflows").json(&wrong)).await;
    assert_error(status, &body, 422, "40401");
    let faults: Vec<(&str, &str)> = body["details"]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["path"].as_str().unwrap(), f["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(
        faults,
        [
            ("ui.positions.a", "invalid-position"),
            ("ui.positions.ghost", "unknown-node")
        ],
        "{body}"
    );
    let mut extra = placed(json!({}));
    extra["ui"]["zoom"] = json!(2);
    let (status, body) = send(server.admin(Method::POST, "/api/v1/workflows").json(&extra)).await;
    assert_error(status, &body, 422, "90402");
    assert!(body["message"].as_str().unwrap().contains("zoom"), "{body}");
}
