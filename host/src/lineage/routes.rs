//! The lineage API of datasets and models: `GET /api/v1/datasets/{id}/lineage` and
//! `/models/{id}/lineage`, for their owner (an admin: anyone's). A run's lineage is served with
//! the run (`workflow::routes`), which knows who may see it.

use super::{DatasetLineage, Lineage, ModelLineage};
use crate::api::extract::Json;
use crate::auth::Caller;
use crate::error::Result;
use axum::extract::{FromRef, Path, State};
use utoipa_axum::{router::OpenApiRouter, routes};

/// Routes under `/api/v1`; all require a token.
pub(crate) fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    Lineage: FromRef<S>,
{
    OpenApiRouter::new()
        .routes(routes!(dataset_lineage))
        .routes(routes!(model_lineage))
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
