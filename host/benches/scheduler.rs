//! Scheduler benchmark: prints figures, asserts nothing.
//!
//! `cargo bench -p weft --bench scheduler` starts Weft in-process on its default SQLite store
//! and 8 simulated task instances (the `weft task-instance` simulator, in-process, instant
//! service time, reporting every completion back), then for each built-in strategy submits
//! tasks through `POST /queue/submit` from 64 concurrent keep-alive clients and prints:
//! - submits per second (each answered after its task is stored and accepted by its instance);
//! - the strategy's decision latency p50 / p99 (the `select` call, measured by the scheduler
//!   from when the warm instance is free: calls to one strategy instance take turns);
//! - the submit round trip p50 / p99 seen by the clients (queueing under load included).
//!
//! Targets: decision p99 under 1 ms, over 10,000 submits/s on 2 cores. Client, scheduler and
//! instances share the machine's cores here, so the figures are a lower bound.

use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;
use weft::scheduler::simulator::{self, ServiceTime, SimConfig};

const INSTANCES: usize = 8;
const CLIENTS: usize = 64;
const WARMUP: usize = 2_000;
const SUBMITS: usize = 20_000;
const STRATEGIES: [&str; 4] = [
    "round-robin",
    "shortest-expected-wait",
    "power-of-two-choices",
    "probabilistic",
];

mod common;

fn main() -> anyhow::Result<()> {
    common::run(bench())
}

async fn bench() -> anyhow::Result<()> {
    let local = common::serve(|_| {}).await?;
    let (base, admin, state) = (&local.base, &local.token, &local.state);
    let http = reqwest::Client::new();

    for _ in 0..INSTANCES {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let sim = SimConfig {
            model: "bench".into(),
            service: ServiceTime::Constant(0.0),
            workers: 4,
            scheduler: Some(base.clone()),
            token: None,
        };
        tokio::spawn(simulator::serve(
            listener,
            sim,
            None,
            std::future::pending(),
        ));
        let (id, _) = state
            .scheduler
            .register("127.0.0.1", addr.port(), None)
            .await?;
        anyhow::ensure!(!id.is_empty());
    }
    println!(
        "scheduler benchmark: {INSTANCES} simulated instances, {CLIENTS} clients, {SUBMITS} submits per strategy"
    );
    for strategy in STRATEGIES {
        let activated = http
            .put(format!("{base}/api/v1/scheduler/strategies/active"))
            .bearer_auth(admin)
            .json(&json!({"strategy": strategy}))
            .send()
            .await?;
        anyhow::ensure!(activated.status().is_success(), "activate {strategy}");
        submit_all(&http, base, WARMUP).await?;
        state.scheduler.reset_stats();
        let started = Instant::now();
        let round_trips = submit_all(&http, base, SUBMITS).await?;
        let seconds = started.elapsed().as_secs_f64();
        let stats = state.scheduler.stats();
        println!(
            "{strategy:<24} {:>6.0} submits/s  decision p50 {:>5.1} us p99 {:>6.1} us ({} decisions)  submit p50 {:>5.1} ms p99 {:>5.1} ms",
            SUBMITS as f64 / seconds,
            stats.p50_us,
            stats.p99_us,
            stats.decisions,
            percentile(&round_trips, 0.5),
            percentile(&round_trips, 0.99),
        );
    }
    Ok(())
}

/// `n` submits from [`CLIENTS`] concurrent clients; every answer must be a success.
/// Returns each submit's round trip in ms.
async fn submit_all(http: &reqwest::Client, base: &str, n: usize) -> anyhow::Result<Vec<f64>> {
    let next = Arc::new(AtomicUsize::new(0));
    let clients = (0..CLIENTS).map(|_| {
        let (http, next) = (http.clone(), next.clone());
        let url = format!("{base}/queue/submit");
        tokio::spawn(async move {
            let mut took = Vec::new();
            while next.fetch_add(1, Ordering::Relaxed) < n {
                let started = Instant::now();
                let answer: serde_json::Value = http
                    .post(&url)
                    .json(&json!({"model_name": "bench", "task_input": {"prompt": "hi"}, "metadata": {}}))
                    .send()
                    .await?
                    .json()
                    .await?;
                took.push(started.elapsed().as_secs_f64() * 1e3);
                anyhow::ensure!(answer["status"] == "success", "{answer}");
            }
            Ok(took)
        })
    });
    let mut all = Vec::with_capacity(n);
    for client in futures::future::join_all(clients).await {
        all.extend(client??);
    }
    all.sort_by(f64::total_cmp);
    Ok(all)
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1]
}
