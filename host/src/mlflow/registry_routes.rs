//! The model registry's MLflow paths (`/api/2.0/mlflow/registered-models/...`,
//! `/model-versions/...`), nested by [`super::routes`].

use super::registry::NewVersion;
use super::routes::{KeyValue, pairs};
use super::service::{Tracking, required};
use super::wire::{Msg, WireResult, list};
use crate::auth::Caller;
use axum::extract::{FromRef, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

/// The registry's routes, relative to `/api/2.0/mlflow`.
pub(super) fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    Tracking: FromRef<S>,
{
    Router::new()
        .route("/registered-models/create", post(create_model))
        .route("/registered-models/get", get(get_model))
        .route("/registered-models/rename", post(rename_model))
        .route(
            "/registered-models/update",
            axum::routing::patch(update_model),
        )
        .route(
            "/registered-models/delete",
            axum::routing::delete(delete_model),
        )
        .route("/registered-models/search", get(search_models))
        .route(
            "/registered-models/get-latest-versions",
            get(latest_versions).post(latest_versions),
        )
        .route("/registered-models/set-tag", post(set_model_tag))
        .route(
            "/registered-models/delete-tag",
            axum::routing::delete(delete_model_tag),
        )
        .route(
            "/registered-models/alias",
            post(set_alias).delete(delete_alias).get(get_by_alias),
        )
        .route("/model-versions/create", post(create_version))
        .route("/model-versions/get", get(get_version))
        .route(
            "/model-versions/update",
            axum::routing::patch(update_version),
        )
        .route("/model-versions/transition-stage", post(transition_stage))
        .route(
            "/model-versions/delete",
            axum::routing::delete(delete_version),
        )
        .route("/model-versions/search", get(search_versions))
        .route("/model-versions/get-download-uri", get(download_uri))
        .route("/model-versions/set-tag", post(set_version_tag))
        .route(
            "/model-versions/delete-tag",
            axum::routing::delete(delete_version_tag),
        )
}

type Reply = WireResult<Json<Value>>;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RegistryReq {
    name: Option<String>,
    new_name: Option<String>,
    description: Option<String>,
    version: Option<String>,
    alias: Option<String>,
    key: Option<String>,
    value: Option<String>,
    source: Option<String>,
    run_id: Option<String>,
    model_id: Option<String>,
    stage: Option<String>,
    archive_existing_versions: Option<bool>,
    tags: Vec<KeyValue>,
    filter: Option<String>,
    #[serde(deserialize_with = "list")]
    stages: Vec<String>,
}

impl RegistryReq {
    fn name(&self) -> WireResult<&str> {
        Ok(required("name", &self.name)?)
    }

    fn version(&self) -> WireResult<&str> {
        Ok(required("version", &self.version)?)
    }

    fn tags(&self) -> Vec<(String, String)> {
        pairs(self.tags.clone())
    }
}

async fn create_model(
    State(t): State<Tracking>,
    caller: Caller,
    Msg(r): Msg<RegistryReq>,
) -> Reply {
    let model = t
        .create_registered_model(&caller, r.name()?, r.description.as_deref(), &r.tags())
        .await?;
    Ok(Json(json!({ "registered_model": model })))
}

async fn get_model(State(t): State<Tracking>, caller: Caller, Msg(r): Msg<RegistryReq>) -> Reply {
    Ok(Json(
        json!({ "registered_model": t.registered_model(&caller, r.name()?).await? }),
    ))
}

async fn rename_model(
    State(t): State<Tracking>,
    caller: Caller,
    Msg(r): Msg<RegistryReq>,
) -> Reply {
    let new_name = required("new_name", &r.new_name)?;
    let model = t
        .update_registered_model(&caller, r.name()?, Some(new_name), None)
        .await?;
    Ok(Json(json!({ "registered_model": model })))
}

async fn update_model(
    State(t): State<Tracking>,
    caller: Caller,
    Msg(r): Msg<RegistryReq>,
) -> Reply {
    let model = t
        .update_registered_model(&caller, r.name()?, None, r.description.as_deref())
        .await?;
    Ok(Json(json!({ "registered_model": model })))
}

async fn delete_model(
    State(t): State<Tracking>,
    caller: Caller,
    Msg(r): Msg<RegistryReq>,
) -> Reply {
    t.delete_registered_model(&caller, r.name()?).await?;
    Ok(Json(json!({})))
}

async fn search_models(
    State(t): State<Tracking>,
    caller: Caller,
    Msg(r): Msg<RegistryReq>,
) -> Reply {
    Ok(Json(
        t.search_registered_models(&caller, r.filter.as_deref())
            .await?,
    ))
}

async fn latest_versions(
    State(t): State<Tracking>,
    caller: Caller,
    Msg(r): Msg<RegistryReq>,
) -> Reply {
    let model = t.registered_model(&caller, r.name()?).await?;
    let versions: Vec<Value> = model["latest_versions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| {
            r.stages.is_empty()
                || r.stages.iter().any(|s| {
                    v["current_stage"]
                        .as_str()
                        .is_some_and(|c| c.eq_ignore_ascii_case(s))
                })
        })
        .cloned()
        .collect();
    Ok(Json(json!({ "model_versions": versions })))
}

async fn set_model_tag(
    State(t): State<Tracking>,
    caller: Caller,
    Msg(r): Msg<RegistryReq>,
) -> Reply {
    let key = required("key", &r.key)?;
    t.registry_tag(
        &caller,
        r.name()?,
        None,
        key,
        Some(r.value.as_deref().unwrap_or_default()),
    )
    .await?;
    Ok(Json(json!({})))
}

async fn delete_model_tag(
    State(t): State<Tracking>,
    caller: Caller,
    Msg(r): Msg<RegistryReq>,
) -> Reply {
    let key = required("key", &r.key)?;
    t.registry_tag(&caller, r.name()?, None, key, None).await?;
    Ok(Json(json!({})))
}

async fn set_alias(State(t): State<Tracking>, caller: Caller, Msg(r): Msg<RegistryReq>) -> Reply {
    let alias = required("alias", &r.alias)?;
    t.set_alias(&caller, r.name()?, alias, Some(r.version()?))
        .await?;
    Ok(Json(json!({})))
}

async fn delete_alias(
    State(t): State<Tracking>,
    caller: Caller,
    Msg(r): Msg<RegistryReq>,
) -> Reply {
    let alias = required("alias", &r.alias)?;
    t.set_alias(&caller, r.name()?, alias, None).await?;
    Ok(Json(json!({})))
}

async fn get_by_alias(
    State(t): State<Tracking>,
    caller: Caller,
    Msg(r): Msg<RegistryReq>,
) -> Reply {
    let alias = required("alias", &r.alias)?;
    Ok(Json(
        json!({ "model_version": t.version_by_alias(&caller, r.name()?, alias).await? }),
    ))
}

async fn create_version(
    State(t): State<Tracking>,
    caller: Caller,
    Msg(r): Msg<RegistryReq>,
) -> Reply {
    let new = NewVersion {
        source: required("source", &r.source)?.to_string(),
        run_id: r.run_id.clone(),
        model_id: r.model_id.clone(),
        description: r.description.clone(),
        tags: r.tags(),
    };
    Ok(Json(
        json!({ "model_version": t.create_model_version(&caller, r.name()?, new).await? }),
    ))
}

async fn get_version(State(t): State<Tracking>, caller: Caller, Msg(r): Msg<RegistryReq>) -> Reply {
    Ok(Json(
        json!({ "model_version": t.model_version(&caller, r.name()?, r.version()?).await? }),
    ))
}

async fn update_version(
    State(t): State<Tracking>,
    caller: Caller,
    Msg(r): Msg<RegistryReq>,
) -> Reply {
    let version = t
        .update_model_version(
            &caller,
            r.name()?,
            r.version()?,
            r.description.as_deref(),
            None,
        )
        .await?;
    Ok(Json(json!({ "model_version": version })))
}

async fn transition_stage(
    State(t): State<Tracking>,
    caller: Caller,
    Msg(r): Msg<RegistryReq>,
) -> Reply {
    let stage = required("stage", &r.stage)?;
    let archive = r.archive_existing_versions.unwrap_or(false);
    let version = t
        .update_model_version(
            &caller,
            r.name()?,
            r.version()?,
            None,
            Some((stage, archive)),
        )
        .await?;
    Ok(Json(json!({ "model_version": version })))
}

async fn delete_version(
    State(t): State<Tracking>,
    caller: Caller,
    Msg(r): Msg<RegistryReq>,
) -> Reply {
    t.delete_model_version(&caller, r.name()?, r.version()?)
        .await?;
    Ok(Json(json!({})))
}

async fn search_versions(
    State(t): State<Tracking>,
    caller: Caller,
    Msg(r): Msg<RegistryReq>,
) -> Reply {
    Ok(Json(
        t.search_model_versions(&caller, r.filter.as_deref())
            .await?,
    ))
}

async fn download_uri(
    State(t): State<Tracking>,
    caller: Caller,
    Msg(r): Msg<RegistryReq>,
) -> Reply {
    let version = t.model_version(&caller, r.name()?, r.version()?).await?;
    Ok(Json(json!({ "artifact_uri": version["storage_location"] })))
}

async fn set_version_tag(
    State(t): State<Tracking>,
    caller: Caller,
    Msg(r): Msg<RegistryReq>,
) -> Reply {
    let key = required("key", &r.key)?;
    t.registry_tag(
        &caller,
        r.name()?,
        Some(r.version()?),
        key,
        Some(r.value.as_deref().unwrap_or_default()),
    )
    .await?;
    Ok(Json(json!({})))
}

async fn delete_version_tag(
    State(t): State<Tracking>,
    caller: Caller,
    Msg(r): Msg<RegistryReq>,
) -> Reply {
    let key = required("key", &r.key)?;
    t.registry_tag(&caller, r.name()?, Some(r.version()?), key, None)
        .await?;
    Ok(Json(json!({})))
}
