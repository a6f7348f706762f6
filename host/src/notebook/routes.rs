//! HTTP routes of notebooks under `/api/v1/notebooks`.

use super::execution::Execution;
use super::{ExecuteRequest, Notebook, NotebookEvent, NotebookStatus, Notebooks};
use crate::api::extract::{Json, Path, Query};
use crate::api::ws;
use crate::auth::Caller;
use crate::error::Result;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

/// Routes under `/api/v1`; all require a token.
pub(crate) fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    Notebooks: FromRef<S>,
{
    OpenApiRouter::new()
        .routes(routes!(create_notebook, list_notebooks))
        .routes(routes!(get_notebook, delete_notebook))
        .routes(routes!(execute))
        .routes(routes!(status))
        .routes(routes!(history))
        .routes(routes!(output))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewNotebook {
    project_id: String,
    /// Relative to the project, ending in `.ipynb` (default: the first free `UntitledN.ipynb`).
    /// A valid notebook already at that path is adopted.
    path: Option<String>,
}

/// Create a notebook in a project, bound to the project's Jupyter session (opened if needed);
/// its kernel starts in the background.
#[utoipa::path(post, path = "/notebooks", tag = "notebooks", request_body = NewNotebook,
    responses((status = 201, body = Notebook), (status = 409, body = crate::api::ErrorBody),
              (status = 422, body = crate::api::ErrorBody)))]
async fn create_notebook(
    State(notebooks): State<Notebooks>,
    caller: Caller,
    Json(body): Json<NewNotebook>,
) -> Result<(StatusCode, Json<Notebook>)> {
    let notebook = notebooks
        .create(&caller, &body.project_id, body.path.as_deref())
        .await?;
    Ok((StatusCode::CREATED, Json(notebook)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// Only this project's notebooks.
    project_id: Option<String>,
}

/// The caller's notebooks (an admin's: everyone's), without their cells.
#[utoipa::path(get, path = "/notebooks", tag = "notebooks", params(ListQuery),
    responses((status = 200, body = Vec<Notebook>)))]
async fn list_notebooks(
    State(notebooks): State<Notebooks>,
    caller: Caller,
    Query(query): Query<ListQuery>,
) -> Result<Json<Vec<Notebook>>> {
    Ok(Json(
        notebooks.list(&caller, query.project_id.as_deref()).await?,
    ))
}

/// One notebook: its cells with their outputs and execution counts, and its kernel.
#[utoipa::path(get, path = "/notebooks/{id}", tag = "notebooks", params(("id" = String, Path)),
    responses((status = 200, body = Notebook), (status = 404, body = crate::api::ErrorBody)))]
async fn get_notebook(
    State(notebooks): State<Notebooks>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Notebook>> {
    Ok(Json(notebooks.get(&caller, &id).await?))
}

/// Delete a notebook: its kernel is shut down, its `.ipynb` file removed from the project (and
/// the running session), its execution history dropped.
#[utoipa::path(delete, path = "/notebooks/{id}", tag = "notebooks", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = crate::api::ErrorBody)))]
async fn delete_notebook(
    State(notebooks): State<Notebooks>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    notebooks.delete(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Run code in the notebook's kernel: `{"code"}` adds a cell, `{"cell_id"}` runs one (with
/// `code` too, its source is replaced). Executions on one notebook run in the order they came.
/// Answers once it ended, with its outputs (stdout/stderr streams, results, displays, the
/// error with its traceback) and status `ok`, `error`, `timeout` (interrupted),
/// `kernel_died` (restarted) or `failed`; outputs and execution count are saved to the `.ipynb`.
#[utoipa::path(post, path = "/notebooks/{id}/execute", tag = "notebooks", params(("id" = String, Path)),
    request_body = ExecuteRequest,
    responses((status = 200, body = Execution), (status = 404, body = crate::api::ErrorBody),
              (status = 502, body = crate::api::ErrorBody)))]
async fn execute(
    State(notebooks): State<Notebooks>,
    caller: Caller,
    Path(id): Path<String>,
    Json(body): Json<ExecuteRequest>,
) -> Result<Json<Execution>> {
    Ok(Json(notebooks.execute(&caller, &id, body).await?))
}

/// The kernel's state, the running execution and how many wait.
#[utoipa::path(get, path = "/notebooks/{id}/status", tag = "notebooks", params(("id" = String, Path)),
    responses((status = 200, body = NotebookStatus), (status = 404, body = crate::api::ErrorBody)))]
async fn status(
    State(notebooks): State<Notebooks>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<NotebookStatus>> {
    Ok(Json(notebooks.status(&caller, &id).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct HistoryQuery {
    /// At most this many, newest first (default 100, at most 1000).
    limit: Option<i64>,
}

/// Who ran what in the notebook, when, for how long, and how it ended; newest first.
#[utoipa::path(get, path = "/notebooks/{id}/history", tag = "notebooks", params(("id" = String, Path), HistoryQuery),
    responses((status = 200, body = Vec<Execution>), (status = 404, body = crate::api::ErrorBody)))]
async fn history(
    State(notebooks): State<Notebooks>,
    caller: Caller,
    Path(id): Path<String>,
    Query(query): Query<HistoryQuery>,
) -> Result<Json<Vec<Execution>>> {
    let limit = query.limit.unwrap_or(100);
    Ok(Json(notebooks.history(&caller, &id, limit).await?))
}

/// WebSocket: the notebook's outputs as the kernel produces them, with execution starts and
/// ends and kernel state changes.
#[utoipa::path(get, path = "/notebooks/{id}/output", tag = "notebooks", params(("id" = String, Path)),
    responses((status = 101, body = NotebookEvent), (status = 404, body = crate::api::ErrorBody)))]
async fn output(
    State(notebooks): State<Notebooks>,
    caller: Caller,
    Path(id): Path<String>,
    upgrade: WebSocketUpgrade,
) -> Result<Response> {
    notebooks.check(&caller, &id).await?;
    let events = notebooks.subscribe();
    let messages =
        ws::broadcast_stream(events, move |event: &NotebookEvent| event.notebook_id == id);
    Ok(upgrade.on_upgrade(move |socket| ws::forward(socket, messages)))
}
