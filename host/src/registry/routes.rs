//! HTTP routes of the plugin registry under `/api/v1/plugins`.

use super::{Added, GrantList, Grantee, NodeRun, PluginVersion, Plugins, ScopedGrant, Settings};
use crate::api::extract::{Json, Path, Query};
use crate::auth::{Admin, Caller};
use crate::error::{Code, Error, Result};
use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::extract::{FromRef, State};
use axum::http::{HeaderMap, StatusCode, header};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use weft_runtime::{Limits, Value};

/// Routes under `/api/v1`; all require a token.
pub(crate) fn router<S>(max_upload_bytes: usize) -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    Plugins: FromRef<S>,
{
    let upload = OpenApiRouter::new()
        .routes(routes!(add_plugin, list_plugins))
        .layer(DefaultBodyLimit::max(max_upload_bytes));
    OpenApiRouter::new()
        .merge(upload)
        .routes(routes!(show_plugin, remove_plugin))
        .routes(routes!(set_grants))
        .routes(routes!(set_limits))
        .routes(routes!(run_node))
}

/// A plugin name with all its versions and settings.
#[derive(Debug, Serialize, ToSchema)]
struct PluginDetail {
    name: String,
    kind: String,
    /// The version used when a workflow names the plugin without `@version`.
    latest: String,
    versions: Vec<PluginVersion>,
    #[serde(flatten)]
    settings: Settings,
}

/// Upload a plugin component (admin). The body is the `.wasm` file; a non-admin is refused
/// before it is read.
#[utoipa::path(post, path = "/plugins", tag = "plugins",
    request_body(content = Vec<u8>, content_type = "application/wasm"),
    responses((status = 201, body = Added), (status = 200, description = "already registered", body = Added),
              (status = 403, body = crate::api::ErrorBody), (status = 409, body = crate::api::ErrorBody),
              (status = 413, body = crate::api::ErrorBody), (status = 422, body = crate::api::ErrorBody)))]
async fn add_plugin(
    State(plugins): State<Plugins>,
    Admin(caller): Admin,
    headers: HeaderMap,
    body: std::result::Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<(StatusCode, Json<Added>)> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/wasm");
    if !(content_type.starts_with("application/wasm")
        || content_type.starts_with("application/octet-stream"))
    {
        return Err(Error::new(
            Code::UnsupportedMediaType,
            "send the component bytes with Content-Type: application/wasm",
        ));
    }
    let body = body.map_err(|r| {
        crate::api::extract::limited_body_rejection(r, "[plugins] max_upload_bytes")
    })?;
    let added = plugins.add(&body, Some(&caller.user_id), false).await?;
    let status = if added.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(added)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ListFilter {
    /// Only `node` or `strategy` plugins.
    kind: Option<String>,
}

/// List registered plugin versions.
#[utoipa::path(get, path = "/plugins", tag = "plugins", params(ListFilter),
    responses((status = 200, body = [PluginVersion])))]
async fn list_plugins(
    State(plugins): State<Plugins>,
    _caller: Caller,
    Query(filter): Query<ListFilter>,
) -> Result<Json<Vec<PluginVersion>>> {
    let mut all = plugins.list().await?;
    if let Some(kind) = filter.kind {
        all.retain(|p| p.kind == kind);
    }
    Ok(Json(all))
}

/// A plugin: its description, versions, hash and granted capabilities.
#[utoipa::path(get, path = "/plugins/{name}", tag = "plugins",
    params(("name" = String, Path, description = "Plugin name")),
    responses((status = 200, body = PluginDetail), (status = 404, body = crate::api::ErrorBody)))]
async fn show_plugin(
    State(plugins): State<Plugins>,
    _caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<PluginDetail>> {
    detail(&plugins, &name).await.map(Json)
}

async fn detail(plugins: &Plugins, name: &str) -> Result<PluginDetail> {
    let versions = plugins.versions(name).await?;
    let newest = versions.last().expect("versions is non-empty");
    Ok(PluginDetail {
        name: name.to_string(),
        kind: newest.kind.clone(),
        latest: newest.version.clone(),
        settings: plugins.settings(name).await?,
        versions,
    })
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct RemoveFilter {
    /// Remove only this version; all versions if absent.
    version: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
struct Removed {
    name: String,
    removed: Vec<String>,
}

/// Remove a plugin (admin); refused while it is built in or in use.
#[utoipa::path(delete, path = "/plugins/{name}", tag = "plugins", params(("name" = String, Path), RemoveFilter),
    responses((status = 200, body = Removed), (status = 404, body = crate::api::ErrorBody),
              (status = 409, body = crate::api::ErrorBody)))]
async fn remove_plugin(
    State(plugins): State<Plugins>,
    _admin: Admin,
    Path(name): Path<String>,
    Query(filter): Query<RemoveFilter>,
) -> Result<Json<Removed>> {
    let removed = plugins.remove(&name, filter.version.as_deref()).await?;
    Ok(Json(Removed { name, removed }))
}

/// Replace the capabilities granted to a plugin (admin): one grant or a list, each for
/// `"everyone": true` or a `"scope"` of users (ids or names) and roles. A node run for a user
/// gets what the grants for that user, their role and everyone add up to.
#[utoipa::path(put, path = "/plugins/{name}/grants", tag = "plugins", params(("name" = String, Path)),
    request_body(content = Vec<ScopedGrant>, description = r#"{"scope": {"users": ["alice"], "roles": ["admin"]}, "http": ["api.example.com", "10.0.0.0/8:5432"], "secrets": ["token"], "artifacts": true}, or a list of such grants ("everyone": true instead of "scope" grants every user)"#),
    responses((status = 200, body = PluginDetail), (status = 403, body = crate::api::ErrorBody),
              (status = 404, body = crate::api::ErrorBody), (status = 422, body = crate::api::ErrorBody)))]
async fn set_grants(
    State(plugins): State<Plugins>,
    Admin(caller): Admin,
    Path(name): Path<String>,
    Json(GrantList(grants)): Json<GrantList>,
) -> Result<Json<PluginDetail>> {
    plugins.set_grants(&name, grants, &caller.user_id).await?;
    detail(&plugins, &name).await.map(Json)
}

/// Replace the per-call limits of a plugin (admin).
#[utoipa::path(put, path = "/plugins/{name}/limits", tag = "plugins", params(("name" = String, Path)),
    request_body(content = Object, description = r#"{"memory_bytes": 67108864, "cpu_ms": 5000, "timeout_ms": 30000}"#),
    responses((status = 200, body = PluginDetail), (status = 403, body = crate::api::ErrorBody),
              (status = 404, body = crate::api::ErrorBody), (status = 422, body = crate::api::ErrorBody)))]
async fn set_limits(
    State(plugins): State<Plugins>,
    Admin(caller): Admin,
    Path(name): Path<String>,
    Json(limits): Json<Limits>,
) -> Result<Json<PluginDetail>> {
    plugins.set_limits(&name, limits, &caller.user_id).await?;
    detail(&plugins, &name).await.map(Json)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RunRequest {
    /// The node's config.
    #[serde(default)]
    #[schema(value_type = Object)]
    config: serde_json::Value,
    /// Input port -> value (bytes as `{"$bytes": "<base64>"}`).
    #[serde(default)]
    #[schema(value_type = Object)]
    inputs: std::collections::BTreeMap<String, Value>,
}

/// Run a node once with a config and inputs (`name` or `name@version`), with the capabilities
/// granted to the caller.
#[utoipa::path(post, path = "/plugins/{name}/run", tag = "plugins", params(("name" = String, Path)),
    request_body = RunRequest,
    responses((status = 200, body = NodeRun), (status = 404, body = crate::api::ErrorBody),
              (status = 409, body = crate::api::ErrorBody), (status = 422, body = crate::api::ErrorBody),
              (status = 429, body = crate::api::ErrorBody), (status = 503, body = crate::api::ErrorBody)))]
async fn run_node(
    State(plugins): State<Plugins>,
    caller: Caller,
    Path(name): Path<String>,
    Json(request): Json<RunRequest>,
) -> Result<Json<NodeRun>> {
    let config = if request.config.is_null() {
        serde_json::json!({})
    } else {
        request.config
    };
    let inputs = request.inputs.into_iter().collect();
    let who = Grantee {
        user_id: caller.user_id,
        role: Some(caller.role),
    };
    plugins
        .run_node(&name, &config, inputs, &who)
        .await
        .map(Json)
}
