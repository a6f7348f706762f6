//! The datasets API under `/api/v1/datasets` (the seed's paths): record a version, list
//! datasets, one dataset with its versions, a version's files, the diff of two versions, and
//! what the caller's data takes against their quota.

use super::file_list::FileList;
use super::service::{
    Dataset, DatasetFile, DatasetVersion, Datasets, ProjectStorage, Recorded, VersionDiff,
};
use crate::api::extract::{Json, Query};
use crate::auth::Caller;
use crate::error::{Code, Error, Result};
use crate::workspace::paths;
use axum::extract::{FromRef, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

/// Routes under `/api/v1`; all require a token and reach the caller's datasets (an admin's:
/// anyone's).
pub(crate) fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    Datasets: FromRef<S>,
{
    OpenApiRouter::new()
        .routes(routes!(record, list))
        .routes(routes!(storage))
        .routes(routes!(get))
        .routes(routes!(version))
        .routes(routes!(diff))
}

/// A version to record: from a `.dvc` file at a commit of the project's repository, or from
/// the project's files under `paths`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RecordRequest {
    project_id: String,
    /// A `.dvc` file of the project's repository (each output it tracks is a dataset) or a
    /// `dvc.lock` file (each output of each stage is one).
    dvc_file: Option<String>,
    /// The commit (or branch, tag) to read `dvc_file` at; default `HEAD`.
    commit: Option<String>,
    /// Files or folders of the project to record as one version of dataset `name`.
    paths: Option<Vec<String>>,
    /// The dataset `paths` are a version of (required with `paths`).
    name: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
struct RecordResult {
    /// One per dataset the request touched.
    recorded: Vec<Recorded>,
}

/// Record a data version: each output of a `.dvc` file at a commit, or the project's files
/// under `paths` (stored in the project's DVC remote, once per content).
#[utoipa::path(post, path = "/datasets", operation_id = "datasets_record", tag = "datasets",
    request_body = RecordRequest,
    responses((status = 201, body = RecordResult), (status = 404, body = crate::api::ErrorBody),
              (status = 422, body = crate::api::ErrorBody), (status = 429, body = crate::api::ErrorBody)))]
async fn record(
    State(datasets): State<Datasets>,
    caller: Caller,
    Json(body): Json<RecordRequest>,
) -> Result<(StatusCode, Json<RecordResult>)> {
    let recorded = match (body.dvc_file, body.paths) {
        (Some(file), None) => {
            let file = paths::checked("dvc_file", &file)?;
            if !super::manifest::is_dvc_file(&file) {
                return Err(
                    Error::invalid_field("dvc_file", "a .dvc or dvc.lock file's path")
                        .hint("dvc.yaml names no content: record its dvc.lock"),
                );
            }
            datasets
                .record_dvc_file(&caller, &body.project_id, file, body.commit)
                .await?
        }
        (None, Some(list)) => {
            let name = body
                .name
                .as_deref()
                .ok_or_else(|| Error::invalid_field("name", "required with paths"))?;
            let name = paths::checked("name", name)?;
            let list = list
                .iter()
                .enumerate()
                .map(|(i, p)| paths::checked(&format!("paths[{i}]"), p))
                .collect::<Result<Vec<_>>>()?;
            vec![
                datasets
                    .record_files(&caller, &body.project_id, name, list)
                    .await?,
            ]
        }
        _ => {
            return Err(Error::new(
                Code::DatasetInvalid,
                "give either dvc_file (and optionally commit) or paths and name",
            )
            .hint(
                "{\"project_id\": ..., \"dvc_file\": \"data.dvc\"} records what a .dvc file tracks",
            ));
        }
    };
    Ok((StatusCode::CREATED, Json(RecordResult { recorded })))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// Only this project's datasets.
    project_id: Option<String>,
}

/// The caller's datasets (an admin's: everyone's) with their latest version, oldest first.
#[utoipa::path(get, path = "/datasets", operation_id = "datasets_list", tag = "datasets", params(ListQuery),
    responses((status = 200, body = Vec<Dataset>)))]
async fn list(
    State(datasets): State<Datasets>,
    caller: Caller,
    Query(query): Query<ListQuery>,
) -> Result<Json<Vec<Dataset>>> {
    Ok(Json(
        datasets.list(&caller, query.project_id.as_deref()).await?,
    ))
}

#[derive(Debug, Serialize, ToSchema)]
struct DatasetDetail {
    dataset: Dataset,
    /// Oldest first.
    versions: Vec<DatasetVersion>,
}

/// A dataset and its versions (files, bytes, content, git commit, who, when).
#[utoipa::path(get, path = "/datasets/{id}", operation_id = "datasets_get", tag = "datasets",
    params(("id" = String, Path)),
    responses((status = 200, body = DatasetDetail), (status = 404, body = crate::api::ErrorBody)))]
async fn get(
    State(datasets): State<Datasets>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<DatasetDetail>> {
    let (dataset, versions) = datasets.versions(&caller, &id).await?;
    Ok(Json(DatasetDetail { dataset, versions }))
}

#[derive(Debug, Serialize, ToSchema)]
struct VersionFiles {
    version: DatasetVersion,
    /// By path.
    #[schema(value_type = Vec<DatasetFile>)]
    files: FileList,
}

/// One version of a dataset with its files (path, md5, size).
#[utoipa::path(get, path = "/datasets/{id}/versions/{number}", operation_id = "datasets_version", tag = "datasets",
    params(("id" = String, Path), ("number" = i64, Path)),
    responses((status = 200, body = VersionFiles), (status = 404, body = crate::api::ErrorBody),
              (status = 422, body = crate::api::ErrorBody)))]
async fn version(
    State(datasets): State<Datasets>,
    caller: Caller,
    Path((id, number)): Path<(String, i64)>,
) -> Result<Response> {
    let (version, files) = datasets.version(&caller, &id, number).await?;
    // The files are serialised from their stored list as it is read, not decoded first, and
    // here rather than by `Json`, whose failure (a damaged list) would be no JSON error.
    let body = serde_json::to_vec(&VersionFiles { version, files })
        .map_err(|e| Error::internal(format!("cannot list a version's files: {e}")))?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct DiffQuery {
    /// The older version's number.
    from: i64,
    /// The newer version's number.
    to: i64,
}

/// What changed from one version to another: files added, removed and changed, and bytes.
#[utoipa::path(get, path = "/datasets/{id}/diff", operation_id = "datasets_diff", tag = "datasets",
    params(("id" = String, Path), DiffQuery),
    responses((status = 200, body = VersionDiff), (status = 404, body = crate::api::ErrorBody),
              (status = 422, body = crate::api::ErrorBody)))]
async fn diff(
    State(datasets): State<Datasets>,
    caller: Caller,
    Path(id): Path<String>,
    Query(query): Query<DiffQuery>,
) -> Result<Json<VersionDiff>> {
    let (_, old) = datasets.version(&caller, &id, query.from).await?;
    let (_, new) = datasets.version(&caller, &id, query.to).await?;
    Ok(Json(super::service::diff(
        query.from,
        query.to,
        old.decode()?,
        new.decode()?,
    )))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct StorageQuery {
    /// Another user's (admins only); default the caller.
    user_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
struct Storage {
    user_id: String,
    /// What the user's objects may take, each counted once.
    quota_bytes: u64,
    /// What they take, each stored once.
    stored_bytes: i64,
    /// What the user's dataset versions hold, counted per version.
    logical_bytes: i64,
    objects: i64,
    projects: Vec<ProjectStorage>,
}

/// What a user's data takes: stored (each object once) against logical (each version whole),
/// per project and in all against the quota.
#[utoipa::path(get, path = "/datasets/storage", operation_id = "datasets_storage", tag = "datasets",
    params(StorageQuery),
    responses((status = 200, body = Storage), (status = 403, body = crate::api::ErrorBody)))]
async fn storage(
    State(datasets): State<Datasets>,
    caller: Caller,
    Query(query): Query<StorageQuery>,
) -> Result<Json<Storage>> {
    let user_id = query.user_id.unwrap_or_else(|| caller.user_id.clone());
    caller.require_self_or_admin(&user_id)?;
    let projects = datasets.storage(&user_id).await?;
    Ok(Json(Storage {
        quota_bytes: datasets.quota(),
        stored_bytes: projects.iter().map(|p| p.stored_bytes).sum(),
        logical_bytes: projects.iter().map(|p| p.logical_bytes).sum(),
        objects: projects.iter().map(|p| p.objects).sum(),
        user_id,
        projects,
    }))
}
