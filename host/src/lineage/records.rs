//! What is stored about lineage, and every query on it. The runs' pinned project and commit
//! are columns of the workflow domain's `runs` table, read here (never written) to show what
//! produced a model.

use crate::error::Result;
use crate::store::{Store, now_ms, time};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row as _;
use sqlx::any::AnyRow;
use utoipa::ToSchema;

/// What a node's call touched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Kind {
    /// A dataset version it read.
    Dataset,
    /// A dataset version it wrote.
    DatasetWritten,
    /// An artifact it stored.
    Artifact,
    /// A model version it recorded.
    Model,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Dataset => "dataset",
            Kind::DatasetWritten => "dataset_written",
            Kind::Artifact => "artifact",
            Kind::Model => "model",
        }
    }

    fn parse(text: &str) -> Self {
        match text {
            "dataset" => Kind::Dataset,
            "dataset_written" => Kind::DatasetWritten,
            "model" => Kind::Model,
            _ => Kind::Artifact,
        }
    }
}

/// One thing a run's node read or produced.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct Entry {
    pub(crate) run_id: String,
    pub(crate) node_id: String,
    pub(crate) kind: Kind,
    /// The dataset's id, the artifact's content key or the model's id.
    pub(crate) id: String,
    /// The dataset's or model's name, the artifact's name as the node gave it (absent for a
    /// dataset or model since deleted).
    pub(crate) name: Option<String>,
    /// The dataset's or the model's version number; absent for an artifact.
    pub(crate) version: Option<i64>,
    /// When the node first did it.
    pub(crate) at: DateTime<Utc>,
}

/// What a run ran on: its project and that project's commit when it started.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct RunCode {
    pub(crate) run_id: String,
    pub(crate) workflow_id: String,
    pub(crate) project_id: Option<String>,
    pub(crate) git_commit: Option<String>,
}

/// Records that `node_id` of run `run_id` touched `id` (the first time counts).
pub(super) async fn insert(
    store: &Store,
    run_id: &str,
    node_id: &str,
    kind: Kind,
    id: &str,
    version: i64,
    name: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO run_lineage (run_id, node_id, kind, ref_id, version, name, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (run_id, node_id, kind, ref_id, version) DO NOTHING",
    )
    .bind(run_id)
    .bind(node_id)
    .bind(kind.as_str())
    .bind(id)
    .bind(version)
    .bind(name)
    .bind(now_ms())
    .execute(store.pool())
    .await?;
    Ok(())
}

/// Entries with the names of their datasets and models.
const ENTRIES: &str = "SELECT l.run_id, l.node_id, l.kind, l.ref_id, l.version, l.name, \
     l.created_at, d.name AS dataset_name, m.name AS model_name FROM run_lineage l \
     LEFT JOIN datasets d ON l.kind IN ('dataset', 'dataset_written') AND d.id = l.ref_id \
     LEFT JOIN mlflow_registered_models m ON l.kind = 'model' AND m.id = l.ref_id";

fn entry(row: &AnyRow) -> Result<Entry> {
    let kind = Kind::parse(&row.try_get::<String, _>("kind")?);
    let name = match kind {
        Kind::Dataset | Kind::DatasetWritten => row.try_get("dataset_name")?,
        Kind::Model => row.try_get("model_name")?,
        Kind::Artifact => Some(row.try_get("name")?),
    };
    Ok(Entry {
        run_id: row.try_get("run_id")?,
        node_id: row.try_get("node_id")?,
        kind,
        id: row.try_get("ref_id")?,
        name,
        version: (kind != Kind::Artifact)
            .then(|| row.try_get("version"))
            .transpose()?,
        at: time(row.try_get("created_at")?),
    })
}

/// What run `run_id` read and produced, in the order it first did.
pub(super) async fn of_run(store: &Store, run_id: &str) -> Result<Vec<Entry>> {
    sqlx::query(&format!(
        "{ENTRIES} WHERE l.run_id = $1 ORDER BY l.created_at, l.node_id, l.kind, l.ref_id"
    ))
    .bind(run_id)
    .fetch_all(store.pool())
    .await?
    .iter()
    .map(entry)
    .collect()
}

/// Every run's use of `id` as `kind` (a dataset's reads or writes, a model's versions),
/// oldest first.
pub(super) async fn of_ref(store: &Store, kind: Kind, id: &str) -> Result<Vec<Entry>> {
    sqlx::query(&format!(
        "{ENTRIES} WHERE l.kind = $1 AND l.ref_id = $2 ORDER BY l.created_at, l.run_id"
    ))
    .bind(kind.as_str())
    .bind(id)
    .fetch_all(store.pool())
    .await?
    .iter()
    .map(entry)
    .collect()
}

/// The model versions recorded by runs that read dataset `id`.
pub(super) async fn models_from_dataset(store: &Store, id: &str) -> Result<Vec<Entry>> {
    sqlx::query(&format!(
        "{ENTRIES} WHERE l.kind = 'model' AND l.run_id IN \
         (SELECT run_id FROM run_lineage WHERE kind = 'dataset' AND ref_id = $1) \
         ORDER BY l.created_at, l.run_id"
    ))
    .bind(id)
    .fetch_all(store.pool())
    .await?
    .iter()
    .map(entry)
    .collect()
}

/// Which runs a query is about: one run, or every run that recorded a version of a model.
#[derive(Debug, Clone, Copy)]
pub(super) enum Runs<'a> {
    One(&'a str),
    OfModel(&'a str),
}

impl<'a> Runs<'a> {
    /// The condition on `column` (a run id) selecting these runs, with `$1` bound to
    /// [`Runs::id`]: one query however many runs there are.
    fn condition(self, column: &str) -> String {
        match self {
            Runs::One(_) => format!("{column} = $1"),
            Runs::OfModel(_) => format!(
                "{column} IN (SELECT run_id FROM run_lineage WHERE kind = 'model' AND ref_id = $1)"
            ),
        }
    }

    fn id(self) -> &'a str {
        match self {
            Runs::One(id) | Runs::OfModel(id) => id,
        }
    }
}

/// The dataset versions `runs` read, run by run (by id), each in the order it first read them.
pub(super) async fn datasets_of_runs(store: &Store, runs: Runs<'_>) -> Result<Vec<Entry>> {
    sqlx::query(&format!(
        "{ENTRIES} WHERE l.kind = 'dataset' AND {} \
         ORDER BY l.run_id, l.created_at, l.node_id, l.kind, l.ref_id",
        runs.condition("l.run_id")
    ))
    .bind(runs.id())
    .fetch_all(store.pool())
    .await?
    .iter()
    .map(entry)
    .collect()
}

/// The project and commit of each of `runs` (those that still exist), by run id.
pub(super) async fn code_of_runs(store: &Store, runs: Runs<'_>) -> Result<Vec<RunCode>> {
    sqlx::query(&format!(
        "SELECT id, workflow_id, project_id, (SELECT commit_id FROM run_commits c \
         WHERE c.run_id = runs.id AND c.project_id = runs.project_id) AS git_commit \
         FROM runs WHERE {} ORDER BY id",
        runs.condition("id")
    ))
    .bind(runs.id())
    .fetch_all(store.pool())
    .await?
    .iter()
    .map(|row| {
        Ok(RunCode {
            run_id: row.try_get("id")?,
            workflow_id: row.try_get("workflow_id")?,
            project_id: row.try_get("project_id")?,
            git_commit: row.try_get("git_commit")?,
        })
    })
    .collect()
}
