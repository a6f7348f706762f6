//! What is stored about notebooks and their executions, and every query on them: no other
//! module of the notebook domain builds SQL.

use super::execution::{Execution, ExecutionStatus};
use crate::error::Result;
use crate::store::{Store, time};
use sqlx::Row as _;
use sqlx::any::AnyRow;

/// A notebook's stored record.
#[derive(Debug, Clone)]
pub(super) struct Record {
    pub(super) id: String,
    pub(super) project_id: String,
    pub(super) owner_id: String,
    pub(super) path: String,
    pub(super) created_by: String,
    pub(super) created_at: i64,
    pub(super) updated_at: i64,
}

const NOTEBOOK_COLUMNS: &str = "id, project_id, owner_id, path, created_by, created_at, updated_at";

fn notebook_from_row(row: &AnyRow) -> Result<Record> {
    Ok(Record {
        id: row.try_get("id")?,
        project_id: row.try_get("project_id")?,
        owner_id: row.try_get("owner_id")?,
        path: row.try_get("path")?,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

pub(super) async fn notebook(store: &Store, id: &str) -> Result<Option<Record>> {
    let row = sqlx::query(&format!(
        "SELECT {NOTEBOOK_COLUMNS} FROM notebooks WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(store.pool())
    .await?;
    row.as_ref().map(notebook_from_row).transpose()
}

/// The id of the notebook at `path` in the project, if any.
pub(super) async fn notebook_at(
    store: &Store,
    project_id: &str,
    path: &str,
) -> Result<Option<String>> {
    let row = sqlx::query("SELECT id FROM notebooks WHERE project_id = $1 AND path = $2")
        .bind(project_id)
        .bind(path)
        .fetch_optional(store.pool())
        .await?;
    Ok(row.map(|row| row.try_get("id")).transpose()?)
}

/// Stores a new notebook; false if its path became a notebook meanwhile.
pub(super) async fn insert_notebook(store: &Store, record: &Record) -> Result<bool> {
    let inserted = sqlx::query(
        "INSERT INTO notebooks (id, project_id, owner_id, path, created_by, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&record.id)
    .bind(&record.project_id)
    .bind(&record.owner_id)
    .bind(&record.path)
    .bind(&record.created_by)
    .bind(record.created_at)
    .bind(record.updated_at)
    .execute(store.pool())
    .await;
    if let Err(sqlx::Error::Database(e)) = &inserted
        && e.is_unique_violation()
    {
        return Ok(false);
    }
    inserted?;
    Ok(true)
}

/// The paths of the project's notebooks.
pub(super) async fn notebook_paths(store: &Store, project_id: &str) -> Result<Vec<String>> {
    let rows = sqlx::query("SELECT path FROM notebooks WHERE project_id = $1")
        .bind(project_id)
        .fetch_all(store.pool())
        .await?;
    Ok(rows
        .iter()
        .map(|row| row.try_get("path"))
        .collect::<Result<_, _>>()?)
}

/// Every notebook (of `owner_id`, of `project_id`, when given), oldest first.
pub(super) async fn notebooks(
    store: &Store,
    owner_id: Option<&str>,
    project_id: Option<&str>,
) -> Result<Vec<Record>> {
    let mut sql = format!("SELECT {NOTEBOOK_COLUMNS} FROM notebooks WHERE 1 = 1");
    let mut binds = Vec::new();
    if let Some(owner) = owner_id {
        binds.push(owner);
        sql.push_str(&format!(" AND owner_id = ${}", binds.len()));
    }
    if let Some(project) = project_id {
        binds.push(project);
        sql.push_str(&format!(" AND project_id = ${}", binds.len()));
    }
    sql.push_str(" ORDER BY created_at, id");
    let mut query = sqlx::query(&sql);
    for bind in binds {
        query = query.bind(bind);
    }
    let rows = query.fetch_all(store.pool()).await?;
    rows.iter().map(notebook_from_row).collect()
}

pub(super) async fn delete_notebook(store: &Store, id: &str) -> Result<()> {
    sqlx::query("DELETE FROM notebooks WHERE id = $1")
        .bind(id)
        .execute(store.pool())
        .await?;
    Ok(())
}

pub(super) async fn touch_notebook(store: &Store, id: &str, now: i64) -> Result<()> {
    sqlx::query("UPDATE notebooks SET updated_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(store.pool())
        .await?;
    Ok(())
}

const EXECUTION_COLUMNS: &str = "id, notebook_id, user_id, cell_id, code, status, execution_count, message, \
                       truncated, started_at, finished_at, duration_ms";

fn execution_from_row(row: &AnyRow) -> Result<Execution> {
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

/// Stores an execution that started.
pub(super) async fn insert_execution(store: &Store, execution: &Execution) -> Result<()> {
    sqlx::query(
        "INSERT INTO notebook_executions (id, notebook_id, user_id, cell_id, code, status, started_at) \
         VALUES ($1, $2, $3, $4, $5, 'running', $6)",
    )
    .bind(&execution.execution_id)
    .bind(&execution.notebook_id)
    .bind(&execution.user_id)
    .bind(&execution.cell_id)
    .bind(&execution.code)
    .bind(execution.started_at.timestamp_millis())
    .execute(store.pool())
    .await?;
    Ok(())
}

/// Stores how an execution ended.
pub(super) async fn save_execution_end(store: &Store, execution: &Execution) -> Result<()> {
    sqlx::query(
        "UPDATE notebook_executions SET status = $1, execution_count = $2, message = $3, finished_at = $4, \
         duration_ms = $5, truncated = $6 WHERE id = $7",
    )
    .bind(execution.status.as_str())
    .bind(execution.execution_count)
    .bind(&execution.message)
    .bind(execution.finished_at.map(|t| t.timestamp_millis()))
    .bind(execution.duration_ms)
    .bind(i64::from(execution.truncated))
    .bind(&execution.execution_id)
    .execute(store.pool())
    .await?;
    Ok(())
}

/// A notebook's executions, newest first.
pub(super) async fn executions(
    store: &Store,
    notebook_id: &str,
    limit: i64,
) -> Result<Vec<Execution>> {
    let rows = sqlx::query(&format!(
        "SELECT {EXECUTION_COLUMNS} FROM notebook_executions WHERE notebook_id = $1 \
         ORDER BY started_at DESC, id DESC LIMIT $2"
    ))
    .bind(notebook_id)
    .bind(limit)
    .fetch_all(store.pool())
    .await?;
    rows.iter().map(execution_from_row).collect()
}

/// Marks the executions still running as interrupted; how many.
pub(super) async fn interrupt_running_executions(store: &Store, now: i64) -> Result<u64> {
    let done = sqlx::query(
        "UPDATE notebook_executions SET status = 'interrupted', finished_at = $1, \
         message = 'Weft restarted while this ran; its outputs were not saved' WHERE status = 'running'",
    )
    .bind(now)
    .execute(store.pool())
    .await?;
    Ok(done.rows_affected())
}
