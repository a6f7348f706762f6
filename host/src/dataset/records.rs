//! What is stored about data versions, and every query on them: no other module of the
//! dataset domain builds SQL.

use crate::error::Result;
use crate::store::{Store, now_ms};
use sqlx::Row as _;

/// The size of object `oid` of project `project`, if it has it.
pub(super) async fn object_size(store: &Store, project: &str, oid: &str) -> Result<Option<u64>> {
    let row = sqlx::query("SELECT size FROM dvc_objects WHERE project_id = $1 AND oid = $2")
        .bind(project)
        .bind(oid)
        .fetch_optional(store.pool())
        .await?;
    Ok(row
        .map(|r| r.try_get::<i64, _>("size"))
        .transpose()?
        .map(|size| size as u64))
}

/// Makes object `oid` of project `project` visible.
pub(super) async fn insert_object(
    store: &Store,
    project: &str,
    oid: &str,
    size: u64,
    by: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO dvc_objects (project_id, oid, size, uploaded_by, created_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (project_id, oid) DO NOTHING",
    )
    .bind(project)
    .bind(oid)
    .bind(size as i64)
    .bind(by)
    .bind(now_ms())
    .execute(store.pool())
    .await?;
    Ok(())
}

/// The bytes the objects of every project of user `owner` take.
pub(super) async fn stored_bytes_of_owner(store: &Store, owner: &str) -> Result<u64> {
    let row = sqlx::query(
        "SELECT CAST(COALESCE(SUM(o.size), 0) AS BIGINT) AS bytes FROM dvc_objects o \
         JOIN projects p ON p.id = o.project_id WHERE p.owner_id = $1",
    )
    .bind(owner)
    .fetch_one(store.pool())
    .await?;
    Ok(row.try_get::<i64, _>("bytes")? as u64)
}

/// Forgets every object of project `project`.
pub(super) async fn delete_objects(store: &Store, project: &str) -> Result<()> {
    sqlx::query("DELETE FROM dvc_objects WHERE project_id = $1")
        .bind(project)
        .execute(store.pool())
        .await?;
    Ok(())
}
