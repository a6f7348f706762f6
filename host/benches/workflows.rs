//! Workflow engine benchmark, modelled on Windmill's published one: prints figures, asserts nothing.
//!
//! `cargo bench -p weft --bench workflows` starts Weft in-process on its default SQLite store
//! (a fresh data folder) and measures, through the HTTP API:
//! - a sequential chain of 40 `fibo(10)` nodes and one of 400, from the execute request to the
//!   run's `run_finished` event (every state change persisted on the way);
//! - a 1,000-node fan-out/fan-in (one root, 998 parallel nodes, one sink);
//! - validation of a 10,000-node DAG (`POST /api/v1/workflows/validate`).
//!
//! `cargo bench -p weft --bench workflows -- memory` measures memory instead: the host's peak
//! resident memory (`VmHWM`, reset before each case) while nodes of the `big-output` test
//! fixture (a real compiled plugin) return a 40 MB `[0,0,...]` JSON array each: one node, six
//! in parallel, one whose output feeds a next node, then reading the six-node run back with
//! `GET /api/v1/runs/{id}`. Goal: the peak grows by less than twice the data.
//!
//! For reference: Windmill published 2.09 s (its fastest mode) and Hatchet 1.22 s for the 40
//! chain, and 19.7 s for Windmill's 400 chain.

use serde_json::{Value, json};
use std::time::{Duration, Instant};
use weft::state::AppState;
use weft::workflow::Event;

mod common;
#[path = "../../tests/e2e/support/fixtures.rs"]
#[allow(unreachable_pub)] // shared with the tests, whose support modules are `pub`
mod fixtures;

fn main() -> anyhow::Result<()> {
    if std::env::args().any(|a| a == "memory") {
        return common::run(memory());
    }
    common::run(bench())
}

struct Server {
    base: String,
    token: String,
    state: AppState,
    http: reqwest::Client,
}

impl Server {
    async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let response = self
            .http
            .post(format!("{}/api/v1{path}", self.base))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await?;
        let status = response.status();
        let body: Value = response.json().await?;
        anyhow::ensure!(status.is_success(), "{path}: {status} {body}");
        Ok(body)
    }

    /// Uploads a plugin component.
    async fn upload(&self, component: Vec<u8>) -> anyhow::Result<()> {
        self.http
            .post(format!("{}/api/v1/plugins", self.base))
            .bearer_auth(&self.token)
            .header("content-type", "application/wasm")
            .body(component)
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    }

    /// Milliseconds from the execute request to the run's `run_finished` event.
    async fn run_once(&self, workflow_id: &str) -> anyhow::Result<f64> {
        let mut events = self.state.workflows.events().subscribe();
        let start = Instant::now();
        let run = self
            .post(&format!("/workflows/{workflow_id}/execute"), &json!({}))
            .await?;
        let run_id = run["id"].as_str().unwrap_or_default().to_string();
        self.wait(&mut events, &run_id).await?;
        Ok(start.elapsed().as_secs_f64() * 1e3)
    }

    /// Waits for run `run_id`'s `run_finished` event, which must say it succeeded.
    async fn wait(
        &self,
        events: &mut tokio::sync::broadcast::Receiver<std::sync::Arc<weft::workflow::RunEvent>>,
        run_id: &str,
    ) -> anyhow::Result<()> {
        loop {
            let event = events.recv().await?;
            if event.run_id == run_id
                && let Event::RunFinished { status, error } = &event.event
            {
                anyhow::ensure!(
                    status.as_str() == "succeeded",
                    "run {run_id} {}: {error:?}",
                    status.as_str()
                );
                return Ok(());
            }
        }
    }
}

fn fibo(id: String) -> Value {
    json!({"id": id, "type": "fibo", "config": {"n": 10}})
}

fn chain(n: usize) -> Value {
    let nodes: Vec<Value> = (0..n).map(|i| fibo(format!("f{i}"))).collect();
    let edges: Vec<Value> = (1..n)
        .map(|i| json!({"source": format!("f{}", i - 1), "target": format!("f{i}")}))
        .collect();
    json!({"name": format!("chain of {n}"), "nodes": nodes, "edges": edges})
}

fn fan(width: usize) -> Value {
    let mut nodes = vec![fibo("root".into()), fibo("sink".into())];
    let mut edges = Vec::new();
    for i in 0..width {
        let id = format!("f{i}");
        nodes.push(fibo(id.clone()));
        edges.push(json!({"source": "root", "target": id}));
        edges.push(json!({"source": id, "target": "sink"}));
    }
    json!({"name": format!("fan of {width}"), "nodes": nodes, "edges": edges})
}

/// A layered DAG: every node after the first depends on its predecessor and on node i/2.
fn big_dag(n: usize) -> Value {
    let nodes: Vec<Value> = (0..n).map(|i| fibo(format!("n{i}"))).collect();
    let mut edges = Vec::new();
    for i in 1..n {
        edges.push(json!({"source": format!("n{}", i - 1), "target": format!("n{i}")}));
        if i / 2 != i - 1 {
            edges.push(json!({"source": format!("n{}", i / 2), "target": format!("n{i}")}));
        }
    }
    json!({"name": "big", "nodes": nodes, "edges": edges})
}

fn stats(mut samples: Vec<f64>) -> String {
    samples.sort_by(f64::total_cmp);
    let median = samples[samples.len() / 2];
    format!(
        "median {median:8.1} ms  min {:8.1} ms  max {:8.1} ms  ({} runs)",
        samples[0],
        samples[samples.len() - 1],
        samples.len()
    )
}

async fn start() -> anyhow::Result<(common::Local, Server)> {
    let local = common::serve(|config| {
        config.api.max_body_bytes = 8 << 20;
        config.workflows.max_parallel_nodes = 16;
        config.plugins.cache_dir = Some(fixtures::shared_cache_dir());
    })
    .await?;
    let server = Server {
        base: local.base.clone(),
        token: local.token.clone(),
        state: local.state.clone(),
        http: reqwest::Client::new(),
    };
    Ok((local, server))
}

async fn bench() -> anyhow::Result<()> {
    let (_local, server) = start().await?;

    println!("Weft workflow engine, SQLite store, fibo(10) nodes, submit -> run finished:");
    for (label, definition, runs) in [
        ("chain of 40", chain(40), 30),
        ("chain of 400", chain(400), 5),
        ("fan-out/in of 1,000", fan(998), 5),
    ] {
        let nodes = definition["nodes"].as_array().map_or(0, Vec::len);
        let created = server.post("/workflows", &definition).await?;
        let id = created["id"].as_str().unwrap_or_default().to_string();
        server.run_once(&id).await?; // warm-up
        let mut samples = Vec::new();
        for _ in 0..runs {
            samples.push(server.run_once(&id).await?);
        }
        let per_node = samples.iter().copied().fold(f64::MAX, f64::min) / nodes as f64;
        println!(
            "  {label:<22} {}  best {per_node:.3} ms/node",
            stats(samples)
        );
    }

    let dag = big_dag(10_000);
    let edges = dag["edges"].as_array().map_or(0, Vec::len);
    let mut samples = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        server.post("/workflows/validate", &dag).await?;
        samples.push(start.elapsed().as_secs_f64() * 1e3);
    }
    println!(
        "  validate 10,000 nodes / {edges} edges: {}",
        stats(samples)
    );
    println!(
        "Reference: Windmill 2.09 s and Hatchet 1.22 s for the 40 chain; Windmill 19.7 s for 400."
    );
    tokio::time::sleep(Duration::from_millis(10)).await;
    Ok(())
}

/// Elements of each big output: `[0,0,...]` of 40,000,001 bytes.
const ZEROS: usize = 20_000_000;

fn big(id: &str) -> Value {
    json!({"id": id, "type": "big-output", "config": {"zeros": ZEROS}})
}

/// Bytes of the files under `path`.
fn disk_bytes(path: &std::path::Path) -> u64 {
    std::fs::read_dir(path)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| match entry.metadata() {
            Ok(m) if m.is_dir() => disk_bytes(&entry.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// Forgets the process's peak resident memory: `VmHWM` restarts from the current `VmRSS`.
fn reset_peak() -> anyhow::Result<()> {
    std::fs::write("/proc/self/clear_refs", "5")?;
    Ok(())
}

/// The memory run: see the module's documentation.
async fn memory() -> anyhow::Result<()> {
    let (local, server) = start().await?;
    for fixture in ["big-output", "echo-node"] {
        server.upload(fixtures::fixture(fixture)).await?;
    }
    // The echo node holds its input and its output at once.
    let limits = json!({"memory_bytes": 256 << 20});
    server
        .http
        .put(format!("{}/api/v1/plugins/echo-node/limits", server.base))
        .bearer_auth(&server.token)
        .json(&limits)
        .send()
        .await?
        .error_for_status()?;
    let data_dir = local.state.config.data_dir.clone();
    let data_mb = (2 * ZEROS + 1) as f64 / 1e6;
    println!(
        "Weft workflow memory, SQLite store, `big-output` nodes returning {data_mb:.0} MB of JSON each:"
    );
    println!(
        "  {:<28} {:>8} {:>9} {:>9} {:>7} {:>9} {:>10}",
        "case", "data MB", "before MB", "peak MB", "growth", "time ms", "stored MB"
    );
    let parallel: Vec<Value> = (0..6).map(|i| big(&format!("b{i}"))).collect();
    let cases = [
        (
            "one node",
            json!({"name": "one", "nodes": [big("b0")], "edges": []}),
            1,
        ),
        (
            "six nodes in parallel",
            json!({"name": "six", "nodes": parallel, "edges": []}),
            6,
        ),
        (
            "one node -> echo-node",
            json!({"name": "pass", "nodes": [big("b0"), {"id": "echo", "type": "echo-node"}],
            "edges": [{"source": "b0", "target": "echo", "target_port": "in"}]}),
            2,
        ),
    ];
    let mut six_run = String::new();
    for (label, definition, outputs) in cases {
        let created = server.post("/workflows", &definition).await?;
        let id = created["id"].as_str().unwrap_or_default().to_string();
        let stored_before = disk_bytes(&data_dir);
        let mut events = server.state.workflows.events().subscribe();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let before = common::status_mb("VmRSS");
        reset_peak()?;
        let start = Instant::now();
        let run = server
            .post(&format!("/workflows/{id}/execute"), &json!({}))
            .await?;
        let run_id = run["id"].as_str().unwrap_or_default().to_string();
        server.wait(&mut events, &run_id).await?;
        let ms = start.elapsed().as_secs_f64() * 1e3;
        let peak = common::status_mb("VmHWM");
        let data = data_mb * outputs as f64;
        let stored = disk_bytes(&data_dir).saturating_sub(stored_before) as f64 / 1e6;
        println!(
            "  {label:<28} {data:>8.0} {before:>9.0} {peak:>9.0} {:>6.2}x {ms:>9.0} {stored:>10.0}",
            (peak - before) / data
        );
        if outputs == 6 {
            six_run = run_id;
        }
    }
    // Reading the six-node run back: the run itself, then each of its outputs.
    let paths: Vec<String> = std::iter::once(format!("/runs/{six_run}"))
        .chain((0..6).map(|i| format!("/runs/{six_run}/nodes/b{i}/outputs/out")))
        .collect();
    for (label, paths) in [
        ("GET the six-node run", &paths[..1]),
        ("GET its six outputs", &paths[1..]),
    ] {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let before = common::status_mb("VmRSS");
        reset_peak()?;
        let start = Instant::now();
        let mut received = 0;
        for path in paths {
            let mut response = server
                .http
                .get(format!("{}/api/v1{path}", server.base))
                .bearer_auth(&server.token)
                .send()
                .await?
                .error_for_status()?;
            while let Some(chunk) = response.chunk().await? {
                received += chunk.len();
            }
        }
        let ms = start.elapsed().as_secs_f64() * 1e3;
        let peak = common::status_mb("VmHWM");
        let data = data_mb * 6.0;
        println!(
            "  {label:<28} {data:>8.0} {before:>9.0} {peak:>9.0} {:>6.2}x {ms:>9.0} {:>10}",
            (peak - before) / data,
            format!("{:.1} MB read", received as f64 / 1e6)
        );
    }
    println!(
        "growth = (peak - before) / data, the values' size; stored = what the data folder grew \
         by (database and files)."
    );
    Ok(())
}
