//! Every attempt of a run's nodes: when it started and ended, how it ended, its error and its
//! logs. A node's row (see `records`) holds only its latest attempt; this keeps them all, so a
//! node that failed twice before it succeeded still shows why it failed.
//!
//! The rows are written in the transactions that change the node's row (see `records`), so the
//! two never disagree. An attempt a host restart cut short runs again under the same number and
//! replaces its row.

use super::records::{NodeFailure, NodeStatus, opt_json};
use crate::error::Result;
use crate::store::{Store, text_enum, time};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row as _;
use utoipa::ToSchema;

/// How one attempt went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AttemptStatus {
    /// Still running.
    Running,
    /// Produced the node's outputs.
    Succeeded,
    /// Failed: retried after it, or the node's last.
    Failed,
    /// Stopped while it ran: the run was cancelled or failed elsewhere.
    Cancelled,
}

text_enum!(AttemptStatus { Running = "running", Succeeded = "succeeded", Failed = "failed", Cancelled = "cancelled" });

impl AttemptStatus {
    /// How an attempt ended when its node reached `status`: `None` for a state no attempt ends
    /// in (a node skipped or still pending never ran).
    pub(super) fn ended_as(status: NodeStatus) -> Option<Self> {
        match status {
            NodeStatus::Succeeded => Some(Self::Succeeded),
            NodeStatus::Failed | NodeStatus::Retrying => Some(Self::Failed),
            NodeStatus::Cancelled => Some(Self::Cancelled),
            NodeStatus::Pending | NodeStatus::Running | NodeStatus::Skipped => None,
        }
    }
}

/// One attempt of a node of a run.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Attempt {
    /// Its number, from 1.
    pub attempt: i64,
    /// How it went.
    pub status: AttemptStatus,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it ended (none while it runs).
    pub finished_at: Option<DateTime<Utc>>,
    /// Why it failed or was stopped.
    pub error: Option<NodeFailure>,
    /// Log lines and progress the node reported in this attempt.
    #[schema(value_type = Vec<Object>)]
    pub logs: Vec<serde_json::Value>,
}

type Tx<'t> = sqlx::Transaction<'t, sqlx::Any>;

/// Attempt `attempt` of a node started at `at` (a cut-short one of that number is replaced).
pub(super) async fn started(
    tx: &mut Tx<'_>,
    run_id: &str,
    node_id: &str,
    attempt: u32,
    at: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO run_node_attempts (run_id, node_id, attempt, status, started_at) \
         VALUES ($1, $2, $3, 'running', $4) \
         ON CONFLICT (run_id, node_id, attempt) DO UPDATE SET status = 'running', \
         started_at = excluded.started_at, finished_at = NULL, error = NULL, logs = NULL",
    )
    .bind(run_id)
    .bind(node_id)
    .bind(i64::from(attempt))
    .bind(at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The node's running attempt ended as `status` at `at`, with `error` and `logs`.
pub(super) async fn ended(
    tx: &mut Tx<'_>,
    run_id: &str,
    node_id: &str,
    status: AttemptStatus,
    error: Option<&str>,
    logs: &str,
    at: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE run_node_attempts SET status = $1, error = $2, logs = $3, finished_at = $4 \
         WHERE run_id = $5 AND node_id = $6 AND status = 'running'",
    )
    .bind(status.as_str())
    .bind(error)
    .bind(logs)
    .bind(at)
    .bind(run_id)
    .bind(node_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Every running attempt of the run stopped at `at` because of `error` (JSON of a
/// [`NodeFailure`]).
pub(super) async fn stop_running(
    tx: &mut Tx<'_>,
    run_id: &str,
    error: &str,
    at: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE run_node_attempts SET status = 'cancelled', error = $1, finished_at = $2 \
         WHERE run_id = $3 AND status = 'running'",
    )
    .bind(error)
    .bind(at)
    .bind(run_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The attempts of one node of a run, first first.
pub(super) async fn of_node(store: &Store, run_id: &str, node_id: &str) -> Result<Vec<Attempt>> {
    sqlx::query(
        "SELECT attempt, status, started_at, finished_at, error, logs FROM run_node_attempts \
         WHERE run_id = $1 AND node_id = $2 ORDER BY attempt",
    )
    .bind(run_id)
    .bind(node_id)
    .fetch_all(store.pool())
    .await?
    .iter()
    .map(|row| {
        Ok(Attempt {
            attempt: row.try_get("attempt")?,
            status: AttemptStatus::parse(&row.try_get::<String, _>("status")?)?,
            started_at: time(row.try_get("started_at")?),
            finished_at: row.try_get::<Option<i64>, _>("finished_at")?.map(time),
            error: opt_json(row, "error")?,
            logs: opt_json(row, "logs")?.unwrap_or_default(),
        })
    })
    .collect()
}
