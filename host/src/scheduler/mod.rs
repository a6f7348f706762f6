//! The task scheduler: routes inference tasks for a model to one of the task instances (TIs)
//! serving it, choosing with a WebAssembly strategy that predicts each instance's wait.
//!
//! It speaks SwarmPilot on both sides: clients use the scheduler paths (`routes`), instances
//! the TaskInstance protocol (`instances`). Tasks are stored before they are answered for
//! ([`tasks`]); instances are polled, and the tasks an unreachable one held are routed again
//! or failed with the reason, never dropped. Strategies are hot-swapped (`strategies`).
//!
//! Tasks belong to whoever submitted them: only the owner or an admin sees one ([`Viewer`]),
//! and only the instance a task was sent to reports its completion ([`Reporter`]): from the
//! address it registered, or with the secret its registration returned.

mod access;
pub(crate) mod client;
pub(crate) mod config;
pub(crate) mod instances;
pub(crate) mod raw;
mod records;
mod result_socket;
pub(crate) mod routes;
mod sp_http;
pub(crate) mod strategies;
pub mod tasks;
pub(crate) mod trace;

use crate::error::{Code, Error, Result};
use crate::registry::Plugins;
use crate::store::{Store, now_ms};
use crate::telemetry::Metrics;
use config::SchedulerConfig;
use instances::{TaskInstance, TiClient};
use raw::RawJson;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};
use strategies::Strategies;
use tasks::{TaskRecord, TaskStatus, Writer};
use trace::{TraceEvent, TraceWriter};
use utoipa::ToSchema;

/// The scheduler service; cheap to clone.
#[derive(Clone)]
pub struct Scheduler {
    inner: Arc<Inner>,
}

struct Inner {
    config: SchedulerConfig,
    store: Store,
    client: TiClient,
    instances: RwLock<HashMap<String, TaskInstance>>,
    strategies: Arc<Strategies>,
    /// Unfinished tasks (and finished ones until their record is committed).
    live: Mutex<HashMap<String, TaskRecord>>,
    writer: Writer,
    trace: Option<TraceWriter>,
    decisions: Mutex<VecDeque<f32>>,
    registering: tokio::sync::Mutex<()>,
    metrics: Arc<Metrics>,
}

/// Decision latencies kept for [`Scheduler::stats`].
const KEEP_DECISIONS: usize = 100_000;
/// Instances one task is offered to before it fails.
const MAX_ROUTES: usize = 4;

/// Which tasks a caller may see.
#[derive(Debug, Clone, Copy)]
pub enum Viewer<'a> {
    /// Every task: an admin, or a caller from a trusted network.
    All,
    /// Only the tasks this user submitted.
    Owner(&'a str),
    /// None (an instance, which only reports completions).
    Nobody,
}

impl Viewer<'_> {
    fn sees(&self, task: &TaskRecord) -> bool {
        match self {
            Viewer::All => true,
            Viewer::Owner(user) => task.owner_id.as_deref() == Some(*user),
            Viewer::Nobody => false,
        }
    }
}

/// Who reports a completion, as far as the scheduler can tell.
#[derive(Debug, Clone, Copy)]
pub enum Reporter<'a> {
    /// An admin, or a caller from a trusted network: may report for any instance.
    Admin,
    /// Anyone else: connecting from `peer`, presenting an instance's `secret` if any. Accepted
    /// as the instance it names when `peer` is that instance's registered address (unless
    /// `[scheduler] completions_by_address` is off) or `secret` is its secret.
    Peer {
        /// The reporter's address, when the listener tells it.
        peer: Option<IpAddr>,
        /// The instance secret presented, if any.
        secret: Option<&'a str>,
    },
}

/// Whether a presented credential is an instance's secret rather than an API token.
pub fn is_instance_secret(credential: &str) -> bool {
    credential.starts_with(instances::SECRET_PREFIX)
}

/// The answer to a registration.
#[derive(Debug, Clone)]
pub struct Registered {
    /// The instance's id.
    pub ti_uuid: String,
    /// Whether this registration added the instance (else it was registered already).
    pub created: bool,
    /// A new secret for the instance to report completions with (replacing any earlier one);
    /// shown only here.
    pub secret: Option<String>,
}

/// The answer to a successful submit.
#[derive(Debug, Clone)]
pub struct Submitted {
    /// The task's id.
    pub task_id: String,
    /// The instance the task was routed to.
    pub ti_uuid: String,
}

/// A task as `/task/query` shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TaskView {
    /// The task's id.
    pub task_id: String,
    /// `queued`, `scheduled`, `completed` or `failed`.
    pub task_status: TaskStatus,
    /// The instance the task was routed to last.
    pub scheduled_ti: Option<String>,
    /// Unix seconds.
    pub submit_time: f64,
    #[schema(value_type = Option<Object>)]
    /// What the instance reported, once completed.
    pub result: Option<RawJson>,
    /// The model the task is for.
    pub model_name: String,
    /// Why the task failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Milliseconds, as the instance reported.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution_time: Option<f64>,
}

impl From<&TaskRecord> for TaskView {
    fn from(t: &TaskRecord) -> Self {
        Self {
            task_id: t.task_id.clone(),
            task_status: t.status,
            scheduled_ti: t.ti_uuid.clone(),
            submit_time: t.submit_time as f64 / 1e3,
            result: t.result.clone(),
            model_name: t.model_name.clone(),
            error: t.error.clone(),
            execution_time: t.execution_ms,
        }
    }
}

/// One instance's predicted wait, as `/queue/info` lists it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct QueueItem {
    /// The model the instance serves.
    pub model_name: String,
    /// The instance's id.
    pub ti_uuid: String,
    /// Expected wait in ms.
    pub waiting_time_expect: f64,
    /// Its uncertainty (standard deviation) in ms.
    pub waiting_time_error: f64,
}

/// A completion report from an instance.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct Completion {
    /// The task the report is for.
    pub task_id: String,
    /// The reporting instance's id.
    pub instance_id: String,
    /// Milliseconds the task executed.
    pub execution_time: f64,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    /// The task's result.
    pub result: Option<RawJson>,
    /// Set when the task failed on the instance.
    #[serde(default)]
    pub error: Option<String>,
}

/// Decision latency figures.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DecisionStats {
    /// Decisions measured (the most recent ones are kept).
    pub decisions: usize,
    /// Median decision time, in microseconds.
    pub p50_us: f64,
    /// 99th percentile decision time, in microseconds.
    pub p99_us: f64,
    /// Slowest decision, in microseconds.
    pub max_us: f64,
}

/// An instance in a configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfiguredInstance {
    host: String,
    port: u16,
    #[serde(default)]
    model_name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InstancesFile {
    #[serde(default)]
    instances: Vec<ConfiguredInstance>,
}

impl Scheduler {
    /// Restores instances, unfinished tasks and strategies, then starts health checks.
    pub async fn start(
        store: Store,
        plugins: Plugins,
        config: SchedulerConfig,
        metrics: Arc<Metrics>,
    ) -> Result<Self> {
        let strategies = Arc::new(
            Strategies::start(plugins.clone(), store.clone(), &config.default_strategy).await?,
        );
        plugins.add_users(Arc::<Strategies>::downgrade(&strategies));
        let trace = match &config.trace_path {
            Some(path) => {
                Some(TraceWriter::open(path).map_err(|e| Error::internal(format!("{e:#}")))?)
            }
            None => None,
        };
        let mut known = HashMap::new();
        for mut ti in records::instances(&store).await? {
            ti.addresses = instances::resolve(&ti.host, ti.port).await;
            ti.resolved_at = Some(Instant::now());
            known.insert(ti.ti_uuid.clone(), ti);
        }
        let unfinished = records::unfinished_tasks(&store).await?;
        for task in &unfinished {
            if let Some(ti) = task.ti_uuid.as_ref().and_then(|id| known.get_mut(id)) {
                ti.in_flight += 1;
            }
        }
        let scheduler = Self {
            inner: Arc::new(Inner {
                client: TiClient::new(Duration::from_millis(config.request_timeout_ms)),
                writer: Writer::start(store.clone()),
                config,
                store,
                instances: RwLock::new(known),
                strategies,
                live: Mutex::new(
                    unfinished
                        .iter()
                        .map(|t| (t.task_id.clone(), t.clone()))
                        .collect(),
                ),
                trace,
                decisions: Mutex::default(),
                registering: tokio::sync::Mutex::default(),
                metrics,
            }),
        };
        if let Some(path) = scheduler.inner.config.config_path.clone() {
            scheduler.register_from_file(&path).await?;
        }
        tokio::spawn(health_loop(Arc::downgrade(&scheduler.inner)));
        tokio::spawn(expiry_loop(Arc::downgrade(&scheduler.inner)));
        Ok(scheduler)
    }

    /// The strategy slots, for the admin API.
    pub fn strategies(&self) -> &Strategies {
        &self.inner.strategies
    }

    /// Registers an instance (idempotent for the same host and port). Unless `model_name` is
    /// given, the instance's `/info` names its model. With `issue_secret`, the instance is
    /// given a new secret to report completions with; the one it had before stops working.
    pub async fn register(
        &self,
        host: &str,
        port: u16,
        model_name: Option<&str>,
        issue_secret: bool,
    ) -> Result<Registered> {
        let host = host.trim();
        if host.is_empty() || host.len() > 253 || host.contains(['/', ' ', '?', '#', '@']) {
            return Err(Error::invalid_field(
                "host",
                "must be a host name or an IP address",
            ));
        }
        if port == 0 {
            return Err(Error::invalid_field("port", "must be 1-65535"));
        }
        let model_name = model_name.map(str::trim).filter(|m| !m.is_empty());
        let _one_at_a_time = self.inner.registering.lock().await;
        let existing = self
            .inner
            .instances
            .read()
            .expect("instances lock")
            .values()
            .find(|ti| ti.host == host && ti.port == port)
            .cloned();
        if let Some(ti) = existing {
            if let Some(m) = model_name
                && m != ti.model_name
            {
                return Err(Error::new(
                    Code::SchedulerInstanceExists,
                    format!(
                        "{} is already registered as {} serving model '{}'",
                        ti.url(),
                        ti.ti_uuid,
                        ti.model_name
                    ),
                )
                .hint("remove it first (POST /ti/remove) to register it for another model"));
            }
            let secret = match issue_secret {
                true => Some(self.new_secret(&ti.ti_uuid).await?),
                false => None,
            };
            return Ok(Registered {
                ti_uuid: ti.ti_uuid,
                created: false,
                secret,
            });
        }
        let url = instances::base_url(host, port);
        let info = self.inner.client.info(&url).await.map_err(|reason| {
            Error::new(
                Code::SchedulerInstanceUnreachable,
                format!("cannot reach the task instance at {url}: {reason}"),
            )
            .hint("start the instance first; the scheduler checks its GET /info")
        })?;
        let model = match (model_name, info.model_name.as_deref()) {
            (Some(given), Some(said)) if given != said => {
                return Err(Error::invalid_field(
                    "model_name",
                    format!("the instance at {url} serves '{said}', not '{given}'"),
                ));
            }
            (Some(given), _) => given.to_string(),
            (None, Some(said)) if !said.is_empty() => said.to_string(),
            _ => {
                return Err(Error::invalid_field(
                    "model_name",
                    format!("required: the instance at {url} does not name its model on /info"),
                ));
            }
        };
        let mut ti = TaskInstance::new(
            uuid::Uuid::new_v4().to_string(),
            host.to_string(),
            port,
            model,
        );
        ti.heard(info);
        ti.addresses = instances::resolve(host, port).await;
        ti.resolved_at = Some(Instant::now());
        let secret = issue_secret.then(instances::new_secret);
        ti.secret_hash = secret.as_deref().map(instances::hash_secret);
        records::insert_instance(&self.inner.store, &ti).await?;
        tracing::info!(ti = %ti.ti_uuid, %url, model = %ti.model_name, addresses = ?ti.addresses, "task instance registered");
        let id = ti.ti_uuid.clone();
        self.inner
            .instances
            .write()
            .expect("instances lock")
            .insert(id.clone(), ti);
        Ok(Registered {
            ti_uuid: id,
            created: true,
            secret,
        })
    }

    /// Gives a registered instance a new secret, stored before it takes effect.
    async fn new_secret(&self, ti_uuid: &str) -> Result<String> {
        let secret = instances::new_secret();
        let hash = instances::hash_secret(&secret);
        records::set_instance_secret(&self.inner.store, ti_uuid, &hash).await?;
        if let Some(ti) = self
            .inner
            .instances
            .write()
            .expect("instances lock")
            .get_mut(ti_uuid)
        {
            ti.secret_hash = Some(hash);
        }
        Ok(secret)
    }

    /// The ti_uuid of the instance `id` names: its ti_uuid, or its address as SwarmPilot's
    /// instances send it (`host:port`, as registered).
    pub fn instance_named(&self, id: &str) -> Result<String> {
        let instances = self.inner.instances.read().expect("instances lock");
        if let Some(ti) = instances.get(id.trim()) {
            return Ok(ti.ti_uuid.clone());
        }
        instances
            .values()
            .find(|ti| ti.is_named(id))
            .map(|ti| ti.ti_uuid.clone())
            .ok_or_else(|| {
                Error::new(
                    Code::SchedulerUnknownInstance,
                    format!("Instance {id} not found"),
                )
                .details(serde_json::json!({ "instance_id": id }))
                .hint("instances are named by their ti_uuid or by the host:port they registered")
            })
    }

    /// The ti_uuid of the instance `id` names, if `reporter` may report as that instance.
    pub fn reporting_instance(&self, id: &str, reporter: Reporter<'_>) -> Result<String> {
        let ti_uuid = self.instance_named(id)?;
        self.check_reporter(reporter, &ti_uuid)?;
        Ok(ti_uuid)
    }

    /// Fails unless `reporter` may report completions as instance `instance_id` (a ti_uuid).
    fn check_reporter(&self, reporter: Reporter<'_>, instance_id: &str) -> Result<()> {
        let Reporter::Peer { peer, secret } = reporter else {
            return Ok(());
        };
        let by_address = self.inner.config.completions_by_address;
        let instances = self.inner.instances.read().expect("instances lock");
        let known = instances.get(instance_id).is_some_and(|ti| {
            (by_address && peer.is_some_and(|p| ti.is_at(p)))
                || secret.is_some_and(|s| ti.has_secret(s))
        });
        if known {
            return Ok(());
        }
        let how = if by_address {
            "report from the instance's registered address, or send the secret its registration returned"
        } else {
            "send the secret the instance's registration returned"
        };
        Err(Error::new(
            Code::SchedulerNotInstance,
            format!("only task instance {instance_id} itself reports completions for it"),
        )
        .details(serde_json::json!({
            "instance_id": instance_id,
            "peer": peer.map(|p| p.to_string()),
        }))
        .hint(format!("{how}, or an admin's token")))
    }

    /// Removes an instance; the tasks it held are routed again or failed.
    pub async fn remove(&self, ti_uuid: &str) -> Result<()> {
        let ti_uuid = parse_uuid("ti_uuid", ti_uuid)?;
        let removed = self
            .inner
            .instances
            .write()
            .expect("instances lock")
            .remove(&ti_uuid);
        let Some(ti) = removed else {
            return Err(Error::new(
                Code::SchedulerUnknownInstance,
                format!("no task instance '{ti_uuid}' is registered"),
            )
            .hint("GET /api/v1/scheduler/instances lists them"));
        };
        records::delete_instance(&self.inner.store, &ti_uuid).await?;
        tracing::info!(ti = %ti_uuid, url = %ti.url(), "task instance removed");
        self.reroute_held(&ti_uuid, "its task instance was removed")
            .await;
        Ok(())
    }

    /// Tasks submitted and not finished: what the scheduler holds in memory.
    pub fn unfinished(&self) -> usize {
        self.inner.live.lock().expect("tasks lock").len()
    }

    /// Every registered instance.
    pub fn instances(&self) -> Vec<TaskInstance> {
        let mut all: Vec<_> = self
            .inner
            .instances
            .read()
            .expect("instances lock")
            .values()
            .cloned()
            .collect();
        all.sort_by(|a, b| (&a.model_name, &a.ti_uuid).cmp(&(&b.model_name, &b.ti_uuid)));
        all
    }

    /// Stores a new task of `owner`, routes it and hands it to the chosen instance.
    pub async fn submit(
        &self,
        model_name: &str,
        task_input: RawJson,
        metadata: RawJson,
        owner: Option<&str>,
    ) -> Result<Submitted> {
        if model_name.trim().is_empty() {
            return Err(Error::invalid_field("model_name", "must not be empty"));
        }
        let limit = self.inner.config.max_unfinished_tasks;
        if self.inner.live.lock().expect("tasks lock").len() >= limit {
            return Err(Error::new(
                Code::SchedulerBusy,
                format!("{limit} tasks are unfinished; no more are taken until some finish"),
            )
            .hint("retry later; an admin can raise [scheduler] max_unfinished_tasks"));
        }
        let record = TaskRecord::new(
            model_name.to_string(),
            task_input,
            metadata,
            owner.map(str::to_string),
        );
        let task_id = record.task_id.clone();
        if let Some(trace) = &self.inner.trace {
            trace.record(&TraceEvent::Submit {
                at_ms: trace::now(),
                task_id: task_id.clone(),
                model_name: model_name.to_string(),
            });
        }
        let ti_uuid = match self.route(record, &[]).await {
            Ok(id) => id,
            Err(err) => {
                self.fail_task(&task_id, &err.message).await;
                return Err(err.details(serde_json::json!({ "task_id": task_id })));
            }
        };
        Ok(Submitted { task_id, ti_uuid })
    }

    /// Chooses an instance for `record` (never one in `avoid`) and hands the task over,
    /// trying others when an instance refuses. The caller fails a stored task no one took.
    async fn route(&self, mut record: TaskRecord, avoid: &[String]) -> Result<String> {
        let mut avoid = avoid.to_vec();
        loop {
            let candidates = self.candidates(&record.model_name, &avoid);
            let model = &record.model_name;
            let ti_uuid = if candidates.iter().any(|i| i.healthy) && avoid.len() < MAX_ROUTES {
                self.decide(&record, &candidates).await?
            } else if !avoid.is_empty() {
                return Err(Error::new(
                    Code::SchedulerNoInstance,
                    format!("no healthy task instance serving model '{model}' took the task"),
                ));
            } else if candidates.is_empty() {
                return Err(Error::new(
                    Code::SchedulerNoInstance,
                    format!("no task instance serves model '{model}'"),
                )
                .hint("register one with POST /ti/register"));
            } else {
                return Err(Error::new(
                    Code::SchedulerNoInstance,
                    format!("every task instance serving model '{model}' is unhealthy"),
                )
                .hint("the scheduler routes to them again as soon as they answer /info"));
            };
            let url = self.note_sent(&ti_uuid, 1);
            record.ti_uuid = Some(ti_uuid.clone());
            record.attempts += 1;
            record.status = TaskStatus::Queued;
            // Live before the instance hears of it, so an early completion finds it.
            self.inner
                .live
                .lock()
                .expect("tasks lock")
                .insert(record.task_id.clone(), record.clone());
            let body = instances::Submit {
                task_id: &record.task_id,
                model_name: &record.model_name,
                task_input: &record.task_input,
                metadata: &record.metadata,
                ti_uuid: &ti_uuid,
            };
            match self.inner.client.submit(&url, &body).await {
                Ok(()) => {
                    // Stored before the submit is answered. A crash before the commit leaves
                    // the client without an answer (it retries) and the instance an orphan.
                    let committed = self.update(&record.task_id, |t| {
                        if t.status == TaskStatus::Queued && t.ti_uuid.as_deref() == Some(&ti_uuid)
                        {
                            t.status = TaskStatus::Scheduled;
                        }
                        // The current state is stored even when a completion overtook us.
                        true
                    });
                    if let Some(committed) = committed {
                        committed.wait().await?;
                    }
                    return Ok(ti_uuid);
                }
                Err(reason) => {
                    tracing::warn!(task = %record.task_id, ti = %ti_uuid, %reason, "task instance refused a task; routing it elsewhere");
                    self.note_sent(&ti_uuid, -1);
                    if reason.starts_with("connection") || reason == "timed out" {
                        self.unreachable(&ti_uuid, &reason);
                    }
                    avoid.push(ti_uuid);
                }
            }
        }
    }

    /// The instances serving `model` as a strategy sees them, minus `avoid`.
    fn candidates(&self, model: &str, avoid: &[String]) -> Vec<weft_runtime::Instance> {
        let instances = self.inner.instances.read().expect("instances lock");
        let mut list: Vec<_> = instances
            .values()
            .filter(|ti| ti.model_name == model && !avoid.contains(&ti.ti_uuid))
            .map(TaskInstance::view)
            .collect();
        list.sort_by(|a, b| a.id.cmp(&b.id));
        list
    }

    async fn decide(
        &self,
        record: &TaskRecord,
        candidates: &[weft_runtime::Instance],
    ) -> Result<String> {
        let task = weft_runtime::Task {
            id: record.task_id.clone(),
            model: record.model_name.clone(),
            metadata: record.metadata.get().to_string(),
        };
        let decision = self.inner.strategies.select(&task, candidates).await?;
        self.inner.metrics.workload.decision(&record.model_name);
        let mut decisions = self.inner.decisions.lock().expect("decisions lock");
        if decisions.len() == KEEP_DECISIONS {
            decisions.pop_front();
        }
        decisions.push_back(decision.took.as_secs_f32() * 1e6);
        Ok(decision.instance_id)
    }

    /// Counts a task onto (`+1`) or off (`-1`) an instance; returns the instance's URL.
    fn note_sent(&self, ti_uuid: &str, delta: i32) -> String {
        let mut instances = self.inner.instances.write().expect("instances lock");
        let Some(ti) = instances.get_mut(ti_uuid) else {
            return String::new();
        };
        ti.in_flight = ti.in_flight.saturating_add_signed(delta);
        if let Some(queue) = &mut ti.reported_queue {
            *queue = queue.saturating_add_signed(i64::from(delta));
        }
        if delta > 0 {
            // Its own prediction no longer counts this task.
            ti.reported = None;
        }
        ti.url()
    }

    /// Changes a live task and queues the change for storing; `change` says whether it did.
    fn update(
        &self,
        task_id: &str,
        change: impl FnOnce(&mut TaskRecord) -> bool,
    ) -> Option<tasks::Committed> {
        let mut live = self.inner.live.lock().expect("tasks lock");
        let task = live.get_mut(task_id)?;
        change(task).then(|| self.inner.writer.queue(task.clone()))
    }

    /// Fails a live task with `reason` and forgets it once stored.
    async fn fail_task(&self, task_id: &str, reason: &str) {
        tracing::warn!(task = %task_id, reason, "task failed");
        self.fail_tasks(&[task_id.to_string()], reason).await;
    }

    /// Fails live tasks with `reason`, all queued for storing before any commit is awaited,
    /// and forgets them once stored.
    async fn fail_tasks(&self, task_ids: &[String], reason: &str) {
        let committed: Vec<_> = task_ids
            .iter()
            .filter_map(|id| {
                self.update(id, |t| {
                    t.error = Some(reason.to_string());
                    t.finish(TaskStatus::Failed);
                    true
                })
            })
            .collect();
        for c in committed {
            let _ = c.wait().await;
        }
        let mut live = self.inner.live.lock().expect("tasks lock");
        for id in task_ids {
            live.remove(id);
        }
    }

    /// Fails the tasks submitted longer than `task_timeout_secs` ago that their instance has
    /// not reported: without this, an instance that lost tasks would hold them (and the
    /// scheduler's memory) forever.
    async fn expire_unreported(&self) {
        let timeout_secs = self.inner.config.task_timeout_secs;
        if timeout_secs == 0 {
            return;
        }
        let cutoff =
            now_ms().saturating_sub(i64::try_from(timeout_secs * 1000).unwrap_or(i64::MAX));
        let mut by_instance: HashMap<Option<String>, Vec<String>> = HashMap::new();
        for t in self.inner.live.lock().expect("tasks lock").values() {
            if !t.status.is_finished() && t.submit_time < cutoff {
                by_instance
                    .entry(t.ti_uuid.clone())
                    .or_default()
                    .push(t.task_id.clone());
            }
        }
        for (ti_uuid, expired) in by_instance {
            let instance = ti_uuid.as_deref().unwrap_or("(none)");
            tracing::warn!(
                ti = instance,
                tasks = expired.len(),
                timeout_secs,
                "tasks unreported past their timeout; failed"
            );
            if let Some(ti) = &ti_uuid {
                self.note_sent(ti, -i32::try_from(expired.len()).unwrap_or(i32::MAX));
            }
            let reason = format!(
                "task instance {instance} did not report the task within {timeout_secs} s of its submission (task_timeout_secs)"
            );
            self.fail_tasks(&expired, &reason).await;
        }
    }

    /// Marks an instance unhealthy at once (it refused a connection) and re-routes its tasks.
    fn unreachable(&self, ti_uuid: &str, reason: &str) {
        let newly = {
            let mut instances = self.inner.instances.write().expect("instances lock");
            match instances.get_mut(ti_uuid) {
                Some(ti) if ti.healthy => {
                    ti.healthy = false;
                    ti.failures = self.inner.config.unhealthy_after;
                    true
                }
                _ => false,
            }
        };
        if newly {
            tracing::warn!(ti = %ti_uuid, reason, "task instance unreachable; marked unhealthy");
            let scheduler = self.clone();
            let reason = format!("its task instance became unreachable ({reason})");
            let ti_uuid = ti_uuid.to_string();
            tokio::spawn(async move { scheduler.reroute_held(&ti_uuid, &reason).await });
        }
    }

    /// Routes every unfinished task held by `ti_uuid` to another instance, or fails it.
    async fn reroute_held(&self, ti_uuid: &str, reason: &str) {
        let held: Vec<String> = self
            .inner
            .live
            .lock()
            .expect("tasks lock")
            .values()
            .filter(|t| !t.status.is_finished() && t.ti_uuid.as_deref() == Some(ti_uuid))
            .map(|t| t.task_id.clone())
            .collect();
        if held.is_empty() {
            return;
        }
        tracing::info!(ti = %ti_uuid, tasks = held.len(), reason, "routing held tasks again");
        if let Some(ti) = self
            .inner
            .instances
            .write()
            .expect("instances lock")
            .get_mut(ti_uuid)
        {
            ti.in_flight = 0;
        }
        for task_id in held {
            self.reroute(&task_id, ti_uuid, reason).await;
        }
    }

    /// Routes a stored task again, away from `from`, or fails it with `reason`.
    async fn reroute(&self, task_id: &str, from: &str, reason: &str) {
        let record = self
            .inner
            .live
            .lock()
            .expect("tasks lock")
            .get(task_id)
            .cloned();
        let Some(record) = record else { return };
        if record.status.is_finished() {
            return;
        }
        if let Err(err) = self.route(record, &[from.to_string()]).await {
            self.fail_task(task_id, &format!("{reason}; {}", err.message))
                .await;
        }
    }

    /// Records a completion reported by the instance that ran the task; `reporter` must be
    /// that instance (or an admin), else nothing is looked up.
    pub async fn complete(
        &self,
        mut report: Completion,
        reporter: Reporter<'_>,
    ) -> Result<TaskView> {
        report.instance_id = self.reporting_instance(&report.instance_id, reporter)?;
        let task_id = report.task_id.trim().to_string();
        let outcome = {
            let mut live = self.inner.live.lock().expect("tasks lock");
            match live.get_mut(&task_id) {
                None => None,
                Some(t) => Some(
                    if t.ti_uuid.as_deref() != Some(report.instance_id.as_str()) {
                        Err(wrong_instance(t, &report.instance_id))
                    } else if t.status.is_finished() {
                        Ok((TaskView::from(&*t), None))
                    } else {
                        t.result = report.result.clone();
                        t.execution_ms = Some(report.execution_time);
                        t.error = report.error.clone();
                        t.finish(if report.error.is_some() {
                            TaskStatus::Failed
                        } else {
                            TaskStatus::Completed
                        });
                        Ok((
                            TaskView::from(&*t),
                            Some(self.inner.writer.queue(t.clone())),
                        ))
                    },
                ),
            }
        };
        let (view, committed) = match outcome {
            Some(result) => result?,
            None => {
                let Some(stored) = records::task(&self.inner.store, &task_id).await? else {
                    return Err(task_not_found(&task_id));
                };
                if stored.ti_uuid.as_deref() != Some(report.instance_id.as_str()) {
                    return Err(wrong_instance(&stored, &report.instance_id));
                }
                // Already recorded: a repeated report changes nothing.
                return Ok(TaskView::from(&stored));
            }
        };
        let Some(committed) = committed else {
            return Ok(view);
        };
        committed.wait().await?;
        self.inner.live.lock().expect("tasks lock").remove(&task_id);
        self.note_sent(&report.instance_id, -1);
        self.inner.metrics.workload.completion(&view.model_name);
        if let Some(trace) = &self.inner.trace {
            trace.record(&TraceEvent::Complete {
                at_ms: trace::now(),
                task_id: task_id.clone(),
                instance_id: report.instance_id.clone(),
                execution_ms: report.execution_time,
            });
        }
        let completion = weft_runtime::Completion {
            task_id,
            instance_id: report.instance_id,
            execution_ms: report.execution_time,
            success: report.error.is_none(),
        };
        self.inner
            .strategies
            .observe(&view.model_name, &completion)
            .await;
        Ok(view)
    }

    /// A task by id, live or stored, if `viewer` may see it: a task of someone else's is
    /// answered as one that does not exist.
    pub async fn query(&self, task_id: &str, viewer: Viewer<'_>) -> Result<TaskView> {
        let task_id = task_id.trim();
        if let Some(t) = self.inner.live.lock().expect("tasks lock").get(task_id) {
            return match viewer.sees(t) {
                true => Ok(TaskView::from(t)),
                false => Err(task_not_found(task_id)),
            };
        }
        records::task(&self.inner.store, task_id)
            .await?
            .filter(|t| viewer.sees(t))
            .map(|t| TaskView::from(&t))
            .ok_or_else(|| task_not_found(task_id))
    }

    /// Sets `weft_scheduler_queue_length`: the tasks routed and not finished, per model served.
    pub fn record_queues(&self) {
        let mut lengths: Vec<(String, usize)> = Vec::new();
        for ti in self
            .inner
            .instances
            .read()
            .expect("instances lock")
            .values()
        {
            match lengths.iter_mut().find(|(m, _)| *m == ti.model_name) {
                Some((_, n)) => *n += ti.in_flight as usize,
                None => lengths.push((ti.model_name.clone(), ti.in_flight as usize)),
            }
        }
        self.inner.metrics.workload.set_queues(&lengths);
    }

    /// The predicted wait on every instance (of `model` when given).
    pub async fn queue_info(&self, model: Option<&str>) -> Result<Vec<QueueItem>> {
        let instances: Vec<_> = self
            .instances()
            .into_iter()
            .filter(|ti| model.is_none_or(|m| ti.model_name == m))
            .collect();
        if let Some(m) = model
            && instances.is_empty()
        {
            return Err(Error::new(
                Code::SchedulerUnknownModel,
                format!("no task instance serves model '{m}'"),
            ));
        }
        let mut items = Vec::with_capacity(instances.len());
        for ti in instances {
            let p = self.inner.strategies.predict(&ti.view()).await?;
            items.push(QueueItem {
                model_name: ti.model_name,
                ti_uuid: ti.ti_uuid,
                waiting_time_expect: p.expected_ms,
                waiting_time_error: p.error_ms,
            });
        }
        Ok(items)
    }

    /// Decision latency over the most recent decisions.
    pub fn stats(&self) -> DecisionStats {
        let mut all: Vec<f32> = self
            .inner
            .decisions
            .lock()
            .expect("decisions lock")
            .iter()
            .copied()
            .collect();
        all.sort_by(f32::total_cmp);
        let at = |q: f64| -> f64 {
            if all.is_empty() {
                return 0.0;
            }
            let i = ((all.len() as f64 * q).ceil() as usize).clamp(1, all.len()) - 1;
            f64::from(all[i])
        };
        DecisionStats {
            decisions: all.len(),
            p50_us: at(0.5),
            p99_us: at(0.99),
            max_us: all.last().copied().map(f64::from).unwrap_or_default(),
        }
    }

    /// Starts a new measuring window for [`Scheduler::stats`].
    pub fn reset_stats(&self) {
        self.inner.decisions.lock().expect("decisions lock").clear();
    }

    async fn register_from_file(&self, path: &std::path::Path) -> Result<()> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::internal(format!(
                "cannot read the scheduler config {}: {e}",
                path.display()
            ))
        })?;
        let file: InstancesFile = if path.extension().is_some_and(|e| e == "toml") {
            toml_instances(&text)
        } else {
            serde_norway::from_str(&text).map_err(|e| e.to_string())
        }
        .map_err(|e| {
            Error::internal(format!(
                "the scheduler config {} is invalid: {e}",
                path.display()
            ))
        })?;
        for ti in file.instances {
            match self
                .register(&ti.host, ti.port, ti.model_name.as_deref(), false)
                .await
            {
                Ok(registered) => {
                    tracing::info!(ti = %registered.ti_uuid, host = %ti.host, port = ti.port, "instance from the scheduler config")
                }
                Err(err) => {
                    tracing::warn!(host = %ti.host, port = ti.port, %err, "instance from the scheduler config not registered")
                }
            }
        }
        Ok(())
    }

    /// Looks up again the addresses of instances registered by host name, now and then.
    async fn refresh_addresses(&self) {
        let due: Vec<(String, String, u16)> = self
            .inner
            .instances
            .read()
            .expect("instances lock")
            .values()
            .filter(|ti| ti.needs_resolving())
            .map(|ti| (ti.ti_uuid.clone(), ti.host.clone(), ti.port))
            .collect();
        for (id, host, port) in due {
            let addresses = instances::resolve(&host, port).await;
            if let Some(ti) = self
                .inner
                .instances
                .write()
                .expect("instances lock")
                .get_mut(&id)
            {
                ti.addresses = addresses;
                ti.resolved_at = Some(Instant::now());
            }
        }
    }

    /// One round of health checks.
    async fn check_health(&self) {
        self.refresh_addresses().await;
        let targets: Vec<(String, String)> = self
            .instances()
            .into_iter()
            .map(|ti| (ti.ti_uuid.clone(), ti.url()))
            .collect();
        let client = &self.inner.client;
        let checks = targets.iter().map(|(id, url)| async move {
            let answer = match client.info(url).await {
                Ok(info) if info.is_failing() => Err(format!(
                    "its /info says instance_status '{}'",
                    info.status.as_deref().unwrap_or_default()
                )),
                Ok(info) => Ok((info, client.predict(url).await.ok())),
                Err(reason) => Err(reason),
            };
            (id, answer)
        });
        let results = futures::future::join_all(checks).await;
        let mut lost = Vec::new();
        {
            let mut instances = self.inner.instances.write().expect("instances lock");
            for (id, answer) in results {
                let Some(ti) = instances.get_mut(id) else {
                    continue;
                };
                match answer {
                    Ok((info, reported)) => {
                        if !ti.healthy {
                            tracing::info!(ti = %id, url = %ti.url(), "task instance answers again; healthy");
                        }
                        ti.healthy = true;
                        ti.failures = 0;
                        ti.reported = reported;
                        ti.heard(info);
                    }
                    Err(reason) => {
                        ti.failures = ti.failures.saturating_add(1);
                        if ti.healthy && ti.failures >= self.inner.config.unhealthy_after {
                            ti.healthy = false;
                            tracing::warn!(ti = %id, url = %ti.url(), %reason, "task instance unhealthy");
                            lost.push((id.clone(), reason));
                        }
                    }
                }
            }
        }
        for (id, reason) in lost {
            let why = format!("its task instance became unreachable ({reason})");
            self.reroute_held(&id, &why).await;
        }
    }
}

fn toml_instances(text: &str) -> Result<InstancesFile, String> {
    use figment::providers::{Format as _, Toml};
    figment::Figment::from(Toml::string(text))
        .extract()
        .map_err(|e| e.to_string())
}

/// How often tasks past their timeout are looked for: often, so that each round fails few
/// (a round failing many at once delays the submits whose writes queue behind them).
const EXPIRY_EVERY: Duration = Duration::from_millis(250);

/// Fails unreported tasks past their timeout until the scheduler is dropped.
async fn expiry_loop(inner: Weak<Inner>) {
    loop {
        let Some(inner) = inner.upgrade() else { return };
        Scheduler { inner }.expire_unreported().await;
        tokio::time::sleep(EXPIRY_EVERY).await;
    }
}

/// Polls instances until the scheduler is dropped; purges expired tasks now and then.
async fn health_loop(inner: Weak<Inner>) {
    let mut last_purge: Option<Instant> = None;
    loop {
        let Some(inner) = inner.upgrade() else { return };
        let interval = Duration::from_millis(inner.config.health_interval_ms.max(50));
        let scheduler = Scheduler { inner };
        scheduler.check_health().await;
        let config = &scheduler.inner.config;
        if last_purge.is_none_or(|at: Instant| {
            at.elapsed() >= Duration::from_secs(config.purge_interval_secs)
        }) {
            last_purge = Some(Instant::now());
            let retention_ms = (config.retention_hours.max(0.0) * 3_600_000.0).min(i64::MAX as f64);
            let before = now_ms().saturating_sub(retention_ms as i64);
            match records::purge_tasks(&scheduler.inner.store, before).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(tasks = n, "expired scheduler tasks purged"),
                Err(err) => tracing::warn!(%err, "cannot purge expired scheduler tasks"),
            }
        }
        drop(scheduler);
        tokio::time::sleep(interval).await;
    }
}

fn parse_uuid(field: &str, text: &str) -> Result<String> {
    uuid::Uuid::parse_str(text.trim())
        .map(|u| u.to_string())
        .map_err(|e| Error::invalid_field(field, format!("'{text}' is not a UUID: {e}")))
}

fn task_not_found(task_id: &str) -> Error {
    Error::new(
        Code::SchedulerTaskNotFound,
        format!("task '{task_id}' not found"),
    )
    .details(serde_json::json!({ "task_id": task_id }))
    .hint("task ids come from POST /queue/submit; finished tasks are kept for the configured retention")
}

fn wrong_instance(task: &TaskRecord, reporter: &str) -> Error {
    Error::new(
        Code::SchedulerWrongInstance,
        format!(
            "task '{}' is held by instance {}, not {reporter}",
            task.task_id,
            task.ti_uuid.as_deref().unwrap_or("(none)")
        ),
    )
    .details(serde_json::json!({ "task_id": task.task_id, "scheduled_ti": task.ti_uuid }))
}
