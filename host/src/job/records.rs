//! What is stored about container jobs, and the queries that keep it.

use crate::error::Result;
use crate::store::{Store, now_ms};
use sqlx::Row as _;

/// Who submitted a job: the n-th job (`seq`) of one attempt of a run's node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JobScope {
    pub run_id: String,
    pub node_id: String,
    pub attempt: u32,
}

/// A stored job that may still hold a container.
#[derive(Debug, Clone)]
pub(super) struct ActiveJob {
    pub id: String,
    pub owner_id: String,
    pub container_id: Option<String>,
}

pub(super) async fn insert(
    store: &Store,
    id: &str,
    owner: &str,
    scope: Option<&JobScope>,
    seq: u32,
    image: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO jobs (id, owner_id, run_id, node_id, attempt, seq, image, status, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'queued', $8)",
    )
    .bind(id)
    .bind(owner)
    .bind(scope.map(|s| s.run_id.clone()))
    .bind(scope.map(|s| s.node_id.clone()))
    .bind(scope.map(|s| i64::from(s.attempt)))
    .bind(i64::from(seq))
    .bind(image)
    .bind(now_ms())
    .execute(store.pool())
    .await?;
    Ok(())
}

/// The job is running in `container_id`.
pub(super) async fn started(store: &Store, id: &str, container_id: &str) -> Result<()> {
    sqlx::query(
        "UPDATE jobs SET status = 'running', container_id = $1, started_at = $2 WHERE id = $3",
    )
    .bind(container_id)
    .bind(now_ms())
    .bind(id)
    .execute(store.pool())
    .await?;
    Ok(())
}

/// The job ended: `status` is `succeeded`, `failed`, `cancelled` or `lost`.
pub(super) async fn ended(
    store: &Store,
    id: &str,
    status: &str,
    exit_code: Option<i64>,
    error: Option<&str>,
    log_tail: Option<&str>,
) -> Result<()> {
    sqlx::query(
        "UPDATE jobs SET status = $1, exit_code = $2, error = $3, log_tail = $4, ended_at = $5 \
         WHERE id = $6",
    )
    .bind(status)
    .bind(exit_code)
    .bind(error)
    .bind(log_tail)
    .bind(now_ms())
    .bind(id)
    .execute(store.pool())
    .await?;
    Ok(())
}

/// The unfinished job the same attempt of the same node submitted as its `seq`-th, if any: what
/// a restarted host adopts.
pub(super) async fn same_attempt(
    store: &Store,
    scope: &JobScope,
    seq: u32,
) -> Result<Option<ActiveJob>> {
    let row = sqlx::query(
        "SELECT id, owner_id, container_id FROM jobs WHERE run_id = $1 AND node_id = $2 \
         AND attempt = $3 AND seq = $4 AND status IN ('queued', 'running')",
    )
    .bind(&scope.run_id)
    .bind(&scope.node_id)
    .bind(i64::from(scope.attempt))
    .bind(i64::from(seq))
    .fetch_optional(store.pool())
    .await?;
    row.map(|r| active(&r)).transpose()
}

/// Unfinished jobs of `scope`'s node from its attempts up to `scope`'s, but those in `keep`.
pub(super) async fn left_behind(
    store: &Store,
    scope: &JobScope,
    keep: &[String],
) -> Result<Vec<ActiveJob>> {
    let rows = sqlx::query(
        "SELECT id, owner_id, container_id FROM jobs WHERE run_id = $1 AND node_id = $2 \
         AND attempt <= $3 AND status IN ('queued', 'running')",
    )
    .bind(&scope.run_id)
    .bind(&scope.node_id)
    .bind(i64::from(scope.attempt))
    .fetch_all(store.pool())
    .await?;
    let all: Vec<ActiveJob> = rows.iter().map(active).collect::<Result<_>>()?;
    Ok(all.into_iter().filter(|j| !keep.contains(&j.id)).collect())
}

/// Unfinished jobs whose run is not going on (ended, gone) or that belong to no run: nobody
/// will come back for them after a restart.
pub(super) async fn orphaned(store: &Store) -> Result<Vec<ActiveJob>> {
    let rows = sqlx::query(
        "SELECT j.id, j.owner_id, j.container_id FROM jobs j LEFT JOIN runs r ON r.id = j.run_id \
         WHERE j.status IN ('queued', 'running') \
         AND (r.status IS NULL OR r.status NOT IN ('queued', 'running'))",
    )
    .fetch_all(store.pool())
    .await?;
    rows.iter().map(active).collect()
}

fn active(row: &sqlx::any::AnyRow) -> Result<ActiveJob> {
    Ok(ActiveJob {
        id: row.try_get("id")?,
        owner_id: row.try_get("owner_id")?,
        container_id: row.try_get("container_id")?,
    })
}
