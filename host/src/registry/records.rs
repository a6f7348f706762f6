//! Stored plugin rows and settings (grants, limits).

use super::grants::ScopedGrant;
use crate::error::Result;
use crate::store::{Store, new_id, now_ms, time};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row as _;
use sqlx::any::AnyRow;
use utoipa::ToSchema;
use weft_runtime::Limits;

/// One stored version of a plugin.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PluginVersion {
    pub name: String,
    pub version: String,
    /// `node` or `strategy`.
    pub kind: String,
    /// SHA-256 of the component.
    pub hash: String,
    pub size_bytes: i64,
    pub builtin: bool,
    pub created_at: DateTime<Utc>,
    /// The plugin's own description: ports, config schema and capabilities for nodes.
    #[schema(value_type = Object)]
    pub description: serde_json::Value,
}

const COLUMNS: &str = "name, version, kind, hash, size_bytes, description, builtin, created_at";

fn from_row(row: &AnyRow) -> Result<PluginVersion> {
    let description: String = row.try_get("description")?;
    Ok(PluginVersion {
        name: row.try_get("name")?,
        version: row.try_get("version")?,
        kind: row.try_get("kind")?,
        hash: row.try_get("hash")?,
        size_bytes: row.try_get("size_bytes")?,
        builtin: row.try_get::<i64, _>("builtin")? != 0,
        created_at: time(row.try_get("created_at")?),
        description: serde_json::from_str(&description).unwrap_or_default(),
    })
}

pub(super) async fn all(store: &Store) -> Result<Vec<PluginVersion>> {
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM plugins ORDER BY name, created_at"
    ))
    .fetch_all(store.pool())
    .await?
    .iter()
    .map(from_row)
    .collect()
}

pub(super) async fn versions(store: &Store, name: &str) -> Result<Vec<PluginVersion>> {
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM plugins WHERE name = $1 ORDER BY created_at"
    ))
    .bind(name)
    .fetch_all(store.pool())
    .await?
    .iter()
    .map(from_row)
    .collect()
}

/// Inserts a version, or (for built-ins) points an existing one at new content.
pub(super) async fn upsert(store: &Store, p: &PluginVersion, by: Option<&str>) -> Result<()> {
    sqlx::query(
        "INSERT INTO plugins (id, name, version, kind, hash, size_bytes, description, builtin, created_at, created_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         ON CONFLICT (name, version) DO UPDATE SET hash = excluded.hash, size_bytes = excluded.size_bytes, \
         description = excluded.description",
    )
    .bind(new_id())
    .bind(&p.name)
    .bind(&p.version)
    .bind(&p.kind)
    .bind(&p.hash)
    .bind(p.size_bytes)
    .bind(p.description.to_string())
    .bind(i64::from(p.builtin))
    .bind(p.created_at.timestamp_millis())
    .bind(by)
    .execute(store.pool())
    .await?;
    Ok(())
}

pub(super) async fn delete(store: &Store, name: &str, version: &str) -> Result<()> {
    sqlx::query("DELETE FROM plugins WHERE name = $1 AND version = $2")
        .bind(name)
        .bind(version)
        .execute(store.pool())
        .await?;
    Ok(())
}

/// Whether any stored version uses the blob `hash`.
pub(super) async fn hash_in_use(store: &Store, hash: &str) -> Result<bool> {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM plugins WHERE hash = $1")
        .bind(hash)
        .fetch_one(store.pool())
        .await?;
    Ok(n > 0)
}

/// Grants and limits for a plugin name (defaults: nothing granted, default limits).
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct Settings {
    /// Capabilities and whom they are granted to.
    pub grants: Vec<ScopedGrant>,
    #[schema(value_type = Object)]
    pub limits: Limits,
}

pub(super) async fn settings(store: &Store, name: &str) -> Result<Settings> {
    let row = sqlx::query("SELECT grants, limits FROM plugin_settings WHERE name = $1")
        .bind(name)
        .fetch_optional(store.pool())
        .await?;
    let Some(row) = row else {
        return Ok(Settings::default());
    };
    let grants: String = row.try_get("grants")?;
    let limits: String = row.try_get("limits")?;
    Ok(Settings {
        grants: serde_json::from_str(&grants).unwrap_or_default(),
        limits: serde_json::from_str(&limits).unwrap_or_default(),
    })
}

pub(super) async fn save_settings(store: &Store, name: &str, s: &Settings, by: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO plugin_settings (name, grants, limits, updated_at, updated_by) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (name) DO UPDATE SET grants = excluded.grants, limits = excluded.limits, \
         updated_at = excluded.updated_at, updated_by = excluded.updated_by",
    )
    .bind(name)
    .bind(serde_json::to_string(&s.grants).expect("grants serialise"))
    .bind(serde_json::to_string(&s.limits).expect("limits serialise"))
    .bind(now_ms())
    .bind(by)
    .execute(store.pool())
    .await?;
    Ok(())
}
