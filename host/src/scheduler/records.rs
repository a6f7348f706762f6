//! What the scheduler stores (tasks, registered instances, strategy activations) and every
//! query on it: no other module of the scheduler builds SQL.

use super::instances::TaskInstance;
use super::raw::RawJson;
use super::tasks::{TaskRecord, TaskStatus};
use crate::error::{Error, Result};
use crate::store::{Backend, Store, now_ms};
use sqlx::Row as _;
use sqlx::any::AnyRow;

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
pub(super) async fn task(store: &Store, task_id: &str) -> Result<Option<TaskRecord>> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM scheduler_tasks WHERE task_id = $1"
    ))
    .bind(task_id)
    .fetch_optional(store.pool())
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// Every task not finished yet, oldest first: what a restarted scheduler picks up again.
pub(super) async fn unfinished_tasks(store: &Store) -> Result<Vec<TaskRecord>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM scheduler_tasks WHERE status IN ('queued', 'scheduled') \
         ORDER BY submit_time"
    ))
    .fetch_all(store.pool())
    .await?;
    rows.iter().map(from_row).collect()
}

/// Deletes tasks that finished before `before_ms`; returns how many.
pub(super) async fn purge_tasks(store: &Store, before_ms: i64) -> Result<u64> {
    let done = sqlx::query("DELETE FROM scheduler_tasks WHERE finished_at < $1")
        .bind(before_ms)
        .execute(store.pool())
        .await?;
    Ok(done.rows_affected())
}

/// Stores `latest` (each task once) atomically, one multi-row upsert per
/// [`ROWS_PER_STATEMENT`]: each statement is a round trip to the database (for SQLite, to its
/// worker thread), so a batch that fits one statement is written without BEGIN and COMMIT
/// around it (a statement is atomic by itself).
pub(super) async fn save_tasks(store: &Store, latest: &[&TaskRecord]) -> Result<()> {
    let backend = store.backend();
    if latest.len() <= ROWS_PER_STATEMENT {
        let sql = upsert_sql(backend, latest.len());
        upsert(&sql, latest).execute(store.pool()).await?;
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

/// Rows per statement: 13 parameters each stays far below SQLite's and PostgreSQL's limits.
const ROWS_PER_STATEMENT: usize = 256;
const PARAMS_PER_ROW: usize = 13;

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

/// Every stored instance.
pub(super) async fn instances(store: &Store) -> Result<Vec<TaskInstance>> {
    let rows = sqlx::query(
        "SELECT ti_uuid, host, port, model_name, secret_hash FROM scheduler_instances \
         ORDER BY ti_uuid",
    )
    .fetch_all(store.pool())
    .await?;
    rows.iter()
        .map(|row| {
            let port: i64 = row.try_get("port")?;
            let mut ti = TaskInstance::new(
                row.try_get("ti_uuid")?,
                row.try_get("host")?,
                u16::try_from(port).unwrap_or_default(),
                row.try_get("model_name")?,
            );
            ti.secret_hash = row.try_get("secret_hash")?;
            Ok(ti)
        })
        .collect()
}

/// Stores a registration.
pub(super) async fn insert_instance(store: &Store, ti: &TaskInstance) -> Result<()> {
    sqlx::query(
        "INSERT INTO scheduler_instances (ti_uuid, host, port, model_name, registered_at, \
         secret_hash) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&ti.ti_uuid)
    .bind(&ti.host)
    .bind(i64::from(ti.port))
    .bind(&ti.model_name)
    .bind(now_ms())
    .bind(&ti.secret_hash)
    .execute(store.pool())
    .await?;
    Ok(())
}

/// Stores the hash of an instance's new secret.
pub(super) async fn set_instance_secret(
    store: &Store,
    ti_uuid: &str,
    secret_hash: &str,
) -> Result<()> {
    sqlx::query("UPDATE scheduler_instances SET secret_hash = $1 WHERE ti_uuid = $2")
        .bind(secret_hash)
        .bind(ti_uuid)
        .execute(store.pool())
        .await?;
    Ok(())
}

/// Forgets a registration.
pub(super) async fn delete_instance(store: &Store, ti_uuid: &str) -> Result<()> {
    sqlx::query("DELETE FROM scheduler_instances WHERE ti_uuid = $1")
        .bind(ti_uuid)
        .execute(store.pool())
        .await?;
    Ok(())
}

/// A stored activation of a strategy; `scope` is a model's name, or empty for every model.
pub(super) struct Activation {
    pub(super) scope: String,
    pub(super) plugin: String,
    pub(super) version: String,
    pub(super) activated_by: String,
    pub(super) activated_at: i64,
}

/// Every stored activation.
pub(super) async fn activations(store: &Store) -> Result<Vec<Activation>> {
    let rows = sqlx::query(
        "SELECT scope, plugin, version, activated_by, activated_at FROM scheduler_strategies",
    )
    .fetch_all(store.pool())
    .await?;
    rows.iter()
        .map(|row| {
            Ok(Activation {
                scope: row.try_get("scope")?,
                plugin: row.try_get("plugin")?,
                version: row.try_get("version")?,
                activated_by: row.try_get("activated_by")?,
                activated_at: row.try_get("activated_at")?,
            })
        })
        .collect()
}

/// Stores an activation, replacing the one of its scope.
pub(super) async fn save_activation(store: &Store, row: &Activation) -> Result<()> {
    sqlx::query(
        "INSERT INTO scheduler_strategies (scope, plugin, version, activated_by, activated_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (scope) DO UPDATE SET \
         plugin = excluded.plugin, version = excluded.version, \
         activated_by = excluded.activated_by, activated_at = excluded.activated_at",
    )
    .bind(&row.scope)
    .bind(&row.plugin)
    .bind(&row.version)
    .bind(&row.activated_by)
    .bind(row.activated_at)
    .execute(store.pool())
    .await?;
    Ok(())
}

/// Forgets the activation of `scope`.
pub(super) async fn delete_activation(store: &Store, scope: &str) -> Result<()> {
    sqlx::query("DELETE FROM scheduler_strategies WHERE scope = $1")
        .bind(scope)
        .execute(store.pool())
        .await?;
    Ok(())
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
