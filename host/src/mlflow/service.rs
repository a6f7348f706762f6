//! The tracking service: the store and the artifact storage, and who may reach what. Every
//! experiment belongs to the Weft user who made it; runs, logged models and artifacts follow
//! their experiment, registered models their owner. Others are refused (PERMISSION_DENIED),
//! admins reach everything.

use super::wire::invalid;
use crate::auth::Caller;
use crate::error::{Code, Error, Result};
use crate::store::Store;
use opendal::Operator;
use sqlx::Row as _;

/// Where artifacts live below the projects' storage root (no project id starts with a dot).
pub(super) const ARTIFACT_ROOT: &str = ".mlflow/";

/// Experiments, runs, logged models, the registry and their artifacts.
#[derive(Clone)]
pub(crate) struct Tracking {
    pub(super) store: Store,
    pub(super) files: Operator,
}

impl Tracking {
    /// The service over `store`, keeping artifacts in `files` (the projects' storage).
    pub(crate) fn new(store: Store, files: Operator) -> Self {
        Self { store, files }
    }

    /// Fails unless `caller` owns `owner_id`'s things or is an admin.
    pub(super) fn check_owner(caller: &Caller, owner_id: &str, what: &str) -> Result<()> {
        if caller.is_admin() || caller.user_id == owner_id {
            Ok(())
        } else {
            Err(Error::new(
                Code::ModelForbidden,
                format!("{what} belongs to another user"),
            )
            .hint("use a token of its owner (or an admin's)"))
        }
    }

    /// The owner of experiment `id`, checked against `caller`; its lifecycle stage.
    pub(super) async fn experiment_access(&self, caller: &Caller, id: &str) -> Result<String> {
        let row =
            sqlx::query("SELECT owner_id, lifecycle_stage FROM mlflow_experiments WHERE id = $1")
                .bind(id)
                .fetch_optional(self.store.pool())
                .await?
                .ok_or_else(|| not_found(format!("No Experiment with id={id} exists")))?;
        Self::check_owner(
            caller,
            &row.try_get::<String, _>("owner_id")?,
            &format!("Experiment {id}"),
        )?;
        Ok(row.try_get("lifecycle_stage")?)
    }

    /// The experiment of run `id` after checking `caller` may reach it, and the run's
    /// lifecycle stage.
    pub(super) async fn run_access(&self, caller: &Caller, id: &str) -> Result<(String, String)> {
        let row = sqlx::query(
            "SELECT experiment_id, owner_id, lifecycle_stage FROM mlflow_runs WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.store.pool())
        .await?
        .ok_or_else(|| not_found(format!("Run with id={id} not found")))?;
        Self::check_owner(
            caller,
            &row.try_get::<String, _>("owner_id")?,
            &format!("Run {id}"),
        )?;
        Ok((
            row.try_get("experiment_id")?,
            row.try_get("lifecycle_stage")?,
        ))
    }

    /// Fails unless run `id` is reachable and active (MLflow refuses logging to a deleted run).
    pub(super) async fn active_run(&self, caller: &Caller, id: &str) -> Result<String> {
        let (experiment, stage) = self.run_access(caller, id).await?;
        if stage != "active" {
            return Err(Error::new(
                Code::ModelInvalidState,
                format!("The run {id} must be in the 'active' state. Current state is {stage}."),
            ));
        }
        Ok(experiment)
    }
}

/// A row's `key` and `value` as the protocol's tag or param.
pub(super) fn pair_json(row: &sqlx::any::AnyRow) -> Result<serde_json::Value> {
    Ok(serde_json::json!({
        "key": row.try_get::<String, _>("key")?,
        "value": row.try_get::<String, _>("value")?,
    }))
}

/// A RESOURCE_DOES_NOT_EXIST error.
pub(super) fn not_found(message: impl Into<String>) -> Error {
    Error::new(Code::ModelNotFound, message)
}

/// Fails when `value` is longer than MLflow's `limit` for `what`.
pub(super) fn check_length(what: &str, value: &str, limit: usize) -> Result<()> {
    let len = value.chars().count();
    if len > limit {
        return Err(invalid(format!(
            "{what} '{}...' had length {len}, which exceeded length limit of {limit}",
            value.chars().take(100).collect::<String>()
        )));
    }
    Ok(())
}

/// Fails when a required field is missing or empty.
pub(super) fn required<'a>(field: &str, value: &'a Option<String>) -> Result<&'a str> {
    match value.as_deref() {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(invalid(format!(
            "Missing value for required parameter '{field}'."
        ))),
    }
}

/// A new random numeric id, as MLflow's file store makes experiment ids.
pub(super) fn numeric_id() -> String {
    (rand::random::<u64>() >> 2).to_string()
}

/// A new 32-hex-digit id, the shape of MLflow's run ids.
pub(super) fn hex_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Offset-based page tokens: opaque to clients, a number to us.
pub(super) fn page_offset(token: Option<&str>) -> Result<i64> {
    use base64::Engine as _;
    match token.filter(|t| !t.is_empty()) {
        None => Ok(0),
        Some(t) => base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(t)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.strip_prefix("offset:").and_then(|n| n.parse().ok()))
            .ok_or_else(|| invalid(format!("Invalid page token '{t}'"))),
    }
}

/// The token of the page after `offset` + `taken` when a full page was returned.
pub(super) fn next_token(offset: i64, taken: usize, limit: i64) -> Option<String> {
    use base64::Engine as _;
    (taken as i64 >= limit).then(|| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(format!("offset:{}", offset + taken as i64))
    })
}
