//! Runs and what they log: params (write-once, as MLflow keeps them), metrics (every value
//! kept for the history, the latest per key for searches), tags, dataset and model inputs,
//! model outputs; MLflow's limits on keys, values and batch sizes.

use super::run_view::{self, Metric as StoredMetric, RUN_COLUMNS};
use super::service::{Tracking, check_length, hex_id, not_found};
use super::wire::invalid;
use crate::auth::Caller;
use crate::error::Result;
use crate::store::now_ms;
use serde_json::{Value, json};
use sqlx::Row as _;
use std::collections::HashMap;

/// One metric value as logged.
#[derive(Debug, Clone)]
pub(crate) struct Metric {
    pub key: String,
    pub value: f64,
    pub timestamp: i64,
    pub step: i64,
}

/// What a new run starts with.
#[derive(Debug, Default)]
pub(crate) struct NewRun {
    pub experiment_id: String,
    pub run_name: Option<String>,
    pub start_time: Option<i64>,
    pub tags: Vec<(String, String)>,
}

/// One batch of values for a run.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    pub metrics: Vec<Metric>,
    pub params: Vec<(String, String)>,
    pub tags: Vec<(String, String)>,
}

/// The tag MLflow keeps a run's name in as well.
const RUN_NAME_TAG: &str = "mlflow.runName";

impl Tracking {
    /// Starts a run in experiment `new.experiment_id`.
    pub(crate) async fn create_run(&self, caller: &Caller, new: NewRun) -> Result<Value> {
        let stage = self.experiment_access(caller, &new.experiment_id).await?;
        if stage != "active" {
            return Err(crate::error::Error::new(
                crate::error::Code::ModelInvalidState,
                format!(
                    "The experiment {} must be in the 'active' state.",
                    new.experiment_id
                ),
            ));
        }
        let id = hex_id();
        let name = new
            .run_name
            .filter(|n| !n.is_empty())
            .or_else(|| {
                new.tags
                    .iter()
                    .find(|(k, _)| k == RUN_NAME_TAG)
                    .map(|(_, v)| v.clone())
            })
            .unwrap_or_else(|| format!("run-{}", &id[..8]));
        let mut tags = new.tags;
        tags.retain(|(k, _)| k != RUN_NAME_TAG);
        tags.push((RUN_NAME_TAG.into(), name.clone()));
        for (key, value) in &tags {
            check_length("Tag key", key, 250)?;
            check_length("Tag value", value, 8000)?;
        }
        let mut tx = self.store.pool().begin().await?;
        sqlx::query(
            "INSERT INTO mlflow_runs (id, experiment_id, owner_id, name, user_name, status, start_time, end_time, lifecycle_stage, artifact_uri) \
             VALUES ($1, $2, $3, $4, $5, 'RUNNING', $6, NULL, 'active', $7)",
        )
        .bind(&id)
        .bind(&new.experiment_id)
        .bind(&caller.user_id)
        .bind(&name)
        .bind(&caller.name)
        .bind(new.start_time.unwrap_or_else(now_ms))
        .bind(format!("mlflow-artifacts:/{}/{id}/artifacts", new.experiment_id))
        .execute(&mut *tx)
        .await?;
        upsert_pairs(&mut tx, "mlflow_tags", &id, &tags).await?;
        tx.commit().await?;
        self.run(caller, &id).await
    }

    /// Run `id` with its data, inputs and outputs.
    pub(crate) async fn run(&self, caller: &Caller, id: &str) -> Result<Value> {
        self.run_access(caller, id).await?;
        let rows = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM mlflow_runs r WHERE r.id = $1"
        ))
        .bind(id)
        .fetch_all(self.store.pool())
        .await?;
        let run = run_view::load(self.store.pool(), &rows)
            .await?
            .pop()
            .ok_or_else(|| not_found(format!("Run with id={id} not found")))?;
        serde_json::to_value(run).map_err(|e| crate::error::Error::internal(e.to_string()))
    }

    /// Updates run `id`'s status, end time or name; answers its info.
    pub(crate) async fn update_run(
        &self,
        caller: &Caller,
        id: &str,
        status: Option<&str>,
        end_time: Option<i64>,
        name: Option<&str>,
    ) -> Result<Value> {
        self.active_run(caller, id).await?;
        if let Some(status) = status
            && !["RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"].contains(&status)
        {
            return Err(invalid(format!("Invalid run status '{status}'")));
        }
        let mut tx = self.store.pool().begin().await?;
        sqlx::query(
            "UPDATE mlflow_runs SET status = COALESCE($1, status), end_time = COALESCE($2, end_time), \
             name = COALESCE($3, name) WHERE id = $4",
        )
        .bind(status)
        .bind(end_time)
        .bind(name.filter(|n| !n.is_empty()))
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if let Some(name) = name.filter(|n| !n.is_empty()) {
            upsert_pairs(
                &mut tx,
                "mlflow_tags",
                id,
                &[(RUN_NAME_TAG.into(), name.into())],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(self.run(caller, id).await?["info"].take())
    }

    /// Marks run `id` deleted or active again.
    pub(crate) async fn set_run_stage(&self, caller: &Caller, id: &str, stage: &str) -> Result<()> {
        self.run_access(caller, id).await?;
        sqlx::query("UPDATE mlflow_runs SET lifecycle_stage = $1 WHERE id = $2")
            .bind(stage)
            .bind(id)
            .execute(self.store.pool())
            .await?;
        Ok(())
    }

    /// Logs a batch of metrics, params and tags to run `id`, within MLflow's limits.
    pub(crate) async fn log_batch(&self, caller: &Caller, id: &str, batch: Batch) -> Result<()> {
        if batch.metrics.len() > 1000 || batch.params.len() > 100 || batch.tags.len() > 100 {
            return Err(invalid(format!(
                "A batch logging request can contain at most 1000 metrics, 100 params and 100 tags; \
                 got {} metrics, {} params and {} tags",
                batch.metrics.len(),
                batch.params.len(),
                batch.tags.len()
            )));
        }
        for (key, value) in &batch.params {
            check_length("Param key", key, 250)?;
            check_length("Param value", value, 6000)?;
        }
        for (key, value) in &batch.tags {
            check_length("Tag key", key, 250)?;
            check_length("Tag value", value, 8000)?;
        }
        for metric in &batch.metrics {
            if metric.key.is_empty() {
                return Err(invalid(
                    "Missing value for required parameter 'metrics[].key'.",
                ));
            }
            check_length("Metric name", &metric.key, 250)?;
        }
        self.active_run(caller, id).await?;
        let mut tx = self.store.pool().begin().await?;
        if !batch.params.is_empty() {
            let mut sql = String::from("INSERT INTO mlflow_params (run_id, key, value) VALUES ");
            push_rows(&mut sql, batch.params.len(), 3);
            sql.push_str(" ON CONFLICT (run_id, key) DO NOTHING");
            let mut query = sqlx::query(&sql);
            for (key, value) in &batch.params {
                query = query.bind(id).bind(key).bind(value);
            }
            query.execute(&mut *tx).await?;
            // Checked after the write, not before: on SQLite a transaction that reads first
            // cannot take the write lock once another writer committed (SQLITE_BUSY, no
            // waiting), which failed concurrent batches.
            check_params_unchanged(&mut tx, id, &batch.params).await?;
        }
        upsert_pairs(&mut tx, "mlflow_tags", id, &batch.tags).await?;
        log_metrics(&mut tx, id, &batch.metrics).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Deletes tag `key` of run `id`.
    pub(crate) async fn delete_run_tag(&self, caller: &Caller, id: &str, key: &str) -> Result<()> {
        self.active_run(caller, id).await?;
        let deleted = sqlx::query("DELETE FROM mlflow_tags WHERE run_id = $1 AND key = $2")
            .bind(id)
            .bind(key)
            .execute(self.store.pool())
            .await?;
        if deleted.rows_affected() == 0 {
            return Err(not_found(format!(
                "No tag with name: {key} in run with id {id}"
            )));
        }
        Ok(())
    }

    /// Every value of metric `key` of run `id`, by step then timestamp.
    pub(crate) async fn metric_history(
        &self,
        caller: &Caller,
        id: &str,
        key: &str,
    ) -> Result<Value> {
        self.run_access(caller, id).await?;
        let rows = sqlx::query(
            "SELECT key, value, is_nan, timestamp, step FROM mlflow_metrics WHERE run_id = $1 AND key = $2 \
             ORDER BY step, timestamp",
        )
        .bind(id)
        .bind(key)
        .fetch_all(self.store.pool())
        .await?;
        let metrics = rows
            .iter()
            .map(StoredMetric::from_row)
            .collect::<Result<Vec<_>>>()?;
        Ok(json!({ "metrics": metrics }))
    }

    /// Records inputs (`kind` "dataset" or "model") or outputs ("output") of run `id`, each
    /// as its protocol JSON under a reference that makes logging it twice harmless.
    pub(crate) async fn log_run_links(
        &self,
        caller: &Caller,
        id: &str,
        kind: &str,
        items: &[(String, Value)],
    ) -> Result<()> {
        self.active_run(caller, id).await?;
        let mut tx = self.store.pool().begin().await?;
        for (reference, body) in items {
            sqlx::query(
                "INSERT INTO mlflow_run_inputs (run_id, kind, ref, body) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (run_id, kind, ref) DO UPDATE SET body = excluded.body",
            )
            .bind(id)
            .bind(kind)
            .bind(reference)
            .bind(body.to_string())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

/// `(value stored, is_nan)` for a logged value: NaN as 0 with the flag, the infinities as
/// the largest finite doubles, as MLflow's SQL store keeps them.
fn stored(value: f64) -> (f64, i64) {
    if value.is_nan() {
        (0.0, 1)
    } else if value.is_infinite() {
        (if value > 0.0 { f64::MAX } else { f64::MIN }, 0)
    } else {
        (value, 0)
    }
}

/// Appends `rows` groups of `columns` placeholders (`($1, $2), ($3, $4)`).
fn push_rows(sql: &mut String, rows: usize, columns: usize) {
    let groups: Vec<String> = (0..rows)
        .map(|r| {
            let cells: Vec<String> = (1..=columns)
                .map(|c| format!("${}", r * columns + c))
                .collect();
            format!("({})", cells.join(", "))
        })
        .collect();
    sql.push_str(&groups.join(", "));
}

/// Inserts or replaces `(key, value)` rows of run `id` in `table` (tags).
async fn upsert_pairs(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    table: &str,
    id: &str,
    pairs: &[(String, String)],
) -> Result<()> {
    if pairs.is_empty() {
        return Ok(());
    }
    // The last value of a key wins, as when logged one by one.
    let mut latest: Vec<(&String, &String)> = Vec::new();
    for (key, value) in pairs {
        match latest.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => latest.push((key, value)),
        }
    }
    let mut sql = format!("INSERT INTO {table} (run_id, key, value) VALUES ");
    push_rows(&mut sql, latest.len(), 3);
    sql.push_str(" ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value");
    let mut query = sqlx::query(&sql);
    for (key, value) in latest {
        query = query.bind(id).bind(key).bind(value);
    }
    query.execute(&mut **tx).await?;
    Ok(())
}

/// Refuses params already logged with another value (MLflow's params are write-once).
async fn check_params_unchanged(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    id: &str,
    params: &[(String, String)],
) -> Result<()> {
    let mut seen: HashMap<&str, &str> = HashMap::new();
    for (key, value) in params {
        if let Some(before) = seen.insert(key, value)
            && before != value
        {
            return Err(invalid(format!(
                "Duplicate parameter keys have been submitted: ['{key}']. Please ensure the request contains only one param value per param key."
            )));
        }
    }
    let placeholders = (2..params.len() + 2)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "SELECT key, value FROM mlflow_params WHERE run_id = $1 AND key IN ({placeholders})"
    );
    let mut query = sqlx::query(&sql).bind(id);
    for (key, _) in params {
        query = query.bind(key);
    }
    for row in query.fetch_all(&mut **tx).await? {
        let key: String = row.try_get("key")?;
        let old: String = row.try_get("value")?;
        let new = seen.get(key.as_str()).copied().unwrap_or_default();
        if old != new {
            return Err(invalid(format!(
                "Changing param values is not allowed. Param with key='{key}' was already logged with value='{old}' for run ID='{id}'. Attempted logging new value '{new}'."
            ))
            .details(json!({"key": key, "logged": old, "attempted": new})));
        }
    }
    Ok(())
}

/// Stores every value of `metrics` and moves each key's latest value forward.
async fn log_metrics(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    id: &str,
    metrics: &[Metric],
) -> Result<()> {
    if metrics.is_empty() {
        return Ok(());
    }
    let mut sql = String::from(
        "INSERT INTO mlflow_metrics (run_id, key, step, timestamp, value, is_nan) VALUES ",
    );
    push_rows(&mut sql, metrics.len(), 6);
    sql.push_str(" ON CONFLICT DO NOTHING");
    let mut query = sqlx::query(&sql);
    let mut latest: HashMap<&str, &Metric> = HashMap::new();
    for m in metrics {
        let (value, is_nan) = stored(m.value);
        query = query
            .bind(id)
            .bind(&m.key)
            .bind(m.step)
            .bind(m.timestamp)
            .bind(value)
            .bind(is_nan);
        let newer = latest
            .get(m.key.as_str())
            .is_none_or(|l| (m.step, m.timestamp) >= (l.step, l.timestamp));
        if newer {
            latest.insert(&m.key, m);
        }
    }
    query.execute(&mut **tx).await?;
    for m in latest.values() {
        let (value, is_nan) = stored(m.value);
        sqlx::query(
            "INSERT INTO mlflow_latest_metrics (run_id, key, step, timestamp, value, is_nan) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (run_id, key) DO UPDATE SET step = excluded.step, timestamp = excluded.timestamp, \
             value = excluded.value, is_nan = excluded.is_nan \
             WHERE excluded.step > mlflow_latest_metrics.step \
             OR (excluded.step = mlflow_latest_metrics.step AND excluded.timestamp >= mlflow_latest_metrics.timestamp)",
        )
        .bind(id)
        .bind(&m.key)
        .bind(m.step)
        .bind(m.timestamp)
        .bind(value)
        .bind(is_nan)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}
