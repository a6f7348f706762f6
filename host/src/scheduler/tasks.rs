//! Routed tasks: their record, and the one writer that persists them in order.
//!
//! Every change to a task goes through [`Writer`], which batches whatever is waiting into one
//! transaction (group commit): thousands of submits a second cost a few commits, and a task's
//! changes reach the database in the order they were made.

// Part of the crate's public face not yet documented item by item (issue 22, item 4).
#![allow(missing_docs)]

use super::raw::RawJson;
use crate::error::{Error, Result};
use crate::store::{Backend, Store, now_ms};
use serde::Serialize;
use sqlx::Row as _;
use sqlx::any::AnyRow;
use tokio::sync::{mpsc, oneshot};
use utoipa::ToSchema;

/// Where a task is. `queued`: routed and stored, not yet accepted by its instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Queued,
    Scheduled,
    Completed,
    Failed,
}

impl TaskStatus {
    fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Queued => "queued",
            TaskStatus::Scheduled => "scheduled",
            TaskStatus::Completed => "completed",
            TaskStatus::Failed => "failed",
        }
    }

    fn parse(text: &str) -> Result<Self> {
        Ok(match text {
            "queued" => TaskStatus::Queued,
            "scheduled" => TaskStatus::Scheduled,
            "completed" => TaskStatus::Completed,
            "failed" => TaskStatus::Failed,
            other => return Err(Error::internal(format!("unknown task status '{other}'"))),
        })
    }

    pub fn is_finished(self) -> bool {
        matches!(self, TaskStatus::Completed | TaskStatus::Failed)
    }
}

/// One submitted task.
#[derive(Debug, Clone)]
pub struct TaskRecord {
    pub task_id: String,
    pub model_name: String,
    /// The instance it was routed to last.
    pub ti_uuid: Option<String>,
    pub status: TaskStatus,
    pub task_input: RawJson,
    pub metadata: RawJson,
    pub result: Option<RawJson>,
    /// Why it failed.
    pub error: Option<String>,
    /// Unix milliseconds.
    pub submit_time: i64,
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
    pub fn new(
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
    pub fn finish(&mut self, status: TaskStatus) {
        self.status = status;
        self.finished_at = Some(now_ms());
    }
}

const COLUMNS: &str = "task_id, model_name, ti_uuid, status, task_input, metadata, result, error, \
                       submit_time, finished_at, execution_us, attempts, owner_id";

fn from_row(row: &AnyRow) -> Result<TaskRecord> {
    let json = |column: &str| -> Result<Option<RawJson>> {
        let text: Option<String> = row.try_get(column)?;
        text.map(|t| {
            RawJson::from_text(t)
                .map_err(|e| Error::internal(format!("stored task {column} is unreadable: {e}")))
        })
        .transpose()
    };
    Ok(TaskRecord {
        task_id: row.try_get("task_id")?,
        model_name: row.try_get("model_name")?,
        ti_uuid: row.try_get("ti_uuid")?,
        status: TaskStatus::parse(&row.try_get::<String, _>("status")?)?,
        task_input: json("task_input")?.unwrap_or_else(RawJson::empty_object),
        metadata: json("metadata")?.unwrap_or_else(RawJson::empty_object),
        result: json("result")?,
        error: row.try_get("error")?,
        submit_time: row.try_get("submit_time")?,
        finished_at: row.try_get("finished_at")?,
        execution_ms: row
            .try_get::<Option<i64>, _>("execution_us")?
            .map(|us| us as f64 / 1e3),
        attempts: row.try_get("attempts")?,
        owner_id: row.try_get("owner_id")?,
    })
}

/// One stored task, if it exists.
pub async fn get(store: &Store, task_id: &str) -> Result<Option<TaskRecord>> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM scheduler_tasks WHERE task_id = $1"
    ))
    .bind(task_id)
    .fetch_optional(store.pool())
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// Every task not finished yet, oldest first: what a restarted scheduler picks up again.
pub async fn unfinished(store: &Store) -> Result<Vec<TaskRecord>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM scheduler_tasks WHERE status IN ('queued', 'scheduled') \
         ORDER BY submit_time"
    ))
    .fetch_all(store.pool())
    .await?;
    rows.iter().map(from_row).collect()
}

/// Deletes tasks that finished before `before_ms`; returns how many.
pub async fn purge(store: &Store, before_ms: i64) -> Result<u64> {
    let done = sqlx::query("DELETE FROM scheduler_tasks WHERE finished_at < $1")
        .bind(before_ms)
        .execute(store.pool())
        .await?;
    Ok(done.rows_affected())
}

type Ack = oneshot::Sender<Result<()>>;

/// The single writer of task records.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::UnboundedSender<(TaskRecord, Ack)>,
}

/// Most records written in one transaction.
const BATCH: usize = 512;
/// Times the writer lets other tasks run before it commits what it has.
const LINGER_YIELDS: usize = 2;

impl Writer {
    /// Starts the writer task on `store`.
    pub fn start(store: Store) -> Self {
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
                let result = save_all(&store, &batch).await;
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
    pub fn queue(&self, record: TaskRecord) -> Committed {
        let (ack, done) = oneshot::channel();
        let _ = self.tx.send((record, ack));
        Committed(done)
    }
}

/// The commit of a queued record.
pub struct Committed(oneshot::Receiver<Result<()>>);

impl Committed {
    /// Waits until the record is in the database.
    pub async fn wait(self) -> Result<()> {
        self.0
            .await
            .map_err(|_| Error::internal("the task writer has stopped"))?
    }
}

/// Rows per statement: 13 parameters each stays far below SQLite's and PostgreSQL's limits.
const ROWS_PER_STATEMENT: usize = 256;
const PARAMS_PER_ROW: usize = 13;

/// Stores a batch atomically, one multi-row upsert per [`ROWS_PER_STATEMENT`]: each statement
/// is a round trip to the database (for SQLite, to its worker thread), so a batch that fits one
/// statement is written without BEGIN and COMMIT around it (a statement is atomic by itself). A
/// task changed twice in the batch is written once, as it is last.
async fn save_all(store: &Store, batch: &[(TaskRecord, Ack)]) -> Result<()> {
    let mut last = std::collections::HashMap::with_capacity(batch.len());
    for (i, (t, _)) in batch.iter().enumerate() {
        last.insert(t.task_id.as_str(), i);
    }
    let latest: Vec<&TaskRecord> = batch
        .iter()
        .enumerate()
        .filter(|(i, (t, _))| last.get(t.task_id.as_str()) == Some(i))
        .map(|(_, (t, _))| t)
        .collect();
    let backend = store.backend();
    if latest.len() <= ROWS_PER_STATEMENT {
        let sql = upsert_sql(backend, latest.len());
        upsert(&sql, &latest).execute(store.pool()).await?;
        return Ok(());
    }
    let mut tx = store.pool().begin().await?;
    for rows in latest.chunks(ROWS_PER_STATEMENT) {
        let sql = upsert_sql(backend, rows.len());
        upsert(&sql, rows).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The upsert of `rows` tasks. SQLite gets anonymous `?` placeholders: it looks a named `$n` up
/// by scanning every name, which makes binding a many-row statement quadratic.
fn upsert_sql(backend: Backend, rows: usize) -> String {
    use std::fmt::Write as _;
    let mut sql = format!("INSERT INTO scheduler_tasks ({COLUMNS}) VALUES ");
    for r in 0..rows {
        sql.push_str(if r == 0 { "(" } else { ", (" });
        for c in 1..=PARAMS_PER_ROW {
            if c > 1 {
                sql.push_str(", ");
            }
            match backend {
                Backend::Sqlite => sql.push('?'),
                Backend::Postgres => {
                    let _ = write!(sql, "${}", r * PARAMS_PER_ROW + c);
                }
            }
        }
        sql.push(')');
    }
    sql.push_str(
        " ON CONFLICT (task_id) DO UPDATE SET ti_uuid = excluded.ti_uuid, \
         status = excluded.status, result = excluded.result, error = excluded.error, \
         finished_at = excluded.finished_at, execution_us = excluded.execution_us, \
         attempts = excluded.attempts",
    );
    sql
}

/// `sql` (from [`upsert_sql`]) with every row's values bound.
fn upsert<'q>(
    sql: &'q str,
    rows: &[&'q TaskRecord],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    let mut query = sqlx::query(sql);
    for t in rows {
        query = query
            .bind(&t.task_id)
            .bind(&t.model_name)
            .bind(&t.ti_uuid)
            .bind(t.status.as_str())
            .bind(t.task_input.get())
            .bind(t.metadata.get())
            .bind(t.result.as_ref().map(RawJson::get))
            .bind(&t.error)
            .bind(t.submit_time)
            .bind(t.finished_at)
            .bind(t.execution_ms.map(|ms| (ms * 1e3).round() as i64))
            .bind(t.attempts)
            .bind(&t.owner_id);
    }
    query
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upserts_number_postgres_placeholders_across_rows_and_leave_sqlite_anonymous() {
        let pg = upsert_sql(Backend::Postgres, 2);
        assert!(
            pg.contains("VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13), ($14, "),
            "{pg}"
        );
        assert!(pg.contains("$26) ON CONFLICT (task_id)"), "{pg}");
        assert!(!pg.contains("$27"), "{pg}");
        let sqlite = upsert_sql(Backend::Sqlite, 3);
        assert_eq!(sqlite.matches('?').count(), 3 * PARAMS_PER_ROW, "{sqlite}");
        assert!(!sqlite.contains('$'), "{sqlite}");
    }
}
