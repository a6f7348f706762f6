//! Users, roles and API tokens: who is calling, and what they may do.
//!
//! Tokens are random and stored only as a hash. Every request but the public ones carries
//! `Authorization: Bearer <token>`; [`Auth::authenticate`] turns it into a [`Caller`].

pub mod routes;
mod token;

use crate::error::{Code, Error, Result};
use crate::store::{Store, new_id, now_ms, time};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::Row as _;
use sqlx::any::AnyRow;
use utoipa::ToSchema;

/// A user's role: admins manage users, tokens, plugins and limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    User,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::User => "user",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        match s {
            "admin" => Ok(Role::Admin),
            "user" => Ok(Role::User),
            other => Err(Error::internal(format!("stored role '{other}' is unknown"))),
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
pub struct Admin(pub Caller);

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
}

impl Auth {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// Resolves a bearer token to its caller, or says why it is refused.
    pub async fn authenticate(&self, token: &str) -> Result<Caller> {
        let row = sqlx::query(
            "SELECT t.id, t.user_id, t.expires_at, t.revoked_at, t.last_used_at, u.name, u.role \
             FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = $1",
        )
        .bind(token::hash(token))
        .fetch_optional(self.store.pool())
        .await?;
        let Some(row) = row else {
            return Err(
                Error::new(Code::InvalidToken, "the bearer token is not valid")
                    .hint("check the token, or ask an admin for a new one"),
            );
        };
        let now = now_ms();
        if row.try_get::<Option<i64>, _>("revoked_at")?.is_some() {
            return Err(Error::new(
                Code::TokenRevoked,
                "the bearer token has been revoked",
            ));
        }
        if let Some(expires) = row.try_get::<Option<i64>, _>("expires_at")?
            && expires <= now
        {
            return Err(
                Error::new(Code::TokenExpired, "the bearer token has expired")
                    .details(serde_json::json!({ "expired_at": time(expires) })),
            );
        }
        let token_id: String = row.try_get("id")?;
        let last_used: Option<i64> = row.try_get("last_used_at")?;
        if last_used.is_none_or(|t| now - t > LAST_USED_RESOLUTION_MS) {
            sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
                .bind(now)
                .bind(&token_id)
                .execute(self.store.pool())
                .await?;
        }
        Ok(Caller {
            user_id: row.try_get("user_id")?,
            name: row.try_get("name")?,
            role: Role::parse(&row.try_get::<String, _>("role")?)?,
            token_id,
        })
    }

    /// Creates a user; names are unique.
    pub async fn create_user(&self, name: &str, role: Role) -> Result<User> {
        validate_name("name", name)?;
        let user = User {
            id: new_id(),
            name: name.to_string(),
            role,
            created_at: Utc::now(),
        };
        let inserted = sqlx::query(
            "INSERT INTO users (id, name, role, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(&user.id)
        .bind(&user.name)
        .bind(role.as_str())
        .bind(user.created_at.timestamp_millis())
        .execute(self.store.pool())
        .await?;
        if inserted.rows_affected() == 0 {
            return Err(Error::new(
                Code::Conflict,
                format!("a user named '{name}' already exists"),
            )
            .details(serde_json::json!({ "field": "name" })));
        }
        Ok(user)
    }

    pub async fn list_users(&self) -> Result<Vec<User>> {
        sqlx::query("SELECT id, name, role, created_at FROM users ORDER BY created_at, id")
            .fetch_all(self.store.pool())
            .await?
            .iter()
            .map(user_from_row)
            .collect()
    }

    pub async fn get_user(&self, id: &str) -> Result<User> {
        sqlx::query("SELECT id, name, role, created_at FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(self.store.pool())
            .await?
            .as_ref()
            .map(user_from_row)
            .unwrap_or_else(|| Err(Error::not_found("user", id)))
    }

    /// Issues a new token for `user_id`, valid until `expires_at` (forever if `None`).
    pub async fn issue_token(
        &self,
        user_id: &str,
        name: &str,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<IssuedToken> {
        validate_name("name", name)?;
        self.get_user(user_id).await?;
        let secret = token::generate();
        let info = TokenInfo {
            id: new_id(),
            user_id: user_id.to_string(),
            name: name.to_string(),
            prefix: token::display_prefix(&secret),
            created_at: Utc::now(),
            expires_at,
            revoked_at: None,
            last_used_at: None,
        };
        sqlx::query(
            "INSERT INTO api_tokens (id, user_id, name, token_hash, prefix, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&info.id)
        .bind(&info.user_id)
        .bind(&info.name)
        .bind(token::hash(&secret))
        .bind(&info.prefix)
        .bind(info.created_at.timestamp_millis())
        .bind(expires_at.map(|t| t.timestamp_millis()))
        .execute(self.store.pool())
        .await?;
        Ok(IssuedToken {
            token: secret,
            info,
        })
    }

    /// Tokens of one user, or of everyone when `user_id` is `None`.
    pub async fn list_tokens(&self, user_id: Option<&str>) -> Result<Vec<TokenInfo>> {
        const COLUMNS: &str =
            "id, user_id, name, prefix, created_at, expires_at, revoked_at, last_used_at";
        let rows =
            match user_id {
                Some(user) => sqlx::query(&format!(
                    "SELECT {COLUMNS} FROM api_tokens WHERE user_id = $1 ORDER BY created_at, id"
                ))
                .bind(user)
                .fetch_all(self.store.pool())
                .await?,
                None => {
                    sqlx::query(&format!(
                        "SELECT {COLUMNS} FROM api_tokens ORDER BY created_at, id"
                    ))
                    .fetch_all(self.store.pool())
                    .await?
                }
            };
        rows.iter().map(token_from_row).collect()
    }

    pub async fn get_token(&self, id: &str) -> Result<TokenInfo> {
        sqlx::query(
            "SELECT id, user_id, name, prefix, created_at, expires_at, revoked_at, last_used_at \
             FROM api_tokens WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.store.pool())
        .await?
        .as_ref()
        .map(token_from_row)
        .unwrap_or_else(|| Err(Error::not_found("token", id)))
    }

    /// Revokes a token; revoking it again changes nothing.
    pub async fn revoke_token(&self, id: &str) -> Result<TokenInfo> {
        sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(now_ms())
            .bind(id)
            .execute(self.store.pool())
            .await?;
        self.get_token(id).await
    }

    /// Creates the first admin and its token on a store with no admin yet.
    pub async fn bootstrap(&self, name: &str) -> Result<(User, IssuedToken)> {
        let (admins,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM users WHERE role = 'admin'")
            .fetch_one(self.store.pool())
            .await?;
        if admins > 0 {
            return Err(Error::new(Code::Conflict, "this Weft already has an admin")
                .hint("create further users and tokens with an admin token: POST /api/v1/users, POST /api/v1/tokens"));
        }
        let user = self.create_user(name, Role::Admin).await?;
        let token = self.issue_token(&user.id, "bootstrap", None).await?;
        Ok((user, token))
    }
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

fn user_from_row(row: &AnyRow) -> Result<User> {
    Ok(User {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        role: Role::parse(&row.try_get::<String, _>("role")?)?,
        created_at: time(row.try_get("created_at")?),
    })
}

fn token_from_row(row: &AnyRow) -> Result<TokenInfo> {
    Ok(TokenInfo {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        name: row.try_get("name")?,
        prefix: row.try_get("prefix")?,
        created_at: time(row.try_get("created_at")?),
        expires_at: row.try_get::<Option<i64>, _>("expires_at")?.map(time),
        revoked_at: row.try_get::<Option<i64>, _>("revoked_at")?.map(time),
        last_used_at: row.try_get::<Option<i64>, _>("last_used_at")?.map(time),
    })
}
