//! The proxy's HTTP client to session containers, and how it copes with servers that close
//! kept-alive connections.
//!
//! code-server (Node's HTTP server) closes a connection idle for 5 s (`Keep-Alive: timeout=5`).
//! A pooled connection picked up at that moment carries a request the server never reads: the
//! client sees the connection close before any answer, and the browser got a failed request
//! (an error 409 for, say, one of VS Code's snippet files). So idle connections are dropped
//! before the server's 5 s, and a request that cannot have changed anything (no body, a method
//! without effects) goes once more, on a new connection, when its connection broke.

use axum::body::{Body, HttpBody as _};
use axum::http::Method;
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::{Client, Error};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::time::Duration;

/// How long an idle connection to a container is kept: under the 5 s after which Node's
/// servers (code-server) close theirs.
pub(super) const POOL_IDLE: Duration = Duration::from_secs(3);

pub(super) type ProxyClient = Client<HttpConnector, Body>;

/// A client keeping idle connections for `pool_idle` ([`POOL_IDLE`] but in tests).
pub(super) fn client(pool_idle: Duration) -> ProxyClient {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(Duration::from_secs(5)));
    // Small writes (a WebSocket message, a request's head) go at once, as on the browser's side.
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(pool_idle)
        .pool_timer(TokioTimer::new())
        .build(connector)
}

/// Sends `request`; one without a body and without effects whose connection broke after it
/// was open goes once more.
pub(super) async fn send(
    client: &ProxyClient,
    request: hyper::Request<Body>,
) -> Result<hyper::Response<Incoming>, Error> {
    let again = replay(&request);
    match (client.request(request).await, again) {
        (Err(e), Some(again)) if !e.is_connect() => {
            tracing::debug!(error = %e, "a container's connection broke; the request goes again");
            client.request(again).await
        }
        (answer, _) => answer,
    }
}

/// A copy of `request` if sending it twice does no harm: `GET`, `HEAD` or `OPTIONS` (a
/// WebSocket's opening `GET` too), with no body.
fn replay(request: &hyper::Request<Body>) -> Option<hyper::Request<Body>> {
    let safe = [Method::GET, Method::HEAD, Method::OPTIONS].contains(request.method());
    (safe && request.body().is_end_stream()).then(|| {
        let mut again = hyper::Request::new(Body::empty());
        *again.method_mut() = request.method().clone();
        *again.uri_mut() = request.uri().clone();
        *again.version_mut() = request.version();
        *again.headers_mut() = request.headers().clone();
        again
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt as _;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::{TcpListener, TcpStream};

    /// Reads one request's head (these requests have no body).
    async fn read_request(stream: &mut TcpStream) -> bool {
        let mut seen = Vec::new();
        let mut buf = [0; 1024];
        while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
        true
    }

    async fn answer(stream: &mut TcpStream) {
        stream
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            .await
            .unwrap();
    }

    /// A server like Node's at the moment its keep-alive timer fires: it answers a
    /// connection's first request and closes the connection when the next one arrives,
    /// unanswered. Returns its address.
    async fn closing_server() -> std::net::SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (mut stream, _) = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    if read_request(&mut stream).await {
                        answer(&mut stream).await;
                        read_request(&mut stream).await;
                    }
                });
            }
        });
        addr
    }

    fn request(method: Method, addr: std::net::SocketAddr, body: Body) -> hyper::Request<Body> {
        hyper::Request::builder()
            .method(method)
            .uri(format!("http://{addr}/snippets"))
            .body(body)
            .unwrap()
    }

    /// The answer's status, its body read (so its connection goes back to the pool).
    async fn status(client: &ProxyClient, request: hyper::Request<Body>) -> Result<u16, Error> {
        let answer = send(client, request).await?;
        let status = answer.status().as_u16();
        answer.into_body().collect().await.expect("body read");
        Ok(status)
    }

    #[tokio::test]
    async fn a_get_on_a_connection_the_server_closed_goes_again() {
        let addr = closing_server().await;
        let client = client(POOL_IDLE);
        for _ in 0..3 {
            let answer = status(&client, request(Method::GET, addr, Body::empty())).await;
            assert_eq!(answer.unwrap(), 200);
        }
    }

    #[tokio::test]
    async fn a_request_with_a_body_or_effects_goes_once() {
        let addr = closing_server().await;
        let client = client(POOL_IDLE);
        for (method, body) in [
            (Method::POST, Body::empty()),
            (Method::GET, Body::from("a body")),
        ] {
            assert_eq!(
                status(&client, request(Method::GET, addr, Body::empty()))
                    .await
                    .unwrap(),
                200
            );
            let broken = status(&client, request(method.clone(), addr, body)).await;
            assert!(broken.is_err(), "{method} went twice: {broken:?}");
        }
    }

    #[tokio::test]
    async fn idle_connections_are_dropped_before_the_server_drops_them() {
        let addr = closing_server().await;
        let idle = Duration::from_millis(100);
        let client = client(idle);
        assert_eq!(
            status(&client, request(Method::GET, addr, Body::empty()))
                .await
                .unwrap(),
            200
        );
        tokio::time::sleep(idle * 3).await;
        // On the first connection, the server would close it unanswered: not sent there.
        assert_eq!(
            status(&client, request(Method::POST, addr, Body::empty()))
                .await
                .unwrap(),
            200
        );
    }
}
