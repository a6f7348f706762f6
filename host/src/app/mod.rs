//! The application: every domain's router assembled in one place, above the domains.
//!
//! Each domain module owns its routes (`auth::routes`, ...), generic over the state and taking
//! only the services it uses (axum substates: [`axum::extract::FromRef`] on [`AppState`]); this
//! module nests them under `/api/v1`, puts the token check in front of every non-public one,
//! and adds the layers every request goes through. The HTTP kit the routes share is
//! [`crate::api`].

mod openapi;
mod system;

use crate::api::{error, metrics};
use crate::state::AppState;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request};
use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::get;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::SwaggerUi;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The layers every request goes through: metrics, request ids, panic safety, the body
/// limit (a macro: the stack's type cannot be named, and routers take it two ways).
macro_rules! request_layers {
    ($state:expr) => {
        ServiceBuilder::new()
            .layer(metrics::track($state.metrics.clone()))
            .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
            .layer(PropagateRequestIdLayer::new(REQUEST_ID))
            .layer(CatchPanicLayer::custom(error::panic_response))
            .layer(DefaultBodyLimit::max($state.config.api.max_body_bytes))
    };
}

/// The whole application: API, docs, metrics, and the scheduler's SwarmPilot paths unless
/// they have a listener of their own.
pub fn router(state: AppState) -> Router {
    let (api, mut spec) = api_router(state.clone()).split_for_parts();
    let swarmpilot = state.config.scheduler.listen.is_none().then(|| {
        let (paths, paths_spec) = crate::scheduler::routes::swarmpilot_router(
            state.auth.clone(),
            &state.config.scheduler,
        )
        .split_for_parts();
        spec.merge(paths_spec);
        paths
    });
    let app = Router::new()
        .merge(api)
        .merge(SwaggerUi::new("/docs").url("/api/v1/openapi.json", openapi_paths(spec)))
        .route("/metrics", get(system::metrics))
        .merge(crate::git::http::router())
        .merge(crate::dataset::remote::router())
        .merge(crate::mlflow::routes::router(state.auth.clone()));
    let app = with_layers(app, state.clone());
    match swarmpilot {
        Some(paths) => with_lean_layers(paths, &state)
            .with_state(state)
            .fallback_service(app),
        None => app,
    }
}

/// The document with axum's wildcard segments (`{*path}`) written as OpenAPI's (`{path}`):
/// the routes are declared once, for both.
fn openapi_paths(mut spec: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    spec.paths.paths = std::mem::take(&mut spec.paths.paths)
        .into_iter()
        .map(|(path, item)| (path.replace("{*", "{"), item))
        .collect();
    spec
}

/// The scheduler's SwarmPilot paths alone, for their own listener.
pub fn scheduler_router(state: AppState) -> Router {
    let (paths, _) =
        crate::scheduler::routes::swarmpilot_router(state.auth.clone(), &state.config.scheduler)
            .split_for_parts();
    with_lean_layers(paths, &state)
        .fallback(error::route_not_found)
        .with_state(state)
}

/// The layers of the SwarmPilot paths: a task costs a submit and a completion, thousands a
/// second, so they skip the per-request span and the error rewriting (their answers are JSON
/// already).
fn with_lean_layers(paths: Router<AppState>, state: &AppState) -> Router<AppState> {
    paths
        .method_not_allowed_fallback(error::method_not_allowed)
        .route_layer(request_layers!(state))
}

/// The web app (or the JSON 404) for paths no route serves, the error fallbacks, and the
/// request layers plus a span per request and error answers rewritten as JSON.
fn with_layers(app: Router<AppState>, state: AppState) -> Router {
    app.fallback(crate::ui::serve)
        .method_not_allowed_fallback(error::method_not_allowed)
        .with_state(state.clone())
        .layer(
            ServiceBuilder::new()
                .layer(TraceLayer::new_for_http().make_span_with(request_span))
                .layer(from_fn(error::ensure_json_errors)),
        )
        .layer(request_layers!(state))
}

/// The documented API: public routes plus the token-protected domain routes under `/api/v1`.
fn api_router(state: AppState) -> OpenApiRouter<AppState> {
    let protected = OpenApiRouter::new()
        .merge(crate::auth::routes::router())
        .merge(crate::registry::routes::router(
            state.config.plugins.max_upload_bytes,
        ))
        .merge(crate::workflow::routes::router())
        .merge(crate::scheduler::routes::router())
        .merge(crate::container::routes::router())
        .merge(crate::workspace::routes::router())
        .merge(crate::notebook::routes::router())
        .merge(crate::git::routes::router())
        .merge(crate::mlflow::models_routes::router())
        .merge(crate::dataset::routes::router())
        .merge(crate::lineage::routes::router())
        .route_layer(from_fn_with_state(
            state.auth.clone(),
            crate::auth::require_token,
        ));
    let v1 = OpenApiRouter::new()
        .routes(routes!(system::health))
        .merge(crate::auth::sign_in_routes::router())
        .merge(protected);
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi()).nest("/api/v1", v1)
}

fn request_span<B>(request: &Request<B>) -> tracing::Span {
    let id = request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    tracing::info_span!(
        "request",
        id,
        method = %request.method(),
        path = request.uri().path(),
        user = tracing::field::Empty,
    )
}
