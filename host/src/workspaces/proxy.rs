//! The reverse proxy to workspace sessions: `/s/<session_id>/...` to the session's container,
//! HTTP and WebSocket, streaming both ways.
//!
//! The one-time access token (`?token=`) is spent on first use and replaced by an HttpOnly
//! cookie scoped to the session's path; the owner's API token works too. Jupyter is given its
//! own secret by the proxy, so the container is useless to anyone who reaches it directly.

use super::sessions::{Credential, SessionKind, Upstream};
use crate::error::{Error, Result};
use crate::state::AppState;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::collections::HashMap;
use std::sync::LazyLock;
use std::time::Duration;

const COOKIE: &str = "weft_session";

/// Marks a response as the upstream's own, so the API's error shaping leaves it alone.
#[derive(Clone, Copy)]
pub struct Proxied;

/// The proxy's routes (outside `/api/v1`: browsers reach them with the session cookie).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/s/{session_id}", any(proxy))
        .route("/s/{session_id}/", any(proxy))
        .route("/s/{session_id}/{*rest}", any(proxy))
}

static CLIENT: LazyLock<Client<HttpConnector, Body>> = LazyLock::new(|| {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(Duration::from_secs(5)));
    Client::builder(TokioExecutor::new()).build(connector)
});

fn query_token(uri: &Uri) -> Option<String> {
    uri.query()?.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == "token").then(|| value.to_string())
    })
}

fn without_token(query: Option<&str>) -> Option<String> {
    let kept: Vec<&str> = query?
        .split('&')
        .filter(|p| !p.starts_with("token=") && *p != "token")
        .collect();
    (!kept.is_empty()).then(|| kept.join("&"))
}

fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|line| {
            line.split(';').find_map(|pair| {
                let (key, value) = pair.trim().split_once('=')?;
                (key == COOKIE).then(|| value.to_string())
            })
        })
}

/// The request's cookies without Weft's own.
fn other_cookies(headers: &HeaderMap) -> Option<String> {
    let kept: Vec<String> = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|line| {
            line.split(';')
                .map(|p| p.trim().to_string())
                .collect::<Vec<_>>()
        })
        .filter(|p| !p.is_empty() && !p.starts_with(&format!("{COOKIE}=")))
        .collect();
    (!kept.is_empty()).then(|| kept.join("; "))
}

fn is_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// The owner's API token, if the request carries one; signing in through the auth service
/// counts a bad one against the client's address, and an address over its limit is refused.
async fn credential_caller(
    state: &AppState,
    headers: &HeaderMap,
    peer: Option<std::net::IpAddr>,
) -> Result<Option<crate::auth::Caller>> {
    let Some(bearer) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return Ok(None);
    };
    match state.auth.sign_in(bearer.trim(), peer).await {
        Ok(caller) => Ok(Some(caller)),
        Err(err) if err.code == crate::error::Code::SignInRateLimited => Err(err),
        Err(_) => Ok(None),
    }
}

async fn proxy(
    State(state): State<AppState>,
    Path(params): Path<HashMap<String, String>>,
    request: Request,
) -> Response {
    let session_id = params.get("session_id").cloned().unwrap_or_default();
    match forward(&state, &session_id, request).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

async fn forward(state: &AppState, session_id: &str, mut request: Request) -> Result<Response> {
    let token = query_token(request.uri());
    let jar = cookie(request.headers());
    let caller = if token.is_none() && jar.is_none() {
        let peer = crate::api::auth::peer(&request);
        credential_caller(state, request.headers(), peer).await?
    } else {
        None
    };
    let credential = match (&token, &jar, &caller) {
        (Some(token), _, _) => Credential::Token(token),
        (None, Some(cookie), _) => Credential::Cookie(cookie),
        (None, None, Some(caller)) => Credential::Caller(caller),
        _ => Credential::None,
    };
    let (upstream, new_cookie) = state.sessions.authorize(session_id, credential).await?;
    // The link and cookie stand for the owner: they stop working while the owner is disabled.
    state.auth.require_enabled(&upstream.owner_id).await?;
    let set_cookie = new_cookie.map(|secret| {
        HeaderValue::from_str(&format!(
            "{COOKIE}={secret}; Path=/s/{session_id}/; HttpOnly; SameSite=Lax"
        ))
        .expect("cookie header")
    });
    state.sessions.activity(&upstream.session_id).await;
    let upgrade = is_upgrade(request.headers());

    // A page opened with the token: set the cookie and take the token out of the address bar.
    if let Some(set_cookie) = &set_cookie
        && request.method() == axum::http::Method::GET
        && !upgrade
    {
        let path = request.uri().path();
        let location = match without_token(request.uri().query()) {
            Some(query) => format!("{path}?{query}"),
            None => path.to_string(),
        };
        let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response();
        response
            .headers_mut()
            .insert(header::SET_COOKIE, set_cookie.clone());
        return Ok(response);
    }

    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut request));
    let outgoing = upstream_request(&upstream, request, upgrade)?;
    let mut response = CLIENT.request(outgoing).await.map_err(|e| {
        Error::new(
            crate::error::Code::SessionNotReady,
            format!("the workspace did not answer: {e}"),
        )
        .hint("it may be restarting; retry in a moment")
    })?;
    if response.status() == StatusCode::SWITCHING_PROTOCOLS
        && let Some(client_upgrade) = client_upgrade
    {
        let upstream_upgrade = hyper::upgrade::on(&mut response);
        let session = upstream.session_id.clone();
        tokio::spawn(async move {
            match (client_upgrade.await, upstream_upgrade.await) {
                (Ok(client), Ok(server)) => {
                    let mut client = TokioIo::new(client);
                    let mut server = TokioIo::new(server);
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
                (c, s) => {
                    tracing::debug!(%session, client = c.is_ok(), upstream = s.is_ok(), "WebSocket upgrade failed")
                }
            }
        });
    }
    let (mut parts, body) = response.into_parts();
    if let Some(set_cookie) = set_cookie {
        parts.headers.append(header::SET_COOKIE, set_cookie);
    }
    parts.extensions.insert(Proxied);
    Ok(Response::from_parts(parts, Body::new(body)))
}

/// The request as the session's server should see it.
fn upstream_request(
    upstream: &Upstream,
    request: Request,
    upgrade: bool,
) -> Result<hyper::Request<Body>> {
    let (mut parts, body) = request.into_parts();
    let path = parts.uri.path();
    let path = if upstream.strip_prefix {
        let rest = path
            .strip_prefix(&format!("/s/{}", upstream.session_id))
            .unwrap_or(path);
        if rest.is_empty() {
            "/".to_string()
        } else {
            rest.to_string()
        }
    } else {
        path.to_string()
    };
    let target = match without_token(parts.uri.query()) {
        Some(query) => format!("{}{path}?{query}", upstream.base),
        None => format!("{}{path}", upstream.base),
    };
    parts.uri = target
        .parse()
        .map_err(|e| Error::internal(format!("bad upstream address: {e}")))?;
    let headers = &mut parts.headers;
    for hop in [
        "keep-alive",
        "proxy-connection",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
    ] {
        headers.remove(hop);
    }
    if !upgrade {
        headers.remove(header::CONNECTION);
        headers.remove(header::UPGRADE);
    }
    match other_cookies(headers) {
        Some(cookies) => {
            headers.insert(
                header::COOKIE,
                HeaderValue::from_str(&cookies).map_err(|e| Error::internal(e.to_string()))?,
            );
        }
        None => {
            headers.remove(header::COOKIE);
        }
    }
    headers.remove(header::AUTHORIZATION);
    if upstream.kind == SessionKind::Jupyter {
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("token {}", upstream.secret))
                .map_err(|e| Error::internal(e.to_string()))?,
        );
    }
    headers.insert("x-forwarded-proto", HeaderValue::from_static("http"));
    Ok(hyper::Request::from_parts(parts, body))
}
