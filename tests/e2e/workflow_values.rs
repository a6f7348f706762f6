//! Large values in workflow runs, with a real compiled plugin (`big-output`) on both database
//! backends: an output over `[workflows] max_output_bytes`, or outputs going past
//! `max_run_output_bytes`, fail their node with 40204 and the run cleanly; a large output under
//! the caps is kept out of line (a file, not the database row), reaches the next node whole and
//! reads back whole through the API, also after the host was killed and restarted.

use crate::on_both_backends;
use crate::support::fixtures::fixture;
use crate::support::{Backend, TestServer, assert_error, node, send};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

on_both_backends!(
    an_output_over_the_cap_fails_its_node,
    large_outputs_are_kept_out_of_line,
    outputs_are_the_run_owners,
    outputs_past_the_runs_cap_fail_the_node,
    deleting_a_workflow_deletes_its_stored_values,
    stored_outputs_survive_a_killed_host
);

/// The JSON text `big-output` returns for `zeros` elements.
fn zeros_text(zeros: usize) -> String {
    let mut text = String::with_capacity(2 * zeros + 1);
    text.push('[');
    for i in 0..zeros {
        text.push_str(if i == 0 { "0" } else { ",0" });
    }
    text.push(']');
    text
}

fn big(id: &str, zeros: usize) -> Value {
    json!({"id": id, "type": "big-output", "config": {"zeros": zeros}})
}

/// `GET` of output `port` of node `node`: status, content type and body.
async fn output(
    server: &TestServer,
    token: &str,
    run: &str,
    node: &str,
    port: &str,
) -> (StatusCode, String, Vec<u8>) {
    let response = server
        .with_token(
            token,
            Method::GET,
            &format!("/api/v1/runs/{run}/nodes/{node}/outputs/{port}"),
        )
        .send()
        .await
        .expect("GET output");
    let status = response.status();
    let kind = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (status, kind, response.bytes().await.expect("body").to_vec())
}

const MAX_OUTPUT: usize = 4 << 20;

/// A server with outputs capped at 4 MiB (5 MiB a run) and the `big-output` and `echo-node`
/// fixtures; returns it with the admin's token and its values folder.
async fn capped_server(backend: Backend) -> (TestServer, String, std::path::PathBuf) {
    let server = TestServer::start_with(backend, |config| {
        config.workflows.max_output_bytes = MAX_OUTPUT as u64;
        config.workflows.max_run_output_bytes = 5 << 20;
    })
    .await;
    for name in ["big-output", "echo-node"] {
        let (status, body) = server.upload(fixture(name)).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let values_dir = server.config.data_dir.join("run-values");
    let token = server.admin_token.clone();
    (server, token, values_dir)
}

/// The run of a workflow with a million-zero JSON output fed to `echo` and 200,001 zero bytes;
/// returns the workflow's id, the run and the JSON text.
async fn large_run(server: &TestServer, token: &str) -> (String, Value, String) {
    let zeros = 1_000_000;
    let text = zeros_text(zeros);
    let workflow = server
        .create_workflow(
            token,
            json!({"name": "large",
                   "nodes": [big("big", zeros), {"id": "echo", "type": "echo-node"},
                             {"id": "bytes", "type": "big-output",
                              "config": {"zeros": 100_000, "bytes": true}}],
                   "edges": [{"source": "big", "target": "echo", "target_port": "in"}]}),
        )
        .await;
    let workflow_id = workflow["id"].as_str().unwrap().to_string();
    let run_id = server.execute(token, &workflow_id, json!({})).await;
    let run = server.wait_run(token, &run_id).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    (workflow_id, run, text)
}

/// One output over `max_output_bytes`: the node fails with 40204, nothing after it runs, the
/// run fails, and nothing of the value is kept.
async fn an_output_over_the_cap_fails_its_node(backend: Backend) {
    let (server, token, values_dir) = capped_server(backend).await;
    // One output over the cap: the node fails with the limit code, nothing after it runs, the
    // run fails, and nothing of the value is kept.
    let too_big = MAX_OUTPUT / 2 + 1_000;
    let run = server
        .run_workflow(
            &token,
            json!({"name": "too big",
                   "nodes": [big("big", too_big), {"id": "echo", "type": "echo-node"}],
                   "edges": [{"source": "big", "target": "echo", "target_port": "in"}]}),
        )
        .await;
    assert_eq!(run["status"], "failed", "{run}");
    let failed = node(&run, "big");
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(failed["attempts"], 1);
    assert_eq!(failed["error"]["code"], "40204", "{failed}");
    assert_eq!(failed["error"]["kind"], "output-limit");
    assert_eq!(failed["error"]["retryable"], false);
    let message = failed["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("{} bytes", 2 * too_big + 1))
            && message.contains("max_output_bytes"),
        "{message}"
    );
    assert!(run["error"].as_str().unwrap().contains("'big'"), "{run}");
    assert_eq!(node(&run, "echo")["status"], "cancelled");
    let run_id = run["id"].as_str().unwrap();
    assert!(
        !values_dir.join(run_id).exists(),
        "a refused output is not kept"
    );
    let (status, _, body) = output(&server, &token, run_id, "big", "out").await;
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_error(status, &body, 404, "90203");
}

/// Under the cap, a large output is kept in a file, not in the row; the next node gets it
/// whole; the outputs read back as produced.
async fn large_outputs_are_kept_out_of_line(backend: Backend) {
    let (server, token, values_dir) = capped_server(backend).await;
    let (_, run, text) = large_run(&server, &token).await;
    let run_id = run["id"].as_str().unwrap().to_string();
    let reference = |node_id: &str, kind: &str, size: usize| json!({"kind": kind, "size": size, "node": node_id, "port": "out"});
    let produced = node(&run, "big");
    assert_eq!(produced["outputs"], json!({}), "{produced}");
    assert_eq!(
        produced["stored_outputs"]["out"],
        reference("big", "json", text.len())
    );
    let echoed = node(&run, "echo");
    assert_eq!(echoed["inputs"], json!({}));
    assert_eq!(
        echoed["stored_inputs"]["in"],
        reference("big", "json", text.len()),
        "the input names the output it is, not a copy"
    );
    assert_eq!(
        echoed["stored_outputs"]["out"],
        reference("echo", "json", text.len())
    );
    assert_eq!(
        node(&run, "bytes")["stored_outputs"]["out"],
        reference("bytes", "bytes", 200_001)
    );
    assert!(
        run.to_string().len() < 20_000,
        "the run's rows hold references, not values"
    );
    assert_eq!(
        std::fs::read(values_dir.join(&run_id).join("big").join("out")).unwrap(),
        text.as_bytes()
    );
    for node_id in ["big", "echo"] {
        let (status, kind, body) = output(&server, &token, &run_id, node_id, "out").await;
        assert_eq!(status, StatusCode::OK, "{node_id}");
        assert_eq!(kind, "application/json");
        assert!(body == text.as_bytes(), "{node_id}: the output as produced");
    }
    let (status, kind, body) = output(&server, &token, &run_id, "bytes", "out").await;
    assert_eq!(
        (status, kind.as_str()),
        (StatusCode::OK, "application/octet-stream")
    );
    assert!(body.len() == 200_001 && body.iter().all(|&b| b == 0));
}

/// Outputs are the run owner's: others get nothing; unknown nodes and ports are 404.
async fn outputs_are_the_run_owners(backend: Backend) {
    let (server, token, _) = capped_server(backend).await;
    let (_, run, _) = large_run(&server, &token).await;
    let run_id = run["id"].as_str().unwrap().to_string();
    // Outputs are the run owner's: others get nothing; unknown nodes and ports are 404.
    let (_, bob) = server.user("bob").await;
    let (status, _, body) = output(&server, &bob, &run_id, "big", "out").await;
    assert_error(
        status,
        &serde_json::from_slice(&body).unwrap(),
        404,
        "90203",
    );
    for (node_id, port) in [("nope", "out"), ("big", "nope")] {
        let (status, _, body) = output(&server, &token, &run_id, node_id, port).await;
        assert_error(
            status,
            &serde_json::from_slice(&body).unwrap(),
            404,
            "90203",
        );
    }
}

/// Each output under the cap, together over `max_run_output_bytes`: the node going past it
/// fails with 40204.
async fn outputs_past_the_runs_cap_fail_the_node(backend: Backend) {
    let (server, token, _) = capped_server(backend).await;
    // Each output under the cap, together over the run's: the node going past it fails.
    let run = server
        .run_workflow(
            &token,
            json!({"name": "run cap",
                   "nodes": [big("first", 1_500_000), big("second", 1_500_000)],
                   "edges": [{"source": "first", "target": "second"}]}),
        )
        .await;
    assert_eq!(run["status"], "failed", "{run}");
    assert_eq!(node(&run, "first")["status"], "succeeded");
    let second = node(&run, "second");
    assert_eq!(second["error"]["code"], "40204", "{second}");
    assert!(
        second["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_run_output_bytes"),
        "{second}"
    );
}

/// Deleting the workflow deletes its runs' stored values.
async fn deleting_a_workflow_deletes_its_stored_values(backend: Backend) {
    let (server, token, values_dir) = capped_server(backend).await;
    let (workflow_id, run, _) = large_run(&server, &token).await;
    let run_id = run["id"].as_str().unwrap().to_string();
    assert!(values_dir.join(&run_id).exists());
    // Deleting the workflow deletes its runs' stored values.
    let (status, body) = send(server.with_token(
        &token,
        Method::DELETE,
        &format!("/api/v1/workflows/{workflow_id}"),
    ))
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert!(!values_dir.join(&run_id).exists());
}

/// `weft serve` is killed while a node runs after one whose large output was kept out of line;
/// the restarted host resumes the run and the next node takes that output, read back from
/// storage.
async fn stored_outputs_survive_a_killed_host(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let url = backend.fresh_database(dir.path()).await;
    let common = [
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--database-url",
        &url,
    ];
    let token = crate::support::bootstrap(&[], &common);
    let serve = || crate::support::WeftProcess::serve_args(&common);
    let client = reqwest::Client::new();
    let mut first_host = serve();
    let base = first_host.base_url();
    for name in ["big-output", "slow-node", "echo-node"] {
        let (status, body) = send(
            client
                .post(format!("{base}/api/v1/plugins"))
                .bearer_auth(&token)
                .header("content-type", "application/wasm")
                .body(fixture(name)),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let zeros = 100_000;
    let (status, workflow) = send(
        client
            .post(format!("{base}/api/v1/workflows"))
            .bearer_auth(&token)
            .json(&json!({
                "name": "survives",
                "nodes": [big("big", zeros),
                          {"id": "nap", "type": "slow-node", "config": {"ms": 1500}},
                          {"id": "echo", "type": "echo-node"}],
                "edges": [{"source": "big", "target": "nap"},
                          {"source": "nap", "target": "echo"},
                          {"source": "big", "target": "echo", "target_port": "in"}]
            })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{workflow}");
    // Kill while `nap` runs, after `big` succeeded and its output was stored.
    let (run_id, before) =
        crate::support::execute_until_running(&client, &base, &token, &workflow, "nap").await;
    first_host.kill();
    let stored = json!({"kind": "json", "size": 2 * zeros + 1, "node": "big", "port": "out"});
    assert_eq!(node(&before, "big")["stored_outputs"]["out"], stored);

    let second_host = serve();
    let base = second_host.base_url();
    let run = crate::support::wait_for_run(&client, &base, &token, &run_id).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let big_node = node(&run, "big");
    assert_eq!(big_node["attempts"], 1, "{big_node}");
    assert_eq!(big_node["started_at"], node(&before, "big")["started_at"]);
    assert_eq!(node(&run, "echo")["stored_inputs"]["in"], stored);
    let response = client
        .get(format!(
            "{base}/api/v1/runs/{run_id}/nodes/echo/outputs/out"
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.bytes().await.unwrap() == zeros_text(zeros).as_bytes());
}
