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

/// A listener whose connections send small writes at once ([`no_delay`]).
pub type Listener = axum::serve::TapIo<tokio::net::TcpListener, fn(&mut tokio::net::TcpStream)>;

/// Serves `app` on `listener`, telling handlers each caller's address.
pub fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
) -> axum::serve::Serve<
    Listener,
    axum::extract::connect_info::IntoMakeServiceWithConnectInfo<Router, std::net::SocketAddr>,
    axum::middleware::AddExtension<Router, axum::extract::ConnectInfo<std::net::SocketAddr>>,
> {
    use axum::serve::ListenerExt as _;
    axum::serve(
        listener.tap_io(no_delay as fn(&mut tokio::net::TcpStream)),
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
}

/// Turns Nagle's algorithm off on an accepted connection: an answer's last small segment (a
/// proxied WebSocket message, the tail of a response) would otherwise wait for the peer's
/// delayed acknowledgement, up to 40 ms.
fn no_delay(tcp: &mut tokio::net::TcpStream) {
    if let Err(err) = tcp.set_nodelay(true) {
        tracing::debug!(%err, "cannot set TCP_NODELAY");
    }
}

/// How long a graceful shutdown waits for in-flight requests.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
