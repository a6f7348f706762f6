//! Scheduler benchmark: prints figures, asserts nothing.
//!
//! `cargo bench -p weft --bench scheduler` serves Weft (its router, on the default SQLite store)
//! on a runtime of its own in this process, starts 8 simulated task instances as one
//! `weft task-instance --instances 8` process (instant service time, every completion
//! reported back), and for each built-in strategy submits tasks through `POST /queue/submit`
//! from 64 keep-alive HTTP/1.1 connections driven by one thread (like `wrk -t1 -c64`), in
//! three rounds. It prints, from the round with the median scheduler CPU per task:
//! - submits per second (each answered after its task is stored and accepted by its instance);
//! - the strategy's decision latency p50 / p99 (the `select` call, measured by the scheduler
//!   from when the warm instance is free: calls to one strategy instance take turns);
//! - the submit round trip p50 / p99 seen by the clients (queueing under load included);
//! - CPU time per task of the scheduler (every thread of Weft's: HTTP, strategy, SQLite), of
//!   the instances and of the load generator, and from the scheduler's share the submits per
//!   second it would sustain on 2 cores of its own (for the median and the best round: on a
//!   shared machine other work only adds to a round's CPU time).
//!
//! As Weft is configured by default, the clients send a user's token (in the `x-weft-token`
//! header) and the instances, registered with an admin's token, report with the secret their
//! registration returned. `WEFT_BENCH_TRUSTED=1` trusts loopback instead: no tokens at all.
//!
//! Targets: decision p99 under 1 ms, over 10,000 submits/s on 2 cores. The scheduler, the
//! instances and the clients share this machine's cores, so the first figure is a lower bound.
//!
//! `cargo bench -p weft --bench scheduler -- memory` measures memory instead: 1,000,000 tasks
//! to instances that report every completion, then 1,000,000 to instances that report none
//! (`weft task-instance --report-as none`: their tasks fail after `task_timeout_secs`, set to
//! 10 s here), printing after every 100,000 the process's resident memory, the tasks the
//! scheduler holds unfinished, and the submit rate and latency. Target: flat memory in both.

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use serde_json::json;
use std::io::BufRead as _;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

const INSTANCES: usize = 8;
const CLIENTS: usize = 64;
const WARMUP: usize = 5_000;
const ROUNDS: usize = 3;
/// Submits per round.
const SUBMITS: usize = 20_000;
/// Tasks per phase of the memory run, and how often it prints.
const MEMORY_TASKS: usize = 1_000_000;
const MEMORY_STEP: usize = 100_000;
/// `task_timeout_secs` in the memory run.
const MEMORY_TIMEOUT_SECS: u64 = 10;
const STRATEGIES: [&str; 4] = [
    "round-robin",
    "shortest-expected-wait",
    "power-of-two-choices",
    "probabilistic",
];

#[allow(dead_code)] // this bench builds its own runtimes
mod common;

fn main() -> anyhow::Result<()> {
    let weft = tokio::runtime::Builder::new_multi_thread()
        .thread_name("weft")
        .enable_all()
        .build()?;
    let trusted = std::env::var_os("WEFT_BENCH_TRUSTED").is_some();
    let memory_run = std::env::args().any(|a| a == "memory");
    let local = weft.block_on(common::serve(|c| {
        if trusted {
            c.scheduler.trusted_networks = vec!["127.0.0.0/8".parse().expect("a network")];
        }
        c.scheduler.task_timeout_secs = MEMORY_TIMEOUT_SECS;
    }))?;
    // The load generator: this (main) thread alone, so its CPU time is told apart.
    let load = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    if memory_run {
        return load.block_on(memory(&local));
    }
    let instances = Instances::start(&local.base, &local.token, "bench", "address")?;
    load.block_on(bench(&local, &instances))
}

/// The memory run: see the module's documentation.
async fn memory(local: &common::Local) -> anyhow::Result<()> {
    let (base, admin, state) = (&local.base, &local.token, &local.state);
    let addr: std::net::SocketAddr = base.trim_start_matches("http://").parse()?;
    let http = reqwest::Client::new();
    let client_token = match state.config.scheduler.trusted_networks.is_empty() {
        true => Some(user_token(&http, base, admin).await?),
        false => None,
    };
    println!(
        "scheduler memory: {MEMORY_TASKS} tasks per phase from {CLIENTS} clients to {INSTANCES} \
         simulated instances; tasks unreported for {MEMORY_TIMEOUT_SECS} s fail"
    );
    println!(
        "{:<11} {:>9}  {:>7}  {:>10}  {:>9}  {:>17}",
        "instances", "tasks", "RSS MB", "unfinished", "submits/s", "submit p50/p99 ms"
    );
    for (model, report_as) in [("reporting", "address"), ("silent", "none")] {
        let _instances = Instances::start(base, admin, model, report_as)?;
        let body = Bytes::from(format!(
            r#"{{"model_name":"{model}","task_input":{{"prompt":"hi"}},"metadata":{{}}}}"#
        ));
        for done in (MEMORY_STEP..=MEMORY_TASKS).step_by(MEMORY_STEP) {
            let started = Instant::now();
            let trips = submit_all(addr, client_token.as_deref(), MEMORY_STEP, &body).await?;
            let rate = MEMORY_STEP as f64 / started.elapsed().as_secs_f64();
            println!(
                "{model:<11} {done:>9}  {:>7.0}  {:>10}  {rate:>9.0}  {:>8.2} / {:>6.2}",
                common::status_mb("VmRSS"),
                state.scheduler.unfinished(),
                percentile(&trips, 0.5),
                percentile(&trips, 0.99),
            );
        }
    }
    Ok(())
}

async fn bench(local: &common::Local, instances: &Instances) -> anyhow::Result<()> {
    let (base, admin, state) = (&local.base, &local.token, &local.state);
    let registered = state.scheduler.instances().len();
    anyhow::ensure!(registered == INSTANCES, "{registered} instances registered");
    let addr: std::net::SocketAddr = base.trim_start_matches("http://").parse()?;
    let http = reqwest::Client::new();
    let client_token = match state.config.scheduler.trusted_networks.is_empty() {
        true => Some(user_token(&http, base, admin).await?),
        false => None,
    };
    let token = client_token.as_deref();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "scheduler benchmark: {INSTANCES} simulated instances (one process), {CLIENTS} keep-alive \
         clients on one thread, {ROUNDS} rounds of {SUBMITS} submits per strategy; all on this \
         machine's {cores} cores; {}. Each row is the round with the median scheduler CPU per \
         task; the last column is the best round's (other processes on a shared machine only \
         add to a round's CPU time, never take from it).",
        match token {
            Some(_) => "clients send a user's token, instances their secrets",
            None => "loopback trusted, no tokens",
        }
    );
    println!(
        "{:<24} {:>9}  {:>20}  {:>18}  {:>32}  {:>22}",
        "strategy",
        "submits/s",
        "decision p50/p99 us",
        "submit p50/p99 ms",
        "CPU us/task: sched / TIs / load",
        "sched 2 cores med/best"
    );
    for strategy in STRATEGIES {
        let activated = http
            .put(format!("{base}/api/v1/scheduler/strategies/active"))
            .bearer_auth(admin)
            .json(&json!({"strategy": strategy}))
            .send()
            .await?;
        anyhow::ensure!(activated.status().is_success(), "activate {strategy}");
        submit_all(addr, token, WARMUP, &bench_body()).await?;
        let mut rounds = Vec::with_capacity(ROUNDS);
        for _ in 0..ROUNDS {
            rounds.push(Round::run(addr, token, state, instances).await?);
        }
        rounds.sort_by(|a, b| a.weft.total_cmp(&b.weft));
        let (median, best) = (&rounds[ROUNDS / 2], &rounds[0]);
        println!(
            "{strategy:<24} {:>9.0}  {:>9.1} / {:>8.1}  {:>8.2} / {:>7.2}  {:>14.0} / {:>6.0} / {:>6.0}  {:>12.0} / {:>7.0}",
            median.rate,
            median.decision_us.0,
            median.decision_us.1,
            median.round_trip_ms.0,
            median.round_trip_ms.1,
            median.weft,
            median.tis,
            median.load,
            2e6 / median.weft,
            2e6 / best.weft,
        );
    }
    Ok(())
}

/// The figures of one round of [`SUBMITS`] submits.
struct Round {
    /// Submits per second.
    rate: f64,
    decision_us: (f64, f64),
    round_trip_ms: (f64, f64),
    /// CPU time per task (us) of the scheduler, the instances and the load generator.
    weft: f64,
    tis: f64,
    load: f64,
}

impl Round {
    async fn run(
        addr: std::net::SocketAddr,
        token: Option<&str>,
        state: &weft::state::AppState,
        instances: &Instances,
    ) -> anyhow::Result<Self> {
        state.scheduler.reset_stats();
        let (weft_before, instances_before) = (weft_cpu_ns(), instances.cpu_ns());
        let load_before = thread_cpu_ns(std::process::id(), std::process::id());
        let started = Instant::now();
        let round_trips = submit_all(addr, token, SUBMITS, &bench_body()).await?;
        let seconds = started.elapsed().as_secs_f64();
        let per_task = |ns: u64| ns as f64 / 1e3 / SUBMITS as f64;
        let stats = state.scheduler.stats();
        Ok(Self {
            rate: SUBMITS as f64 / seconds,
            decision_us: (stats.p50_us, stats.p99_us),
            round_trip_ms: (
                percentile(&round_trips, 0.5),
                percentile(&round_trips, 0.99),
            ),
            weft: per_task(weft_cpu_ns() - weft_before),
            tis: per_task(instances.cpu_ns() - instances_before),
            load: per_task(thread_cpu_ns(std::process::id(), std::process::id()) - load_before),
        })
    }
}

/// `n` submits over [`CLIENTS`] connections; every answer must be a success.
/// Returns each submit's round trip in ms.
/// A user and their token, for the clients.
async fn user_token(http: &reqwest::Client, base: &str, admin: &str) -> anyhow::Result<String> {
    let user: serde_json::Value = http
        .post(format!("{base}/api/v1/users"))
        .bearer_auth(admin)
        .json(&json!({"name": "bench-client"}))
        .send()
        .await?
        .json()
        .await?;
    let issued: serde_json::Value = http
        .post(format!("{base}/api/v1/tokens"))
        .bearer_auth(admin)
        .json(&json!({"name": "bench", "user_id": user["id"]}))
        .send()
        .await?
        .json()
        .await?;
    issued["token"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("no token issued: {issued}"))
}

fn bench_body() -> Bytes {
    Bytes::from_static(br#"{"model_name":"bench","task_input":{"prompt":"hi"},"metadata":{}}"#)
}

async fn submit_all(
    addr: std::net::SocketAddr,
    token: Option<&str>,
    n: usize,
    body: &Bytes,
) -> anyhow::Result<Vec<f64>> {
    let next = Arc::new(AtomicUsize::new(0));
    let token = token.map(http::HeaderValue::from_str).transpose()?;
    let clients = (0..CLIENTS).map(|_| {
        let (next, body, token) = (next.clone(), body.clone(), token.clone());
        tokio::spawn(async move {
            let stream = tokio::net::TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            let (mut sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(connection);
            let mut took = Vec::new();
            while next.fetch_add(1, Ordering::Relaxed) < n {
                let mut request = http::Request::post("/queue/submit")
                    .header(http::header::HOST, addr.to_string())
                    .header(http::header::CONTENT_TYPE, "application/json")
                    .body(Full::new(body.clone()))?;
                if let Some(token) = &token {
                    request.headers_mut().insert("x-weft-token", token.clone());
                }
                let started = Instant::now();
                sender.ready().await?;
                let response = sender.send_request(request).await?;
                let status = response.status();
                let answer = response.into_body().collect().await?.to_bytes();
                took.push(started.elapsed().as_secs_f64() * 1e3);
                anyhow::ensure!(
                    status.is_success() && answer.starts_with(br#"{"status":"success""#),
                    "{status}: {}",
                    String::from_utf8_lossy(&answer)
                );
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

/// The simulated instances: one `weft task-instance --instances 8` process serving `model`,
/// registered with the scheduler at `base`, reporting as `report_as` says; stopped when
/// dropped.
struct Instances(Child);

impl Instances {
    fn start(base: &str, admin: &str, model: &str, report_as: &str) -> anyhow::Result<Self> {
        let mut instances = Self(
            Command::new(env!("CARGO_BIN_EXE_weft"))
                .args([
                    "task-instance",
                    "--model",
                    model,
                    "--listen",
                    "127.0.0.1:0",
                    "--report-as",
                    report_as,
                ])
                .args(["--instances", &INSTANCES.to_string(), "--workers", "4"])
                .args([
                    "--service-time",
                    "const:0ms",
                    "--register",
                    "--scheduler",
                    base,
                    "--token",
                    admin,
                ])
                .env("RUST_LOG", "warn")
                .stdout(Stdio::piped())
                .spawn()?,
        );
        let stdout = instances.0.stdout.take().expect("stdout is piped");
        let mut lines = std::io::BufReader::new(stdout).lines();
        let mut registered = 0;
        while registered < INSTANCES {
            let Some(line) = lines.next() else {
                anyhow::bail!(
                    "weft task-instance stopped after registering {registered} instances"
                );
            };
            if line?.starts_with("registered as ") {
                registered += 1;
            }
        }
        // Keep reading, so the process never writes to a closed pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Ok(instances)
    }

    fn cpu_ns(&self) -> u64 {
        process_cpu_ns(self.0.id(), None)
    }
}

impl Drop for Instances {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// CPU time of every thread of this process but the main one (the load generator's): the
/// scheduler's runtime, SQLite's worker threads, the strategy runtime's epoch thread.
fn weft_cpu_ns() -> u64 {
    process_cpu_ns(std::process::id(), Some(std::process::id()))
}

/// CPU time of every thread of `pid` but `except`.
fn process_cpu_ns(pid: u32, except: Option<u32>) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&tid| Some(tid) != except)
        .map(|tid| thread_cpu_ns(pid, tid))
        .sum()
}

/// Nanoseconds thread `tid` of `pid` ran on a CPU (`schedstat`'s first field).
fn thread_cpu_ns(pid: u32, tid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/schedstat"))
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or_default()
}
