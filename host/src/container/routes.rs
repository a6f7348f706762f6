//! HTTP and WebSocket routes of containers and resources under `/api/v1`.

use super::driver::LogChunk;
use super::{Container, Containers, NewContainer, ResourceRequest, ResourcesReport, StatusEvent};
use crate::api::extract::{Json, Path, Query};
use crate::api::ws;
use crate::auth::Caller;
use crate::error::Result;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::response::Response;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

/// Routes under `/api/v1`; all require a token.
pub(crate) fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    Containers: FromRef<S>,
{
    OpenApiRouter::new()
        .routes(routes!(create_container, list_containers))
        .routes(routes!(watch_status))
        .routes(routes!(get_container, delete_container))
        .routes(routes!(start_container))
        .routes(routes!(stop_container))
        .routes(routes!(container_stats))
        .routes(routes!(container_logs))
        .routes(routes!(resources))
        .routes(routes!(allocate))
}

/// Create a container from a local image and (by default) start it. Refused with 10101 when
/// the host lacks the resources, 10202 over the caller's limits, 10203 for a missing image,
/// 10204 when it exits at once (it is kept, status failed), 10301 for an image not on
/// `[containers] allowed_images`.
#[utoipa::path(post, path = "/containers", tag = "containers", request_body = NewContainer,
    responses((status = 201, body = Container), (status = 403, body = crate::api::ErrorBody),
              (status = 422, body = crate::api::ErrorBody),
              (status = 503, body = crate::api::ErrorBody)))]
async fn create_container(
    State(containers): State<Containers>,
    caller: Caller,
    Json(request): Json<NewContainer>,
) -> Result<(StatusCode, Json<Container>)> {
    let created = containers.create(&caller, request).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// The caller's containers (an admin's lists all), oldest first.
#[utoipa::path(get, path = "/containers", tag = "containers",
    responses((status = 200, body = Vec<Container>)))]
async fn list_containers(
    State(containers): State<Containers>,
    caller: Caller,
) -> Result<Json<Vec<Container>>> {
    Ok(Json(containers.list(&caller).await?))
}

#[utoipa::path(get, path = "/containers/{id}", tag = "containers", params(("id" = String, Path)),
    responses((status = 200, body = Container), (status = 404, body = crate::api::ErrorBody)))]
async fn get_container(
    State(containers): State<Containers>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Container>> {
    Ok(Json(containers.get(&caller, &id).await?))
}

/// Stop (if running) and remove a container.
#[utoipa::path(delete, path = "/containers/{id}", tag = "containers", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = crate::api::ErrorBody)))]
async fn delete_container(
    State(containers): State<Containers>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    containers.remove(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/containers/{id}/start", tag = "containers", params(("id" = String, Path)),
    responses((status = 200, body = Container), (status = 404, body = crate::api::ErrorBody)))]
async fn start_container(
    State(containers): State<Containers>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Container>> {
    Ok(Json(containers.start_container(&caller, &id).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct StopParams {
    /// Seconds between SIGTERM and SIGKILL (default from the configuration).
    timeout: Option<u64>,
}

/// Stop a container: SIGTERM, then SIGKILL after the timeout.
#[utoipa::path(post, path = "/containers/{id}/stop", tag = "containers", params(("id" = String, Path), StopParams),
    responses((status = 200, body = Container), (status = 404, body = crate::api::ErrorBody)))]
async fn stop_container(
    State(containers): State<Containers>,
    caller: Caller,
    Path(id): Path<String>,
    Query(params): Query<StopParams>,
) -> Result<Json<Container>> {
    let grace = params.timeout.map(Duration::from_secs);
    Ok(Json(containers.stop(&caller, &id, grace).await?))
}

/// One sample of a running container's use.
#[derive(Debug, Serialize, ToSchema)]
struct StatsView {
    /// Of one core: 150 is one and a half cores.
    cpu_percent: f64,
    memory_bytes: u64,
    memory_limit_bytes: u64,
    pids: u64,
}

#[utoipa::path(get, path = "/containers/{id}/stats", tag = "containers", params(("id" = String, Path)),
    responses((status = 200, body = StatsView), (status = 404, body = crate::api::ErrorBody)))]
async fn container_stats(
    State(containers): State<Containers>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<StatsView>> {
    let s = containers.stats(&caller, &id).await?;
    Ok(Json(StatsView {
        cpu_percent: s.cpu_percent,
        memory_bytes: s.memory_bytes,
        memory_limit_bytes: s.memory_limit_bytes,
        pids: s.pids,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct LogParams {
    /// Start with only the last N chunks (all by default).
    tail: Option<u64>,
}

/// WebSocket: the container's output as `{"stream","text"}` messages, live until it stops.
#[utoipa::path(get, path = "/containers/{id}/logs", tag = "containers", params(("id" = String, Path), LogParams),
    responses((status = 101, body = LogChunk), (status = 404, body = crate::api::ErrorBody)))]
async fn container_logs(
    State(containers): State<Containers>,
    caller: Caller,
    Path(id): Path<String>,
    Query(params): Query<LogParams>,
    upgrade: WebSocketUpgrade,
) -> Result<Response> {
    let logs = containers.logs(&caller, &id, params.tail).await?;
    let messages = logs.map(|chunk| match chunk {
        Ok(chunk) => serde_json::to_value(chunk).expect("log chunks serialise"),
        Err(e) => {
            serde_json::json!({ "type": "error", "code": e.code.as_string(), "message": e.message })
        }
    });
    Ok(upgrade.on_upgrade(move |socket| ws::forward(socket, messages)))
}

/// WebSocket: status changes of the caller's containers (an admin's sees all), as they happen.
#[utoipa::path(get, path = "/containers/status", tag = "containers",
    responses((status = 101, body = StatusEvent)))]
async fn watch_status(
    State(containers): State<Containers>,
    caller: Caller,
    upgrade: WebSocketUpgrade,
) -> Response {
    let events = containers.subscribe();
    let messages = ws::broadcast_stream(events, move |event: &StatusEvent| {
        caller.is_admin() || event.owner_id == caller.user_id
    });
    upgrade.on_upgrade(move |socket| ws::forward(socket, messages))
}

/// The engine, the host's capacity, what Weft's containers hold and what is free, per
/// resource, and the caller's share.
#[utoipa::path(get, path = "/resources", tag = "containers",
    responses((status = 200, body = ResourcesReport)))]
async fn resources(
    State(containers): State<Containers>,
    caller: Caller,
) -> Result<Json<ResourcesReport>> {
    Ok(Json(containers.report(&caller).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct AllocateRequest {
    resources: ResourceRequest,
}

/// Whether a container asking for these resources would be admitted now (nothing is held).
#[derive(Debug, Serialize, ToSchema)]
struct Admitted {
    admitted: bool,
    cpu: String,
    memory: String,
    gpu: String,
}

/// Admission check: answers 200 when a container with these resources would be created now,
/// or the same refusal (10101 / 10202) a create would get.
#[utoipa::path(post, path = "/resources/allocate", tag = "containers", request_body = AllocateRequest,
    responses((status = 200, body = Admitted), (status = 503, body = crate::api::ErrorBody)))]
async fn allocate(
    State(containers): State<Containers>,
    caller: Caller,
    Json(request): Json<AllocateRequest>,
) -> Result<Json<Admitted>> {
    let limits = containers.check(&caller, &request.resources).await?;
    Ok(Json(Admitted {
        admitted: true,
        cpu: super::quantity::format_cpu(limits.cpu_millis),
        memory: super::quantity::format_memory(limits.memory_bytes),
        gpu: limits.gpus.to_string(),
    }))
}
