//! What a restarted Weft still knows: a real `weft serve` is stopped (SIGKILL, as a crash would)
//! and another process started on the same data folder and database answers from what the
//! first one stored. (Runs resumed after a SIGKILL are in `workflows`, containers reconciled
//! in `containers`, sessions in `sessions`.)

use crate::on_both_backends;
use crate::support::fixtures::fixture;
use crate::support::{Backend, Site, TaskInstance, WeftProcess, call, send, wait};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;

on_both_backends!(
    finished_tasks_and_instances_survive_a_restart,
    the_active_strategy_survives_a_restart,
    the_plugin_registry_survives_a_restart
);

/// `call` on `host` as the site's admin.
fn admin(
    site: &Site,
    host: &WeftProcess,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> impl Future<Output = (StatusCode, Value)> + use<> {
    call(
        &site.client,
        &host.base_url(),
        &site.token,
        method,
        path,
        body,
    )
}

/// Tasks finished before the restart are answered with their results, and the instances are
/// the ones registered (less the one removed).
async fn finished_tasks_and_instances_survive_a_restart(backend: Backend) {
    let site = Site::new(backend).await;
    let mut first = site.serve(&[]);
    let base = first.base_url();
    let kept = TaskInstance::start("llm", 0, "1ms", &base, Some(&site.token));
    let removed = TaskInstance::start("llm", 0, "1ms", &base, Some(&site.token));
    let (status, answer) = admin(
        &site,
        &first,
        Method::POST,
        "/queue/submit",
        Some(json!({"model_name": "llm", "task_input": {"prompt": "kept"}})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let task = answer["task_id"].as_str().expect("a task id").to_string();
    let query = format!("/task/query?task_id={task}");
    wait::until("the task to complete", Duration::from_secs(30), || async {
        let (_, task) = admin(&site, &first, Method::GET, &query, None).await;
        if task["task_status"] == "completed" {
            Ok(())
        } else {
            Err(task)
        }
    })
    .await;
    // `/task/query` shows a completion as soon as it is queued for storing, a few
    // milliseconds before its commit. The scheduler stores task changes in the order they
    // were made and answers a submit once it is stored: after this answer, the completion
    // is in the database.
    let (status, later) = admin(
        &site,
        &first,
        Method::POST,
        "/queue/submit",
        Some(json!({"model_name": "llm", "task_input": {"prompt": "later"}})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{later}");
    let (status, body) = admin(
        &site,
        &first,
        Method::POST,
        "/ti/remove",
        Some(json!({"ti_uuid": removed.ti_uuid})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    first.kill();

    let second = site.serve(&[]);
    let (status, task) = admin(&site, &second, Method::GET, &query, None).await;
    assert_eq!(status, StatusCode::OK, "{task}");
    assert_eq!(task["task_status"], "completed", "{task}");
    assert_eq!(task["result"]["output"]["prompt"], "kept", "{task}");
    let (status, instances) = admin(
        &site,
        &second,
        Method::GET,
        "/api/v1/scheduler/instances",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{instances}");
    let ids: Vec<&str> = instances
        .as_array()
        .expect("a list")
        .iter()
        .map(|ti| ti["ti_uuid"].as_str().expect("an id"))
        .collect();
    assert_eq!(ids, [kept.ti_uuid.as_deref().unwrap()], "{instances}");
}

/// The strategy an admin activated serves every model after a restart.
async fn the_active_strategy_survives_a_restart(backend: Backend) {
    let site = Site::new(backend).await;
    let mut first = site.serve(&[]);
    let (status, view) = admin(
        &site,
        &first,
        Method::PUT,
        "/api/v1/scheduler/strategies/active",
        Some(json!({"strategy": "probabilistic"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{view}");
    first.kill();

    let second = site.serve(&[]);
    let (status, strategies) = admin(
        &site,
        &second,
        Method::GET,
        "/api/v1/scheduler/strategies",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{strategies}");
    assert_eq!(
        strategies["global"]["strategy"], "probabilistic@0.1.0",
        "{strategies}"
    );
}

/// Uploaded plugins are loaded again at start, every version: runs name them as before.
async fn the_plugin_registry_survives_a_restart(backend: Backend) {
    let site = Site::new(backend).await;
    let mut first = site.serve(&[]);
    for name in ["echo-node", "echo-node-v2"] {
        let (status, body) = send(
            site.client
                .post(format!("{}/api/v1/plugins", first.base_url()))
                .bearer_auth(&site.token)
                .header("content-type", "application/wasm")
                .body(fixture(name)),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    first.kill();

    let second = site.serve(&[]);
    let (status, detail) = admin(
        &site,
        &second,
        Method::GET,
        "/api/v1/plugins/echo-node",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    assert_eq!(detail["latest"], "2.0.0", "{detail}");
    for (reference, version) in [("echo-node@1.0.0", "1.0.0"), ("echo-node", "2.0.0")] {
        let (status, out) = admin(
            &site,
            &second,
            Method::POST,
            &format!("/api/v1/plugins/{reference}/run"),
            Some(json!({"inputs": {"in": reference}})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{out}");
        assert_eq!(out["plugin"], format!("echo-node@{version}"), "{out}");
        assert_eq!(out["outputs"]["out"], reference, "{out}");
    }
}
