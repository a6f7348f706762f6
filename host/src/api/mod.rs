//! The HTTP kit every domain's routes use: the JSON error shape ([`ErrorBody`]), extractors
//! with JSON rejections (`extract`), WebSocket helpers (`ws`), request metrics
//! (`metrics`) and serving a router on a listener. It knows no domain: the application's
//! router is assembled in [`crate::app`].

pub(crate) mod config;
pub mod error;
pub(crate) mod extract;
pub(crate) mod metrics;
pub mod page;
pub(crate) mod ws;

pub use error::ErrorBody;

use axum::Router;
use std::time::Duration;

/// Serves `app` on `listener`, telling handlers each caller's address.
pub fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
) -> axum::serve::Serve<
    tokio::net::TcpListener,
    axum::extract::connect_info::IntoMakeServiceWithConnectInfo<Router, std::net::SocketAddr>,
    axum::middleware::AddExtension<Router, axum::extract::ConnectInfo<std::net::SocketAddr>>,
> {
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
}

/// How long a graceful shutdown waits for in-flight requests.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
