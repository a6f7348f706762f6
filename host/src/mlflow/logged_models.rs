//! MLflow 3's logged models: a model made in an experiment (usually by a run), with its own
//! artifact folder, params and tags, pending until the client finalizes it.

use super::service::{
    Tracking, check_length, hex_id, next_token, not_found, page_offset, pair_json,
};
use super::wire::invalid;
use crate::auth::Caller;
use crate::error::Result;
use crate::store::now_ms;
use serde_json::{Value, json};
use sqlx::Row as _;
use sqlx::any::AnyRow;

const TAG: &str = "logged_model";
const PARAM: &str = "logged_model_param";
const COLUMNS: &str = "id, experiment_id, name, model_type, source_run_id, status, status_message, artifact_uri, created_at, updated_at";

/// What a new logged model starts with.
#[derive(Debug, Default)]
pub(crate) struct NewLoggedModel {
    pub experiment_id: String,
    pub name: Option<String>,
    pub model_type: Option<String>,
    pub source_run_id: Option<String>,
    pub params: Vec<(String, String)>,
    pub tags: Vec<(String, String)>,
}

impl Tracking {
    /// Creates a pending logged model in `new.experiment_id`.
    pub(crate) async fn create_logged_model(
        &self,
        caller: &Caller,
        new: NewLoggedModel,
    ) -> Result<Value> {
        self.experiment_access(caller, &new.experiment_id).await?;
        if let Some(run) = new.source_run_id.as_deref().filter(|r| !r.is_empty()) {
            self.run_access(caller, run).await?;
        }
        let id = format!("m-{}", hex_id());
        let name = new
            .name
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| format!("model-{}", &id[2..10]));
        let now = now_ms();
        sqlx::query(
            "INSERT INTO mlflow_logged_models (id, experiment_id, owner_id, name, model_type, source_run_id, status, status_message, artifact_uri, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 'LOGGED_MODEL_PENDING', '', $7, $8, $8)",
        )
        .bind(&id)
        .bind(&new.experiment_id)
        .bind(&caller.user_id)
        .bind(&name)
        .bind(new.model_type.unwrap_or_default())
        .bind(new.source_run_id.unwrap_or_default())
        .bind(format!("mlflow-artifacts:/{}/models/{id}/artifacts", new.experiment_id))
        .bind(now)
        .execute(self.store.pool())
        .await?;
        self.set_entity_pairs(PARAM, &id, &new.params, 6000).await?;
        self.set_entity_pairs(TAG, &id, &new.tags, 8000).await?;
        self.logged_model(caller, &id).await
    }

    /// Logged model `id`.
    pub(crate) async fn logged_model(&self, caller: &Caller, id: &str) -> Result<Value> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS}, owner_id FROM mlflow_logged_models WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.store.pool())
        .await?
        .ok_or_else(|| not_found(format!("Logged model with ID '{id}' not found.")))?;
        Self::check_owner(
            caller,
            &row.try_get::<String, _>("owner_id")?,
            &format!("Logged model {id}"),
        )?;
        self.logged_model_json(&row).await
    }

    /// Sets logged model `id`'s status (READY or UPLOAD_FAILED when the client finalizes).
    pub(crate) async fn finalize_logged_model(
        &self,
        caller: &Caller,
        id: &str,
        status: &str,
    ) -> Result<Value> {
        self.logged_model(caller, id).await?;
        if ![
            "LOGGED_MODEL_READY",
            "LOGGED_MODEL_UPLOAD_FAILED",
            "LOGGED_MODEL_PENDING",
        ]
        .contains(&status)
        {
            return Err(invalid(format!("Invalid logged model status '{status}'")));
        }
        sqlx::query("UPDATE mlflow_logged_models SET status = $1, updated_at = $2 WHERE id = $3")
            .bind(status)
            .bind(now_ms())
            .bind(id)
            .execute(self.store.pool())
            .await?;
        self.logged_model(caller, id).await
    }

    /// Sets tags (or with `delete`, removes tag keys) of logged model `id`.
    pub(crate) async fn logged_model_tags(
        &self,
        caller: &Caller,
        id: &str,
        tags: &[(String, String)],
        delete: Option<&str>,
    ) -> Result<Value> {
        self.logged_model(caller, id).await?;
        self.set_entity_pairs(TAG, id, tags, 8000).await?;
        if let Some(key) = delete {
            self.delete_entity_tag(TAG, id, key).await?;
        }
        self.logged_model(caller, id).await
    }

    /// Adds params to logged model `id`.
    pub(crate) async fn log_logged_model_params(
        &self,
        caller: &Caller,
        id: &str,
        params: &[(String, String)],
    ) -> Result<()> {
        self.logged_model(caller, id).await?;
        self.set_entity_pairs(PARAM, id, params, 6000).await
    }

    /// Deletes logged model `id` (its record; artifacts stay, as MLflow keeps them).
    pub(crate) async fn delete_logged_model(&self, caller: &Caller, id: &str) -> Result<()> {
        self.logged_model(caller, id).await?;
        sqlx::query("DELETE FROM mlflow_logged_models WHERE id = $1")
            .bind(id)
            .execute(self.store.pool())
            .await?;
        Ok(())
    }

    /// The logged models of `experiment_ids`, newest first (filters are not supported yet:
    /// a filter is refused rather than ignored).
    pub(crate) async fn search_logged_models(
        &self,
        caller: &Caller,
        experiment_ids: &[String],
        filter: Option<&str>,
        max_results: Option<i64>,
        page_token: Option<&str>,
    ) -> Result<Value> {
        if filter.is_some_and(|f| !f.trim().is_empty()) {
            return Err(invalid(
                "Filters on logged models are not supported by this server",
            ));
        }
        for id in experiment_ids {
            self.experiment_access(caller, id).await?;
        }
        let limit = max_results.unwrap_or(100).clamp(1, 1000);
        let offset = page_offset(page_token)?;
        let mut models = Vec::new();
        let mut count = 0;
        if !experiment_ids.is_empty() {
            let placeholders = (1..=experiment_ids.len())
                .map(|n| format!("${n}"))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "SELECT {COLUMNS} FROM mlflow_logged_models WHERE experiment_id IN ({placeholders}) \
                 ORDER BY created_at DESC, id LIMIT {limit} OFFSET {offset}"
            );
            let mut query = sqlx::query(&sql);
            for id in experiment_ids {
                query = query.bind(id);
            }
            let rows = query.fetch_all(self.store.pool()).await?;
            count = rows.len();
            for row in &rows {
                models.push(self.logged_model_json(row).await?);
            }
        }
        let mut out = json!({ "models": models });
        if let Some(token) = next_token(offset, count, limit) {
            out["next_page_token"] = token.into();
        }
        Ok(out)
    }

    async fn logged_model_json(&self, row: &AnyRow) -> Result<Value> {
        let id: String = row.try_get("id")?;
        let tags = self.entity_pairs(TAG, &id).await?;
        let params = self.entity_pairs(PARAM, &id).await?;
        Ok(json!({
            "info": {
                "model_id": id,
                "experiment_id": row.try_get::<String, _>("experiment_id")?,
                "name": row.try_get::<String, _>("name")?,
                "creation_timestamp_ms": row.try_get::<i64, _>("created_at")?,
                "last_updated_timestamp_ms": row.try_get::<i64, _>("updated_at")?,
                "artifact_uri": row.try_get::<String, _>("artifact_uri")?,
                "status": row.try_get::<String, _>("status")?,
                "model_type": row.try_get::<String, _>("model_type")?,
                "source_run_id": row.try_get::<String, _>("source_run_id")?,
                "status_message": row.try_get::<String, _>("status_message")?,
                "tags": tags,
            },
            "data": { "params": params, "metrics": [] },
        }))
    }

    /// Sets `(key, value)` pairs of kind `kind` on `owner`, values within `limit`.
    pub(super) async fn set_entity_pairs(
        &self,
        kind: &str,
        owner: &str,
        pairs: &[(String, String)],
        limit: usize,
    ) -> Result<()> {
        for (key, value) in pairs {
            check_length("Tag key", key, 250)?;
            check_length("Tag value", value, limit)?;
            sqlx::query(
                "INSERT INTO mlflow_entity_tags (kind, owner, key, value) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (kind, owner, key) DO UPDATE SET value = excluded.value",
            )
            .bind(kind)
            .bind(owner)
            .bind(key)
            .bind(value)
            .execute(self.store.pool())
            .await?;
        }
        Ok(())
    }

    /// Removes tag `key` of kind `kind` from `owner`.
    pub(super) async fn delete_entity_tag(&self, kind: &str, owner: &str, key: &str) -> Result<()> {
        sqlx::query("DELETE FROM mlflow_entity_tags WHERE kind = $1 AND owner = $2 AND key = $3")
            .bind(kind)
            .bind(owner)
            .bind(key)
            .execute(self.store.pool())
            .await?;
        Ok(())
    }

    /// The `(key, value)` pairs of kind `kind` on `owner`, as protocol tags.
    pub(super) async fn entity_pairs(&self, kind: &str, owner: &str) -> Result<Vec<Value>> {
        sqlx::query(
            "SELECT key, value FROM mlflow_entity_tags WHERE kind = $1 AND owner = $2 ORDER BY key",
        )
        .bind(kind)
        .bind(owner)
        .fetch_all(self.store.pool())
        .await?
        .iter()
        .map(pair_json)
        .collect()
    }
}
