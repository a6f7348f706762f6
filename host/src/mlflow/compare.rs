//! Comparing model versions (`/api/v1/models/{id}/compare`): the params that differ between
//! them, each metric side by side, and the best version per metric.
//!
//! Which way is better: lower for metrics whose name says it measures a cost (it contains
//! `loss`, `error`, `err`, `rmse`, `mse`, `mae`, `mape`, `perplexity`, `latency` or
//! `duration`, in any case), higher for every other metric (accuracy, f1, auc, ...). The
//! caller overrides this per metric with `lower_is_better` / `higher_is_better`. NaN and
//! missing values never win.

use super::models::ModelVersion;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use utoipa::ToSchema;

/// Name parts that mark a metric where lower is better.
const COST_WORDS: &[&str] = &[
    "loss",
    "error",
    "err",
    "rmse",
    "mse",
    "mae",
    "mape",
    "perplexity",
    "latency",
    "duration",
];

/// Which value of a metric is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Better {
    Lower,
    Higher,
}

/// Metrics whose direction the caller chose.
#[derive(Debug, Default)]
pub(crate) struct Overrides {
    pub(crate) lower: BTreeSet<String>,
    pub(crate) higher: BTreeSet<String>,
}

/// One param across the versions: its value in each (null where a version lacks it).
#[derive(Debug, PartialEq, Serialize, ToSchema)]
pub(crate) struct ParamDiff {
    key: String,
    /// By version number (as text).
    values: BTreeMap<String, Option<String>>,
}

/// One metric across the versions, and the best of them.
#[derive(Debug, PartialEq, Serialize, ToSchema)]
pub(crate) struct MetricRow {
    key: String,
    /// By version number (as text); null where missing or NaN.
    values: BTreeMap<String, Option<f64>>,
    better: Better,
    /// The version(s) with the best value (several on a tie; none when no version has one).
    best: Vec<i64>,
}

/// The comparison of some versions of one model.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Comparison {
    model_id: String,
    /// The versions compared, in the order asked.
    versions: Vec<i64>,
    /// Params whose value is not the same in every version.
    params_differ: Vec<ParamDiff>,
    /// Params every version has with the same value.
    params_same: BTreeMap<String, String>,
    /// Every metric any version has, side by side.
    metrics: Vec<MetricRow>,
}

/// Which way `key` is better, by the caller's choice or else by its name.
pub(crate) fn direction(key: &str, overrides: &Overrides) -> Better {
    if overrides.lower.contains(key) {
        return Better::Lower;
    }
    if overrides.higher.contains(key) {
        return Better::Higher;
    }
    let lower = key.to_ascii_lowercase();
    let cost = lower
        .split(|c: char| !c.is_ascii_alphanumeric())
        .any(|part| COST_WORDS.contains(&part))
        || lower.contains("loss")
        || lower.contains("error");
    if cost { Better::Lower } else { Better::Higher }
}

/// Compares `versions` (in the order asked) of model `model_id`.
pub(crate) fn compare(
    model_id: &str,
    versions: &[&ModelVersion],
    overrides: &Overrides,
) -> Comparison {
    let label = |v: &ModelVersion| v.version.to_string();
    let keys: BTreeSet<&String> = versions.iter().flat_map(|v| v.params.keys()).collect();
    let mut params_differ = Vec::new();
    let mut params_same = BTreeMap::new();
    for key in keys {
        let values: BTreeMap<String, Option<String>> = versions
            .iter()
            .map(|v| (label(v), v.params.get(key).cloned()))
            .collect();
        let distinct: BTreeSet<&Option<String>> = values.values().collect();
        match (distinct.len(), values.values().next()) {
            (1, Some(Some(value))) => {
                params_same.insert(key.clone(), value.clone());
            }
            _ => params_differ.push(ParamDiff {
                key: key.clone(),
                values,
            }),
        }
    }
    let keys: BTreeSet<&String> = versions.iter().flat_map(|v| v.metrics.keys()).collect();
    let metrics = keys
        .into_iter()
        .map(|key| {
            let better = direction(key, overrides);
            let scored: Vec<(i64, f64)> = versions
                .iter()
                .filter_map(|v| Some((v.version, v.metrics.get(key).copied().flatten()?)))
                .filter(|(_, value)| !value.is_nan())
                .collect();
            let pick = |a: f64, b: f64| match better {
                Better::Lower => a.min(b),
                Better::Higher => a.max(b),
            };
            let best_value = scored.iter().map(|(_, v)| *v).reduce(pick);
            let mut best: Vec<i64> = scored
                .iter()
                .filter(|(_, v)| Some(*v) == best_value)
                .map(|(n, _)| *n)
                .collect();
            best.dedup();
            MetricRow {
                key: key.clone(),
                values: versions
                    .iter()
                    .map(|v| (label(v), v.metrics.get(key).copied().flatten()))
                    .collect(),
                better,
                best,
            }
        })
        .collect();
    Comparison {
        model_id: model_id.to_string(),
        versions: versions.iter().map(|v| v.version).collect(),
        params_differ,
        params_same,
        metrics,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_names_are_lower_is_better_unless_overridden() {
        let none = Overrides::default();
        for key in [
            "loss",
            "val_loss",
            "RMSE",
            "test-error",
            "mae",
            "latency_ms",
        ] {
            assert_eq!(direction(key, &none), Better::Lower, "{key}");
        }
        for key in ["acc", "f1", "auc", "precision", "name_score"] {
            assert_eq!(direction(key, &none), Better::Higher, "{key}");
        }
        let chosen = Overrides {
            lower: ["acc".to_string()].into(),
            higher: ["loss".to_string()].into(),
        };
        assert_eq!(direction("acc", &chosen), Better::Lower);
        assert_eq!(direction("loss", &chosen), Better::Higher);
    }
}
