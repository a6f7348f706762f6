//! What `/metrics` tells an operator after real work: workflow runs and nodes, a scheduler task
//! through a real `weft task-instance`, and a Jupyter session opened by a notebook execution,
//! reached through the proxy (HTTP and a WebSocket) and stopped. Every label comes from a bounded set: no id is one.

use crate::on_both_backends;
use crate::support::docker;
use crate::support::fixtures::fixture;
use crate::support::loopback;
use crate::support::{Backend, TaskInstance, TestServer, send, wait};
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::collections::HashMap;
use std::time::Duration;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

on_both_backends!(workflow_runs_and_scheduler_tasks_are_counted);

/// The series of `/metrics` (read as the admin) by name and labels, with their values.
async fn scrape(server: &TestServer) -> (HashMap<String, f64>, String) {
    let response = server.admin(Method::GET, "/metrics").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    let series = text
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.rsplit_once(' '))
        .map(|(name, value)| (name.to_string(), value.parse().expect("a number")))
        .collect();
    (series, text)
}

/// The value of `series` (`name{labels}` as served), failing the test when it is absent.
#[track_caller]
fn value(series: &HashMap<String, f64>, name: &str) -> f64 {
    *series
        .get(name)
        .unwrap_or_else(|| panic!("{name} not served; served: {:#?}", series.keys()))
}

/// Asserts none of `ids` shows in the metrics, and no label value but a number looks like an
/// id (a long run of letters and digits).
#[track_caller]
fn assert_no_ids(text: &str, ids: &[&str]) {
    for id in ids {
        assert!(!text.contains(id), "the id {id} is in the metrics:\n{text}");
    }
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((_, labels)) = line.split_once('{') else {
            continue;
        };
        // Bucket bounds (`le`) are numbers, not ids.
        let values = labels.split('"').skip(1).step_by(2);
        for value in values.filter(|v| v.parse::<f64>().is_err()) {
            let longest = value
                .split(|c: char| !c.is_ascii_alphanumeric())
                .map(str::len)
                .max()
                .unwrap_or(0);
            assert!(longest < 16, "a label value like an id: {line}");
        }
    }
}

async fn workflow_runs_and_scheduler_tasks_are_counted(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (status, body) = server.upload(fixture("flaky-node")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let token = server.admin_token.clone();
    let good = server
        .run_workflow(
            &token,
            json!({"name": "good", "nodes": [
                {"id": "a", "type": "fibo", "config": {"n": 5}},
                {"id": "b", "type": "fibo", "config": {"n": 3}}
            ], "edges": [{"source": "a", "target": "b"}]}),
        )
        .await;
    assert_eq!(good["status"], "succeeded", "{good}");
    let bad = server
        .run_workflow(
            &token,
            json!({"name": "bad", "nodes": [
                {"id": "bad", "type": "flaky-node", "config": {"succeed_on": 99}},
                {"id": "never", "type": "fibo", "config": {"n": 1}}
            ], "edges": [{"source": "bad", "target": "never"}]}),
        )
        .await;
    assert_eq!(bad["status"], "failed", "{bad}");

    let instance = TaskInstance::start("llm", 0, "5ms", &server.url(""), Some(&token));
    let (status, submitted) = send(
        server
            .anon(Method::POST, "/queue/submit")
            .header("x-weft-token", &token)
            .json(&json!({"model_name": "llm", "task_input": {"prompt": "p"}, "metadata": {}})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{submitted}");
    let task_id = submitted["task_id"].as_str().unwrap().to_string();
    wait::until("the task to complete", Duration::from_secs(30), || async {
        let (_, task) = send(
            server
                .anon(Method::GET, &format!("/task/query?task_id={task_id}"))
                .header("x-weft-token", &token),
        )
        .await;
        if task["task_status"] == "completed" {
            Ok(())
        } else {
            Err(task)
        }
    })
    .await;

    let (series, text) = scrape(&server).await;
    let runs = |status: &str| {
        value(
            &series,
            &format!("weft_workflow_runs_total{{status=\"{status}\"}}"),
        )
    };
    assert_eq!(runs("succeeded"), 1.0);
    assert_eq!(runs("failed"), 1.0);
    assert_eq!(
        value(
            &series,
            "weft_workflow_run_seconds_count{status=\"failed\"}"
        ),
        1.0
    );
    let nodes = |status: &str| {
        value(
            &series,
            &format!("weft_workflow_nodes_total{{status=\"{status}\"}}"),
        )
    };
    assert_eq!(nodes("succeeded"), 2.0);
    assert_eq!(nodes("failed"), 1.0);
    assert_eq!(nodes("cancelled"), 1.0, "the node the failure left unrun");
    assert_eq!(
        value(&series, "weft_scheduler_decisions_total{model=\"llm\"}"),
        1.0
    );
    assert_eq!(
        value(&series, "weft_scheduler_completions_total{model=\"llm\"}"),
        1.0
    );
    assert_eq!(
        value(&series, "weft_scheduler_queue_length{model=\"llm\"}"),
        0.0
    );
    // The gauges read at the scrape are served before any session or container exists.
    assert_eq!(
        value(&series, "weft_sessions{kind=\"jupyter\",state=\"ready\"}"),
        0.0
    );
    assert_eq!(
        value(&series, "weft_pool_containers{kind=\"code-server\"}"),
        0.0
    );
    assert_eq!(value(&series, "weft_containers{purpose=\"session\"}"), 0.0);
    assert_eq!(
        value(&series, "weft_host_allocated{resource=\"memory\"}"),
        0.0
    );
    let ids = [
        good["id"].as_str().unwrap(),
        good["workflow_id"].as_str().unwrap(),
        bad["id"].as_str().unwrap(),
        &task_id,
        instance.ti_uuid.as_deref().unwrap(),
    ];
    assert_no_ids(&text, &ids);
}

/// A notebook execution opens a Jupyter session (a cold start), a request reaches it through
/// the proxy, and the stop ends it: sessions by state, the open latency, the proxy's traffic,
/// containers against capacity, quota minutes and executions all move.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_its_proxy_and_notebook_executions_are_counted() {
    let image = weft::config::WorkspacesConfig::default().jupyter.image;
    docker::require();
    assert!(
        docker::docker(&["image", "inspect", &image]).0,
        "{image} is missing: run tests/run.sh (it builds it)"
    );
    let (server, _cleanup) = docker::server(Backend::Sqlite, |c| {
        c.workspaces.start_timeout_secs = 90;
        c.workspaces.memory = "512Mi".into();
    })
    .await;
    let (bob_id, bob) = server.user("bob").await;
    let project = server.project(&bob, "metered").await;
    let (status, notebook) = send(
        server
            .with_token(&bob, Method::POST, "/api/v1/notebooks")
            .json(&json!({"project_id": project, "path": "m.ipynb"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{notebook}");
    let notebook_id = notebook["id"].as_str().unwrap();
    let (status, execution) = send(
        server
            .with_token(
                &bob,
                Method::POST,
                &format!("/api/v1/notebooks/{notebook_id}/execute"),
            )
            .json(&json!({"code": "1+1"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{execution}");
    assert_eq!(execution["status"], "ok", "{execution}");
    let session = server.session_ready(&bob, &project).await;
    let site = session["url"].as_str().unwrap();
    let (status, answer) = send(
        loopback::no_redirects()
            .get(format!("{site}api/status"))
            .bearer_auth(&bob),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    // A WebSocket to the notebook's kernel through the proxy, open while the metrics are read.
    let (status, kernels) = send(
        loopback::no_redirects()
            .get(format!("{site}api/kernels"))
            .bearer_auth(&bob),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{kernels}");
    let kernel = kernels[0]["id"].as_str().expect("the notebook's kernel");
    let mut request = format!(
        "{}api/kernels/{kernel}/channels",
        site.replacen("http", "ws", 1)
    )
    .into_client_request()
    .unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {bob}").parse().unwrap());
    let (mut socket, _) = loopback::ws_connect(request)
        .await
        .expect("a kernel WebSocket");

    let (series, text) = scrape(&server).await;
    let sessions = |series: &HashMap<String, f64>, state: &str| {
        value(
            series,
            &format!("weft_sessions{{kind=\"jupyter\",state=\"{state}\"}}"),
        )
    };
    assert_eq!(sessions(&series, "ready"), 1.0);
    assert_eq!(
        value(
            &series,
            "weft_session_open_seconds_count{kind=\"jupyter\",source=\"cold\"}"
        ),
        1.0
    );
    assert!(value(&series, "weft_proxy_requests_total{kind=\"jupyter\"}") >= 1.0);
    assert!(
        value(
            &series,
            "weft_proxy_bytes_total{kind=\"jupyter\",direction=\"out\"}"
        ) > 0.0
    );
    assert_eq!(
        value(&series, "weft_proxy_websockets{kind=\"jupyter\"}"),
        1.0
    );
    assert_eq!(
        value(&series, "weft_notebook_executions_total{outcome=\"ok\"}"),
        1.0
    );
    assert_eq!(value(&series, "weft_containers{purpose=\"session\"}"), 1.0);
    assert!(value(&series, "weft_host_capacity{resource=\"cpu\"}") > 0.0);
    assert!(value(&series, "weft_host_allocated{resource=\"memory\"}") >= f64::from(512u32 << 20));
    assert_eq!(
        value(&series, "weft_pool_containers{kind=\"jupyter\"}"),
        0.0
    );

    socket.close(None).await.unwrap();
    drop(socket);
    wait::until(
        "the WebSocket to close",
        Duration::from_secs(30),
        || async {
            let (series, _) = scrape(&server).await;
            // Its bytes are counted when it ends cleanly; a close that reaches Weft as a reset
            // (seen under load) counts none, so only the gauge is checked.
            let open = value(&series, "weft_proxy_websockets{kind=\"jupyter\"}");
            if open == 0.0 { Ok(()) } else { Err(open) }
        },
    )
    .await;

    let (status, stopped) = server.stop_session(&bob, &project).await;
    assert_eq!(status, StatusCode::OK, "{stopped}");
    let (after, text_after) = scrape(&server).await;
    assert_eq!(sessions(&after, "ready"), 0.0);
    assert_eq!(sessions(&after, "stopped"), 1.0);
    assert_eq!(value(&after, "weft_containers{purpose=\"session\"}"), 0.0);
    assert!(value(&after, "weft_quota_minutes_used_total") > 0.0);

    let ids = [
        bob_id.as_str(),
        project.as_str(),
        notebook_id,
        session["session_id"].as_str().unwrap(),
        session["container_id"].as_str().unwrap(),
    ];
    assert_no_ids(&text, &ids);
    assert_no_ids(&text_after, &ids);
}
