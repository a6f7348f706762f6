//! The work Weft runs: workflow runs and nodes, scheduler queues and decisions, notebook
//! executions.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use std::collections::HashSet;
use std::sync::RwLock;

/// Distinct model names that get a label of their own; later ones share `other`. Models are
/// registered by admins, but a label per name must not grow without bound.
pub(crate) const MAX_MODELS: usize = 100;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Status {
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Model {
    model: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    outcome: &'static str,
}

/// Meters of workflows, the scheduler and notebooks.
pub(crate) struct WorkloadMeters {
    runs: Family<Status, Counter>,
    run_seconds: Family<Status, Histogram>,
    nodes: Family<Status, Counter>,
    queue: Family<Model, Gauge>,
    decisions: Family<Model, Counter>,
    completions: Family<Model, Counter>,
    /// The model names that have a label of their own.
    models: RwLock<HashSet<String>>,
    notebook_executions: Family<Outcome, Counter>,
}

impl WorkloadMeters {
    pub(super) fn register(names: &mut super::registry::Names<'_>) -> Self {
        let meters = Self {
            runs: Family::default(),
            // 10 ms .. ~3 h
            run_seconds: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.01, 3.0, 15))
            }),
            nodes: Family::default(),
            queue: Family::default(),
            decisions: Family::default(),
            completions: Family::default(),
            models: RwLock::new(HashSet::new()),
            notebook_executions: Family::default(),
        };
        names.register(
            "workflow_runs",
            "Workflow runs finished, by status",
            meters.runs.clone(),
        );
        names.register(
            "workflow_run_seconds",
            "Time from a workflow run's creation to its end, by status",
            meters.run_seconds.clone(),
        );
        names.register(
            "workflow_nodes",
            "Workflow nodes finished, by status (cancelled: stopped with their run)",
            meters.nodes.clone(),
        );
        names.register(
            "scheduler_queue_length",
            "Scheduler tasks routed and not yet finished, by model",
            meters.queue.clone(),
        );
        names.register(
            "scheduler_decisions",
            "Routing decisions the scheduling strategy made, by model",
            meters.decisions.clone(),
        );
        names.register(
            "scheduler_completions",
            "Task completions task instances reported, by model",
            meters.completions.clone(),
        );
        names.register(
            "notebook_executions",
            "Notebook code executions finished, by outcome",
            meters.notebook_executions.clone(),
        );
        meters
    }

    /// A workflow run ended with `status`, `secs` after it was created.
    pub(crate) fn run_finished(&self, status: &'static str, secs: f64) {
        let labels = Status { status };
        self.runs.get_or_create(&labels).inc();
        self.run_seconds.get_or_create(&labels).observe(secs);
    }

    /// A workflow node ended with `status`.
    pub(crate) fn node_finished(&self, status: &'static str) {
        self.nodes.get_or_create(&Status { status }).inc();
    }

    /// The model's own label while fewer than [`MAX_MODELS`] have one, else `other`.
    fn model(&self, name: &str) -> Model {
        let known = self
            .models
            .read()
            .expect("model labels lock")
            .contains(name);
        if known {
            return Model { model: name.into() };
        }
        let mut models = self.models.write().expect("model labels lock");
        if models.len() < MAX_MODELS {
            models.insert(name.to_string());
            Model { model: name.into() }
        } else {
            Model {
                model: "other".into(),
            }
        }
    }

    /// The unfinished tasks of every model now: models not listed show no queue.
    pub(crate) fn set_queues(&self, lengths: &[(String, usize)]) {
        self.queue.clear();
        for (model, n) in lengths {
            self.queue
                .get_or_create(&self.model(model))
                .inc_by(i64::try_from(*n).unwrap_or(i64::MAX));
        }
    }

    /// The strategy chose an instance for a task of `model`.
    pub(crate) fn decision(&self, model: &str) {
        self.decisions.get_or_create(&self.model(model)).inc();
    }

    /// An instance reported a task of `model` finished.
    pub(crate) fn completion(&self, model: &str) {
        self.completions.get_or_create(&self.model(model)).inc();
    }

    /// A notebook execution ended with `outcome`.
    pub(crate) fn notebook_executed(&self, outcome: &'static str) {
        self.notebook_executions
            .get_or_create(&Outcome { outcome })
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::Metrics;

    #[test]
    fn model_labels_are_capped() {
        let metrics = Metrics::new();
        for i in 0..MAX_MODELS + 5 {
            metrics.workload.decision(&format!("model-{i}"));
        }
        metrics.workload.decision("model-0");
        let text = metrics.render();
        let labelled = |name: &str| {
            text.contains(&format!(
                "weft_scheduler_decisions_total{{model=\"{name}\"}}"
            ))
        };
        assert!(labelled("model-0") && labelled(&format!("model-{}", MAX_MODELS - 1)));
        assert!(!labelled(&format!("model-{MAX_MODELS}")));
        assert!(text.contains("weft_scheduler_decisions_total{model=\"other\"} 5"));
        assert!(text.contains("weft_scheduler_decisions_total{model=\"model-0\"} 2"));
    }
}
