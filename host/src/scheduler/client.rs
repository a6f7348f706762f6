//! A lean JSON-over-HTTP/1.1 client for the scheduler's hot paths (a task costs one call to
//! its instance and one report back): keep-alive connections pooled per origin on hyper's
//! connection API, a timeout per exchange and a bound on answers, and nothing else per call.
//! hyper_util's general client cost about 4% of the scheduler's CPU per task in its checkout
//! alone (a connect future made and raced against every checkout, origin keys rebuilt per call).

use bytes::Bytes;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Method, StatusCode, Uri, header};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The most of an answer that is read.
const MAX_ANSWER_BYTES: usize = 1 << 20;
/// Idle connections kept per origin.
const MAX_IDLE_PER_ORIGIN: usize = 256;
/// How long an unused connection is kept (hyper_util's default).
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

type Sender = SendRequest<Full<Bytes>>;

/// Cheap to clone; clones share the connection pool.
#[derive(Clone)]
pub(crate) struct HttpClient {
    pool: Arc<Mutex<Pool>>,
    timeout: Duration,
    connect_timeout: Duration,
}

/// Idle connections by origin, each with when it was last used. Dropping a connection's
/// sender closes it.
struct Pool {
    idle: HashMap<Authority, Vec<(Sender, Instant)>>,
    idle_timeout: Duration,
    swept: Instant,
}

impl Pool {
    fn take(&mut self, origin: &Authority) -> Option<Sender> {
        let senders = self.idle.get_mut(origin)?;
        while let Some((sender, used)) = senders.pop() {
            if used.elapsed() < self.idle_timeout && sender.is_ready() {
                return Some(sender);
            }
        }
        None
    }

    /// Keeps `sender` for reuse; now and then closes what has idled too long everywhere
    /// (origins of removed instances included).
    fn put(&mut self, origin: Authority, sender: Sender) {
        let now = Instant::now();
        let senders = self.idle.entry(origin).or_default();
        if senders.len() < MAX_IDLE_PER_ORIGIN {
            senders.push((sender, now));
        }
        if now.duration_since(self.swept) > self.idle_timeout / 4 {
            self.swept = now;
            let keep = self.idle_timeout;
            self.idle.retain(|_, senders| {
                senders.retain(|(s, used)| now.duration_since(*used) < keep && !s.is_closed());
                !senders.is_empty()
            });
        }
    }
}

impl HttpClient {
    /// Each exchange (connecting included) must finish within `timeout`.
    pub(crate) fn new(timeout: Duration) -> Self {
        Self::with_idle_timeout(timeout, IDLE_TIMEOUT)
    }

    fn with_idle_timeout(timeout: Duration, idle_timeout: Duration) -> Self {
        let pool = Pool {
            idle: HashMap::new(),
            idle_timeout,
            swept: Instant::now(),
        };
        Self {
            pool: Arc::new(Mutex::new(pool)),
            timeout,
            connect_timeout: timeout.min(Duration::from_secs(2)),
        }
    }

    /// One exchange: the answer's status and body. Errors read "connection refused or
    /// unreachable" or "timed out" when those are the cause.
    pub(crate) async fn call(
        &self,
        method: Method,
        url: &str,
        json_body: Option<Bytes>,
        bearer: Option<&str>,
    ) -> Result<(StatusCode, Bytes), String> {
        let uri: Uri = url.parse().map_err(|e| format!("bad URL {url}: {e}"))?;
        let (Some(authority), true) = (
            uri.authority().cloned(),
            uri.scheme() == Some(&Scheme::HTTP),
        ) else {
            return Err(format!(
                "bad URL {url}: only http://host:port/... is spoken"
            ));
        };
        let path = uri.path_and_query().map_or("/", PathAndQuery::as_str);
        let mut request = http::Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, authority.as_str());
        if json_body.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        if let Some(token) = bearer {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = request
            .body(Full::new(json_body.unwrap_or_default()))
            .map_err(|e| format!("bad request to {url}: {e}"))?;
        tokio::time::timeout(self.timeout, self.exchange(authority, request))
            .await
            .map_err(|_| "timed out".to_string())?
    }

    async fn exchange(
        &self,
        origin: Authority,
        mut request: http::Request<Full<Bytes>>,
    ) -> Result<(StatusCode, Bytes), String> {
        // A pooled connection the instance closed while it was idle gives the request back
        // unsent; it then goes on the next one, or a new one.
        let (mut sender, response) = loop {
            let pooled = self.pool.lock().expect("pool lock").take(&origin);
            let (mut sender, pooled) = match pooled {
                Some(sender) => (sender, true),
                None => (self.connect(&origin).await?, false),
            };
            match sender.try_send_request(request).await {
                Ok(response) => break (sender, response),
                Err(mut err) => match err.take_message() {
                    Some(unsent) if pooled => request = unsent,
                    _ => return Err(describe(err.into_error())),
                },
            }
        };
        let status = response.status();
        let body = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
            .collect()
            .await
            .map_err(|e| format!("cannot read the answer: {e}"))?
            .to_bytes();
        // Ready again once the answer was read whole (usually at once), unless a side closes.
        if sender.is_ready() || sender.ready().await.is_ok() {
            self.pool.lock().expect("pool lock").put(origin, sender);
        }
        Ok((status, body))
    }

    async fn connect(&self, origin: &Authority) -> Result<Sender, String> {
        let address = (
            origin.host().trim_matches(['[', ']']),
            origin.port_u16().unwrap_or(80),
        );
        let stream = tokio::time::timeout(
            self.connect_timeout,
            tokio::net::TcpStream::connect(address),
        )
        .await
        .map_err(|_| "connection refused or unreachable (connect timed out)".to_string())?
        .map_err(|e| format!("connection refused or unreachable: {e}"))?;
        let _ = stream.set_nodelay(true);
        let (sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(describe)?;
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(%err, "task instance connection closed");
            }
        });
        Ok(sender)
    }
}

/// A failed exchange on an open connection (never worded like a refused connection: the
/// scheduler takes those as the instance being unreachable).
fn describe(err: hyper::Error) -> String {
    let mut text = format!("the exchange failed: {err}");
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::TcpListener;

    /// A server that answers each connection's first request with `{}` and then closes it
    /// without saying so (as an instance whose keep-alive timeout passed would); returns its
    /// URL.
    async fn answers_once_per_connection() -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/info", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut request = vec![0; 4096];
                let _ = socket.read(&mut request).await;
                let _ = socket
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")
                    .await;
                drop(socket);
            }
        });
        url
    }

    #[tokio::test]
    async fn connections_the_peer_closed_are_not_reused() {
        let url = answers_once_per_connection().await;
        let client = HttpClient::new(Duration::from_secs(5));
        for _ in 0..3 {
            let (status, body) = client.call(Method::GET, &url, None, None).await.unwrap();
            assert_eq!((status, &body[..]), (StatusCode::OK, &b"{}"[..]));
            // Let the client see the close before the next call.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A keep-alive server answering `{}` to every request; counts the connections it was
    /// opened and the ones closed by the client.
    async fn keep_alive_server() -> (String, Arc<(AtomicUsize, AtomicUsize)>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/info", listener.local_addr().unwrap());
        let counts = Arc::new((AtomicUsize::new(0), AtomicUsize::new(0)));
        let seen = counts.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                seen.0.fetch_add(1, Ordering::SeqCst);
                let seen = seen.clone();
                tokio::spawn(async move {
                    let mut request = vec![0; 4096];
                    while socket.read(&mut request).await.is_ok_and(|n| n > 0) {
                        let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}";
                        if socket.write_all(answer).await.is_err() {
                            return;
                        }
                    }
                    seen.1.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
        (url, counts)
    }

    #[tokio::test]
    async fn connections_are_reused_and_closed_once_idle_too_long() {
        let (url, counts) = keep_alive_server().await;
        let client =
            HttpClient::with_idle_timeout(Duration::from_secs(5), Duration::from_millis(100));
        for _ in 0..3 {
            client.call(Method::GET, &url, None, None).await.unwrap();
        }
        assert_eq!(counts.0.load(Ordering::SeqCst), 1, "one connection, reused");
        tokio::time::sleep(Duration::from_millis(150)).await;
        client.call(Method::GET, &url, None, None).await.unwrap();
        assert_eq!(
            counts.0.load(Ordering::SeqCst),
            2,
            "the idle one is not reused"
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        while counts.1.load(Ordering::SeqCst) < 1 {
            assert!(
                Instant::now() < deadline,
                "the idle connection was never closed"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn refused_and_silent_peers_are_told_apart() {
        let unused = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let refused = format!("http://{}/info", unused.local_addr().unwrap());
        drop(unused);
        let client = HttpClient::new(Duration::from_millis(300));
        let err = client
            .call(Method::GET, &refused, None, None)
            .await
            .unwrap_err();
        assert!(
            err.starts_with("connection refused or unreachable"),
            "{err}"
        );

        let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/info", silent.local_addr().unwrap());
        let err = client
            .call(Method::GET, &url, None, None)
            .await
            .unwrap_err();
        assert_eq!(err, "timed out");

        let err = client
            .call(Method::GET, "https://example.com/", None, None)
            .await
            .unwrap_err();
        assert!(err.contains("only http://"), "{err}");
    }
}
