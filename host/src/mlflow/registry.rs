//! The model registry: registered models (named per owner), their numbered versions (each
//! pointing at a logged model, a run's artifacts or an artifact URI), stages, aliases and
//! tags. A version is READY as soon as it is made: its files are already in Weft's storage.

use super::filter::{self, Scope};
use super::service::{Tracking, check_length, hex_id, not_found};
use super::wire::invalid;
use crate::auth::Caller;
use crate::error::{Code, Error, Result};
use crate::store::now_ms;
use serde_json::{Value, json};
use sqlx::Row as _;
use sqlx::any::AnyRow;

const MODEL_TAG: &str = "registered_model";
const VERSION_TAG: &str = "model_version";

/// What a new model version is made from.
#[derive(Debug, Default)]
pub(crate) struct NewVersion {
    pub source: String,
    pub run_id: Option<String>,
    pub model_id: Option<String>,
    pub description: Option<String>,
    pub tags: Vec<(String, String)>,
}

impl Tracking {
    /// Registers model `name` for `caller`.
    pub(crate) async fn create_registered_model(
        &self,
        caller: &Caller,
        name: &str,
        description: Option<&str>,
        tags: &[(String, String)],
    ) -> Result<Value> {
        if name.trim().is_empty() {
            return Err(invalid("Registered model name cannot be empty."));
        }
        check_length("Registered model name", name, 500)?;
        let id = hex_id();
        let now = now_ms();
        let inserted = sqlx::query(
            "INSERT INTO mlflow_registered_models (id, owner_id, name, description, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (owner_id, name) DO NOTHING",
        )
        .bind(&id)
        .bind(&caller.user_id)
        .bind(name)
        .bind(description.unwrap_or_default())
        .bind(now)
        .execute(self.store.pool())
        .await?;
        if inserted.rows_affected() == 0 {
            return Err(Error::new(
                Code::ModelExists,
                format!("Registered Model (name={name}) already exists."),
            ));
        }
        self.set_entity_pairs(MODEL_TAG, &id, tags, 100_000).await?;
        self.registered_model(caller, name).await
    }

    /// The id of the caller's registered model `name`.
    pub(crate) async fn registered_model_id(&self, caller: &Caller, name: &str) -> Result<String> {
        let row = sqlx::query(
            "SELECT id FROM mlflow_registered_models WHERE owner_id = $1 AND name = $2",
        )
        .bind(&caller.user_id)
        .bind(name)
        .fetch_optional(self.store.pool())
        .await?
        .ok_or_else(|| not_found(format!("Registered Model with name={name} not found")))?;
        Ok(row.try_get("id")?)
    }

    /// Registered model `name` with its latest version per stage, tags and aliases.
    pub(crate) async fn registered_model(&self, caller: &Caller, name: &str) -> Result<Value> {
        let id = self.registered_model_id(caller, name).await?;
        let row = sqlx::query("SELECT id, name, description, created_at, updated_at FROM mlflow_registered_models WHERE id = $1")
            .bind(&id)
            .fetch_one(self.store.pool())
            .await?;
        self.registered_model_json(&row, &caller.name).await
    }

    /// The caller's registered models matching `filter` (MLflow's grammar over `name` and
    /// `tags.<key>`), by name.
    pub(crate) async fn search_registered_models(
        &self,
        caller: &Caller,
        filter: Option<&str>,
    ) -> Result<Value> {
        let compiled = filter::compile(Scope::RegisteredModels, filter.unwrap_or_default(), 2)?;
        let conditions: String = compiled.sql.iter().map(|c| format!(" AND {c}")).collect();
        let sql = format!(
            "SELECT m.id, m.name, m.description, m.created_at, m.updated_at FROM mlflow_registered_models m \
             WHERE m.owner_id = $1{conditions} ORDER BY m.name"
        );
        let rows = filter::bind_all(sqlx::query(&sql).bind(&caller.user_id), compiled.binds)
            .fetch_all(self.store.pool())
            .await?;
        let mut models = Vec::with_capacity(rows.len());
        for row in &rows {
            models.push(self.registered_model_json(row, &caller.name).await?);
        }
        Ok(json!({ "registered_models": models }))
    }

    /// Renames or describes registered model `name`.
    pub(crate) async fn update_registered_model(
        &self,
        caller: &Caller,
        name: &str,
        new_name: Option<&str>,
        description: Option<&str>,
    ) -> Result<Value> {
        let id = self.registered_model_id(caller, name).await?;
        sqlx::query(
            "UPDATE mlflow_registered_models SET name = COALESCE($1, name), description = COALESCE($2, description), updated_at = $3 WHERE id = $4",
        )
        .bind(new_name.filter(|n| !n.is_empty()))
        .bind(description)
        .bind(now_ms())
        .bind(&id)
        .execute(self.store.pool())
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(d) if d.is_unique_violation() => Error::new(
                Code::ModelExists,
                format!("Registered Model (name={}) already exists.", new_name.unwrap_or_default()),
            ),
            _ => e.into(),
        })?;
        self.registered_model(caller, new_name.filter(|n| !n.is_empty()).unwrap_or(name))
            .await
    }

    /// Deletes registered model `name` and its versions.
    pub(crate) async fn delete_registered_model(&self, caller: &Caller, name: &str) -> Result<()> {
        let id = self.registered_model_id(caller, name).await?;
        let mut tx = self.store.pool().begin().await?;
        for sql in [
            "DELETE FROM mlflow_model_aliases WHERE model_id = $1",
            "DELETE FROM mlflow_model_versions WHERE model_id = $1",
            "DELETE FROM mlflow_registered_models WHERE id = $1",
        ] {
            sqlx::query(sql).bind(&id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Makes the next version of registered model `name`.
    pub(crate) async fn create_model_version(
        &self,
        caller: &Caller,
        name: &str,
        new: NewVersion,
    ) -> Result<Value> {
        let id = self.registered_model_id(caller, name).await?;
        let (storage, run_id) = self.storage_uri(caller, &new).await?;
        let now = now_ms();
        let mut tx = self.store.pool().begin().await?;
        // The number is taken in the insert itself: a transaction that read it first could
        // not take SQLite's write lock after another writer committed.
        let (next,): (i64,) = sqlx::query_as(
            "INSERT INTO mlflow_model_versions (model_id, version, source, run_id, logged_model_id, storage_uri, description, stage, created_at, updated_at) \
             SELECT $1, COALESCE(MAX(version), 0) + 1, $2, $3, $4, $5, $6, 'None', $7, $7 FROM mlflow_model_versions WHERE model_id = $1 \
             RETURNING version",
        )
        .bind(&id)
        .bind(&new.source)
        .bind(run_id)
        .bind(new.model_id.unwrap_or_default())
        .bind(storage)
        .bind(new.description.unwrap_or_default())
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query("UPDATE mlflow_registered_models SET updated_at = $1 WHERE id = $2")
            .bind(now)
            .bind(&id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.set_entity_pairs(VERSION_TAG, &format!("{id}/{next}"), &new.tags, 100_000)
            .await?;
        self.model_version(caller, name, &next.to_string()).await
    }

    /// Where a version's files are (the logged model's folder, a run's artifacts, or the
    /// source itself), and the run it came from: the one given, else the logged model's source
    /// run, as MLflow fills it in.
    async fn storage_uri(&self, caller: &Caller, new: &NewVersion) -> Result<(String, String)> {
        let given_run = new.run_id.clone().unwrap_or_default();
        let logged = new
            .model_id
            .as_deref()
            .filter(|m| !m.is_empty())
            .or_else(|| {
                new.source
                    .strip_prefix("models:/")
                    .filter(|m| m.starts_with("m-"))
            });
        if let Some(model_id) = logged {
            let model = self.logged_model(caller, model_id).await?;
            let info = &model["info"];
            let run = if given_run.is_empty() {
                info["source_run_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            } else {
                given_run
            };
            return Ok((
                info["artifact_uri"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                run,
            ));
        }
        if let Some(rest) = new.source.strip_prefix("runs:/") {
            let (run, path) = rest.split_once('/').unwrap_or((rest, ""));
            let info = self.run(caller, run).await?;
            let root = info["info"]["artifact_uri"].as_str().unwrap_or_default();
            let uri = if path.is_empty() {
                root.to_string()
            } else {
                format!("{root}/{path}")
            };
            return Ok((uri, given_run));
        }
        Ok((new.source.clone(), given_run))
    }

    /// Version `version` of registered model `name`.
    pub(crate) async fn model_version(
        &self,
        caller: &Caller,
        name: &str,
        version: &str,
    ) -> Result<Value> {
        let id = self.registered_model_id(caller, name).await?;
        let number: i64 = version
            .parse()
            .map_err(|_| invalid(format!("Model version must be an integer, got '{version}'")))?;
        let row = sqlx::query(&format!("SELECT {VERSION_COLUMNS} FROM mlflow_model_versions v WHERE v.model_id = $1 AND v.version = $2"))
            .bind(&id)
            .bind(number)
            .fetch_optional(self.store.pool())
            .await?
            .ok_or_else(|| not_found(format!("Model Version (name={name}, version={version}) not found")))?;
        self.version_json(&row, name, &caller.name).await
    }

    /// The versions of the caller's models matching `filter` (MLflow's grammar over `name`,
    /// `version_number`, `run_id`, `source_path` and `tags.<key>`), by model then newest first.
    pub(crate) async fn search_model_versions(
        &self,
        caller: &Caller,
        filter: Option<&str>,
    ) -> Result<Value> {
        let compiled = filter::compile(Scope::ModelVersions, filter.unwrap_or_default(), 2)?;
        let conditions: String = compiled.sql.iter().map(|c| format!(" AND {c}")).collect();
        let sql = format!(
            "SELECT {VERSION_COLUMNS}, m.name AS model_name FROM mlflow_model_versions v \
             JOIN mlflow_registered_models m ON m.id = v.model_id \
             WHERE m.owner_id = $1{conditions} ORDER BY m.name, v.version DESC"
        );
        let rows = filter::bind_all(sqlx::query(&sql).bind(&caller.user_id), compiled.binds)
            .fetch_all(self.store.pool())
            .await?;
        let mut versions = Vec::with_capacity(rows.len());
        for row in &rows {
            let model: String = row.try_get("model_name")?;
            versions.push(self.version_json(row, &model, &caller.name).await?);
        }
        Ok(json!({ "model_versions": versions }))
    }

    /// Changes version `version`'s description, or its stage (archiving the others in that
    /// stage when asked).
    pub(crate) async fn update_model_version(
        &self,
        caller: &Caller,
        name: &str,
        version: &str,
        description: Option<&str>,
        stage: Option<(&str, bool)>,
    ) -> Result<Value> {
        self.model_version(caller, name, version).await?;
        let id = self.registered_model_id(caller, name).await?;
        let number: i64 = version.parse().unwrap_or_default();
        if let Some((stage, archive)) = stage {
            let stage = ["None", "Staging", "Production", "Archived"]
                .into_iter()
                .find(|s| s.eq_ignore_ascii_case(stage))
                .ok_or_else(|| invalid(format!("Invalid Model Version stage: {stage}. Value must be one of None, Staging, Production, Archived.")))?;
            if archive && matches!(stage, "Staging" | "Production") {
                sqlx::query("UPDATE mlflow_model_versions SET stage = 'Archived' WHERE model_id = $1 AND stage = $2 AND version != $3")
                    .bind(&id)
                    .bind(stage)
                    .bind(number)
                    .execute(self.store.pool())
                    .await?;
            }
            sqlx::query("UPDATE mlflow_model_versions SET stage = $1, updated_at = $2 WHERE model_id = $3 AND version = $4")
                .bind(stage)
                .bind(now_ms())
                .bind(&id)
                .bind(number)
                .execute(self.store.pool())
                .await?;
        }
        if let Some(description) = description {
            sqlx::query("UPDATE mlflow_model_versions SET description = $1, updated_at = $2 WHERE model_id = $3 AND version = $4")
                .bind(description)
                .bind(now_ms())
                .bind(&id)
                .bind(number)
                .execute(self.store.pool())
                .await?;
        }
        self.model_version(caller, name, version).await
    }

    /// Deletes version `version` (and the aliases pointing at it).
    pub(crate) async fn delete_model_version(
        &self,
        caller: &Caller,
        name: &str,
        version: &str,
    ) -> Result<()> {
        self.model_version(caller, name, version).await?;
        let id = self.registered_model_id(caller, name).await?;
        let number: i64 = version.parse().unwrap_or_default();
        for sql in [
            "DELETE FROM mlflow_model_aliases WHERE model_id = $1 AND version = $2",
            "DELETE FROM mlflow_model_versions WHERE model_id = $1 AND version = $2",
        ] {
            sqlx::query(sql)
                .bind(&id)
                .bind(number)
                .execute(self.store.pool())
                .await?;
        }
        Ok(())
    }

    /// Points `alias` of model `name` at `version` (or, with `None`, removes it).
    pub(crate) async fn set_alias(
        &self,
        caller: &Caller,
        name: &str,
        alias: &str,
        version: Option<&str>,
    ) -> Result<()> {
        let id = self.registered_model_id(caller, name).await?;
        check_length("Registered model alias", alias, 255)?;
        if alias.eq_ignore_ascii_case("latest")
            || (alias.starts_with('v') && alias[1..].parse::<u64>().is_ok())
        {
            return Err(invalid(format!(
                "'{alias}' is reserved and cannot be used as an alias"
            )));
        }
        match version {
            Some(version) => {
                self.model_version(caller, name, version).await?;
                sqlx::query(
                    "INSERT INTO mlflow_model_aliases (model_id, alias, version) VALUES ($1, $2, $3) \
                     ON CONFLICT (model_id, alias) DO UPDATE SET version = excluded.version",
                )
                .bind(&id)
                .bind(alias)
                .bind(version.parse::<i64>().unwrap_or_default())
                .execute(self.store.pool())
                .await?;
            }
            None => {
                sqlx::query("DELETE FROM mlflow_model_aliases WHERE model_id = $1 AND alias = $2")
                    .bind(&id)
                    .bind(alias)
                    .execute(self.store.pool())
                    .await?;
            }
        }
        Ok(())
    }

    /// The version `alias` of model `name` points at.
    pub(crate) async fn version_by_alias(
        &self,
        caller: &Caller,
        name: &str,
        alias: &str,
    ) -> Result<Value> {
        let id = self.registered_model_id(caller, name).await?;
        let row = sqlx::query(
            "SELECT version FROM mlflow_model_aliases WHERE model_id = $1 AND alias = $2",
        )
        .bind(&id)
        .bind(alias)
        .fetch_optional(self.store.pool())
        .await?
        .ok_or_else(|| not_found(format!("Registered model alias {alias} not found.")))?;
        let version: i64 = row.try_get("version")?;
        self.model_version(caller, name, &version.to_string()).await
    }

    /// Sets (or with `None`, removes) tag `key` of model `name` or of one of its versions.
    pub(crate) async fn registry_tag(
        &self,
        caller: &Caller,
        name: &str,
        version: Option<&str>,
        key: &str,
        value: Option<&str>,
    ) -> Result<()> {
        let id = self.registered_model_id(caller, name).await?;
        let (kind, owner) = match version {
            Some(v) => {
                self.model_version(caller, name, v).await?;
                (VERSION_TAG, format!("{id}/{v}"))
            }
            None => (MODEL_TAG, id),
        };
        match value {
            Some(value) => {
                self.set_entity_pairs(
                    kind,
                    &owner,
                    &[(key.to_string(), value.to_string())],
                    100_000,
                )
                .await
            }
            None => self.delete_entity_tag(kind, &owner, key).await,
        }
    }

    async fn registered_model_json(&self, row: &AnyRow, user: &str) -> Result<Value> {
        let id: String = row.try_get("id")?;
        let name: String = row.try_get("name")?;
        let latest = sqlx::query(&format!(
            "SELECT {VERSION_COLUMNS} FROM mlflow_model_versions v WHERE v.model_id = $1 AND v.version = \
             (SELECT MAX(w.version) FROM mlflow_model_versions w WHERE w.model_id = v.model_id AND w.stage = v.stage) ORDER BY v.version"
        ))
        .bind(&id)
        .fetch_all(self.store.pool())
        .await?;
        let mut latest_versions = Vec::new();
        for row in &latest {
            latest_versions.push(self.version_json(row, &name, user).await?);
        }
        Ok(json!({
            "name": name,
            "creation_timestamp": row.try_get::<i64, _>("created_at")?,
            "last_updated_timestamp": row.try_get::<i64, _>("updated_at")?,
            "user_id": user,
            "description": row.try_get::<String, _>("description")?,
            "latest_versions": latest_versions,
            "tags": self.entity_pairs(MODEL_TAG, &id).await?,
            "aliases": self.aliases(&id, None).await?,
        }))
    }

    async fn aliases(&self, model_id: &str, version: Option<i64>) -> Result<Vec<Value>> {
        let rows = sqlx::query(
            "SELECT alias, version FROM mlflow_model_aliases WHERE model_id = $1 ORDER BY alias",
        )
        .bind(model_id)
        .fetch_all(self.store.pool())
        .await?;
        rows.iter()
            .filter(|r| version.is_none_or(|v| r.try_get::<i64, _>("version").ok() == Some(v)))
            .map(|r| Ok(json!({"alias": r.try_get::<String, _>("alias")?, "version": r.try_get::<i64, _>("version")?.to_string()})))
            .collect()
    }

    async fn version_json(&self, row: &AnyRow, name: &str, user: &str) -> Result<Value> {
        let model_id: String = row.try_get("model_id")?;
        let version: i64 = row.try_get("version")?;
        let aliases: Vec<Value> = self
            .aliases(&model_id, Some(version))
            .await?
            .into_iter()
            .map(|a| a["alias"].clone())
            .collect();
        let mut out = json!({
            "name": name,
            "version": version.to_string(),
            "creation_timestamp": row.try_get::<i64, _>("created_at")?,
            "last_updated_timestamp": row.try_get::<i64, _>("updated_at")?,
            "user_id": user,
            "current_stage": row.try_get::<String, _>("stage")?,
            "description": row.try_get::<String, _>("description")?,
            "source": row.try_get::<String, _>("source")?,
            "run_id": row.try_get::<String, _>("run_id")?,
            "status": "READY",
            "tags": self.entity_pairs(VERSION_TAG, &format!("{model_id}/{version}")).await?,
            "aliases": aliases,
            "storage_location": row.try_get::<String, _>("storage_uri")?,
        });
        let logged: String = row.try_get("logged_model_id")?;
        if !logged.is_empty() {
            out["model_id"] = logged.into();
        }
        Ok(out)
    }
}

const VERSION_COLUMNS: &str = "v.model_id, v.version, v.source, v.run_id, v.logged_model_id, v.storage_uri, v.description, v.stage, v.created_at, v.updated_at";
