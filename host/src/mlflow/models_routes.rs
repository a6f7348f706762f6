//! The seed's model API under `/api/v1/models`, over the records the MLflow client writes.
//! Errors are Weft's (codes 302xx/303xx/304xx of the versioning module).

use super::compare::{Comparison, Overrides, compare};
use super::models::{Model, ModelDetail, ModelVersion, NewModelVersion, field};
use super::service::Tracking;
use crate::api::extract::{Json, Path, Query};
use crate::api::page::{Page, PageParams};
use crate::auth::Caller;
use crate::error::Result;
use axum::body::Body;
use axum::extract::{FromRef, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

/// At most this many versions are compared at once.
const MAX_COMPARED: usize = 50;

/// Routes under `/api/v1`; all require a token and reach the caller's models (an admin's:
/// anyone's).
pub(crate) fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    Tracking: FromRef<S>,
{
    OpenApiRouter::new()
        .routes(routes!(record_version, list_models))
        .routes(routes!(get_model))
        .routes(routes!(compare_versions))
        .routes(routes!(upload_artifact, download_artifact))
}

/// Record a new model version: params and metrics logged to its run (the source run, or a
/// new one when none is given), its files that run's artifacts (below `artifact_path`).
/// The model is made on its first version.
#[utoipa::path(post, path = "/models", operation_id = "models_record_version", tag = "models",
    request_body = NewModelVersion,
    responses((status = 201, body = ModelVersion), (status = 400, body = crate::api::ErrorBody),
              (status = 403, body = crate::api::ErrorBody), (status = 404, body = crate::api::ErrorBody)))]
async fn record_version(
    State(tracking): State<Tracking>,
    caller: Caller,
    Json(body): Json<NewModelVersion>,
) -> Result<(StatusCode, Json<ModelVersion>)> {
    let version = tracking.record_version(&caller, body).await?;
    Ok((StatusCode::CREATED, Json(version)))
}

/// List the caller's models (an admin's lists all), by id.
#[utoipa::path(get, path = "/models", operation_id = "models_list", tag = "models",
    params(PageParams), responses((status = 200, body = Page<Model>)))]
async fn list_models(
    State(tracking): State<Tracking>,
    caller: Caller,
    Query(page): Query<PageParams>,
) -> Result<Json<Page<Model>>> {
    let limit = page.limit()?;
    Ok(Json(
        tracking
            .models_page(&caller, page.cursor.as_deref(), limit)
            .await?,
    ))
}

/// A model and its versions (params, metrics, artifacts, timestamps), newest first.
#[utoipa::path(get, path = "/models/{id}", operation_id = "models_get", tag = "models",
    params(("id" = String, Path)),
    responses((status = 200, body = ModelDetail), (status = 403, body = crate::api::ErrorBody),
              (status = 404, body = crate::api::ErrorBody)))]
async fn get_model(
    State(tracking): State<Tracking>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ModelDetail>> {
    Ok(Json(tracking.model_detail(&caller, &id, None).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct CompareQuery {
    /// Version numbers, comma-separated (`1,2,3`; 1 to 50 of them).
    versions: String,
    /// Metrics where lower is better, comma-separated (overrides the rule by name).
    lower_is_better: Option<String>,
    /// Metrics where higher is better, comma-separated (overrides the rule by name).
    higher_is_better: Option<String>,
}

/// Compare versions: the params that differ, each metric side by side, and the best version
/// per metric. Lower is better for metrics named like a cost (loss, error, err, rmse, mse,
/// mae, mape, perplexity, latency, duration), higher for the others, unless
/// `lower_is_better`/`higher_is_better` say otherwise.
#[utoipa::path(get, path = "/models/{id}/compare", operation_id = "models_compare", tag = "models",
    params(("id" = String, Path), CompareQuery),
    responses((status = 200, body = Comparison), (status = 400, body = crate::api::ErrorBody),
              (status = 403, body = crate::api::ErrorBody), (status = 404, body = crate::api::ErrorBody)))]
async fn compare_versions(
    State(tracking): State<Tracking>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<CompareQuery>,
) -> Result<Json<Comparison>> {
    let numbers = q
        .versions
        .split(',')
        .map(|v| v.trim().parse::<i64>())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|_| {
            field(
                "versions",
                "version numbers separated by commas, e.g. 1,2,3",
            )
        })?;
    if numbers.is_empty() || numbers.len() > MAX_COMPARED {
        return Err(field("versions", "1 to 50 version numbers"));
    }
    let names = |list: &Option<String>| -> std::collections::BTreeSet<String> {
        list.iter()
            .flat_map(|l| l.split(','))
            .map(|k| k.trim().to_string())
            .filter(|k| !k.is_empty())
            .collect()
    };
    let overrides = Overrides {
        lower: names(&q.lower_is_better),
        higher: names(&q.higher_is_better),
    };
    if let Some(both) = overrides.lower.intersection(&overrides.higher).next() {
        return Err(field(
            "lower_is_better",
            &format!("'{both}' is also in higher_is_better"),
        ));
    }
    let detail = tracking.model_detail(&caller, &id, Some(&numbers)).await?;
    let ordered: Vec<&ModelVersion> = numbers
        .iter()
        .filter_map(|n| detail.versions.iter().find(|v| v.version == *n))
        .collect();
    Ok(Json(compare(&id, &ordered, &overrides)))
}

/// Upload one file of a version (the raw body, streamed into its storage location).
#[utoipa::path(put, path = "/models/{id}/versions/{version}/artifacts/{*path}",
    operation_id = "models_upload_artifact", tag = "models",
    params(("id" = String, Path), ("version" = i64, Path), ("path" = String, Path, description = "relative, may hold '/'")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 204), (status = 400, body = crate::api::ErrorBody),
              (status = 403, body = crate::api::ErrorBody), (status = 404, body = crate::api::ErrorBody)))]
async fn upload_artifact(
    State(tracking): State<Tracking>,
    caller: Caller,
    Path((id, version, path)): Path<(String, i64, String)>,
    body: Body,
) -> Result<StatusCode> {
    let folder = tracking.version_folder(&caller, &id, version).await?;
    tracking
        .upload_artifact(
            &caller,
            &format!("{folder}/{path}"),
            body.into_data_stream(),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Download one file of a version (streamed).
#[utoipa::path(get, path = "/models/{id}/versions/{version}/artifacts/{*path}",
    operation_id = "models_download_artifact", tag = "models",
    params(("id" = String, Path), ("version" = i64, Path), ("path" = String, Path, description = "relative, may hold '/'")),
    responses((status = 200, content_type = "application/octet-stream"),
              (status = 403, body = crate::api::ErrorBody), (status = 404, body = crate::api::ErrorBody)))]
async fn download_artifact(
    State(tracking): State<Tracking>,
    caller: Caller,
    Path((id, version, path)): Path<(String, i64, String)>,
) -> Result<impl IntoResponse> {
    let folder = tracking.version_folder(&caller, &id, version).await?;
    let (size, chunks) = tracking
        .download_artifact(&caller, &format!("{folder}/{path}"))
        .await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_LENGTH, size.to_string()),
        ],
        Body::from_stream(chunks),
    ))
}
