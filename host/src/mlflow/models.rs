//! The seed's model versions (`/api/v1/models`): a view of the registry the MLflow client
//! writes, in the seed's shape. A model is a registered model; each of its versions shows
//! the params and latest metrics of its source run (and its logged model's params), the
//! files below its storage location, and its timestamps. Recording a version through this
//! API goes through MLflow's own records: a run holds the given params and metrics (the
//! source run, or a new one in the caller's "Default" experiment), and the registry makes
//! the next version from it, so the MLflow client sees it too.

use super::runs::{Batch, Metric, NewRun};
use super::service::{ARTIFACT_ROOT, Tracking, not_found};
use super::wire::invalid;
use crate::api::page::Page;
use crate::auth::Caller;
use crate::error::{Code, Error, Result};
use crate::store::{now_ms, time};
use chrono::{DateTime, Utc};
use futures::TryStreamExt as _;
use serde::{Deserialize, Serialize};
use sqlx::Row as _;
use sqlx::any::AnyRow;
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// At most this many files are listed per version (the rest are counted, not named).
const MAX_LISTED_FILES: usize = 1000;

/// Where a version made without a source run keeps its files within the new run.
const DEFAULT_ARTIFACT_PATH: &str = "model";

/// A model: a registered model of the MLflow registry.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Model {
    id: String,
    name: String,
    description: String,
    owner_id: String,
    /// The newest version's number; absent while the model has none.
    latest_version: Option<i64>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// A model with its versions, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ModelDetail {
    #[serde(flatten)]
    model: Model,
    pub(super) versions: Vec<ModelVersion>,
}

/// One version of a model: the seed's ModelVersion (id, params, metrics, artifacts,
/// timestamp) and where it came from.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct ModelVersion {
    /// The version's id within its model: its number, as text.
    pub(super) id: String,
    pub(super) version: i64,
    pub(super) model_id: String,
    /// The source run's params (for a version registered from a logged model: that
    /// model's source run), with the logged model's params over them.
    pub(super) params: BTreeMap<String, String>,
    /// The source run's latest value of each metric; null for NaN.
    pub(super) metrics: BTreeMap<String, Option<f64>>,
    /// The files below the version's storage location, relative to it, by path (at most
    /// 1000; `artifacts_unlisted` counts the rest).
    artifacts: Vec<String>,
    artifacts_unlisted: usize,
    /// When the version was made.
    timestamp: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    /// What it was made from, as MLflow names it (`runs:/<run>/<path>`, `models:/<id>`).
    source: String,
    source_run_id: Option<String>,
    logged_model_id: Option<String>,
    /// Where its files are (`mlflow-artifacts:/...`).
    storage_location: String,
    stage: String,
    aliases: Vec<String>,
    description: String,
}

/// A new version of model `name` (made when it is new).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewModelVersion {
    /// The model's name (the caller's registered model; made if it does not exist).
    name: String,
    /// The run whose artifacts, params and metrics the version takes. Without one, a run
    /// is made (in `experiment_id`, or the caller's "Default" experiment) to hold the given
    /// params and metrics and the files uploaded to the version afterwards.
    source_run_id: Option<String>,
    /// The folder within the run's artifacts that holds the model (default: all of a given
    /// source run's artifacts; `model` in a new run).
    artifact_path: Option<String>,
    /// Where the new run goes when there is no source run.
    experiment_id: Option<String>,
    /// Params logged to the run (values as text; a run's params cannot change once logged).
    #[serde(default)]
    #[schema(value_type = Object)]
    params: BTreeMap<String, serde_json::Value>,
    /// Metrics logged to the run (step 0, now).
    #[serde(default)]
    metrics: BTreeMap<String, f64>,
    description: Option<String>,
}

impl Tracking {
    /// The models `caller` may see (an admin: everyone's), by id.
    pub(crate) async fn models_page(
        &self,
        caller: &Caller,
        cursor: Option<&str>,
        limit: i64,
    ) -> Result<Page<Model>> {
        let owner = if caller.is_admin() {
            ""
        } else {
            &caller.user_id
        };
        let rows = sqlx::query(&format!(
            "SELECT {MODEL_COLUMNS} FROM mlflow_registered_models m WHERE ($1 = '' OR m.owner_id = $1) \
             AND m.id > $2 ORDER BY m.id LIMIT $3"
        ))
        .bind(owner)
        .bind(cursor.unwrap_or_default())
        .bind(limit)
        .fetch_all(self.store.pool())
        .await?;
        let items = rows.iter().map(model).collect::<Result<Vec<_>>>()?;
        let next_cursor = (items.len() as i64 == limit)
            .then(|| items.last().map(|m| m.id.clone()))
            .flatten();
        Ok(Page { items, next_cursor })
    }

    /// Model `id` with its versions (all of them, or those numbered in `only`).
    pub(crate) async fn model_detail(
        &self,
        caller: &Caller,
        id: &str,
        only: Option<&[i64]>,
    ) -> Result<ModelDetail> {
        let row = sqlx::query(&format!(
            "SELECT {MODEL_COLUMNS} FROM mlflow_registered_models m WHERE m.id = $1"
        ))
        .bind(id)
        .fetch_optional(self.store.pool())
        .await?
        .ok_or_else(|| not_found(format!("model '{id}' not found")))?;
        Self::check_owner(
            caller,
            &row.try_get::<String, _>("owner_id")?,
            &format!("Model {id}"),
        )?;
        let rows = sqlx::query(&format!(
            "SELECT {VERSION_COLUMNS} FROM mlflow_model_versions v WHERE v.model_id = $1 ORDER BY v.version DESC"
        ))
        .bind(id)
        .fetch_all(self.store.pool())
        .await?;
        let mut versions = Vec::new();
        for row in &rows {
            let number: i64 = row.try_get("version")?;
            if only.is_none_or(|o| o.contains(&number)) {
                versions.push(self.version(row).await?);
            }
        }
        if let Some(missing) = only.and_then(|o| {
            o.iter()
                .find(|n| !versions.iter().any(|v| v.version == **n))
        }) {
            return Err(not_found(format!("model '{id}' has no version {missing}")));
        }
        Ok(ModelDetail {
            model: model(&row)?,
            versions,
        })
    }

    /// Records a new version of the caller's model `new.name`: its params and metrics
    /// logged to its run, registered from that run's artifacts.
    pub(crate) async fn record_version(
        &self,
        caller: &Caller,
        new: NewModelVersion,
    ) -> Result<ModelVersion> {
        let name = new.name.trim();
        if name.is_empty() {
            return Err(field("name", "must not be empty"));
        }
        let path = match new.artifact_path.as_deref() {
            Some(p) => Some(checked_path(p).ok_or_else(|| {
                field(
                    "artifact_path",
                    "a relative path without '.' or '..' segments",
                )
            })?),
            None => None,
        };
        if let Some((key, _)) = new.metrics.iter().find(|(_, v)| !v.is_finite()) {
            return Err(field(&format!("metrics.{key}"), "must be a finite number"));
        }
        let batch = Batch {
            params: new
                .params
                .iter()
                .map(|(k, v)| (k.clone(), param_text(v)))
                .collect(),
            metrics: new
                .metrics
                .iter()
                .map(|(k, v)| Metric {
                    key: k.clone(),
                    value: *v,
                    timestamp: now_ms(),
                    step: 0,
                })
                .collect(),
            tags: Vec::new(),
        };
        let (run, path) = match new.source_run_id.as_deref().filter(|r| !r.is_empty()) {
            Some(run) => {
                self.run_access(caller, run).await?;
                (run.to_string(), path.unwrap_or_default())
            }
            None => (
                self.holding_run(caller, new.experiment_id.as_deref(), name)
                    .await?,
                path.unwrap_or_else(|| DEFAULT_ARTIFACT_PATH.to_string()),
            ),
        };
        if !batch.params.is_empty() || !batch.metrics.is_empty() {
            self.log_batch(caller, &run, batch).await?;
        }
        let model_id = match self.create_registered_model(caller, name, None, &[]).await {
            Ok(_) => self.registered_model_id(caller, name).await?,
            Err(e) if e.code == Code::ModelExists => self.registered_model_id(caller, name).await?,
            Err(e) => return Err(e),
        };
        let source = if path.is_empty() {
            format!("runs:/{run}")
        } else {
            format!("runs:/{run}/{path}")
        };
        let made = super::registry::NewVersion {
            source,
            run_id: Some(run),
            description: new.description,
            ..Default::default()
        };
        let version = self.create_model_version(caller, name, made).await?;
        let number: i64 = version["version"]
            .as_str()
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| Error::internal("the registry made a version without a number"))?;
        let detail = self
            .model_detail(caller, &model_id, Some(&[number]))
            .await?;
        detail
            .versions
            .into_iter()
            .next()
            .ok_or_else(|| Error::internal("the new version vanished"))
    }

    /// Records the next version of the caller's model `name` holding `content` as its file
    /// `file` (a workflow node's artifact; `description` says where it came from); returns
    /// the model's id and the version's number.
    pub(crate) async fn record_file_version(
        &self,
        caller: &Caller,
        name: &str,
        description: String,
        file: &str,
        content: bytes::Bytes,
    ) -> Result<(String, i64)> {
        let new = NewModelVersion {
            name: name.to_string(),
            source_run_id: None,
            artifact_path: None,
            experiment_id: None,
            params: BTreeMap::new(),
            metrics: BTreeMap::new(),
            description: Some(description),
        };
        let version = self.record_version(caller, new).await?;
        let folder = self
            .version_folder(caller, &version.model_id, version.version)
            .await?;
        let body = futures::stream::iter([Ok::<_, std::convert::Infallible>(content)]);
        self.upload_artifact(caller, &format!("{folder}/{file}"), body)
            .await?;
        Ok((version.model_id, version.version))
    }

    /// A finished run made to hold a version recorded without a source run.
    async fn holding_run(
        &self,
        caller: &Caller,
        experiment: Option<&str>,
        name: &str,
    ) -> Result<String> {
        let experiment = match experiment.filter(|e| !e.is_empty()) {
            Some(id) => id.to_string(),
            None => self.default_experiment(caller).await?,
        };
        let run = self
            .create_run(
                caller,
                NewRun {
                    experiment_id: experiment,
                    run_name: Some(format!("model {name}")),
                    ..Default::default()
                },
            )
            .await?;
        let id = run["info"]["run_id"]
            .as_str()
            .ok_or_else(|| Error::internal("the new run has no id"))?
            .to_string();
        self.update_run(caller, &id, Some("FINISHED"), Some(now_ms()), None)
            .await?;
        Ok(id)
    }

    /// The caller's experiment "Default", made on first use.
    async fn default_experiment(&self, caller: &Caller) -> Result<String> {
        match self.create_experiment(caller, "Default", &[]).await {
            Ok(id) => Ok(id),
            Err(e) if e.code == Code::ModelExists => {
                let found = self.experiment_by_name(caller, "Default").await?;
                Ok(found["experiment_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string())
            }
            Err(e) => Err(e),
        }
    }

    /// The storage path (below the artifact proxy's root) of version `version` of model
    /// `id`, after checking `caller` may reach it.
    pub(crate) async fn version_folder(
        &self,
        caller: &Caller,
        id: &str,
        version: i64,
    ) -> Result<String> {
        let detail = self.model_detail(caller, id, Some(&[version])).await?;
        let location = &detail.versions[0].storage_location;
        location
            .strip_prefix("mlflow-artifacts:/")
            .map(|p| p.trim_matches('/').to_string())
            .ok_or_else(|| {
                Error::new(
                    Code::ModelInvalidState,
                    format!("version {version}'s files are not in Weft's storage ({location})"),
                )
            })
    }

    /// The seed's view of one version row (selected with `VERSION_COLUMNS`).
    async fn version(&self, row: &AnyRow) -> Result<ModelVersion> {
        let model_id: String = row.try_get("model_id")?;
        let version: i64 = row.try_get("version")?;
        let logged: String = row.try_get("logged_model_id")?;
        let pool = self.store.pool();
        let mut run: String = row.try_get("run_id")?;
        if run.is_empty() && !logged.is_empty() {
            // A version registered from a logged model (MLflow 3) names no run; the logged
            // model's source run holds its metrics.
            let source: Option<(String,)> =
                sqlx::query_as("SELECT source_run_id FROM mlflow_logged_models WHERE id = $1")
                    .bind(&logged)
                    .fetch_optional(pool)
                    .await?;
            run = source.map(|(r,)| r).unwrap_or_default();
        }
        let mut params = BTreeMap::new();
        let mut metrics = BTreeMap::new();
        for (sql, owner) in [
            (
                "SELECT key, value FROM mlflow_params WHERE run_id = $1",
                &run,
            ),
            (
                "SELECT key, value FROM mlflow_entity_tags WHERE kind = 'logged_model_param' AND owner = $1",
                &logged,
            ),
        ] {
            for r in sqlx::query(sql).bind(owner).fetch_all(pool).await? {
                params.insert(r.try_get("key")?, r.try_get("value")?);
            }
        }
        for r in
            sqlx::query("SELECT key, value, is_nan FROM mlflow_latest_metrics WHERE run_id = $1")
                .bind(&run)
                .fetch_all(pool)
                .await?
        {
            let value = (r.try_get::<i64, _>("is_nan")? == 0)
                .then(|| r.try_get("value"))
                .transpose()?;
            metrics.insert(r.try_get("key")?, value);
        }
        let aliases = sqlx::query(
            "SELECT alias FROM mlflow_model_aliases WHERE model_id = $1 AND version = $2 ORDER BY alias",
        )
        .bind(&model_id)
        .bind(version)
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| r.try_get("alias"))
        .collect::<Result<Vec<String>, _>>()?;
        let storage_location: String = row.try_get("storage_uri")?;
        let (artifacts, artifacts_unlisted) = self.files_below(&storage_location).await?;
        Ok(ModelVersion {
            id: version.to_string(),
            version,
            model_id,
            params,
            metrics,
            artifacts,
            artifacts_unlisted,
            timestamp: time(row.try_get("created_at")?),
            updated_at: time(row.try_get("updated_at")?),
            source: row.try_get("source")?,
            source_run_id: (!run.is_empty()).then_some(run),
            logged_model_id: (!logged.is_empty()).then_some(logged),
            storage_location,
            stage: row.try_get("stage")?,
            aliases,
            description: row.try_get("description")?,
        })
    }

    /// The files below `location` (when it is in Weft's storage), relative to it: the first
    /// `MAX_LISTED_FILES` by path, and how many more there are.
    async fn files_below(&self, location: &str) -> Result<(Vec<String>, usize)> {
        let Some(folder) = location.strip_prefix("mlflow-artifacts:/") else {
            return Ok((Vec::new(), 0));
        };
        let prefix = format!("{ARTIFACT_ROOT}{}/", folder.trim_matches('/'));
        let mut lister = match self.files.lister_with(&prefix).recursive(true).await {
            Ok(lister) => lister,
            Err(e) if e.kind() == opendal::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
            Err(e) => return Err(super::artifacts::storage_error(e)),
        };
        let mut files = Vec::new();
        let mut unlisted = 0;
        while let Some(entry) = lister
            .try_next()
            .await
            .map_err(super::artifacts::storage_error)?
        {
            if entry.metadata().mode() != opendal::EntryMode::FILE {
                continue;
            }
            if files.len() < MAX_LISTED_FILES {
                files.push(entry.path().trim_start_matches(&prefix).to_string());
            } else {
                unlisted += 1;
            }
        }
        files.sort();
        Ok((files, unlisted))
    }
}

const MODEL_COLUMNS: &str = "m.id, m.name, m.description, m.owner_id, m.created_at, m.updated_at, \
     (SELECT MAX(v.version) FROM mlflow_model_versions v WHERE v.model_id = m.id) AS latest";

const VERSION_COLUMNS: &str = "v.model_id, v.version, v.source, v.run_id, v.logged_model_id, \
     v.storage_uri, v.description, v.stage, v.created_at, v.updated_at";

fn model(row: &AnyRow) -> Result<Model> {
    Ok(Model {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        owner_id: row.try_get("owner_id")?,
        latest_version: row.try_get("latest")?,
        created_at: time(row.try_get("created_at")?),
        updated_at: time(row.try_get("updated_at")?),
    })
}

/// A param value as text: strings as they are, anything else as its JSON (MLflow's
/// client stringifies values the same way).
fn param_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `path` without surrounding slashes, when every segment is a plain name.
fn checked_path(path: &str) -> Option<String> {
    let path = path.trim_matches('/');
    let plain = !path.contains('\\')
        && path
            .split('/')
            .all(|s| !s.is_empty() && s != "." && s != "..");
    (path.is_empty() || plain).then(|| path.to_string())
}

/// A request field that failed validation, in the models' code range.
pub(super) fn field(name: &str, reason: &str) -> Error {
    invalid(format!("invalid field '{name}': {reason}"))
        .details(serde_json::json!({ "field": name }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_paths_are_plain_relative_names() {
        assert_eq!(checked_path("/model/"), Some("model".into()));
        assert_eq!(checked_path(""), Some(String::new()));
        assert_eq!(checked_path("a/../b"), None);
        assert_eq!(checked_path("a//b"), None);
    }

    #[test]
    fn param_values_become_text() {
        assert_eq!(param_text(&serde_json::json!("0.01")), "0.01");
        assert_eq!(param_text(&serde_json::json!(100)), "100");
        assert_eq!(param_text(&serde_json::json!(true)), "true");
    }
}
