//! The versioning domain's queries: the repositories themselves live on disk; the database
//! only names the projects' owners (for authors). Projects are found by `workspace::Projects`.

use crate::error::Result;
use crate::store::Store;
use sqlx::Row as _;

/// The name of user `id`.
pub(super) async fn user_name(store: &Store, id: &str) -> Result<Option<String>> {
    let row = sqlx::query("SELECT name FROM users WHERE id = $1")
        .bind(id)
        .fetch_optional(store.pool())
        .await?;
    Ok(row.map(|r| r.try_get("name")).transpose()?)
}
