//! Routed tasks: their record, and the one writer that persists them in order (through
//! `super::records`).
//!
//! Every change to a task goes through `Writer`, which batches whatever is waiting into one
//! transaction (group commit): thousands of submits a second cost a few commits, and a task's
//! changes reach the database in the order they were made.

use super::raw::RawJson;
use crate::error::{Error, Result};
use crate::store::{Store, now_ms};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use utoipa::ToSchema;

/// Where a task is. `queued`: routed and stored, not yet accepted by its instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    /// Routed and stored; its instance has not accepted it yet.
    Queued,
    /// Accepted by its instance.
    Scheduled,
    /// Its instance reported a result.
    Completed,
    /// Its instance reported an error, or it timed out.
    Failed,
}

impl TaskStatus {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Queued => "queued",
            TaskStatus::Scheduled => "scheduled",
            TaskStatus::Completed => "completed",
            TaskStatus::Failed => "failed",
        }
    }

    pub(super) fn parse(text: &str) -> Result<Self> {
        Ok(match text {
            "queued" => TaskStatus::Queued,
            "scheduled" => TaskStatus::Scheduled,
            "completed" => TaskStatus::Completed,
            "failed" => TaskStatus::Failed,
            other => return Err(Error::internal(format!("unknown task status '{other}'"))),
        })
    }

    /// Whether the task has ended (completed or failed).
    pub fn is_finished(self) -> bool {
        matches!(self, TaskStatus::Completed | TaskStatus::Failed)
    }
}

/// One submitted task.
#[derive(Debug, Clone)]
pub(crate) struct TaskRecord {
    /// The submitter's id of the task.
    pub task_id: String,
    /// The model the task is for.
    pub model_name: String,
    /// The instance it was routed to last.
    pub ti_uuid: Option<String>,
    /// Where the task is.
    pub status: TaskStatus,
    /// The task's input, as submitted.
    pub task_input: RawJson,
    /// The submitter's metadata, passed through.
    pub metadata: RawJson,
    /// What the instance reported, once completed.
    pub result: Option<RawJson>,
    /// Why it failed.
    pub error: Option<String>,
    /// Unix milliseconds.
    pub submit_time: i64,
    /// Unix milliseconds, once ended.
    pub finished_at: Option<i64>,
    /// Stored in whole microseconds (floats do not cross sqlx's Any driver to PostgreSQL).
    pub execution_ms: Option<f64>,
    /// Instances it was handed to (more than one after a re-route).
    pub attempts: i64,
    /// The user who submitted it; `None` for a caller from a trusted network (and for tasks
    /// stored before owners were recorded). Only the owner or an admin sees it.
    pub owner_id: Option<String>,
}

impl TaskRecord {
    /// A new task; its id is time-ordered, so stored tasks append to the table's index.
    pub(crate) fn new(
        model_name: String,
        task_input: RawJson,
        metadata: RawJson,
        owner_id: Option<String>,
    ) -> Self {
        Self {
            task_id: crate::store::new_id(),
            model_name,
            ti_uuid: None,
            status: TaskStatus::Queued,
            task_input,
            metadata,
            result: None,
            error: None,
            submit_time: now_ms(),
            finished_at: None,
            execution_ms: None,
            attempts: 0,
            owner_id,
        }
    }

    /// Marks the task finished now.
    pub(crate) fn finish(&mut self, status: TaskStatus) {
        self.status = status;
        self.finished_at = Some(now_ms());
    }
}

type Ack = oneshot::Sender<Result<()>>;

/// The single writer of task records.
#[derive(Clone)]
pub(crate) struct Writer {
    tx: mpsc::UnboundedSender<(TaskRecord, Ack)>,
}

/// Most records written in one transaction.
const BATCH: usize = 512;
/// Times the writer lets other tasks run before it commits what it has.
const LINGER_YIELDS: usize = 2;

impl Writer {
    /// Starts the writer task on `store`.
    pub(crate) fn start(store: Store) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel::<(TaskRecord, Ack)>();
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(BATCH);
            while rx.recv_many(&mut batch, BATCH).await > 0 {
                // Let the tasks that are ready run first: under load they queue more
                // changes, and one larger commit writes each changed page once.
                for _ in 0..LINGER_YIELDS {
                    if batch.len() >= BATCH {
                        break;
                    }
                    tokio::task::yield_now().await;
                    while batch.len() < BATCH {
                        match rx.try_recv() {
                            Ok(item) => batch.push(item),
                            Err(_) => break,
                        }
                    }
                }
                let result = super::records::save_tasks(&store, &latest(&batch)).await;
                if let Err(err) = &result {
                    tracing::error!(%err, tasks = batch.len(), "cannot store scheduler tasks");
                }
                for (_, ack) in batch.drain(..) {
                    let _ = ack.send(result.clone());
                }
            }
        });
        Self { tx }
    }

    /// Queues `record` for storing. Records queued in some order are stored in that order,
    /// so queue while holding whatever lock orders the changes; wait for the commit after.
    pub(crate) fn queue(&self, record: TaskRecord) -> Committed {
        let (ack, done) = oneshot::channel();
        let _ = self.tx.send((record, ack));
        Committed(done)
    }
}

/// The commit of a queued record.
pub(crate) struct Committed(oneshot::Receiver<Result<()>>);

impl Committed {
    /// Waits until the record is in the database.
    pub(crate) async fn wait(self) -> Result<()> {
        self.0
            .await
            .map_err(|_| Error::internal("the task writer has stopped"))?
    }
}

/// The batch's records, each task once, as it is last: a task changed twice in a batch is
/// written once.
fn latest(batch: &[(TaskRecord, Ack)]) -> Vec<&TaskRecord> {
    let mut last = std::collections::HashMap::with_capacity(batch.len());
    for (i, (t, _)) in batch.iter().enumerate() {
        last.insert(t.task_id.as_str(), i);
    }
    batch
        .iter()
        .enumerate()
        .filter(|(i, (t, _))| last.get(t.task_id.as_str()) == Some(i))
        .map(|(_, (t, _))| t)
        .collect()
}
