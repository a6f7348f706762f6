//! Containers on the real Docker engine: the API, hardening proven by inspecting real
//! containers, admission and per-user limits, faults, the driver itself, and reconciliation
//! after a SIGKILL of a real `weft` process.

use crate::on_both_backends;
use crate::support::docker::{self, Cleanup, inspect};
use crate::support::{Backend, Site, TestServer, assert_error, send, wait};
use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const IMAGE: &str = "weft-test/busybox:1";

on_both_backends!(
    concurrent_creates_are_admitted_within_the_share,
    a_stopped_container_releases_its_share,
    the_container_count_and_restarts_are_capped,
    a_create_the_engine_refuses_is_10103_and_leaves_nothing,
    an_engine_that_never_answers_is_10104_and_leaves_nothing,
    containers_changed_while_weft_was_down_show_stopped,
    a_restarted_weft_adopts_its_running_containers_and_removes_orphans
);

async fn create(server: &TestServer, token: &str, body: Value) -> (StatusCode, Value) {
    send(
        server
            .with_token(token, Method::POST, "/api/v1/containers")
            .json(&body),
    )
    .await
}

fn sleeper() -> Value {
    json!({ "image": IMAGE, "command": ["sleep", "100000"], "resources": { "cpu": "250m", "memory": "64Mi" } })
}

/// Polls `GET /containers/{id}` until `done` holds (10 s at most).
#[track_caller]
fn wait_until<'a>(
    server: &'a TestServer,
    token: &'a str,
    id: &'a str,
    done: fn(&Value) -> bool,
) -> impl Future<Output = Value> + 'a {
    wait::until(
        "the container's state",
        Duration::from_secs(10),
        move || async move {
            let (_, c) =
                send(server.with_token(token, Method::GET, &format!("/api/v1/containers/{id}")))
                    .await;
            if done(&c) { Ok(c) } else { Err(c) }
        },
    )
}

async fn next_json<S>(socket: &mut S) -> Value
where
    S: futures::Stream<
            Item = Result<
                tokio_tungstenite::tungstenite::Message,
                tokio_tungstenite::tungstenite::Error,
            >,
        > + Unpin,
{
    loop {
        let message = tokio::time::timeout(Duration::from_secs(15), socket.next())
            .await
            .expect("a message within 15 s")
            .expect("stream open")
            .expect("message");
        if let Ok(text) = message.to_text()
            && !text.is_empty()
        {
            return serde_json::from_str(text).expect("JSON message");
        }
    }
}

/// A Docker test server (with `pids_limit = 64`), and user bob (id, token).
async fn bobs_server() -> (TestServer, Cleanup, String, String) {
    let (server, cleanup) = docker::server(Backend::Sqlite, |c| c.containers.pids_limit = 64).await;
    let (bob_id, bob) = server.user("bob").await;
    (server, cleanup, bob_id, bob)
}

/// Bob's sleeper, created and running; returns (its id, its engine id).
async fn running_sleeper(server: &TestServer, bob: &str) -> (String, String) {
    let (status, c) = create(server, bob, sleeper()).await;
    assert_eq!(status, StatusCode::CREATED, "{c}");
    assert_eq!(c["status"], "running", "{c}");
    (
        c["id"].as_str().unwrap().to_string(),
        c["engine_id"].as_str().unwrap().to_string(),
    )
}

/// A container runs with its environment and limits, hardened as the engine and the container
/// itself show: no privileges, capabilities dropped, nobody, the pids limit biting, no host
/// path; its stats come through the API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_runs_hardened_within_its_limits() {
    let (server, _cleanup, bob_id, bob) = bobs_server().await;
    let (mut status_ws, _) =
        tokio_tungstenite::connect_async(server.ws_request(&bob, "/api/v1/containers/status"))
            .await
            .expect("status stream");
    // Create and start, with environment and limits.
    let mut body = sleeper();
    body["environment"] = json!({ "GREETING": "hello" });
    let (status, c) = create(&server, &bob, body).await;
    assert_eq!(status, StatusCode::CREATED, "{c}");
    assert_eq!(c["status"], "running");
    assert_eq!(c["owner_id"], bob_id.as_str());
    assert_eq!(
        c["resources"],
        json!({ "cpu": "250m", "memory": "64Mi", "gpu": "0" })
    );
    let id = c["id"].as_str().unwrap().to_string();
    let engine_id = c["engine_id"].as_str().unwrap().to_string();
    let event = next_json(&mut status_ws).await;
    assert_eq!(event["container_id"], id.as_str());

    // The hardening, read back from the engine.
    let inspected = inspect(&engine_id).expect("the container exists on the engine");
    let host = &inspected["HostConfig"];
    assert_eq!(host["Privileged"], false);
    assert_eq!(host["CapDrop"], json!(["ALL"]));
    assert_eq!(
        host["CapAdd"],
        json!(["CHOWN", "DAC_OVERRIDE", "FOWNER", "SETGID", "SETUID"])
    );
    assert!(
        host["SecurityOpt"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o == "no-new-privileges"),
        "{host}"
    );
    assert_eq!(host["PidsLimit"], 64);
    assert_eq!(host["Memory"], 64 << 20);
    assert_eq!(host["MemorySwap"], 64 << 20);
    assert_eq!(host["NanoCpus"], 250_000_000);
    assert_eq!(host["Init"], true);
    assert!(
        host["Binds"].as_array().is_none_or(|b| b.is_empty()),
        "{host}"
    );
    assert!(
        inspected["Mounts"].as_array().unwrap().is_empty(),
        "no host path is mounted"
    );
    assert!(!inspected.to_string().contains("docker.sock"));
    let labels = &inspected["Config"]["Labels"];
    assert_eq!(labels["weft.container"], id.as_str());
    assert_eq!(labels["weft.owner"], bob_id.as_str());
    assert_eq!(labels["weft.install"], server.state.containers.install_id());
    // ... and from inside: nobody (the image's user is root), no new privileges, at most the
    // five capabilities (none in effect for a user who is not root), the pids limit bites.
    let (_, proc_status, _) = docker::docker(&["exec", &engine_id, "cat", "/proc/self/status"]);
    assert!(proc_status.contains("NoNewPrivs:\t1"), "{proc_status}");
    assert!(
        proc_status.contains("Uid:\t65534\t65534\t65534\t65534"),
        "{proc_status}"
    );
    assert!(
        proc_status.contains("CapBnd:\t00000000000000cb"),
        "{proc_status}"
    );
    assert!(
        proc_status.contains("CapEff:\t0000000000000000"),
        "{proc_status}"
    );
    let (_, env, _) = docker::docker(&["exec", &engine_id, "env"]);
    assert!(env.contains("GREETING=hello"));
    let (_, _, forks) = docker::docker(&[
        "exec",
        &engine_id,
        "sh",
        "-c",
        "i=0; while [ $i -lt 100 ]; do sleep 30 & i=$((i+1)); done",
    ]);
    assert!(
        forks.contains("can't fork") || forks.contains("Resource temporarily unavailable"),
        "{forks}"
    );

    // Stats through the API.
    let (status, stats) =
        send(server.with_token(&bob, Method::GET, &format!("/api/v1/containers/{id}/stats"))).await;
    assert_eq!(status, StatusCode::OK, "{stats}");
    assert_eq!(stats["memory_limit_bytes"], 64 << 20);
    assert!(stats["pids"].as_u64().unwrap() >= 1);
}

/// Nobody but its owner sees or touches a container (404, as for none); an admin sees all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containers_are_private_to_their_owner() {
    let (server, _cleanup, _, bob) = bobs_server().await;
    let admin = server.admin_token.clone();
    let (_, eve) = server.user("eve").await;
    let (id, _) = running_sleeper(&server, &bob).await;
    // Nobody else sees it; an admin does.
    for (method, path) in [
        (Method::GET, format!("/api/v1/containers/{id}")),
        (Method::POST, format!("/api/v1/containers/{id}/stop")),
        (Method::DELETE, format!("/api/v1/containers/{id}")),
    ] {
        let (status, body) = send(server.with_token(&eve, method, &path)).await;
        assert_error(status, &body, 404, "10201");
    }
    let (_, listed) = send(server.with_token(&eve, Method::GET, "/api/v1/containers")).await;
    assert_eq!(listed, json!([]));
    let (_, listed) = send(server.with_token(&admin, Method::GET, "/api/v1/containers")).await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
}

/// Stop and start again (run time adds up), then delete (gone from the engine and the store);
/// the status stream follows each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_start_and_delete_are_streamed() {
    let (server, _cleanup, _, bob) = bobs_server().await;
    let (mut status_ws, _) =
        tokio_tungstenite::connect_async(server.ws_request(&bob, "/api/v1/containers/status"))
            .await
            .expect("status stream");
    let (id, engine_id) = running_sleeper(&server, &bob).await;
    // Stop, start again (time adds up), and the status stream follows.
    let (status, stopped) =
        send(server.with_token(&bob, Method::POST, &format!("/api/v1/containers/{id}/stop"))).await;
    assert_eq!(status, StatusCode::OK, "{stopped}");
    assert_eq!(stopped["status"], "stopped");
    assert!(stopped["run_seconds"].as_f64().unwrap() > 0.0);
    assert_eq!(inspect(&engine_id).unwrap()["State"]["Running"], false);
    loop {
        let event = next_json(&mut status_ws).await;
        if event["status"] == "stopped" {
            assert_eq!(event["container_id"], id.as_str());
            break;
        }
    }
    let first_run = stopped["run_seconds"].as_f64().unwrap();
    let (status, started) = send(server.with_token(
        &bob,
        Method::POST,
        &format!("/api/v1/containers/{id}/start"),
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{started}");
    assert_eq!(started["status"], "running");
    assert_eq!(inspect(&engine_id).unwrap()["State"]["Running"], true);
    // Running again, its time grows on from the first run's.
    let again = wait::until("run time to grow", Duration::from_secs(10), || async {
        let (_, c) =
            send(server.with_token(&bob, Method::GET, &format!("/api/v1/containers/{id}"))).await;
        if c["run_seconds"].as_f64().unwrap() > first_run {
            Ok(c)
        } else {
            Err(c)
        }
    })
    .await;
    assert_eq!(again["status"], "running", "{again}");

    // Delete: gone from the engine and the store.
    let response = server
        .with_token(&bob, Method::DELETE, &format!("/api/v1/containers/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert!(inspect(&engine_id).is_none());
    let (status, body) =
        send(server.with_token(&bob, Method::GET, &format!("/api/v1/containers/{id}"))).await;
    assert_error(status, &body, 404, "10201");
    loop {
        let event = next_json(&mut status_ws).await;
        if event["status"] == "removed" {
            break;
        }
    }
}

/// Logs stream live, line by line with their stream, and end when the container does; one
/// that exits 0 is stopped, not failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_stream_live_until_the_container_ends() {
    let (server, _cleanup, _, bob) = bobs_server().await;
    // Logs stream live, line by line, and the stream ends when the container does.
    let (status, talker) = create(
        &server,
        &bob,
        json!({ "image": IMAGE, "command": ["sh", "-c", "for i in 1 2 3; do echo line$i; sleep 0.4; done; echo oops >&2"] }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{talker}");
    let talker_id = talker["id"].as_str().unwrap();
    let (mut logs, _) = tokio_tungstenite::connect_async(
        server.ws_request(&bob, &format!("/api/v1/containers/{talker_id}/logs")),
    )
    .await
    .expect("logs stream");
    let mut seen = Vec::new();
    while let Some(Ok(message)) = logs.next().await {
        if let Ok(text) = message.to_text()
            && !text.is_empty()
        {
            let chunk: Value = serde_json::from_str(text).unwrap();
            seen.push((
                chunk["stream"].as_str().unwrap().to_string(),
                chunk["text"].as_str().unwrap().trim().to_string(),
            ));
        }
    }
    let want: Vec<(String, String)> = [
        ("stdout", "line1"),
        ("stdout", "line2"),
        ("stdout", "line3"),
        ("stderr", "oops"),
    ]
    .map(|(s, t)| (s.to_string(), t.to_string()))
    .to_vec();
    assert_eq!(seen, want);
    // It exited 0 on its own: stopped, not failed.
    let ended = wait_until(&server, &bob, talker_id, |c| c["status"] != "running").await;
    assert_eq!(ended["status"], "stopped", "{ended}");
    assert_eq!(ended["exit_code"], 0);
}

/// A container that ignores SIGTERM is killed after the stop's timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_ignoring_sigterm_is_killed_after_the_timeout() {
    let (server, _cleanup, _, bob) = bobs_server().await;
    // A container that ignores SIGTERM is killed after the timeout.
    let (status, stubborn) = create(
        &server,
        &bob,
        json!({ "image": IMAGE, "command": ["sh", "-c", "trap '' TERM; while true; do sleep 1; done"] }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{stubborn}");
    let stubborn_id = stubborn["id"].as_str().unwrap();
    let began = Instant::now();
    let (status, killed) = send(server.with_token(
        &bob,
        Method::POST,
        &format!("/api/v1/containers/{stubborn_id}/stop?timeout=1"),
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{killed}");
    assert!(began.elapsed() >= Duration::from_secs(1));
    assert_eq!(killed["status"], "stopped");
    assert_eq!(killed["exit_code"], 137);
    assert!(
        killed["error"].as_str().unwrap().contains("killed"),
        "{killed}"
    );
}

/// Created without starting, started later, killed behind Weft's back: the engine's events
/// bring the store in line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_killed_behind_weft_shows_failed() {
    let (server, _cleanup, _, bob) = bobs_server().await;
    // Created without starting; started later; killed behind Weft's back: the engine's events
    let mut body = sleeper();
    body["start"] = json!(false);
    let (status, idle) = create(&server, &bob, body).await;
    assert_eq!(status, StatusCode::CREATED, "{idle}");
    assert_eq!(idle["status"], "created");
    let idle_id = idle["id"].as_str().unwrap();
    let idle_engine = idle["engine_id"].as_str().unwrap();
    assert_eq!(inspect(idle_engine).unwrap()["State"]["Status"], "created");
    let (status, idle) = send(server.with_token(
        &bob,
        Method::POST,
        &format!("/api/v1/containers/{idle_id}/start"),
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{idle}");
    assert_eq!(idle["status"], "running");
    assert!(docker::docker(&["kill", idle_engine]).0);
    let killed_outside = wait_until(&server, &bob, idle_id, |c| c["status"] != "running").await;
    assert_eq!(killed_outside["status"], "failed", "{killed_outside}");
    assert_eq!(killed_outside["exit_code"], 137);
    assert_eq!(killed_outside["error"], "exited with code 137");
}

/// A container's health comes from its image's health check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_comes_from_the_images_check() {
    let (server, _cleanup, _, bob) = bobs_server().await;
    // Health from the image's health check.
    let (status, healthy) = create(&server, &bob, json!({ "image": "weft-test/healthy:1" })).await;
    assert_eq!(status, StatusCode::CREATED, "{healthy}");
    let healthy_id = healthy["id"].as_str().unwrap();
    let healthy = wait_until(&server, &bob, healthy_id, |c| c["health"] == "healthy").await;
    assert_eq!(healthy["status"], "running");
}

/// A Docker test server where CPU is not overcommitted and the per-user caps are out of the
/// way: the host's own capacity is the limit. Returns it with the admin's token.
async fn host_bound_server() -> (TestServer, Cleanup, String) {
    let (server, cleanup) = docker::server(Backend::Sqlite, |c| {
        c.containers.cpu_overcommit = 1.0;
        c.containers.per_user.max_cpu = "1000".into();
        c.containers.per_user.max_memory = "1000Ti".into();
    })
    .await;
    let token = server.admin_token.clone();
    (server, cleanup, token)
}

/// The containers the admin sees.
async fn listed(server: &TestServer) -> Vec<Value> {
    let (status, listed) = send(server.admin(Method::GET, "/api/v1/containers")).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    listed.as_array().unwrap().clone()
}

/// More than the host has is refused (10101) with what is free.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_than_the_host_has_is_refused() {
    let (server, _cleanup, token) = host_bound_server().await;
    let (status, report) = send(server.admin(Method::GET, "/api/v1/resources")).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let cores = report["resources"]["cpu"]["capacity"].as_u64().unwrap() / 1000;
    assert_eq!(
        cores * 1000,
        report["resources"]["cpu"]["free"].as_u64().unwrap()
    );
    let (status, body) = create(
        &server,
        &token,
        json!({ "image": IMAGE, "resources": { "cpu": (cores + 1).to_string() } }),
    )
    .await;
    assert_error(status, &body, 503, "10101");
    assert_eq!(
        body["details"],
        json!({ "resource_type": "cpu", "required": (cores + 1).to_string(), "available": cores.to_string() })
    );
    let (status, body) = send(
        server
            .admin(Method::POST, "/api/v1/resources/allocate")
            .json(&json!({ "resources": { "memory": "512Ti" } })),
    )
    .await;
    assert_error(status, &body, 503, "10101");
    assert_eq!(body["details"]["resource_type"], "memory");
}

/// A container that exits at once is a clear error with its output (10204), kept as failed;
/// a program that is not there cannot start at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_that_cannot_run_is_a_clear_error() {
    let (server, _cleanup, token) = host_bound_server().await;
    // A container that exits at once: a clear error with its output; kept as failed.
    let (status, body) = create(
        &server,
        &token,
        json!({ "image": IMAGE, "command": ["sh", "-c", "echo boom >&2; exit 3"] }),
    )
    .await;
    assert_error(status, &body, 422, "10204");
    assert_eq!(body["details"]["exit_code"], 3);
    assert!(
        body["details"]["logs"].as_str().unwrap().contains("boom"),
        "{body}"
    );
    let failed_id = body["details"]["container_id"].as_str().unwrap();
    let (status, failed) =
        send(server.admin(Method::GET, &format!("/api/v1/containers/{failed_id}"))).await;
    assert_eq!(status, StatusCode::OK, "{failed}");
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["exit_code"], 3);
    assert_eq!(failed["error"], "exited with code 3");
    // A program that is not there cannot start at all.
    let (status, body) = create(
        &server,
        &token,
        json!({ "image": IMAGE, "command": ["/no/such/program"] }),
    )
    .await;
    assert_error(status, &body, 422, "10204");
    assert_eq!(
        listed(&server).await.len(),
        2,
        "both failed starts are kept"
    );
}

/// A missing image is named, with how to get it (10203); nothing is pulled or stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_image_is_named() {
    let (server, _cleanup, token) = host_bound_server().await;
    // A missing image is named, with how to get it; nothing is pulled or stored.
    let (status, body) = create(&server, &token, json!({ "image": "weft-test/missing:1" })).await;
    assert_error(status, &body, 422, "10203");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("weft-test/missing:1")
    );
    assert!(body["hint"].as_str().unwrap().contains("docker load"));
    assert_eq!(listed(&server).await, Vec::<Value>::new(), "nothing stored");
}

/// Quantities are strict; unknown fields and bad names are refused; nothing is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_requests_are_strict() {
    let (server, _cleanup, token) = host_bound_server().await;
    // Quantities are strict; unknown fields and bad names are refused.
    for (resources, field) in [
        (json!({ "memory": "4gi" }), "resources.memory"),
        (json!({ "memory": "4GB" }), "resources.memory"),
        (json!({ "cpu": "-1" }), "resources.cpu"),
        (json!({ "cpu": "0" }), "resources.cpu"),
        (json!({ "gpu": "0.5" }), "resources.gpu"),
    ] {
        let (status, body) = create(
            &server,
            &token,
            json!({ "image": IMAGE, "resources": resources }),
        )
        .await;
        assert_error(status, &body, 422, "90402");
        assert_eq!(body["details"]["field"], field, "{body}");
    }
    let (status, body) = create(
        &server,
        &token,
        json!({ "image": IMAGE, "privileged": true }),
    )
    .await;
    assert_error(status, &body, 422, "90402");
    let (status, body) = create(
        &server,
        &token,
        json!({ "image": IMAGE, "environment": { "1BAD": "x" } }),
    )
    .await;
    assert_error(status, &body, 422, "90402");
    assert_eq!(listed(&server).await, Vec::<Value>::new(), "nothing stored");
}

/// Without an engine, containers say so clearly (10102); the rest of Weft works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_engine_containers_say_so() {
    // No engine: containers say so clearly; the rest of Weft works.
    // Nothing can be created there, so nothing needs cleaning up.
    let lonely = TestServer::start_with(Backend::Sqlite, |c| {
        c.containers.docker_host = Some("unix:///nonexistent/weft-test-docker.sock".into());
    })
    .await;
    let (status, body) = create(&lonely, &lonely.admin_token, json!({ "image": IMAGE })).await;
    assert_error(status, &body, 503, "10102");
    assert!(
        body["hint"].as_str().unwrap().contains("docker.io"),
        "{body}"
    );
    let (status, report) = send(lonely.admin(Method::GET, "/api/v1/resources")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(report["engine"]["available"], false);
    assert!(
        report["engine"]["error"]
            .as_str()
            .unwrap()
            .contains("not reachable")
    );
    let (status, _) = send(lonely.admin(Method::GET, "/api/v1/plugins")).await;
    assert_eq!(status, StatusCode::OK);
}

/// An image of one file with no command (no CMD, no ENTRYPOINT), tagged
/// `weft-test/no-command:<random>`; removed on drop.
struct NoCommandImage(String);

impl NoCommandImage {
    fn new() -> Self {
        use std::io::Write as _;
        let tag = format!(
            "weft-test/no-command:{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        let mut archive = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(3);
        header.set_mode(0o644);
        archive
            .append_data(&mut header, "README", &b"hi\n"[..])
            .unwrap();
        let mut import = std::process::Command::new("docker")
            .args(["import", "-", &tag])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("run docker import");
        let tarball = archive.into_inner().unwrap();
        import.stdin.take().unwrap().write_all(&tarball).unwrap();
        assert!(import.wait().unwrap().success(), "docker import {tag}");
        Self(tag)
    }
}

impl Drop for NoCommandImage {
    fn drop(&mut self) {
        docker::docker(&["rmi", "-f", &self.0]);
    }
}

/// A create the engine refuses (an image with no command, and none given: Weft passes it on,
/// the engine answers 400) is a 502 with 10103 in the engine's own words; nothing is stored and
/// nothing is left on the engine.
async fn a_create_the_engine_refuses_is_10103_and_leaves_nothing(backend: Backend) {
    let (server, _cleanup) = docker::server(backend, |_| {}).await;
    let image = NoCommandImage::new();
    let (status, body) = create(&server, &server.admin_token, json!({ "image": image.0 })).await;
    assert_error(status, &body, 502, "10103");
    assert_eq!(
        body["message"], "the Docker engine refused: No command specified",
        "{body}"
    );
    assert_eq!(body["details"]["engine_status"], 400, "{body}");
    assert_eq!(listed(&server).await, Vec::<Value>::new(), "nothing stored");
    let label = format!(
        "label=weft.install={}",
        server.state.containers.install_id()
    );
    let (_, on_engine, _) = docker::docker(&["ps", "-aq", "--filter", &label]);
    assert_eq!(on_engine.trim(), "", "nothing on the engine");
}

/// A fake Docker engine: a TCP listener that accepts connections and never answers (it keeps
/// them open, so a client waits for an answer). A fault the real engine cannot be made to show
/// on demand: a hung or overloaded dockerd.
struct SilentEngine {
    address: String,
    task: tokio::task::JoinHandle<()>,
}

impl SilentEngine {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = format!("tcp://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        Self { address, task }
    }
}

impl Drop for SilentEngine {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An engine that does not answer within `engine_timeout_secs` makes a create a 504 with 10104,
/// naming the engine and the wait, with what to check; nothing is stored.
async fn an_engine_that_never_answers_is_10104_and_leaves_nothing(backend: Backend) {
    let engine = SilentEngine::start().await;
    let server = TestServer::start_with(backend, |c| {
        c.containers.docker_host = Some(engine.address.clone());
        c.containers.engine_timeout_secs = 1;
    })
    .await;
    let (status, body) = create(&server, &server.admin_token, json!({ "image": IMAGE })).await;
    assert_error(status, &body, 504, "10104");
    assert_eq!(
        body["message"],
        format!(
            "the Docker engine at {} did not answer within 1 s",
            engine.address
        ),
        "{body}"
    );
    assert_eq!(
        body["hint"], "the engine may be overloaded or hung; check dockerd's log",
        "{body}"
    );
    assert_eq!(listed(&server).await, Vec::<Value>::new(), "nothing stored");
}

/// Half a CPU and 100 MiB, sleeping.
fn small() -> Value {
    json!({ "image": IMAGE, "command": ["sleep", "100000"], "resources": { "cpu": "500m", "memory": "100Mi" } })
}

/// A Docker test server on `backend` where a user may hold 3 containers, 1 CPU and 256 MiB,
/// and user bob's token.
async fn capped_users(backend: Backend) -> (TestServer, Cleanup, String) {
    let (server, cleanup) = docker::server(backend, |c| {
        c.containers.per_user.max_containers = 3;
        c.containers.per_user.max_cpu = "1".into();
        c.containers.per_user.max_memory = "256Mi".into();
    })
    .await;
    let (_, bob) = server.user("bob").await;
    (server, cleanup, bob)
}

/// Bob's two small containers, filling his CPU share; returns their ids.
async fn two_small(server: &TestServer, bob: &str) -> Vec<String> {
    let mut ids = Vec::new();
    for _ in 0..2 {
        let (status, c) = create(server, bob, small()).await;
        assert_eq!(status, StatusCode::CREATED, "{c}");
        ids.push(c["id"].as_str().unwrap().to_string());
    }
    ids
}

/// Five creates at once with CPU for two: exactly two are admitted, the others refused with
/// what is missing (10202); the resource report counts what the two hold.
async fn concurrent_creates_are_admitted_within_the_share(backend: Backend) {
    let (server, _cleanup, bob) = capped_users(backend).await;
    let small = small();
    // Five at once with CPU for two: exactly two are admitted.
    let attempts = (0..5).map(|_| create(&server, &bob, small.clone()));
    let results = futures::future::join_all(attempts).await;
    let created: Vec<String> = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .map(|(_, b)| b["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(created.len(), 2, "{results:?}");
    for (status, body) in results.iter().filter(|(s, _)| *s != StatusCode::CREATED) {
        assert_error(*status, body, 429, "10202");
        assert_eq!(
            body["details"],
            json!({ "resource_type": "cpu", "required": "500m", "available": "0" })
        );
    }

    // The report counts what they hold.
    let (status, report) = send(server.with_token(&bob, Method::GET, "/api/v1/resources")).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["engine"]["available"], true);
    assert_eq!(report["resources"]["cpu"]["allocated"], 1000);
    assert_eq!(report["resources"]["memory"]["allocated"], 200 << 20);
    let free = report["resources"]["cpu"]["free"].as_u64().unwrap();
    assert_eq!(
        report["resources"]["cpu"]["capacity"].as_u64().unwrap(),
        free + 1000
    );
    assert_eq!(report["user"]["containers"], 2);
    assert_eq!(report["user"]["cpu"], "1");
    assert_eq!(report["user"]["max_memory"], "256Mi");
}

/// A stopped container releases CPU and memory; the admission check says what fits, and a
/// GPU the host has not is refused (10101).
async fn a_stopped_container_releases_its_share(backend: Backend) {
    let (server, _cleanup, bob) = capped_users(backend).await;
    let created = two_small(&server, &bob).await;
    let post = |path: String| send(server.with_token(&bob, Method::POST, &path));
    let allocate = |resources: Value| {
        send(
            server
                .with_token(&bob, Method::POST, "/api/v1/resources/allocate")
                .json(&json!({ "resources": resources })),
        )
    };
    // A stopped container releases CPU and memory; the admission check says what fits.
    let (status, _) = post(format!("/api/v1/containers/{}/stop", created[0])).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = allocate(json!({ "cpu": "600m", "memory": "64Mi" })).await;
    assert_error(status, &body, 429, "10202");
    assert_eq!(
        body["details"],
        json!({ "resource_type": "cpu", "required": "600m", "available": "500m" })
    );
    let (status, body) = allocate(json!({ "cpu": "500m", "memory": "157Mi" })).await;
    assert_error(status, &body, 429, "10202");
    assert_eq!(body["details"]["resource_type"], "memory");
    let (status, body) = allocate(json!({ "cpu": "500m", "memory": "156Mi" })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({ "admitted": true, "cpu": "500m", "memory": "156Mi", "gpu": "0" })
    );
    let (status, body) = allocate(json!({ "cpu": "100m", "memory": "6Mi", "gpu": "1" })).await;
    assert_error(status, &body, 503, "10101");
    assert_eq!(
        body["details"],
        json!({ "resource_type": "gpu", "required": "1", "available": "0" })
    );
}

/// The number of containers is capped, stopped ones included; starting a stopped one again
/// is admitted against the share like a create.
async fn the_container_count_and_restarts_are_capped(backend: Backend) {
    let (server, _cleanup, bob) = capped_users(backend).await;
    let created = two_small(&server, &bob).await;
    let small = small();
    let post = |path: String| send(server.with_token(&bob, Method::POST, &path));
    let (status, body) = post(format!("/api/v1/containers/{}/stop", created[0])).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // A third fits; a fourth is over the number of containers, stopped ones included.
    let (status, third) = create(&server, &bob, small.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{third}");
    let (status, body) = create(
        &server,
        &bob,
        json!({ "image": IMAGE, "resources": { "cpu": "10m", "memory": "6Mi" } }),
    )
    .await;
    assert_error(status, &body, 429, "10202");
    assert_eq!(body["details"]["resource_type"], "containers");

    // Starting the stopped one again is admitted against the share like a create.
    let (status, body) = post(format!("/api/v1/containers/{}/start", created[0])).await;
    assert_error(status, &body, 429, "10202");
    let (status, still) = send(server.with_token(
        &bob,
        Method::GET,
        &format!("/api/v1/containers/{}", created[0]),
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{still}");
    assert_eq!(still["status"], "stopped");
    let (status, _) = post(format!(
        "/api/v1/containers/{}/stop",
        third["id"].as_str().unwrap()
    ))
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = post(format!("/api/v1/containers/{}/start", created[0])).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "running");
}

/// A container the driver made through its own face (no service above it): busybox running
/// `echo started; exec sleep`, with `A=1`, a named volume on /data and 32 MiB of memory. It
/// and its volume are removed on drop.
struct DriverContainer {
    driver: weft::container::docker::DockerDriver,
    id: String,
    volume: String,
    labels: BTreeMap<String, String>,
}

impl DriverContainer {
    /// Creates the container, and starts it when `start` says so.
    async fn new(start: bool) -> Self {
        use weft::container::driver::{ContainerDriver, ContainerSpec, Limits, VolumeMount};
        docker::require();
        let driver = weft::container::docker::DockerDriver::new(
            None,
            Duration::from_secs(30),
            weft::container::hardening::Policy {
                capabilities: vec![],
                pids_limit: 128,
                nofile: 1024,
                max_file_bytes: 0,
            },
        );
        let tag = uuid::Uuid::new_v4().simple().to_string();
        let volume = format!("weft-test-{tag}");
        let labels = BTreeMap::from([("weft.install".to_string(), tag.clone())]);
        let spec = ContainerSpec {
            name: format!("weft-driver-{tag}"),
            image: IMAGE.into(),
            command: Some(vec![
                "sh".into(),
                "-c".into(),
                "echo started; exec sleep 100000".into(),
            ]),
            env: BTreeMap::from([("A".to_string(), "1".to_string())]),
            labels: labels.clone(),
            volumes: vec![VolumeMount {
                volume: volume.clone(),
                target: "/data".into(),
                read_only: false,
            }],
            limits: Limits {
                cpu_millis: 500,
                memory_bytes: 32 << 20,
                gpus: 0,
            },
            ..Default::default()
        };
        let id = driver.create(&spec).await.expect("create");
        let made = Self {
            driver,
            id,
            volume,
            labels,
        };
        if start {
            made.driver.start(&made.id).await.expect("start");
        }
        made
    }

    /// Runs `sh -c script` in the container.
    async fn sh(&self, script: &str) -> weft::container::driver::ExecOutput {
        use weft::container::driver::ContainerDriver;
        self.driver
            .exec(&self.id, &["sh".into(), "-c".into(), script.into()])
            .await
            .expect("exec")
    }
}

impl Drop for DriverContainer {
    fn drop(&mut self) {
        docker::docker(&["rm", "-f", &self.id]);
        docker::docker(&["volume", "rm", "-f", &self.volume]);
    }
}

/// The driver creates a container as specified (the named volume mounted), starts it, and
/// finds it by its labels.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_driver_creates_starts_and_lists_a_container() {
    use weft::container::driver::ContainerDriver;
    let made = DriverContainer::new(false).await;
    let (driver, id) = (&made.driver, made.id.as_str());
    let created = driver.inspect(id).await.unwrap().expect("inspect");
    assert_eq!(created.state, "created");
    driver.start(id).await.expect("start");
    assert!(driver.inspect(id).await.unwrap().unwrap().is_running());
    let listed = driver.list(&made.labels).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, id);
    // The named volume is what is mounted.
    let inspected = inspect(id).unwrap();
    assert_eq!(inspected["Mounts"][0]["Type"], "volume");
    assert_eq!(inspected["Mounts"][0]["Name"], made.volume.as_str());
}

/// The driver runs a command in a container, with its environment: its output and exit code
/// at once, or as a stream (output as it comes, then the exit code last).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_driver_runs_commands_with_their_output_and_exit_code() {
    use weft::container::driver::{ContainerDriver, ExecEvent};
    let made = DriverContainer::new(true).await;
    let out = made.sh("echo out; echo err >&2; echo $A; exit 4").await;
    assert_eq!(
        (out.exit_code, out.stdout.as_str(), out.stderr.as_str()),
        (4, "out\n1\n", "err\n")
    );
    let events: Vec<_> = made
        .driver
        .exec_stream(
            &made.id,
            &[
                "sh".into(),
                "-c".into(),
                "echo out; echo err >&2; exit 3".into(),
            ],
        )
        .collect()
        .await;
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    for event in &events[..events.len() - 1] {
        match event.as_ref().unwrap() {
            ExecEvent::Stdout(b) => stdout.extend_from_slice(b),
            ExecEvent::Stderr(b) => stderr.extend_from_slice(b),
            other => panic!("{other:?} before the end"),
        }
    }
    assert!(matches!(events.last().unwrap(), Ok(ExecEvent::Exited(3))));
    assert_eq!((&stdout[..], &stderr[..]), (&b"out\n"[..], &b"err\n"[..]));
}

/// The driver copies a tar stream into a container, and the same file out again as a tar.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_driver_copies_tar_streams_in_and_out() {
    use weft::container::driver::ContainerDriver;
    let made = DriverContainer::new(true).await;
    let mut archive = tar::Builder::new(Vec::new());
    let content = b"hello from the host\n";
    let mut header = tar::Header::new_gnu();
    header.set_size(content.len() as u64);
    header.set_mode(0o644);
    archive
        .append_data(&mut header, "hello.txt", &content[..])
        .unwrap();
    made.driver
        .copy_in(
            &made.id,
            "/data",
            futures::stream::iter([Ok(archive.into_inner().unwrap().into())]).boxed(),
        )
        .await
        .unwrap();
    let cat = made.sh("cat /data/hello.txt").await;
    assert_eq!(cat.stdout.as_bytes(), content);
    let tarball: Vec<u8> = made
        .driver
        .copy_out(&made.id, "/data/hello.txt")
        .map(|chunk| chunk.unwrap().to_vec())
        .concat()
        .await;
    let mut entries = tar::Archive::new(&tarball[..]);
    let mut entry = entries.entries().unwrap().next().unwrap().unwrap();
    let mut back = String::new();
    std::io::Read::read_to_string(&mut entry, &mut back).unwrap();
    assert_eq!(back.as_bytes(), content);
}

/// The driver reads what a container printed and its stats (with its memory limit).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_driver_reads_a_containers_logs_and_stats() {
    use weft::container::driver::ContainerDriver;
    let made = DriverContainer::new(true).await;
    // The shell prints its line soon after the start.
    let logs = wait::until(
        "the container's output",
        Duration::from_secs(10),
        || async {
            let logs: Vec<_> = made.driver.logs(&made.id, false, None).collect().await;
            let text: String = logs.into_iter().map(|c| c.unwrap().text).collect();
            if text.is_empty() { Err(text) } else { Ok(text) }
        },
    )
    .await;
    assert_eq!(logs, "started\n");
    let stats = made.driver.stats(&made.id).await.unwrap();
    assert_eq!(stats.memory_limit_bytes, 32 << 20);
}

/// The driver stops and removes a container, each twice without error; the named volume the
/// mount created stays for its owner to remove.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_driver_stops_and_removes_a_container_twice_without_error() {
    use weft::container::driver::ContainerDriver;
    let made = DriverContainer::new(true).await;
    let (driver, id) = (&made.driver, made.id.as_str());
    driver.stop(id, Duration::from_secs(5)).await.unwrap();
    driver
        .stop(id, Duration::from_secs(5))
        .await
        .expect("stopping twice is fine");
    assert!(!driver.inspect(id).await.unwrap().unwrap().is_running());
    driver.remove(id).await.unwrap();
    driver.remove(id).await.expect("removing twice is fine");
    assert!(driver.inspect(id).await.unwrap().is_none());
    let (removed, _, _) = docker::docker(&["volume", "rm", &made.volume]);
    assert!(removed, "the named volume was created by the mount");
}

/// A real `weft` that ran containers and was killed with SIGKILL, for what its restart makes of
/// them.
struct Crashed {
    site: Site,
    /// Its sleepers: (id, engine id).
    sleepers: Vec<(String, String)>,
    /// Its installation's id, labelling its containers.
    install: String,
    /// When its sleepers were last known running (each ran at least from its creation's
    /// answer until it is touched behind Weft's back).
    created: Instant,
    _cleanup: Cleanup,
}

impl Crashed {
    /// `weft serve` on `backend` with `count` running sleepers, then SIGKILLed.
    async fn with_sleepers(backend: Backend, count: usize) -> Self {
        docker::require();
        let site = Site::new(backend).await;
        let mut first = Self::serve_site(&site);
        let base = first.base_url();
        let mut sleepers = Vec::new();
        for _ in 0..count {
            let (status, c) = crate::support::call(
                &site.client,
                &base,
                &site.token,
                Method::POST,
                "/api/v1/containers",
                Some(sleeper()),
            )
            .await;
            assert_eq!(status, StatusCode::CREATED, "{c}");
            sleepers.push((
                c["id"].as_str().unwrap().to_string(),
                c["engine_id"].as_str().unwrap().to_string(),
            ));
        }
        let install = inspect(&sleepers[0].1).unwrap()["Config"]["Labels"]["weft.install"]
            .as_str()
            .unwrap()
            .to_string();
        let created = Instant::now();
        first.kill();
        Self {
            site,
            sleepers,
            _cleanup: Cleanup(install.clone()),
            install,
            created,
        }
    }

    fn serve_site(site: &Site) -> crate::support::WeftProcess {
        site.serve(&[
            ("WEFT_CONTAINERS__ORPHAN_GRACE_SECS", "0"),
            ("WEFT_CONTAINERS__ALLOWED_IMAGES", r#"["weft-test/*"]"#),
        ])
    }

    /// `weft serve` again on the same site: the restart.
    fn restart(&self) -> crate::support::WeftProcess {
        Self::serve_site(&self.site)
    }

    /// Calls the restarted `weft` at `base` as the admin.
    fn call(
        &self,
        base: &str,
        method: Method,
        path: &str,
    ) -> impl Future<Output = (StatusCode, Value)> + use<> {
        crate::support::call(
            &self.site.client,
            base,
            &self.site.token,
            method,
            path,
            None,
        )
    }
}

/// SIGKILL a real `weft`, remove one of its containers and stop another behind its back,
/// restart it: the removed one is marked stopped with its time accounted, the one stopped
/// outside shows stopped with its exit code.
async fn containers_changed_while_weft_was_down_show_stopped(backend: Backend) {
    let crashed = Crashed::with_sleepers(backend, 2).await;
    let [(removed, removed_engine), (halted, halted_engine)] =
        <[_; 2]>::try_from(crashed.sleepers.clone()).unwrap();
    let lived = crashed.created.elapsed().as_secs_f64();
    assert!(docker::docker(&["rm", "-f", &removed_engine]).0);
    assert!(docker::docker(&["stop", "-t", "5", &halted_engine]).0);

    let second = crashed.restart();
    let base = second.base_url();
    let get = |id: &str| crashed.call(&base, Method::GET, &format!("/api/v1/containers/{id}"));
    let (removed_now, halted_now) = wait::until(
        "both containers stopped",
        Duration::from_secs(20),
        || async {
            let ((_, removed_now), (_, halted_now)) = (get(&removed).await, get(&halted).await);
            if removed_now["status"] == "stopped" && halted_now["status"] == "stopped" {
                Ok((removed_now, halted_now))
            } else {
                Err((removed_now, halted_now))
            }
        },
    )
    .await;
    assert!(
        removed_now["error"].as_str().unwrap().contains("vanished"),
        "{removed_now}"
    );
    // Its stint is counted up to when it was found gone (1 ms for the stored milliseconds).
    assert!(
        removed_now["run_seconds"].as_f64().unwrap() >= lived - 0.001,
        "time accounted (at least {lived} s): {removed_now}"
    );
    assert!(removed_now["stopped_at"].is_string());
    assert_eq!(halted_now["exit_code"], 143, "{halted_now}");
}

/// SIGKILL a real `weft`, start an orphan with its label and a container of another
/// installation behind its back, restart it: its running container is adopted and still
/// managed (it stops through the API), the orphan is removed, the other installation's
/// container is left alone.
async fn a_restarted_weft_adopts_its_running_containers_and_removes_orphans(backend: Backend) {
    let crashed = Crashed::with_sleepers(backend, 1).await;
    let (kept, kept_engine) = crashed.sleepers[0].clone();
    let orphan_label = format!("weft.install={}", crashed.install);
    let (ok, orphan, err) = docker::docker(&[
        "run",
        "-d",
        "--label",
        &orphan_label,
        "--label",
        "weft.container=ghost",
        IMAGE,
        "sleep",
        "1000",
    ]);
    assert!(ok, "{err}");
    let stranger_install = format!("weft-test-stranger-{}", uuid::Uuid::new_v4().simple());
    let _stranger_cleanup = Cleanup(stranger_install.clone());
    let (ok, stranger, err) = docker::docker(&[
        "run",
        "-d",
        "--label",
        &format!("weft.install={stranger_install}"),
        IMAGE,
        "sleep",
        "1000",
    ]);
    assert!(ok, "{err}");

    let second = crashed.restart();
    let base = second.base_url();
    wait::until("the orphan removed", Duration::from_secs(20), || async {
        match inspect(orphan.trim()) {
            None => Ok(()),
            Some(found) => Err(found["State"]["Status"].clone()),
        }
    })
    .await;
    let (_, kept_now) = crashed
        .call(&base, Method::GET, &format!("/api/v1/containers/{kept}"))
        .await;
    assert_eq!(kept_now["status"], "running", "{kept_now}");
    assert_eq!(kept_now["engine_id"], kept_engine.as_str());
    assert_eq!(inspect(&kept_engine).unwrap()["State"]["Running"], true);
    assert!(
        inspect(stranger.trim()).is_some(),
        "another installation's container is not touched"
    );

    // The adopted container is still managed: it stops through the API.
    let (status, stopped) = crashed
        .call(
            &base,
            Method::POST,
            &format!("/api/v1/containers/{kept}/stop"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{stopped}");
    assert_eq!(stopped["status"], "stopped");
}
