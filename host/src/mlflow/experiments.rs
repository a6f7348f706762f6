//! Experiments: create, read (by id or by the caller's name for it), search, rename, delete,
//! restore and tags. Names are unique per owner, so two users may each have "demo".

use super::filter::{self, Scope};
use super::service::{
    Tracking, check_length, next_token, not_found, numeric_id, page_offset, pair_json,
};
use super::wire::invalid;
use crate::auth::Caller;
use crate::error::{Code, Error, Result};
use crate::store::now_ms;
use serde_json::{Value, json};
use sqlx::Row as _;
use sqlx::any::AnyRow;

const COLUMNS: &str = "id, name, artifact_location, lifecycle_stage, created_at, updated_at";

impl Tracking {
    /// Creates experiment `name` for `caller`, with `tags`.
    pub(crate) async fn create_experiment(
        &self,
        caller: &Caller,
        name: &str,
        tags: &[(String, String)],
    ) -> Result<String> {
        if name.trim().is_empty() {
            return Err(invalid(
                "Invalid experiment name: ''. Experiment name cannot be empty.",
            ));
        }
        check_length("Experiment name", name, 500)?;
        for (key, value) in tags {
            check_length("Experiment tag key", key, 250)?;
            check_length("Experiment tag value", value, 20000)?;
        }
        let id = numeric_id();
        let now = now_ms();
        let mut tx = self.store.pool().begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO mlflow_experiments (id, owner_id, name, artifact_location, lifecycle_stage, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, 'active', $5, $5) ON CONFLICT (owner_id, name) DO NOTHING",
        )
        .bind(&id)
        .bind(&caller.user_id)
        .bind(name)
        .bind(format!("mlflow-artifacts:/{id}"))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            return Err(Error::new(
                Code::ModelExists,
                format!("Experiment(name={name}) already exists."),
            ));
        }
        for (key, value) in tags {
            upsert_tag(&mut tx, &id, key, value).await?;
        }
        tx.commit().await?;
        Ok(id)
    }

    /// Experiment `id` as the protocol shows it.
    pub(crate) async fn experiment(&self, caller: &Caller, id: &str) -> Result<Value> {
        self.experiment_access(caller, id).await?;
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM mlflow_experiments WHERE id = $1"
        ))
        .bind(id)
        .fetch_one(self.store.pool())
        .await?;
        self.experiment_json(&row).await
    }

    /// The caller's experiment named `name` (active or deleted, as MLflow answers).
    pub(crate) async fn experiment_by_name(&self, caller: &Caller, name: &str) -> Result<Value> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM mlflow_experiments WHERE owner_id = $1 AND name = $2"
        ))
        .bind(&caller.user_id)
        .bind(name)
        .fetch_optional(self.store.pool())
        .await?
        .ok_or_else(|| not_found(format!("Could not find experiment with name '{name}'")))?;
        self.experiment_json(&row).await
    }

    /// The caller's experiments (an admin's: everyone's) in `view` (ACTIVE_ONLY,
    /// DELETED_ONLY, ALL), newest first, filtered as MLflow's grammar allows (`name LIKE 'a%'`,
    /// `tags.team = 'vision'`, `creation_time > 0`).
    pub(crate) async fn search_experiments(
        &self,
        caller: &Caller,
        view: Option<&str>,
        filter: Option<&str>,
        max_results: Option<i64>,
        page_token: Option<&str>,
    ) -> Result<Value> {
        let limit = max_results.unwrap_or(1000).clamp(1, 50000);
        let offset = page_offset(page_token)?;
        let compiled = filter::compile(Scope::Experiments, filter.unwrap_or_default(), 2)?;
        let mut conditions = vec![
            "($1 = '' OR e.owner_id = $1)".to_string(),
            stage_condition("e.lifecycle_stage", view),
        ];
        conditions.extend(compiled.sql);
        let sql = format!(
            "SELECT {COLUMNS} FROM mlflow_experiments e WHERE {} \
             ORDER BY e.created_at DESC, e.id LIMIT {limit} OFFSET {offset}",
            conditions.join(" AND ")
        );
        let owner = if caller.is_admin() {
            ""
        } else {
            caller.user_id.as_str()
        };
        let rows = filter::bind_all(sqlx::query(&sql).bind(owner), compiled.binds)
            .fetch_all(self.store.pool())
            .await?;
        let mut experiments = Vec::with_capacity(rows.len());
        for row in &rows {
            experiments.push(self.experiment_json(row).await?);
        }
        let mut out = json!({ "experiments": experiments });
        if let Some(token) = next_token(offset, rows.len(), limit) {
            out["next_page_token"] = token.into();
        }
        Ok(out)
    }

    /// Renames experiment `id`.
    pub(crate) async fn rename_experiment(
        &self,
        caller: &Caller,
        id: &str,
        name: &str,
    ) -> Result<()> {
        self.experiment_access(caller, id).await?;
        if name.trim().is_empty() {
            return Err(invalid(
                "Invalid experiment name: ''. Experiment name cannot be empty.",
            ));
        }
        check_length("Experiment name", name, 500)?;
        sqlx::query("UPDATE mlflow_experiments SET name = $1, updated_at = $2 WHERE id = $3")
            .bind(name)
            .bind(now_ms())
            .bind(id)
            .execute(self.store.pool())
            .await
            .map_err(|e| match &e {
                sqlx::Error::Database(d) if d.is_unique_violation() => Error::new(
                    Code::ModelExists,
                    format!("Experiment(name={name}) already exists."),
                ),
                _ => e.into(),
            })?;
        Ok(())
    }

    /// Marks experiment `id` and its runs deleted (`stage` "deleted") or active again.
    pub(crate) async fn set_experiment_stage(
        &self,
        caller: &Caller,
        id: &str,
        stage: &str,
    ) -> Result<()> {
        self.experiment_access(caller, id).await?;
        let mut tx = self.store.pool().begin().await?;
        sqlx::query(
            "UPDATE mlflow_experiments SET lifecycle_stage = $1, updated_at = $2 WHERE id = $3",
        )
        .bind(stage)
        .bind(now_ms())
        .bind(id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE mlflow_runs SET lifecycle_stage = $1 WHERE experiment_id = $2")
            .bind(stage)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Sets (or with `None`, deletes) tag `key` of experiment `id`.
    pub(crate) async fn set_experiment_tag(
        &self,
        caller: &Caller,
        id: &str,
        key: &str,
        value: Option<&str>,
    ) -> Result<()> {
        self.experiment_access(caller, id).await?;
        check_length("Experiment tag key", key, 250)?;
        let mut tx = self.store.pool().begin().await?;
        match value {
            Some(value) => {
                check_length("Experiment tag value", value, 20000)?;
                upsert_tag(&mut tx, id, key, value).await?;
            }
            None => {
                sqlx::query(
                    "DELETE FROM mlflow_experiment_tags WHERE experiment_id = $1 AND key = $2",
                )
                .bind(id)
                .bind(key)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn experiment_json(&self, row: &AnyRow) -> Result<Value> {
        let id: String = row.try_get("id")?;
        let tags = sqlx::query(
            "SELECT key, value FROM mlflow_experiment_tags WHERE experiment_id = $1 ORDER BY key",
        )
        .bind(&id)
        .fetch_all(self.store.pool())
        .await?
        .iter()
        .map(pair_json)
        .collect::<Result<Vec<_>>>()?;
        Ok(json!({
            "experiment_id": id,
            "name": row.try_get::<String, _>("name")?,
            "artifact_location": row.try_get::<String, _>("artifact_location")?,
            "lifecycle_stage": row.try_get::<String, _>("lifecycle_stage")?,
            "creation_time": row.try_get::<i64, _>("created_at")?,
            "last_update_time": row.try_get::<i64, _>("updated_at")?,
            "tags": tags,
        }))
    }
}

async fn upsert_tag(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    id: &str,
    key: &str,
    value: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO mlflow_experiment_tags (experiment_id, key, value) VALUES ($1, $2, $3) \
         ON CONFLICT (experiment_id, key) DO UPDATE SET value = excluded.value",
    )
    .bind(id)
    .bind(key)
    .bind(value)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The SQL condition for a protocol view type on `column`.
pub(super) fn stage_condition(column: &str, view: Option<&str>) -> String {
    match view.unwrap_or("ACTIVE_ONLY") {
        "DELETED_ONLY" | "2" => format!("{column} = 'deleted'"),
        "ALL" | "3" => "1 = 1".to_string(),
        _ => format!("{column} = 'active'"),
    }
}
