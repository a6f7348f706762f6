//! Which commit of a project a run's jobs see. A run pins each project's `HEAD` once: as it is
//! made for the run's own project (`workflow::records`: the commit its lineage names), at its
//! start for the projects its nodes name, else when its first job names one; every later job of
//! the run (a retry, a job after a host restart) gets the same commit, so a commit made while
//! the run goes on reaches none of them. A call outside a run gets `HEAD` as it is.

use crate::auth::Caller;
use crate::error::Result;
use crate::git::Git;
use crate::store::{Store, now_ms};
use sqlx::Row as _;

/// The commit of project `project_id` (of `caller`) that run `run_id` pinned, pinning its
/// current `HEAD` if the run has none yet; `None` while the project has no commit.
pub(crate) async fn pin_commit(
    store: &Store,
    git: &Git,
    caller: &Caller,
    run_id: Option<&str>,
    project_id: &str,
) -> Result<Option<String>> {
    let Some(run_id) = run_id else {
        return git.head_commit(caller, project_id).await;
    };
    if let Some(pinned) = pinned(store, run_id, project_id).await? {
        return Ok(Some(pinned));
    }
    let Some(head) = git.head_commit(caller, project_id).await? else {
        return Ok(None);
    };
    sqlx::query(
        "INSERT INTO run_commits (run_id, project_id, commit_id, pinned_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (run_id, project_id) DO NOTHING",
    )
    .bind(run_id)
    .bind(project_id)
    .bind(&head)
    .bind(now_ms())
    .execute(store.pool())
    .await?;
    // Another host or job may have pinned first: the stored commit wins.
    Ok(pinned(store, run_id, project_id).await?.or(Some(head)))
}

async fn pinned(store: &Store, run_id: &str, project_id: &str) -> Result<Option<String>> {
    let row =
        sqlx::query("SELECT commit_id FROM run_commits WHERE run_id = $1 AND project_id = $2")
            .bind(run_id)
            .bind(project_id)
            .fetch_optional(store.pool())
            .await?;
    Ok(row.map(|r| r.try_get("commit_id")).transpose()?)
}
