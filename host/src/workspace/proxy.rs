//! The reverse proxy to workspace sessions, on a listener of its own: a request for host
//! `<session>.<sessions domain>` goes to that session's container, HTTP and WebSocket,
//! streaming both ways. Every session has its own origin (see `super::origin`); the API is
//! never served here, nor a session on the API's listener.
//!
//! What opens a session: its one-time access token (`?token=`), spent on first use for an
//! HttpOnly cookie of the session's host alone; or the owner's API token. A request made by
//! another site's page (its `Origin` or `Sec-Fetch-Site` says so) is refused unless it is a
//! top-level navigation, so a page on another session's origin cannot use the cookie. The
//! workspace server's own secret is added here, never shown to the browser.
//!
//! Upstream answers are confined to the session's origin: hop-by-hop headers,
//! `Service-Worker-Allowed`, and cookies set for a domain or named like Weft's or like the
//! server's secret are taken out.

use super::proxy_client::{self, ProxyClient};
use super::pump;
use super::sessions::{Credential, Sessions, Upstream};
use crate::auth::Auth;
use crate::error::{Code, Error, Result};
use axum::body::{Body, HttpBody};
use axum::extract::{FromRef, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::{BoxError, Router};
use http_body_util::BodyExt as _;
use std::sync::Arc;
use tower_http::catch_panic::CatchPanicLayer;

/// Weft's cookie on a session's origin over plain HTTP.
const COOKIE: &str = "weft_session";
/// Over HTTPS: the `__Host-` prefix makes browsers refuse the name from a sibling host's page
/// (`document.cookie = "...; domain=<sessions domain>"`).
const SECURE_COOKIE: &str = "__Host-weft_session";

/// Headers meaningful for one connection only (RFC 9110 7.6.1), never forwarded.
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    HeaderName::from_static("proxy-connection"),
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
];

/// The proxy's services, and its client to the containers.
#[derive(Clone)]
struct Proxy {
    sessions: Sessions,
    auth: Auth,
    /// Keeps idle connections to containers for reuse. One per router, not one per process: a
    /// pooled connection lives on the runtime that opened it, and serving the same Weft from
    /// another runtime must not pick up connections whose runtime is gone.
    client: ProxyClient,
}

/// The sessions listener's whole application.
pub fn router<S>(state: S) -> Router
where
    Sessions: FromRef<S>,
    Auth: FromRef<S>,
{
    let client = proxy_client::client(proxy_client::POOL_IDLE);
    let proxy_state = Proxy {
        sessions: Sessions::from_ref(&state),
        auth: Auth::from_ref(&state),
        client,
    };
    Router::new()
        .fallback(proxy)
        .with_state(proxy_state)
        .layer(CatchPanicLayer::custom(crate::api::error::panic_response))
}

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

/// The request's cookies as `name=value` pairs.
fn cookies(headers: &HeaderMap) -> impl Iterator<Item = (&str, &str)> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|line| line.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
}

/// The cookie a spent token becomes: for the session's host alone (no `Domain`), out of
/// scripts' reach, not sent with other sites' subrequests, and over TLS `Secure`.
fn session_cookie(secret: &str, secure: bool) -> HeaderValue {
    let (name, secure) = if secure {
        (SECURE_COOKIE, "; Secure")
    } else {
        (COOKIE, "")
    };
    HeaderValue::from_str(&format!(
        "{name}={secret}; Path=/; HttpOnly; SameSite=Lax{secure}"
    ))
    .expect("a hex secret makes a valid header")
}

fn is_weft_cookie(name: &str) -> bool {
    name == COOKIE || name == SECURE_COOKIE
}

fn is_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// The host the request was sent to (HTTP/1.1's `Host`, or HTTP/2's authority).
fn host<'a>(uri: &'a Uri, headers: &'a HeaderMap) -> Option<&'a str> {
    headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()))
}

/// Whether a page of another origin made this request (a script's `fetch`, a form, an image,
/// a frame): its browser says so in `Origin` or `Sec-Fetch-Site`. Top-level navigations by
/// GET are not foreign: a link from anywhere may open the session (as its owner, or not at
/// all), but nothing else may use the session's cookie from another page.
fn foreign(method: &Method, headers: &HeaderMap, own: impl Fn(&str) -> bool) -> bool {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if header("origin").is_some_and(|o| !own(o)) {
        return true;
    }
    let navigation = header("sec-fetch-mode") == Some("navigate")
        && header("sec-fetch-dest") == Some("document")
        && (method == Method::GET || method == Method::HEAD);
    let elsewhere =
        matches!(header("sec-fetch-site"), Some(site) if site != "same-origin" && site != "none");
    elsewhere && !navigation
}

async fn credential_caller(
    state: &Proxy,
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
    match state.auth.sign_in_recent(bearer.trim(), peer).await {
        Ok(caller) => Ok(Some(caller)),
        Err(err) if err.code == crate::error::Code::SignInRateLimited => Err(err),
        Err(_) => Ok(None),
    }
}

async fn proxy(State(proxy): State<Proxy>, request: Request) -> Response {
    match forward(&proxy, request).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

/// Checks the request's credentials for the session its host names and opens it: the
/// upstream, and the cookie secret to set when a token was spent. (The request's parts come
/// one by one: a `&Request` cannot be held across an await, its body not being `Sync`.)
async fn open(
    state: &Proxy,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    peer: Option<std::net::IpAddr>,
) -> Result<(Arc<Upstream>, Option<String>)> {
    let origins = state.sessions.origins();
    let host = host(uri, headers).unwrap_or_default();
    let session_id = origins.session_of(host).ok_or_else(|| {
        Error::new(
            Code::SessionNotFound,
            format!("'{host}' is not the address of a session"),
        )
        .hint("open the session's url from POST /api/v1/projects/{id}/session")
    })?;
    if foreign(method, headers, |o| origins.is_origin(o, session_id)) {
        return Err(Error::new(
            Code::SessionForeignRequest,
            "a page of another site cannot use this session",
        )
        .hint("open the session's url in its own tab"));
    }
    if let Some(token) = query_token(uri) {
        return state
            .sessions
            .authorize(session_id, Credential::Token(&token))
            .await;
    }
    // Another site may have planted a cookie of the same name (a sibling host over plain
    // HTTP): any of them may be the session's.
    let mut refused = None;
    for (_, secret) in cookies(headers).filter(|(name, _)| is_weft_cookie(name)) {
        match state
            .sessions
            .authorize(session_id, Credential::Cookie(secret))
            .await
        {
            Ok(opened) => return Ok(opened),
            Err(e) => refused = Some(e),
        }
    }
    if let Some(refused) = refused {
        return Err(refused);
    }
    match credential_caller(state, headers, peer).await? {
        Some(caller) => {
            state
                .sessions
                .authorize(session_id, Credential::Caller(&caller))
                .await
        }
        None => state.sessions.authorize(session_id, Credential::None).await,
    }
}

async fn forward(proxy: &Proxy, mut request: Request) -> Result<Response> {
    let state = proxy;
    let peer = crate::auth::peer(&request);
    let (upstream, new_cookie) = open(
        state,
        request.method(),
        request.uri(),
        request.headers(),
        peer,
    )
    .await?;
    let upgrade = is_upgrade(request.headers());
    // The link and cookie stand for the owner: they stop working while the owner is disabled,
    // and a WebSocket they opened is closed when the owner is.
    let disabled = upgrade.then(|| state.auth.watch_disabled());
    state.auth.require_enabled(&upstream.owner_id).await?;
    let origins = state.sessions.origins();
    let set_cookie = new_cookie.map(|secret| session_cookie(&secret, origins.secure()));
    state.sessions.activity(&upstream.session_id).await;

    // A page opened with the token: set the cookie and take the token out of the address bar.
    if let Some(set_cookie) = &set_cookie
        && request.method() == Method::GET
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

    let meters = state.sessions.proxy_meters(upstream.kind).clone();
    meters.request();
    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut request));
    let request = if request.body().is_end_stream() {
        request
    } else {
        let meters = meters.clone();
        request.map(|body| counted(body, move |n| meters.sent_in(n)))
    };
    let outgoing = upstream_request(&upstream, request, upgrade, origins.secure())?;
    let mut response = proxy_client::send(&proxy.client, outgoing)
        .await
        .map_err(|e| {
            Error::new(
                Code::SessionNotReady,
                format!("the workspace did not answer: {e}"),
            )
            .hint("it may be restarting; retry in a moment")
        })?;
    let switched = response.status() == StatusCode::SWITCHING_PROTOCOLS;
    if switched && let (Some(client_upgrade), Some(disabled)) = (client_upgrade, disabled) {
        let upstream_upgrade = hyper::upgrade::on(&mut response);
        let session = upstream.session_id.clone();
        let owner = upstream.owner_id.clone();
        let meters = meters.clone();
        tokio::spawn(async move {
            match (client_upgrade.await, upstream_upgrade.await) {
                (Ok(client), Ok(server)) => {
                    let _open = meters.websocket();
                    let (moved, ended) =
                        pump::websocket(client, server, disabled.until(&owner)).await;
                    meters.sent_in(moved.to_server);
                    meters.sent_out(moved.to_client);
                    match ended {
                        pump::Ended::Closed => {}
                        pump::Ended::Failed(error) => {
                            tracing::debug!(%session, %error, "WebSocket broke off")
                        }
                        pump::Ended::Stopped => {
                            tracing::info!(%session, "WebSocket closed: its owner was disabled")
                        }
                    }
                }
                (c, s) => {
                    tracing::debug!(%session, client = c.is_ok(), upstream = s.is_ok(), "WebSocket upgrade failed")
                }
            }
        });
    }
    let (mut parts, body) = response.into_parts();
    confine(
        &mut parts.headers,
        switched,
        upstream.cookie().map(|(n, _)| n),
    );
    if let Some(set_cookie) = set_cookie {
        parts.headers.append(header::SET_COOKIE, set_cookie);
    }
    Ok(Response::from_parts(
        parts,
        counted(body, move |n| meters.sent_out(n)),
    ))
}

/// `body` as it streams through, its data bytes counted into `count` frame by frame.
fn counted<B>(body: B, count: impl Fn(u64) + Send + Sync + 'static) -> Body
where
    B: HttpBody<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    Body::new(body.map_frame(move |frame| {
        if let Some(data) = frame.data_ref() {
            count(data.len() as u64);
        }
        frame
    }))
}

/// Takes out of `headers` the ones naming other hops (`Connection` and what it lists; on a
/// protocol switch, `Connection` and `Upgrade` stay).
fn strip_hop_by_hop(headers: &mut HeaderMap, switching: bool) {
    // Usually `keep-alive` or `close`, gone below anyway: nothing to parse or keep.
    let listed: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|name| {
            !HOP_BY_HOP
                .iter()
                .any(|hop| hop.as_str().eq_ignore_ascii_case(name))
        })
        .filter_map(|name| HeaderName::from_bytes(name.as_bytes()).ok())
        .filter(|name| !switching || *name != header::UPGRADE)
        .collect();
    for name in listed {
        headers.remove(name);
    }
    for hop in &HOP_BY_HOP {
        if !(switching && hop == header::CONNECTION) {
            headers.remove(hop);
        }
    }
    if !switching {
        headers.remove(header::UPGRADE);
    }
}

/// Keeps an upstream answer to what the session's own origin may do: no hop-by-hop headers,
/// no `Service-Worker-Allowed` (a service worker's scope stays below its script), and no
/// cookie with a `Domain` (it would reach sibling hosts), named like Weft's, or named like
/// the server's own secret `server_cookie`.
fn confine(headers: &mut HeaderMap, switching: bool, server_cookie: Option<&str>) {
    strip_hop_by_hop(headers, switching);
    headers.remove("service-worker-allowed");
    let cookies: Vec<HeaderValue> = headers
        .get_all(header::SET_COOKIE)
        .iter()
        .cloned()
        .collect();
    headers.remove(header::SET_COOKIE);
    for cookie in cookies {
        let Ok(text) = cookie.to_str() else { continue };
        let mut attributes = text.split(';');
        let name = attributes
            .next()
            .and_then(|pair| pair.split_once('='))
            .map(|(name, _)| name.trim())
            .unwrap_or_default();
        let has_domain = attributes.any(|a| {
            a.split('=')
                .next()
                .is_some_and(|key| key.trim().eq_ignore_ascii_case("domain"))
        });
        let kept =
            !name.is_empty() && !has_domain && !is_weft_cookie(name) && Some(name) != server_cookie;
        if kept {
            headers.append(header::SET_COOKIE, cookie);
        } else {
            tracing::debug!(
                cookie = name,
                "a session's server set a cookie beyond its origin; dropped"
            );
        }
    }
}

/// The request as the session's server should see it: its own secret instead of Weft's
/// credentials.
fn upstream_request(
    upstream: &Upstream,
    request: Request,
    upgrade: bool,
    secure: bool,
) -> Result<hyper::Request<Body>> {
    let (mut parts, body) = request.into_parts();
    let path = parts.uri.path();
    let query = without_token(parts.uri.query());
    let query_len = query.as_ref().map_or(0, |q| q.len() + 1);
    let mut target = String::with_capacity(upstream.base.len() + path.len() + query_len);
    target.push_str(&upstream.base);
    target.push_str(path);
    if let Some(query) = query {
        target.push('?');
        target.push_str(&query);
    }
    parts.uri = hyper::Uri::try_from(target)
        .map_err(|e| Error::internal(format!("bad upstream address: {e}")))?;
    let headers = &mut parts.headers;
    strip_hop_by_hop(headers, upgrade);
    let server_cookie = upstream.cookie();
    let mut kept: Vec<String> = cookies(headers)
        .filter(|(name, _)| !is_weft_cookie(name) && Some(*name) != server_cookie.map(|(n, _)| n))
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    if let Some((name, value)) = server_cookie {
        kept.push(format!("{name}={value}"));
    }
    headers.remove(header::COOKIE);
    if !kept.is_empty() {
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&kept.join("; ")).map_err(|e| Error::internal(e.to_string()))?,
        );
    }
    headers.remove(header::AUTHORIZATION);
    if let Some(authorization) = upstream.authorization() {
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&authorization).map_err(|e| Error::internal(e.to_string()))?,
        );
    }
    headers.insert(
        "x-forwarded-proto",
        HeaderValue::from_static(if secure { "https" } else { "http" }),
    );
    Ok(hyper::Request::from_parts(parts, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORIGIN: &str = "http://a.localhost:8081";

    fn own(origin: &str) -> bool {
        origin == ORIGIN
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    #[test]
    fn requests_made_by_other_sites_pages_are_foreign() {
        let get = Method::GET;
        // A script on another session's origin.
        for pairs in [
            &[("origin", "http://b.localhost:8081")][..],
            &[("origin", "null")],
            &[("sec-fetch-site", "cross-site"), ("sec-fetch-mode", "cors")],
            &[
                ("sec-fetch-site", "same-site"),
                ("sec-fetch-mode", "no-cors"),
            ],
            &[
                ("sec-fetch-site", "same-site"),
                ("sec-fetch-mode", "navigate"),
                ("sec-fetch-dest", "iframe"),
            ],
        ] {
            assert!(foreign(&get, &headers(pairs), own), "{pairs:?}");
        }
        // A form posted from elsewhere, even as a navigation.
        let post = headers(&[
            ("sec-fetch-site", "cross-site"),
            ("sec-fetch-mode", "navigate"),
            ("sec-fetch-dest", "document"),
        ]);
        assert!(foreign(&Method::POST, &post, own));
    }

    #[test]
    fn the_sessions_own_pages_links_and_non_browsers_are_not_foreign() {
        for pairs in [
            &[][..],
            &[("origin", ORIGIN), ("sec-fetch-site", "same-origin")],
            &[("sec-fetch-site", "none"), ("sec-fetch-mode", "navigate")],
            &[
                ("sec-fetch-site", "cross-site"),
                ("sec-fetch-mode", "navigate"),
                ("sec-fetch-dest", "document"),
            ],
        ] {
            assert!(!foreign(&Method::GET, &headers(pairs), own), "{pairs:?}");
        }
    }

    #[test]
    fn the_session_cookie_is_host_only_and_secure_over_tls() {
        assert_eq!(
            session_cookie("abc", false),
            "weft_session=abc; Path=/; HttpOnly; SameSite=Lax"
        );
        assert_eq!(
            session_cookie("abc", true),
            "__Host-weft_session=abc; Path=/; HttpOnly; SameSite=Lax; Secure"
        );
    }

    #[test]
    fn upstream_answers_are_confined_to_the_session() {
        let mut answer = headers(&[
            ("connection", "close, x-private"),
            ("x-private", "1"),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "h2c"),
            ("service-worker-allowed", "/"),
            ("content-type", "text/html"),
            ("set-cookie", "_xsrf=abc; Path=/"),
            ("set-cookie", "kept=1; Path=/files; HttpOnly"),
            ("set-cookie", "wide=1; Domain=localhost; Path=/"),
            ("set-cookie", "wide2=1; path=/;  domain=.example.com"),
            ("set-cookie", "weft_session=forged; Path=/"),
            ("set-cookie", "__Host-weft_session=forged; Path=/; Secure"),
            ("set-cookie", "code-server-session=leak; Path=/"),
        ]);
        confine(&mut answer, false, Some("code-server-session"));
        for gone in [
            "connection",
            "x-private",
            "keep-alive",
            "transfer-encoding",
            "upgrade",
            "service-worker-allowed",
        ] {
            assert!(!answer.contains_key(gone), "{gone} kept");
        }
        let cookies: Vec<&str> = answer
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(
            cookies,
            ["_xsrf=abc; Path=/", "kept=1; Path=/files; HttpOnly"]
        );
        assert_eq!(answer["content-type"], "text/html");

        let mut switch = headers(&[("connection", "Upgrade"), ("upgrade", "websocket")]);
        confine(&mut switch, true, None);
        assert_eq!(switch["upgrade"], "websocket");
        assert_eq!(switch["connection"], "Upgrade");
    }
}
