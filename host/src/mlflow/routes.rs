//! MLflow's REST paths under `/mlflow` (so `MLFLOW_TRACKING_URI=http://HOST:8080/mlflow`):
//! `/api/2.0/mlflow/...` (and the web UI's `/ajax-api/2.0/mlflow/...`) for tracking, logged
//! models and the registry, `/api/2.0/mlflow-artifacts/artifacts/...` for artifacts. The
//! client's `MLFLOW_TRACKING_TOKEN` arrives as `Authorization: Bearer`: a Weft token.

use super::logged_models::NewLoggedModel;
use super::runs::{Batch, Metric, NewRun};
use super::search::{RunSearch, RunsPage};
use super::service::{Tracking, required};
use super::wire::{Msg, Wire, WireResult, double, endpoint_not_found, int, invalid, list};
use crate::auth::{Auth, Caller};
use axum::body::Body;
use axum::extract::{FromRef, Request, State};
use axum::http::header;
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

/// The `/mlflow/...` routes (outside `/api/v1`: MLflow's paths are MLflow's).
pub(crate) fn router<S>(auth: Auth) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    Tracking: FromRef<S>,
{
    let api = Router::new()
        .route("/experiments/create", post(create_experiment))
        .route("/experiments/get", get(get_experiment))
        .route("/experiments/get-by-name", get(get_experiment_by_name))
        .route(
            "/experiments/search",
            get(search_experiments).post(search_experiments),
        )
        .route("/experiments/update", post(update_experiment))
        .route("/experiments/delete", post(delete_experiment))
        .route("/experiments/restore", post(restore_experiment))
        .route("/experiments/set-experiment-tag", post(set_experiment_tag))
        .route(
            "/experiments/delete-experiment-tag",
            post(delete_experiment_tag),
        )
        .route("/runs/create", post(create_run))
        .route("/runs/get", get(get_run))
        .route("/runs/update", post(update_run))
        .route("/runs/delete", post(delete_run))
        .route("/runs/restore", post(restore_run))
        .route("/runs/search", post(search_runs))
        .route("/runs/log-metric", post(log_metric))
        .route("/runs/log-parameter", post(log_param))
        .route("/runs/set-tag", post(set_tag))
        .route("/runs/delete-tag", post(delete_tag))
        .route("/runs/log-batch", post(log_batch))
        .route("/runs/log-inputs", post(log_inputs))
        .route("/runs/outputs", post(log_outputs))
        .route("/metrics/get-history", get(metric_history))
        .route("/logged-models", post(create_logged_model))
        .route("/logged-models/search", post(search_logged_models))
        .route(
            "/logged-models/{model_id}",
            get(get_logged_model)
                .patch(finalize_logged_model)
                .delete(delete_logged_model),
        )
        .route(
            "/logged-models/{model_id}/tags",
            patch(set_logged_model_tags),
        )
        .route(
            "/logged-models/{model_id}/tags/{key}",
            axum::routing::delete(delete_logged_model_tag),
        )
        .route(
            "/logged-models/{model_id}/params",
            post(log_logged_model_params),
        )
        .merge(super::registry_routes::router());
    let artifacts = Router::new()
        .route("/artifacts", get(list_artifacts))
        .route(
            "/artifacts/{*path}",
            get(download_artifact)
                .put(upload_artifact)
                .delete(delete_artifact),
        );
    let mlflow = Router::new()
        .nest("/api/2.0/mlflow", api.clone())
        .nest("/ajax-api/2.0/mlflow", api)
        .nest("/api/2.0/mlflow-artifacts", artifacts)
        .fallback(endpoint_not_found)
        .method_not_allowed_fallback(endpoint_not_found)
        .route_layer(from_fn_with_state(auth, authenticate));
    Router::new().nest("/mlflow", mlflow)
}

/// Signs the request in with its Bearer token, answering failures in MLflow's shape.
async fn authenticate(State(auth): State<Auth>, mut request: Request, next: Next) -> Response {
    match crate::auth::authenticate(&auth, &mut request).await {
        Ok(_) => next.run(request).await,
        Err(err) => Wire(err).into_response(),
    }
}

type Reply = WireResult<Json<Value>>;

fn ok(value: Value) -> Reply {
    Ok(Json(value))
}

/// A tag or param as the protocol sends it.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub(super) struct KeyValue {
    key: String,
    value: String,
}

/// Tags or params as `(key, value)` pairs.
pub(super) fn pairs(list: Vec<KeyValue>) -> Vec<(String, String)> {
    list.into_iter().map(|kv| (kv.key, kv.value)).collect()
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ExperimentReq {
    experiment_id: Option<String>,
    experiment_name: Option<String>,
    name: Option<String>,
    new_name: Option<String>,
    key: Option<String>,
    value: Option<String>,
    tags: Vec<KeyValue>,
}

async fn create_experiment(
    State(t): State<Tracking>,
    caller: Caller,
    Msg(r): Msg<ExperimentReq>,
) -> Reply {
    let name = required("name", &r.name)?;
    let id = t.create_experiment(&caller, name, &pairs(r.tags)).await?;
    ok(json!({ "experiment_id": id }))
}

async fn get_experiment(
    State(t): State<Tracking>,
    caller: Caller,
    Msg(r): Msg<ExperimentReq>,
) -> Reply {
    let id = required("experiment_id", &r.experiment_id)?;
    ok(json!({ "experiment": t.experiment(&caller, id).await? }))
}

async fn get_experiment_by_name(
    State(t): State<Tracking>,
    caller: Caller,
    Msg(r): Msg<ExperimentReq>,
) -> Reply {
    let name = required("experiment_name", &r.experiment_name)?;
    ok(json!({ "experiment": t.experiment_by_name(&caller, name).await? }))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct SearchReq {
    #[serde(deserialize_with = "list")]
    experiment_ids: Vec<String>,
    filter: Option<String>,
    #[serde(deserialize_with = "int")]
    max_results: Option<i64>,
    #[serde(deserialize_with = "list")]
    order_by: Vec<String>,
    page_token: Option<String>,
    view_type: Option<String>,
    run_view_type: Option<String>,
}

async fn search_experiments(
    State(t): State<Tracking>,
    caller: Caller,
    Msg(r): Msg<SearchReq>,
) -> Reply {
    let found = t
        .search_experiments(
            &caller,
            r.view_type.as_deref(),
            r.filter.as_deref(),
            r.max_results,
            r.page_token.as_deref(),
        )
        .await?;
    ok(found)
}

async fn update_experiment(
    State(t): State<Tracking>,
    caller: Caller,
    Msg(r): Msg<ExperimentReq>,
) -> Reply {
    let id = required("experiment_id", &r.experiment_id)?;
    if let Some(name) = r.new_name.as_deref() {
        t.rename_experiment(&caller, id, name).await?;
    }
    ok(json!({}))
}

async fn delete_experiment(
    State(t): State<Tracking>,
    caller: Caller,
    Msg(r): Msg<ExperimentReq>,
) -> Reply {
    let id = required("experiment_id", &r.experiment_id)?;
    t.set_experiment_stage(&caller, id, "deleted").await?;
    ok(json!({}))
}

async fn restore_experiment(
    State(t): State<Tracking>,
    caller: Caller,
    Msg(r): Msg<ExperimentReq>,
) -> Reply {
    let id = required("experiment_id", &r.experiment_id)?;
    t.set_experiment_stage(&caller, id, "active").await?;
    ok(json!({}))
}

async fn set_experiment_tag(
    State(t): State<Tracking>,
    caller: Caller,
    Msg(r): Msg<ExperimentReq>,
) -> Reply {
    let id = required("experiment_id", &r.experiment_id)?;
    let key = required("key", &r.key)?;
    t.set_experiment_tag(
        &caller,
        id,
        key,
        Some(r.value.as_deref().unwrap_or_default()),
    )
    .await?;
    ok(json!({}))
}

async fn delete_experiment_tag(
    State(t): State<Tracking>,
    caller: Caller,
    Msg(r): Msg<ExperimentReq>,
) -> Reply {
    let id = required("experiment_id", &r.experiment_id)?;
    let key = required("key", &r.key)?;
    t.set_experiment_tag(&caller, id, key, None).await?;
    ok(json!({}))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RunReq {
    run_id: Option<String>,
    run_uuid: Option<String>,
    experiment_id: Option<String>,
    run_name: Option<String>,
    #[serde(deserialize_with = "int")]
    start_time: Option<i64>,
    #[serde(deserialize_with = "int")]
    end_time: Option<i64>,
    status: Option<String>,
    tags: Vec<KeyValue>,
    key: Option<String>,
    value: Option<String>,
    metric_key: Option<String>,
}

impl RunReq {
    fn id(&self) -> WireResult<&str> {
        match (&self.run_id, &self.run_uuid) {
            (Some(id), _) | (None, Some(id)) if !id.is_empty() => Ok(id),
            _ => Err(invalid("Missing value for required parameter 'run_id'.").into()),
        }
    }
}

async fn create_run(State(t): State<Tracking>, caller: Caller, Msg(r): Msg<RunReq>) -> Reply {
    let new = NewRun {
        experiment_id: required("experiment_id", &r.experiment_id)?.to_string(),
        run_name: r.run_name,
        start_time: r.start_time,
        tags: pairs(r.tags),
    };
    ok(json!({ "run": t.create_run(&caller, new).await? }))
}

async fn get_run(State(t): State<Tracking>, caller: Caller, Msg(r): Msg<RunReq>) -> Reply {
    ok(json!({ "run": t.run(&caller, r.id()?).await? }))
}

async fn update_run(State(t): State<Tracking>, caller: Caller, Msg(r): Msg<RunReq>) -> Reply {
    let info = t
        .update_run(
            &caller,
            r.id()?,
            r.status.as_deref(),
            r.end_time,
            r.run_name.as_deref(),
        )
        .await?;
    ok(json!({ "run_info": info }))
}

async fn delete_run(State(t): State<Tracking>, caller: Caller, Msg(r): Msg<RunReq>) -> Reply {
    t.set_run_stage(&caller, r.id()?, "deleted").await?;
    ok(json!({}))
}

async fn restore_run(State(t): State<Tracking>, caller: Caller, Msg(r): Msg<RunReq>) -> Reply {
    t.set_run_stage(&caller, r.id()?, "active").await?;
    ok(json!({}))
}

async fn search_runs(
    State(t): State<Tracking>,
    caller: Caller,
    Msg(r): Msg<SearchReq>,
) -> WireResult<Json<RunsPage>> {
    let search = RunSearch {
        experiment_ids: r.experiment_ids,
        filter: r.filter,
        view: r.run_view_type,
        max_results: r.max_results,
        order_by: r.order_by,
        page_token: r.page_token,
    };
    Ok(Json(t.search_runs(&caller, search).await?))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct MetricReq {
    run_id: Option<String>,
    run_uuid: Option<String>,
    key: Option<String>,
    #[serde(deserialize_with = "double")]
    value: Option<f64>,
    #[serde(deserialize_with = "int")]
    timestamp: Option<i64>,
    #[serde(deserialize_with = "int")]
    step: Option<i64>,
}

impl MetricReq {
    fn metric(self) -> WireResult<Metric> {
        let key = required("key", &self.key)?.to_string();
        let value = self
            .value
            .ok_or_else(|| Wire(invalid("Missing value for required parameter 'value'.")))?;
        Ok(Metric {
            key,
            value,
            timestamp: self.timestamp.unwrap_or_else(crate::store::now_ms),
            step: self.step.unwrap_or(0),
        })
    }
}

async fn log_metric(State(t): State<Tracking>, caller: Caller, Msg(r): Msg<MetricReq>) -> Reply {
    let id = r.run_id.clone().or(r.run_uuid.clone()).unwrap_or_default();
    let batch = Batch {
        metrics: vec![r.metric()?],
        ..Batch::default()
    };
    t.log_batch(&caller, &id, batch).await?;
    ok(json!({}))
}

async fn log_param(State(t): State<Tracking>, caller: Caller, Msg(r): Msg<RunReq>) -> Reply {
    let key = required("key", &r.key)?.to_string();
    let batch = Batch {
        params: vec![(key, r.value.clone().unwrap_or_default())],
        ..Batch::default()
    };
    t.log_batch(&caller, r.id()?, batch).await?;
    ok(json!({}))
}

async fn set_tag(State(t): State<Tracking>, caller: Caller, Msg(r): Msg<RunReq>) -> Reply {
    let key = required("key", &r.key)?.to_string();
    let batch = Batch {
        tags: vec![(key, r.value.clone().unwrap_or_default())],
        ..Batch::default()
    };
    t.log_batch(&caller, r.id()?, batch).await?;
    ok(json!({}))
}

async fn delete_tag(State(t): State<Tracking>, caller: Caller, Msg(r): Msg<RunReq>) -> Reply {
    let key = required("key", &r.key)?;
    t.delete_run_tag(&caller, r.id()?, key).await?;
    ok(json!({}))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct BatchReq {
    run_id: Option<String>,
    metrics: Vec<MetricReq>,
    params: Vec<KeyValue>,
    tags: Vec<KeyValue>,
}

async fn log_batch(State(t): State<Tracking>, caller: Caller, Msg(r): Msg<BatchReq>) -> Reply {
    let id = required("run_id", &r.run_id)?;
    let batch = Batch {
        metrics: r
            .metrics
            .into_iter()
            .map(MetricReq::metric)
            .collect::<WireResult<_>>()?,
        params: pairs(r.params),
        tags: pairs(r.tags),
    };
    t.log_batch(&caller, id, batch).await?;
    ok(json!({}))
}

async fn metric_history(State(t): State<Tracking>, caller: Caller, Msg(r): Msg<RunReq>) -> Reply {
    let key = required("metric_key", &r.metric_key)?;
    ok(t.metric_history(&caller, r.id()?, key).await?)
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct LinksReq {
    run_id: Option<String>,
    datasets: Vec<Value>,
    models: Vec<Value>,
}

async fn log_inputs(State(t): State<Tracking>, caller: Caller, Msg(r): Msg<LinksReq>) -> Reply {
    let id = required("run_id", &r.run_id)?;
    let datasets: Vec<(String, Value)> = r
        .datasets
        .into_iter()
        .map(|d| {
            let reference = format!(
                "{}/{}",
                d["dataset"]["name"].as_str().unwrap_or_default(),
                d["dataset"]["digest"].as_str().unwrap_or_default()
            );
            (reference, d)
        })
        .collect();
    t.log_run_links(&caller, id, "dataset", &datasets).await?;
    t.log_run_links(&caller, id, "model", &model_links(r.models))
        .await?;
    ok(json!({}))
}

async fn log_outputs(State(t): State<Tracking>, caller: Caller, Msg(r): Msg<LinksReq>) -> Reply {
    let id = required("run_id", &r.run_id)?;
    t.log_run_links(&caller, id, "output", &model_links(r.models))
        .await?;
    ok(json!({}))
}

fn model_links(models: Vec<Value>) -> Vec<(String, Value)> {
    models
        .into_iter()
        .map(|m| (m["model_id"].as_str().unwrap_or_default().to_string(), m))
        .collect()
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct LoggedModelReq {
    experiment_id: Option<String>,
    name: Option<String>,
    model_type: Option<String>,
    source_run_id: Option<String>,
    params: Vec<KeyValue>,
    tags: Vec<KeyValue>,
    status: Option<String>,
    #[serde(deserialize_with = "list")]
    experiment_ids: Vec<String>,
    filter: Option<String>,
    #[serde(deserialize_with = "int")]
    max_results: Option<i64>,
    page_token: Option<String>,
}

type ModelId = axum::extract::Path<String>;

async fn create_logged_model(
    State(t): State<Tracking>,
    caller: Caller,
    Msg(r): Msg<LoggedModelReq>,
) -> Reply {
    let new = NewLoggedModel {
        experiment_id: required("experiment_id", &r.experiment_id)?.to_string(),
        name: r.name,
        model_type: r.model_type,
        source_run_id: r.source_run_id,
        params: pairs(r.params),
        tags: pairs(r.tags),
    };
    ok(json!({ "model": t.create_logged_model(&caller, new).await? }))
}

async fn get_logged_model(
    State(t): State<Tracking>,
    caller: Caller,
    axum::extract::Path(id): ModelId,
) -> Reply {
    ok(json!({ "model": t.logged_model(&caller, &id).await? }))
}

async fn finalize_logged_model(
    State(t): State<Tracking>,
    caller: Caller,
    axum::extract::Path(id): ModelId,
    Msg(r): Msg<LoggedModelReq>,
) -> Reply {
    let status = required("status", &r.status)?;
    ok(json!({ "model": t.finalize_logged_model(&caller, &id, status).await? }))
}

async fn delete_logged_model(
    State(t): State<Tracking>,
    caller: Caller,
    axum::extract::Path(id): ModelId,
) -> Reply {
    t.delete_logged_model(&caller, &id).await?;
    ok(json!({}))
}

async fn set_logged_model_tags(
    State(t): State<Tracking>,
    caller: Caller,
    axum::extract::Path(id): ModelId,
    Msg(r): Msg<LoggedModelReq>,
) -> Reply {
    ok(json!({ "model": t.logged_model_tags(&caller, &id, &pairs(r.tags), None).await? }))
}

async fn delete_logged_model_tag(
    State(t): State<Tracking>,
    caller: Caller,
    axum::extract::Path((id, key)): axum::extract::Path<(String, String)>,
) -> Reply {
    t.logged_model_tags(&caller, &id, &[], Some(&key)).await?;
    ok(json!({}))
}

async fn log_logged_model_params(
    State(t): State<Tracking>,
    caller: Caller,
    axum::extract::Path(id): ModelId,
    Msg(r): Msg<LoggedModelReq>,
) -> Reply {
    t.log_logged_model_params(&caller, &id, &pairs(r.params))
        .await?;
    ok(json!({}))
}

async fn search_logged_models(
    State(t): State<Tracking>,
    caller: Caller,
    Msg(r): Msg<LoggedModelReq>,
) -> Reply {
    let found = t
        .search_logged_models(
            &caller,
            &r.experiment_ids,
            r.filter.as_deref(),
            r.max_results,
            r.page_token.as_deref(),
        )
        .await?;
    ok(found)
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ListReq {
    path: Option<String>,
}

async fn list_artifacts(State(t): State<Tracking>, caller: Caller, Msg(r): Msg<ListReq>) -> Reply {
    let path = required("path", &r.path)?;
    ok(t.list_artifacts(&caller, path).await?)
}

type ArtifactPath = axum::extract::Path<String>;

async fn download_artifact(
    State(t): State<Tracking>,
    caller: Caller,
    axum::extract::Path(path): ArtifactPath,
) -> WireResult<Response> {
    let (size, chunks) = t.download_artifact(&caller, &path).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_LENGTH, size.to_string()),
        ],
        Body::from_stream(chunks),
    )
        .into_response())
}

async fn upload_artifact(
    State(t): State<Tracking>,
    caller: Caller,
    axum::extract::Path(path): ArtifactPath,
    body: Body,
) -> Reply {
    t.upload_artifact(&caller, &path, body.into_data_stream())
        .await?;
    ok(json!({}))
}

async fn delete_artifact(
    State(t): State<Tracking>,
    caller: Caller,
    axum::extract::Path(path): ArtifactPath,
) -> Reply {
    t.delete_artifact(&caller, &path).await?;
    ok(json!({}))
}
