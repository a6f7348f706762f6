//! HTTP routes for users and tokens.

use super::sign_in_routes::Peer;
use super::{Auth, Caller, IssuedToken, Role, TokenInfo, User};
use crate::api::extract::{Json, Path, Query};
use crate::error::{Code, Error, Result};
use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use chrono::{Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

/// Routes under `/api/v1` that manage identities; all require a token.
pub(crate) fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    Auth: FromRef<S>,
{
    OpenApiRouter::new()
        .routes(routes!(me))
        .routes(routes!(create_user, list_users))
        .routes(routes!(disable_user))
        .routes(routes!(enable_user))
        .routes(routes!(set_password))
        .routes(routes!(create_token, list_tokens))
        .routes(routes!(revoke_token))
}

/// The caller's own user.
#[utoipa::path(get, path = "/users/me", tag = "auth",
    responses((status = 200, body = User), (status = 401, body = crate::api::ErrorBody)))]
async fn me(State(auth): State<Auth>, caller: Caller) -> Result<Json<User>> {
    Ok(Json(auth.get_user(&caller.user_id).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateUser {
    /// Unique name: letters, digits, '-', '_', '.', '@'.
    name: String,
    /// Defaults to `user`.
    #[serde(default)]
    role: Option<Role>,
}

/// Create a user (admin).
#[utoipa::path(post, path = "/users", tag = "auth", request_body = CreateUser,
    responses((status = 201, body = User), (status = 403, body = crate::api::ErrorBody),
              (status = 409, body = crate::api::ErrorBody), (status = 422, body = crate::api::ErrorBody)))]
async fn create_user(
    State(auth): State<Auth>,
    caller: Caller,
    Json(body): Json<CreateUser>,
) -> Result<(StatusCode, Json<User>)> {
    caller.require_admin()?;
    let user = auth
        .create_user(&body.name, body.role.unwrap_or(Role::User))
        .await?;
    tracing::info!(user = %user.name, role = ?user.role, by = %caller.name, "user created");
    Ok((StatusCode::CREATED, Json(user)))
}

/// List users (admin).
#[utoipa::path(get, path = "/users", tag = "auth",
    responses((status = 200, body = [User]), (status = 403, body = crate::api::ErrorBody)))]
async fn list_users(State(auth): State<Auth>, caller: Caller) -> Result<Json<Vec<User>>> {
    caller.require_admin()?;
    Ok(Json(auth.list_users().await?))
}

/// Disable a user (admin): every token of theirs and their sessions' links stop working at
/// once; their sessions, runs and tasks are left running. Admins cannot disable themselves.
#[utoipa::path(post, path = "/users/{id}/disable", tag = "auth",
    params(("id" = String, Path, description = "User id")),
    responses((status = 200, body = User), (status = 403, body = crate::api::ErrorBody),
              (status = 404, body = crate::api::ErrorBody), (status = 409, body = crate::api::ErrorBody)))]
async fn disable_user(
    State(auth): State<Auth>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<User>> {
    caller.require_admin()?;
    if id == caller.user_id {
        return Err(
            Error::new(Code::Conflict, "admins cannot disable themselves")
                .hint("ask another admin, so that someone can still enable users"),
        );
    }
    let user = auth.set_disabled(&id, true).await?;
    tracing::info!(user = %user.name, by = %caller.name, "user disabled");
    Ok(Json(user))
}

/// Enable a disabled user again (admin): their tokens that are neither revoked nor expired
/// work again.
#[utoipa::path(post, path = "/users/{id}/enable", tag = "auth",
    params(("id" = String, Path, description = "User id")),
    responses((status = 200, body = User), (status = 403, body = crate::api::ErrorBody),
              (status = 404, body = crate::api::ErrorBody)))]
async fn enable_user(
    State(auth): State<Auth>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<User>> {
    caller.require_admin()?;
    let user = auth.set_disabled(&id, false).await?;
    tracing::info!(user = %user.name, by = %caller.name, "user enabled");
    Ok(Json(user))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SetPassword {
    /// The new password: 8 to 1024 characters.
    password: String,
    /// Your current password, when you change your own (admins setting another user's leave
    /// it out).
    #[serde(default)]
    current_password: Option<String>,
}

/// Set a user's password for signing in to the web app: an admin sets or resets anyone's;
/// users change their own, giving their current one (if they have one).
#[utoipa::path(put, path = "/users/{id}/password", tag = "auth", request_body = SetPassword,
    params(("id" = String, Path, description = "User id")),
    responses((status = 204), (status = 403, body = crate::api::ErrorBody),
              (status = 404, body = crate::api::ErrorBody), (status = 422, body = crate::api::ErrorBody)))]
async fn set_password(
    State(auth): State<Auth>,
    caller: Caller,
    Peer(peer): Peer,
    Path(id): Path<String>,
    Json(body): Json<SetPassword>,
) -> Result<StatusCode> {
    caller.require_self_or_admin(&id)?;
    if !caller.is_admin() {
        auth.check_password(&id, body.current_password.as_deref().unwrap_or(""), peer)
            .await?;
    }
    auth.set_password(&id, &body.password).await?;
    tracing::info!(user = %id, by = %caller.name, "password set");
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateToken {
    /// A label for the token, e.g. the machine or script using it.
    name: String,
    /// Whose token; defaults to the caller. Only admins may issue tokens for others.
    #[serde(default)]
    user_id: Option<String>,
    /// Lifetime in seconds; no expiry if absent. A token minted with an expiring token must
    /// expire no later than it (refused with 90306 otherwise, naming the longest allowed).
    #[serde(default)]
    expires_in_seconds: Option<u64>,
}

/// Issue an API token. The secret is in this answer only. The new token is a child of the
/// caller's: revoking the caller's token revokes it too.
#[utoipa::path(post, path = "/tokens", tag = "auth", request_body = CreateToken,
    responses((status = 201, body = IssuedToken), (status = 403, body = crate::api::ErrorBody),
              (status = 404, body = crate::api::ErrorBody), (status = 422, body = crate::api::ErrorBody)))]
async fn create_token(
    State(auth): State<Auth>,
    caller: Caller,
    Json(body): Json<CreateToken>,
) -> Result<(StatusCode, Json<IssuedToken>)> {
    let user_id = body.user_id.unwrap_or_else(|| caller.user_id.clone());
    caller.require_self_or_admin(&user_id)?;
    let expires_at = match body.expires_in_seconds {
        None => None,
        Some(secs) => {
            let secs = i64::try_from(secs)
                .ok()
                .filter(|s| (1..=10 * 365 * 86_400).contains(s))
                .ok_or_else(|| {
                    Error::invalid_field("expires_in_seconds", "must be between 1 and 10 years")
                })?;
            Some(Utc::now() + Duration::seconds(secs))
        }
    };
    let issued = auth
        .issue_token(&user_id, &body.name, expires_at, Some(&caller.token_id))
        .await?;
    tracing::info!(token = %issued.info.id, user = %user_id, by = %caller.name, "token issued");
    Ok((StatusCode::CREATED, Json(issued)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct TokenFilter {
    /// Only this user's tokens (admins); defaults to the caller's own, or all for admins.
    user_id: Option<String>,
}

/// List tokens: your own, or (admin) anyone's.
#[utoipa::path(get, path = "/tokens", tag = "auth", params(TokenFilter),
    responses((status = 200, body = [TokenInfo]), (status = 403, body = crate::api::ErrorBody)))]
async fn list_tokens(
    State(auth): State<Auth>,
    caller: Caller,
    Query(filter): Query<TokenFilter>,
) -> Result<Json<Vec<TokenInfo>>> {
    let user = match filter.user_id {
        Some(user) => {
            caller.require_self_or_admin(&user)?;
            Some(user)
        }
        None if caller.is_admin() => None,
        None => Some(caller.user_id.clone()),
    };
    Ok(Json(auth.list_tokens(user.as_deref()).await?))
}

/// A revoked token, and how many tokens minted from it (at any depth) went with it.
#[derive(Debug, Serialize, ToSchema)]
struct Revoked {
    #[serde(flatten)]
    token: TokenInfo,
    revoked_descendants: u64,
}

/// Revoke a token, your own or (admin) anyone's, and every token minted from it.
#[utoipa::path(delete, path = "/tokens/{id}", tag = "auth",
    params(("id" = String, Path, description = "Token id")),
    responses((status = 200, body = Revoked), (status = 403, body = crate::api::ErrorBody),
              (status = 404, body = crate::api::ErrorBody)))]
async fn revoke_token(
    State(auth): State<Auth>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Revoked>> {
    let token = auth.get_token(&id).await?;
    if caller.require_self_or_admin(&token.user_id).is_err() {
        // Someone else's token is reported as absent, so ids cannot be probed.
        return Err(Error::not_found("token", &id));
    }
    let (token, revoked_descendants) = auth.revoke_token(&id).await?;
    tracing::info!(token = %id, by = %caller.name, revoked_descendants, "token revoked");
    Ok(Json(Revoked {
        token,
        revoked_descendants,
    }))
}
