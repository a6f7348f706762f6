//! Executions: how each ended, and the stored history of who ran what in a notebook, when,
//! for how long and with what result.

use super::records;
use crate::error::Result;
use crate::store::{Store, new_id, now_ms, text_enum, time};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
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

/// Records an execution that starts now.
pub(crate) async fn begin(
    store: &Store,
    notebook_id: &str,
    user_id: &str,
    cell_id: &str,
    code: &str,
) -> Result<Execution> {
    let started = now_ms();
    let execution = Execution {
        execution_id: new_id(),
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
    };
    records::insert_execution(store, &execution).await?;
    Ok(execution)
}

/// Records how `execution` ended and fills it in from `outcome`.
pub(crate) async fn finish(
    store: &Store,
    execution: &mut Execution,
    outcome: Outcome,
) -> Result<()> {
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
    records::save_execution_end(store, execution).await
}

/// A notebook's executions, newest first.
pub(crate) async fn history(
    store: &Store,
    notebook_id: &str,
    limit: i64,
) -> Result<Vec<Execution>> {
    records::executions(store, notebook_id, limit).await
}

/// Executions a restart of Weft caught running: their kernel may have finished them, but
/// nobody saw how.
pub(crate) async fn interrupt_running(store: &Store) -> Result<u64> {
    records::interrupt_running_executions(store, now_ms()).await
}
