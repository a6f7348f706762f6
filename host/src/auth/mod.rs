//! Users, roles and API tokens: who is calling, and what they may do.
//!
//! Tokens are random and stored only as a hash. Every request but the public ones carries
//! `Authorization: Bearer <token>`; [`Auth::sign_in`] turns it into a [`Caller`], refusing
//! addresses with too many failed sign-ins ([`limit`]).
//!
//! A token minted with another token is its child: it never outlives its parent and is
//! revoked with it. A disabled user's tokens all stop at once, since every sign-in reads the
//! user's state; the sessions proxy and the DVC remote alone keep tokens read lately
//! ([`Auth::sign_in_recent`]), and forget them all when a token is revoked or a user disabled.

mod browser;
mod disabled;
mod limit;
mod middleware;
mod password;
mod records;
pub(crate) mod routes;
pub(crate) mod sign_in_routes;
mod token;

pub(crate) use disabled::DisabledWatch;
pub(crate) use middleware::{authenticate, peer, require_token};
pub(crate) use middleware::{basic_or_bearer_token, bearer_token, challenged, sign_in};

use crate::api::config::ApiConfig;
use crate::error::{Code, Error, Result};
use crate::store::{Store, new_id, now_ms, time};
use chrono::{DateTime, Utc};
use limit::SignInLimiter;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use utoipa::ToSchema;

/// A user's role: admins manage users, tokens, plugins and limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    User,
}

impl Role {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::User => "user",
        }
    }

    pub(super) fn parse(s: &str) -> Result<Self> {
        match s {
            "admin" => Ok(Role::Admin),
            "user" => Ok(Role::User),
            other => Err(Error::internal(format!("stored role '{other}' is unknown"))),
        }
    }
}

/// What a stored token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    /// A Bearer token for the API (also the short-lived ones a sign-in hands out).
    Api,
    /// A sign-in's refresh secret: kept in an HttpOnly cookie, it only mints short-lived API
    /// tokens (its children) and is refused as a Bearer token.
    Refresh,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::Api => "api",
            Purpose::Refresh => "refresh",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        match s {
            "api" => Ok(Purpose::Api),
            "refresh" => Ok(Purpose::Refresh),
            other => Err(Error::internal(format!(
                "stored token purpose '{other}' is unknown"
            ))),
        }
    }
}

/// A person or service account.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct User {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
    /// Set while an admin has disabled the user: every token of theirs is refused.
    pub disabled_at: Option<DateTime<Utc>>,
}

/// The authenticated identity behind a request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: String,
    pub name: String,
    pub role: Role,
    pub token_id: String,
}

impl Caller {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// Fails with 403 unless the caller is an admin.
    pub fn require_admin(&self) -> Result<()> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(Error::forbidden("this endpoint requires the admin role")
                .details(serde_json::json!({ "required_role": "admin" }))
                .hint("ask an admin, or use an admin token"))
        }
    }

    /// Fails with 403 unless the caller is `user_id` or an admin.
    pub fn require_self_or_admin(&self, user_id: &str) -> Result<()> {
        if self.is_admin() || self.user_id == user_id {
            Ok(())
        } else {
            Err(Error::forbidden("only the owner or an admin may do this"))
        }
    }
}

/// A caller known to be an admin. As an extractor it refuses anyone else before the handler
/// runs, and so before the request body is read: a non-admin's upload is refused unread.
#[derive(Debug, Clone)]
pub(crate) struct Admin(pub Caller);

/// Token metadata; the secret itself is never stored.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TokenInfo {
    pub id: String,
    pub user_id: String,
    pub name: String,
    /// The first characters of the token, to recognise it.
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    /// The token this one was minted with: it expires no later and is revoked with it.
    pub parent_id: Option<String>,
}

/// A freshly issued token: the only time its secret is shown.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IssuedToken {
    /// The secret; send it as `Authorization: Bearer <token>`. It cannot be shown again.
    pub token: String,
    #[serde(flatten)]
    pub info: TokenInfo,
}

/// How often `last_used_at` is refreshed, so authentication is not a write per request.
const LAST_USED_RESOLUTION_MS: i64 = 60_000;

/// The users-and-tokens service.
#[derive(Clone)]
pub struct Auth {
    store: Store,
    limiter: Arc<SignInLimiter>,
    disabled: disabled::Disabled,
    /// Users seen enabled lately: the session proxy asks for each request.
    enabled: Arc<crate::store::recent::Recent<()>>,
    /// API tokens read valid lately, by hash: the session proxy signs in on each request.
    signed_in: Arc<crate::store::recent::Recent<records::SignInRow>>,
}

/// Where a sign-in reads its token: from the store, or from what was read lately.
#[derive(Clone, Copy)]
enum Lookup {
    Store,
    Recent,
}

impl Auth {
    /// The service on `store`, limiting failed sign-ins as `api` says.
    pub fn new(store: Store, api: &ApiConfig) -> Self {
        Self {
            store,
            limiter: Arc::new(SignInLimiter::new(
                api.sign_in_max_failures,
                Duration::from_secs(api.sign_in_window_secs),
                api.sign_in_tracked_addresses,
            )),
            disabled: disabled::Disabled::new(),
            enabled: Arc::default(),
            signed_in: Arc::default(),
        }
    }

    /// A watch for users being disabled from now on.
    pub fn watch_disabled(&self) -> DisabledWatch {
        DisabledWatch::new(self.clone(), &self.disabled)
    }

    /// Signs in with a bearer token presented from `peer` (when known): refused without a
    /// look-up while `peer` is over its limit of failed sign-ins; a token that does not
    /// authenticate counts against it.
    pub async fn sign_in(&self, token: &str, peer: Option<IpAddr>) -> Result<Caller> {
        self.sign_in_as(token, peer, Lookup::Store).await
    }

    /// [`Self::sign_in`] for the sessions proxy, where a page makes dozens of requests a
    /// second with the same token, and for the DVC remote, whose client sends two requests
    /// per object pushed: a token read valid within the last second signs in again
    /// without a store read. Revoking a token or disabling a user here forgets every such
    /// token at once; another Weft host sharing the store is heard within that second.
    pub async fn sign_in_recent(&self, token: &str, peer: Option<IpAddr>) -> Result<Caller> {
        self.sign_in_as(token, peer, Lookup::Recent).await
    }

    async fn sign_in_as(
        &self,
        token: &str,
        peer: Option<IpAddr>,
        lookup: Lookup,
    ) -> Result<Caller> {
        if let Some(peer) = peer {
            self.limiter.check(peer).map_err(too_many_failures)?;
        }
        let result = self.authenticate(token, lookup).await;
        if let (Some(peer), Err(err)) = (peer, &result)
            && is_credential_failure(err.code)
        {
            self.limiter.failed(peer);
            tracing::info!(%peer, code = %err.code.as_string(), "failed sign-in");
        }
        result
    }

    /// Counts a credential other than an API token (an instance secret) that `peer`
    /// presented and that did not match, as a failed sign-in.
    pub fn sign_in_failed(&self, peer: IpAddr) {
        self.limiter.failed(peer);
    }

    /// Refused with 429 while `peer` is over its limit of failed sign-ins.
    pub fn check_sign_in_limit(&self, peer: IpAddr) -> Result<()> {
        self.limiter.check(peer).map_err(too_many_failures)
    }

    /// Resolves a bearer token to its caller, or says why it is refused.
    async fn authenticate(&self, token: &str, lookup: Lookup) -> Result<Caller> {
        let hash = token::hash(token);
        let row = match lookup {
            Lookup::Recent => match self.signed_in.get(&hash) {
                Some(row) => row,
                None => {
                    let generation = self.signed_in.generation();
                    let row = Arc::new(self.row_of(&hash, Purpose::Api).await?);
                    self.signed_in.keep(&hash, generation, row.clone());
                    row
                }
            },
            Lookup::Store => Arc::new(self.row_of(&hash, Purpose::Api).await?),
        };
        // A kept row is checked again: it may have expired since it was read.
        let row = valid(&row)?;
        let now = now_ms();
        if row
            .last_used_at
            .is_none_or(|t| now - t > LAST_USED_RESOLUTION_MS)
        {
            records::touch_token(&self.store, &row.token_id, now).await?;
            // The kept row's `last_used_at` is now old: read it again next time.
            self.signed_in.forget(&hash);
        }
        Ok(Caller {
            user_id: row.user_id.clone(),
            name: row.name.clone(),
            role: row.role,
            token_id: row.token_id.clone(),
        })
    }

    /// The stored token whose secret is `token`, if it is for `purpose`, neither revoked
    /// nor expired, and its user is enabled; else why it is refused.
    async fn valid_row(&self, token: &str, purpose: Purpose) -> Result<records::SignInRow> {
        let row = self.row_of(&token::hash(token), purpose).await?;
        valid(&row)?;
        Ok(row)
    }

    /// The stored token whose hash is `hash`, if it is for `purpose`.
    async fn row_of(&self, hash: &str, purpose: Purpose) -> Result<records::SignInRow> {
        let row = records::sign_in_row(&self.store, hash)
            .await?
            .filter(|row| row.purpose == purpose);
        row.ok_or_else(|| {
            Error::new(Code::InvalidToken, "the bearer token is not valid")
                .hint("check the token, or ask an admin for a new one")
        })
    }

    /// Fails unless `user_id` exists and is not disabled: for credentials that stand for a
    /// user without being their API token (a session's link and cookie).
    pub async fn require_enabled(&self, user_id: &str) -> Result<()> {
        if self.enabled.get(user_id).is_some() {
            return Ok(());
        }
        let generation = self.enabled.generation();
        let user = self.get_user(user_id).await?;
        match user.disabled_at {
            None => {
                self.enabled.keep(user_id, generation, Arc::new(()));
                Ok(())
            }
            Some(at) => Err(
                Error::new(Code::UserDisabled, "this user has been disabled")
                    .details(serde_json::json!({ "disabled_at": at }))
                    .hint("ask an admin to enable the user again"),
            ),
        }
    }

    /// Disables (`true`) or enables a user. Disabling stops every token of theirs and their
    /// sessions' links at once, and closes the WebSockets proxied for them; what they started
    /// keeps running.
    pub async fn set_disabled(&self, user_id: &str, disabled: bool) -> Result<User> {
        let set = records::set_disabled(&self.store, user_id, disabled.then(now_ms)).await;
        self.enabled.forget(user_id);
        self.signed_in.forget_all();
        set?;
        let user = self.get_user(user_id).await?;
        if disabled {
            self.disabled.announce(&user.id);
        }
        Ok(user)
    }

    /// Creates a user; names are unique.
    pub async fn create_user(&self, name: &str, role: Role) -> Result<User> {
        validate_name("name", name)?;
        let user = User {
            id: new_id(),
            name: name.to_string(),
            role,
            created_at: Utc::now(),
            disabled_at: None,
        };
        let inserted = records::insert_user(&self.store, &user).await?;
        if !inserted {
            return Err(Error::new(
                Code::Conflict,
                format!("a user named '{name}' already exists"),
            )
            .details(serde_json::json!({ "field": "name" })));
        }
        Ok(user)
    }

    pub async fn list_users(&self) -> Result<Vec<User>> {
        records::users(&self.store).await
    }

    pub async fn get_user(&self, id: &str) -> Result<User> {
        records::user(&self.store, id)
            .await?
            .ok_or_else(|| Error::not_found("user", id))
    }

    /// Issues a new token for `user_id`, valid until `expires_at` (forever if `None`).
    /// `parent` is the token it is minted with, if any: the new token may not outlive it.
    pub async fn issue_token(
        &self,
        user_id: &str,
        name: &str,
        expires_at: Option<DateTime<Utc>>,
        parent: Option<&str>,
    ) -> Result<IssuedToken> {
        self.issue(user_id, name, expires_at, parent, Purpose::Api)
            .await
    }

    async fn issue(
        &self,
        user_id: &str,
        name: &str,
        expires_at: Option<DateTime<Utc>>,
        parent: Option<&str>,
        purpose: Purpose,
    ) -> Result<IssuedToken> {
        validate_name("name", name)?;
        self.get_user(user_id).await?;
        if let Some(parent) = parent {
            within_parent(&self.get_token(parent).await?, expires_at)?;
        }
        let secret = token::generate();
        // Times as stored (milliseconds), so this answer and later listings agree.
        let expires_at = expires_at.map(|t| time(t.timestamp_millis()));
        let info = TokenInfo {
            id: new_id(),
            user_id: user_id.to_string(),
            name: name.to_string(),
            prefix: token::display_prefix(&secret),
            created_at: time(now_ms()),
            expires_at,
            revoked_at: None,
            last_used_at: None,
            parent_id: parent.map(str::to_string),
        };
        records::insert_token(&self.store, &info, &token::hash(&secret), purpose).await?;
        Ok(IssuedToken {
            token: secret,
            info,
        })
    }

    /// Tokens of one user, or of everyone when `user_id` is `None`.
    pub async fn list_tokens(&self, user_id: Option<&str>) -> Result<Vec<TokenInfo>> {
        records::tokens(&self.store, user_id).await
    }

    pub async fn get_token(&self, id: &str) -> Result<TokenInfo> {
        records::token(&self.store, id)
            .await?
            .ok_or_else(|| Error::not_found("token", id))
    }

    /// Revokes a token and every token minted from it, at any depth; revoking again
    /// changes nothing. Returns the token and how many descendants were revoked with it.
    pub async fn revoke_token(&self, id: &str) -> Result<(TokenInfo, u64)> {
        let revoked = records::revoke_tree(&self.store, id, now_ms()).await;
        self.signed_in.forget_all();
        let descendants = revoked?;
        Ok((self.get_token(id).await?, descendants))
    }

    /// Creates the first admin and its token on a store with no admin yet.
    pub async fn bootstrap(&self, name: &str) -> Result<(User, IssuedToken)> {
        if records::admins(&self.store).await? > 0 {
            return Err(Error::new(Code::Conflict, "this Weft already has an admin")
                .hint("create further users and tokens with an admin token: POST /api/v1/users, POST /api/v1/tokens"));
        }
        let user = self.create_user(name, Role::Admin).await?;
        let token = self.issue_token(&user.id, "bootstrap", None, None).await?;
        Ok((user, token))
    }
}

/// `row` if its token is neither revoked nor expired and its user is enabled; else why it is
/// refused.
fn valid(row: &records::SignInRow) -> Result<&records::SignInRow> {
    let now = now_ms();
    // The parent's revocation is read too: a child minted while its parent was being
    // revoked may have escaped the cascade.
    if row.revoked_at.is_some() || row.parent_revoked_at.is_some() {
        return Err(Error::new(
            Code::TokenRevoked,
            "the bearer token has been revoked",
        ));
    }
    if let Some(expires) = row.expires_at
        && expires <= now
    {
        return Err(
            Error::new(Code::TokenExpired, "the bearer token has expired")
                .details(serde_json::json!({ "expired_at": time(expires) })),
        );
    }
    if let Some(disabled) = row.disabled_at {
        return Err(
            Error::new(Code::UserDisabled, "the token's user has been disabled")
                .details(serde_json::json!({ "disabled_at": time(disabled) }))
                .hint("ask an admin to enable the user again"),
        );
    }
    Ok(row)
}

/// Refuses a password the policy does not allow (its length), before anything is stored.
pub(crate) fn check_password_policy(password: &str) -> Result<()> {
    password::check_policy("password", password)
}

/// Refuses an expiry later than the parent token's (or none while the parent has one):
/// clamping would hand out a token that silently dies earlier than asked.
fn within_parent(parent: &TokenInfo, expires_at: Option<DateTime<Utc>>) -> Result<()> {
    let Some(limit) = parent.expires_at else {
        return Ok(());
    };
    if expires_at.is_some_and(|at| at <= limit) {
        return Ok(());
    }
    let left = (limit - Utc::now()).num_seconds().max(0);
    Err(Error::new(
        Code::TokenOutlivesParent,
        "a token cannot outlive the token it is minted with",
    )
    .details(serde_json::json!({
        "field": "expires_in_seconds",
        "parent_expires_at": limit,
        "max_expires_in_seconds": left,
    }))
    .hint(format!(
        "ask for expires_in_seconds of at most {left}, or mint it with a token that lives longer"
    )))
}

/// Codes of a presented credential that did not authenticate: what counts as a failed
/// sign-in (a request without any credential does not).
fn is_credential_failure(code: Code) -> bool {
    matches!(
        code,
        Code::InvalidToken | Code::TokenExpired | Code::TokenRevoked | Code::UserDisabled
    )
}

fn too_many_failures(wait: Duration) -> Error {
    // Whole seconds, rounded up: a client waiting this long finds the address let in.
    let secs = wait.as_millis().div_ceil(1000).max(1) as u64;
    Error::new(
        Code::SignInRateLimited,
        "too many failed sign-ins from this address",
    )
    .details(serde_json::json!({ "retry_after_secs": secs }))
    .hint(format!(
        "wait {secs} s before trying again, with a valid token"
    ))
}

/// Names of users and tokens: short, printable, no surprises in URLs or logs.
fn validate_name(field: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid_field(
            field,
            "must be 1-64 characters of letters, digits, '-', '_', '.', '@'",
        ))
    }
}
