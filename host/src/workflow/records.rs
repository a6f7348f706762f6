//! What is stored about workflows and runs, as the API shows it, and the queries that keep it.

use super::attempts::{self, AttemptStatus};
use super::encoding::{self, PortValues};
use super::model::Definition;
use super::values::{self, Held, Stored};
use crate::error::{Error, Result};
use crate::store::{Store, now_ms, text_enum, time};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::Row as _;
use sqlx::any::AnyRow;
use std::collections::BTreeMap;
use utoipa::ToSchema;
use weft_runtime::Value;

/// A stored workflow at its current version.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Workflow {
    pub id: String,
    pub owner_id: String,
    pub name: String,
    /// Starts at 1; every PUT makes the next one.
    pub version: i64,
    pub definition: Definition,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

/// Where one node of a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NodeStatus {
    Pending,
    Running,
    /// Failed an attempt and waits for the next one.
    Retrying,
    Succeeded,
    Failed,
    Skipped,
    Cancelled,
}

text_enum!(RunStatus { Queued = "queued", Running = "running", Succeeded = "succeeded", Failed = "failed", Cancelled = "cancelled" });
text_enum!(NodeStatus { Pending = "pending", Running = "running", Retrying = "retrying", Succeeded = "succeeded", Failed = "failed", Skipped = "skipped", Cancelled = "cancelled" });

impl RunStatus {
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            RunStatus::Succeeded | RunStatus::Failed | RunStatus::Cancelled
        )
    }
}

impl NodeStatus {
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            NodeStatus::Succeeded
                | NodeStatus::Failed
                | NodeStatus::Skipped
                | NodeStatus::Cancelled
        )
    }
}

/// Why a node attempt failed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct NodeFailure {
    /// `node-error`, `timeout`, `cpu-limit`, `memory-limit`, `panic`, `trap`, `bad-inputs`,
    /// `bad-outputs`, `capacity`, `unavailable` (the plugin is gone), `upstream` (for skips),
    /// `output-limit` (outputs over a cap, with `code` 40204).
    pub kind: String,
    pub message: String,
    pub retryable: bool,
    /// The error code of a failure that has one of its own: `40204` (`output-limit`) for
    /// outputs over `[workflows] max_output_bytes` or `max_run_output_bytes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

/// A run without its nodes.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RunSummary {
    pub id: String,
    pub workflow_id: String,
    pub workflow_version: i64,
    pub owner_id: String,
    pub status: RunStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// The project the run named, and the commit it was at when the run started (absent
    /// while the project had none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub git_commit: Option<String>,
}

/// One node of a run.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NodeRecord {
    pub id: String,
    /// The plugin as pinned for the run: `name@version`.
    pub plugin: String,
    pub status: NodeStatus,
    /// Attempts started (an attempt cut short by a host restart is run again, not counted twice).
    pub attempts: i64,
    /// Port -> value, for values up to `[workflows] inline_value_bytes`; bytes show as
    /// `{"$bytes": "<base64>"}`.
    #[schema(value_type = Option<Object>)]
    pub inputs: Option<BTreeMap<String, Value>>,
    /// Input port -> the output it was given, for larger values (kept out of line).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub stored_inputs: BTreeMap<String, Stored>,
    /// Port -> value, for values up to `[workflows] inline_value_bytes`.
    #[schema(value_type = Option<Object>)]
    pub outputs: Option<BTreeMap<String, Value>>,
    /// Output port -> where the larger values are (download them from
    /// `GET /api/v1/runs/{run_id}/nodes/{node_id}/outputs/{port}`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub stored_outputs: BTreeMap<String, Stored>,
    pub error: Option<NodeFailure>,
    /// Log lines and progress the node reported (its last attempt).
    #[schema(value_type = Vec<Object>)]
    pub logs: Vec<serde_json::Value>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// A run with every node.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RunDetail {
    #[serde(flatten)]
    pub run: RunSummary,
    /// The definition the run uses, node types pinned to `name@version`.
    pub definition: Definition,
    #[schema(value_type = Object)]
    pub inputs: serde_json::Value,
    pub nodes: Vec<NodeRecord>,
}

const WORKFLOW_COLUMNS: &str = "id, owner_id, name, version, definition, created_at, updated_at";

fn workflow_from_row(row: &AnyRow) -> Result<Workflow> {
    Ok(Workflow {
        id: row.try_get("id")?,
        owner_id: row.try_get("owner_id")?,
        name: row.try_get("name")?,
        version: row.try_get("version")?,
        definition: json_column(row, "definition")?,
        created_at: time(row.try_get("created_at")?),
        updated_at: time(row.try_get("updated_at")?),
    })
}

fn json_column<T: serde::de::DeserializeOwned>(row: &AnyRow, column: &str) -> Result<T> {
    let text: String = row.try_get(column)?;
    serde_json::from_str(&text)
        .map_err(|e| Error::internal(format!("stored {column} is unreadable: {e}")))
}

pub(super) fn opt_json<T: serde::de::DeserializeOwned>(
    row: &AnyRow,
    column: &str,
) -> Result<Option<T>> {
    let text: Option<String> = row.try_get(column)?;
    text.map(|t| {
        serde_json::from_str(&t)
            .map_err(|e| Error::internal(format!("stored {column} is unreadable: {e}")))
    })
    .transpose()
}

fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("stored values serialise")
}

/// The plugin references of a definition: (name, version or '').
fn plugin_refs(definition: &Definition) -> Vec<(String, String)> {
    let mut refs: Vec<(String, String)> = definition
        .nodes
        .iter()
        .map(|n| match n.kind.split_once('@') {
            Some((name, version)) => (name.to_string(), version.to_string()),
            None => (n.kind.clone(), String::new()),
        })
        .collect();
    refs.sort();
    refs.dedup();
    refs
}

async fn save_refs(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    id: &str,
    definition: &Definition,
) -> Result<()> {
    sqlx::query("DELETE FROM workflow_plugins WHERE workflow_id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    for (plugin, version) in plugin_refs(definition) {
        sqlx::query(
            "INSERT INTO workflow_plugins (workflow_id, plugin, version) VALUES ($1, $2, $3)",
        )
        .bind(id)
        .bind(plugin)
        .bind(version)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Stores a new workflow at version 1.
pub(super) async fn insert_workflow(store: &Store, w: &Workflow) -> Result<()> {
    let mut tx = store.pool().begin().await?;
    let definition = to_json(&w.definition);
    sqlx::query(&format!(
        "INSERT INTO workflows ({WORKFLOW_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
    ))
    .bind(&w.id)
    .bind(&w.owner_id)
    .bind(&w.name)
    .bind(w.version)
    .bind(&definition)
    .bind(w.created_at.timestamp_millis())
    .bind(w.updated_at.timestamp_millis())
    .execute(&mut *tx)
    .await?;
    insert_version(&mut tx, w, &definition, &w.owner_id).await?;
    save_refs(&mut tx, &w.id, &w.definition).await?;
    tx.commit().await?;
    Ok(())
}

async fn insert_version(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    w: &Workflow,
    definition: &str,
    by: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO workflow_versions (workflow_id, version, definition, created_at, created_by) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&w.id)
    .bind(w.version)
    .bind(definition)
    .bind(w.updated_at.timestamp_millis())
    .bind(by)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Saves `w` as its next version; fails with a conflict if someone saved in between.
pub(super) async fn update_workflow(store: &Store, w: &Workflow, by: &str) -> Result<()> {
    let mut tx = store.pool().begin().await?;
    let definition = to_json(&w.definition);
    let updated = sqlx::query(
        "UPDATE workflows SET name = $1, version = $2, definition = $3, updated_at = $4 \
         WHERE id = $5 AND version = $6",
    )
    .bind(&w.name)
    .bind(w.version)
    .bind(&definition)
    .bind(w.updated_at.timestamp_millis())
    .bind(&w.id)
    .bind(w.version - 1)
    .execute(&mut *tx)
    .await?;
    if updated.rows_affected() != 1 {
        return Err(Error::new(
            crate::error::Code::Conflict,
            "the workflow was changed at the same time; read it again and retry",
        ));
    }
    insert_version(&mut tx, w, &definition, by).await?;
    save_refs(&mut tx, &w.id, &w.definition).await?;
    tx.commit().await?;
    Ok(())
}

pub(super) async fn workflow(store: &Store, id: &str) -> Result<Option<Workflow>> {
    sqlx::query(&format!(
        "SELECT {WORKFLOW_COLUMNS} FROM workflows WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(store.pool())
    .await?
    .as_ref()
    .map(workflow_from_row)
    .transpose()
}

/// One saved version's definition.
pub(super) async fn workflow_version(
    store: &Store,
    id: &str,
    version: i64,
) -> Result<Option<Definition>> {
    sqlx::query("SELECT definition FROM workflow_versions WHERE workflow_id = $1 AND version = $2")
        .bind(id)
        .bind(version)
        .fetch_optional(store.pool())
        .await?
        .as_ref()
        .map(|row| json_column(row, "definition"))
        .transpose()
}

/// Workflows after `cursor` (ids sort by creation), of `owner` or of everyone.
pub(super) async fn workflows(
    store: &Store,
    owner: Option<&str>,
    cursor: &str,
    limit: i64,
) -> Result<Vec<Workflow>> {
    let rows = match owner {
        Some(owner) => {
            sqlx::query(&format!(
                "SELECT {WORKFLOW_COLUMNS} FROM workflows WHERE owner_id = $1 AND id > $2 ORDER BY id LIMIT $3"
            ))
            .bind(owner)
            .bind(cursor)
            .bind(limit)
            .fetch_all(store.pool())
            .await?
        }
        None => {
            sqlx::query(&format!(
                "SELECT {WORKFLOW_COLUMNS} FROM workflows WHERE id > $1 ORDER BY id LIMIT $2"
            ))
            .bind(cursor)
            .bind(limit)
            .fetch_all(store.pool())
            .await?
        }
    };
    rows.iter().map(workflow_from_row).collect()
}

/// Deletes a workflow with its versions and runs.
pub(super) async fn delete_workflow(store: &Store, id: &str) -> Result<()> {
    let mut tx = store.pool().begin().await?;
    for table in [
        "run_node_attempts WHERE run_id IN (SELECT id FROM runs WHERE workflow_id = $1)",
        "run_nodes WHERE run_id IN (SELECT id FROM runs WHERE workflow_id = $1)",
        "runs WHERE workflow_id = $1",
        "workflow_plugins WHERE workflow_id = $1",
        "workflow_versions WHERE workflow_id = $1",
        "workflows WHERE id = $1",
    ] {
        sqlx::query(&format!("DELETE FROM {table}"))
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// A workflow whose current version names `plugin` at `version` (or, when `or_unversioned`,
/// without a version).
pub(super) async fn workflow_using(
    store: &Store,
    plugin: &str,
    version: &str,
    or_unversioned: bool,
) -> Result<Option<(String, String)>> {
    let row = sqlx::query(
        "SELECT w.id, w.name FROM workflow_plugins p JOIN workflows w ON w.id = p.workflow_id \
         WHERE p.plugin = $1 AND (p.version = $2 OR (p.version = '' AND $3 = 1)) LIMIT 1",
    )
    .bind(plugin)
    .bind(version)
    .bind(i64::from(or_unversioned))
    .fetch_optional(store.pool())
    .await?;
    row.map(|r| Ok((r.try_get("id")?, r.try_get("name")?)))
        .transpose()
}

const RUN_FIELDS: &str = "id, workflow_id, workflow_version, owner_id, status, error, created_at, started_at, finished_at, project_id";
/// A run's commit is its own project's pin among the commits its jobs see (`run_commits`).
const RUN_COLUMNS: &str = "id, workflow_id, workflow_version, owner_id, status, error, created_at, started_at, finished_at, project_id, \
     (SELECT commit_id FROM run_commits c WHERE c.run_id = runs.id AND c.project_id = runs.project_id) AS git_commit";

fn run_from_row(row: &AnyRow) -> Result<RunSummary> {
    Ok(RunSummary {
        id: row.try_get("id")?,
        workflow_id: row.try_get("workflow_id")?,
        workflow_version: row.try_get("workflow_version")?,
        owner_id: row.try_get("owner_id")?,
        status: RunStatus::parse(&row.try_get::<String, _>("status")?)?,
        error: row.try_get("error")?,
        created_at: time(row.try_get("created_at")?),
        started_at: row.try_get::<Option<i64>, _>("started_at")?.map(time),
        finished_at: row.try_get::<Option<i64>, _>("finished_at")?.map(time),
        project_id: row.try_get("project_id")?,
        git_commit: row.try_get("git_commit")?,
    })
}

/// Stores a new run and its nodes (all pending) in one transaction.
pub(super) async fn insert_run(
    store: &Store,
    run: &RunSummary,
    definition: &Definition,
    inputs: &serde_json::Value,
) -> Result<()> {
    let mut tx = store.pool().begin().await?;
    sqlx::query(&format!(
        "INSERT INTO runs ({RUN_FIELDS}, definition, inputs) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
    ))
    .bind(&run.id)
    .bind(&run.workflow_id)
    .bind(run.workflow_version)
    .bind(&run.owner_id)
    .bind(run.status.as_str())
    .bind(run.error.as_deref())
    .bind(run.created_at.timestamp_millis())
    .bind(run.started_at.map(|t| t.timestamp_millis()))
    .bind(run.finished_at.map(|t| t.timestamp_millis()))
    .bind(run.project_id.as_deref())
    .bind(to_json(definition))
    .bind(to_json(inputs))
    .execute(&mut *tx)
    .await?;
    if let (Some(project), Some(commit)) = (&run.project_id, &run.git_commit) {
        sqlx::query(
            "INSERT INTO run_commits (run_id, project_id, commit_id, pinned_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&run.id)
        .bind(project)
        .bind(commit)
        .bind(run.created_at.timestamp_millis())
        .execute(&mut *tx)
        .await?;
    }
    // Many rows per statement: a 1,000-node run is a handful of round trips, not a thousand.
    for (chunk_index, chunk) in definition.nodes.chunks(200).enumerate() {
        let mut sql = String::from(
            "INSERT INTO run_nodes (run_id, node_id, position, plugin, status) VALUES ",
        );
        // Every row has its own placeholders: SQLite numbers a repeated `$1` more than once.
        for i in 0..chunk.len() {
            let b = i * 4;
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!(
                "(${}, ${}, ${}, ${}, 'pending')",
                b + 1,
                b + 2,
                b + 3,
                b + 4
            ));
        }
        let mut query = sqlx::query(&sql);
        for (i, node) in chunk.iter().enumerate() {
            query = query
                .bind(&run.id)
                .bind(&node.id)
                .bind((chunk_index * 200 + i) as i64)
                .bind(&node.kind);
        }
        query.execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

pub(super) async fn run(store: &Store, id: &str) -> Result<Option<RunSummary>> {
    sqlx::query(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = $1"))
        .bind(id)
        .fetch_optional(store.pool())
        .await?
        .as_ref()
        .map(run_from_row)
        .transpose()
}

/// A run with its definition, inputs and nodes.
pub(super) async fn run_detail(store: &Store, id: &str) -> Result<Option<RunDetail>> {
    let Some(row) = sqlx::query(&format!(
        "SELECT {RUN_COLUMNS}, definition, inputs FROM runs WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(store.pool())
    .await?
    else {
        return Ok(None);
    };
    let nodes = sqlx::query(
        "SELECT node_id, plugin, status, attempts, inputs, outputs, value_format, error, logs, \
         started_at, finished_at FROM run_nodes WHERE run_id = $1 ORDER BY position",
    )
    .bind(id)
    .fetch_all(store.pool())
    .await?
    .iter()
    .map(|r| {
        let (inputs, stored_inputs) = split(port_values(r, "inputs")?);
        let (outputs, stored_outputs) = split(port_values(r, "outputs")?);
        Ok(NodeRecord {
            id: r.try_get("node_id")?,
            plugin: r.try_get("plugin")?,
            status: NodeStatus::parse(&r.try_get::<String, _>("status")?)?,
            attempts: r.try_get("attempts")?,
            inputs,
            stored_inputs,
            outputs,
            stored_outputs,
            error: opt_json(r, "error")?,
            logs: opt_json(r, "logs")?.unwrap_or_default(),
            started_at: r.try_get::<Option<i64>, _>("started_at")?.map(time),
            finished_at: r.try_get::<Option<i64>, _>("finished_at")?.map(time),
        })
    })
    .collect::<Result<Vec<_>>>()?;
    Ok(Some(RunDetail {
        run: run_from_row(&row)?,
        definition: json_column(&row, "definition")?,
        inputs: json_column(&row, "inputs")?,
        nodes,
    }))
}

/// Runs of a workflow, newest first, before `cursor` (a run id) when given.
pub(super) async fn runs_of(
    store: &Store,
    workflow_id: &str,
    cursor: Option<&str>,
    limit: i64,
) -> Result<Vec<RunSummary>> {
    // Each placeholder once: SQLite numbers a repeated `$n` more than once.
    let query = match cursor {
        Some(_) => format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE workflow_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3"
        ),
        None => format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE workflow_id = $1 AND $2 = '' ORDER BY id DESC LIMIT $3"
        ),
    };
    sqlx::query(&query)
        .bind(workflow_id)
        .bind(cursor.unwrap_or_default())
        .bind(limit)
        .fetch_all(store.pool())
        .await?
        .iter()
        .map(run_from_row)
        .collect()
}

/// Ids of runs that were not finished, oldest first.
pub(super) async fn unfinished_runs(store: &Store) -> Result<Vec<String>> {
    let rows = sqlx::query("SELECT id FROM runs WHERE status IN ('queued', 'running') ORDER BY id")
        .fetch_all(store.pool())
        .await?;
    rows.iter()
        .map(|r| r.try_get("id").map_err(Error::from))
        .collect()
}

/// How many runs of `owner_id` are not finished.
pub(super) async fn active_runs_of(store: &Store, owner_id: &str) -> Result<i64> {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM runs WHERE owner_id = $1 AND status IN ('queued', 'running')",
    )
    .bind(owner_id)
    .fetch_one(store.pool())
    .await?;
    Ok(n)
}

/// Whether a workflow has a run that is not finished.
pub(super) async fn has_active_run(store: &Store, workflow_id: &str) -> Result<bool> {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM runs WHERE workflow_id = $1 AND status IN ('queued', 'running')",
    )
    .bind(workflow_id)
    .fetch_one(store.pool())
    .await?;
    Ok(n > 0)
}

/// An unfinished run that pinned `plugin@version`.
pub(super) async fn run_using(
    store: &Store,
    plugin: &str,
    version: &str,
) -> Result<Option<String>> {
    let row = sqlx::query(
        "SELECT n.run_id FROM run_nodes n JOIN runs r ON r.id = n.run_id \
         WHERE r.status IN ('queued', 'running') AND n.plugin = $1 LIMIT 1",
    )
    .bind(format!("{plugin}@{version}"))
    .fetch_optional(store.pool())
    .await?;
    row.map(|r| r.try_get("run_id").map_err(Error::from))
        .transpose()
}

/// A node state a write may still change. A finished node stays as stored: when a node fails the
/// run, its siblings are closed in the same transaction, and their own late writes change
/// nothing.
const OPEN_NODE: &str = "status IN ('pending', 'running', 'retrying')";

/// Sets a run's status (and start or finish time, once).
pub(super) async fn set_run_status(
    store: &Store,
    id: &str,
    status: RunStatus,
    error: Option<&str>,
) -> Result<()> {
    let now = now_ms();
    sqlx::query(
        "UPDATE runs SET status = $1, error = $2, started_at = COALESCE(started_at, $3), \
         finished_at = $4 WHERE id = $5",
    )
    .bind(status.as_str())
    .bind(error)
    .bind(now)
    .bind(status.is_finished().then_some(now))
    .bind(id)
    .execute(store.pool())
    .await?;
    Ok(())
}

/// A node's values in `column` (`inputs` or `outputs`) of a row that also has `value_format`.
fn port_values(row: &AnyRow, column: &str) -> Result<Option<PortValues>> {
    let format: i64 = row.try_get("value_format")?;
    row.try_get::<Option<String>, _>(column)?
        .map(|text| encoding::decode(&text, format))
        .transpose()
}

/// A node's values as the API shows them: inline ones, and references of the others.
fn split(
    values: Option<PortValues>,
) -> (Option<BTreeMap<String, Value>>, BTreeMap<String, Stored>) {
    match values {
        Some(values) => {
            let (inline, stored) = values::split(values);
            (Some(inline), stored)
        }
        None => (None, BTreeMap::new()),
    }
}

/// The outputs of one node of a run: `None` for no such node.
pub(super) async fn node_outputs(
    store: &Store,
    run_id: &str,
    node_id: &str,
) -> Result<Option<Option<PortValues>>> {
    sqlx::query("SELECT outputs, value_format FROM run_nodes WHERE run_id = $1 AND node_id = $2")
        .bind(run_id)
        .bind(node_id)
        .fetch_optional(store.pool())
        .await?
        .as_ref()
        .map(|r| port_values(r, "outputs"))
        .transpose()
}

/// Whether the run has a node `node_id`.
pub(super) async fn has_node(store: &Store, run_id: &str, node_id: &str) -> Result<bool> {
    let (n,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM run_nodes WHERE run_id = $1 AND node_id = $2")
            .bind(run_id)
            .bind(node_id)
            .fetch_one(store.pool())
            .await?;
    Ok(n > 0)
}

/// Ids of a workflow's runs.
pub(super) async fn runs_of_workflow(store: &Store, workflow_id: &str) -> Result<Vec<String>> {
    let rows = sqlx::query("SELECT id FROM runs WHERE workflow_id = $1")
        .bind(workflow_id)
        .fetch_all(store.pool())
        .await?;
    rows.iter()
        .map(|r| r.try_get("id").map_err(Error::from))
        .collect()
}

/// A node attempt started with `inputs` (stored with the attempt's own row); false if the node
/// was closed in the meantime.
pub(super) async fn node_started(
    store: &Store,
    run_id: &str,
    node_id: &str,
    attempt: u32,
    inputs: &[(String, Held)],
    at: i64,
) -> Result<bool> {
    let mut tx = store.pool().begin().await?;
    let done = sqlx::query(&format!(
        "UPDATE run_nodes SET status = 'running', attempts = $1, inputs = $2, value_format = $3, \
         error = NULL, started_at = $4, finished_at = NULL \
         WHERE run_id = $5 AND node_id = $6 AND {OPEN_NODE}"
    ))
    .bind(i64::from(attempt))
    .bind(encoding::encode(inputs.iter().map(|(k, v)| (k, v))))
    .bind(encoding::TAGGED)
    .bind(at)
    .bind(run_id)
    .bind(node_id)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() != 1 {
        return Ok(false);
    }
    attempts::started(&mut tx, run_id, node_id, attempt, at).await?;
    tx.commit().await?;
    Ok(true)
}

/// What a node reached: finished, or retrying after a failed attempt.
pub(super) struct NodeState<'a> {
    pub status: NodeStatus,
    /// When it reached it (Unix ms): for an attempt, when the plugin's call returned, taken
    /// before the node gives its slot back, so no node that starts in that slot seems to
    /// overlap it.
    pub at: i64,
    pub outputs: Option<&'a [(String, Held)]>,
    pub error: Option<&'a NodeFailure>,
    pub logs: &'a [serde_json::Value],
}

/// Stores `state` for an open node (and how its running attempt ended); false if the node was
/// closed in the meantime.
pub(super) async fn node_state(
    store: &Store,
    run_id: &str,
    node_id: &str,
    state: &NodeState<'_>,
) -> Result<bool> {
    let mut tx = store.pool().begin().await?;
    let done = write_node_state(&mut tx, run_id, node_id, state).await?;
    tx.commit().await?;
    Ok(done)
}

// The format is written with the outputs: the row's inputs were written in it by
// `node_started` of the same attempt (a skipped node has none).
async fn write_node_state(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    run_id: &str,
    node_id: &str,
    state: &NodeState<'_>,
) -> Result<bool> {
    let finished = state.status.is_finished().then_some(state.at);
    let error = state.error.map(to_json);
    let logs = to_json(&state.logs);
    let done = sqlx::query(&format!(
        "UPDATE run_nodes SET status = $1, outputs = $2, value_format = $3, error = $4, \
         logs = $5, finished_at = $6 WHERE run_id = $7 AND node_id = $8 AND {OPEN_NODE}"
    ))
    .bind(state.status.as_str())
    .bind(
        state
            .outputs
            .map(|outs| encoding::encode(outs.iter().map(|(k, v)| (k, v)))),
    )
    .bind(encoding::TAGGED)
    .bind(error.as_deref())
    .bind(&logs)
    .bind(finished)
    .bind(run_id)
    .bind(node_id)
    .execute(&mut **tx)
    .await?;
    if done.rows_affected() != 1 {
        return Ok(false);
    }
    if let Some(ended) = AttemptStatus::ended_as(state.status) {
        attempts::ended(
            tx,
            run_id,
            node_id,
            ended,
            error.as_deref(),
            &logs,
            state.at,
        )
        .await?;
    }
    Ok(true)
}

/// A node failed the run (its `on_error` is `fail`): the node's failure, every other open node
/// closed as cancelled and the run failed with `reason`, in one transaction, so no crash can
/// leave a failed node in a run that goes on. False (and nothing written) if the node was
/// closed in the meantime.
pub(super) async fn node_failed_run(
    store: &Store,
    run_id: &str,
    node_id: &str,
    failure: &NodeFailure,
    logs: &[serde_json::Value],
    reason: &str,
    at: i64,
) -> Result<bool> {
    let mut tx = store.pool().begin().await?;
    let state = NodeState {
        status: NodeStatus::Failed,
        at,
        outputs: None,
        error: Some(failure),
        logs,
    };
    if !write_node_state(&mut tx, run_id, node_id, &state).await? {
        return Ok(false);
    }
    close_in(
        &mut tx,
        run_id,
        RunStatus::Failed,
        Some(reason),
        &not_run(reason),
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// Ends an unfinished run with `status` and closes its open nodes as cancelled with
/// `node_error`, in one transaction.
pub(super) async fn close_run(
    store: &Store,
    run_id: &str,
    status: RunStatus,
    error: Option<&str>,
    node_error: &NodeFailure,
) -> Result<()> {
    let mut tx = store.pool().begin().await?;
    close_in(&mut tx, run_id, status, error, node_error).await?;
    tx.commit().await?;
    Ok(())
}

/// Why a node that never ran was closed when the run failed for `reason`.
pub(super) fn not_run(reason: &str) -> NodeFailure {
    NodeFailure {
        kind: "upstream".into(),
        message: format!("not run: {reason}"),
        retryable: false,
        code: None,
    }
}

/// Why a node was closed when its run was cancelled.
pub(super) fn cancelled() -> NodeFailure {
    NodeFailure {
        kind: "cancelled".into(),
        message: "the run was cancelled".into(),
        retryable: false,
        code: None,
    }
}

async fn close_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    run_id: &str,
    status: RunStatus,
    error: Option<&str>,
    node_error: &NodeFailure,
) -> Result<()> {
    let now = now_ms();
    let node_error = to_json(node_error);
    sqlx::query(&format!(
        "UPDATE run_nodes SET status = 'cancelled', error = $1, finished_at = $2 \
         WHERE run_id = $3 AND {OPEN_NODE}"
    ))
    .bind(&node_error)
    .bind(now)
    .bind(run_id)
    .execute(&mut **tx)
    .await?;
    attempts::stop_running(tx, run_id, &node_error, now).await?;
    sqlx::query(
        "UPDATE runs SET status = $1, error = $2, started_at = COALESCE(started_at, $3), \
         finished_at = $4 WHERE id = $5 AND status IN ('queued', 'running')",
    )
    .bind(status.as_str())
    .bind(error)
    .bind(now)
    .bind(now)
    .bind(run_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
