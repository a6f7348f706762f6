//! What a user's code can reach, attacked from inside a real container: another user's
//! Jupyter and code-server (the real workspace images), the host's own services through the
//! bridge's gateway, and a cloud-style metadata service at 169.254.169.254 (a fake one in a
//! network namespace, reached through a veth pair as on a cloud VM). Each target is also shown
//! reachable from a container on the engine's default bridge, where Weft put every container
//! before, so the refusals are the firewall's and the networks' doing. Then the container
//! hardening: the image allow-list (10301), nobody as the default user, ulimits, and the disk
//! watcher stopping a container that writes past its limit.

use crate::support::docker::{self, Cleanup, inspect};
use crate::support::{Backend, TestServer, assert_error, send, wait};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Runs `ip ARGS`, failing the test when it fails.
fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A fake metadata service answering `metadata-secret` on 169.254.169.254:80, in a network
/// namespace joined to the host by a veth pair (169.254.250.1/30 on the host's side), with a
/// host route to it: what a cloud VM's link-local metadata address looks like. Removed on drop.
struct FakeMetadata {
    namespace: String,
    host_link: String,
    server: Child,
}

const METADATA: &str = "169.254.169.254";

impl FakeMetadata {
    fn start() -> Self {
        Self::remove_leftovers();
        let tag = &uuid::Uuid::new_v4().simple().to_string()[..6];
        let namespace = format!("weft-meta-{tag}");
        let (host_link, inner_link) = (format!("wm{tag}h"), format!("wm{tag}n"));
        let in_ns = |args: &[&str]| {
            let mut all = vec!["netns", "exec", namespace.as_str(), "ip"];
            all.extend(args);
            ip(&all);
        };
        ip(&["netns", "add", &namespace]);
        ip(&[
            "link",
            "add",
            &host_link,
            "type",
            "veth",
            "peer",
            "name",
            &inner_link,
        ]);
        ip(&["link", "set", &inner_link, "netns", &namespace]);
        ip(&["addr", "add", "169.254.250.1/30", "dev", &host_link]);
        ip(&["link", "set", &host_link, "up"]);
        in_ns(&["addr", "add", "169.254.250.2/30", "dev", &inner_link]);
        in_ns(&["addr", "add", &format!("{METADATA}/32"), "dev", &inner_link]);
        in_ns(&["link", "set", &inner_link, "up"]);
        in_ns(&["link", "set", "lo", "up"]);
        in_ns(&["route", "add", "default", "via", "169.254.250.1"]);
        let server = Command::new("ip")
            .args(["netns", "exec", &namespace, "python3", "-c"])
            .arg(
                "import http.server as h\n\
                 class H(h.BaseHTTPRequestHandler):\n    \
                     def do_GET(self):\n        \
                         self.send_response(200); self.end_headers(); self.wfile.write(b'metadata-secret')\n    \
                     def log_message(self, *a): pass\n\
                 h.HTTPServer(('169.254.169.254', 80), H).serve_forever()",
            )
            .stdout(Stdio::null())
            .spawn()
            .expect("start the fake metadata server");
        let this = Self {
            namespace,
            host_link,
            server,
        };
        ip(&[
            "route",
            "add",
            &format!("{METADATA}/32"),
            "via",
            "169.254.250.2",
        ]);
        // Ready once the host itself gets an answer through the route.
        wait::until_blocking(
            "the fake metadata server to answer",
            Duration::from_secs(20),
            || {
                let mut s = std::net::TcpStream::connect_timeout(
                    &format!("{METADATA}:80").parse().unwrap(),
                    Duration::from_secs(1),
                )
                .map_err(|e| e.to_string())?;
                s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
                let mut answer = String::new();
                let _ = s.read_to_string(&mut answer);
                if answer.ends_with("metadata-secret") {
                    Ok(())
                } else {
                    Err(answer)
                }
            },
        );
        this
    }

    /// A run killed part way (no drop) leaves its namespace, veth pair and route behind; the
    /// next run's route would then lead to the dead namespace, so they go first. Only this
    /// fixture makes `weft-meta-*` namespaces and `wm<tag>h` links.
    fn remove_leftovers() {
        let listed = |args: &[&str]| {
            let out = Command::new("ip").args(args).output().expect("run ip");
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        for line in listed(&["-o", "link", "show"]).lines() {
            let name = line.split(": ").nth(1).unwrap_or_default();
            let name = name.split('@').next().unwrap_or_default();
            if name.len() == 9 && name.starts_with("wm") && name.ends_with('h') {
                ip(&["link", "del", name]);
            }
        }
        for line in listed(&["netns", "list"]).lines() {
            let name = line.split_whitespace().next().unwrap_or_default();
            if name.starts_with("weft-meta-") {
                ip(&["netns", "del", name]);
            }
        }
        let _ = Command::new("ip")
            .args(["route", "del", &format!("{METADATA}/32")])
            .status();
    }
}

impl Drop for FakeMetadata {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
        let _ = Command::new("ip")
            .args(["route", "del", &format!("{METADATA}/32")])
            .status();
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_link])
            .status();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.namespace])
            .status();
    }
}

/// A service of the host's own on every address (as a database or a local admin page bound to
/// 0.0.0.0 would be): answers `host-secret` to any connection. Returns its port.
fn host_service() -> u16 {
    let listener = std::net::TcpListener::bind("0.0.0.0:0").expect("bind a host service");
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let _ = stream.write_all(b"HTTP/1.0 200 OK\r\n\r\nhost-secret");
        }
    });
    port
}

/// What a container on the engine's default bridge (no Weft network, no Weft firewall) gets
/// for an HTTP request to `host:port`, where the host `gateway` is its bridge's gateway.
fn from_default_bridge(host: &str, port: u16) -> String {
    let host = if host == "gateway" {
        "$(ip route | awk '/^default/ {print $3}')"
    } else {
        host
    };
    let script = format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 {host} {port}");
    let (_, out, err) = docker::docker(&[
        "run",
        "--rm",
        "--network",
        "bridge",
        "weft-test/busybox:1",
        "sh",
        "-c",
        &script,
    ]);
    format!("{out}{err}")
}

/// Executes `code` in a new notebook of `project` (its Jupyter kernel) as `token`; its stdout.
async fn in_kernel(server: &TestServer, token: &str, project: &str, code: &str) -> String {
    let (status, notebook) = send(
        server
            .with_token(token, Method::POST, "/api/v1/notebooks")
            .json(&json!({ "project_id": project })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{notebook}");
    let id = notebook["id"].as_str().unwrap();
    let (status, execution) = send(
        server
            .with_token(
                token,
                Method::POST,
                &format!("/api/v1/notebooks/{id}/execute"),
            )
            .json(&json!({ "code": code })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{execution}");
    assert_eq!(execution["status"], "ok", "{execution}");
    execution["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["name"] == "stdout")
        .map(|o| o["text"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// The engine container of `project`'s session, once it is ready.
async fn session_container(server: &TestServer, token: &str, project: &str) -> Value {
    let (_, session) = send(server.with_token(
        token,
        Method::GET,
        &format!("/api/v1/projects/{project}/session"),
    ))
    .await;
    let id = session["session_id"].as_str().expect("a session");
    let ready = server
        .state
        .sessions
        .wait_ready(id, Duration::from_secs(240))
        .await
        .expect("the session is ready");
    let container = ready.container_id.expect("a container");
    let (_, container) = send(server.with_token(
        token,
        Method::GET,
        &format!("/api/v1/containers/{container}"),
    ))
    .await;
    inspect(container["engine_id"].as_str().unwrap()).expect("on the engine")
}

/// The container's network (its only one) and its address there.
fn network_of(container: &Value) -> (String, String) {
    let networks = container["NetworkSettings"]["Networks"]
        .as_object()
        .unwrap();
    assert_eq!(networks.len(), 1, "one network only: {networks:?}");
    let (name, endpoint) = networks.iter().next().unwrap();
    (
        name.clone(),
        endpoint["IPAddress"].as_str().unwrap().to_string(),
    )
}

const PROBE: &str = r#"
import json, socket, struct
from concurrent.futures import ThreadPoolExecutor
def gateway():
    for line in open('/proc/net/route').read().splitlines()[1:]:
        f = line.split()
        if f[1] == '00000000':
            return socket.inet_ntoa(struct.pack('<L', int(f[2], 16)))
def probe(target):
    host, port = target
    host = gateway() if host == 'gateway' else host
    s = socket.socket()
    s.settimeout(5)
    try:
        s.connect((host, port))
        return 'open'
    except socket.timeout:
        return 'timeout'
    except OSError as e:
        return 'refused' if e.errno == 111 else 'error %s' % e.errno
    finally:
        s.close()
with ThreadPoolExecutor(8) as pool:
    print(json.dumps(dict(zip([str(t) for t in TARGETS], pool.map(probe, TARGETS)))))
"#;

/// `docker network inspect NAME`.
fn inspect_network(name: &str) -> Value {
    let (ok, found, err) = docker::docker(&["network", "inspect", name]);
    assert!(ok, "{name}: {err}");
    serde_json::from_str::<Value>(&found).unwrap()[0].clone()
}

/// The subnet of a network as `docker network inspect` shows it.
fn subnet_of(network: &Value) -> ipnet::Ipv4Net {
    network["IPAM"]["Config"][0]["Subnet"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// `docker inspect` of a sleeping busybox that `POST /containers` made as `token`, asserting
/// it was created.
#[track_caller]
fn sleeper_as<'a>(server: &'a TestServer, token: &'a str) -> impl Future<Output = Value> + 'a {
    let caller = std::panic::Location::caller();
    async move {
        let body = json!({ "image": "weft-test/busybox:1", "command": ["sleep", "100000"] });
        let (status, created) = create_as(server, token, body).await;
        crate::support::expect_status(caller, status, StatusCode::CREATED, &created);
        inspect(created["engine_id"].as_str().unwrap()).expect("on the engine")
    }
}

/// The host firewall is active and denies link-local addresses; each user's containers join a
/// bridge of that user's own (inter-container traffic off, a /27 of Weft's pool), another
/// user's another one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_user_gets_a_network_of_their_own_behind_the_firewall() {
    let (server, _cleanup) = docker::server(Backend::Sqlite, |_| {}).await;
    let (_, report) = send(server.admin(Method::GET, "/api/v1/resources")).await;
    assert_eq!(report["engine"]["firewall"]["status"], "active", "{report}");
    assert_eq!(
        report["engine"]["firewall"]["deny"],
        json!(["169.254.0.0/16"])
    );
    let (alice_id, alice) = server.user("alice").await;
    let (_, bob) = server.user("bob").await;
    let (network, _) = network_of(&sleeper_as(&server, &alice).await);
    assert_eq!(
        network,
        weft::container::network::name(&alice_id),
        "Alice's own network"
    );
    let found = inspect_network(&network);
    assert_eq!(
        found["Options"]["com.docker.network.bridge.enable_icc"],
        "false"
    );
    assert!(
        found["Options"]["com.docker.network.bridge.name"]
            .as_str()
            .unwrap()
            .starts_with("weft")
    );
    let subnet = subnet_of(&found);
    assert_eq!(subnet.prefix_len(), 27);
    assert!(
        "10.213.0.0/16"
            .parse::<ipnet::Ipv4Net>()
            .unwrap()
            .contains(&subnet)
    );
    let (bobs, _) = network_of(&sleeper_as(&server, &bob).await);
    assert_ne!(bobs, network, "Bob has his own network");
}

/// The targets of [`users_reach_neither_each_other_nor_the_host_nor_metadata`], shown
/// reachable from a container on the engine's default bridge (no Weft network, no Weft
/// firewall): the fake metadata service and a service of the host's (its port).
fn targets_reachable_from_the_default_bridge() -> (FakeMetadata, u16) {
    docker::require();
    for image in ["weft/jupyter:2", "weft/code-server:2"] {
        assert!(
            docker::docker(&["image", "inspect", image]).0,
            "{image} is missing: run tests/run.sh (it builds it)"
        );
    }
    let metadata = FakeMetadata::start();
    let host_port = host_service();
    assert!(
        from_default_bridge(METADATA, 80).contains("metadata-secret"),
        "the fake metadata service answers containers on the default bridge"
    );
    assert!(
        from_default_bridge("gateway", host_port).contains("host-secret"),
        "the host service answers containers on the default bridge"
    );
    (metadata, host_port)
}

/// Alice's Jupyter and code-server sessions' containers, once both are ready.
#[track_caller]
fn alices_sessions<'a>(
    server: &'a TestServer,
    alice: &'a str,
) -> impl Future<Output = (Value, Value)> + 'a {
    let caller = std::panic::Location::caller();
    async move {
        let notes = server.project(alice, "notes").await;
        let code = server.project(alice, "code").await;
        for (project, kind) in [(&notes, "jupyter"), (&code, "code-server")] {
            let (status, opened) = server.open_session(alice, project, kind).await;
            crate::support::expect_status(caller, status, StatusCode::CREATED, &opened);
        }
        (
            session_container(server, alice, &notes).await,
            session_container(server, alice, &code).await,
        )
    }
}

/// Another user's Jupyter and code-server, the host's services through the bridge's gateway
/// and the metadata service are all out of reach of a user's kernel (its own server answers);
/// a user's own sessions do not reach each other either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_reach_neither_each_other_nor_the_host_nor_metadata() {
    let (_metadata, host_port) = targets_reachable_from_the_default_bridge();
    // Three servers and a kernel start on a CI machine running other tests: generous
    // timeouts, as the pool's tests have.
    let (server, _cleanup): (TestServer, Cleanup) = docker::server(Backend::Sqlite, |c| {
        c.workspaces.start_timeout_secs = 240;
        c.workspaces.memory = "512Mi".into();
        c.notebooks.kernel_start_timeout_secs = 180;
    })
    .await;
    let (alice_id, alice) = server.user("alice").await;
    let (_, bob) = server.user("bob").await;
    let attack = server.project(&bob, "attack").await;
    let (jupyter, code_server) = alices_sessions(&server, &alice).await;
    let (network, jupyter_ip) = network_of(&jupyter);
    let (code_network, code_ip) = network_of(&code_server);
    assert_eq!(network, code_network, "one network per user");
    assert_eq!(network, weft::container::network::name(&alice_id));

    // Alice's own containers do not reach each other either (inter-container traffic off).
    let (_, out, err) = docker::docker(&[
        "exec",
        code_server["Id"].as_str().unwrap(),
        "bash",
        "-c",
        &format!(
            "timeout 5 bash -c 'echo > /dev/tcp/{jupyter_ip}/8888' && echo open || echo closed"
        ),
    ]);
    assert_eq!(out.trim(), "closed", "{err}");

    // Bob, from his own kernel: his own server answers; nothing else does.
    let targets = format!(
        "TARGETS = [('127.0.0.1', 8888), ('{jupyter_ip}', 8888), ('{code_ip}', 8888), \
         ('gateway', {host_port}), ('{gateway_a}', {host_port}), ('{METADATA}', 80)]\n",
        gateway_a = subnet_of(&inspect_network(&network))
            .hosts()
            .next()
            .unwrap(),
    );
    let out = in_kernel(&server, &bob, &attack, &format!("{targets}{PROBE}")).await;
    let results: Value = serde_json::from_str(out.trim()).expect("the probe's JSON");
    assert_eq!(results["('127.0.0.1', 8888)"], "open", "{results}");
    for (target, outcome) in results.as_object().unwrap() {
        if !target.contains("127.0.0.1") {
            assert_ne!(outcome, "open", "Bob reached {target}: {results}");
        }
    }
    let bob_container = session_container(&server, &bob, &attack).await;
    assert_ne!(
        network_of(&bob_container).0,
        network,
        "Bob has his own network"
    );
}

/// A server allowing only `weft-test/busybox:*` with a disk limit of 20 MiB (checked every
/// second), user bob (id, token).
async fn limited_server() -> (TestServer, Cleanup, String, String) {
    let (server, cleanup) = docker::server(Backend::Sqlite, |c| {
        c.containers.allowed_images = vec!["weft-test/busybox:*".into()];
        c.containers.disk_limit = "20Mi".into();
        c.containers.disk_check_interval_secs = 1;
    })
    .await;
    let (bob_id, bob) = server.user("bob").await;
    (server, cleanup, bob_id, bob)
}

/// `POST /containers` as `token` with `body`.
async fn create_as(server: &TestServer, token: &str, body: Value) -> (StatusCode, Value) {
    send(
        server
            .with_token(token, Method::POST, "/api/v1/containers")
            .json(&body),
    )
    .await
}

/// An image on the engine but not on the allowed list is refused (10301), before anything is
/// made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_not_allowed_is_refused() {
    let (server, _cleanup, _, bob) = limited_server().await;
    let create = |body: Value| create_as(&server, &bob, body);
    // An image on the engine but not on the list is refused, before anything is made.
    let (status, body) = create(json!({ "image": "weft-test/healthy:1" })).await;
    assert_error(status, &body, 403, "10301");
    assert_eq!(body["details"]["image"], "weft-test/healthy:1");
    assert!(body["hint"].as_str().unwrap().contains("allowed_images"));
    let (status, listed) = send(server.with_token(&bob, Method::GET, "/api/v1/containers")).await;
    assert_eq!((status, listed), (StatusCode::OK, json!([])));
}

/// The workspace images keep their own (non-root) user; an image whose user is root runs as
/// nobody, with the ulimits; a user's containers share his network, removed by reconciliation
/// once he has none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containers_run_as_nobody_on_their_users_network() {
    let (server, _cleanup, bob_id, bob) = limited_server().await;
    let create = |body: Value| create_as(&server, &bob, body);
    // The workspace images are always allowed, and keep their own (non-root) user.
    let (status, jupyter) = create(json!({
        "image": "weft/jupyter:2", "command": ["sleep", "100000"],
        "resources": { "memory": "64Mi" }
    }))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{jupyter}");
    let jupyter_engine = jupyter["engine_id"].as_str().unwrap();
    let (_, uid, _) = docker::docker(&["exec", jupyter_engine, "id", "-u"]);
    assert_eq!(uid.trim(), "1000");

    // An image whose user is root runs as nobody, with the ulimits.
    let (status, busybox) = create(json!({
        "image": "weft-test/busybox:1",
        "command": ["sh", "-c", "echo uid=$(id -u) gid=$(id -g) nofile=$(ulimit -n) fsize=$(ulimit -f); exec sleep 100000"],
        "resources": { "memory": "64Mi" }
    }))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{busybox}");
    let engine = busybox["engine_id"].as_str().unwrap();
    let (_, logs, _) = docker::docker(&["logs", engine]);
    assert!(
        logs.starts_with("uid=65534 gid=65534 nofile=4096 fsize="),
        "{logs}"
    );
    assert!(!logs.contains("unlimited"), "{logs}");
    assert_eq!(inspect(engine).unwrap()["Config"]["User"], "65534:65534");

    // Both are on Bob's network.
    let network = weft::container::network::name(&bob_id);
    for id in [jupyter_engine, engine] {
        assert_eq!(network_of(&inspect(id).unwrap()).0, network);
    }

    for c in [&jupyter, &busybox] {
        let (status, _) = send(server.with_token(
            &bob,
            Method::DELETE,
            &format!("/api/v1/containers/{}", c["id"].as_str().unwrap()),
        ))
        .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
    }
    let report = server.state.containers.reconcile().await.unwrap();
    assert_eq!(report.networks_removed, 1, "{report:?}");
    assert!(!docker::docker(&["network", "inspect", &network]).0);
}

/// A container writing past the disk limit is stopped (by the engine where it can limit a
/// layer, else by the watcher, which says why); the others are left alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writing_past_the_disk_limit_is_stopped() {
    let (server, _cleanup, _, bob) = limited_server().await;
    let create = |body: Value| create_as(&server, &bob, body);
    let (status, busybox) = create(json!({
        "image": "weft-test/busybox:1", "command": ["sleep", "100000"],
        "resources": { "memory": "64Mi" }
    }))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{busybox}");
    // Writing past the disk limit: the engine here cannot limit a layer, so the watcher stops
    let (status, report) = send(server.with_token(&bob, Method::GET, "/api/v1/resources")).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let (_, info, _) = docker::docker(&["info", "--format", "{{json .DriverStatus}}"]);
    let mode = if info.contains("xfs") {
        "engine"
    } else {
        "watcher"
    };
    assert_eq!(
        report["engine"]["disk_quota"],
        json!({ "mode": mode, "limit": "20Mi" })
    );
    let (status, writer) = create(json!({
        "image": "weft-test/busybox:1",
        "command": ["sh", "-c", "for i in 1 2 3 4 5 6 7 8; do dd if=/dev/zero of=/tmp/f$i bs=1M count=5; done; exec sleep 100000"],
        "resources": { "memory": "64Mi" }
    }))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{writer}");
    let writer_id = writer["id"].as_str().unwrap();
    let (now, _) = wait::until(
        "something to stop a container writing past its disk limit",
        Duration::from_secs(60),
        || async {
            let (_, now) = send(server.with_token(
                &bob,
                Method::GET,
                &format!("/api/v1/containers/{writer_id}"),
            ))
            .await;
            let (_, _, written) = docker::docker(&["logs", writer["engine_id"].as_str().unwrap()]);
            // The engine refuses the write past the limit; the watcher stops the container.
            let stopped = match mode {
                "engine" => written.contains("exceeded"),
                _ => now["status"] != "running",
            };
            if stopped {
                Ok((now, written))
            } else {
                Err((now, written))
            }
        },
    )
    .await;
    if mode == "watcher" {
        assert_eq!(now["status"], "failed", "{now}");
        assert!(
            now["error"]
                .as_str()
                .unwrap()
                .contains("over the disk limit of 20Mi"),
            "{now}"
        );
    }
    // The others were left alone.
    let (status, still) = send(server.with_token(
        &bob,
        Method::GET,
        &format!("/api/v1/containers/{}", busybox["id"].as_str().unwrap()),
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{still}");
    assert_eq!(still["status"], "running", "{still}");
}
