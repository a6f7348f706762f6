//! Workflows through the API: storage and versions, validation, execution with real plugins
//! (data flow, parallel branches, retries, timeouts, failure policies, branches, cancellation),
//! event streams, and bad input.

use crate::on_both_backends;
use crate::support::fixtures::fixture;
use crate::support::{Backend, Site, TestServer, assert_error, millis, node, send};
use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

on_both_backends!(
    versions_pin_their_runs_and_history_pages,
    workflows_and_runs_are_private_to_their_owner,
    a_deleted_workflow_goes_with_its_runs,
    a_run_needs_its_required_inputs,
    data_flows_and_branches_run_in_parallel,
    a_killed_host_resumes_its_runs
);

fn chain(name: &str, n: usize) -> Value {
    let nodes: Vec<Value> = (0..n)
        .map(|i| json!({"id": format!("f{i}"), "type": "fibo", "config": {"n": 10}}))
        .collect();
    let edges: Vec<Value> = (1..n)
        .map(|i| json!({"source": format!("f{}", i - 1), "target": format!("f{i}")}))
        .collect();
    json!({"name": name, "nodes": nodes, "edges": edges})
}

/// Posts a `length`-byte JSON body while reading the answer: a server that refuses the size
/// answers and closes before the body is through (reqwest would report the broken pipe
/// instead of the answer).
async fn announce_huge_body(server: &TestServer, path: &str, length: usize) -> (StatusCode, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: weft\r\nauthorization: Bearer {}\r\n\
         content-type: application/json\r\ncontent-length: {length}\r\nconnection: close\r\n\r\n",
        server.admin_token
    );
    let sender = tokio::spawn(async move {
        writer.write_all(head.as_bytes()).await?;
        let chunk = vec![b' '; 64 << 10];
        let mut sent = 0;
        while sent < length {
            let n = chunk.len().min(length - sent);
            writer.write_all(&chunk[..n]).await?;
            sent += n;
        }
        std::io::Result::Ok(())
    });
    let mut answer = Vec::new();
    let _ = reader.read_to_end(&mut answer).await;
    sender.abort();
    let answer = String::from_utf8_lossy(&answer);
    let status: u16 = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {answer}"));
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    (
        StatusCode::from_u16(status).unwrap(),
        serde_json::from_str(body).unwrap_or(Value::Null),
    )
}

/// A new version of a workflow leaves a run of the old one on the old one; types are pinned to
/// the versions a run used; the latest run and the history (newest first, paginated) list the
/// runs.
async fn versions_pin_their_runs_and_history_pages(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (alice, alice_token) = server.user("alice").await;

    let created = server
        .create_workflow(&alice_token, chain("three", 3))
        .await;
    let id = created["id"].as_str().unwrap();
    assert_eq!(created["version"], 1);
    assert_eq!(created["owner_id"], alice.as_str());
    let first_run = server.execute(&alice_token, id, json!({})).await;

    // A new version; the run started before keeps version 1.
    let (status, updated) = send(
        server
            .with_token(
                &alice_token,
                Method::PUT,
                &format!("/api/v1/workflows/{id}"),
            )
            .json(&chain("two", 2)),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["version"], 2);
    let (status, old) = send(server.with_token(
        &alice_token,
        Method::GET,
        &format!("/api/v1/workflows/{id}?version=1"),
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{old}");
    assert_eq!(old["name"], "three");
    assert_eq!(old["definition"]["nodes"].as_array().unwrap().len(), 3);
    let run = server.wait_run(&alice_token, &first_run).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["workflow_version"], 1);
    assert_eq!(run["nodes"].as_array().unwrap().len(), 3);
    assert_eq!(node(&run, "f2")["outputs"]["out"], 55);
    // Types are pinned to the version the run used.
    assert!(
        node(&run, "f0")["plugin"]
            .as_str()
            .unwrap()
            .starts_with("fibo@")
    );
    let second = server.execute(&alice_token, id, json!({})).await;
    let run = server.wait_run(&alice_token, &second).await;
    assert_eq!(run["workflow_version"], 2);
    assert_eq!(run["nodes"].as_array().unwrap().len(), 2);

    // Latest run and history, newest first, paginated.
    let (status, latest) = send(server.with_token(
        &alice_token,
        Method::GET,
        &format!("/api/v1/workflows/{id}/status"),
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{latest}");
    assert_eq!(latest["id"], second.as_str());
    let (status, page) = send(server.with_token(
        &alice_token,
        Method::GET,
        &format!("/api/v1/workflows/{id}/runs?limit=1"),
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["items"][0]["id"], second.as_str());
    let cursor = page["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_string();
    let (status, page) = send(server.with_token(
        &alice_token,
        Method::GET,
        &format!("/api/v1/workflows/{id}/runs?limit=1&cursor={cursor}"),
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["items"][0]["id"], first_run.as_str());
}

/// Another user sees none of a workflow or its runs (404, as for what does not exist); an
/// admin sees all.
async fn workflows_and_runs_are_private_to_their_owner(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (_, alice_token) = server.user("alice").await;
    let (_, bob_token) = server.user("bob").await;
    let created = server
        .create_workflow(&alice_token, chain("three", 3))
        .await;
    let id = created["id"].as_str().unwrap();
    let run = server.execute(&alice_token, id, json!({})).await;
    for path in [
        format!("/api/v1/workflows/{id}"),
        format!("/api/v1/workflows/{id}/runs"),
        format!("/api/v1/runs/{run}"),
    ] {
        let (status, body) = send(server.with_token(&bob_token, Method::GET, &path)).await;
        assert_error(status, &body, 404, "90203");
    }
    let (status, body) = send(server.with_token(
        &bob_token,
        Method::POST,
        &format!("/api/v1/workflows/{id}/execute"),
    ))
    .await;
    assert_error(status, &body, 404, "90203");
    let (status, bobs) =
        send(server.with_token(&bob_token, Method::GET, "/api/v1/workflows")).await;
    assert_eq!(status, StatusCode::OK, "{bobs}");
    assert_eq!(bobs["items"], json!([]));
    let (status, all) = send(server.admin(Method::GET, "/api/v1/workflows")).await;
    assert_eq!(status, StatusCode::OK, "{all}");
    assert_eq!(all["items"].as_array().unwrap().len(), 1);
}

/// A deleted workflow is gone with its runs; running it again is a clear 404.
async fn a_deleted_workflow_goes_with_its_runs(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (_, alice_token) = server.user("alice").await;
    let created = server
        .create_workflow(&alice_token, chain("three", 3))
        .await;
    let id = created["id"].as_str().unwrap();
    let run = server.execute(&alice_token, id, json!({})).await;
    server.wait_run(&alice_token, &run).await;
    let (status, body) = send(server.with_token(
        &alice_token,
        Method::DELETE,
        &format!("/api/v1/workflows/{id}"),
    ))
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, body) = send(server.with_token(
        &alice_token,
        Method::POST,
        &format!("/api/v1/workflows/{id}/execute"),
    ))
    .await;
    assert_error(status, &body, 404, "90203");
    let (status, body) =
        send(server.with_token(&alice_token, Method::GET, &format!("/api/v1/runs/{run}"))).await;
    assert_error(status, &body, 404, "90203");
}

/// A run that does not supply a required input no edge feeds, or supplies one of the wrong
/// kind, is refused before anything is stored.
async fn a_run_needs_its_required_inputs(backend: Backend) {
    let server = TestServer::start(backend).await;
    let workflow = server
        .create_workflow(
            &server.admin_token,
            json!({"name": "rows", "nodes": [
                {"id": "rows", "type": "csv", "config": {"direction": "to-json"}}
            ]}),
        )
        .await;
    let id = workflow["id"].as_str().unwrap();
    // `rows.in` is required and no edge feeds it: the run must supply it.
    let (status, body) = send(
        server
            .admin(Method::POST, &format!("/api/v1/workflows/{id}/execute"))
            .json(&json!({})),
    )
    .await;
    assert_error(status, &body, 422, "40402");
    assert!(
        body["message"].as_str().unwrap().contains("rows.in"),
        "{body}"
    );
    let (status, body) = send(
        server
            .admin(Method::POST, &format!("/api/v1/workflows/{id}/execute"))
            .json(&json!({"inputs": {"rows": {"in": 42}, "ghost": {"in": 1}}})),
    )
    .await;
    assert_error(status, &body, 422, "40402");
    assert_eq!(
        body["details"]["errors"].as_array().unwrap().len(),
        1,
        "{body}"
    );
    let (status, runs) =
        send(server.admin(Method::GET, &format!("/api/v1/workflows/{id}/runs"))).await;
    assert_eq!(status, StatusCode::OK, "{runs}");
    assert_eq!(runs["items"], json!([]), "a refused run stores nothing");
}

async fn data_flows_and_branches_run_in_parallel(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (status, _) = server.upload(fixture("slow-node")).await;
    assert_eq!(status, StatusCode::CREATED);
    let token = server.admin_token.clone();
    // CSV rows -> amounts -> (sum, count) -> mean; a branch on the mean; two slow branches.
    let workflow = server
        .create_workflow(
            &token,
            json!({
                "name": "stats",
                "nodes": [
                    {"id": "rows", "type": "csv", "config": {"direction": "to-json"}},
                    {"id": "amounts", "type": "json-transform",
                     "config": {"query": "[.[] | .amount | tonumber]"}},
                    {"id": "sum", "type": "math", "config": {"op": "sum"}},
                    {"id": "count", "type": "math", "config": {"op": "count"}},
                    {"id": "mean", "type": "math", "config": {"op": "div"}},
                    {"id": "big", "type": "branch", "config": {"condition": ". > 10"}},
                    {"id": "say-big", "type": "template", "config": {"template": "big: {{ input }}"}},
                    {"id": "say-small", "type": "template", "config": {"template": "small: {{ input }}"}},
                    {"id": "after-small", "type": "fibo", "config": {"n": 1}},
                    {"id": "slow-a", "type": "slow-node", "config": {"ms": 400}},
                    {"id": "slow-b", "type": "slow-node", "config": {"ms": 400}}
                ],
                "edges": [
                    {"source": "rows", "target": "amounts", "target_port": "in"},
                    {"source": "amounts", "target": "sum", "target_port": "in"},
                    {"source": "amounts", "target": "count", "target_port": "in"},
                    {"source": "sum", "target": "mean", "target_port": "a"},
                    {"source": "count", "target": "mean", "target_port": "b"},
                    {"source": "mean", "target": "big", "target_port": "in"},
                    {"source": "big", "source_port": "then", "target": "say-big", "target_port": "in"},
                    {"source": "big", "source_port": "else", "target": "say-small", "target_port": "in"},
                    {"source": "say-small", "target": "after-small"},
                    {"source": "rows", "target": "slow-a"},
                    {"source": "rows", "target": "slow-b"}
                ]
            }),
        )
        .await;
    let id = workflow["id"].as_str().unwrap();
    let csv = "name,amount\na,5\nb,30\nc,13\n";
    let run_id = server
        .execute(&token, id, json!({"rows": {"in": csv}}))
        .await;
    let run = server.wait_run(&token, &run_id).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(node(&run, "amounts")["outputs"]["out"], json!([5, 30, 13]));
    assert_eq!(node(&run, "mean")["inputs"], json!({"a": 48, "b": 3}));
    assert_eq!(node(&run, "mean")["outputs"]["out"], 16);
    assert_eq!(node(&run, "say-big")["outputs"]["out"], "big: 16");
    // The branch not taken is skipped, and so is what hangs off it.
    assert_eq!(node(&run, "say-small")["status"], "skipped");
    assert_eq!(node(&run, "after-small")["status"], "skipped");
    assert!(
        node(&run, "say-small")["error"]["message"]
            .as_str()
            .unwrap()
            .contains("did not produce output 'else'")
    );
    // The two slow branches overlapped in time.
    let (a, b) = (node(&run, "slow-a"), node(&run, "slow-b"));
    let (a0, a1) = (millis(&a["started_at"]), millis(&a["finished_at"]));
    let (b0, b1) = (millis(&b["started_at"]), millis(&b["finished_at"]));
    assert!(
        a0 < b1 && b0 < a1,
        "slow-a {a0}..{a1} and slow-b {b0}..{b1} did not overlap"
    );
    for n in run["nodes"].as_array().unwrap() {
        if n["status"] == "succeeded" {
            assert_eq!(n["attempts"], 1, "{n}");
            assert!(millis(&n["finished_at"]) >= millis(&n["started_at"]));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_reports_every_fault() {
    let server = TestServer::start(Backend::Sqlite).await;
    let (status, body) = send(
        server
            .admin(Method::POST, "/api/v1/workflows")
            .json(&json!({
                "name": "broken",
                "nodes": [
                    {"id": "a", "type": "fibo", "config": {"n": 3}},
                    {"id": "b", "type": "fibo", "config": {"n": "ten", "colour": 1}},
                    {"id": "c", "type": "no-such-node"},
                    {"id": "a", "type": "fibo"},
                    {"id": "t", "type": "template", "config": {"template": "x"}},
                    {"id": "m", "type": "math", "config": {"op": "sum"}},
                    {"id": "x", "type": "fibo"},
                    {"id": "y", "type": "fibo"},
                    {"id": "z", "type": "fibo"},
                    {"id": "br", "type": "branch", "config": {"condition": "true"}}
                ],
                "edges": [
                    {"source": "a", "target": "ghost"},
                    {"source": "a", "target": "b", "target_port": "nope"},
                    {"source": "t", "target": "m", "target_port": "in"},
                    {"source": "x", "target": "y"},
                    {"source": "y", "target": "z"},
                    {"source": "z", "target": "x"},
                    {"source": "br", "target": "m", "target_port": "a"}
                ]
            })),
    )
    .await;
    assert_error(status, &body, 422, "40401");
    let errors = body["details"]["errors"].as_array().unwrap();
    let find = |kind: &str, path: &str| {
        errors
            .iter()
            .find(|e| e["kind"] == kind && e["path"] == path)
            .unwrap_or_else(|| panic!("no {kind} at {path} in {errors:#?}"))
    };
    assert_eq!(find("invalid-config", "nodes[1].config")["node"], "b");
    assert_eq!(
        errors
            .iter()
            .filter(|e| e["kind"] == "invalid-config")
            .count(),
        2,
        "both config faults of b are reported: {errors:#?}"
    );
    assert!(
        find("unknown-type", "nodes[2].type")["message"]
            .as_str()
            .unwrap()
            .contains("no-such-node")
    );
    assert_eq!(find("duplicate-id", "nodes[3].id")["node"], "a");
    assert_eq!(find("missing-node", "edges[0]")["edge"], 0);
    assert!(
        find("missing-port", "edges[1]")["message"]
            .as_str()
            .unwrap()
            .contains("no input 'nope'")
    );
    assert!(
        find("port-kind-mismatch", "edges[2]")["message"]
            .as_str()
            .unwrap()
            .contains("string")
    );
    assert!(
        find("ambiguous-port", "edges[6]")["message"]
            .as_str()
            .unwrap()
            .contains("then, else")
    );
    let cycle = find("cycle", "edges")["cycle"].as_array().unwrap().clone();
    assert_eq!(cycle.len(), 3);
    let order: Vec<&str> = cycle.iter().map(|n| n.as_str().unwrap()).collect();
    let rotations = [["x", "y", "z"], ["y", "z", "x"], ["z", "x", "y"]];
    assert!(rotations.iter().any(|r| r[..] == order[..]), "{order:?}");
    assert_eq!(errors.len(), 9, "{errors:#?}");

    // Nothing was stored.
    let (_, list) = send(server.admin(Method::GET, "/api/v1/workflows")).await;
    assert_eq!(list["items"], json!([]));
}

/// A valid definition passes the dry run, which names the versions a run would use.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_definition_passes_the_dry_run() {
    let server = TestServer::start(Backend::Sqlite).await;
    let (status, ok) = send(
        server
            .admin(Method::POST, "/api/v1/workflows/validate")
            .json(&chain("fine", 2)),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{ok}");
    assert!(ok["plugins"]["f0"].as_str().unwrap().starts_with("fibo@"));
}

/// Malformed and unknown fields are 4xx with the field named; huge bodies are 413.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_definitions_are_refused_with_the_field_named() {
    let server = TestServer::start(Backend::Sqlite).await;
    let (status, body) = send(
        server
            .admin(Method::POST, "/api/v1/workflows")
            .header("content-type", "application/json")
            .body("{\"name\": "),
    )
    .await;
    assert_error(status, &body, 400, "90401");
    let (status, body) = send(
        server
            .admin(Method::POST, "/api/v1/workflows")
            .json(&json!({
                "name": "w", "nodes": [{"id": "a", "type": "fibo", "colour": "red"}]
            })),
    )
    .await;
    assert_error(status, &body, 422, "90402");
    assert!(
        body["message"].as_str().unwrap().contains("colour"),
        "{body}"
    );
    // A 10 MB definition is refused from its Content-Length, before it is read.
    let (status, body) = announce_huge_body(&server, "/api/v1/workflows", 10 << 20).await;
    assert_error(status, &body, 413, "90403");
}

/// A server with `plugins` uploaded; returns it with the admin's token.
async fn server_with(plugins: &[&str]) -> (TestServer, String) {
    let server = TestServer::start(Backend::Sqlite).await;
    for name in plugins {
        let (status, body) = server.upload(fixture(name)).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let token = server.admin_token.clone();
    (server, token)
}

/// Reads the events of `stream` until the run finishes; returns them.
pub(crate) async fn events_until_finished<S>(stream: &mut S) -> Vec<Value>
where
    S: futures::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    let mut events = Vec::new();
    loop {
        let message = tokio::time::timeout(std::time::Duration::from_secs(60), stream.next())
            .await
            .expect("an event within a minute")
            .expect("the stream stays open")
            .expect("a message");
        let Ok(text) = message.to_text() else {
            continue;
        };
        let Ok(event) = serde_json::from_str::<Value>(text) else {
            continue;
        };
        let last = event["type"] == "run_finished";
        events.push(event);
        if last {
            return events;
        }
    }
}

/// Uploads the `flaky-node` fixture and grants everyone the artifact store it counts its
/// attempts in.
pub(crate) async fn counting_flaky_node(server: &TestServer) {
    let (status, body) = server.upload(fixture("flaky-node")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = send(
        server
            .admin(Method::PUT, "/api/v1/plugins/flaky-node/grants")
            .json(&json!({"everyone": true, "artifacts": true})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// A node `id` (of [`counting_flaky_node`]) whose first two attempts fail retryably and whose
/// third succeeds, 20 then 40 ms apart.
pub(crate) fn succeeds_on_third_attempt(id: &str) -> Value {
    json!({"id": id, "type": "flaky-node",
           "config": {"succeed_on": 3, "count_as": uuid::Uuid::new_v4().to_string()},
           "retry": {"max_attempts": 5, "backoff": "20ms", "max_backoff": "40ms", "jitter": false}})
}

/// A node failing retryably is tried again after its backoff, each failure announced as
/// `node_retried`, until an attempt succeeds. The node counts its attempts itself (in the
/// artifact store), so nothing depends on timing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retryable_failures_are_retried_until_one_succeeds() {
    let server = TestServer::start(Backend::Sqlite).await;
    let token = server.admin_token.clone();
    counting_flaky_node(&server).await;
    let workflow = server
        .create_workflow(
            &token,
            json!({"name": "retried", "nodes": [succeeds_on_third_attempt("flaky")]}),
        )
        .await;
    let (mut events, _) =
        tokio_tungstenite::connect_async(server.ws_request(&token, "/api/v1/workflows/status"))
            .await
            .expect("status stream");
    let run_id = server
        .execute(&token, workflow["id"].as_str().unwrap(), json!({}))
        .await;
    let events = events_until_finished(&mut events).await;
    let run = server.wait_run(&token, &run_id).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let flaky = node(&run, "flaky");
    assert_eq!(flaky["attempts"], 3, "{flaky}");
    assert_eq!(flaky["outputs"]["out"], json!({"attempt": 3}), "{flaky}");

    let seen: Vec<String> = events
        .iter()
        .map(|e| format!("{} {}", e["type"].as_str().unwrap(), e["attempt"]))
        .collect();
    assert_eq!(
        seen,
        [
            "run_started null",
            "node_started 1",
            "node_retried 1",
            "node_started 2",
            "node_retried 2",
            "node_started 3",
            "node_succeeded 3",
            "run_finished null"
        ]
    );
    let retried: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "node_retried")
        .collect();
    for (i, event) in retried.iter().enumerate() {
        assert_eq!(event["node"], "flaky", "{event}");
        assert_eq!(event["error"]["retryable"], true, "{event}");
        assert!(
            event["error"]["message"]
                .as_str()
                .unwrap()
                .contains("fails on purpose"),
            "{event}"
        );
        // Exponential from 20 ms, at most 40 ms.
        assert_eq!(event["delay_ms"], [20, 40][i], "{event}");
    }
}

/// A node over its timeout fails with kind `timeout` and, with `on_error = skip_dependents`,
/// what depends on it is skipped while the run succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_fails_the_node_and_skips_its_dependents() {
    let (server, token) = server_with(&["slow-node"]).await;
    let run = server
        .run_workflow(
            &token,
            json!({
                "name": "timeout",
                "nodes": [
                    {"id": "too-slow", "type": "slow-node", "config": {"ms": 5000},
                     "timeout": "200ms", "on_error": "skip_dependents"},
                    {"id": "after-slow", "type": "fibo", "config": {"n": 2}}
                ],
                "edges": [{"source": "too-slow", "target": "after-slow"}]
            }),
        )
        .await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let slow = node(&run, "too-slow");
    assert_eq!(slow["status"], "failed");
    assert_eq!(slow["error"]["kind"], "timeout", "{slow}");
    let ran = millis(&slow["finished_at"]) - millis(&slow["started_at"]);
    assert!(
        ran < 5000,
        "stopped at its timeout, not at its end: {ran} ms"
    );
    assert_eq!(node(&run, "after-slow")["status"], "skipped");
}

/// With `on_error = continue`, a node that gave up after its retries lets its dependents run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_error_continue_runs_the_dependents_of_a_failed_node() {
    let (server, token) = server_with(&["flaky-node"]).await;
    let run = server
        .run_workflow(
            &token,
            json!({
                "name": "continues",
                "nodes": [
                    {"id": "gives-up", "type": "flaky-node", "config": {"succeed_on": 99},
                     "retry": {"max_attempts": 2, "backoff": 0.01}, "on_error": "continue"},
                    {"id": "after-give-up", "type": "fibo", "config": {"n": 3}}
                ],
                "edges": [{"source": "gives-up", "target": "after-give-up"}]
            }),
        )
        .await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let gave_up = node(&run, "gives-up");
    assert_eq!(gave_up["status"], "failed");
    assert_eq!(gave_up["attempts"], 2);
    assert_eq!(gave_up["error"]["kind"], "node-error");
    assert_eq!(node(&run, "after-give-up")["status"], "succeeded");
}

/// With `on_error = fail` (the default) a failed node fails the run: its dependents are not
/// run and a node still running is stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_error_fail_stops_the_run() {
    let (server, token) = server_with(&["flaky-node", "slow-node"]).await;
    // `bad` fails only after `gate` (which starts with `slow`) took half a second, so `slow`
    // runs when the run fails.
    let run = server
        .run_workflow(
            &token,
            json!({
                "name": "fails",
                "nodes": [
                    {"id": "gate", "type": "slow-node", "config": {"ms": 500}},
                    {"id": "bad", "type": "flaky-node", "config": {"succeed_on": 99}},
                    {"id": "slow", "type": "slow-node", "config": {"ms": 20000}},
                    {"id": "next", "type": "fibo", "config": {"n": 1}}
                ],
                "edges": [
                    {"source": "gate", "target": "bad"},
                    {"source": "bad", "target": "next"}
                ]
            }),
        )
        .await;
    assert_eq!(run["status"], "failed", "{run}");
    assert!(run["error"].as_str().unwrap().contains("'bad'"), "{run}");
    assert_eq!(node(&run, "bad")["attempts"], 1);
    let next = node(&run, "next");
    assert_eq!(next["status"], "cancelled", "{next}");
    assert!(next["started_at"].is_null(), "never run: {next}");
    let slow = node(&run, "slow");
    assert!(slow["started_at"].is_string(), "it was running: {slow}");
    assert_eq!(
        slow["status"], "cancelled",
        "a running node is stopped: {slow}"
    );
    let ran = millis(&slow["finished_at"]) - millis(&slow["started_at"]);
    assert!(ran < 20000, "stopped, not finished: {ran} ms");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_and_event_streams() {
    let server = TestServer::start(Backend::Sqlite).await;
    let (status, _) = server.upload(fixture("slow-node")).await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, bob_token) = server.user("bob").await;
    let token = server.admin_token.clone();
    let ws_url = |path: &str| server.ws_request(&token, path);
    let (mut all, _) = tokio_tungstenite::connect_async(ws_url("/api/v1/workflows/status"))
        .await
        .expect("status stream");
    // Without a token the stream is refused like any other endpoint.
    let refused =
        tokio_tungstenite::connect_async(format!("ws://{}/api/v1/workflows/status", server.addr))
            .await;
    assert!(refused.is_err());

    let workflow = server.create_workflow(&token, chain("events", 2)).await;
    let id = workflow["id"].as_str().unwrap();
    let run_id = server.execute(&token, id, json!({})).await;
    let mut seen = Vec::new();
    while let Some(message) = all.next().await {
        let event: Value = serde_json::from_str(message.unwrap().to_text().unwrap()).unwrap();
        assert_eq!(event["run_id"], run_id.as_str());
        seen.push(format!(
            "{} {}",
            event["type"].as_str().unwrap(),
            event["node"].as_str().unwrap_or("")
        ));
        if event["type"] == "run_finished" {
            assert_eq!(event["status"], "succeeded");
            break;
        }
    }
    assert_eq!(
        seen,
        [
            "run_started ",
            "node_started f0",
            "node_succeeded f0",
            "node_started f1",
            "node_succeeded f1",
            "run_finished "
        ]
    );

    // One run's stream: a snapshot first, then its events; cancel stops the running node.
    let slow = server
        .create_workflow(
            &token,
            json!({"name": "slow", "nodes": [
                {"id": "nap", "type": "slow-node", "config": {"ms": 20000}},
                {"id": "after", "type": "fibo", "config": {"n": 1}}
            ], "edges": [{"source": "nap", "target": "after"}]}),
        )
        .await;
    let run_id = server
        .execute(&token, slow["id"].as_str().unwrap(), json!({}))
        .await;
    let (mut one, _) =
        tokio_tungstenite::connect_async(ws_url(&format!("/api/v1/runs/{run_id}/events")))
            .await
            .expect("run stream");
    let first: Value =
        serde_json::from_str(one.next().await.unwrap().unwrap().to_text().unwrap()).unwrap();
    assert_eq!(first["type"], "snapshot");
    assert_eq!(first["run"]["id"], run_id.as_str());
    // Bob may not cancel (or see) the admin's run.
    let (status, body) = send(server.with_token(
        &bob_token,
        Method::POST,
        &format!("/api/v1/runs/{run_id}/cancel"),
    ))
    .await;
    assert_error(status, &body, 404, "90203");
    // Wait until the node runs, then cancel.
    server.wait_node_running(&token, &run_id, "nap").await;
    let (status, cancelled) =
        send(server.admin(Method::POST, &format!("/api/v1/runs/{run_id}/cancel"))).await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    let run = server.wait_run(&token, &run_id).await;
    assert_eq!(node(&run, "nap")["status"], "cancelled");
    assert_eq!(node(&run, "after")["status"], "cancelled");
    let mut last = Value::Null;
    while let Some(Ok(message)) = one.next().await {
        if let Ok(text) = message.to_text()
            && !text.is_empty()
        {
            last = serde_json::from_str(text).unwrap();
        }
    }
    assert_eq!(last["type"], "run_finished", "the stream ends with the run");
    assert_eq!(last["status"], "cancelled");
    // Cancelling a finished run is a clear conflict.
    let (status, body) =
        send(server.admin(Method::POST, &format!("/api/v1/runs/{run_id}/cancel"))).await;
    assert_error(status, &body, 409, "40201");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_in_use_stay() {
    let server = TestServer::start(Backend::Sqlite).await;
    let (status, _) = server.upload(fixture("echo-node")).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = server.upload(fixture("echo-node-v2")).await;
    assert_eq!(status, StatusCode::CREATED);
    let token = server.admin_token.clone();
    let pinned = server
        .create_workflow(
            &token,
            json!({"name": "pinned", "nodes": [{"id": "e", "type": "echo-node@1.0.0"}]}),
        )
        .await;
    let newest = server
        .create_workflow(
            &token,
            json!({"name": "newest", "nodes": [{"id": "e", "type": "echo-node"}]}),
        )
        .await;
    // 1.0.0 is named by `pinned`; removing every version would leave `newest` without one.
    let (status, body) =
        send(server.admin(Method::DELETE, "/api/v1/plugins/echo-node?version=1.0.0")).await;
    assert_error(status, &body, 409, "60202");
    assert!(
        body["message"].as_str().unwrap().contains("pinned"),
        "{body}"
    );
    let (status, body) = send(server.admin(Method::DELETE, "/api/v1/plugins/echo-node")).await;
    assert_error(status, &body, 409, "60202");
    // 2.0.0 alone may go: `newest` falls back to 1.0.0.
    let (status, body) =
        send(server.admin(Method::DELETE, "/api/v1/plugins/echo-node?version=2.0.0")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let run_id = server
        .execute(
            &token,
            newest["id"].as_str().unwrap(),
            json!({"e": {"in": "hi"}}),
        )
        .await;
    let run = server.wait_run(&token, &run_id).await;
    assert_eq!(node(&run, "e")["plugin"], "echo-node@1.0.0");
    assert_eq!(node(&run, "e")["outputs"]["out"], "hi");
    // Once no workflow names it, it can be removed.
    for w in [&pinned, &newest] {
        let (status, _) = send(server.admin(
            Method::DELETE,
            &format!("/api/v1/workflows/{}", w["id"].as_str().unwrap()),
        ))
        .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
    }
    let (status, body) = send(server.admin(Method::DELETE, "/api/v1/plugins/echo-node")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// A real `weft` is killed with SIGKILL in the middle of a run; the restarted one finishes the
/// run without running again what had already succeeded.
async fn a_killed_host_resumes_its_runs(backend: Backend) {
    let site = Site::new(backend).await;
    let (client, token) = (&site.client, &site.token);
    let mut first_host = site.serve(&[]);
    let base = first_host.base_url();
    let (status, _) = send(
        client
            .post(format!("{base}/api/v1/plugins"))
            .bearer_auth(token)
            .header("content-type", "application/wasm")
            .body(fixture("slow-node")),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, workflow) = send(
        client
            .post(format!("{base}/api/v1/workflows"))
            .bearer_auth(token)
            .json(&json!({
                "name": "survives",
                "nodes": [
                    {"id": "first", "type": "fibo", "config": {"n": 12}},
                    {"id": "nap", "type": "slow-node", "config": {"ms": 1500}},
                    {"id": "last", "type": "json-transform", "config": {"query": ".slept_ms"}}
                ],
                "edges": [
                    {"source": "first", "target": "nap", "target_port": "in"},
                    {"source": "nap", "target": "last", "target_port": "in"}
                ]
            })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{workflow}");
    // Kill while `nap` runs, after `first` succeeded.
    let (run_id, before) =
        crate::support::execute_until_running(client, &base, token, &workflow, "nap").await;
    first_host.kill();
    let killed_at = chrono::Utc::now().timestamp_millis();
    assert_eq!(node(&before, "first")["status"], "succeeded");

    let second_host = site.serve(&[]);
    let run = crate::support::wait_for_run(client, &second_host.base_url(), token, &run_id).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let first = node(&run, "first");
    assert_eq!(first["attempts"], 1);
    assert_eq!(
        first["started_at"],
        node(&before, "first")["started_at"],
        "a node that had succeeded is not run again"
    );
    assert_eq!(first["outputs"]["out"], 144);
    let nap = node(&run, "nap");
    assert_eq!(nap["inputs"]["in"], 144, "the stored output is reused");
    assert!(millis(&nap["started_at"]) >= killed_at, "nap ran again");
    assert_eq!(
        nap["attempts"], 1,
        "an interrupted attempt is not a failed one"
    );
    assert!(node(&run, "last")["outputs"]["out"].as_i64().unwrap() >= 1500);
}

fn example(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/workflows")
        .join(name)
}

/// Every example workflow is valid against the built-in plugins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn example_workflows_are_valid() {
    let server = TestServer::start(Backend::Sqlite).await;
    let dir = example("");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let definition: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let (status, body) = send(
            server
                .admin(Method::POST, "/api/v1/workflows/validate")
                .json(&definition),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{}: {body}", path.display());
        checked += 1;
    }
    assert!(checked >= 3, "examples found in {}", dir.display());
}

/// `weft workflow validate|run` and `weft run show` against a real server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_validates_runs_and_shows() {
    let dir = tempfile::tempdir().unwrap();
    let common = ["--data-dir", dir.path().to_str().unwrap()];
    let token = crate::support::bootstrap(&[], &common);
    let server = crate::support::WeftProcess::serve_args(&common);
    let cli = |args: &[&str]| {
        let out = crate::support::weft()
            .env("WEFT_URL", server.base_url())
            .env("WEFT_TOKEN", &token)
            .args(args)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let report = example("sales-report.json");
    let report = report.to_str().unwrap();
    let (ok, stdout, stderr) = cli(&["workflow", "validate", report]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("is valid: 8 nodes"), "{stdout}");

    let broken = dir.path().join("broken.json");
    std::fs::write(
        &broken,
        r#"{"name": "b", "nodes": [{"id": "a", "type": "nope"}, {"id": "a", "type": "fibo"}]}"#,
    )
    .unwrap();
    let (ok, stdout, stderr) = cli(&["workflow", "validate", broken.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        stdout.contains("nodes[0].type") && stdout.contains("nodes[1].id"),
        "{stdout}"
    );
    assert!(stderr.contains("2 problem(s)"), "{stderr}");

    let csv = "region,amount\nnorth,120\nsouth,300\n";
    let (ok, stdout, stderr) = cli(&[
        "workflow",
        "run",
        report,
        "--input",
        &format!("rows.in={}", serde_json::to_string(csv).unwrap()),
    ]);
    assert!(ok, "{stdout}\n{stderr}");
    assert!(stdout.contains("succeeded"), "{stdout}");
    assert!(stdout.contains("Big sales: mean 210 per order"), "{stdout}");
    assert!(
        stdout.contains("report-small") && stdout.contains("skipped"),
        "{stdout}"
    );
    let run_id = stderr
        .lines()
        .find_map(|l| l.strip_prefix("run "))
        .expect("the run id is printed")
        .trim()
        .to_string();
    let (ok, stdout, _) = cli(&["run", "show", &run_id, "--json"]);
    assert!(ok);
    let shown: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(shown["status"], "succeeded");
    assert_eq!(node(&shown, "mean")["outputs"]["out"], 210);
}
