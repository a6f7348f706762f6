//! Workspace load benchmark: many users working in Jupyter sessions at once, through the real
//! API and session proxy of a real `weft serve` process. Prints figures, asserts nothing.
//!
//! `cargo bench --profile dev -p weft --bench workspaces_load [-- SCENARIO]` runs the `weft`
//! binary of this build on a fresh data folder, makes one Weft user (with a token) per simulated
//! user, and has each, after a think time between steps: create a project, open a Jupyter session
//! (`weft/jupyter:2`, built by `weft image build jupyter`) and wait for `ready` on the session
//! events WebSocket, create a notebook and run `1+1` in it through `/api/v1/notebooks`, write a
//! file through the session proxy (Jupyter's contents API), and stop the session with its sync
//! (checking the file came back). It prints p50/p95/p99 per step, errors by kind, the seed
//! response-time targets of design 001 met or not, Weft's peak RSS and CPU (from `/proc` of the
//! `weft` process), the peak number of the run's containers on the engine, warnings and errors
//! Weft logged, and `weft_session_open_seconds` from `/metrics` when Weft exports it.
//!
//! Scenarios (the design's figures scaled to a 2-core, 24 GiB machine by the environment
//! overrides):
//! - `smoke` (default): 4 users at once; a few minutes.
//! - `class`: 100 users over the run, at most 20 at once (design: 100 users online).
//! - `containers`: 50 users at once, all sessions ready together (design: 50 containers).
//! - `executions`: 20 users at once, all ready before any executes (design: 20 executions).
//!
//! Overrides: `WEFT_LOAD_USERS`, `WEFT_LOAD_CONCURRENCY`, `WEFT_LOAD_THINK_MS`,
//! `WEFT_LOAD_EXECUTIONS` (runs of `1+1` after the first), `WEFT_LOAD_CPU` and
//! `WEFT_LOAD_MEMORY` (each session's limits, default `1` and `384Mi`), `WEFT_LOAD_POOL` (a warm
//! pool of that many Jupyter containers, filled before the users arrive, as an operator would
//! size it for a class; default 0: every open is a cold start). CPU is overcommitted
//! as a class's host would be (`[containers] cpu_overcommit` = the users at once, at least 4):
//! a limit caps use, and starting Jupyter under a small limit (100m) takes it 25 s.

use futures::StreamExt;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, Notify, Semaphore};
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest};
use weft::container::{LABEL_OWNER, POOL_OWNER};

mod common;

const IMAGE: &str = "weft/jupyter:2";
/// Longest wait for a session to be ready, or for the others to be.
const READY_WAIT: Duration = Duration::from_secs(300);

/// One scenario's size.
#[derive(Debug, Clone)]
struct Scenario {
    name: String,
    users: usize,
    concurrency: usize,
    /// All users hold a ready session before any goes on (peak containers and executions).
    together: bool,
    think: Duration,
    executions: usize,
    cpu: String,
    memory: String,
    /// Jupyter containers in the warm pool.
    pool: usize,
}

impl Scenario {
    fn chosen() -> anyhow::Result<Self> {
        let name = std::env::args()
            .skip(1)
            .find(|a| !a.starts_with('-'))
            .or_else(|| std::env::var("WEFT_LOAD_SCENARIO").ok())
            .unwrap_or_else(|| "smoke".into());
        let (users, concurrency, together) = match name.as_str() {
            "smoke" => (4, 4, true),
            "class" => (100, 20, false),
            "containers" => (50, 50, true),
            "executions" => (20, 20, true),
            other => {
                anyhow::bail!("unknown scenario {other}: smoke, class, containers, executions")
            }
        };
        let var = |name: &str| std::env::var(name).ok();
        let number = |name: &str, default: usize| -> anyhow::Result<usize> {
            var(name).map_or(Ok(default), |v| Ok(v.parse()?))
        };
        let users = number("WEFT_LOAD_USERS", users)?;
        let concurrency = number("WEFT_LOAD_CONCURRENCY", concurrency.min(users))?.min(users);
        Ok(Self {
            name,
            users,
            concurrency,
            together: together && concurrency == users,
            think: Duration::from_millis(number("WEFT_LOAD_THINK_MS", 500)? as u64),
            executions: number("WEFT_LOAD_EXECUTIONS", 2)?,
            cpu: var("WEFT_LOAD_CPU").unwrap_or_else(|| "1".into()),
            memory: var("WEFT_LOAD_MEMORY").unwrap_or_else(|| "384Mi".into()),
            pool: number("WEFT_LOAD_POOL", 0)?,
        })
    }
}

fn main() -> anyhow::Result<()> {
    let scenario = Scenario::chosen()?;
    let image = Command::new("docker")
        .args(["image", "inspect", IMAGE])
        .output()?;
    if !image.status.success() {
        println!("workspaces_load skipped: {IMAGE} is not built (weft image build jupyter)");
        return Ok(());
    }
    common::run(bench(scenario))
}

/// Distinct warnings and errors in Weft's log (timestamps cut), with their counts.
fn complaints(log: &std::path::Path) -> BTreeMap<String, usize> {
    let mut found = BTreeMap::new();
    let Ok(file) = std::fs::File::open(log) else {
        return found;
    };
    for line in BufReader::new(file).lines().map_while(Result::ok) {
        let line = strip_ansi(&line);
        for level in [" WARN ", " ERROR "] {
            if let Some(at) = line.find(level) {
                let message = short(&line[at + 1..], 24);
                *found.entry(message).or_default() += 1;
            }
        }
    }
    found
}

fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// What every simulated user shares: where Weft is, and where the figures go.
struct Run {
    scenario: Scenario,
    base: String,
    sessions_port: u16,
    http: reqwest::Client,
    samples: Mutex<BTreeMap<&'static str, Vec<Duration>>>,
    errors: Mutex<BTreeMap<String, usize>>,
    /// Users that reached `ready` (or failed before): the meeting point of `together`.
    arrived: AtomicUsize,
    arrival: Notify,
}

/// A step's failure: the step and the kind of error.
struct Failure {
    step: &'static str,
    kind: String,
}

impl Run {
    async fn record(&self, step: &'static str, took: Duration) {
        self.samples
            .lock()
            .await
            .entry(step)
            .or_default()
            .push(took);
    }

    async fn think(&self) {
        tokio::time::sleep(self.scenario.think).await;
    }

    /// Calls the API as `token`, timing the call as `step`.
    async fn call(
        &self,
        step: &'static str,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, Failure> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let began = Instant::now();
        let answer = answer(step, request).await?;
        self.record(step, began.elapsed()).await;
        Ok(answer)
    }

    async fn arrive(&self) {
        self.arrived.fetch_add(1, Ordering::SeqCst);
        self.arrival.notify_waiters();
    }

    /// Waits until every user arrived (or the wait is over).
    async fn meet(&self) {
        let until = Instant::now() + READY_WAIT;
        loop {
            let notified = self.arrival.notified();
            if self.arrived.load(Ordering::SeqCst) >= self.scenario.users {
                return;
            }
            let left = until.saturating_duration_since(Instant::now());
            if tokio::time::timeout(left, notified).await.is_err() {
                return;
            }
        }
    }
}

/// The JSON answer of `request`, or its failure as `step: kind` (`HTTP 503 10101`, `timeout`).
async fn answer(step: &'static str, request: reqwest::RequestBuilder) -> Result<Value, Failure> {
    let fail = |kind: String| Failure { step, kind };
    let response = request.send().await.map_err(|e| fail(transport(&e)))?;
    let status = response.status();
    let text = response.text().await.map_err(|e| fail(transport(&e)))?;
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    if !status.is_success() {
        let code = body["code"].as_str().unwrap_or_default();
        return Err(fail(format!("HTTP {} {code}", status.as_u16())));
    }
    Ok(body)
}

fn transport(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".into()
    } else if e.is_connect() {
        "connect".into()
    } else {
        "transport".into()
    }
}

/// A user's walk through a session; the user's token.
async fn user(run: Arc<Run>, token: String) -> Result<(), Failure> {
    let project = run
        .call(
            "create project",
            &token,
            reqwest::Method::POST,
            "/api/v1/projects",
            Some(json!({ "name": "load" })),
        )
        .await;
    let reached = match &project {
        Ok(project) => ready(&run, &token, project["id"].as_str().unwrap_or_default()).await,
        Err(_) => Err(Failure {
            step: "create project",
            kind: String::new(),
        }),
    };
    run.arrive().await;
    let project = project?["id"].as_str().unwrap_or_default().to_string();
    let Ok(session) = reached else {
        // A session still waiting to start is not left behind.
        let _ = run
            .http
            .delete(format!("{}/api/v1/projects/{project}/session", run.base))
            .bearer_auth(&token)
            .send()
            .await;
        return reached.map(drop);
    };
    if run.scenario.together {
        run.meet().await;
    }
    run.think().await;
    let working = work(&run, &token, &project, &session).await;
    run.think().await;
    let stopped = run
        .call(
            "stop (sync and remove)",
            &token,
            reqwest::Method::DELETE,
            &format!("/api/v1/projects/{project}/session"),
            None,
        )
        .await;
    working?;
    let stopped = stopped?;
    let synced = stopped["sync"]["written"]
        .as_array()
        .is_some_and(|w| w.iter().any(|f| f == "load.txt"));
    if !synced {
        return Err(Failure {
            step: "stop (sync and remove)",
            kind: "load.txt not synced back".into(),
        });
    }
    Ok(())
}

/// Opens `project`'s session, waiting for `ready` on the events WebSocket: the session's id.
async fn ready(run: &Run, token: &str, project: &str) -> Result<String, Failure> {
    run.think().await;
    let fail = |step, kind: String| Failure { step, kind };
    let mut request = format!(
        "{}/api/v1/sessions/events",
        run.base.replacen("http", "ws", 1)
    )
    .into_client_request()
    .map_err(|e| fail("events", e.to_string()))?;
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {token}")
            .parse()
            .map_err(|_| fail("events", "bad token".into()))?,
    );
    let (mut events, _) = tokio_tungstenite::connect_async(request)
        .await
        .map_err(|e| fail("events", ws_kind(&e)))?;
    let opened = Instant::now();
    let session = run
        .call(
            "open (API answer)",
            token,
            reqwest::Method::POST,
            &format!("/api/v1/projects/{project}/session"),
            Some(json!({ "kind": "jupyter" })),
        )
        .await?;
    let id = session["session_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if session["status"] != "ready" {
        let wait = async {
            while let Some(message) = events.next().await {
                let Ok(tungstenite::Message::Text(text)) = message else {
                    continue;
                };
                let received = chrono::Utc::now();
                let event: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                if event["session_id"] != id.as_str() {
                    continue;
                }
                if let Some(at) = event["at"]
                    .as_str()
                    .and_then(|at| chrono::DateTime::parse_from_rfc3339(at).ok())
                {
                    let late = (received - at.to_utc()).to_std().unwrap_or_default();
                    run.record("status event delivered", late).await;
                }
                match event["status"].as_str() {
                    Some("ready") => return Ok(()),
                    Some("failed") => {
                        let why = event["message"].as_str().unwrap_or_default();
                        return Err(fail("open -> ready", format!("failed: {}", short(why, 8))));
                    }
                    _ => {}
                }
            }
            Err(fail("open -> ready", "events closed".into()))
        };
        tokio::time::timeout(READY_WAIT, wait)
            .await
            .map_err(|_| fail("open -> ready", "timeout".into()))??;
    }
    run.record("open -> ready", opened.elapsed()).await;
    let _ = events.close(None).await;
    Ok(id)
}

fn ws_kind(e: &tungstenite::Error) -> String {
    match e {
        tungstenite::Error::Http(response) => format!("HTTP {}", response.status().as_u16()),
        tungstenite::Error::Io(_) => "connect".into(),
        other => short(&other.to_string(), 8),
    }
}

/// The first `words` of `text`, with ids and numbers kept out so errors group by kind.
fn short(text: &str, words: usize) -> String {
    text.split_whitespace()
        .take(words)
        .map(|w| {
            if w.chars().any(|c| c.is_ascii_digit()) {
                "#"
            } else {
                w
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs `1+1` in a new notebook, then writes `load.txt` through the session proxy.
async fn work(run: &Run, token: &str, project: &str, session: &str) -> Result<(), Failure> {
    let notebook = run
        .call(
            "create notebook",
            token,
            reqwest::Method::POST,
            "/api/v1/notebooks",
            Some(json!({ "project_id": project, "path": "load.ipynb" })),
        )
        .await?;
    let execute = format!(
        "/api/v1/notebooks/{}/execute",
        notebook["id"].as_str().unwrap_or_default()
    );
    for i in 0..=run.scenario.executions {
        let step = if i == 0 {
            "execute 1+1 (kernel start)"
        } else {
            "execute 1+1"
        };
        let answer = run
            .call(
                step,
                token,
                reqwest::Method::POST,
                &execute,
                Some(json!({ "code": "1+1" })),
            )
            .await?;
        if answer["outputs"][0]["data"]["text/plain"] != "2" {
            let status = answer["status"].as_str().unwrap_or("no status");
            return Err(Failure {
                step,
                kind: format!("not 2 ({status})"),
            });
        }
        run.think().await;
    }
    let port = run.sessions_port;
    let request = run
        .http
        .put(format!("http://127.0.0.1:{port}/api/contents/load.txt"))
        .header("host", format!("{session}.localhost:{port}"))
        .bearer_auth(token)
        .json(&json!({ "type": "file", "format": "text", "content": "written under load\n" }));
    let began = Instant::now();
    answer("write file (proxy)", request).await?;
    run.record("write file (proxy)", began.elapsed()).await;
    Ok(())
}

/// What a sampler saw of Weft and the engine while the run went on.
#[derive(Default)]
struct Peaks {
    rss_mb: f64,
    containers: usize,
}

/// Running containers owned by `owners` on the engine.
fn containers_of(owners: &[String]) -> usize {
    let Ok(out) = Command::new("docker")
        .args([
            "ps",
            "--filter",
            "label=weft.owner",
            "--format",
            "{{.Label \"weft.owner\"}}",
        ])
        .output()
    else {
        return 0;
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|owner| owners.iter().any(|o| o == owner))
        .count()
}

async fn bench(scenario: Scenario) -> anyhow::Result<()> {
    let config = format!(
        "[workspaces]\ncpu = \"{}\"\nmemory = \"{}\"\nstart_timeout_secs = 240\n\
         [workspaces.pool]\njupyter = {}\n[containers]\ncpu_overcommit = {}.0\n",
        scenario.cpu,
        scenario.memory,
        scenario.pool,
        (scenario.concurrency + scenario.pool).max(4)
    );
    // Declared before Weft, so dropped after it has stopped (and can refill nothing).
    let _pool = PoolRemoved(scenario.pool > 0);
    let launched = Instant::now();
    let weft = tokio::task::block_in_place(|| common::Process::start(&config))?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(300))
        .build()?;
    let mut users = Vec::new();
    for i in 0..scenario.users {
        let admin = &weft.admin;
        let made = http
            .post(format!("{}/api/v1/users", weft.base))
            .bearer_auth(admin)
            .json(&json!({ "name": format!("load-{i}") }))
            .send()
            .await?
            .error_for_status()?
            .json::<Value>()
            .await?;
        let id = made["id"].as_str().unwrap_or_default().to_string();
        let token = http
            .post(format!("{}/api/v1/tokens", weft.base))
            .bearer_auth(admin)
            .json(&json!({ "name": "load", "user_id": id }))
            .send()
            .await?
            .error_for_status()?
            .json::<Value>()
            .await?;
        users.push((id, token["token"].as_str().unwrap_or_default().to_string()));
    }
    if scenario.pool > 0 {
        pool_filled(&http, &weft, scenario.pool).await?;
        println!(
            "warm pool: {} Jupyter containers started and idle {:.1} s after Weft was launched",
            scenario.pool,
            launched.elapsed().as_secs_f64()
        );
    }
    println!(
        "workspaces_load {}: {} users, at most {} at once{}, think {} ms, {} executions of 1+1 after the first; sessions {} CPU, {} memory; warm pool {}; load average before {}",
        scenario.name,
        scenario.users,
        scenario.concurrency,
        if scenario.together {
            ", all ready before any goes on"
        } else {
            ""
        },
        scenario.think.as_millis(),
        scenario.executions,
        scenario.cpu,
        scenario.memory,
        scenario.pool,
        common::load_average()
    );

    let run = Arc::new(Run {
        scenario: scenario.clone(),
        base: weft.base.clone(),
        sessions_port: weft.sessions_port,
        http,
        samples: Mutex::default(),
        errors: Mutex::default(),
        arrived: AtomicUsize::new(0),
        arrival: Notify::new(),
    });
    let pid = weft.pid();
    // Pooled containers keep the pool's owner label after they are handed over.
    let owners: Vec<String> = users
        .iter()
        .map(|(id, _)| id.clone())
        .chain((scenario.pool > 0).then(|| POOL_OWNER.to_string()))
        .collect();
    let peaks = Arc::new(std::sync::Mutex::new(Peaks::default()));
    let sampling = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let (peaks, sampling) = (peaks.clone(), sampling.clone());
        std::thread::spawn(move || {
            while sampling.load(Ordering::SeqCst) {
                let (rss, containers) = (
                    common::process_status_mb(&pid.to_string(), "VmRSS"),
                    containers_of(&owners),
                );
                if let Ok(mut peaks) = peaks.lock() {
                    peaks.rss_mb = peaks.rss_mb.max(rss);
                    peaks.containers = peaks.containers.max(containers);
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        })
    };
    let cpu_secs = |pid: u32| common::cpu_seconds(&pid.to_string()).0;
    let cpu_before = cpu_secs(pid);
    let began = Instant::now();
    let permits = Arc::new(Semaphore::new(scenario.concurrency));
    let mut walks = Vec::new();
    for (_, token) in users {
        let (run, permits) = (run.clone(), permits.clone());
        walks.push(tokio::spawn(async move {
            let _permit = permits.acquire_owned().await;
            if let Err(failure) = user(run.clone(), token).await {
                *run.errors
                    .lock()
                    .await
                    .entry(format!("{}: {}", failure.step, failure.kind))
                    .or_default() += 1;
            }
        }));
    }
    for walk in walks {
        walk.await?;
    }
    let wall = began.elapsed().as_secs_f64();
    let cpu = cpu_secs(pid) - cpu_before;
    sampling.store(false, Ordering::SeqCst);
    let _ = sampler.join();

    report(
        &run,
        &weft,
        wall,
        cpu,
        &peaks.lock().map_or((0.0, 0), |p| (p.rss_mb, p.containers)),
    )
    .await;
    Ok(())
}

/// Removes the warm pool's containers when dropped: Weft leaves them running when it stops
/// (to adopt them when it starts again), and the next run must start from an empty engine.
struct PoolRemoved(bool);

impl Drop for PoolRemoved {
    fn drop(&mut self) {
        if !self.0 {
            return;
        }
        let label = format!("label={LABEL_OWNER}={POOL_OWNER}");
        let Ok(listed) = Command::new("docker")
            .args(["ps", "-aq", "--filter", &label])
            .output()
        else {
            return;
        };
        let ids = String::from_utf8_lossy(&listed.stdout).into_owned();
        let ids: Vec<&str> = ids.split_whitespace().collect();
        if !ids.is_empty() {
            let _ = Command::new("docker")
                .args(["rm", "-f"])
                .args(&ids)
                .output();
        }
    }
}

/// Waits until `/metrics` shows `size` idle Jupyter containers in the warm pool (a pool fills
/// with starts limited by `max_starting`: minutes for a class-sized pool on 2 cores).
async fn pool_filled(
    http: &reqwest::Client,
    weft: &common::Process,
    size: usize,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        let text = http
            .get(format!("{}/metrics", weft.base))
            .bearer_auth(&weft.admin)
            .send()
            .await?
            .text()
            .await?;
        let idle = text
            .lines()
            .filter(|l| l.starts_with("weft_pool_containers{") && l.contains("kind=\"jupyter\""))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>();
        if idle as usize >= size {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the warm pool held {idle} of {size} containers after 15 min"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1]
}

async fn report(
    run: &Run,
    weft: &common::Process,
    wall: f64,
    cpu: f64,
    (rss, containers): &(f64, usize),
) {
    let samples = run.samples.lock().await;
    let errors = run.errors.lock().await;
    let failed: usize = errors.values().sum();
    println!(
        "{} of {} users finished every step in {wall:.1} s",
        run.scenario.users - failed,
        run.scenario.users
    );
    println!(
        "{:<30} {:>5} {:>9} {:>9} {:>9}",
        "step", "n", "p50 ms", "p95 ms", "p99 ms"
    );
    let mut p95 = BTreeMap::new();
    for (step, durations) in samples.iter() {
        let mut sorted = durations.clone();
        sorted.sort();
        let ms = |q| quantile(&sorted, q).as_secs_f64() * 1e3;
        p95.insert(*step, ms(0.95));
        println!(
            "{step:<30} {:>5} {:>9.0} {:>9.0} {:>9.0}",
            sorted.len(),
            ms(0.5),
            ms(0.95),
            ms(0.99)
        );
    }
    if errors.is_empty() {
        println!("errors: none");
    }
    for (kind, count) in errors.iter() {
        println!("error x{count}: {kind}");
    }
    println!("seed targets (design 001), judged on p95:");
    for (target, step, limit_ms) in [
        ("container create < 30 s", "open -> ready", 30_000.0),
        ("container start < 10 s", "open -> ready", 10_000.0),
        ("stop < 5 s", "stop (sync and remove)", 5_000.0),
        ("simple computation < 1 s", "execute 1+1", 1_000.0),
        ("status update < 500 ms", "status event delivered", 500.0),
    ] {
        match p95.get(step) {
            Some(ms) => println!(
                "  {target:<26} {step:<24} p95 {ms:>7.0} ms  {}",
                if *ms < limit_ms { "met" } else { "UNMET" }
            ),
            None => println!("  {target:<26} not measured (no sample of {step})"),
        }
    }
    println!(
        "weft process: peak RSS {rss:.0} MB, CPU {cpu:.1} s over {wall:.1} s ({:.0}% of one core); peak running containers of the run {containers}; load average after {}",
        cpu / wall * 100.0,
        common::load_average()
    );
    for (message, count) in complaints(&weft.log).iter().take(12) {
        println!("weft log x{count}: {message}");
    }
    session_open_metric(run, weft).await;
}

/// Prints `weft_session_open_seconds` quantiles from `/metrics` (a histogram), if exported.
async fn session_open_metric(run: &Run, weft: &common::Process) {
    let text = match run
        .http
        .get(format!("{}/metrics", weft.base))
        .bearer_auth(&weft.admin)
        .send()
        .await
    {
        Ok(response) => response.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    };
    // Summed over label sets (a kind label, say) by bucket bound.
    let mut buckets: Vec<(f64, f64)> = Vec::new();
    for line in text
        .lines()
        .filter(|l| l.starts_with("weft_session_open_seconds_bucket"))
    {
        let bound = line
            .split("le=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .and_then(|le| {
                if le == "+Inf" {
                    Some(f64::INFINITY)
                } else {
                    le.parse().ok()
                }
            });
        let count = line.rsplit(' ').next().and_then(|n| n.parse::<f64>().ok());
        if let (Some(bound), Some(count)) = (bound, count) {
            match buckets.iter_mut().find(|(le, _)| *le == bound) {
                Some((_, n)) => *n += count,
                None => buckets.push((bound, count)),
            }
        }
    }
    let total = buckets.iter().map(|(_, n)| *n).fold(0.0, f64::max);
    if total == 0.0 {
        println!("/metrics: no weft_session_open_seconds samples");
        return;
    }
    let mut sorted = buckets;
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let at = |q: f64| {
        sorted
            .iter()
            .find(|(_, n)| *n >= q * total)
            .map_or(f64::INFINITY, |(le, _)| *le)
    };
    println!(
        "/metrics weft_session_open_seconds ({total} opens, bucket bounds): p50 <= {} s, p95 <= {} s, p99 <= {} s",
        at(0.5),
        at(0.95),
        at(0.99)
    );
}
