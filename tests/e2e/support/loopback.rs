//! Reaching session origins (`http://<session>.localhost:<port>/`) as a browser does: every
//! `*.localhost` name is the loopback address. The system resolver here knows `localhost`
//! alone, so the tests' HTTP and WebSocket clients resolve those names themselves.

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::handshake::client::{Request, Response};
use tokio_tungstenite::{WebSocketStream, tungstenite};

fn is_loopback_name(host: &str) -> bool {
    host == "localhost" || host.ends_with(".localhost")
}

/// `*.localhost` to 127.0.0.1, anything else through the system.
struct Loopback;

impl Resolve for Loopback {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = if is_loopback_name(&host) {
                vec![SocketAddr::from(([127, 0, 0, 1], 0))]
            } else {
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect()
            };
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// A client builder that reaches session origins.
pub fn client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder().dns_resolver(Arc::new(Loopback))
}

/// A client that reaches session origins and shows redirects instead of following them.
pub fn no_redirects() -> reqwest::Client {
    client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("HTTP client")
}

/// Opens the WebSocket `request` asks for, reaching `*.localhost` hosts on the loopback.
pub async fn ws_connect(
    request: Request,
) -> Result<(WebSocketStream<TcpStream>, Response), tungstenite::Error> {
    let uri = request.uri();
    let host = uri.host().unwrap_or_default();
    let host = if is_loopback_name(host) {
        "127.0.0.1"
    } else {
        host
    };
    let port = uri.port_u16().unwrap_or(80);
    let stream = TcpStream::connect((host, port)).await?;
    tokio_tungstenite::client_async(request, stream).await
}
