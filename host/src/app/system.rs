//! Public and operational endpoints: health and metrics.

use crate::api::extract::Json;
use crate::error::Result;
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Health {
    /// `ok`, or `degraded` when a dependency is down.
    status: &'static str,
    version: &'static str,
    /// `ok` or `unavailable`.
    database: &'static str,
}

/// Liveness and readiness; public.
#[utoipa::path(get, path = "/health", tag = "system", security(()),
    responses((status = 200, body = Health), (status = 503, body = Health)))]
pub(super) async fn health(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    panic_point("health");
    let db_ok = state.store.ping().await;
    let status = if db_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(Health {
            status: if db_ok { "ok" } else { "degraded" },
            version: env!("CARGO_PKG_VERSION"),
            database: if db_ok { "ok" } else { "unavailable" },
        }),
    )
}

/// Prometheus metrics in text format; needs an admin token unless `[api] public_metrics`.
pub(super) async fn metrics(
    State(state): State<AppState>,
    request: Request,
) -> Result<impl IntoResponse> {
    if !state.config.api.public_metrics {
        let token = crate::auth::bearer_token(request.headers())?;
        state
            .auth
            .sign_in(token, crate::auth::peer(&request))
            .await?
            .require_admin()?;
    }
    record_gauges(&state).await;
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    ))
}

/// Brings the gauges read from the services up to now, once per scrape: sessions by state
/// and containers by purpose from the store, capacity from the engine, queues from the
/// scheduler. One that cannot be read keeps its last value; the scrape still answers.
async fn record_gauges(state: &AppState) {
    if let Err(e) = state.sessions.record_counts().await {
        tracing::warn!(error = %e, "cannot count sessions for the metrics");
    }
    if let Err(e) = state.containers.record_usage(&state.metrics.host).await {
        tracing::warn!(error = %e, "cannot count containers for the metrics");
    }
    state.scheduler.record_queues();
}

/// In debug builds (the ones `cargo test` runs), `WEFT_PANIC_AT=<handler>` makes that handler
/// panic, so a test can prove the real stack answers a panic with a JSON 500 and serves on.
/// Release builds compile it to nothing: no variable can make a shipped host panic.
#[cfg(debug_assertions)]
fn panic_point(handler: &str) {
    static TARGET: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    if TARGET
        .get_or_init(|| std::env::var("WEFT_PANIC_AT").ok())
        .as_deref()
        == Some(handler)
    {
        panic!("deliberate panic in {handler} (WEFT_PANIC_AT)");
    }
}

#[cfg(not(debug_assertions))]
#[inline(always)]
fn panic_point(_handler: &str) {}
