//! What is stored about containers, as the API shows it, and the queries that keep it.

use super::driver::Limits;
use super::quantity::{format_cpu, format_memory};
use crate::error::{Error, Result};
use crate::store::{Store, new_id, now_ms, text_enum, time};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::Row as _;
use sqlx::any::AnyRow;
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// Where a container is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ContainerStatus {
    /// Made on the engine, not started.
    Created,
    Running,
    /// Stopped by a user, exited with code 0, or gone from the engine.
    Stopped,
    /// Exited with an error, killed for memory, or could not start.
    Failed,
}

text_enum!(ContainerStatus { Created = "created", Running = "running", Stopped = "stopped", Failed = "failed" });

impl ContainerStatus {
    /// Whether the container holds its resources (created or running).
    pub fn holds_resources(self) -> bool {
        matches!(self, ContainerStatus::Created | ContainerStatus::Running)
    }
}

/// The resources of a container as quantities.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ResourceQuantities {
    /// Cores, e.g. `"2"` or `"500m"`.
    pub cpu: String,
    /// e.g. `"4Gi"`.
    pub memory: String,
    pub gpu: String,
}

/// A container Weft created, as a client sees it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Container {
    pub id: String,
    pub owner_id: String,
    /// The name on the engine (`weft-<id>`).
    pub name: String,
    pub image: String,
    pub command: Option<Vec<String>>,
    pub environment: BTreeMap<String, String>,
    pub resources: ResourceQuantities,
    #[serde(skip)]
    pub limits: Limits,
    /// The engine's id once created there.
    pub engine_id: Option<String>,
    pub status: ContainerStatus,
    /// From the image's health check (starting, healthy, unhealthy); absent without one.
    pub health: Option<String>,
    pub exit_code: Option<i64>,
    /// Why it failed or stopped unexpectedly.
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub stopped_at: Option<DateTime<Utc>>,
    /// Time spent running, counted over every start, up to now when running.
    pub run_seconds: f64,
    #[serde(skip)]
    pub(super) run_ms: i64,
}

impl Container {
    /// A new record for a container not yet created on the engine.
    pub fn new(
        owner_id: &str,
        image: &str,
        command: Option<Vec<String>>,
        environment: BTreeMap<String, String>,
        limits: Limits,
    ) -> Self {
        let id = new_id();
        Self {
            name: format!("weft-{id}"),
            id,
            owner_id: owner_id.into(),
            image: image.into(),
            command,
            environment,
            resources: quantities(limits),
            limits,
            engine_id: None,
            status: ContainerStatus::Created,
            health: None,
            exit_code: None,
            error: None,
            created_at: time(now_ms()),
            started_at: None,
            stopped_at: None,
            run_seconds: 0.0,
            run_ms: 0,
        }
    }

    /// Marks it running from `at` (Unix ms).
    pub fn mark_running(&mut self, at: i64) {
        if self.status != ContainerStatus::Running {
            self.started_at = Some(time(at));
            self.stopped_at = None;
        }
        self.status = ContainerStatus::Running;
        self.exit_code = None;
        self.error = None;
        self.run_seconds = self.run_ms as f64 / 1e3;
    }

    /// Marks it ended at `at` (Unix ms) with `status`, adding the running stint to its time.
    pub fn mark_ended(&mut self, status: ContainerStatus, at: i64, error: Option<String>) {
        if self.status == ContainerStatus::Running
            && let Some(started) = self.started_at
        {
            self.run_ms += (at - started.timestamp_millis()).max(0);
        }
        self.status = status;
        self.stopped_at = Some(time(at));
        self.health = None;
        if error.is_some() {
            self.error = error;
        }
        self.run_seconds = self.run_ms as f64 / 1e3;
    }
}

fn quantities(limits: Limits) -> ResourceQuantities {
    ResourceQuantities {
        cpu: format_cpu(limits.cpu_millis),
        memory: format_memory(limits.memory_bytes),
        gpu: limits.gpus.to_string(),
    }
}

const COLUMNS: &str = "id, owner_id, name, image, command, environment, cpu_millis, memory_bytes, \
                       gpus, engine_id, status, health, exit_code, error, created_at, started_at, \
                       stopped_at, run_ms";

fn from_row(row: &AnyRow) -> Result<Container> {
    let json = |column: &str| -> Result<Option<serde_json::Value>> {
        let text: Option<String> = row.try_get(column)?;
        text.map(|t| {
            serde_json::from_str(&t).map_err(|e| {
                Error::internal(format!("stored container {column} is unreadable: {e}"))
            })
        })
        .transpose()
    };
    let unreadable =
        |e: serde_json::Error| Error::internal(format!("stored container is unreadable: {e}"));
    let limits = Limits {
        cpu_millis: row.try_get::<i64, _>("cpu_millis")? as u64,
        memory_bytes: row.try_get::<i64, _>("memory_bytes")? as u64,
        gpus: row.try_get::<i64, _>("gpus")? as u32,
    };
    let status = ContainerStatus::parse(&row.try_get::<String, _>("status")?)?;
    let started_at: Option<i64> = row.try_get("started_at")?;
    let run_ms: i64 = row.try_get("run_ms")?;
    let running_now = match (status, started_at) {
        (ContainerStatus::Running, Some(started)) => (now_ms() - started).max(0),
        _ => 0,
    };
    Ok(Container {
        id: row.try_get("id")?,
        owner_id: row.try_get("owner_id")?,
        name: row.try_get("name")?,
        image: row.try_get("image")?,
        command: json("command")?
            .map(serde_json::from_value)
            .transpose()
            .map_err(unreadable)?,
        environment: json("environment")?
            .map(serde_json::from_value)
            .transpose()
            .map_err(unreadable)?
            .unwrap_or_default(),
        resources: quantities(limits),
        limits,
        engine_id: row.try_get("engine_id")?,
        status,
        health: row.try_get("health")?,
        exit_code: row.try_get("exit_code")?,
        error: row.try_get("error")?,
        created_at: time(row.try_get("created_at")?),
        started_at: started_at.map(time),
        stopped_at: row.try_get::<Option<i64>, _>("stopped_at")?.map(time),
        run_seconds: (run_ms + running_now) as f64 / 1e3,
        run_ms,
    })
}

/// Stores a new container record.
pub(crate) async fn insert(store: &Store, c: &Container) -> Result<()> {
    sqlx::query(&format!(
        "INSERT INTO containers ({COLUMNS}, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)"
    ))
    .bind(&c.id)
    .bind(&c.owner_id)
    .bind(&c.name)
    .bind(&c.image)
    .bind(c.command.as_ref().map(|v| serde_json::to_string(v).unwrap_or_default()))
    .bind(serde_json::to_string(&c.environment).unwrap_or_default())
    .bind(c.limits.cpu_millis as i64)
    .bind(c.limits.memory_bytes as i64)
    .bind(i64::from(c.limits.gpus))
    .bind(&c.engine_id)
    .bind(c.status.as_str())
    .bind(&c.health)
    .bind(c.exit_code)
    .bind(&c.error)
    .bind(c.created_at.timestamp_millis())
    .bind(c.started_at.map(|t| t.timestamp_millis()))
    .bind(c.stopped_at.map(|t| t.timestamp_millis()))
    .bind(c.run_ms)
    .bind(now_ms())
    .execute(store.pool())
    .await?;
    Ok(())
}

/// Writes back what changes over a container's life.
pub(crate) async fn save(store: &Store, c: &Container) -> Result<()> {
    sqlx::query(
        "UPDATE containers SET engine_id = $1, status = $2, health = $3, exit_code = $4, \
         error = $5, started_at = $6, stopped_at = $7, run_ms = $8, updated_at = $9 WHERE id = $10",
    )
    .bind(&c.engine_id)
    .bind(c.status.as_str())
    .bind(&c.health)
    .bind(c.exit_code)
    .bind(&c.error)
    .bind(c.started_at.map(|t| t.timestamp_millis()))
    .bind(c.stopped_at.map(|t| t.timestamp_millis()))
    .bind(c.run_ms)
    .bind(now_ms())
    .bind(&c.id)
    .execute(store.pool())
    .await?;
    Ok(())
}

/// Gives the pooled container `c` (owned by `pool`) to `owner` with the limits it now runs
/// under; `false` when it is no longer the pool's (another Weft host sharing the database took
/// it first).
pub(crate) async fn hand_over(
    store: &Store,
    c: &mut Container,
    pool: &str,
    owner: &str,
    limits: Limits,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE containers SET owner_id = $1, cpu_millis = $2, memory_bytes = $3, gpus = $4, \
         updated_at = $5 WHERE id = $6 AND owner_id = $7",
    )
    .bind(owner)
    .bind(limits.cpu_millis as i64)
    .bind(limits.memory_bytes as i64)
    .bind(i64::from(limits.gpus))
    .bind(now_ms())
    .bind(&c.id)
    .bind(pool)
    .execute(store.pool())
    .await?;
    if done.rows_affected() != 1 {
        return Ok(false);
    }
    c.owner_id = owner.into();
    c.resources = quantities(limits);
    c.limits = limits;
    Ok(true)
}

pub(crate) async fn get(store: &Store, id: &str) -> Result<Option<Container>> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM containers WHERE id = $1"))
        .bind(id)
        .fetch_optional(store.pool())
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// Every container, or one owner's, oldest first.
pub(crate) async fn list(store: &Store, owner_id: Option<&str>) -> Result<Vec<Container>> {
    let rows = match owner_id {
        Some(owner) => {
            sqlx::query(&format!(
                "SELECT {COLUMNS} FROM containers WHERE owner_id = $1 ORDER BY created_at, id"
            ))
            .bind(owner)
            .fetch_all(store.pool())
            .await?
        }
        None => {
            sqlx::query(&format!(
                "SELECT {COLUMNS} FROM containers ORDER BY created_at, id"
            ))
            .fetch_all(store.pool())
            .await?
        }
    };
    rows.iter().map(from_row).collect()
}

pub(crate) async fn delete(store: &Store, id: &str) -> Result<()> {
    sqlx::query("DELETE FROM containers WHERE id = $1")
        .bind(id)
        .execute(store.pool())
        .await?;
    Ok(())
}

/// This installation's id, made on first use: it labels every container created here.
pub(crate) async fn install_id(store: &Store) -> Result<String> {
    sqlx::query(
        "INSERT INTO installation (key, value) VALUES ('install_id', $1) ON CONFLICT (key) DO NOTHING",
    )
    .bind(new_id())
    .execute(store.pool())
    .await?;
    let row = sqlx::query("SELECT value FROM installation WHERE key = 'install_id'")
        .fetch_one(store.pool())
        .await?;
    Ok(row.try_get("value")?)
}

/// How many containers holding resources (created or running) serve each purpose: a
/// session's server (`session`), a workflow's job (`job`), or a user's own from the API
/// (`api`). The purpose is read from the tables that point at the container.
pub(crate) async fn counts_by_purpose(store: &Store) -> Result<Vec<(String, i64)>> {
    let rows = sqlx::query(
        "SELECT purpose, COUNT(*) AS n FROM (SELECT CASE \
           WHEN c.owner_id = $1 THEN 'pool' \
           WHEN EXISTS (SELECT 1 FROM sessions s WHERE s.container_id = c.id) THEN 'session' \
           WHEN EXISTS (SELECT 1 FROM jobs j WHERE j.container_id = c.id) THEN 'job' \
           ELSE 'api' END AS purpose \
         FROM containers c WHERE c.status IN ('created', 'running')) AS held GROUP BY purpose",
    )
    .bind(super::POOL_OWNER)
    .fetch_all(store.pool())
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("purpose")?, r.try_get("n")?)))
        .collect()
}
