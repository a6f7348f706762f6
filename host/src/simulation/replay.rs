//! `weft scheduler replay`: plays a recorded trace through strategies on a simulated clock.
//!
//! Each traced task keeps its arrival time and its work; an instance's speed is what the
//! trace shows of it (its mean execution time against the model's), so a strategy that
//! prefers fast instances gains. Instances run one task at a time, in arrival order. The
//! strategy sees queue lengths and learns from completions as they happen on the simulated
//! clock, exactly as it would in the scheduler.

use crate::scheduler::trace::TraceEvent;
use serde::Serialize;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use weft_runtime::{Completion, Instance, StrategyInstance, Task};

/// A task as the trace recorded it.
#[derive(Debug, Clone)]
struct Traced {
    task_id: String,
    model: String,
    at_ms: f64,
    /// Execution time on an instance of speed 1.
    work_ms: f64,
}

/// A workload read from a trace.
#[derive(Debug, Clone)]
pub(crate) struct Workload {
    tasks: Vec<Traced>,
    /// Model -> instance id -> speed factor (1 = the model's mean; 2 = twice as slow).
    instances: BTreeMap<String, BTreeMap<String, f64>>,
}

impl Workload {
    /// Tasks that were both submitted and completed in the trace.
    pub(crate) fn from_trace(events: &[TraceEvent]) -> anyhow::Result<Self> {
        let mut submits = HashMap::new();
        let mut done = Vec::new();
        for event in events {
            match event {
                TraceEvent::Submit {
                    at_ms,
                    task_id,
                    model_name,
                } => {
                    submits.insert(task_id.clone(), (*at_ms, model_name.clone()));
                }
                TraceEvent::Complete {
                    task_id,
                    instance_id,
                    execution_ms,
                    ..
                } => done.push((task_id.clone(), instance_id.clone(), *execution_ms)),
            }
        }
        // Mean execution per (model, instance) and per model give each instance's speed.
        let mut per_instance: HashMap<(String, String), (f64, u32)> = HashMap::new();
        let mut per_model: HashMap<String, (f64, u32)> = HashMap::new();
        let mut joined = Vec::new();
        for (task_id, instance, ms) in done {
            let Some((at_ms, model)) = submits.get(&task_id) else {
                continue;
            };
            let e = per_instance
                .entry((model.clone(), instance.clone()))
                .or_default();
            *e = (e.0 + ms, e.1 + 1);
            let m = per_model.entry(model.clone()).or_default();
            *m = (m.0 + ms, m.1 + 1);
            joined.push((task_id, model.clone(), instance, *at_ms, ms));
        }
        anyhow::ensure!(
            !joined.is_empty(),
            "the trace holds no task that was both submitted and completed"
        );
        let mut instances: BTreeMap<String, BTreeMap<String, f64>> = BTreeMap::new();
        for ((model, instance), (sum, n)) in &per_instance {
            let (msum, mn) = per_model[model];
            let model_mean = msum / f64::from(mn);
            let factor = if model_mean > 0.0 {
                (sum / f64::from(*n)) / model_mean
            } else {
                1.0
            };
            instances
                .entry(model.clone())
                .or_default()
                .insert(instance.clone(), factor.max(1e-6));
        }
        let mut tasks: Vec<Traced> = joined
            .into_iter()
            .map(|(task_id, model, instance, at_ms, ms)| Traced {
                work_ms: ms / instances[&model][&instance],
                task_id,
                model,
                at_ms,
            })
            .collect();
        tasks.sort_by(|a, b| a.at_ms.total_cmp(&b.at_ms));
        Ok(Self { tasks, instances })
    }

    /// Tasks in the workload.
    pub(crate) fn len(&self) -> usize {
        self.tasks.len()
    }

    /// Instances across models.
    pub(crate) fn instance_count(&self) -> usize {
        self.instances.values().map(BTreeMap::len).sum()
    }
}

/// Completion-time figures of one strategy over a workload.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Outcome {
    pub strategy: String,
    pub tasks: usize,
    /// From submit to finish, ms.
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Tasks each instance ran.
    pub per_instance: BTreeMap<String, usize>,
}

/// A task finishing on the simulated clock (ordered by finish time).
#[derive(Debug, PartialEq)]
struct Finish {
    at: f64,
    task_id: String,
    instance: String,
    execution_ms: f64,
}

impl Eq for Finish {}

impl PartialOrd for Finish {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Finish {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.at
            .total_cmp(&other.at)
            .then_with(|| self.task_id.cmp(&other.task_id))
    }
}

/// Plays `workload` through `strategy` (a fresh instance).
pub(crate) async fn run(
    workload: &Workload,
    label: &str,
    strategy: &StrategyInstance,
) -> anyhow::Result<Outcome> {
    let mut free_at: HashMap<&str, f64> = HashMap::new();
    let mut queued: HashMap<&str, u32> = HashMap::new();
    let mut finishing: BinaryHeap<Reverse<Finish>> = BinaryHeap::new();
    let mut latencies = Vec::with_capacity(workload.tasks.len());
    let mut per_instance: BTreeMap<String, usize> = BTreeMap::new();
    for task in &workload.tasks {
        while finishing.peek().is_some_and(|f| f.0.at <= task.at_ms) {
            let Reverse(f) = finishing.pop().expect("peeked");
            if let Some(q) = queued.get_mut(f.instance.as_str()) {
                *q = q.saturating_sub(1);
            }
            strategy
                .observe(&Completion {
                    task_id: f.task_id,
                    instance_id: f.instance,
                    execution_ms: f.execution_ms,
                    success: true,
                })
                .await
                .map_err(|e| anyhow::anyhow!("{label}: observe failed: {e}"))?;
        }
        let speeds = &workload.instances[&task.model];
        let offered: Vec<Instance> = speeds
            .keys()
            .map(|id| Instance {
                id: id.clone(),
                model: task.model.clone(),
                host: String::new(),
                queue_length: queued.get(id.as_str()).copied().unwrap_or(0),
                healthy: true,
                reported_expected_ms: None,
                reported_error_ms: None,
            })
            .collect();
        let chosen = strategy
            .select(
                &Task {
                    id: task.task_id.clone(),
                    model: task.model.clone(),
                    metadata: "{}".into(),
                },
                &offered,
            )
            .await
            .map_err(|e| anyhow::anyhow!("{label}: select failed: {e}"))?
            .instance_id;
        let (id, speed) = speeds
            .get_key_value(chosen.as_str())
            .expect("select returns an offered instance");
        let execution_ms = task.work_ms * speed;
        let start = free_at
            .get(id.as_str())
            .copied()
            .unwrap_or(0.0)
            .max(task.at_ms);
        let end = start + execution_ms;
        free_at.insert(id, end);
        *queued.entry(id).or_default() += 1;
        *per_instance.entry(id.clone()).or_default() += 1;
        latencies.push(end - task.at_ms);
        finishing.push(Reverse(Finish {
            at: end,
            task_id: task.task_id.clone(),
            instance: id.clone(),
            execution_ms,
        }));
    }
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| {
        latencies[((latencies.len() as f64 * q).ceil() as usize).clamp(1, latencies.len()) - 1]
    };
    Ok(Outcome {
        strategy: label.to_string(),
        tasks: latencies.len(),
        mean_ms: latencies.iter().sum::<f64>() / latencies.len() as f64,
        p50_ms: at(0.5),
        p99_ms: at(0.99),
        per_instance,
    })
}
