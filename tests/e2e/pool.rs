//! Warm pools of workspace containers (`[workspaces.pool]`) on the real engine with the real
//! Jupyter image: a session opened from the pool (its files, its proxy, its owner's network
//! alone), the refill, adoption across a restart, and the pool giving way to a user's cold
//! start when the host is short.

use crate::sessions::run_in_kernel;
use crate::support::docker::{self, Cleanup};
use crate::support::loopback;
use crate::support::{Backend, Site, TestServer, assert_error, send, wait};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;
use weft::workspace::sessions::SessionKind;

/// The owner the store gives pooled containers.
const POOL_OWNER: &str = "weft-pool";

/// The pooled containers an admin sees: (Weft id, engine id), oldest first.
async fn pooled(client: &reqwest::Client, base: &str, admin: &str) -> Vec<(String, String)> {
    let (status, all) =
        crate::support::call(client, base, admin, Method::GET, "/api/v1/containers", None).await;
    assert_eq!(status, StatusCode::OK, "{all}");
    all.as_array()
        .unwrap()
        .iter()
        .filter(|c| c["owner_id"] == POOL_OWNER)
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_string(),
                c["engine_id"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// Waits until the in-process server's Jupyter pool holds `n` idle containers.
async fn pool_holds(server: &TestServer, n: usize) {
    wait::until(
        "the Jupyter pool to fill",
        Duration::from_secs(300),
        || async {
            let idle = server.state.sessions.pool_idle(SessionKind::Jupyter);
            if idle == n { Ok(()) } else { Err(idle) }
        },
    )
    .await;
}

/// The names of the engine networks a container is on.
fn networks_of(engine_id: &str) -> Vec<String> {
    let engine = docker::inspect(engine_id).expect("the container exists");
    let mut names: Vec<String> = engine["NetworkSettings"]["Networks"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    names.sort();
    names
}

/// A session opens on a pooled container: ready at once with the project's files, served
/// through the proxy with its link's cookie (a notebook kernel runs), on its owner's network
/// alone, refused to another user; the pool refills; the stopped session's container is
/// removed, never pooled again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_opens_from_the_pool_and_the_pool_refills() {
    let (server, _cleanup) = docker::server(Backend::Sqlite, |c| {
        c.workspaces.start_timeout_secs = 240;
        c.workspaces.memory = "512Mi".into();
        c.workspaces.pool.jupyter = 1;
    })
    .await;
    let (bob_id, bob) = server.user("bob").await;
    let (_, eve) = server.user("eve").await;
    let project = server.project(&bob, "warm").await;
    server
        .put_file(&bob, &project, "data/input.txt", "21")
        .await;
    pool_holds(&server, 1).await;
    let admin = &server.admin_token;
    let before = pooled(&server.client, &server.base, admin).await;
    assert_eq!(before.len(), 1, "{before:?}");
    let (pooled_id, pooled_engine) = before[0].clone();
    assert_eq!(networks_of(&pooled_engine), ["weft-u-weftpool"]);

    let (status, opened) = server.open_session(&bob, &project, "jupyter").await;
    assert_eq!(status, StatusCode::CREATED, "{opened}");
    let ready = server.session_ready(&bob, &project).await;
    assert_eq!(ready["container_id"], pooled_id.as_str(), "{ready}");
    assert_eq!(
        networks_of(&pooled_engine),
        [weft::container::network::name(&bob_id)],
        "on bob's network alone once taken"
    );

    let site = opened["url"].as_str().unwrap().to_string();
    let access = opened["access_token"].as_str().unwrap();
    let no_redirects = loopback::no_redirects();
    let first = no_redirects
        .get(format!("{site}api/status?token={access}"))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::SEE_OTHER);
    let cookie = first.headers()["set-cookie"].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_string();
    let (status, content) = send(
        no_redirects
            .get(format!("{site}api/contents/data/input.txt"))
            .header("cookie", &cookie),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{content}");
    assert_eq!(
        content["content"], "21",
        "the project's files were copied in"
    );
    let (status, kernel) = send(
        no_redirects
            .post(format!("{site}api/kernels"))
            .header("cookie", &cookie)
            .json(&json!({ "name": "python3" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{kernel}");
    let out = run_in_kernel(
        &bob,
        &site,
        kernel["id"].as_str().unwrap(),
        "print(int(open('data/input.txt').read()) * 2)",
    )
    .await;
    assert_eq!(out.trim(), "42");
    let (status, body) = send(
        no_redirects
            .get(format!("{site}api/status"))
            .bearer_auth(&eve),
    )
    .await;
    assert_error(status, &body, 403, "90305");

    // The pool is back to its size with a new container.
    pool_holds(&server, 1).await;
    let refilled = pooled(&server.client, &server.base, admin).await;
    assert_eq!(refilled.len(), 1, "{refilled:?}");
    assert_ne!(refilled[0].0, pooled_id);

    let (status, stopped) = server.stop_session(&bob, &project).await;
    assert_eq!(status, StatusCode::OK, "{stopped}");
    assert!(
        docker::inspect(&pooled_engine).is_none(),
        "a stopped session's container is removed"
    );
    assert_eq!(pooled(&server.client, &server.base, admin).await, refilled);
}

/// Pooled containers outlive a Weft process: the next one adopts those that still answer
/// (no duplicate is started for them), removes the one that died meanwhile and starts one in
/// its place; a session then opens on the adopted one, its memory limit raised to the new
/// configuration's on the running container.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pooled_containers_are_adopted_after_a_restart() {
    docker::require();
    let data = Site::new(Backend::Sqlite).await;
    let token = &data.token;
    let env = [
        ("WEFT_WORKSPACES__POOL__JUPYTER", "2"),
        ("WEFT_WORKSPACES__MEMORY", "512Mi"),
        ("WEFT_WORKSPACES__START_TIMEOUT_SECS", "240"),
    ];
    let client = loopback::client_builder().build().unwrap();
    let mut first = data.serve(&env);
    let base = first.base_url();
    // The first pooled container names the installation, so that a failure below leaves
    // nothing running.
    let install = wait::until("a pooled container", Duration::from_secs(300), || async {
        let left = pooled(&client, &base, token).await;
        left.iter()
            .find_map(|(_, engine)| {
                docker::inspect(engine)?["Config"]["Labels"]["weft.install"]
                    .as_str()
                    .map(String::from)
            })
            .ok_or(left)
    })
    .await;
    let _cleanup = Cleanup(install);
    // Both started and answering (Jupyter says so in its log).
    let left = wait::until("two pooled servers", Duration::from_secs(300), || async {
        let left = pooled(&client, &base, token).await;
        let serving = left.iter().all(|(_, engine)| {
            let (_, out, err) = docker::docker(&["logs", engine]);
            format!("{out}{err}").contains("is running at")
        });
        if left.len() == 2 && serving {
            Ok(left)
        } else {
            Err(left)
        }
    })
    .await;
    first.kill();
    // One dies while no Weft runs.
    let (dead, alive) = (&left[0], &left[1]);
    assert!(docker::docker(&["kill", &dead.1]).0);

    // The next Weft gives sessions more memory: a taken container is updated to it.
    let mut env = env.to_vec();
    env[1] = ("WEFT_WORKSPACES__MEMORY", "768Mi");
    let second = data.serve(&env);
    let base = second.base_url();
    let now = pooled(&client, &base, token).await;
    assert!(now.contains(alive), "the live one is adopted: {now:?}");
    assert!(!now.contains(dead), "the dead one is gone: {now:?}");
    assert!(
        docker::inspect(&dead.1).is_none(),
        "and removed from the engine"
    );
    let full = wait::until("the pool to refill", Duration::from_secs(300), || async {
        let now = pooled(&client, &base, token).await;
        if now.len() == 2 { Ok(now) } else { Err(now) }
    })
    .await;
    assert!(full.contains(alive), "{full:?}");

    let call = |method: Method, path: &str, body: Option<Value>| {
        crate::support::call(&client, &base, token, method, path, body)
    };
    let (_, project) = call(
        Method::POST,
        "/api/v1/projects",
        Some(json!({ "name": "after" })),
    )
    .await;
    let project = project["id"].as_str().unwrap().to_string();
    let (status, opened) = call(
        Method::POST,
        &format!("/api/v1/projects/{project}/session"),
        Some(json!({ "kind": "jupyter" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{opened}");
    let ready = crate::support::wait_for_session(&client, &base, token, &project).await;
    assert_eq!(
        ready["container_id"],
        alive.0.as_str(),
        "opened from the pool, the adopted container first: {ready}"
    );
    assert_eq!(
        docker::inspect(&alive.1).unwrap()["HostConfig"]["Memory"],
        768 << 20,
        "the session's limits applied to the running container"
    );
}

/// A host whose memory the pool fills: a user's cold start (a code-server session, which has
/// no pool) is admitted because a pooled container gives way, and the pool does not take the
/// room back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pool_gives_way_to_a_users_cold_start() {
    let (ok, total, _) = docker::docker(&["info", "--format", "{{.MemTotal}}"]);
    assert!(ok);
    let total: u64 = total.trim().parse().expect("MemTotal in bytes");
    // Two sessions fit the host, three do not.
    let share = format!("{}Mi", total / (1 << 20) * 2 / 5);
    let (server, _cleanup) = docker::server(Backend::Sqlite, |c| {
        c.workspaces.start_timeout_secs = 240;
        c.workspaces.memory = share;
        c.containers.per_user.max_memory = "1024Gi".into();
        c.workspaces.pool.jupyter = 2;
    })
    .await;
    let (_, bob) = server.user("bob").await;
    let project = server.project(&bob, "cold").await;
    pool_holds(&server, 2).await;
    let admin = &server.admin_token;
    assert_eq!(pooled(&server.client, &server.base, admin).await.len(), 2);

    let (status, opened) = server.open_session(&bob, &project, "code-server").await;
    assert_eq!(status, StatusCode::CREATED, "{opened}");
    let ready = server.session_ready(&bob, &project).await;
    assert_eq!(ready["status"], "ready", "{ready}");
    assert_eq!(
        pooled(&server.client, &server.base, admin).await.len(),
        1,
        "one pooled container gave way"
    );
    pool_holds(&server, 1).await;
    let (status, stopped) = server.stop_session(&bob, &project).await;
    assert_eq!(status, StatusCode::OK, "{stopped}");
}

/// The pool's network is wider than a user's: with user networks of /29 (5 containers), a
/// pool of 6 fills (the engine had no address left for the sixth when the pool's network was
/// as narrow as a user's, and a pool stopped growing at 29 Jupyter containers by default).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pool_outgrows_a_users_network() {
    let (server, _cleanup) = docker::server(Backend::Sqlite, |c| {
        c.workspaces.start_timeout_secs = 240;
        c.workspaces.memory = "256Mi".into();
        c.containers.network.subnet_prefix = 29;
        c.workspaces.pool.jupyter = 6;
    })
    .await;
    pool_holds(&server, 6).await;
    let admin = &server.admin_token;
    assert_eq!(pooled(&server.client, &server.base, admin).await.len(), 6);
    let (ok, network, err) = docker::docker(&["network", "inspect", "weft-u-weftpool"]);
    assert!(ok, "{err}");
    let network: Value = serde_json::from_str(&network).unwrap();
    let subnet = network[0]["IPAM"]["Config"][0]["Subnet"].as_str().unwrap();
    let prefix: u8 = subnet.rsplit('/').next().unwrap().parse().unwrap();
    // Made here (a /24), or by another test on the defaults (a /22).
    assert!(prefix <= 24, "the pool's network is {subnet}");
}
