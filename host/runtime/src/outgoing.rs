//! Sends a plugin's outgoing HTTP request: the host and port must be granted, the name is
//! resolved once, every address it resolves to is checked (see `destinations`), and the
//! connection goes to a checked address, so a name cannot resolve to a public address for the
//! check and to `127.0.0.1` for the connection (DNS rebinding).
//!
//! Not here: what a grant allows (`destinations`), or the guest's side of `wasi:http`.

use crate::destinations::{Destination, HostPattern, refusal};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, SizeHint};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody};

/// Waits used when the guest sets none (as wasmtime's own client).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// Why a request was not sent or not answered.
pub(crate) enum SendError {
    /// The grant does not allow it; the text says why, for the plugin's log.
    Denied(String),
    /// It was allowed but failed on the way.
    Failed(Error),
}

impl From<Error> for SendError {
    fn from(error: Error) -> Self {
        SendError::Failed(error)
    }
}

/// The response and the future that drives the rest of the connection.
pub(crate) type Sent = (
    http::Response<WasiBody>,
    Box<dyn Future<Output = Result<(), Error>> + Send>,
);

trait Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Stream for T {}

/// Sends `request` if `patterns` allow its destination and the addresses it resolves to.
pub(crate) async fn send(
    mut request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
    patterns: Arc<[HostPattern]>,
) -> Result<Sent, SendError> {
    let uri = request.uri();
    let host = uri.host().ok_or(Error::HttpRequestUriInvalid)?.to_string();
    let tls = uri.scheme() == Some(&http::uri::Scheme::HTTPS);
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let destination = Destination::parse(&host);
    if !patterns.iter().any(|p| p.matches(&destination, port)) {
        return Err(SendError::Denied(format!(
            "HTTP to {host}:{port} is not granted to this plugin"
        )));
    }
    let option = |pick: fn(&RequestOptions) -> Option<Duration>| {
        options.as_ref().and_then(pick).unwrap_or(DEFAULT_TIMEOUT)
    };
    let connect_timeout = option(|o| o.connect_timeout);
    let first_byte_timeout = option(|o| o.first_byte_timeout);
    let between_bytes_timeout = option(|o| o.between_bytes_timeout).max(Duration::from_nanos(1));

    let addresses = match &destination {
        Destination::Ip(ip) => vec![*ip],
        Destination::Name(_) => resolve(&host, port, connect_timeout).await?,
    };
    let mut allowed = Vec::new();
    let mut refused = None;
    for ip in addresses {
        match refusal(&patterns, ip, port) {
            None => allowed.push(SocketAddr::new(ip, port)),
            Some(why) => refused = refused.or(Some(why)),
        }
    }
    if allowed.is_empty() {
        let why = refused.unwrap_or_else(|| "it resolves to no address".into());
        return Err(SendError::Denied(format!("HTTP to {host}:{port}: {why}")));
    }

    let tcp = tokio::time::timeout(connect_timeout, connect(&allowed))
        .await
        .map_err(|_| Error::ConnectionTimeout)??;
    let stream: Box<dyn Stream> = if tls {
        Box::new(handshake(tcp, &destination).await?)
    } else {
        Box::new(tcp)
    };
    let (mut sender, conn) = tokio::time::timeout(
        connect_timeout,
        hyper::client::conn::http1::Builder::new().handshake(TokioIo::new(stream)),
    )
    .await
    .map_err(|_| Error::ConnectionTimeout)?
    .map_err(Error::from)?;

    // The request line carries only the path: the authority went into the Host header.
    *request.uri_mut() = http::Uri::builder()
        .path_and_query(
            request
                .uri()
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_string(),
        )
        .build()
        .map_err(|_| Error::HttpRequestUriInvalid)?;

    // The connection must be driven while the response is awaited.
    let mut conn = Box::pin(conn);
    let mut conn_done = false;
    let response = tokio::time::timeout(first_byte_timeout, sender.send_request(request));
    tokio::pin!(response);
    let response = loop {
        tokio::select! {
            answered = &mut response => {
                break answered
                    .map_err(|_| Error::ConnectionReadTimeout)?
                    .map_err(Error::from)?;
            }
            ended = &mut conn, if !conn_done => {
                conn_done = true;
                ended.map_err(Error::from)?;
            }
        }
    };
    let response = response.map(|body| {
        IdleTimeout {
            body,
            idle: between_bytes_timeout,
            deadline: Box::pin(tokio::time::sleep(between_bytes_timeout)),
        }
        .boxed_unsync()
    });
    let rest = async move {
        if !conn_done {
            conn.await.map_err(Error::from)?;
        }
        Ok(())
    };
    Ok((response, Box::new(rest)))
}

/// Every address `host` resolves to, looked up once.
async fn resolve(host: &str, port: u16, timeout: Duration) -> Result<Vec<IpAddr>, Error> {
    let dns_error = |info: String| Error::DnsError {
        rcode: Some(info),
        info_code: None,
    };
    let found = tokio::time::timeout(timeout, tokio::net::lookup_host((host, port)))
        .await
        .map_err(|_| Error::DnsTimeout)?
        .map_err(|e| dns_error(e.to_string()))?;
    Ok(found.map(|addr| addr.ip()).collect())
}

/// Connects to the first of `addresses` that answers.
async fn connect(addresses: &[SocketAddr]) -> Result<TcpStream, Error> {
    let mut last = None;
    for addr in addresses {
        match TcpStream::connect(addr).await {
            Ok(stream) => return Ok(stream),
            Err(e) => last = Some(e),
        }
    }
    Err(Error::Connect(last.unwrap_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::NotFound, "no address")
    })))
}

/// TLS over `tcp`, verifying the certificate against the name the request gave (not the
/// address connected to).
async fn handshake(
    tcp: TcpStream,
    destination: &Destination,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, Error> {
    use rustls::pki_types::ServerName;
    let name = match destination {
        Destination::Ip(ip) => ServerName::from(*ip),
        Destination::Name(name) => ServerName::try_from(name.clone())
            .map_err(|e| Error::InternalError(Some(format!("not a TLS server name: {e}"))))?,
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::InternalError(Some(e.to_string())))?
        .with_root_certificates(rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.into(),
        })
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(Error::Tls)
}

/// A response body that fails when no frame comes for `idle`.
struct IdleTimeout {
    body: hyper::body::Incoming,
    idle: Duration,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl Body for IdleTimeout {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.body).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let next = tokio::time::Instant::now() + this.idle;
                this.deadline.as_mut().reset(next);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(Error::from(e)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                ready!(this.deadline.as_mut().poll(cx));
                Poll::Ready(Some(Err(Error::ConnectionReadTimeout)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
