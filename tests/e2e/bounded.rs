//! What a user controls is read with a bound: a workspace of a sparse 50 GiB file and 20,000
//! files, a kernel printing without end, a 90 MiB upload, a 256 MiB MLflow artifact. Each runs against a real `weft`
//! process (the real Docker engine, the real `weft/jupyter:2` image) whose memory is sampled
//! from `/proc`: its anonymous resident memory stays within a bound of where it was, printed
//! by the test with what it measured (and VmHWM, for the record). Also: a user's Jupyter answering a
//! redirect to a host-local address is not followed, and names a project cannot hold are
//! reported and skipped instead of failing every sync.

use crate::support::docker::{self, Cleanup};
use crate::support::{Backend, WeftProcess, assert_error, bootstrap, expect_status, send, weft};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const MIB: u64 = 1024 * 1024;

/// A real `weft serve` on a data folder of its own, with `env` as configuration.
struct Weft {
    process: WeftProcess,
    base: String,
    token: String,
    client: reqwest::Client,
    _data: tempfile::TempDir,
}

impl Weft {
    fn start(env: &[(&str, &str)]) -> Self {
        Self::start_with(env, "")
    }

    /// With `toml` as its configuration file too.
    fn start_with(env: &[(&str, &str)], toml: &str) -> Self {
        let data = tempfile::tempdir().unwrap();
        let dir = data.path().to_str().unwrap().to_string();
        let config = data.path().join("weft.toml");
        std::fs::write(&config, toml).unwrap();
        let token = bootstrap(&["--name", "admin"], &["--data-dir", &dir]);
        let process = WeftProcess::serve(
            weft()
                .env("WEFT_LISTEN", "127.0.0.1:0")
                .env(
                    "WEFT_PLUGINS__CACHE_DIR",
                    crate::support::fixtures::shared_cache_dir(),
                )
                .env("WEFT_WORKSPACES__START_TIMEOUT_SECS", "90")
                .envs(env.iter().copied())
                .arg("--config")
                .arg(&config)
                .args(["serve", "--data-dir", &dir]),
        );
        Self {
            base: process.base_url(),
            process,
            token,
            client: reqwest::Client::new(),
            _data: data,
        }
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = self.request(method, path);
        if let Some(body) = body {
            request = request.json(&body);
        }
        send(request).await
    }

    async fn project(&self, name: &str) -> String {
        let (status, project) = self
            .call(
                Method::POST,
                "/api/v1/projects",
                Some(json!({ "name": name })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{project}");
        project["id"].as_str().unwrap().to_string()
    }

    /// Opens a Jupyter session on `project`, waits until it is ready, and returns it with the
    /// cleanup of its container and its engine id.
    async fn ready_session(&self, project: &str) -> (Value, Cleanup, String) {
        let path = format!("/api/v1/projects/{project}/session");
        let (status, opened) = self
            .call(Method::POST, &path, Some(json!({ "kind": "jupyter" })))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{opened}");
        let session =
            crate::support::wait_for_session(&self.client, &self.base, &self.token, project).await;
        let container = session["container_id"].as_str().unwrap();
        let (_, container) = self
            .call(
                Method::GET,
                &format!("/api/v1/containers/{container}"),
                None,
            )
            .await;
        let engine = container["engine_id"].as_str().unwrap().to_string();
        let install = docker::inspect(&engine).unwrap()["Config"]["Labels"]["weft.install"]
            .as_str()
            .unwrap()
            .to_string();
        (session, Cleanup(install), engine)
    }

    /// Samples the process's memory until the returned sampler is stopped.
    fn watch(&self) -> Sampler {
        Sampler::start(self.process.pid())
    }
}

/// A process's memory, sampled every 10 ms from `/proc/<pid>/status`: the peak of its anonymous
/// resident memory (what data occupies: heap and stacks, not the pages of its own binary that
/// running new code maps in) and its VmHWM (every resident page, peak reset at the start
/// through `clear_refs`).
struct Sampler {
    pid: u32,
    /// Anonymous resident bytes when sampling began.
    before: u64,
    peak: std::sync::Arc<std::sync::atomic::AtomicU64>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// What a [`Sampler`] saw, in bytes.
struct Memory {
    anon_before: u64,
    anon_peak: u64,
    hwm: u64,
}

impl Sampler {
    fn start(pid: u32) -> Self {
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        std::fs::write(format!("/proc/{pid}/clear_refs"), "5")
            .expect("reset the peak resident set (needs Linux 4.0+ and the process's owner)");
        let before = status_bytes(pid, "RssAnon:");
        let peak = std::sync::Arc::new(AtomicU64::new(before));
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let (seen, done) = (peak.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !done.load(Ordering::SeqCst) {
                seen.fetch_max(status_bytes(pid, "RssAnon:"), Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        Self {
            pid,
            before,
            peak,
            stop,
            thread: Some(thread),
        }
    }

    fn stop(mut self) -> Memory {
        use std::sync::atomic::Ordering;
        self.stop.store(true, Ordering::SeqCst);
        self.thread.take().unwrap().join().unwrap();
        Memory {
            anon_before: self.before,
            anon_peak: self
                .peak
                .load(Ordering::SeqCst)
                .max(status_bytes(self.pid, "RssAnon:")),
            hwm: status_bytes(self.pid, "VmHWM:"),
        }
    }
}

impl std::fmt::Display for Memory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "anonymous RSS {} MiB before, peak {} MiB (+{} MiB); VmHWM {} MiB",
            self.anon_before / MIB,
            self.anon_peak / MIB,
            (self.anon_peak - self.anon_before) / MIB,
            self.hwm / MIB
        )
    }
}

impl Memory {
    /// Asserts the anonymous resident memory grew by less than `bound` bytes.
    #[track_caller]
    fn assert_grew_less_than(&self, bound: u64, what: &str) {
        println!("weft during {what}: {self}; bound +{} MiB", bound / MIB);
        assert!(
            self.anon_peak < self.anon_before + bound,
            "{what}: {self}, over the bound of +{} MiB",
            bound / MIB
        );
    }
}

/// A `kB` field of `/proc/<pid>/status`, in bytes.
fn status_bytes(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"));
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap();
    kib * 1024
}

/// Runs `script` with `sh -c` in container `engine` (as the workspace user), asserting it worked.
fn exec(engine: &str, script: &str) {
    let (ok, out, err) = docker::docker(&["exec", engine, "sh", "-c", script]);
    assert!(ok, "{script}: {out} {err}");
}

/// A sparse 50 GiB file and 20,000 small files: the sync reads neither whole, keeps Weft's
/// memory flat, syncs up to the project's file quota, reports the rest, and the session stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_workspace_syncs_in_flat_memory() {
    docker::require();
    let weft = Weft::start(&[
        ("WEFT_WORKSPACES__PROJECT_MAX_FILES", "2000"),
        // Removing a container of 20,000 files takes the engine a while on a busy host.
        ("WEFT_CONTAINERS__ENGINE_TIMEOUT_SECS", "600"),
        // The writable layer may hold the sparse file: the attack is on the sync, not the disk.
        ("WEFT_CONTAINERS__DISK_LIMIT", "64Gi"),
    ]);
    let project = weft.project("huge").await;
    let (_, _cleanup, engine) = weft.ready_session(&project).await;
    let began = Instant::now();
    exec(
        &engine,
        "cd /workspace && truncate -s 50G sparse.bin && mkdir many && cd many && python3 -c '
import os
for d in range(20):
    os.mkdir(str(d))
    for i in range(1000): open(f\"{d}/{i}\", \"w\").write(str(i))'",
    );

    println!("workspace made in {:.1} s", began.elapsed().as_secs_f64());
    let memory = weft.watch();
    let began = Instant::now();
    let (status, report) = weft
        .call(
            Method::POST,
            &format!("/api/v1/projects/{project}/session/sync"),
            None,
        )
        .await;
    let sync_time = began.elapsed();
    let sync_memory = memory.stop();
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["incomplete"], Value::Null, "{report}");
    assert_eq!(report["written_count"], 2000);
    assert_eq!(
        report["refused_count"], 18001,
        "the 50 GiB file and 18,000 files past the quota"
    );
    let refused = report["refused"].as_array().unwrap();
    assert_eq!(refused[0]["path"], "sparse.bin");
    assert!(
        refused[0]["reason"]
            .as_str()
            .unwrap()
            .contains("53687091200 bytes, over the file size limit"),
        "{report}"
    );
    assert!(
        refused[1]["reason"]
            .as_str()
            .unwrap()
            .contains("limit of 2000 files"),
        "{report}"
    );
    assert!(refused.len() <= 100, "the report lists at most 100 paths");

    let memory = weft.watch();
    let began = Instant::now();
    let (status, stopped) = weft
        .call(
            Method::DELETE,
            &format!("/api/v1/projects/{project}/session"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{stopped}");
    assert_eq!(stopped["status"], "stopped");
    assert!(
        stopped["error"].as_str().unwrap().contains("sparse.bin"),
        "the stopped session says what was not synced: {stopped}"
    );
    let stop_memory = memory.stop();
    let stop_time = began.elapsed();

    println!(
        "sync took {:.1} s, stop (a second sync, then the container removed) {:.1} s",
        sync_time.as_secs_f64(),
        stop_time.as_secs_f64()
    );
    sync_memory.assert_grew_less_than(32 * MIB, "the sync");
    stop_memory.assert_grew_less_than(32 * MIB, "the stop");
    let (_, files) = weft
        .call(
            Method::GET,
            &format!("/api/v1/projects/{project}/files"),
            None,
        )
        .await;
    assert_eq!(files.as_array().unwrap().len(), 2000);
}

/// A Weft whose session's Jupyter passes all of a kernel's output (Jupyter passes at most
/// 1 MB/s by default; a user who runs their own server passes all of it, and the session's
/// server here is told to, as theirs would), with a notebook whose kernel answered once: the
/// Weft, the cleanup of its session and the notebook's id.
#[track_caller]
fn loud_notebook() -> impl Future<Output = (Weft, Cleanup, String)> {
    let caller = std::panic::Location::caller();
    async move {
        docker::require();
        let jupyter = weft::config::WorkspacesConfig::default().jupyter;
        let mut command = jupyter.command.clone();
        command.push("--ZMQChannelsWebsocketConnection.limit_rate=False".into());
        let toml = format!(
            "[workspaces.jupyter]\nimage = {:?}\nport = {}\ncommand = {:?}\nready_path = {:?}\n",
            jupyter.image, jupyter.port, command, jupyter.ready_path
        );
        let weft = Weft::start_with(&[("WEFT_NOTEBOOKS__INTERRUPT_GRACE_SECS", "5")], &toml);
        let project = weft.project("loud").await;
        let (_, cleanup, _) = weft.ready_session(&project).await;
        let (status, notebook) = weft
            .call(
                Method::POST,
                "/api/v1/notebooks",
                Some(json!({ "project_id": project, "path": "loud.ipynb" })),
            )
            .await;
        expect_status(caller, status, StatusCode::CREATED, &notebook);
        let id = notebook["id"].as_str().unwrap().to_string();
        let (status, warm) = execute(&weft, &id, "print('warm')", 60.0).await;
        expect_status(caller, status, StatusCode::OK, &warm);
        assert_eq!(warm["truncated"], false, "{caller}: {warm}");
        (weft, cleanup, id)
    }
}

/// Executes `code` in notebook `id` with a timeout of `timeout` seconds.
async fn execute(weft: &Weft, id: &str, code: &str, timeout: f64) -> (StatusCode, Value) {
    weft.call(
        Method::POST,
        &format!("/api/v1/notebooks/{id}/execute"),
        Some(json!({ "code": code, "timeout_secs": timeout })),
    )
    .await
}

/// A kernel printing without end, flushed (a megabyte a print, paced so that the kernel's own
/// server keeps up) for its 30 s timeout: it all reaches Weft, which keeps the last 1 MiB and
/// says the output was truncated (in the answer, the saved notebook and the history), and
/// Weft's memory stays flat.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_flushed_output_is_kept_to_its_last_mebibyte_in_flat_memory() {
    let (weft, _cleanup, id) = loud_notebook().await;
    let memory = weft.watch();
    let (status, loud) = execute(
        &weft,
        &id,
        "import time\nwhile True:\n    print('x' * 1000000, flush=True)\n    time.sleep(0.1)",
        30.0,
    )
    .await;
    let memory = memory.stop();
    assert_eq!(status, StatusCode::OK, "{loud}");
    assert_eq!(loud["status"], "timeout", "{}", loud["message"]);
    assert_eq!(loud["truncated"], true);
    let outputs = loud["outputs"].as_array().unwrap();
    assert_eq!(outputs[0]["output_type"], "display_data");
    assert_eq!(outputs[0]["metadata"]["weft"]["truncated"], true);
    let note = outputs[0]["data"]["text/plain"].as_str().unwrap();
    assert!(note.contains("output truncated"), "{note}");
    let dropped = outputs[0]["metadata"]["weft"]["dropped_bytes"]
        .as_u64()
        .unwrap();
    let kept: usize = outputs[1..].iter().map(|o| o.to_string().len()).sum();
    assert!(kept <= (MIB + 64 * 1024) as usize, "{kept} bytes kept");
    assert!(
        outputs.iter().any(|o| o["output_type"] == "stream"
            && o["text"].as_str().unwrap().contains(&"x".repeat(100000))),
        "the tail of the stream is kept"
    );
    let kinds: Vec<(&Value, &Value)> = outputs
        .iter()
        .map(|o| (&o["output_type"], &o["ename"]))
        .collect();
    assert!(
        outputs.iter().any(|o| o["ename"] == "KeyboardInterrupt"),
        "the interrupt's traceback is kept: {kinds:?}"
    );
    println!(
        "30 s of flushed `print('x' * 1000000)`: {} MiB printed, {} KiB kept",
        dropped / MIB,
        kept / 1024
    );
    assert!(
        dropped > 64 * MIB,
        "far more went through Weft than it may keep"
    );
    memory.assert_grew_less_than(32 * MIB, "30 s of flushed `print('x' * 1000000)`");

    // The saved notebook carries the note and the tail, and the history says truncated.
    let (_, saved) = weft
        .call(Method::GET, &format!("/api/v1/notebooks/{id}"), None)
        .await;
    let cell = &saved["cells"][1];
    assert_eq!(
        cell["outputs"][0]["metadata"]["weft"]["truncated"], true,
        "{cell}"
    );
    let (_, history) = weft
        .call(
            Method::GET,
            &format!("/api/v1/notebooks/{id}/history"),
            None,
        )
        .await;
    assert_eq!(history[0]["truncated"], true);
    assert_eq!(history[1]["truncated"], false);
}

/// `while True: print('x' * 100000)` as such fills the kernel's own buffer (ipykernel sends
/// what was printed between flushes, and a loop this fast outruns them) until its container's
/// memory kills the kernel or its server: Weft's memory stays flat.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unflushed_print_loop_fills_its_kernels_container_not_weft() {
    let (weft, _cleanup, id) = loud_notebook().await;
    let memory = weft.watch();
    let (status, raw) = execute(&weft, &id, "while True:\n    print('x' * 100000)", 30.0).await;
    let memory = memory.stop();
    assert_eq!(status, StatusCode::OK, "{raw}");
    println!(
        "the unflushed loop ended as {}: {}",
        raw["status"], raw["message"]
    );
    // The kernel, or the Jupyter server beside it, is killed by its container's memory limit.
    assert!(
        ["kernel_died", "failed", "timeout"].contains(&raw["status"].as_str().unwrap()),
        "{raw}"
    );
    memory.assert_grew_less_than(32 * MIB, "`while True: print('x' * 100000)`");
}

/// A 90 MiB upload streams to storage and back (memory stays flat); one over the limit is
/// refused while it streams, or at once when its length says so, and the stored file is left
/// as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_stream_within_the_limit() {
    let weft = Weft::start(&[]);
    let project = weft.project("uploads").await;
    let file = format!("/api/v1/projects/{project}/files/data/big.bin");
    let chunks =
        |n: u64, fill: u8| {
            futures::stream::iter((0..n).map(move |_| {
                Ok::<_, std::io::Error>(bytes::Bytes::from(vec![fill; MIB as usize]))
            }))
        };

    let memory = weft.watch();
    let (status, stored) = send(
        weft.request(Method::PUT, &file)
            .body(reqwest::Body::wrap_stream(chunks(90, 1))),
    )
    .await;
    let memory = memory.stop();
    assert_eq!(status, StatusCode::OK, "{stored}");
    assert_eq!(stored["size"], 90 * MIB);
    memory.assert_grew_less_than(32 * MIB, "a 90 MiB upload");

    // Over the limit (100 MiB), without a length: refused once 100 MiB came.
    let (status, body) = send(
        weft.request(Method::PUT, &file)
            .body(reqwest::Body::wrap_stream(chunks(120, 2))),
    )
    .await;
    assert_error(status, &body, 413, "10401");
    // With a length that says so: refused before the body is read.
    let (status, body) = send(
        weft.request(Method::PUT, &file)
            .header("content-length", (101 * MIB).to_string())
            .body(vec![3u8; 16]),
    )
    .await;
    assert_error(status, &body, 413, "10401");
    assert_eq!(body["details"]["size"], 101 * MIB);
    let memory = weft.watch();
    let mut back = weft.request(Method::GET, &file).send().await.unwrap();
    let (mut length, mut unchanged) = (0u64, true);
    while let Some(chunk) = back.chunk().await.unwrap() {
        length += chunk.len() as u64;
        unchanged &= chunk.iter().all(|b| *b == 1);
    }
    memory
        .stop()
        .assert_grew_less_than(32 * MIB, "a 90 MiB download");
    assert_eq!(length, 90 * MIB, "the stored file is unchanged");
    assert!(unchanged);
    let (status, body) = send(
        weft.request(
            Method::PUT,
            &format!("/api/v1/projects/{project}/files/data/big.bin/inside"),
        )
        .body("x"),
    )
    .await;
    // A file is in the way of that folder.
    assert_error(status, &body, 409, "10212");
}

/// A 256 MiB MLflow artifact (generated as it streams) goes up and comes back byte for byte
/// through MLflow's artifact proxy paths while Weft's memory stays flat.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_mlflow_artifact_streams_in_flat_memory() {
    const SIZE_MIB: u64 = 256;
    let weft = Weft::start(&[]);
    let (status, created) = weft
        .call(
            Method::POST,
            "/mlflow/api/2.0/mlflow/experiments/create",
            Some(json!({"name": "big"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let experiment = created["experiment_id"].as_str().unwrap();
    let path = format!("/mlflow/api/2.0/mlflow-artifacts/artifacts/{experiment}/run/big.bin");
    let fill = |mib: u64| (mib % 251) as u8;
    let chunks =
        futures::stream::iter((0..SIZE_MIB).map(move |i| {
            Ok::<_, std::io::Error>(bytes::Bytes::from(vec![fill(i); MIB as usize]))
        }));

    let memory = weft.watch();
    let (status, body) = send(
        weft.request(Method::PUT, &path)
            .body(reqwest::Body::wrap_stream(chunks)),
    )
    .await;
    let memory = memory.stop();
    assert_eq!(status, StatusCode::OK, "{body}");
    memory.assert_grew_less_than(32 * MIB, "a 256 MiB MLflow artifact upload");

    let memory = weft.watch();
    let mut back = weft.request(Method::GET, &path).send().await.unwrap();
    assert_eq!(back.status(), StatusCode::OK);
    let (mut offset, mut identical) = (0u64, true);
    while let Some(chunk) = back.chunk().await.unwrap() {
        for byte in chunk.iter() {
            identical &= *byte == fill(offset / MIB);
            offset += 1;
        }
    }
    memory
        .stop()
        .assert_grew_less_than(32 * MIB, "a 256 MiB MLflow artifact download");
    assert_eq!(offset, SIZE_MIB * MIB);
    assert!(identical, "the artifact comes back byte for byte");
}

/// A TCP server on the host's loopback that counts who reaches it and answers a secret.
async fn host_local_secret() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/secret", listener.local_addr().unwrap());
    let hits = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            let mut buf = [0u8; 4096];
            let _ = socket.read(&mut buf).await;
            let body = "HOST-LOCAL-SECRET";
            let answer = format!(
                "HTTP/1.1 500 Internal Server Error\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(answer.as_bytes()).await;
        }
    });
    (url, hits)
}

/// Fault injection: the session's "Jupyter" is a hostile server (run from the real
/// `weft/jupyter:2` image in place of Jupyter, as a user who took over their server would): it
/// answers Weft's notebook client with a redirect to a host-local address, then with an error
/// page full of control characters. Weft follows no redirect and quotes a short, clean excerpt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_users_jupyter_cannot_redirect_weft() {
    const HOSTILE: &str = r#"
import http.server, sys
base, target = sys.argv[1], sys.argv[2]
class Hostile(http.server.BaseHTTPRequestHandler):
    redirects = 0
    def answer(self, status, body, headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        if self.path.startswith(base + "api/status"):
            return self.answer(200, b"{}")
        # Weft reads the notebook twice before the test's second execution (once to start
        # its kernel in the background, once for the first execution): both are redirected.
        if "api/contents" in self.path and Hostile.redirects < 2:
            Hostile.redirects += 1
            return self.answer(302, b"", [("location", target)])
        self.answer(404, b"{}")
    def do_PUT(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.answer(500, b"\x1b[31mboom\r\n" + b"\x07junk " * 2000)
    do_POST = do_DELETE = do_GET
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("0.0.0.0", 8888), Hostile).serve_forever()
"#;
    docker::require();
    let (secret_url, hits) = host_local_secret().await;
    let (server, _cleanup) = docker::server(Backend::Sqlite, |c| {
        c.workspaces.start_timeout_secs = 90;
        c.workspaces.jupyter.command = vec![
            "/usr/bin/python3".into(),
            "-c".into(),
            HOSTILE.into(),
            // Sessions are served at the root of their own origin.
            "/".into(),
            secret_url.clone(),
        ];
    })
    .await;
    let (_, bob) = server.user("bob").await;
    let project = server.project(&bob, "hostile").await;
    let (status, notebook) = send(
        server
            .with_token(&bob, Method::POST, "/api/v1/notebooks")
            .json(&json!({ "project_id": project, "path": "n.ipynb" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{notebook}");
    let id = notebook["id"].as_str().unwrap();
    let execute = || {
        send(
            server
                .with_token(
                    &bob,
                    Method::POST,
                    &format!("/api/v1/notebooks/{id}/execute"),
                )
                .json(&json!({ "code": "1" })),
        )
    };
    let (status, body) = execute().await;
    assert_error(status, &body, 502, "20101");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("redirects are not followed"), "{message}");
    assert!(!message.contains("HOST-LOCAL-SECRET"), "{message}");
    let (status, body) = execute().await;
    assert_error(status, &body, 502, "20101");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("500") && message.contains("boom junk"),
        "{message}"
    );
    assert!(!message.chars().any(char::is_control), "{message:?}");
    assert!(message.len() < 400, "an excerpt, not the page: {message}");
    assert_eq!(
        hits.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "Weft never reached the host-local address"
    );
}

/// Names a project cannot hold: a stored object whose name part is 256 bytes (an object store
/// takes it, a workspace cannot), a workspace name that is not UTF-8, a file where the project
/// keeps a folder. Each is reported and skipped; the session starts, syncs and stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_a_project_cannot_hold_are_skipped() {
    docker::require();
    // Moto's server, a stand-in for S3: an object store that takes the 256-byte name.
    let s3 = crate::support::s3::S3Server::start().await;
    let (server, _cleanup) = docker::server(Backend::Sqlite, |c| {
        c.workspaces.start_timeout_secs = 90;
        c.workspaces.memory = "512Mi".into();
        s3.store_projects(c, "/");
    })
    .await;
    let (_, bob) = server.user("bob").await;
    let project = server.project(&bob, "odd").await;
    let files = |path: &str| format!("/api/v1/projects/{project}/files/{path}");
    let long = "n".repeat(256);
    let (status, body) = send(
        server
            .with_token(&bob, Method::PUT, &files(&long))
            .body("x"),
    )
    .await;
    assert_error(status, &body, 422, "90402");
    // Stored behind Weft's back, as an older Weft or another tool could have.
    let put = reqwest::Client::new()
        .put(format!("{}/{}/{project}/{long}", s3.endpoint, s3.bucket))
        .body("too long a name")
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success());
    for (path, content) in [("keep.txt", "kept"), ("d/__pycache__/c.pyc", "ignored")] {
        let (status, body) = send(
            server
                .with_token(&bob, Method::PUT, &files(path))
                .body(content),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    let (status, opened) = server.open_session(&bob, &project, "jupyter").await;
    assert_eq!(status, StatusCode::CREATED, "{opened}");
    let engine = server.session_engine_id(&bob, &project).await;
    exec(
        &engine,
        "cd /workspace && python3 -c 'open(b\"caf\\xe9.txt\", \"w\").write(\"latin-1\")' && \
         echo file > d && echo fine > ok.txt",
    );

    let (status, report) = send(server.with_token(
        &bob,
        Method::POST,
        &format!("/api/v1/projects/{project}/session/sync"),
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let refused: Vec<(&str, &str)> = report["refused"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["path"].as_str().unwrap(), r["reason"].as_str().unwrap()))
        .collect();
    assert!(
        refused
            .iter()
            .any(|(p, why)| p.starts_with("caf") && why.contains("UTF-8")),
        "{report}"
    );
    assert!(
        refused
            .iter()
            .any(|(p, why)| *p == "d" && why.contains("folder")),
        "{report}"
    );
    assert_eq!(report["written"], json!(["ok.txt"]), "{report}");
    let (status, stopped) = server.stop_session(&bob, &project).await;
    assert_eq!(status, StatusCode::OK, "{stopped}");
    assert_eq!(stopped["status"], "stopped");
    let mut stored = server.file_paths(&bob, &project).await;
    stored.sort();
    assert_eq!(
        stored,
        ["d/__pycache__/c.pyc", "keep.txt", long.as_str(), "ok.txt"],
        "nothing is lost, nothing lossy is added"
    );
}
