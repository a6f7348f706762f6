//! Public routes under `/api/v1/auth` for the web app's sign-in: a name and password give a
//! short-lived token in the answer and a refresh secret in a cookie that only these paths see.
//!
//! The cookie is HttpOnly (no script reads it, so nothing under `/s/` or any page can), and
//! SameSite=Strict (no other site's page sends it, so no cross-site request refreshes or signs
//! out). The app keeps the token in memory only; after a reload it calls `refresh`.

use super::browser::REFRESH_TTL;
use super::{Auth, User};
use crate::api::extract::Json;
use crate::error::{Code, Error, Result};
use axum::extract::{ConnectInfo, FromRef, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, SocketAddr};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

/// The refresh cookie's name.
pub(crate) const COOKIE: &str = "weft_refresh";
/// The only paths the browser sends the cookie to.
pub(crate) const COOKIE_PATH: &str = "/api/v1/auth";

/// Routes under `/api/v1` that need no token: they are how the app gets one.
pub(crate) fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    Auth: FromRef<S>,
{
    OpenApiRouter::new()
        .routes(routes!(sign_in))
        .routes(routes!(refresh))
        .routes(routes!(sign_out))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SignInRequest {
    name: String,
    password: String,
}

/// A short-lived API token for the app's memory.
#[derive(Debug, Serialize, ToSchema)]
struct SignInToken {
    /// Send as `Authorization: Bearer <token>`; refresh before `expires_at`.
    token: String,
    expires_at: Option<DateTime<Utc>>,
    user: User,
}

/// Sign in with a name and password: a short-lived token, and an HttpOnly refresh cookie
/// scoped to `/api/v1/auth`. Failed attempts are limited per client address (429 after
/// `[api] sign_in_max_failures`).
#[utoipa::path(post, path = "/auth/sign-in", tag = "auth", security(()), request_body = SignInRequest,
    responses((status = 200, body = SignInToken), (status = 401, body = crate::api::ErrorBody),
              (status = 429, body = crate::api::ErrorBody)))]
async fn sign_in(
    State(auth): State<Auth>,
    Peer(peer): Peer,
    headers: HeaderMap,
    Json(body): Json<SignInRequest>,
) -> Result<Response> {
    let signed = auth
        .sign_in_with_password(&body.name, &body.password, peer)
        .await?;
    let mut response = Json(SignInToken {
        token: signed.access.token,
        expires_at: signed.access.info.expires_at,
        user: signed.user,
    })
    .into_response();
    if let Some((secret, _)) = signed.refresh {
        let max_age = REFRESH_TTL.num_seconds();
        response.headers_mut().insert(
            header::SET_COOKIE,
            cookie(&secret, max_age, is_https(&headers)),
        );
    }
    no_store(&mut response);
    Ok(response)
}

/// A new short-lived token for the sign-in in the refresh cookie (after a reload, or before
/// the last one expires).
#[utoipa::path(post, path = "/auth/refresh", tag = "auth", security(()),
    responses((status = 200, body = SignInToken), (status = 401, body = crate::api::ErrorBody),
              (status = 429, body = crate::api::ErrorBody)))]
async fn refresh(
    State(auth): State<Auth>,
    Peer(peer): Peer,
    headers: HeaderMap,
) -> Result<Response> {
    let Some(secret) = refresh_cookie(&headers) else {
        return Err(Error::new(Code::Unauthenticated, "not signed in")
            .hint("sign in with your name and password: POST /api/v1/auth/sign-in"));
    };
    let signed = auth.refresh(secret, peer).await?;
    let mut response = Json(SignInToken {
        token: signed.access.token,
        expires_at: signed.access.info.expires_at,
        user: signed.user,
    })
    .into_response();
    no_store(&mut response);
    Ok(response)
}

/// Sign out: ends the sign-in in the refresh cookie and every token it handed out, and
/// clears the cookie.
#[utoipa::path(post, path = "/auth/sign-out", tag = "auth", security(()),
    responses((status = 204)))]
async fn sign_out(State(auth): State<Auth>, headers: HeaderMap) -> Result<Response> {
    if let Some(secret) = refresh_cookie(&headers) {
        auth.sign_out(secret).await?;
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, cookie("", 0, is_https(&headers)));
    Ok(response)
}

/// The cookie holding `secret` for `max_age` seconds (0 deletes it).
fn cookie(secret: &str, max_age: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE}={secret}; Path={COOKIE_PATH}; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"
    ))
    .expect("a token is a valid header value")
}

fn refresh_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|line| line.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, value)| *name == COOKIE && !value.is_empty())
        .map(|(_, value)| value)
}

/// Whether the browser reached Weft over TLS (directly or through a proxy that says so): the
/// cookie is then marked Secure. A client lying about it only changes its own cookie.
fn is_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

/// Answers carrying a token are never cached.
fn no_store(response: &mut Response) {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// The client's address, when the listener tells it.
pub(super) struct Peer(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self> {
        Ok(Peer(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(addr)| addr.ip().to_canonical()),
        ))
    }
}
