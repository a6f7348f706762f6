//! What is stored about projects and sessions, and every query on them: no other module of
//! the workspace domain builds SQL.

use super::origin::Origins;
use super::projects::Project;
use super::sessions::{Session, SessionKind, SessionStatus};
use crate::error::Result;
use crate::store::{Store, time};
use sqlx::Row as _;
use sqlx::any::AnyRow;

fn project_from_row(row: &AnyRow) -> Result<Project> {
    Ok(Project {
        id: row.try_get("id")?,
        owner_id: row.try_get("owner_id")?,
        name: row.try_get("name")?,
        created_at: time(row.try_get("created_at")?),
        updated_at: time(row.try_get("updated_at")?),
    })
}

/// Stores a new project; false if its owner already has one of that name.
pub(super) async fn insert_project(store: &Store, project: &Project) -> Result<bool> {
    let inserted = sqlx::query(
        "INSERT INTO projects (id, owner_id, name, created_at, updated_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (owner_id, name) DO NOTHING",
    )
    .bind(&project.id)
    .bind(&project.owner_id)
    .bind(&project.name)
    .bind(project.created_at.timestamp_millis())
    .bind(project.updated_at.timestamp_millis())
    .execute(store.pool())
    .await?;
    Ok(inserted.rows_affected() > 0)
}

/// Every project (of `owner_id` only, if given), oldest first.
pub(super) async fn projects(store: &Store, owner_id: Option<&str>) -> Result<Vec<Project>> {
    let rows = match owner_id {
        None => {
            sqlx::query("SELECT id, owner_id, name, created_at, updated_at FROM projects ORDER BY created_at, id")
                .fetch_all(store.pool())
                .await?
        }
        Some(owner_id) => {
            sqlx::query(
                "SELECT id, owner_id, name, created_at, updated_at FROM projects WHERE owner_id = $1 \
                 ORDER BY created_at, id",
            )
            .bind(owner_id)
            .fetch_all(store.pool())
            .await?
        }
    };
    rows.iter().map(project_from_row).collect()
}

pub(super) async fn project(store: &Store, id: &str) -> Result<Option<Project>> {
    let row = sqlx::query(
        "SELECT id, owner_id, name, created_at, updated_at FROM projects WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(store.pool())
    .await?;
    row.as_ref().map(project_from_row).transpose()
}

/// The project `name` names: `<owner name>/<project name>`, or its id; in one query.
pub(super) async fn project_named(store: &Store, name: &str) -> Result<Option<Project>> {
    let row = match name.split_once('/') {
        Some((owner, project)) => {
            sqlx::query(
                "SELECT p.id, p.owner_id, p.name, p.created_at, p.updated_at FROM projects p \
                 JOIN users u ON u.id = p.owner_id WHERE u.name = $1 AND p.name = $2",
            )
            .bind(owner)
            .bind(project)
            .fetch_optional(store.pool())
            .await?
        }
        None => return project(store, name).await,
    };
    row.as_ref().map(project_from_row).transpose()
}

pub(super) async fn delete_project(store: &Store, id: &str) -> Result<()> {
    sqlx::query("DELETE FROM projects WHERE id = $1")
        .bind(id)
        .execute(store.pool())
        .await?;
    Ok(())
}

pub(super) async fn touch_project(store: &Store, id: &str, now: i64) -> Result<()> {
    sqlx::query("UPDATE projects SET updated_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(store.pool())
        .await?;
    Ok(())
}

const SESSION_COLUMNS: &str = "id, owner_id, project_id, kind, status, container_id, error, \
                       created_at, ready_at, stopped_at, last_activity_at";

fn session_from_row(row: &AnyRow, origins: &Origins) -> Result<Session> {
    let id: String = row.try_get("id")?;
    Ok(Session {
        url: origins.url(&id),
        session_id: id,
        project_id: row.try_get("project_id")?,
        owner_id: row.try_get("owner_id")?,
        kind: SessionKind::parse(&row.try_get::<String, _>("kind")?)?,
        status: SessionStatus::parse(&row.try_get::<String, _>("status")?)?,
        container_id: row.try_get("container_id")?,
        error: row.try_get("error")?,
        created_at: time(row.try_get("created_at")?),
        ready_at: row.try_get::<Option<i64>, _>("ready_at")?.map(time),
        stopped_at: row.try_get::<Option<i64>, _>("stopped_at")?.map(time),
        last_activity_at: time(row.try_get("last_activity_at")?),
        access_token: None,
        link: None,
        idle_stop_at: None,
        lifetime_stop_at: None,
    })
}

/// Stores a new pending session.
pub(super) async fn insert_session(
    store: &Store,
    id: &str,
    owner_id: &str,
    project_id: &str,
    kind: SessionKind,
    token_hash: &str,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO sessions (id, owner_id, project_id, kind, status, token_hash, created_at, \
         last_activity_at) VALUES ($1, $2, $3, $4, 'pending', $5, $6, $7)",
    )
    .bind(id)
    .bind(owner_id)
    .bind(project_id)
    .bind(kind.as_str())
    .bind(token_hash)
    .bind(now)
    .bind(now)
    .execute(store.pool())
    .await?;
    Ok(())
}

/// Saves a session's status, container, error and times.
pub(super) async fn save_session(store: &Store, s: &Session) -> Result<()> {
    sqlx::query(
        "UPDATE sessions SET status = $1, container_id = $2, error = $3, ready_at = $4, stopped_at = $5, \
         last_activity_at = $6 WHERE id = $7",
    )
    .bind(s.status.as_str())
    .bind(&s.container_id)
    .bind(&s.error)
    .bind(s.ready_at.map(|t| t.timestamp_millis()))
    .bind(s.stopped_at.map(|t| t.timestamp_millis()))
    .bind(s.last_activity_at.timestamp_millis())
    .bind(&s.session_id)
    .execute(store.pool())
    .await?;
    Ok(())
}

pub(super) async fn session(store: &Store, origins: &Origins, id: &str) -> Result<Option<Session>> {
    let row = sqlx::query(&format!(
        "SELECT {SESSION_COLUMNS} FROM sessions WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(store.pool())
    .await?;
    row.as_ref()
        .map(|r| session_from_row(r, origins))
        .transpose()
}

/// The newest session of `owner_id` on `project_id`, whatever its status.
pub(super) async fn latest_session(
    store: &Store,
    origins: &Origins,
    owner_id: &str,
    project_id: &str,
) -> Result<Option<Session>> {
    let row = sqlx::query(&format!(
        "SELECT {SESSION_COLUMNS} FROM sessions WHERE owner_id = $1 AND project_id = $2 ORDER BY created_at DESC, id DESC"
    ))
    .bind(owner_id)
    .bind(project_id)
    .fetch_optional(store.pool())
    .await?;
    row.as_ref()
        .map(|r| session_from_row(r, origins))
        .transpose()
}

/// Every session in one of `statuses`.
pub(super) async fn sessions_with_status(
    store: &Store,
    origins: &Origins,
    statuses: &[SessionStatus],
) -> Result<Vec<Session>> {
    let placeholders = (1..=statuses.len())
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE status IN ({placeholders})");
    let mut query = sqlx::query(&sql);
    for status in statuses {
        query = query.bind(status.as_str());
    }
    let rows = query.fetch_all(store.pool()).await?;
    rows.iter().map(|r| session_from_row(r, origins)).collect()
}

/// A session with the hashes of its one-time access token and of its cookie secret.
pub(super) type Secrets = (Session, Option<String>, Option<String>);

/// A session with the hashes of its one-time access token and of its cookie secret.
pub(super) async fn session_with_secrets(
    store: &Store,
    origins: &Origins,
    id: &str,
) -> Result<Option<Secrets>> {
    let row = sqlx::query(&format!(
        "SELECT {SESSION_COLUMNS}, token_hash, cookie_hash FROM sessions WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(store.pool())
    .await?;
    let Some(row) = row else { return Ok(None) };
    Ok(Some((
        session_from_row(&row, origins)?,
        row.try_get("token_hash")?,
        row.try_get("cookie_hash")?,
    )))
}

/// Gives a session a new one-time access token.
pub(super) async fn set_token_hash(store: &Store, id: &str, token_hash: &str) -> Result<()> {
    sqlx::query("UPDATE sessions SET token_hash = $1 WHERE id = $2")
        .bind(token_hash)
        .bind(id)
        .execute(store.pool())
        .await?;
    Ok(())
}

/// Spends a session's access token: the cookie secret takes its place.
pub(super) async fn spend_token(store: &Store, id: &str, cookie_hash: &str) -> Result<()> {
    sqlx::query("UPDATE sessions SET token_hash = NULL, cookie_hash = $1 WHERE id = $2")
        .bind(cookie_hash)
        .bind(id)
        .execute(store.pool())
        .await?;
    Ok(())
}

pub(super) async fn touch_session(store: &Store, id: &str, now: i64) -> Result<()> {
    sqlx::query("UPDATE sessions SET last_activity_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(store.pool())
        .await?;
    Ok(())
}

/// The (ready, stopped) times of `owner`'s sessions that were ready at some point after
/// `since_ms` (the open ones included), for the time quota.
pub(super) async fn session_spans(
    store: &Store,
    owner: &str,
    since_ms: i64,
) -> Result<Vec<(i64, Option<i64>)>> {
    let rows = sqlx::query(
        "SELECT ready_at, stopped_at FROM sessions WHERE owner_id = $1 AND ready_at IS NOT NULL \
         AND (stopped_at IS NULL OR stopped_at > $2)",
    )
    .bind(owner)
    .bind(since_ms)
    .fetch_all(store.pool())
    .await?;
    rows.iter()
        .map(|row| Ok((row.try_get("ready_at")?, row.try_get("stopped_at")?)))
        .collect()
}

/// How many sessions are on record of each (kind, status).
pub(super) async fn session_counts(store: &Store) -> Result<Vec<(String, String, i64)>> {
    let rows =
        sqlx::query("SELECT kind, status, COUNT(*) AS n FROM sessions GROUP BY kind, status")
            .fetch_all(store.pool())
            .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("kind")?, r.try_get("status")?, r.try_get("n")?)))
        .collect()
}
