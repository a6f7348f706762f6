//! HTTP routes of projects and their files under `/api/v1`.

use super::sessions::{Session, SessionEvent, SessionKind, Sessions, StoppedSession};
use super::sync::SyncReport;
use super::{FileEntry, Project, Projects};
use crate::api::extract::{Json, Path};
use crate::api::ws;
use crate::auth::Caller;
use crate::error::Result;
use axum::body::Body;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{FromRef, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::response::Response;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

/// Routes under `/api/v1`; all require a token. File uploads stream to storage, up to
/// `[workspaces] max_file_bytes` (checked as they arrive, not by a body limit).
pub(crate) fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    Projects: FromRef<S>,
    Sessions: FromRef<S>,
{
    OpenApiRouter::new()
        .routes(routes!(create_project, list_projects))
        .routes(routes!(get_project, delete_project))
        .routes(routes!(list_files))
        .routes(routes!(open_session, get_session, stop_session))
        .routes(routes!(sync_session))
        .routes(routes!(heartbeat))
        .routes(routes!(session_events))
        .routes(routes!(my_usage))
        .routes(routes!(download_file, upload_file, delete_file))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct OpenSession {
    kind: SessionKind,
}

/// Open a workspace session on the project, or get the active one; either way the answer
/// carries a fresh one-time `access_token` for `url?token=...`. 201 when created.
#[utoipa::path(post, path = "/projects/{id}/session", tag = "projects", params(("id" = String, Path)), request_body = OpenSession,
    responses((status = 201, body = Session), (status = 200, body = Session), (status = 409, body = crate::api::ErrorBody)))]
async fn open_session(
    State(sessions): State<Sessions>,
    caller: Caller,
    Path(id): Path<String>,
    Json(body): Json<OpenSession>,
) -> Result<(StatusCode, Json<Session>)> {
    let (session, created) = sessions.open(&caller, &id, body.kind).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(session)))
}

/// The project's latest session (active or not).
#[utoipa::path(get, path = "/projects/{id}/session", tag = "projects", params(("id" = String, Path)),
    responses((status = 200, body = Session), (status = 404, body = crate::api::ErrorBody)))]
async fn get_session(
    State(sessions): State<Sessions>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Session>> {
    Ok(Json(sessions.get(&caller, &id).await?))
}

/// Stop the active session: sync its files back first, then remove its container; the answer
/// says what the sync brought back (`sync`). A failed sync keeps both (10106). The session's
/// events (`GET /sessions/events`) show the sync while it runs.
#[utoipa::path(delete, path = "/projects/{id}/session", tag = "projects", params(("id" = String, Path)),
    responses((status = 200, body = StoppedSession), (status = 502, body = crate::api::ErrorBody)))]
async fn stop_session(
    State(sessions): State<Sessions>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<StoppedSession>> {
    Ok(Json(sessions.stop(&caller, &id).await?))
}

/// Copy the workspace's changes (added, changed, deleted files) back to the project now.
#[utoipa::path(post, path = "/projects/{id}/session/sync", tag = "projects", params(("id" = String, Path)),
    responses((status = 200, body = SyncReport), (status = 502, body = crate::api::ErrorBody)))]
async fn sync_session(
    State(sessions): State<Sessions>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<SyncReport>> {
    Ok(Json(sessions.sync(&caller, &id).await?))
}

/// Keep the active session from being reaped as idle.
#[utoipa::path(post, path = "/projects/{id}/session/heartbeat", tag = "projects", params(("id" = String, Path)),
    responses((status = 200, body = Session), (status = 404, body = crate::api::ErrorBody)))]
async fn heartbeat(
    State(sessions): State<Sessions>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Session>> {
    Ok(Json(sessions.heartbeat(&caller, &id).await?))
}

/// WebSocket: the caller's session events (status changes, sync results, warnings); an
/// admin's sees all.
#[utoipa::path(get, path = "/sessions/events", tag = "projects", responses((status = 101, body = SessionEvent)))]
async fn session_events(
    State(sessions): State<Sessions>,
    caller: Caller,
    upgrade: WebSocketUpgrade,
) -> Response {
    let events = sessions.subscribe();
    let messages = ws::broadcast_stream(events, move |event: &SessionEvent| {
        caller.is_admin() || event.owner_id == caller.user_id
    });
    upgrade.on_upgrade(move |socket| ws::forward(socket, messages))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewProject {
    /// Unique among the caller's projects.
    name: String,
}

#[utoipa::path(post, path = "/projects", tag = "projects", request_body = NewProject,
    responses((status = 201, body = Project), (status = 409, body = crate::api::ErrorBody)))]
async fn create_project(
    State(projects): State<Projects>,
    caller: Caller,
    Json(body): Json<NewProject>,
) -> Result<(StatusCode, Json<Project>)> {
    Ok((
        StatusCode::CREATED,
        Json(projects.create(&caller, &body.name).await?),
    ))
}

/// The caller's projects (an admin's lists all).
#[utoipa::path(get, path = "/projects", tag = "projects", responses((status = 200, body = Vec<Project>)))]
async fn list_projects(
    State(projects): State<Projects>,
    caller: Caller,
) -> Result<Json<Vec<Project>>> {
    Ok(Json(projects.list(&caller).await?))
}

#[utoipa::path(get, path = "/projects/{id}", tag = "projects", params(("id" = String, Path)),
    responses((status = 200, body = Project), (status = 404, body = crate::api::ErrorBody)))]
async fn get_project(
    State(projects): State<Projects>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Project>> {
    Ok(Json(projects.get(&caller, &id).await?))
}

/// Delete a project and its files.
#[utoipa::path(delete, path = "/projects/{id}", tag = "projects", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = crate::api::ErrorBody)))]
async fn delete_project(
    State(projects): State<Projects>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    projects.delete(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every file of the project, by path.
#[utoipa::path(get, path = "/projects/{id}/files", tag = "projects", params(("id" = String, Path)),
    responses((status = 200, body = Vec<FileEntry>), (status = 404, body = crate::api::ErrorBody)))]
async fn list_files(
    State(projects): State<Projects>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Vec<FileEntry>>> {
    Ok(Json(projects.files(&caller, &id).await?))
}

/// Download one file (streamed from storage).
#[utoipa::path(get, path = "/projects/{id}/files/{*path}", tag = "projects",
    params(("id" = String, Path), ("path" = String, Path, description = "relative, may hold '/'")),
    responses((status = 200, content_type = "application/octet-stream"), (status = 404, body = crate::api::ErrorBody)))]
async fn download_file(
    State(projects): State<Projects>,
    caller: Caller,
    Path((id, path)): Path<(String, String)>,
) -> Result<impl IntoResponse> {
    let (size, chunks) = projects.read(&caller, &id, &path).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_LENGTH, size.to_string()),
        ],
        Body::from_stream(chunks),
    ))
}

/// Upload one file (the raw body), replacing what was at that path once it arrived whole.
#[utoipa::path(put, path = "/projects/{id}/files/{*path}", tag = "projects",
    params(("id" = String, Path), ("path" = String, Path, description = "relative, may hold '/'")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 200, body = FileEntry), (status = 413, body = crate::api::ErrorBody),
              (status = 409, body = crate::api::ErrorBody), (status = 422, body = crate::api::ErrorBody)))]
async fn upload_file(
    State(projects): State<Projects>,
    caller: Caller,
    Path((id, path)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<FileEntry>> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let stored = projects
        .write_stream(&caller, &id, &path, declared, body.into_data_stream())
        .await?;
    Ok(Json(stored))
}

#[utoipa::path(delete, path = "/projects/{id}/files/{*path}", tag = "projects",
    params(("id" = String, Path), ("path" = String, Path, description = "relative, may hold '/'")),
    responses((status = 204), (status = 404, body = crate::api::ErrorBody)))]
async fn delete_file(
    State(projects): State<Projects>,
    caller: Caller,
    Path((id, path)): Path<(String, String)>,
) -> Result<StatusCode> {
    projects.remove(&caller, &id, &path).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's session time in the current quota period.
#[utoipa::path(get, path = "/users/me/usage", tag = "projects", responses((status = 200, body = super::quota::Usage)))]
async fn my_usage(
    State(sessions): State<Sessions>,
    caller: Caller,
) -> Result<Json<super::quota::Usage>> {
    Ok(Json(sessions.usage(&caller.user_id).await?))
}
