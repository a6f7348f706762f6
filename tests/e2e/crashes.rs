//! A real `weft` stopped at each crash point between the executor's writes, then restarted:
//! the run's result is the truth (failed when a node failed it, nothing run after an upstream
//! that failed it, nothing that had finished run again or changed), and every value a node
//! produced reads back exactly as it was, rows of the old encoding included.
//!
//! The points exist in debug builds only (`WEFT_CRASH_AT`, see host/src/workflow/crash.rs), so
//! this module is compiled in those builds only.

use crate::on_both_backends;
use crate::support::fixtures::fixture;
use crate::support::{Backend, Site, node, send, wait_for_run};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::Row as _;
use std::collections::HashMap;
use std::os::unix::process::ExitStatusExt as _;
use std::time::Duration;
use weft::store::Store;

on_both_backends!(
    a_crash_between_two_writes_never_changes_a_result,
    a_run_an_older_host_left_ends_as_its_nodes_say,
    values_read_back_as_written_after_a_crash
);

/// A node as stored: status, attempts, started_at and finished_at (ms).
type Stored = (String, i64, Option<i64>, Option<i64>);

/// What the crash tests do on a site.
impl Site {
    /// Uploads the fixture `plugins` and stores `workflows`; returns the workflows' ids.
    async fn prepare(&self, plugins: &[&str], workflows: &[Value]) -> Vec<String> {
        let mut host = self.serve(&[]);
        let base = host.base_url();
        for plugin in plugins {
            let (status, body) = send(
                self.client
                    .post(format!("{base}/api/v1/plugins"))
                    .bearer_auth(&self.token)
                    .header("content-type", "application/wasm")
                    .body(fixture(plugin)),
            )
            .await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
        }
        let mut ids = Vec::new();
        for definition in workflows {
            let (status, workflow) = send(
                self.client
                    .post(format!("{base}/api/v1/workflows"))
                    .bearer_auth(&self.token)
                    .json(definition),
            )
            .await;
            assert_eq!(status, StatusCode::CREATED, "{workflow}");
            ids.push(workflow["id"].as_str().unwrap().to_string());
        }
        host.terminate(Duration::from_secs(30));
        ids
    }

    /// Starts a run of `workflow` on a host that aborts at `point`; returns the run's id and its
    /// nodes as stored when the host stopped.
    async fn crash_at(
        &self,
        point: &str,
        workflow: &str,
        inputs: &Value,
    ) -> (String, HashMap<String, Stored>) {
        let mut host = self.serve(&[("WEFT_CRASH_AT", point)]);
        // The host may stop before it answers: the run's id is read from the store.
        let _ = self
            .client
            .post(format!(
                "{}/api/v1/workflows/{workflow}/execute",
                host.base_url()
            ))
            .bearer_auth(&self.token)
            .json(&json!({ "inputs": inputs }))
            .send()
            .await;
        eprintln!("waiting for the host to stop at {point}");
        let status = host.wait_exit(Duration::from_secs(60));
        assert_eq!(status.signal(), Some(6), "SIGABRT at {point}: {status:?}");
        // `wait_exit` read the log to its end.
        let line = format!("crash point {point} reached");
        assert!(host.stderr_contains(&line), "the host did not log '{line}'");
        let store = Store::open(&self.database_url).await.unwrap();
        let (run_id,): (String,) = sqlx::query_as(
            "SELECT id FROM runs WHERE workflow_id = $1 ORDER BY created_at DESC, id DESC LIMIT 1",
        )
        .bind(workflow)
        .fetch_one(store.pool())
        .await
        .unwrap();
        let nodes = sqlx::query(
            "SELECT node_id, status, attempts, started_at, finished_at FROM run_nodes \
             WHERE run_id = $1",
        )
        .bind(&run_id)
        .fetch_all(store.pool())
        .await
        .unwrap()
        .iter()
        .map(|row| {
            let stored = (
                row.get("status"),
                row.get("attempts"),
                row.get("started_at"),
                row.get("finished_at"),
            );
            (row.get("node_id"), stored)
        })
        .collect();
        store.close().await;
        (run_id, nodes)
    }

    /// Restarts the host and waits for it to finish run `run_id`.
    async fn resume(&self, run_id: &str) -> Value {
        let mut host = self.serve(&[]);
        let run = wait_for_run(&self.client, &host.base_url(), &self.token, run_id).await;
        host.terminate(Duration::from_secs(30));
        run
    }
}

fn millis(value: &Value) -> Option<i64> {
    value.as_str().map(|text| {
        chrono::DateTime::parse_from_rfc3339(text)
            .expect("RFC 3339")
            .timestamp_millis()
    })
}

/// Every node that had finished when the host stopped is as it was: not run again, not changed.
#[track_caller]
fn assert_finished_nodes_kept(point: &str, before: &HashMap<String, Stored>, run: &Value) {
    let finished = ["succeeded", "failed", "skipped", "cancelled"];
    for (id, (status, attempts, started, finished_at)) in before {
        if !finished.contains(&status.as_str()) {
            continue;
        }
        let now = node(run, id);
        let kept = now["status"] == status.as_str()
            && now["attempts"] == *attempts
            && millis(&now["started_at"]) == *started
            && millis(&now["finished_at"]) == *finished_at;
        assert!(
            kept,
            "crash at {point}: node {id} was stored {status} before the crash and changed: {now}"
        );
    }
}

/// A node that never ran.
#[track_caller]
fn assert_never_ran(point: &str, run: &Value, id: &str, status: &str) {
    let n = node(run, id);
    assert_eq!(n["status"], status, "crash at {point}: {run}");
    assert_eq!(n["attempts"], 0, "crash at {point}: {id} ran: {run}");
    assert!(
        n["started_at"].is_null(),
        "crash at {point}: {id} ran: {run}"
    );
}

#[track_caller]
fn assert_node(point: &str, run: &Value, id: &str, status: &str, attempts: i64) {
    let n = node(run, id);
    assert_eq!(n["status"], status, "crash at {point}: {id} in {run}");
    assert_eq!(n["attempts"], attempts, "crash at {point}: {id} in {run}");
}

/// `a`, then `r` (retried, then failed with `on_error: continue`), then `f` (fails the run), then
/// `d`, which must never run.
fn fails() -> Value {
    json!({
        "name": "fails",
        "nodes": [
            {"id": "a", "type": "fibo", "config": {"n": 10}},
            {"id": "r", "type": "flaky-node", "config": {"succeed_on": 99},
             "retry": {"max_attempts": 2, "backoff": 0.01}, "on_error": "continue"},
            {"id": "f", "type": "flaky-node", "config": {"succeed_on": 99}},
            {"id": "d", "type": "fibo", "config": {"n": 3}}
        ],
        "edges": [
            {"source": "a", "target": "r"},
            {"source": "r", "target": "f"},
            {"source": "f", "target": "d"}
        ]
    })
}

/// Two workflows whose runs pass every crash point: one a node fails (after another node
/// retried and failed with `on_error: continue`), one where a node is skipped and the run
/// succeeds. A host stopped at each point, then restarted, ends each run as it would have ended
/// without the crash.
async fn a_crash_between_two_writes_never_changes_a_result(backend: Backend) {
    let site = Site::new(backend).await;
    let ids = site
        .prepare(
            &["flaky-node"],
            &[
                fails(),
                json!({
                    "name": "skips",
                    "nodes": [
                        {"id": "s", "type": "flaky-node", "config": {"succeed_on": 99},
                         "on_error": "skip_dependents"},
                        {"id": "k", "type": "fibo", "config": {"n": 4}},
                        {"id": "y", "type": "fibo", "config": {"n": 5}}
                    ],
                    "edges": [{"source": "s", "target": "k"}]
                }),
            ],
        )
        .await;
    let (fails, skips) = (&ids[0], &ids[1]);

    for point in [
        "run-started",
        "node-started:a",
        "node-succeeded:a",
        "node-started:r",
        "node-retrying:r",
        "node-failed:r",
        "node-started:f",
        "node-failed:f",
    ] {
        let (run_id, before) = site.crash_at(point, fails, &json!({})).await;
        let run = site.resume(&run_id).await;
        assert_eq!(run["status"], "failed", "crash at {point}: {run}");
        assert!(
            run["error"]
                .as_str()
                .is_some_and(|e| e.starts_with("node 'f' failed")),
            "crash at {point}: {run}"
        );
        assert_finished_nodes_kept(point, &before, &run);
        assert_node(point, &run, "a", "succeeded", 1);
        assert_eq!(node(&run, "a")["outputs"]["out"], 55);
        assert_node(point, &run, "r", "failed", 2);
        assert_node(point, &run, "f", "failed", 1);
        assert_never_ran(point, &run, "d", "cancelled");
    }

    for point in [
        "node-started:s",
        "node-failed:s",
        "node-skipped:k",
        "node-started:y",
        "node-succeeded:y",
    ] {
        let (run_id, before) = site.crash_at(point, skips, &json!({})).await;
        let run = site.resume(&run_id).await;
        assert_eq!(run["status"], "succeeded", "crash at {point}: {run}");
        assert_finished_nodes_kept(point, &before, &run);
        assert_node(point, &run, "s", "failed", 1);
        assert_never_ran(point, &run, "k", "skipped");
        assert_node(point, &run, "y", "succeeded", 1);
        assert_eq!(node(&run, "y")["outputs"]["out"], 5);
    }
}

/// An older version stored a node's end and its consequence for the run in two writes; a
/// database it left between them (the run still running, its nodes already failed or closed)
/// ends as its nodes say when a host resumes it: failed by a failed node (whose dependents never
/// run), cancelled, or failed while closing.
async fn a_run_an_older_host_left_ends_as_its_nodes_say(backend: Backend) {
    let site = Site::new(backend).await;
    let ids = site.prepare(&["flaky-node"], &[fails()]).await;
    let cases = [
        // (node updated, status, error, what closes the run)
        (
            "f",
            "failed",
            json!({"kind": "node-error", "message": "it broke", "retryable": false}),
            ("failed", Some("node 'f' failed: it broke")),
        ),
        (
            "%",
            "cancelled",
            json!({"kind": "cancelled", "message": "the run was cancelled", "retryable": false}),
            ("cancelled", None),
        ),
        (
            "%",
            "cancelled",
            json!({"kind": "upstream", "message": "not run: the host broke", "retryable": false}),
            ("failed", Some("the host broke")),
        ),
    ];
    for (target, status, error, (run_status, run_error)) in cases {
        let point = "node-started:f";
        let (run_id, before) = site.crash_at(point, &ids[0], &json!({})).await;
        let store = Store::open(&site.database_url).await.unwrap();
        sqlx::query(
            "UPDATE run_nodes SET status = $1, error = $2, finished_at = started_at \
             WHERE run_id = $3 AND node_id LIKE $4 AND status IN ('pending', 'running')",
        )
        .bind(status)
        .bind(error.to_string())
        .bind(&run_id)
        .bind(target)
        .execute(store.pool())
        .await
        .unwrap();
        store.close().await;
        let run = site.resume(&run_id).await;
        let case = format!("{status} {error}");
        assert_eq!(run["status"], run_status, "{case}: {run}");
        assert_eq!(run["error"].as_str(), run_error, "{case}: {run}");
        assert_finished_nodes_kept(&case, &before, &run);
        assert_never_ran(&case, &run, "d", "cancelled");
        assert_eq!(node(&run, "f")["status"], status, "{case}: {run}");
        assert_eq!(node(&run, "f")["attempts"], 1, "{case}: f ran again: {run}");
    }
}

/// A value kind of [`values_read_back_as_written_after_a_crash`]: its name, the value as the
/// run's input gives it, and jq's name of its type (`None` for bytes).
type Kind = (&'static str, Value, Option<&'static str>);

/// The workflow of [`values_read_back_as_written_after_a_crash`] and its run's inputs: per
/// kind, a producer `p_KIND` (an echo of the input), an echo `e_KIND` of it and, but for bytes,
/// a jq `t_KIND` naming its type; a producer `p_tag` of JSON shaped like the old bytes marker
/// with its echo and jq, and CSV reading the bytes. Consumers start after a `gate` that
/// follows every producer, so each reads its value from the store after the crash.
fn values_workflow(kinds: &[Kind]) -> (Value, Value) {
    let mut nodes = vec![
        // JSON that looks like the old bytes marker, made by a node (a run's inputs read the
        // marker as bytes).
        json!({"id": "p_tag", "type": "json-transform", "config": {"query": "{\"$bytes\": \"AQI=\"}"}}),
        json!({"id": "gate", "type": "fibo", "config": {"n": 1}}),
        json!({"id": "e_tag", "type": "echo-node"}),
        json!({"id": "t_tag", "type": "json-transform", "config": {"query": "[type, .[\"$bytes\"]]"}}),
        json!({"id": "c_bytes", "type": "csv", "config": {"direction": "to-json"}}),
    ];
    let mut edges = vec![
        json!({"source": "p_tag", "target": "gate"}),
        json!({"source": "p_tag", "target": "e_tag", "target_port": "in"}),
        json!({"source": "p_tag", "target": "t_tag", "target_port": "in"}),
        json!({"source": "p_bytes", "target": "c_bytes", "target_port": "in"}),
    ];
    let mut inputs = serde_json::Map::new();
    for (kind, value, jq_type) in kinds {
        nodes.push(json!({"id": format!("p_{kind}"), "type": "echo-node"}));
        nodes.push(json!({"id": format!("e_{kind}"), "type": "echo-node"}));
        inputs.insert(format!("p_{kind}"), json!({ "in": value }));
        edges.push(json!({"source": format!("p_{kind}"), "target": "gate"}));
        edges.push(
            json!({"source": format!("p_{kind}"), "target": format!("e_{kind}"), "target_port": "in"}),
        );
        if jq_type.is_some() {
            nodes.push(json!({"id": format!("t_{kind}"), "type": "json-transform", "config": {"query": "type"}}));
            edges.push(
                json!({"source": format!("p_{kind}"), "target": format!("t_{kind}"), "target_port": "in"}),
            );
        }
    }
    let consumers: Vec<String> = nodes
        .iter()
        .filter_map(|n| n["id"].as_str())
        .filter(|id| !id.starts_with("p_") && *id != "gate")
        .map(str::to_string)
        .collect();
    for consumer in consumers {
        edges.push(json!({"source": "gate", "target": consumer}));
    }
    (
        json!({"name": "values", "nodes": nodes, "edges": edges}),
        Value::Object(inputs),
    )
}

/// Rewrites the outputs of each (producer, outputs) of run `run_id` as the previous version
/// stored them: plain JSON, bytes as the marker.
async fn store_as_the_previous_version(site: &Site, run_id: &str, rows: &[(&str, Value)]) {
    let store = Store::open(&site.database_url).await.unwrap();
    for (producer, legacy) in rows {
        let done = sqlx::query(
            "UPDATE run_nodes SET outputs = $1, value_format = 1 WHERE run_id = $2 AND node_id = $3",
        )
        .bind(legacy.to_string())
        .bind(run_id)
        .bind(*producer)
        .execute(store.pool())
        .await
        .unwrap();
        assert_eq!(done.rows_affected(), 1, "{producer}");
    }
    store.close().await;
}

/// Every kind of value is stored by its producer, the host stops, and the restarted host hands
/// each value from the store to its consumers: echoes give it back unchanged, jq names its JSON
/// type, and CSV reads the bytes. JSON shaped like the API's bytes marker stays JSON. Two
/// producers' rows are rewritten in the old encoding before the restart, as a database of the
/// previous version holds them, and read as before.
async fn values_read_back_as_written_after_a_crash(backend: Backend) {
    use base64::Engine as _;
    let csv = "a,b\n1,2\n";
    let csv_base64 = base64::engine::general_purpose::STANDARD.encode(csv);
    let kinds: [Kind; 9] = [
        ("null", json!(null), Some("null")),
        ("bool", json!(true), Some("boolean")),
        ("int", json!(-9_007_199_254_740_993_i64), Some("number")),
        ("uint", json!(u64::MAX), Some("number")),
        ("float", json!(1.5), Some("number")),
        ("string", json!("{\"$bytes\": \"AQI=\"}"), Some("string")),
        (
            "array",
            json!([1, "two", null, {"$bytes": "AQI="}]),
            Some("array"),
        ),
        ("object", json!({"a": {"b": [1]}}), Some("object")),
        ("bytes", json!({ "$bytes": csv_base64 }), None),
    ];
    let (workflow, inputs) = values_workflow(&kinds);
    let site = Site::new(backend).await;
    let ids = site.prepare(&["echo-node"], &[workflow]).await;

    let point = "node-succeeded:gate";
    let (run_id, before) = site.crash_at(point, &ids[0], &inputs).await;
    assert!(
        before
            .iter()
            .all(|(id, (status, ..))| (id.starts_with("p_") || id == "gate")
                == (status == "succeeded")),
        "producers and the gate done, no consumer started: {before:?}"
    );
    store_as_the_previous_version(
        &site,
        &run_id,
        &[
            ("p_int", json!({"out": -9_007_199_254_740_993_i64})),
            ("p_bytes", json!({"out": {"$bytes": csv_base64}})),
        ],
    )
    .await;

    let run = site.resume(&run_id).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_finished_nodes_kept(point, &before, &run);
    for (kind, value, jq_type) in &kinds {
        assert_eq!(
            node(&run, &format!("p_{kind}"))["outputs"]["out"],
            *value,
            "{kind}"
        );
        let echoed = node(&run, &format!("e_{kind}"));
        assert_eq!(echoed["inputs"]["in"], *value, "{kind}: {echoed}");
        assert_eq!(echoed["outputs"]["out"], *value, "{kind}: {echoed}");
        if let Some(jq_type) = jq_type {
            let typed = node(&run, &format!("t_{kind}"));
            assert_eq!(typed["outputs"]["out"], *jq_type, "{kind}: {typed}");
        }
    }
    assert_eq!(
        node(&run, "c_bytes")["outputs"]["out"],
        json!([{"a": "1", "b": "2"}]),
        "the bytes arrive as bytes"
    );
    assert_eq!(
        node(&run, "e_tag")["outputs"]["out"],
        json!({"$bytes": "AQI="})
    );
    assert_eq!(
        node(&run, "t_tag")["outputs"]["out"],
        json!(["object", "AQI="]),
        "JSON shaped like the bytes marker arrives as JSON"
    );
}
