//! Executions: how each ended, and the stored history of who ran what in a notebook, when,
//! for how long and with what result.

use crate::error::Result;
use crate::store::{Store, new_id, now_ms, text_enum, time};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::Row as _;
use sqlx::any::AnyRow;
use utoipa::ToSchema;

/// How an execution ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExecutionStatus {
    Running,
    /// The code ran to its end.
    Ok,
    /// The code raised: see `error`.
    Error,
    /// It ran past its timeout and was interrupted.
    Timeout,
    /// The kernel died while running it (it exited or ran out of memory) and was restarted.
    KernelDied,
    /// The kernel could not be reached while running it.
    Failed,
    /// Weft restarted while it ran.
    Interrupted,
}

text_enum!(ExecutionStatus { Running = "running", Ok = "ok", Error = "error", Timeout = "timeout", KernelDied = "kernel_died", Failed = "failed", Interrupted = "interrupted" });

/// What an execution produced.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub status: ExecutionStatus,
    pub execution_count: Option<i64>,
    /// nbformat outputs, in the order the kernel sent them (streams merged; within
    /// `max_output_bytes`, after a note when older ones were dropped).
    pub outputs: Vec<Value>,
    /// Whether outputs were dropped to stay within `max_output_bytes`.
    pub truncated: bool,
    /// Why it did not end normally.
    pub message: Option<String>,
}

/// One execution of code in a notebook.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Execution {
    pub execution_id: String,
    pub notebook_id: String,
    /// Who ran it.
    pub user_id: String,
    pub cell_id: String,
    pub code: String,
    pub status: ExecutionStatus,
    pub execution_count: Option<i64>,
    /// Why it did not end normally.
    pub message: Option<String>,
    /// Whether outputs were dropped to stay within `[notebooks] max_output_bytes` (the tail
    /// is kept, after a note).
    pub truncated: bool,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub duration_ms: Option<i64>,
    /// The cell's nbformat outputs (in the answer to an execution, not in the history).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub outputs: Option<Vec<Value>>,
    /// The exception the code raised: `ename`, `evalue`, `traceback`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub error: Option<Value>,
}

const COLUMNS: &str = "id, notebook_id, user_id, cell_id, code, status, execution_count, message, \
                       truncated, started_at, finished_at, duration_ms";

fn from_row(row: &AnyRow) -> Result<Execution> {
    Ok(Execution {
        execution_id: row.try_get("id")?,
        notebook_id: row.try_get("notebook_id")?,
        user_id: row.try_get("user_id")?,
        cell_id: row.try_get("cell_id")?,
        code: row.try_get("code")?,
        status: ExecutionStatus::parse(&row.try_get::<String, _>("status")?)?,
        execution_count: row.try_get("execution_count")?,
        message: row.try_get("message")?,
        truncated: row.try_get::<i64, _>("truncated")? != 0,
        started_at: time(row.try_get("started_at")?),
        finished_at: row.try_get::<Option<i64>, _>("finished_at")?.map(time),
        duration_ms: row.try_get("duration_ms")?,
        outputs: None,
        error: None,
    })
}

/// Records an execution that starts now.
pub async fn begin(
    store: &Store,
    notebook_id: &str,
    user_id: &str,
    cell_id: &str,
    code: &str,
) -> Result<Execution> {
    let id = new_id();
    let started = now_ms();
    sqlx::query(
        "INSERT INTO notebook_executions (id, notebook_id, user_id, cell_id, code, status, started_at) \
         VALUES ($1, $2, $3, $4, $5, 'running', $6)",
    )
    .bind(&id)
    .bind(notebook_id)
    .bind(user_id)
    .bind(cell_id)
    .bind(code)
    .bind(started)
    .execute(store.pool())
    .await?;
    Ok(Execution {
        execution_id: id,
        notebook_id: notebook_id.into(),
        user_id: user_id.into(),
        cell_id: cell_id.into(),
        code: code.into(),
        status: ExecutionStatus::Running,
        execution_count: None,
        message: None,
        truncated: false,
        started_at: time(started),
        finished_at: None,
        duration_ms: None,
        outputs: None,
        error: None,
    })
}

/// Records how `execution` ended and fills it in from `outcome`.
pub async fn finish(store: &Store, execution: &mut Execution, outcome: Outcome) -> Result<()> {
    let finished = now_ms();
    execution.status = outcome.status;
    execution.execution_count = outcome.execution_count;
    execution.message = outcome.message;
    execution.truncated = outcome.truncated;
    execution.finished_at = Some(time(finished));
    execution.duration_ms = Some(finished - execution.started_at.timestamp_millis());
    execution.error = outcome
        .outputs
        .iter()
        .find(|o| o["output_type"] == "error")
        .map(|o| {
            serde_json::json!({"ename": o["ename"], "evalue": o["evalue"], "traceback": o["traceback"]})
        });
    execution.outputs = Some(outcome.outputs);
    sqlx::query(
        "UPDATE notebook_executions SET status = $1, execution_count = $2, message = $3, finished_at = $4, \
         duration_ms = $5, truncated = $6 WHERE id = $7",
    )
    .bind(execution.status.as_str())
    .bind(execution.execution_count)
    .bind(&execution.message)
    .bind(finished)
    .bind(execution.duration_ms)
    .bind(i64::from(execution.truncated))
    .bind(&execution.execution_id)
    .execute(store.pool())
    .await?;
    Ok(())
}

/// A notebook's executions, newest first.
pub async fn history(store: &Store, notebook_id: &str, limit: i64) -> Result<Vec<Execution>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM notebook_executions WHERE notebook_id = $1 \
         ORDER BY started_at DESC, id DESC LIMIT $2"
    ))
    .bind(notebook_id)
    .bind(limit)
    .fetch_all(store.pool())
    .await?;
    rows.iter().map(from_row).collect()
}

/// Executions a restart of Weft caught running: their kernel may have finished them, but
/// nobody saw how.
pub async fn interrupt_running(store: &Store) -> Result<u64> {
    let done = sqlx::query(
        "UPDATE notebook_executions SET status = 'interrupted', finished_at = $1, \
         message = 'Weft restarted while this ran; its outputs were not saved' WHERE status = 'running'",
    )
    .bind(now_ms())
    .execute(store.pool())
    .await?;
    Ok(done.rows_affected())
}
