//! Outgoing HTTP through `wasi:http/outgoing-handler`, for nodes that declare and were granted
//! the `http` capability. The host only lets requests through to the hosts an administrator
//! allowed; others fail with [`Error::Denied`].
//!
//! The node must declare the capability: `Description::capability("http")`.
//!
//! ```no_run
//! # fn main() -> Result<(), weft_sdk::http::Error> {
//! let response = weft_sdk::http::get("https://api.example.com/v1/items")?;
//! if response.status == 200 {
//!     let items: serde_json::Value = response.json()?;
//! }
//! # Ok(())
//! # }
//! ```
//!
//! For other methods, headers, a body or a timeout, build a [`Request`]:
//!
//! ```no_run
//! use std::time::Duration;
//! use weft_sdk::http::Request;
//!
//! # fn main() -> Result<(), weft_sdk::http::Error> {
//! let response = Request::new("POST", "https://api.example.com/v1/items")
//!     .header("content-type", "application/json")
//!     .body(r#"{"name":"x"}"#)
//!     .timeout(Duration::from_secs(10))
//!     .send()?;
//! assert_eq!(response.status, 201);
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::time::Duration;

use crate::__private::node::wasi::http::outgoing_handler;
use crate::__private::node::wasi::http::types::{
    ErrorCode, Fields, IncomingBody, IncomingResponse, Method, OutgoingBody, OutgoingRequest,
    RequestOptions, Scheme,
};
use crate::__private::node::wasi::io::streams::StreamError;
use crate::node::NodeError;

/// Largest slice `blocking-write-and-flush` accepts in one call.
const WRITE_CHUNK: usize = 4096;
const READ_CHUNK: u64 = 64 * 1024;

/// Sends a `GET` request to `url` and reads the whole response.
pub fn get(url: &str) -> Result<Response, Error> {
    Request::new("GET", url).send()
}

/// Sends a request with `method`, `headers` and `body` to `url` and reads the whole response.
pub fn request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: impl Into<Vec<u8>>,
) -> Result<Response, Error> {
    let mut request = Request::new(method, url).body(body);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    request.send()
}

/// An HTTP request under construction.
#[derive(Debug, Clone)]
pub struct Request {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    timeout: Option<Duration>,
}

/// A complete HTTP response.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Header names (lowercase) and values, in the order received.
    pub headers: Vec<(String, String)>,
    /// The whole body.
    pub body: Vec<u8>,
}

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The URL, method or a header cannot be sent.
    InvalidRequest(String),
    /// The host refused the request: no `http` grant, or a host that is not allowed.
    Denied(String),
    /// The remote side could not be reached in time or dropped the connection; worth retrying.
    Unavailable(String),
    /// Any other transport or protocol failure.
    Failed(String),
}

impl Request {
    /// A request with `method` (`GET`, `POST`, ...) to an absolute `http(s)://` URL.
    pub fn new(method: &str, url: &str) -> Self {
        Self {
            method: method.into(),
            url: url.into(),
            headers: Vec::new(),
            body: Vec::new(),
            timeout: None,
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Limits connecting, waiting for the first byte, and each pause between body bytes.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sends the request and reads the whole response, waiting (blocking the guest) on
    /// `wasi:io` pollables. Outside a Weft host (native tests) this always fails.
    pub fn send(&self) -> Result<Response, Error> {
        let target = Target::parse(&self.url)?;
        if !cfg!(target_arch = "wasm32") {
            return Err(Error::Failed(
                "http requests only work inside a Weft host (wasm32-wasip2)".into(),
            ));
        }
        let mut headers: Vec<(String, Vec<u8>)> = self
            .headers
            .iter()
            .map(|(name, value)| (name.clone(), value.clone().into_bytes()))
            .collect();
        // The whole body is known up front: say how long it is, or it goes out chunked, which
        // many servers do not accept on requests.
        if !self.body.is_empty()
            && !self
                .headers
                .iter()
                .any(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        {
            headers.push((
                "content-length".into(),
                self.body.len().to_string().into_bytes(),
            ));
        }
        let fields = Fields::from_list(&headers)
            .map_err(|err| Error::InvalidRequest(format!("headers: {err:?}")))?;
        let request = OutgoingRequest::new(fields);
        let invalid = |what: &str| Error::InvalidRequest(format!("{what} of {}", self.url));
        request
            .set_method(&method(&self.method))
            .map_err(|()| invalid("method"))?;
        request
            .set_scheme(Some(&target.scheme))
            .map_err(|()| invalid("scheme"))?;
        request
            .set_authority(Some(&target.authority))
            .map_err(|()| invalid("authority"))?;
        request
            .set_path_with_query(Some(&target.path))
            .map_err(|()| invalid("path"))?;
        let body = request
            .body()
            .map_err(|()| Error::Failed("request body already taken".into()))?;
        // The request must be handed over before its body is written: the host only drains
        // the body stream once the request is on its way.
        let future = outgoing_handler::handle(request, self.options())?;
        write_body(&body, &self.body)?;
        OutgoingBody::finish(body, None)?;
        future.subscribe().block();
        let response = match future.get() {
            Some(Ok(result)) => result?,
            Some(Err(())) => return Err(Error::Failed("response already taken".into())),
            None => return Err(Error::Failed("response not ready after waiting".into())),
        };
        read_response(response)
    }

    fn options(&self) -> Option<RequestOptions> {
        let timeout = u64::try_from(self.timeout?.as_nanos()).unwrap_or(u64::MAX);
        let options = RequestOptions::new();
        // A host may not support some timeouts; the host's own limits still apply then.
        let _ = options.set_connect_timeout(Some(timeout));
        let _ = options.set_first_byte_timeout(Some(timeout));
        let _ = options.set_between_bytes_timeout(Some(timeout));
        Some(options)
    }
}

impl Response {
    /// The value of header `name` (case-insensitive), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether the `content-type` header says JSON (`application/json`, `...+json`).
    pub fn is_json(&self) -> bool {
        self.header("content-type").is_some_and(|ct| {
            let mime = ct
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            mime == "application/json" || mime.ends_with("+json")
        })
    }

    /// The body parsed as JSON into `T`.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(&self.body)
            .map_err(|err| Error::Failed(format!("response body is not the expected JSON: {err}")))
    }

    /// The body as text, with invalid UTF-8 replaced.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn write_body(body: &OutgoingBody, bytes: &[u8]) -> Result<(), Error> {
    if bytes.is_empty() {
        return Ok(());
    }
    let stream = body
        .write()
        .map_err(|()| Error::Failed("request body stream already taken".into()))?;
    for chunk in bytes.chunks(WRITE_CHUNK) {
        stream
            .blocking_write_and_flush(chunk)
            .map_err(stream_error)?;
    }
    Ok(())
}

fn read_response(response: IncomingResponse) -> Result<Response, Error> {
    let status = response.status();
    let headers = response
        .headers()
        .entries()
        .into_iter()
        .map(|(name, value)| (name, String::from_utf8_lossy(&value).into_owned()))
        .collect();
    let body = response
        .consume()
        .map_err(|()| Error::Failed("response body already taken".into()))?;
    let bytes = read_body(&body)?;
    // Trailers are not needed; finishing releases the body.
    drop(IncomingBody::finish(body));
    Ok(Response {
        status,
        headers,
        body: bytes,
    })
}

fn read_body(body: &IncomingBody) -> Result<Vec<u8>, Error> {
    let stream = body
        .stream()
        .map_err(|()| Error::Failed("response body stream already taken".into()))?;
    let mut bytes = Vec::new();
    loop {
        match stream.blocking_read(READ_CHUNK) {
            Ok(chunk) => bytes.extend_from_slice(&chunk),
            Err(StreamError::Closed) => return Ok(bytes),
            Err(err) => return Err(stream_error(err)),
        }
    }
}

fn stream_error(err: StreamError) -> Error {
    match err {
        StreamError::Closed => Error::Unavailable("connection closed early".into()),
        StreamError::LastOperationFailed(err) => Error::Unavailable(err.to_debug_string()),
    }
}

/// The parts of an absolute URL that wasi:http wants separately.
#[derive(Debug)]
struct Target {
    scheme: Scheme,
    authority: String,
    path: String,
}

impl Target {
    fn parse(url: &str) -> Result<Self, Error> {
        let invalid = |why: &str| Error::InvalidRequest(format!("url `{url}`: {why}"));
        let uri: http::Uri = url.parse().map_err(|err| invalid(&format!("{err}")))?;
        let scheme = match uri.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("https") => Scheme::Https,
            Some(s) if s.eq_ignore_ascii_case("http") => Scheme::Http,
            Some(other) => return Err(invalid(&format!("unsupported scheme `{other}`"))),
            None => return Err(invalid("not absolute (missing http:// or https://)")),
        };
        let authority = uri.authority().ok_or_else(|| invalid("missing host"))?;
        if authority.as_str().contains('@') {
            return Err(invalid(
                "credentials in the URL are not supported; use a header",
            ));
        }
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        Ok(Self {
            scheme,
            authority: authority.as_str().into(),
            path: if path.is_empty() {
                "/".into()
            } else {
                path.into()
            },
        })
    }
}

fn method(name: &str) -> Method {
    match name.to_ascii_uppercase().as_str() {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "CONNECT" => Method::Connect,
        "OPTIONS" => Method::Options,
        "TRACE" => Method::Trace,
        "PATCH" => Method::Patch,
        other => Method::Other(other.into()),
    }
}

impl From<ErrorCode> for Error {
    fn from(code: ErrorCode) -> Self {
        let message = format!("{code:?}");
        match code {
            ErrorCode::HttpRequestDenied => Error::Denied(message),
            ErrorCode::HttpRequestMethodInvalid
            | ErrorCode::HttpRequestUriInvalid
            | ErrorCode::HttpRequestUriTooLong
            | ErrorCode::HttpRequestHeaderSectionSize(_)
            | ErrorCode::HttpRequestHeaderSize(_) => Error::InvalidRequest(message),
            ErrorCode::DnsTimeout
            | ErrorCode::DestinationUnavailable
            | ErrorCode::ConnectionRefused
            | ErrorCode::ConnectionTerminated
            | ErrorCode::ConnectionTimeout
            | ErrorCode::ConnectionReadTimeout
            | ErrorCode::ConnectionWriteTimeout
            | ErrorCode::ConnectionLimitReached
            | ErrorCode::HttpResponseTimeout => Error::Unavailable(message),
            _ => Error::Failed(message),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidRequest(m) => write!(f, "invalid request: {m}"),
            Error::Denied(m) => write!(f, "denied: {m}"),
            Error::Unavailable(m) => write!(f, "unavailable: {m}"),
            Error::Failed(m) => write!(f, "failed: {m}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<Error> for NodeError {
    fn from(err: Error) -> Self {
        match err {
            Error::InvalidRequest(_) => NodeError::invalid_input(err.to_string()),
            Error::Denied(_) => NodeError::denied(err.to_string()),
            Error::Unavailable(_) => NodeError::retryable(err.to_string()),
            Error::Failed(_) => NodeError::failed(err.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_absolute_urls() {
        let t = Target::parse("https://api.example.com:8443/v1/x?q=1").unwrap();
        assert!(matches!(t.scheme, Scheme::Https));
        assert_eq!(t.authority, "api.example.com:8443");
        assert_eq!(t.path, "/v1/x?q=1");
        assert_eq!(Target::parse("http://h").unwrap().path, "/");
    }

    #[test]
    fn rejects_unusable_urls() {
        for url in ["/relative", "ftp://h/x", "https://user:pw@h/", "not a url"] {
            assert!(
                matches!(Target::parse(url), Err(Error::InvalidRequest(_))),
                "{url}"
            );
        }
    }

    #[test]
    fn recognises_json_responses() {
        let response = |ct: &str| Response {
            status: 200,
            headers: vec![("content-type".into(), ct.into())],
            body: br#"{"a":1}"#.to_vec(),
        };
        assert!(response("application/json; charset=utf-8").is_json());
        assert!(response("application/problem+json").is_json());
        assert!(!response("text/plain").is_json());
        let value: serde_json::Value = response("application/json").json().unwrap();
        assert_eq!(value["a"], 1);
    }

    #[test]
    fn sending_outside_a_host_fails_cleanly() {
        assert!(matches!(get("http://example.com/"), Err(Error::Failed(_))));
    }

    #[test]
    fn methods_map_case_insensitively() {
        assert!(matches!(method("post"), Method::Post));
        assert!(matches!(method("purge"), Method::Other(m) if m == "PURGE"));
    }
}
