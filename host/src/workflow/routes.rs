//! HTTP and WebSocket routes of workflows and runs under `/api/v1`.

use super::{
    Attempt, Definition, Event, Page, RunDetail, RunEvent, RunSummary, StoredKind, Workflow,
    Workflows,
};
use crate::api::extract::{Json, Path, Query, parse_json};
use crate::api::page::PageParams;
use crate::auth::Caller;
use crate::error::Result;
use axum::body::Bytes;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

/// Routes under `/api/v1`; all require a token.
pub(crate) fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    Workflows: FromRef<S>,
{
    OpenApiRouter::new()
        .routes(routes!(create_workflow, list_workflows))
        .routes(routes!(validate_workflow))
        .routes(routes!(get_workflow, update_workflow, delete_workflow))
        .routes(routes!(execute_workflow))
        .routes(routes!(workflow_status))
        .routes(routes!(workflow_runs))
        .routes(routes!(get_run))
        .routes(routes!(get_output))
        .routes(routes!(node_attempts))
        .routes(routes!(run_lineage))
        .routes(routes!(cancel_run))
        .routes(routes!(rerun_run))
        .routes(routes!(watch_all))
        .routes(routes!(watch_run))
}

/// Create a workflow (validated first; every fault is reported).
#[utoipa::path(post, path = "/workflows", tag = "workflows", request_body = Definition,
    responses((status = 201, body = Workflow), (status = 422, body = crate::api::ErrorBody)))]
async fn create_workflow(
    State(workflows): State<Workflows>,
    caller: Caller,
    Json(definition): Json<Definition>,
) -> Result<(StatusCode, Json<Workflow>)> {
    let workflow = workflows.create(&caller, definition).await?;
    Ok((StatusCode::CREATED, Json(workflow)))
}

/// List the caller's workflows (an admin's lists all).
#[utoipa::path(get, path = "/workflows", tag = "workflows", params(PageParams),
    responses((status = 200, body = Page<Workflow>)))]
async fn list_workflows(
    State(workflows): State<Workflows>,
    caller: Caller,
    Query(page): Query<PageParams>,
) -> Result<Json<Page<Workflow>>> {
    let limit = page.limit()?;
    let listed = workflows
        .list(&caller, page.cursor.as_deref(), limit)
        .await?;
    Ok(Json(listed))
}

/// The outcome of a validation.
#[derive(Debug, Serialize, ToSchema)]
struct Validated {
    valid: bool,
    nodes: usize,
    edges: usize,
    /// Every node's type as a run would pin it now: node id -> `name@version`.
    #[schema(value_type = Object)]
    plugins: serde_json::Map<String, serde_json::Value>,
}

/// Validate a definition without storing it.
#[utoipa::path(post, path = "/workflows/validate", tag = "workflows", request_body = Definition,
    responses((status = 200, body = Validated), (status = 422, body = crate::api::ErrorBody)))]
async fn validate_workflow(
    State(workflows): State<Workflows>,
    _caller: Caller,
    Json(definition): Json<Definition>,
) -> Result<Json<Validated>> {
    let plan = workflows.validate(&definition).await?;
    Ok(Json(Validated {
        valid: true,
        nodes: plan.nodes.len(),
        edges: definition.edges.len(),
        plugins: plan
            .nodes
            .iter()
            .map(|n| (n.spec.id.clone(), n.pinned_type().into()))
            .collect(),
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct VersionParam {
    /// An earlier version (default: the current one).
    version: Option<i64>,
}

/// A workflow at its current version, or at `?version=N`.
#[utoipa::path(get, path = "/workflows/{id}", tag = "workflows", params(("id" = String, Path), VersionParam),
    responses((status = 200, body = Workflow), (status = 404, body = crate::api::ErrorBody)))]
async fn get_workflow(
    State(workflows): State<Workflows>,
    caller: Caller,
    Path(id): Path<String>,
    Query(params): Query<VersionParam>,
) -> Result<Json<Workflow>> {
    match params.version {
        Some(version) => workflows.get_version(&caller, &id, version).await,
        None => workflows.get(&caller, &id).await,
    }
    .map(Json)
}

/// Save a new version of a workflow.
#[utoipa::path(put, path = "/workflows/{id}", tag = "workflows", params(("id" = String, Path)),
    request_body = Definition,
    responses((status = 200, body = Workflow), (status = 404, body = crate::api::ErrorBody),
              (status = 422, body = crate::api::ErrorBody)))]
async fn update_workflow(
    State(workflows): State<Workflows>,
    caller: Caller,
    Path(id): Path<String>,
    Json(definition): Json<Definition>,
) -> Result<Json<Workflow>> {
    workflows.update(&caller, &id, definition).await.map(Json)
}

/// Delete a workflow with its versions and runs; refused while a run is active.
#[utoipa::path(delete, path = "/workflows/{id}", tag = "workflows", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = crate::api::ErrorBody),
              (status = 409, body = crate::api::ErrorBody)))]
async fn delete_workflow(
    State(workflows): State<Workflows>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    workflows.delete(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What a run starts with.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ExecuteRequest {
    /// Values for inputs no edge feeds: `{"<node id>": {"<port>": value}}`.
    #[serde(default)]
    #[schema(value_type = Object)]
    inputs: serde_json::Map<String, serde_json::Value>,
    /// A project of the workflow's owner (id or name, as a container job names one) the run
    /// works on: its current commit is pinned as the run's code in its lineage.
    #[serde(default)]
    project: Option<String>,
}

/// Start a run of the workflow's current version. The body is optional.
#[utoipa::path(post, path = "/workflows/{id}/execute", tag = "workflows", params(("id" = String, Path)),
    request_body(content = Option<ExecuteRequest>, content_type = "application/json"),
    responses((status = 202, body = RunSummary), (status = 404, body = crate::api::ErrorBody),
              (status = 422, body = crate::api::ErrorBody)))]
async fn execute_workflow(
    State(workflows): State<Workflows>,
    caller: Caller,
    Path(id): Path<String>,
    body: std::result::Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<(StatusCode, Json<RunSummary>)> {
    let body = body.map_err(crate::api::extract::body_rejection)?;
    let request: ExecuteRequest = if body.iter().all(u8::is_ascii_whitespace) {
        ExecuteRequest::default()
    } else {
        parse_json(&body)?
    };
    let run = workflows
        .execute(&caller, &id, request.inputs, request.project.as_deref())
        .await?;
    Ok((StatusCode::ACCEPTED, Json(run)))
}

/// The latest run of a workflow, with its nodes.
#[utoipa::path(get, path = "/workflows/{id}/status", tag = "workflows", params(("id" = String, Path)),
    responses((status = 200, body = RunDetail), (status = 404, body = crate::api::ErrorBody)))]
async fn workflow_status(
    State(workflows): State<Workflows>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<RunDetail>> {
    workflows.latest_run(&caller, &id).await.map(Json)
}

/// A workflow's runs, newest first.
#[utoipa::path(get, path = "/workflows/{id}/runs", tag = "workflows",
    params(("id" = String, Path), PageParams),
    responses((status = 200, body = Page<RunSummary>), (status = 404, body = crate::api::ErrorBody)))]
async fn workflow_runs(
    State(workflows): State<Workflows>,
    caller: Caller,
    Path(id): Path<String>,
    Query(page): Query<PageParams>,
) -> Result<Json<Page<RunSummary>>> {
    let limit = page.limit()?;
    workflows
        .runs(&caller, &id, page.cursor.as_deref(), limit)
        .await
        .map(Json)
}

/// A run: per-node state, attempts, inputs and outputs, errors, times and logs.
#[utoipa::path(get, path = "/runs/{run_id}", tag = "workflows", params(("run_id" = String, Path)),
    responses((status = 200, body = RunDetail), (status = 404, body = crate::api::ErrorBody)))]
async fn get_run(
    State(workflows): State<Workflows>,
    caller: Caller,
    Path(run_id): Path<String>,
) -> Result<Json<RunDetail>> {
    workflows.run(&caller, &run_id).await.map(Json)
}

/// One output of a node of a run, as it was produced: JSON text (`application/json`) or bytes
/// (`application/octet-stream`), streamed. Outputs larger than `[workflows] inline_value_bytes`
/// are listed by the run under `stored_outputs` and read here.
#[utoipa::path(get, path = "/runs/{run_id}/nodes/{node_id}/outputs/{port}", tag = "workflows",
    params(("run_id" = String, Path), ("node_id" = String, Path), ("port" = String, Path)),
    responses((status = 200, content_type = "application/json"),
              (status = 200, content_type = "application/octet-stream"),
              (status = 404, body = crate::api::ErrorBody)))]
async fn get_output(
    State(workflows): State<Workflows>,
    caller: Caller,
    Path((run_id, node_id, port)): Path<(String, String, String)>,
) -> Result<Response> {
    use axum::response::IntoResponse as _;
    let (kind, size, chunks) = workflows.output(&caller, &run_id, &node_id, &port).await?;
    let content_type = match kind {
        StoredKind::Json => "application/json",
        StoredKind::Bytes => "application/octet-stream",
    };
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, content_type.to_string()),
            (axum::http::header::CONTENT_LENGTH, size.to_string()),
        ],
        axum::body::Body::from_stream(chunks),
    )
        .into_response())
}

/// Every attempt of one node of a run, first first: its start and end, how it went, its error
/// and its logs (the run itself shows only the node's latest attempt). A node not started yet
/// has none; a node whose outputs a re-run reused has none in the new run.
#[utoipa::path(get, path = "/runs/{run_id}/nodes/{node_id}/attempts", tag = "workflows",
    params(("run_id" = String, Path), ("node_id" = String, Path)),
    responses((status = 200, body = Vec<Attempt>), (status = 404, body = crate::api::ErrorBody)))]
async fn node_attempts(
    State(workflows): State<Workflows>,
    caller: Caller,
    Path((run_id, node_id)): Path<(String, String)>,
) -> Result<Json<Vec<Attempt>>> {
    workflows
        .attempts(&caller, &run_id, &node_id)
        .await
        .map(Json)
}

/// Cancel a run: running nodes are stopped and nothing new starts.
#[utoipa::path(post, path = "/runs/{run_id}/cancel", tag = "workflows", params(("run_id" = String, Path)),
    responses((status = 200, body = RunSummary), (status = 404, body = crate::api::ErrorBody),
              (status = 409, body = crate::api::ErrorBody)))]
async fn cancel_run(
    State(workflows): State<Workflows>,
    caller: Caller,
    Path(run_id): Path<String>,
) -> Result<Json<RunSummary>> {
    workflows.cancel(&caller, &run_id).await.map(Json)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RerunRequest {
    /// The node to run again; everything after it runs again too.
    from: String,
}

/// Run a finished run again from one node: a new run of the same version and inputs in which
/// the nodes before `from` that succeeded keep their outputs (those held in the database; a
/// node whose outputs went to the value storage runs again) and do not run.
#[utoipa::path(post, path = "/runs/{run_id}/rerun", tag = "workflows", params(("run_id" = String, Path)),
    request_body = RerunRequest,
    responses((status = 202, body = RunSummary), (status = 404, body = crate::api::ErrorBody),
              (status = 409, body = crate::api::ErrorBody), (status = 422, body = crate::api::ErrorBody)))]
async fn rerun_run(
    State(workflows): State<Workflows>,
    caller: Caller,
    Path(run_id): Path<String>,
    Json(body): Json<RerunRequest>,
) -> Result<(StatusCode, Json<RunSummary>)> {
    let run = workflows.rerun(&caller, &run_id, &body.from).await?;
    Ok((StatusCode::ACCEPTED, Json(run)))
}

/// WebSocket: events of every run the caller may see, as JSON text messages.
#[utoipa::path(get, path = "/workflows/status", tag = "workflows",
    responses((status = 101, description = "a stream of run events", body = RunEvent)))]
async fn watch_all(
    State(workflows): State<Workflows>,
    caller: Caller,
    ws: WebSocketUpgrade,
) -> Response {
    let events = workflows.events().subscribe();
    ws.on_upgrade(move |socket| {
        stream(socket, events, None, move |e| {
            caller.is_admin() || e.owner_id == caller.user_id
        })
    })
}

/// WebSocket: a snapshot of one run, then its events until it finishes.
#[utoipa::path(get, path = "/runs/{run_id}/events", tag = "workflows", params(("run_id" = String, Path)),
    responses((status = 101, description = "a snapshot, then the run's events", body = RunEvent),
              (status = 404, body = crate::api::ErrorBody)))]
async fn watch_run(
    State(workflows): State<Workflows>,
    caller: Caller,
    Path(run_id): Path<String>,
    ws: WebSocketUpgrade,
) -> Result<Response> {
    // Subscribe before reading the snapshot so nothing falls between the two.
    let events = workflows.events().subscribe();
    let detail = workflows.run(&caller, &run_id).await?;
    let snapshot = serde_json::json!({ "type": "snapshot", "run": detail });
    let finished = detail.run.status.is_finished();
    // What the snapshot's records cannot say: where its waiting jobs stand in the queue.
    let waiting = workflows.events().waiting(&run_id);
    Ok(ws.on_upgrade(move |mut socket| async move {
        if socket
            .send(Message::Text(snapshot.to_string().into()))
            .await
            .is_err()
            || finished
        {
            let _ = socket.send(Message::Close(None)).await;
            return;
        }
        for event in waiting {
            let text = serde_json::to_string(&*event).expect("events serialise");
            if socket.send(Message::Text(text.into())).await.is_err() {
                return;
            }
        }
        stream(socket, events, Some(run_id.clone()), move |e| {
            e.run_id == run_id
        })
        .await
    }))
}

/// Sends matching events until the client leaves (or, for one run, until it finishes).
async fn stream(
    mut socket: WebSocket,
    mut events: tokio::sync::broadcast::Receiver<Arc<RunEvent>>,
    until_run_finishes: Option<String>,
    wanted: impl Fn(&RunEvent) -> bool + Send,
) {
    loop {
        tokio::select! {
            received = events.recv() => {
                let event = match received {
                    Ok(event) => event,
                    Err(RecvError::Lagged(missed)) => {
                        let note = serde_json::json!({ "type": "lagged", "missed": missed });
                        if socket.send(Message::Text(note.to_string().into())).await.is_err() {
                            return;
                        }
                        continue;
                    }
                    Err(RecvError::Closed) => break,
                };
                if !wanted(&event) {
                    continue;
                }
                let text = serde_json::to_string(&*event).expect("events serialise");
                if socket.send(Message::Text(text.into())).await.is_err() {
                    return;
                }
                if until_run_finishes.is_some() && matches!(event.event, Event::RunFinished { .. }) {
                    break;
                }
            }
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
        }
    }
    let _ = socket.send(Message::Close(None)).await;
}

/// What a run ran on (its project's commit), the dataset versions its nodes read and the
/// artifacts and model versions they produced, as the host saw the nodes do it.
#[utoipa::path(get, path = "/runs/{run_id}/lineage", operation_id = "lineage_run", tag = "lineage",
    params(("run_id" = String, Path)),
    responses((status = 200, body = crate::lineage::RunLineage), (status = 404, body = crate::api::ErrorBody)))]
async fn run_lineage(
    State(workflows): State<Workflows>,
    caller: Caller,
    Path(run_id): Path<String>,
) -> Result<Json<crate::lineage::RunLineage>> {
    workflows.lineage(&caller, &run_id).await.map(Json)
}
