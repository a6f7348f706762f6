//! The lineage API: `GET /api/v1/runs/{id}/lineage`, `/datasets/{id}/lineage` and
//! `/models/{id}/lineage`, for the owner of the run, dataset or model (an admin: anyone's).

use super::{DatasetLineage, Lineage, ModelLineage, RunLineage};
use crate::api::extract::Json;
use crate::auth::Caller;
use crate::error::Result;
use crate::workflow::Workflows;
use axum::extract::{FromRef, Path, State};
use utoipa_axum::{router::OpenApiRouter, routes};

/// Routes under `/api/v1`; all require a token.
pub(crate) fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    Lineage: FromRef<S>,
    Workflows: FromRef<S>,
{
    OpenApiRouter::new()
        .routes(routes!(run_lineage))
        .routes(routes!(dataset_lineage))
        .routes(routes!(model_lineage))
}

/// What a run ran on (its project's commit), the dataset versions its nodes read and the
/// artifacts and model versions they produced, as the host saw the nodes do it.
#[utoipa::path(get, path = "/runs/{run_id}/lineage", operation_id = "lineage_run", tag = "lineage",
    params(("run_id" = String, Path)),
    responses((status = 200, body = RunLineage), (status = 404, body = crate::api::ErrorBody)))]
async fn run_lineage(
    State(lineage): State<Lineage>,
    State(workflows): State<Workflows>,
    caller: Caller,
    Path(run_id): Path<String>,
) -> Result<Json<RunLineage>> {
    let run = workflows.summary(&caller, &run_id).await?;
    lineage.of_run(run).await.map(Json)
}

/// The runs that read a dataset's versions, and the model versions those runs recorded.
#[utoipa::path(get, path = "/datasets/{id}/lineage", operation_id = "lineage_dataset", tag = "lineage",
    params(("id" = String, Path)),
    responses((status = 200, body = DatasetLineage), (status = 404, body = crate::api::ErrorBody)))]
async fn dataset_lineage(
    State(lineage): State<Lineage>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<DatasetLineage>> {
    lineage.of_dataset(&caller, &id).await.map(Json)
}

/// The data and code behind a model: the runs that recorded its versions, their projects'
/// commits and the dataset versions they read.
#[utoipa::path(get, path = "/models/{id}/lineage", operation_id = "lineage_model", tag = "lineage",
    params(("id" = String, Path)),
    responses((status = 200, body = ModelLineage), (status = 403, body = crate::api::ErrorBody),
              (status = 404, body = crate::api::ErrorBody)))]
async fn model_lineage(
    State(lineage): State<Lineage>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ModelLineage>> {
    lineage.of_model(&caller, &id).await.map(Json)
}
