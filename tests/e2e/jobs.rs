//! Container jobs (the `jobs` capability) through the built-in `container-job` and
//! `python-script` nodes, on the real Docker engine: the seed's training pipeline, failures,
//! retries, timeouts, cancels, grants, projects (at the run's pinned commit), input files, GPUs
//! and the queue for room.

use crate::on_both_backends;
use crate::support::docker::{self, docker};
use crate::support::{Backend, Site, TestServer, call, node, send, wait};
use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;

on_both_backends!(
    the_training_pipeline_runs_with_live_logs,
    a_failing_job_fails_its_node_and_a_retry_gets_a_new_container,
    timeouts_and_cancels_remove_the_container,
    jobs_need_a_grant_the_owners_project_and_gpus_that_exist,
    a_job_sees_the_commit_pinned_at_the_runs_start_and_its_input_files,
    a_host_killed_mid_job_adopts_it_after_a_restart,
    with_room_for_one_job_three_runs_queue_and_finish_in_order,
);

/// Grants `jobs` to `plugin` for everyone, asserting it worked.
async fn grant_jobs(server: &TestServer, plugin: &str) {
    let (status, body) = send(
        server
            .admin(Method::PUT, &format!("/api/v1/plugins/{plugin}/grants"))
            .json(&json!({"everyone": true, "jobs": true})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["grants"][0]["jobs"], true, "{body}");
}

/// The job containers of this server still on the engine.
fn job_containers(server: &TestServer) -> Vec<String> {
    let install = format!(
        "label=weft.install={}",
        server.state.containers.install_id()
    );
    let (ok, out, err) = docker(&[
        "ps",
        "-aq",
        "--filter",
        &install,
        "--filter",
        "label=weft.job",
    ]);
    assert!(ok, "{err}");
    out.split_whitespace().map(String::from).collect()
}

/// Waits until no job container of this server is left on the engine.
async fn no_job_containers(server: &TestServer) {
    wait::until("no job container left", Duration::from_secs(30), || async {
        let left = job_containers(server);
        if left.is_empty() { Ok(()) } else { Err(left) }
    })
    .await;
}

/// The events of run `run` from its WebSocket, up to the run's end.
async fn run_events(server: &TestServer, token: &str, run: &str) -> Vec<Value> {
    events_until(server, token, run, |e| e["type"] == "run_finished").await
}

/// The events of run `run` from its WebSocket (from the first), up to the first that `last`
/// accepts, or all of them when the run ends first.
async fn events_until(
    server: &TestServer,
    token: &str,
    run: &str,
    last: impl Fn(&Value) -> bool,
) -> Vec<Value> {
    let request = server.ws_request(token, &format!("/api/v1/runs/{run}/events"));
    let (mut stream, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("run stream");
    let mut events = Vec::new();
    while let Some(Ok(message)) = stream.next().await {
        let Ok(text) = message.to_text() else {
            continue;
        };
        if text.is_empty() {
            continue;
        }
        let event: Value = serde_json::from_str(text).expect("event JSON");
        let done = last(&event) || event["type"] == "run_finished";
        events.push(event);
        if done {
            break;
        }
    }
    events
}

/// A one-node workflow of `container-job` with `config` (and node `extra` fields).
fn one_job(config: Value, extra: Value) -> Value {
    let mut node = json!({"id": "job", "type": "container-job", "config": config});
    node.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    json!({"name": "one job", "nodes": [node], "edges": []})
}

/// The seed's `data_prep -> train` (examples/workflows/training-pipeline.json) runs to success
/// in the local Python image; train's metrics are its output, and its log lines reach the run's
/// WebSocket while it runs, before it succeeds.
async fn the_training_pipeline_runs_with_live_logs(backend: Backend) {
    let (server, _cleanup) = docker::server(backend, |_| {}).await;
    grant_jobs(&server, "python-script").await;
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/workflows/training-pipeline.json"
    );
    let definition: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let token = server.admin_token.clone();
    let workflow = server.create_workflow(&token, definition).await;
    let run = server
        .execute(&token, workflow["id"].as_str().unwrap(), json!({}))
        .await;
    let events = run_events(&server, &token, &run).await;
    let finished = server.wait_run(&token, &run).await;
    assert_eq!(finished["status"], "succeeded", "{finished}");
    let metrics = &node(&finished, "train")["outputs"]["out"];
    assert_eq!(metrics["epochs"], 100, "{metrics}");
    assert!(metrics["test_mse"].as_f64().unwrap() < 0.1, "{metrics}");
    assert!(
        (metrics["weight"].as_f64().unwrap() - 3.0).abs() < 0.3,
        "{metrics}"
    );
    assert_eq!(node(&finished, "data_prep")["outputs"]["out"]["rows"], 64);
    let at = |pred: &dyn Fn(&Value) -> bool| events.iter().position(pred);
    let log = at(&|e| {
        e["type"] == "node_log"
            && e["node"] == "train"
            && e["message"]
                .as_str()
                .unwrap_or_default()
                .starts_with("epoch 20:")
    });
    let done = at(&|e| e["type"] == "node_succeeded" && e["node"] == "train");
    assert!(
        log.is_some() && log < done,
        "live log before the end: {events:?}"
    );
    no_job_containers(&server).await;
}

/// A job exiting with 3 fails its node with the code and its last lines; the retry ran in a
/// container of its own (each attempt prints its host name, the container's id).
async fn a_failing_job_fails_its_node_and_a_retry_gets_a_new_container(backend: Backend) {
    let (server, _cleanup) = docker::server(backend, |_| {}).await;
    grant_jobs(&server, "container-job").await;
    let token = server.admin_token.clone();
    let config = json!({"image": "weft-test/busybox:1",
        "command": ["sh", "-c", "echo host $(hostname); echo boom >&2; exit 3"]});
    let retry = json!({"retry": {"max_attempts": 2, "backoff": "50ms"}});
    let run = server.run_workflow(&token, one_job(config, retry)).await;
    assert_eq!(run["status"], "failed", "{run}");
    let job = node(&run, "job");
    assert_eq!(job["attempts"], 2, "{job}");
    let message = job["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("exited with code 3") && message.contains("boom"),
        "{message}"
    );
    let (status, attempts) = send(server.admin(
        Method::GET,
        &format!(
            "/api/v1/runs/{}/nodes/job/attempts",
            run["id"].as_str().unwrap()
        ),
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{attempts}");
    let host = |i: usize| {
        let text = attempts[i]["logs"].to_string();
        let at = text.find("host ").expect("host line") + 5;
        text[at..at + 12].to_string()
    };
    assert_ne!(
        host(0),
        host(1),
        "each attempt has its own container: {attempts}"
    );
    no_job_containers(&server).await;
}

/// A job past its node's timeout is stopped and removed and the node times out; cancelling a
/// run mid-job removes its container.
async fn timeouts_and_cancels_remove_the_container(backend: Backend) {
    let (server, _cleanup) = docker::server(backend, |_| {}).await;
    grant_jobs(&server, "container-job").await;
    let token = server.admin_token.clone();
    let sleeper = json!({"image": "weft-test/busybox:1", "command": ["sleep", "600"]});
    let run = server
        .run_workflow(&token, one_job(sleeper.clone(), json!({"timeout": "3s"})))
        .await;
    let job = node(&run, "job");
    assert_eq!(job["status"], "failed", "{run}");
    assert_eq!(job["error"]["kind"], "timeout", "{job}");
    no_job_containers(&server).await;

    let workflow = server
        .create_workflow(&token, one_job(sleeper, json!({})))
        .await;
    let run = server
        .execute(&token, workflow["id"].as_str().unwrap(), json!({}))
        .await;
    wait::until(
        "the job's container runs",
        Duration::from_secs(30),
        || async {
            let running = job_containers(&server);
            if running.is_empty() {
                Err(running)
            } else {
                Ok(())
            }
        },
    )
    .await;
    let (status, body) =
        send(server.admin(Method::POST, &format!("/api/v1/runs/{run}/cancel"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(server.wait_run(&token, &run).await["status"], "cancelled");
    no_job_containers(&server).await;
}

/// Without the grant the node is refused; a user's job may copy in their own project but not
/// name another user's; a GPU beyond `[containers] gpus` is refused with 10101.
async fn jobs_need_a_grant_the_owners_project_and_gpus_that_exist(backend: Backend) {
    let (server, _cleanup) = docker::server(backend, |_| {}).await;
    let (_, alice) = server.user("alice").await;
    let (_, bob) = server.user("bob").await;
    let project = server.project(&alice, "models").await;
    server
        .put_file(&alice, &project, "hello.txt", "hello from the project")
        .await;
    let cat = |project: &str| json!({"image": "weft-test/busybox:1", "command": ["cat", "hello.txt"], "project": project});
    let run = server
        .run_workflow(&alice, one_job(cat("models"), json!({})))
        .await;
    let message = node(&run, "job")["error"]["message"].to_string();
    assert!(
        message.contains("denied: jobs are not granted"),
        "{message}"
    );

    grant_jobs(&server, "container-job").await;
    let run = server
        .run_workflow(&alice, one_job(cat("models"), json!({})))
        .await;
    let message = node(&run, "job")["error"]["message"].to_string();
    assert!(message.contains("has no commit yet"), "{message}");
    server.commit(&alice, &project, "hello").await;
    let run = server
        .run_workflow(&alice, one_job(cat("models"), json!({})))
        .await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(
        node(&run, "job")["outputs"]["out"]["logs"],
        "hello from the project"
    );
    let run = server
        .run_workflow(&bob, one_job(cat(&project), json!({})))
        .await;
    let message = node(&run, "job")["error"]["message"].to_string();
    assert!(
        message.contains("10205") && message.contains("not found"),
        "{message}"
    );
    assert!(!message.contains("hello from"), "{message}");

    let gpu =
        json!({"image": "weft-test/busybox:1", "command": ["true"], "resources": {"gpu": "1"}});
    let run = server.run_workflow(&alice, one_job(gpu, json!({}))).await;
    let message = node(&run, "job")["error"]["message"].to_string();
    assert!(
        message.contains("10101") && message.contains("GPU"),
        "{message}"
    );
    no_job_containers(&server).await;
}

/// A job gets its project's files as of the commit its run pinned at its start: a commit made
/// while the run waits (here on a first job held until the test lets it go) does not reach it.
/// Its input files arrive before it starts: an artifact of the owner by its key and a part of
/// the previous node's output.
async fn a_job_sees_the_commit_pinned_at_the_runs_start_and_its_input_files(backend: Backend) {
    let (server, _cleanup) = docker::server(backend, |_| {}).await;
    let (status, _) = server
        .upload(crate::support::fixtures::fixture("artifact-store"))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    for plugin in ["container-job", "artifact-store"] {
        let (status, body) = send(
            server
                .admin(Method::PUT, &format!("/api/v1/plugins/{plugin}/grants"))
                .json(&json!({"everyone": true, "jobs": true, "artifacts": true})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (_, alice) = server.user("alice").await;
    let project = server.project(&alice, "code").await;
    server.put_file(&alice, &project, "hello.txt", "v1").await;
    let pinned = server.commit(&alice, &project, "v1").await;

    // SHA-256 of "hello artifacts", the artifact node `store` writes before `job` runs.
    let key = "fe6ad633adbe0867d26cd0620978e74f605dc53d853cee4ff111b11a54ee4954";
    let busybox = "weft-test/busybox:1";
    let workflow = json!({"name": "pinned", "nodes": [
        {"id": "gate", "type": "container-job", "config": {"image": busybox,
            "command": ["sh", "-c", "while [ ! -e /go ]; do sleep 0.1; done"]}},
        {"id": "store", "type": "artifact-store", "config": {"text": "hello artifacts"}},
        {"id": "job", "type": "container-job", "config": {"image": busybox, "project": "code",
            "command": ["sh", "-c", "cat hello.txt; echo; cat data/art.txt; echo; cat key.txt"],
            "inputs": {"data/art.txt": {"artifact": key}, "key.txt": {"input": "/key"}}}}
    ], "edges": [
        {"source": "gate", "target": "job"},
        {"source": "store", "target": "job", "target_port": "in"}
    ]});
    let workflow = server.create_workflow(&alice, workflow).await;
    let run = server
        .execute(&alice, workflow["id"].as_str().unwrap(), json!({}))
        .await;
    let gate = wait::until("the gate job runs", Duration::from_secs(60), || async {
        match job_containers(&server).as_slice() {
            [one] => Ok(one.clone()),
            other => Err(other.to_vec()),
        }
    })
    .await;
    server.put_file(&alice, &project, "hello.txt", "v2").await;
    let later = server.commit(&alice, &project, "v2").await;
    assert_ne!(later["commit_id"], pinned["commit_id"], "{later}");
    let (ok, _, err) = docker(&["exec", "-u", "0", &gate, "touch", "/go"]);
    assert!(ok, "{err}");

    let run = server.wait_run(&alice, &run).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(
        node(&run, "job")["outputs"]["out"]["logs"],
        format!("v1\nhello artifacts\n{key}"),
        "{run}"
    );

    // A path that leaves the working folder is refused before any container is made.
    let escape = json!({"image": busybox, "command": ["true"],
        "inputs": {"../x": {"artifact": key}}});
    let run = server
        .run_workflow(&alice, one_job(escape, json!({})))
        .await;
    let message = node(&run, "job")["error"]["message"].to_string();
    assert!(
        message.contains("inputs") && message.contains("../x"),
        "{message}"
    );
    no_job_containers(&server).await;
}

/// With room for one job (each asks for every core; no overcommit), three runs' jobs run one
/// after the other in the order they came, the waiting ones told their place in the queue.
async fn with_room_for_one_job_three_runs_queue_and_finish_in_order(backend: Backend) {
    let (server, _cleanup) = docker::server(backend, |config| {
        config.containers.cpu_overcommit = 1.0;
        config.containers.per_user.max_cpu = "1024".into();
    })
    .await;
    grant_jobs(&server, "container-job").await;
    let token = server.admin_token.clone();
    let (_, resources) = send(server.admin(Method::GET, "/api/v1/resources")).await;
    let cores = resources["resources"]["cpu"]["capacity_quantity"].clone();
    // The first job holds the room until the other two are queued behind it, in order.
    let job = |script: &str| {
        let config = json!({"image": "weft-test/busybox:1", "command": ["sh", "-c", script],
                            "resources": {"cpu": cores, "memory": "64Mi"}});
        one_job(config, json!({}))
    };
    // The holder runs until the test opens its gate: a fixed sleep raced the queueing of the
    // other two on a loaded machine.
    let holder = server
        .create_workflow(
            &token,
            job("echo holding; while [ ! -e /go ]; do sleep 0.1; done"),
        )
        .await;
    let short = server.create_workflow(&token, job("sleep 1")).await;
    let first = server
        .execute(&token, holder["id"].as_str().unwrap(), json!({}))
        .await;
    let is_log = |text: &'static str| move |e: &Value| e["message"] == text;
    let seen = events_until(&server, &token, &first, is_log("holding")).await;
    assert_eq!(seen.last().unwrap()["message"], "holding", "{seen:?}");
    let mut runs = vec![first];
    for position in [0, 1] {
        let run = server
            .execute(&token, short["id"].as_str().unwrap(), json!({}))
            .await;
        let queued = |e: &Value| e["type"] == "node_queued" && e["position"] == position;
        let seen = events_until(&server, &token, &run, queued).await;
        assert!(
            queued(seen.last().unwrap()),
            "queued at {position}: {seen:?}"
        );
        // A watcher coming later learns the place right after the snapshot.
        let late = events_until(&server, &token, &run, queued).await;
        assert_eq!(late.len(), 2, "the snapshot, then the place: {late:?}");
        runs.push(run);
    }
    let [holding] =
        <[String; 1]>::try_from(job_containers(&server)).expect("the holder's container alone");
    let (ok, _, err) = docker(&["exec", "-u", "0", &holding, "touch", "/go"]);
    assert!(ok, "{err}");
    let mut ends = Vec::new();
    for (i, run) in runs.iter().enumerate() {
        let run = server.wait_run(&token, run).await;
        assert_eq!(run["status"], "succeeded", "{run}");
        let job = node(&run, "job");
        ends.push(crate::support::millis(&job["finished_at"]));
        let logs = job["logs"].to_string();
        assert_eq!(
            i > 0,
            logs.contains("the job got room on the host"),
            "{logs}"
        );
    }
    assert!(ends[0] < ends[1] && ends[1] < ends[2], "in order: {ends:?}");
    no_job_containers(&server).await;
}

/// A real `weft` is killed (SIGKILL) while its job runs; the restarted one adopts the job's
/// container (same attempt, the job's whole output), the run succeeds and no container is left.
async fn a_host_killed_mid_job_adopts_it_after_a_restart(backend: Backend) {
    docker::require();
    let site = Site::new(backend).await;
    let env = [("WEFT_CONTAINERS__ALLOWED_IMAGES", r#"["weft-test/*"]"#)];
    let mut first = site.serve(&env);
    let base = first.base_url();
    let admin = |base: &str, method, path: &str, body| {
        call(&site.client, base, &site.token, method, path, body)
    };
    let grant = json!({"everyone": true, "jobs": true});
    let (status, body) = admin(
        &base,
        Method::PUT,
        "/api/v1/plugins/container-job/grants",
        Some(grant),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let script = "echo started; sleep 4; echo finished";
    let config = json!({"image": "weft-test/busybox:1", "command": ["sh", "-c", script]});
    let definition = one_job(config, json!({"timeout": "60s"}));
    let (status, workflow) =
        admin(&base, Method::POST, "/api/v1/workflows", Some(definition)).await;
    assert_eq!(status, StatusCode::CREATED, "{workflow}");
    let (run, _) =
        crate::support::execute_until_running(&site.client, &base, &site.token, &workflow, "job")
            .await;
    let engine_id = wait::until(
        "the job's container runs",
        Duration::from_secs(30),
        || async {
            let (_, list) = admin(&base, Method::GET, "/api/v1/containers", None).await;
            let running = list
                .as_array()
                .and_then(|l| l.iter().find(|c| c["status"] == "running"));
            running
                .map(|c| c["engine_id"].as_str().unwrap().to_string())
                .ok_or(list)
        },
    )
    .await;
    let install = docker::inspect(&engine_id).unwrap()["Config"]["Labels"]["weft.install"]
        .as_str()
        .unwrap()
        .to_string();
    let _cleanup = docker::Cleanup(install);
    first.kill();

    let second = site.serve(&env);
    let run =
        crate::support::wait_for_run(&site.client, &second.base_url(), &site.token, &run).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let job = node(&run, "job");
    assert_eq!(
        job["attempts"], 1,
        "the same attempt adopted its job: {job}"
    );
    assert_eq!(job["outputs"]["out"]["logs"], "started\nfinished", "{job}");
    wait::until(
        "the adopted container is removed",
        Duration::from_secs(30),
        || async { docker::inspect(&engine_id).map_or(Ok(()), |_| Err("still there")) },
    )
    .await;
}
