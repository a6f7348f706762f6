//! Lineage: which code, data and models every workflow run used and produced. A run may name a
//! project of its owner, pinned to the project's commit when the run starts; its nodes read
//! and write dataset versions and store artifacts and model versions through the `artifacts`
//! capability, and the host records each such call here as it serves it, so lineage is what
//! the nodes did, never what a plugin says it did. `GET /api/v1/runs/{id}/lineage`,
//! `/datasets/{id}/lineage` and `/models/{id}/lineage` read it back, for owners and admins.
//!
//! Not here: the data, the models and the repositories themselves (the dataset, mlflow and git
//! domains, which this module calls), nor running nodes (the registry's call services call
//! this module).

mod records;
pub(crate) mod routes;

use crate::auth::Caller;
use crate::dataset::Datasets;
use crate::error::{Code, Error, Result};
use crate::git::Git;
use crate::job::JobScope;
use crate::mlflow::Tracking;
use crate::store::Store;
use crate::workspace::Projects;
use crate::workspace::sessions::owner as as_owner;
use bytes::Bytes;
use records::{Entry, Kind, RunCode, Runs};
use serde::Serialize;
use std::sync::Arc;
use utoipa::ToSchema;

/// The most a node reads of one dataset file at once (the whole file crosses into the guest).
const MAX_NODE_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// What a run ran on, read and produced.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RunLineage {
    pub(crate) run_id: String,
    pub(crate) workflow_id: String,
    /// The project the run named, and its commit when the run started (absent when the run
    /// named none, or the project had no commit yet).
    pub(crate) project_id: Option<String>,
    pub(crate) git_commit: Option<String>,
    /// Dataset versions the run's nodes read.
    pub(crate) datasets: Vec<Entry>,
    /// Dataset versions they wrote (of the run's project).
    pub(crate) datasets_written: Vec<Entry>,
    /// Artifacts they stored.
    pub(crate) artifacts: Vec<Entry>,
    /// Model versions they recorded.
    pub(crate) models: Vec<Entry>,
}

/// Which runs used a dataset, and the models that came from them.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DatasetLineage {
    pub(crate) dataset_id: String,
    /// Each run's read of one of its versions.
    pub(crate) runs: Vec<Entry>,
    /// The runs that wrote its versions (other versions come from a push or a recording,
    /// whose commit the version shows).
    pub(crate) writers: Vec<Entry>,
    /// Model versions recorded by runs that read it.
    pub(crate) models: Vec<Entry>,
}

/// The code and data behind each version of a model recorded by a workflow run.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ModelLineage {
    pub(crate) model_id: String,
    /// The versions workflow runs recorded (those the MLflow client made have no lineage).
    pub(crate) versions: Vec<Entry>,
    /// The runs that recorded them: project and commit.
    pub(crate) code: Vec<RunCode>,
    /// The dataset versions those runs read.
    pub(crate) datasets: Vec<Entry>,
}

/// The lineage service; cheap to clone.
#[derive(Clone)]
pub(crate) struct Lineage {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    projects: Projects,
    git: Git,
    datasets: Datasets,
    tracking: Tracking,
}

/// A run as its lineage names it; the workflow engine owns runs and says who may see one.
pub(crate) struct RunRef {
    pub(crate) id: String,
    pub(crate) workflow_id: String,
    pub(crate) project_id: Option<String>,
    pub(crate) git_commit: Option<String>,
}

impl Lineage {
    pub(crate) fn new(
        store: Store,
        projects: Projects,
        git: Git,
        datasets: Datasets,
        tracking: Tracking,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                projects,
                git,
                datasets,
                tracking,
            }),
        }
    }

    /// The project of `owner` that `name` names (id or name, as a container job names one)
    /// and the commit its `HEAD` is at: what a run naming it is pinned to.
    pub(crate) async fn pin(&self, owner: &str, name: &str) -> Result<(String, Option<String>)> {
        let project = self.inner.projects.owned(owner, name).await?;
        let commit = self
            .inner
            .git
            .head_commit(&as_owner(owner), &project.id)
            .await?;
        Ok((project.id, commit))
    }

    async fn record(
        &self,
        scope: Option<&JobScope>,
        kind: Kind,
        id: &str,
        version: i64,
        name: &str,
    ) -> Result<()> {
        match scope {
            Some(scope) => {
                records::insert(
                    &self.inner.store,
                    &scope.run_id,
                    &scope.node_id,
                    kind,
                    id,
                    version,
                    name,
                )
                .await
            }
            None => Ok(()),
        }
    }

    /// Version `version` (the newest when `None`) of `owner`'s dataset `dataset` as a node
    /// sees it, recorded as read by `scope`'s run.
    pub(crate) async fn read_dataset(
        &self,
        owner: &str,
        scope: Option<&JobScope>,
        dataset: &str,
        version: Option<u32>,
    ) -> Result<serde_json::Value> {
        let (dataset, version, files) = self
            .inner
            .datasets
            .pick(&as_owner(owner), dataset, version.map(i64::from))
            .await?;
        self.record(scope, Kind::Dataset, &dataset.id, version.number, "")
            .await?;
        Ok(serde_json::json!({
            "dataset_id": dataset.id,
            "name": dataset.name,
            "project_id": dataset.project_id,
            "version": version.number,
            "oid": version.oid,
            "git_commit": version.git_commit,
            "files": files,
        }))
    }

    /// File `path` of version `version` of `owner`'s dataset `dataset`, recorded as read by
    /// `scope`'s run.
    pub(crate) async fn read_dataset_file(
        &self,
        owner: &str,
        scope: Option<&JobScope>,
        dataset: &str,
        version: u32,
        path: &str,
    ) -> Result<Bytes> {
        let (dataset, content) = self
            .inner
            .datasets
            .file(
                &as_owner(owner),
                dataset,
                version.into(),
                path,
                MAX_NODE_FILE_BYTES,
            )
            .await?;
        self.record(scope, Kind::Dataset, &dataset.id, version.into(), "")
            .await?;
        Ok(content)
    }

    /// Records that `scope`'s run stored the artifact `key` under `name`.
    pub(crate) async fn stored_artifact(
        &self,
        scope: Option<&JobScope>,
        key: &str,
        name: &str,
    ) -> Result<()> {
        self.record(scope, Kind::Artifact, key, 0, name).await
    }

    /// Records `content` (artifact `key`) as the next version of `owner`'s model `name`,
    /// produced by `scope`'s run; returns the model's id and the version's number.
    pub(crate) async fn record_model(
        &self,
        owner: &str,
        scope: Option<&JobScope>,
        name: &str,
        key: &str,
        content: Bytes,
    ) -> Result<(String, i64)> {
        let description = match scope {
            Some(s) => format!(
                "artifact {key} of node '{}' of workflow run {}",
                s.node_id, s.run_id
            ),
            None => format!("artifact {key}"),
        };
        let (model, version) = self
            .inner
            .tracking
            .record_file_version(&as_owner(owner), name, description, key, content)
            .await?;
        self.record(scope, Kind::Model, &model, version, "").await?;
        Ok((model, version))
    }

    /// Records `files` (each a path in the dataset and the file holding its content) as the
    /// next version of dataset `name` of the project `scope`'s run names, at the commit it was
    /// pinned to, and that the run wrote it; returns the dataset's id and the version's number.
    pub(crate) async fn write_dataset(
        &self,
        owner: &str,
        scope: Option<&JobScope>,
        name: &str,
        files: Vec<(String, std::path::PathBuf)>,
    ) -> Result<(String, i64)> {
        let no_project = || {
            Error::new(
                Code::DatasetNoProject,
                format!("dataset '{name}' would be written to the run's project, and this run names none"),
            )
            .hint("execute the workflow with {\"project\": \"<name or id>\"}; a node run directly writes no dataset")
        };
        let scope = scope.ok_or_else(no_project)?;
        let code = records::code_of_runs(&self.inner.store, Runs::One(&scope.run_id))
            .await?
            .pop();
        let Some(RunCode {
            project_id: Some(project),
            git_commit,
            ..
        }) = code
        else {
            return Err(no_project());
        };
        let recorded = self
            .inner
            .datasets
            .record_produced(&as_owner(owner), &project, git_commit, name, files)
            .await?;
        let (dataset, version) = (recorded.dataset.id, recorded.version.number);
        self.record(Some(scope), Kind::DatasetWritten, &dataset, version, "")
            .await?;
        Ok((dataset, version))
    }

    /// The lineage of `run` (already checked visible to its caller).
    pub(crate) async fn of_run(&self, run: RunRef) -> Result<RunLineage> {
        let entries = records::of_run(&self.inner.store, &run.id).await?;
        let of = |kind: Kind| entries.iter().filter(|e| e.kind == kind).cloned().collect();
        Ok(RunLineage {
            datasets: of(Kind::Dataset),
            datasets_written: of(Kind::DatasetWritten),
            artifacts: of(Kind::Artifact),
            models: of(Kind::Model),
            run_id: run.id,
            workflow_id: run.workflow_id,
            project_id: run.project_id,
            git_commit: run.git_commit,
        })
    }

    /// The lineage of dataset `id`, if `caller` may see it.
    pub(crate) async fn of_dataset(&self, caller: &Caller, id: &str) -> Result<DatasetLineage> {
        let dataset_id = self.inner.datasets.get(caller, id).await?.id;
        Ok(DatasetLineage {
            runs: records::of_ref(&self.inner.store, Kind::Dataset, &dataset_id).await?,
            writers: records::of_ref(&self.inner.store, Kind::DatasetWritten, &dataset_id).await?,
            models: records::models_from_dataset(&self.inner.store, &dataset_id).await?,
            dataset_id,
        })
    }

    /// The lineage of model `id`, if `caller` may see it.
    pub(crate) async fn of_model(&self, caller: &Caller, id: &str) -> Result<ModelLineage> {
        self.inner
            .tracking
            .model_detail(caller, id, Some(&[]))
            .await?;
        let runs = Runs::OfModel(id);
        Ok(ModelLineage {
            model_id: id.to_string(),
            code: records::code_of_runs(&self.inner.store, runs).await?,
            datasets: records::datasets_of_runs(&self.inner.store, runs).await?,
            versions: records::of_ref(&self.inner.store, Kind::Model, id).await?,
        })
    }
}
