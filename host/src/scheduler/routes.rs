//! HTTP routes of the scheduler.
//!
//! The SwarmPilot paths (`/health`, `/ti/*`, `/queue/*`, `/task/query`, `/notify/*`) keep the
//! exact paths and fields SwarmPilot clients and task instances use, at the root of the
//! scheduler's listener. Their errors carry `"status": "error"` (and FastAPI's `detail`) next to
//! Weft's code, message and hint. Who may call them is [`super::access`]'s to say.
//! The admin API lives under `/api/v1/scheduler`.

use super::access::{SpAccess, Who};
use super::config::SchedulerConfig;
use super::raw::{self, RawJson};
use super::sp_http::{SpError, SpJson, SpQuery};
use super::{Completion, DecisionStats, QueueItem, Scheduler, TaskView};
use crate::api::extract::{Json, Query};
use crate::auth::Auth;
use crate::auth::Caller;
use crate::error::Result;
use crate::registry::Plugins;
use crate::scheduler::instances::TaskInstance;
use crate::scheduler::strategies::{ActiveView, InEffect};
use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

/// The SwarmPilot paths, served at the root of the scheduler's listener.
pub(crate) fn swarmpilot_router<S>(auth: Auth, config: &SchedulerConfig) -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    Scheduler: FromRef<S>,
    Auth: FromRef<S>,
{
    let guarded = OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(remove))
        .routes(routes!(submit))
        .routes(routes!(queue_info))
        .routes(routes!(task_query))
        .routes(routes!(task_complete))
        .routes(routes!(result_submit))
        .route(
            super::access::RESULT_SOCKET_PATH,
            axum::routing::get(super::result_socket::serve),
        )
        .route_layer(super::access::trusted_or_token(auth, config));
    OpenApiRouter::new().routes(routes!(health)).merge(guarded)
}

/// The admin API under `/api/v1`; all routes require a token.
pub(crate) fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    Scheduler: FromRef<S>,
    Auth: FromRef<S>,
    Plugins: FromRef<S>,
{
    OpenApiRouter::new()
        .routes(routes!(list_instances))
        .routes(routes!(list_strategies))
        .routes(routes!(activate, deactivate))
        .routes(routes!(stats))
}

/// Scheduler health (public).
#[utoipa::path(get, path = "/health", operation_id = "scheduler_health", tag = "scheduler (SwarmPilot)", security(()),
    responses((status = 200, body = Object, example = json!({"status": "healthy", "service": "scheduler", "version": "0.1.0"}))))]
async fn health() -> axum::Json<Value> {
    axum::Json(json!({
        "status": "healthy",
        "service": "scheduler",
        "version": env!("CARGO_PKG_VERSION"),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
struct RegisterRequest {
    host: String,
    port: u16,
    /// The model it serves; by default what its `GET /info` says.
    #[serde(default)]
    model_name: Option<String>,
}

/// Register a task instance (idempotent: the same host and port get the same `ti_uuid`).
/// The answer's `ti_secret` is a new secret the instance may send (as `Authorization: Bearer`
/// or in the token header) with its completions when it reports from another address than
/// its registered one; it replaces the instance's earlier secret.
#[utoipa::path(post, path = "/ti/register", tag = "scheduler (SwarmPilot)", request_body = RegisterRequest,
    responses((status = 200, description = "`status` is `success` or `error` (unreachable instance)", body = Object)))]
async fn register(
    State(scheduler): State<Scheduler>,
    SpJson(body): SpJson<RegisterRequest>,
) -> Result<Response, SpError> {
    match scheduler
        .register(&body.host, body.port, body.model_name.as_deref(), true)
        .await
    {
        Ok(registered) => Ok(axum::Json(json!({
            "status": "success",
            "message": if registered.created { "task instance registered" } else { "task instance already registered" },
            "ti_uuid": registered.ti_uuid,
            "ti_secret": registered.secret,
        }))
        .into_response()),
        Err(err) if err.code == crate::error::Code::SchedulerInstanceUnreachable => {
            Ok(SpError(err).with_ok_status(json!({ "ti_uuid": null })))
        }
        Err(err) => Err(err.into()),
    }
}

/// The seed names the instance by `ti_uuid`; SwarmPilot's newer scheduler by `host` and
/// `port`. Either is accepted.
#[derive(Debug, Deserialize, ToSchema)]
struct RemoveRequest {
    #[serde(default)]
    ti_uuid: Option<String>,
    #[serde(default)]
    host: Option<String>,
    #[serde(default)]
    port: Option<u16>,
}

/// Remove a task instance; the tasks it held are routed to others or failed with the reason.
#[utoipa::path(post, path = "/ti/remove", tag = "scheduler (SwarmPilot)", request_body = RemoveRequest,
    responses((status = 200, description = "`status` is `success` or `error` (unknown instance)", body = Object),
              (status = 422, description = "not a UUID, or no instance named", body = Object)))]
async fn remove(
    State(scheduler): State<Scheduler>,
    SpJson(body): SpJson<RemoveRequest>,
) -> Result<Response, SpError> {
    let ti_uuid = match (&body.ti_uuid, &body.host, body.port) {
        (Some(id), _, _) => id.trim().to_string(),
        (None, Some(host), Some(port)) => {
            match scheduler.instance_named(&format!("{}:{port}", host.trim())) {
                Ok(id) => id,
                Err(err) => {
                    return Ok(SpError(err).with_ok_status(json!({
                        "ti_uuid": null, "host": host, "port": port,
                    })));
                }
            }
        }
        _ => {
            return Err(crate::error::Error::invalid_field(
                "ti_uuid",
                "name the instance by ti_uuid, or by host and port",
            )
            .into());
        }
    };
    let named = json!({ "ti_uuid": ti_uuid, "host": body.host, "port": body.port });
    match scheduler.remove(&ti_uuid).await {
        Ok(()) => {
            let mut answer = json!({
                "status": "success",
                "message": "task instance removed",
            });
            if let (Some(answer), Value::Object(named)) = (answer.as_object_mut(), named) {
                answer.extend(named.into_iter().filter(|(_, v)| !v.is_null()));
            }
            Ok(axum::Json(answer).into_response())
        }
        Err(err) if err.code == crate::error::Code::SchedulerUnknownInstance => {
            Ok(SpError(err).with_ok_status(named))
        }
        Err(err) => Err(err.into()),
    }
}

#[derive(Debug, Deserialize, ToSchema)]
struct SubmitRequest {
    model_name: String,
    #[serde(deserialize_with = "raw::object")]
    #[schema(value_type = Object)]
    task_input: RawJson,
    #[serde(default = "RawJson::empty_object", deserialize_with = "raw::object")]
    #[schema(value_type = Object)]
    metadata: RawJson,
}

#[derive(Serialize)]
struct SubmitAnswer {
    status: &'static str,
    task_id: String,
    scheduled_ti: String,
}

/// Submit a task: the active strategy picks an instance serving the model. The task is the
/// caller's: only they (or an admin) can query it.
#[utoipa::path(post, path = "/queue/submit", tag = "scheduler (SwarmPilot)", request_body = SubmitRequest,
    responses((status = 200, body = Object, example = json!({"status": "success", "task_id": "…", "scheduled_ti": "…"})),
              (status = 503, description = "no healthy instance serves the model", body = Object)))]
async fn submit(
    State(scheduler): State<Scheduler>,
    access: SpAccess,
    SpJson(body): SpJson<SubmitRequest>,
) -> Result<axum::Json<SubmitAnswer>, SpError> {
    let submitted = scheduler
        .submit(
            &body.model_name,
            body.task_input,
            body.metadata,
            access.owner(),
        )
        .await?;
    Ok(axum::Json(SubmitAnswer {
        status: "success",
        task_id: submitted.task_id,
        scheduled_ti: submitted.ti_uuid,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ModelParam {
    /// Only this model's instances.
    model_name: Option<String>,
}

/// Predicted waiting time of every instance (ms), from the active strategy.
#[utoipa::path(get, path = "/queue/info", tag = "scheduler (SwarmPilot)", params(ModelParam),
    responses((status = 200, body = Object), (status = 404, description = "no instance serves the model", body = Object)))]
async fn queue_info(
    State(scheduler): State<Scheduler>,
    SpQuery(params): SpQuery<ModelParam>,
) -> Result<axum::Json<Value>, SpError> {
    let queues: Vec<QueueItem> = scheduler.queue_info(params.model_name.as_deref()).await?;
    Ok(axum::Json(json!({ "status": "success", "queues": queues })))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct TaskParam {
    task_id: String,
}

/// A task's state, instance and result: the caller's own tasks (an admin's: any).
#[utoipa::path(get, path = "/task/query", tag = "scheduler (SwarmPilot)", params(TaskParam),
    responses((status = 200, body = TaskView), (status = 404, description = "unknown task, or someone else's", body = Object)))]
async fn task_query(
    State(scheduler): State<Scheduler>,
    access: SpAccess,
    SpQuery(params): SpQuery<TaskParam>,
) -> Result<axum::Json<TaskView>, SpError> {
    Ok(axum::Json(
        scheduler.query(&params.task_id, access.viewer()).await?,
    ))
}

/// Report a finished task (SwarmPilot's legacy path). Only the instance the task was sent to
/// does: from its registered address without a token, or with the secret its registration
/// returned; or an admin. `instance_id` is the instance's ti_uuid or its `host:port` as
/// registered (SwarmPilot's instances send the latter); an unknown one is answered as
/// SwarmPilot's scheduler does: 200 with `"status": "warning"`.
#[utoipa::path(post, path = "/notify/task_complete", tag = "scheduler (SwarmPilot)", request_body = Completion,
    security((), ("bearer" = [])),
    responses((status = 200, body = Object), (status = 404, description = "unknown task", body = Object),
              (status = 403, description = "the reporter is not the instance it names", body = Object),
              (status = 409, description = "reported by another instance than the one holding it", body = Object)))]
async fn task_complete(
    State(scheduler): State<Scheduler>,
    State(auth): State<Auth>,
    access: SpAccess,
    SpJson(report): SpJson<Completion>,
) -> Result<Response, SpError> {
    answer(
        record(&scheduler, &auth, &access, report).await,
        |task| {
            json!({
                "status": "success",
                "message": format!("Task {} completion processed", task.task_id),
                "task_id": task.task_id,
                "task_status": task.task_status,
            })
        },
        |err| axum::Json(json!({"status": "warning", "message": err.message})).into_response(),
    )
}

/// Submit a finished task's result (SwarmPilot's `ResultSubmitRequest`: `task_id`,
/// `instance_id`, `execution_time`, `result`, `metadata`, `replica_id`). Who may report, and
/// how instances are named, as for `/notify/task_complete`; an unknown instance is answered
/// 200 with `"status": "error"`, as SwarmPilot's scheduler does.
#[utoipa::path(post, path = "/result/submit", tag = "scheduler (SwarmPilot)", request_body = Completion,
    security((), ("bearer" = [])),
    responses((status = 200, body = Object, example = json!({"status": "success", "message": "Result for task … received"})),
              (status = 404, description = "unknown task", body = Object),
              (status = 403, description = "the reporter is not the instance it names", body = Object),
              (status = 409, description = "reported by another instance than the one holding it", body = Object)))]
async fn result_submit(
    State(scheduler): State<Scheduler>,
    State(auth): State<Auth>,
    access: SpAccess,
    SpJson(report): SpJson<Completion>,
) -> Result<Response, SpError> {
    answer(
        record(&scheduler, &auth, &access, report).await,
        |task| {
            json!({
                "status": "success",
                "message": format!("Result for task {} received", task.task_id),
            })
        },
        |err| SpError(err).with_ok_status(json!({})),
    )
}

/// The answer to a report: `success` built from the recorded task; a report naming no
/// registered instance answered as `unknown` says (SwarmPilot answers those with 200).
fn answer(
    recorded: crate::error::Result<TaskView>,
    success: impl FnOnce(TaskView) -> Value,
    unknown: impl FnOnce(crate::error::Error) -> Response,
) -> Result<Response, SpError> {
    match recorded {
        Ok(task) => Ok(axum::Json(success(task)).into_response()),
        Err(err) if err.code == crate::error::Code::SchedulerUnknownInstance => Ok(unknown(err)),
        Err(err) => Err(err.into()),
    }
}

/// Records a completion reported over HTTP or the result socket; a reporter presenting a
/// wrong instance secret counts as a failed sign-in of its address.
pub(super) async fn record(
    scheduler: &Scheduler,
    auth: &Auth,
    access: &SpAccess,
    report: Completion,
) -> crate::error::Result<TaskView> {
    if let (Who::InstanceSecret(_), Some(peer)) = (&access.who, access.peer) {
        auth.check_sign_in_limit(peer)?;
    }
    let recorded = scheduler.complete(report, access.reporter()).await;
    if let (Err(err), Who::InstanceSecret(_), Some(peer)) = (&recorded, &access.who, access.peer)
        && err.code == crate::error::Code::SchedulerNotInstance
    {
        auth.sign_in_failed(peer);
    }
    recorded
}

/// Registered task instances and their health.
#[utoipa::path(get, path = "/scheduler/instances", tag = "scheduler",
    responses((status = 200, body = Vec<TaskInstance>)))]
async fn list_instances(State(scheduler): State<Scheduler>) -> Json<Vec<TaskInstance>> {
    Json(scheduler.instances())
}

/// A strategy plugin that can be activated.
#[derive(Debug, serde::Serialize, ToSchema)]
struct Available {
    name: String,
    version: String,
    builtin: bool,
    #[schema(value_type = Object)]
    description: Value,
}

/// Strategies available, in effect (globally and per model), and recently deactivated.
#[derive(Debug, serde::Serialize, ToSchema)]
struct StrategiesView {
    available: Vec<Available>,
    #[serde(flatten)]
    in_effect: InEffect,
}

/// Scheduling strategies: available, in effect, recently deactivated.
#[utoipa::path(get, path = "/scheduler/strategies", tag = "scheduler",
    responses((status = 200, body = StrategiesView)))]
async fn list_strategies(
    State(plugins): State<Plugins>,
    State(scheduler): State<Scheduler>,
) -> Result<Json<StrategiesView>> {
    let available = plugins
        .list()
        .await?
        .into_iter()
        .filter(|p| p.kind == "strategy")
        .map(|p| Available {
            name: p.name,
            version: p.version,
            builtin: p.builtin,
            description: p.description,
        })
        .collect();
    Ok(Json(StrategiesView {
        available,
        in_effect: scheduler.strategies().in_effect(),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ActivateRequest {
    /// `name` (newest version) or `name@version`.
    strategy: String,
    /// Only for this model; every model without its own strategy when absent.
    #[serde(default)]
    model_name: Option<String>,
}

/// Activate a strategy globally or for one model (admin). Atomic: decisions under way finish
/// on the old strategy, the next ones use the new.
#[utoipa::path(put, path = "/scheduler/strategies/active", tag = "scheduler", request_body = ActivateRequest,
    responses((status = 200, body = ActiveView), (status = 403, body = crate::api::ErrorBody),
              (status = 404, body = crate::api::ErrorBody)))]
async fn activate(
    State(scheduler): State<Scheduler>,
    caller: Caller,
    Json(body): Json<ActivateRequest>,
) -> Result<Json<ActiveView>> {
    caller.require_admin()?;
    let view = scheduler
        .strategies()
        .activate(&body.strategy, body.model_name.as_deref(), &caller.name)
        .await?;
    Ok(Json(view))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct DeactivateParams {
    /// The model whose own strategy is dropped (the global one then serves it).
    model_name: String,
}

/// Drop a model's own strategy (admin).
#[utoipa::path(delete, path = "/scheduler/strategies/active", tag = "scheduler", params(DeactivateParams),
    responses((status = 204), (status = 404, body = crate::api::ErrorBody)))]
async fn deactivate(
    State(scheduler): State<Scheduler>,
    caller: Caller,
    Query(params): Query<DeactivateParams>,
) -> Result<StatusCode> {
    caller.require_admin()?;
    scheduler.strategies().clear(&params.model_name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Decision latency of the strategy calls (recent decisions).
#[utoipa::path(get, path = "/scheduler/stats", tag = "scheduler",
    responses((status = 200, body = DecisionStats)))]
async fn stats(State(scheduler): State<Scheduler>) -> Json<DecisionStats> {
    Json(scheduler.stats())
}
