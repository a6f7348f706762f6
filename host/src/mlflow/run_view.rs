//! The protocol's Run objects for a page of runs, as the searches answer them: each kind of
//! data (latest metrics, params, tags, inputs and outputs) read for the whole page in one
//! query, the four queries at once, and serialised straight from the rows into the response,
//! with no JSON tree built in between (that tree and the per-row round trips were most of a
//! search's time).

use super::wire::double_value;
use crate::error::Result;
use serde::Serialize;
use serde::ser::Serializer;
use serde_json::value::RawValue;
use sqlx::Row as _;
use sqlx::any::AnyRow;
use std::collections::HashMap;

/// The columns a run is selected with (`r` being the runs table).
pub(super) const RUN_COLUMNS: &str = "r.id, r.experiment_id, r.name, r.user_name, r.status, r.start_time, r.end_time, r.lifecycle_stage, r.artifact_uri";

/// One run as the protocol writes it.
#[derive(Debug, Serialize)]
pub(crate) struct Run {
    info: Info,
    data: Data,
    inputs: Inputs,
    outputs: Outputs,
}

#[derive(Debug, Serialize)]
struct Info {
    run_id: String,
    run_uuid: String,
    run_name: String,
    experiment_id: String,
    user_id: String,
    status: String,
    start_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    end_time: Option<i64>,
    artifact_uri: String,
    lifecycle_stage: String,
}

#[derive(Debug, Default, Serialize)]
struct Data {
    metrics: Vec<Metric>,
    params: Vec<Pair>,
    tags: Vec<Pair>,
}

#[derive(Debug, Default, Serialize)]
struct Inputs {
    dataset_inputs: Vec<Box<RawValue>>,
    model_inputs: Vec<Box<RawValue>>,
}

#[derive(Debug, Default, Serialize)]
struct Outputs {
    model_outputs: Vec<Box<RawValue>>,
}

/// A stored metric value (NaN written back as "NaN").
#[derive(Debug, Serialize)]
pub(super) struct Metric {
    key: String,
    #[serde(serialize_with = "proto_double")]
    value: f64,
    timestamp: i64,
    step: i64,
}

impl Metric {
    /// A row of `key, value, is_nan, timestamp, step`.
    pub(super) fn from_row(row: &AnyRow) -> Result<Self> {
        let value: f64 = row.try_get("value")?;
        Ok(Self {
            key: row.try_get("key")?,
            value: if row.try_get::<i64, _>("is_nan")? != 0 {
                f64::NAN
            } else {
                value
            },
            timestamp: row.try_get("timestamp")?,
            step: row.try_get("step")?,
        })
    }
}

fn proto_double<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
    double_value(*value).serialize(serializer)
}

#[derive(Debug, Serialize)]
struct Pair {
    key: String,
    value: String,
}

/// The runs of `rows` (selected with [`RUN_COLUMNS`]), in their order, with their data.
pub(super) async fn load(pool: &sqlx::AnyPool, rows: &[AnyRow]) -> Result<Vec<Run>> {
    let mut runs = Vec::with_capacity(rows.len());
    let mut index = HashMap::with_capacity(rows.len());
    for row in rows {
        let info = info(row)?;
        index.insert(info.run_id.clone(), runs.len());
        runs.push(Run {
            info,
            data: Data::default(),
            inputs: Inputs::default(),
            outputs: Outputs::default(),
        });
    }
    if runs.is_empty() {
        return Ok(runs);
    }
    let ids: Vec<&str> = runs.iter().map(|r| r.info.run_id.as_str()).collect();
    let placeholders = (1..=ids.len())
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ");
    let metrics = format!(
        "SELECT run_id, key, value, is_nan, timestamp, step FROM mlflow_latest_metrics WHERE run_id IN ({placeholders}) ORDER BY key"
    );
    let params = format!(
        "SELECT run_id, key, value FROM mlflow_params WHERE run_id IN ({placeholders}) ORDER BY key"
    );
    let tags = format!(
        "SELECT run_id, key, value FROM mlflow_tags WHERE run_id IN ({placeholders}) ORDER BY key"
    );
    let inputs = format!(
        "SELECT run_id, kind, body FROM mlflow_run_inputs WHERE run_id IN ({placeholders}) ORDER BY kind, ref"
    );
    let (metrics, params, tags, inputs) = tokio::try_join!(
        fetch_in(pool, &metrics, &ids),
        fetch_in(pool, &params, &ids),
        fetch_in(pool, &tags, &ids),
        fetch_in(pool, &inputs, &ids),
    )?;
    for row in &metrics {
        let metric = Metric::from_row(row)?;
        if let Some(run) = run_of(&mut runs, &index, row)? {
            run.data.metrics.push(metric);
        }
    }
    for (rows, params) in [(&params, true), (&tags, false)] {
        for row in rows {
            let pair = Pair {
                key: row.try_get("key")?,
                value: row.try_get("value")?,
            };
            if let Some(run) = run_of(&mut runs, &index, row)? {
                let list = if params {
                    &mut run.data.params
                } else {
                    &mut run.data.tags
                };
                list.push(pair);
            }
        }
    }
    for row in &inputs {
        // Stored by Weft from parsed JSON: a body that is not JSON cannot occur.
        let Ok(body) = RawValue::from_string(row.try_get("body")?) else {
            continue;
        };
        let kind: String = row.try_get("kind")?;
        if let Some(run) = run_of(&mut runs, &index, row)? {
            match kind.as_str() {
                "dataset" => run.inputs.dataset_inputs.push(body),
                "model" => run.inputs.model_inputs.push(body),
                _ => run.outputs.model_outputs.push(body),
            }
        }
    }
    Ok(runs)
}

/// The run of `row` (by its `run_id`) among `runs`.
fn run_of<'a>(
    runs: &'a mut [Run],
    index: &HashMap<String, usize>,
    row: &AnyRow,
) -> Result<Option<&'a mut Run>> {
    let id: String = row.try_get("run_id")?;
    Ok(index.get(&id).map(|&i| &mut runs[i]))
}

/// Rows of `sql`, whose placeholders `$1..` are `ids`.
async fn fetch_in(pool: &sqlx::AnyPool, sql: &str, ids: &[&str]) -> Result<Vec<AnyRow>> {
    let mut query = sqlx::query(sql);
    for id in ids {
        query = query.bind(*id);
    }
    Ok(query.fetch_all(pool).await?)
}

/// A run's RunInfo.
fn info(row: &AnyRow) -> Result<Info> {
    let id: String = row.try_get("id")?;
    Ok(Info {
        run_uuid: id.clone(),
        run_id: id,
        run_name: row.try_get("name")?,
        experiment_id: row.try_get("experiment_id")?,
        user_id: row.try_get("user_name")?,
        status: row.try_get("status")?,
        start_time: row.try_get("start_time")?,
        end_time: row.try_get("end_time")?,
        artifact_uri: row.try_get("artifact_uri")?,
        lifecycle_stage: row.try_get("lifecycle_stage")?,
    })
}
