//! The auth domain's SQL: users and API tokens as stored. No other module reads or writes
//! these tables.

use super::{Purpose, Role, TokenInfo, User};
use crate::error::Result;
use crate::store::{Store, time};
use sqlx::Row as _;
use sqlx::any::AnyRow;

/// What a sign-in needs to know of a presented token, its parent and its user.
pub(super) struct SignInRow {
    pub token_id: String,
    pub user_id: String,
    pub name: String,
    pub role: Role,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub parent_revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub disabled_at: Option<i64>,
    pub purpose: Purpose,
}

/// The token whose hash is `token_hash`, with what decides whether it signs in.
pub(super) async fn sign_in_row(store: &Store, token_hash: &str) -> Result<Option<SignInRow>> {
    let row = sqlx::query(
        "SELECT t.id, t.user_id, t.expires_at, t.revoked_at, t.last_used_at, t.purpose, \
         p.revoked_at AS parent_revoked_at, u.name, u.role, u.disabled_at \
         FROM api_tokens t JOIN users u ON u.id = t.user_id \
         LEFT JOIN api_tokens p ON p.id = t.parent_id WHERE t.token_hash = $1",
    )
    .bind(token_hash)
    .fetch_optional(store.pool())
    .await?;
    row.map(|row| {
        Ok(SignInRow {
            token_id: row.try_get("id")?,
            user_id: row.try_get("user_id")?,
            name: row.try_get("name")?,
            role: Role::parse(&row.try_get::<String, _>("role")?)?,
            expires_at: row.try_get("expires_at")?,
            revoked_at: row.try_get("revoked_at")?,
            parent_revoked_at: row.try_get("parent_revoked_at")?,
            last_used_at: row.try_get("last_used_at")?,
            disabled_at: row.try_get("disabled_at")?,
            purpose: Purpose::parse(&row.try_get::<String, _>("purpose")?)?,
        })
    })
    .transpose()
}

pub(super) async fn touch_token(store: &Store, token_id: &str, now: i64) -> Result<()> {
    sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
        .bind(now)
        .bind(token_id)
        .execute(store.pool())
        .await?;
    Ok(())
}

pub(super) async fn set_disabled(store: &Store, user_id: &str, at: Option<i64>) -> Result<()> {
    sqlx::query("UPDATE users SET disabled_at = $1 WHERE id = $2")
        .bind(at)
        .bind(user_id)
        .execute(store.pool())
        .await?;
    Ok(())
}

/// Stores a new user; `false` when the name is taken.
pub(super) async fn insert_user(store: &Store, user: &User) -> Result<bool> {
    let inserted = sqlx::query(
        "INSERT INTO users (id, name, role, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(&user.id)
    .bind(&user.name)
    .bind(user.role.as_str())
    .bind(user.created_at.timestamp_millis())
    .execute(store.pool())
    .await?;
    Ok(inserted.rows_affected() > 0)
}

const USER_COLUMNS: &str = "id, name, role, created_at, disabled_at";

pub(super) async fn users(store: &Store) -> Result<Vec<User>> {
    sqlx::query(&format!(
        "SELECT {USER_COLUMNS} FROM users ORDER BY created_at, id"
    ))
    .fetch_all(store.pool())
    .await?
    .iter()
    .map(user_from_row)
    .collect()
}

pub(super) async fn user(store: &Store, id: &str) -> Result<Option<User>> {
    sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
        .bind(id)
        .fetch_optional(store.pool())
        .await?
        .as_ref()
        .map(user_from_row)
        .transpose()
}

pub(super) async fn admins(store: &Store) -> Result<i64> {
    let (admins,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM users WHERE role = 'admin'")
        .fetch_one(store.pool())
        .await?;
    Ok(admins)
}

/// Stores a new token under the hash of its secret.
pub(super) async fn insert_token(
    store: &Store,
    info: &TokenInfo,
    token_hash: &str,
    purpose: Purpose,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO api_tokens (id, user_id, name, token_hash, prefix, created_at, expires_at, \
         parent_id, purpose) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&info.id)
    .bind(&info.user_id)
    .bind(&info.name)
    .bind(token_hash)
    .bind(&info.prefix)
    .bind(info.created_at.timestamp_millis())
    .bind(info.expires_at.map(|t| t.timestamp_millis()))
    .bind(&info.parent_id)
    .bind(purpose.as_str())
    .execute(store.pool())
    .await?;
    Ok(())
}

const TOKEN_COLUMNS: &str = "id, user_id, name, prefix, created_at, expires_at, revoked_at, \
                             last_used_at, parent_id";

/// Tokens of one user, or of everyone when `user_id` is `None`.
pub(super) async fn tokens(store: &Store, user_id: Option<&str>) -> Result<Vec<TokenInfo>> {
    let rows =
        match user_id {
            Some(user) => sqlx::query(&format!(
                "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE user_id = $1 ORDER BY created_at, id"
            ))
            .bind(user)
            .fetch_all(store.pool())
            .await?,
            None => {
                sqlx::query(&format!(
                    "SELECT {TOKEN_COLUMNS} FROM api_tokens ORDER BY created_at, id"
                ))
                .fetch_all(store.pool())
                .await?
            }
        };
    rows.iter().map(token_from_row).collect()
}

pub(super) async fn token(store: &Store, id: &str) -> Result<Option<TokenInfo>> {
    sqlx::query(&format!(
        "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(store.pool())
    .await?
    .as_ref()
    .map(token_from_row)
    .transpose()
}

/// Revokes a token and every token minted from it, at any depth, at `now`; returns how many
/// descendants were revoked.
pub(super) async fn revoke_tree(store: &Store, id: &str, now: i64) -> Result<u64> {
    sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
        .bind(now)
        .bind(id)
        .execute(store.pool())
        .await?;
    // A second statement: it sees children minted until the parent's revocation committed.
    let descendants = sqlx::query(
        "WITH RECURSIVE tree(id) AS ( \
             SELECT id FROM api_tokens WHERE parent_id = $1 \
             UNION SELECT t.id FROM api_tokens t JOIN tree ON t.parent_id = tree.id) \
         UPDATE api_tokens SET revoked_at = $2 \
         WHERE id IN (SELECT id FROM tree) AND revoked_at IS NULL",
    )
    .bind(id)
    .bind(now)
    .execute(store.pool())
    .await?
    .rows_affected();
    Ok(descendants)
}

/// The user named `name` and their password hash (`None` while none is set).
pub(super) async fn password_of(
    store: &Store,
    name: &str,
) -> Result<Option<(User, Option<String>)>> {
    sqlx::query(&format!(
        "SELECT {USER_COLUMNS}, password_hash FROM users WHERE name = $1"
    ))
    .bind(name)
    .fetch_optional(store.pool())
    .await?
    .map(|row| Ok((user_from_row(&row)?, row.try_get("password_hash")?)))
    .transpose()
}

/// The password hash of user `id`, if they have one.
pub(super) async fn password_hash(store: &Store, id: &str) -> Result<Option<String>> {
    let row: Option<(Option<String>,)> =
        sqlx::query_as("SELECT password_hash FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(store.pool())
            .await?;
    Ok(row.and_then(|(hash,)| hash))
}

/// Replaces user `id`'s password hash; `false` when there is no such user.
pub(super) async fn set_password_hash(
    store: &Store,
    id: &str,
    hash: &str,
    now: i64,
) -> Result<bool> {
    let updated =
        sqlx::query("UPDATE users SET password_hash = $1, password_set_at = $2 WHERE id = $3")
            .bind(hash)
            .bind(now)
            .bind(id)
            .execute(store.pool())
            .await?;
    Ok(updated.rows_affected() > 0)
}

fn user_from_row(row: &AnyRow) -> Result<User> {
    Ok(User {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        role: Role::parse(&row.try_get::<String, _>("role")?)?,
        created_at: time(row.try_get("created_at")?),
        disabled_at: row.try_get::<Option<i64>, _>("disabled_at")?.map(time),
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
        parent_id: row.try_get("parent_id")?,
    })
}
