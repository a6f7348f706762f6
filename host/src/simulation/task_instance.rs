//! A SwarmPilot TaskInstance simulator (`weft task-instance`): serves one model, runs queued
//! tasks in order with service times drawn from a distribution, and reports each completion
//! to the scheduler. Tests and the benchmark use it as a real instance process would be used.
//!
//! It speaks SwarmPilot's TaskInstance protocol as SwarmPilot's scheduler (its
//! `TaskInstanceClient`) reads it, not Weft's own reading: `/info` answers `deployed_model`
//! and `queue_info`, it registers with `{"host", "port"}` only, and it names itself in its
//! reports by `host:port`, as SwarmPilot's instances do (`--report-as uuid` for the ti_uuid).

use crate::scheduler::client::HttpClient;
use crate::scheduler::raw::RawJson;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// How long a task takes, drawn per task.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum ServiceTime {
    /// Always this many ms.
    Constant(f64),
    /// Exponential with this mean (ms).
    Exponential(f64),
    /// Normal (clamped at 0) with this mean and standard deviation (ms).
    Normal(f64, f64),
    /// Uniform between the two bounds (ms).
    Uniform(f64, f64),
}

impl FromStr for ServiceTime {
    type Err = String;

    /// `50ms`, `const:50ms`, `exp:50ms`, `normal:50ms,10ms` or `uniform:10ms,90ms`.
    fn from_str(text: &str) -> Result<Self, String> {
        let ms = |t: &str| -> Result<f64, String> {
            humantime::parse_duration(t.trim())
                .map(|d| d.as_secs_f64() * 1e3)
                .map_err(|e| format!("'{t}' is not a duration (like 50ms or 1.5s): {e}"))
        };
        let (kind, args) = text.split_once(':').unwrap_or(("const", text));
        let pair = |args: &str| -> Result<(f64, f64), String> {
            let (a, b) = args
                .split_once(',')
                .ok_or_else(|| format!("'{kind}' takes two durations: {kind}:A,B"))?;
            Ok((ms(a)?, ms(b)?))
        };
        match kind {
            "const" => Ok(Self::Constant(ms(args)?)),
            "exp" => Ok(Self::Exponential(ms(args)?)),
            "normal" => pair(args).map(|(m, s)| Self::Normal(m, s)),
            "uniform" => {
                let (lo, hi) = pair(args)?;
                if lo > hi {
                    return Err("uniform:A,B needs A <= B".into());
                }
                Ok(Self::Uniform(lo, hi))
            }
            other => Err(format!(
                "unknown distribution '{other}': use const, exp, normal or uniform"
            )),
        }
    }
}

impl ServiceTime {
    /// One draw, in ms.
    pub(crate) fn sample(&self, rng: &mut impl rand::Rng) -> f64 {
        let u: f64 = rng.random_range(f64::EPSILON..1.0);
        match *self {
            Self::Constant(ms) => ms,
            Self::Exponential(mean) => -mean * u.ln(),
            Self::Normal(mean, sd) => {
                let v: f64 = rng.random();
                let z = (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos();
                (mean + sd * z).max(0.0)
            }
            Self::Uniform(lo, hi) => lo + (hi - lo) * u,
        }
    }

    /// Mean and standard deviation, in ms.
    pub(crate) fn moments(&self) -> (f64, f64) {
        match *self {
            Self::Constant(ms) => (ms, 0.0),
            Self::Exponential(mean) => (mean, mean),
            Self::Normal(mean, sd) => (mean, sd),
            Self::Uniform(lo, hi) => ((lo + hi) / 2.0, (hi - lo) / 12f64.sqrt()),
        }
    }
}

/// What the simulated instance serves and where it reports.
#[derive(Debug, Clone)]
pub(crate) struct SimConfig {
    pub model: String,
    pub service: ServiceTime,
    /// Tasks run at once.
    pub workers: usize,
    /// Base URL of the scheduler to notify of completions.
    pub scheduler: Option<String>,
    /// Token for the scheduler: an admin's registers the instance; completions are sent
    /// with the secret the registration returned instead, when there is one.
    pub token: Option<String>,
    /// Finished tasks whose results `GET /results/{task_id}` still answers (the newest).
    pub keep_results: usize,
    /// How it names itself in its reports.
    pub report_as: ReportAs,
    /// Its `host:port` as registered.
    pub address: String,
}

/// How an instance names itself when it reports a finished task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ReportAs {
    /// `host:port`, as registered (SwarmPilot's instances).
    Address,
    /// The ti_uuid the scheduler gave it.
    Uuid,
    /// It reports nothing: an instance that loses its reports.
    None,
}

struct Job {
    task_id: String,
    task_input: RawJson,
    ti_uuid: Option<String>,
    /// Unix seconds.
    enqueued: f64,
}

struct Sim {
    config: SimConfig,
    jobs: mpsc::UnboundedSender<Job>,
    /// Tasks queued or running.
    queued: AtomicU64,
    done: AtomicU64,
    results: Mutex<Results>,
    ti_uuid: InstanceId,
    /// The secret from the registration, once registered.
    secret: Arc<Mutex<Option<String>>>,
    http: HttpClient,
    started: std::time::Instant,
}

/// The id the scheduler gave an instance, from registering or from its submits; shown on
/// `/info` and used to report completions. Clones share it.
#[derive(Clone, Default)]
pub(crate) struct InstanceId(Arc<Mutex<Option<String>>>);

impl InstanceId {
    pub(crate) fn get(&self) -> Option<String> {
        self.0.lock().expect("id lock").clone()
    }

    pub(crate) fn set(&self, id: &str) {
        let mut current = self.0.lock().expect("id lock");
        if current.as_deref() != Some(id) {
            *current = Some(id.to_string());
        }
    }
}

/// What a registration answered: the instance's id, and the secret it reports completions
/// with (when the scheduler handed one out).
pub(crate) struct Registration {
    pub ti_uuid: String,
    pub secret: Option<String>,
}

/// Serves the simulator on `listener` until `shutdown` resolves.
pub(crate) async fn serve(
    listener: TcpListener,
    config: SimConfig,
    ti_uuid: InstanceId,
    secret: Arc<Mutex<Option<String>>>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (jobs, rx) = mpsc::unbounded_channel();
    let sim = Arc::new(Sim {
        jobs,
        queued: AtomicU64::new(0),
        done: AtomicU64::new(0),
        results: Mutex::new(Results::new(config.keep_results)),
        ti_uuid,
        secret,
        http: HttpClient::new(Duration::from_secs(30)),
        started: std::time::Instant::now(),
        config,
    });
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    for _ in 0..sim.config.workers.max(1) {
        tokio::spawn(work(sim.clone(), rx.clone()));
    }
    let app = Router::new()
        .route("/info", get(info))
        .route("/health", get(info))
        .route("/queue/submit", post(submit))
        .route("/queue/predict", post(predict))
        .route("/queue/status", get(status))
        .route("/results/{task_id}", get(result))
        .with_state(sim);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}

/// Registers an instance at `addr` with the scheduler, with the seed's body: the scheduler
/// learns the model from `/info`.
pub(crate) async fn register(
    scheduler: &str,
    token: Option<&str>,
    addr: std::net::SocketAddr,
) -> anyhow::Result<Registration> {
    let mut request = reqwest::Client::new()
        .post(format!("{}/ti/register", scheduler.trim_end_matches('/')))
        .json(&json!({"host": addr.ip().to_string(), "port": addr.port()}));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let body: Value = request.send().await?.json().await?;
    match (body["status"].as_str(), body["ti_uuid"].as_str()) {
        (Some("success"), Some(id)) => Ok(Registration {
            ti_uuid: id.to_string(),
            secret: body["ti_secret"].as_str().map(str::to_string),
        }),
        _ => anyhow::bail!("the scheduler refused the registration: {body}"),
    }
}

/// SwarmPilot's `InstanceInfoResponse`.
async fn info(State(sim): State<Arc<Sim>>) -> Json<Value> {
    let queued = sim.queued.load(Ordering::Relaxed);
    Json(json!({
        "status": "success",
        "timestamp": unix_now(),
        "deployed_model": {"model_name": sim.config.model, "replicas": sim.config.workers},
        "queue_info": {"length_of_queue": queued},
        "instance_status": if queued > 0 { "running" } else { "idle" },
        "uptime": sim.started.elapsed().as_secs_f64(),
    }))
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

#[derive(Deserialize)]
struct Submit {
    task_id: String,
    #[serde(default)]
    model_name: Option<String>,
    #[serde(default = "RawJson::empty_object")]
    task_input: RawJson,
    #[serde(default)]
    ti_uuid: Option<String>,
}

/// What a task returns: its input, echoed.
#[derive(Serialize)]
struct Output<'a> {
    model: &'a str,
    output: &'a RawJson,
}

/// SwarmPilot's `TaskResult` (times in seconds, durations in ms).
#[derive(Serialize)]
struct Finished<'a> {
    task_id: &'a str,
    result: &'a Output<'a>,
    status: &'static str,
    error: Option<&'a str>,
    enqueue_time: f64,
    completion_time: f64,
    wait_time: f64,
    execution_time: f64,
    total_time: f64,
}

#[derive(Serialize)]
struct Report<'a> {
    task_id: &'a str,
    instance_id: &'a str,
    execution_time: f64,
    result: &'a Output<'a>,
}

async fn submit(State(sim): State<Arc<Sim>>, body: axum::body::Bytes) -> Response {
    let job: Submit = match serde_json::from_slice(&body) {
        Ok(job) => job,
        Err(e) => {
            return (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(json!({"status": "error", "message": format!("bad submit: {e}")})),
            )
                .into_response();
        }
    };
    if let Some(model) = &job.model_name
        && model != &sim.config.model
    {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"status": "error", "message": format!("this instance serves '{}', not '{model}'", sim.config.model)})),
        )
            .into_response();
    }
    if let Some(id) = &job.ti_uuid {
        sim.ti_uuid.set(id);
    }
    let queue_size = sim.queued.fetch_add(1, Ordering::Relaxed) + 1;
    let task_id = job.task_id.clone();
    let _ = sim.jobs.send(Job {
        task_id: job.task_id,
        task_input: job.task_input,
        ti_uuid: job.ti_uuid,
        enqueued: unix_now(),
    });
    Json(json!({"status": "success", "task_id": task_id, "queue_size": queue_size})).into_response()
}

async fn predict(State(sim): State<Arc<Sim>>) -> Json<Value> {
    let queued = sim.queued.load(Ordering::Relaxed);
    let (mean, sd) = sim.config.service.moments();
    let ahead = (queued + 1) as f64 / sim.config.workers.max(1) as f64;
    Json(json!({
        "expected_ms": mean * ahead,
        "error_ms": sd * ahead.sqrt(),
        "queue_size": queued,
    }))
}

/// SwarmPilot's `QueueStatusResponse`.
async fn status(State(sim): State<Arc<Sim>>) -> Json<Value> {
    let queued = sim.queued.load(Ordering::Relaxed);
    let (mean, sd) = sim.config.service.moments();
    let ahead = queued as f64 / sim.config.workers.max(1) as f64;
    Json(json!({
        "queue_size": queued,
        "model_type": sim.config.model,
        "expected_ms": mean * ahead,
        "error_ms": sd * ahead.sqrt(),
    }))
}

async fn result(State(sim): State<Arc<Sim>>, Path(task_id): Path<String>) -> Response {
    let results = sim.results.lock().expect("results lock");
    match results.get(&task_id) {
        Some(r) => ([(header::CONTENT_TYPE, "application/json")], r.to_string()).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({
                "status": "error",
                "message": format!(
                    "no result for task '{task_id}' (results of the last {} finished tasks are kept)",
                    results.capacity
                ),
            })),
        )
            .into_response(),
    }
}

/// Each finished task's `GET /results/{task_id}` answer, the newest `capacity` of them: an
/// instance that runs for days must not grow without bound.
struct Results {
    answers: HashMap<String, String>,
    /// Task ids, oldest first.
    order: VecDeque<String>,
    capacity: usize,
}

impl Results {
    fn new(capacity: usize) -> Self {
        Self {
            answers: HashMap::new(),
            order: VecDeque::new(),
            capacity,
        }
    }

    fn get(&self, task_id: &str) -> Option<&str> {
        self.answers.get(task_id).map(String::as_str)
    }

    /// Keeps `answer`, forgetting the oldest result past capacity.
    fn insert(&mut self, task_id: String, answer: String) {
        if self.capacity == 0 {
            return;
        }
        if self.answers.insert(task_id.clone(), answer).is_none() {
            self.order.push_back(task_id);
        }
        while self.order.len() > self.capacity {
            if let Some(oldest) = self.order.pop_front() {
                self.answers.remove(&oldest);
            }
        }
    }
}

async fn work(sim: Arc<Sim>, rx: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Job>>>) {
    loop {
        let Some(job) = rx.lock().await.recv().await else {
            return;
        };
        let started = unix_now();
        let ms = sim.config.service.sample(&mut rand::rng());
        if ms > 0.0 {
            tokio::time::sleep(Duration::from_secs_f64(ms / 1e3)).await;
        }
        let output = Output {
            model: &sim.config.model,
            output: &job.task_input,
        };
        let completion_time = unix_now();
        let finished = Finished {
            task_id: &job.task_id,
            result: &output,
            status: "completed",
            error: None,
            enqueue_time: job.enqueued,
            completion_time,
            wait_time: (started - job.enqueued).max(0.0) * 1e3,
            execution_time: ms,
            total_time: (completion_time - job.enqueued).max(0.0) * 1e3,
        };
        let answer = serde_json::to_string(&finished).unwrap_or_default();
        sim.results
            .lock()
            .expect("results lock")
            .insert(job.task_id.clone(), answer);
        sim.queued.fetch_sub(1, Ordering::Relaxed);
        sim.done.fetch_add(1, Ordering::Relaxed);
        let instance = match sim.config.report_as {
            ReportAs::Address => Some(sim.config.address.clone()),
            ReportAs::Uuid => job.ti_uuid.clone().or_else(|| sim.ti_uuid.get()),
            ReportAs::None => None,
        };
        if let (Some(_), Some(instance)) = (&sim.config.scheduler, instance) {
            let report = Report {
                task_id: &job.task_id,
                instance_id: &instance,
                execution_time: ms,
                result: &output,
            };
            let body = serde_json::to_vec(&report).unwrap_or_default().into();
            // Reported on the side: the next task starts while the report is on its way.
            tokio::spawn(notify(sim.clone(), job.task_id, body));
        }
    }
}

/// Reports a completion, retrying a few times while the scheduler cannot be reached.
async fn notify(sim: Arc<Sim>, task_id: String, body: bytes::Bytes) {
    let Some(scheduler) = &sim.config.scheduler else {
        return;
    };
    let url = format!("{}/result/submit", scheduler.trim_end_matches('/'));
    let secret = sim.secret.lock().expect("secret lock").clone();
    let credential = secret.as_deref().or(sim.config.token.as_deref());
    for attempt in 0..5u32 {
        match sim
            .http
            .call(Method::POST, &url, Some(body.clone()), credential)
            .await
        {
            Ok((status, _)) if status.is_success() => return,
            Ok((status, _)) => {
                tracing::warn!(task = %task_id, %status, "the scheduler refused a completion");
                return;
            }
            Err(err) => {
                tracing::warn!(task = %task_id, %err, attempt, "cannot reach the scheduler");
                tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_distributions_and_refuses_nonsense() {
        assert_eq!("50ms".parse(), Ok(ServiceTime::Constant(50.0)));
        assert_eq!("exp:1s".parse(), Ok(ServiceTime::Exponential(1000.0)));
        assert_eq!(
            "normal:50ms,10ms".parse(),
            Ok(ServiceTime::Normal(50.0, 10.0))
        );
        assert!("uniform:90ms,10ms".parse::<ServiceTime>().is_err());
        assert!("gamma:1ms".parse::<ServiceTime>().is_err());
        assert!("exp:fast".parse::<ServiceTime>().is_err());
    }

    #[test]
    fn results_keep_the_newest_and_forget_the_oldest() {
        let mut results = Results::new(2);
        results.insert("a".into(), "1".into());
        results.insert("b".into(), "2".into());
        results.insert("a".into(), "1 again".into());
        assert_eq!(results.get("a"), Some("1 again"));
        results.insert("c".into(), "3".into());
        assert_eq!(results.get("a"), None, "the oldest is forgotten");
        assert_eq!((results.get("b"), results.get("c")), (Some("2"), Some("3")));
        assert_eq!(results.answers.len(), results.order.len());
        let mut none = Results::new(0);
        none.insert("a".into(), "1".into());
        assert_eq!(none.get("a"), None);
    }

    #[test]
    fn samples_match_their_moments() {
        let mut rng = rand::rng();
        for dist in [
            ServiceTime::Exponential(40.0),
            ServiceTime::Normal(40.0, 5.0),
            ServiceTime::Uniform(20.0, 60.0),
        ] {
            let n = 20_000;
            let mean = (0..n).map(|_| dist.sample(&mut rng)).sum::<f64>() / n as f64;
            assert!((mean - 40.0).abs() < 2.0, "{dist:?}: mean {mean}");
        }
    }
}
