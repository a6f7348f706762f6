//! Bearer-token authentication for every non-public route: the middleware in front of them,
//! and the [`Caller`] and [`Admin`] extractors handlers take.
//!
//! Browsers cannot set headers on a WebSocket handshake, so a WebSocket request may carry its
//! token as a subprotocol instead: `new WebSocket(url, ["weft", "weft.bearer.<token>"])`; the
//! answer selects `weft` (as Kubernetes' API does for its `base64url.bearer...` protocol).

use super::{Admin, Auth, Caller};
use crate::error::{Code, Error};
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;

/// Middleware: authenticates the request and stores its [`Caller`] for handlers.
pub(crate) async fn require_token(
    State(auth): State<Auth>,
    mut request: Request,
    next: Next,
) -> Result<Response, Error> {
    authenticate(&auth, &mut request).await?;
    let by_protocol = protocol_token(request.headers()).is_some();
    let mut response = next.run(request).await;
    if by_protocol && response.status() == axum::http::StatusCode::SWITCHING_PROTOCOLS {
        response.headers_mut().insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            header::HeaderValue::from_static(WS_PROTOCOL),
        );
    }
    Ok(response)
}

/// The subprotocol a WebSocket answered through [`WS_TOKEN_PREFIX`] speaks.
const WS_PROTOCOL: &str = "weft";
/// Prefix of the subprotocol that carries a WebSocket request's token.
const WS_TOKEN_PREFIX: &str = "weft.bearer.";

/// The token a WebSocket handshake offers as a subprotocol, if any.
fn protocol_token(headers: &axum::http::HeaderMap) -> Option<&str> {
    if !headers.contains_key(header::UPGRADE) {
        return None;
    }
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|p| p.trim().strip_prefix(WS_TOKEN_PREFIX))
        .filter(|token| !token.is_empty())
}

/// Authenticates the request's Bearer token and stores its [`Caller`] for handlers.
pub(crate) async fn authenticate(auth: &Auth, request: &mut Request) -> Result<Caller, Error> {
    let token = bearer_token(request.headers())?.to_string();
    sign_in(auth, &token, request).await
}

/// Signs in with `token`, presented by `request`'s client, and stores the [`Caller`] for
/// handlers.
pub(crate) async fn sign_in(
    auth: &Auth,
    token: &str,
    request: &mut Request,
) -> Result<Caller, Error> {
    let caller = auth.sign_in(token, peer(request)).await?;
    tracing::Span::current().record("user", caller.name.as_str());
    request.extensions_mut().insert(caller.clone());
    Ok(caller)
}

/// The client's address (IPv4-mapped IPv6 addresses as IPv4), when the listener tells it.
pub(crate) fn peer<B>(request: &axum::http::Request<B>) -> Option<std::net::IpAddr> {
    request
        .extensions()
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip().to_canonical())
}

pub(crate) fn bearer_token(headers: &axum::http::HeaderMap) -> Result<&str, Error> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        if let Some(token) = protocol_token(headers) {
            return Ok(token);
        }
        return Err(Error::new(Code::Unauthenticated, "authentication required")
            .hint("send Authorization: Bearer <token>; `weft admin bootstrap` prints the first admin token"));
    };
    let value = value.to_str().unwrap_or_default();
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(token.trim())
        }
        _ => Err(Error::new(
            Code::Unauthenticated,
            "the Authorization header must be 'Bearer <token>'",
        )
        .hint("API tokens are sent as Authorization: Bearer weft_...")),
    }
}

/// The token a client of another tool's protocol sends (git, DVC): Basic auth's password (or
/// its user name when the password is empty, as in `http://TOKEN@host/...`), or a Bearer token.
pub(crate) fn basic_or_bearer_token(headers: &axum::http::HeaderMap) -> Result<String, Error> {
    use base64::Engine as _;
    let missing = || {
        Error::new(Code::Unauthenticated, "authentication required")
            .hint("give any user name and a Weft API token as the password")
    };
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(missing)?;
    let (scheme, rest) = value.split_once(' ').ok_or_else(missing)?;
    if scheme.eq_ignore_ascii_case("bearer") {
        return Ok(rest.trim().to_string());
    }
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(missing());
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(missing)?;
    let (user, password) = decoded.split_once(':').unwrap_or((&decoded, ""));
    let token = if password.is_empty() { user } else { password };
    if token.is_empty() {
        return Err(missing());
    }
    Ok(token.to_string())
}

/// `error` as an answer; a failed sign-in carries a Basic challenge, so that clients which
/// ask for a password (git) do.
pub(crate) fn challenged(error: Error) -> Response {
    use axum::response::IntoResponse as _;
    let basic = matches!(
        error.code,
        Code::Unauthenticated
            | Code::InvalidToken
            | Code::TokenExpired
            | Code::TokenRevoked
            | Code::UserDisabled
    );
    let mut response = error.into_response();
    if basic {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Basic realm=\"Weft\""),
        );
    }
    response
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Error> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| Error::new(Code::Unauthenticated, "authentication required"))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Admin {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        let caller = Caller::from_request_parts(parts, state).await?;
        caller.require_admin()?;
        Ok(Admin(caller))
    }
}
