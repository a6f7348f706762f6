//! The versioning domain's queries: the repositories themselves live on disk; the database
//! only names projects (by owner and name, for clone URLs) and their owners (for authors).

use crate::error::Result;
use crate::store::Store;
use sqlx::Row as _;

/// The id of the project `name` of the user named `owner`.
pub(super) async fn project_id(store: &Store, owner: &str, name: &str) -> Result<Option<String>> {
    let row = sqlx::query(
        "SELECT p.id FROM projects p JOIN users u ON u.id = p.owner_id \
         WHERE u.name = $1 AND p.name = $2",
    )
    .bind(owner)
    .bind(name)
    .fetch_optional(store.pool())
    .await?;
    Ok(row.map(|r| r.try_get("id")).transpose()?)
}

/// The name of user `id`.
pub(super) async fn user_name(store: &Store, id: &str) -> Result<Option<String>> {
    let row = sqlx::query("SELECT name FROM users WHERE id = $1")
        .bind(id)
        .fetch_optional(store.pool())
        .await?;
    Ok(row.map(|r| r.try_get("name")).transpose()?)
}
