//! Workflow engine benchmark, modelled on Windmill's published one: prints figures, asserts nothing.
//!
//! `cargo bench -p weft --bench workflows` starts Weft in-process on its default SQLite store
//! (a fresh data folder) and measures, through the HTTP API:
//! - a sequential chain of 40 `fibo(10)` nodes and one of 400, from the execute request to the
//!   run's `run_finished` event (every state change persisted on the way);
//! - a 1,000-node fan-out/fan-in (one root, 998 parallel nodes, one sink);
//! - validation of a 10,000-node DAG (`POST /api/v1/workflows/validate`).
//!
//! For reference: Windmill published 2.09 s (its fastest mode) and Hatchet 1.22 s for the 40
//! chain, and 19.7 s for Windmill's 400 chain.

use serde_json::{Value, json};
use std::time::{Duration, Instant};
use weft::state::AppState;
use weft::workflow::Event;

mod common;

fn main() -> anyhow::Result<()> {
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

    /// Milliseconds from the execute request to the run's `run_finished` event.
    async fn run_once(&self, workflow_id: &str) -> anyhow::Result<f64> {
        let mut events = self.state.workflows.events().subscribe();
        let start = Instant::now();
        let run = self
            .post(&format!("/workflows/{workflow_id}/execute"), &json!({}))
            .await?;
        let run_id = run["id"].as_str().unwrap_or_default().to_string();
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
                return Ok(start.elapsed().as_secs_f64() * 1e3);
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

async fn bench() -> anyhow::Result<()> {
    let local = common::serve(|config| {
        config.api.max_body_bytes = 8 << 20;
        config.workflows.max_parallel_nodes = 16;
    })
    .await?;
    let server = Server {
        base: local.base.clone(),
        token: local.token.clone(),
        state: local.state.clone(),
        http: reqwest::Client::new(),
    };

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
