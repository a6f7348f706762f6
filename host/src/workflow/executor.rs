//! The executor: drives one run to its end. Nodes whose predecessors are done run in parallel up
//! to a limit; outputs flow along wires; retries, timeouts and failure policies apply as
//! declared. Every state change is stored before it is announced, so a restarted host picks the
//! run up where the store says it was. A node's end and what it means for the run are one write
//! (a node failing the run closes the run with it), and a resumed run's state comes from its
//! nodes' stored states ([`settled`]), so no crash between two writes can change a run's result.
//! Outputs are checked against the caps on their size, and large ones are kept out of line
//! (see [`super::values`]): they are read back only while a node takes them.

use super::events::{Event, EventHub, RunEvent};
use super::model::OnError;
use super::plan::Plan;
use super::records::{self, NodeFailure, NodeRecord, NodeState, NodeStatus, RunStatus};
use super::values::{Held, RunValues};
use crate::crash;
use crate::error::{Code, Result};
use crate::registry::{Grantee, Plugins};
use crate::store::{Store, now_ms};
use crate::telemetry::Metrics;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use weft_runtime::{CallError, Value};

/// Values a run supplies to its nodes' inputs: node id -> (port, value).
pub(super) type RunInputs = HashMap<String, Vec<(String, Value)>>;

/// Everything one run needs while it executes.
pub(super) struct RunContext {
    pub store: Store,
    pub plugins: Plugins,
    pub hub: EventHub,
    pub run_id: String,
    pub workflow_id: String,
    pub owner_id: String,
    /// The owner as grants see them: nodes get the capabilities granted to the owner.
    pub grantee: Grantee,
    pub plan: Plan,
    pub inputs: RunInputs,
    pub cancel: CancellationToken,
    pub max_parallel: usize,
    /// Shared by every run: how many nodes may run in the whole process.
    pub slots: Arc<Semaphore>,
    /// Where large values go.
    pub values: RunValues,
    /// `[workflows] max_output_bytes` and `max_run_output_bytes`.
    pub max_output_bytes: u64,
    pub max_run_output_bytes: u64,
    /// Bytes of the outputs the run's nodes produced so far.
    pub output_bytes: AtomicU64,
    pub metrics: Arc<Metrics>,
}

/// What the store says about a node when the run (re)starts.
#[derive(Debug, Clone)]
pub(super) struct Prior {
    pub status: NodeStatus,
    /// The attempt to run next, if the node runs.
    pub next_attempt: u32,
    pub outputs: Option<HashMap<String, Held>>,
}

impl Prior {
    pub(super) fn fresh() -> Self {
        Self {
            status: NodeStatus::Pending,
            next_attempt: 1,
            outputs: None,
        }
    }
}

enum Finished {
    Succeeded(HashMap<String, Held>),
    /// Stored as failed; with `on_error: fail`, stored with the run's failure.
    Failed(NodeFailure),
    /// The run was closed while the node ran: nothing of it was stored.
    Closed,
}

/// Why a node's failure fails a run.
fn failure_reason(node: &str, message: &str) -> String {
    format!("node '{node}' failed: {message}")
}

/// How an unfinished run ends, judging by its nodes' stored states alone (a host that stopped
/// between two writes of an older version may have left them ahead of the run's state): a node
/// that failed with `on_error: fail` failed the run, a node closed as cancelled means the run
/// was being cancelled or failed. `None`: the run goes on.
pub(super) fn settled(plan: &Plan, nodes: &[NodeRecord]) -> Option<(RunStatus, Option<String>)> {
    let failed = plan.nodes.iter().zip(nodes).find(|(node, record)| {
        record.status == NodeStatus::Failed && node.spec.on_error == OnError::Fail
    });
    if let Some((_, record)) = failed {
        let message = record.error.as_ref().map_or("", |e| e.message.as_str());
        return Some((RunStatus::Failed, Some(failure_reason(&record.id, message))));
    }
    let closed = nodes.iter().find(|n| n.status == NodeStatus::Cancelled)?;
    Some(match &closed.error {
        Some(error) if error.kind != "cancelled" => {
            let reason = error.message.strip_prefix("not run: ");
            (
                RunStatus::Failed,
                Some(reason.unwrap_or(&error.message).to_string()),
            )
        }
        _ => (RunStatus::Cancelled, None),
    })
}

impl RunContext {
    fn announce(&self, event: Event) {
        self.hub.announce(RunEvent {
            run_id: self.run_id.clone(),
            workflow_id: self.workflow_id.clone(),
            owner_id: self.owner_id.clone(),
            at: chrono::Utc::now(),
            event,
        });
    }
}

/// Runs `ctx`'s plan to the end, starting from what `prior` says about each node.
pub(super) async fn drive(ctx: Arc<RunContext>, prior: Vec<Prior>) -> Result<RunStatus> {
    let nodes = &ctx.plan.nodes;
    let mut status: Vec<NodeStatus> = prior.iter().map(|p| p.status).collect();
    let mut outputs: Vec<Option<HashMap<String, Held>>> =
        prior.iter().map(|p| p.outputs.clone()).collect();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
    for (i, node) in nodes.iter().enumerate() {
        for &before in &node.after {
            dependents[before].push(i);
        }
    }
    let mut waiting: Vec<usize> = nodes
        .iter()
        .map(|n| {
            n.after
                .iter()
                .filter(|&&p| !status[p].is_finished())
                .count()
        })
        .collect();
    let mut ready: VecDeque<usize> = (0..nodes.len())
        .filter(|&i| !status[i].is_finished() && waiting[i] == 0)
        .collect();

    records::set_run_status(&ctx.store, &ctx.run_id, RunStatus::Running, None).await?;
    ctx.plugins
        .pin_run(&ctx.run_id, &ctx.owner_id, &named_projects(&ctx.plan))
        .await;
    crash::point("run-started", None);
    ctx.announce(Event::RunStarted);

    let mut tasks: JoinSet<(usize, Result<Finished>)> = JoinSet::new();
    // How the run ended early, already stored.
    let mut stopped: Option<(RunStatus, Option<String>)> = None;
    // A node is done: its dependents wait for one fewer.
    let release = |i: usize, waiting: &mut Vec<usize>, ready: &mut VecDeque<usize>| {
        for &d in &dependents[i] {
            waiting[d] -= 1;
            if waiting[d] == 0 {
                ready.push_back(d);
            }
        }
    };
    while stopped.is_none() {
        while tasks.len() < ctx.max_parallel {
            let Some(i) = ready.pop_front() else { break };
            let id = &nodes[i].spec.id;
            if let Some(reason) = blocked(&ctx.plan, i, &status, &outputs) {
                let error = NodeFailure {
                    kind: "upstream".into(),
                    message: reason.clone(),
                    retryable: false,
                    code: None,
                };
                let state = NodeState {
                    status: NodeStatus::Skipped,
                    at: now_ms(),
                    outputs: None,
                    error: Some(&error),
                    logs: &[],
                };
                records::node_state(&ctx.store, &ctx.run_id, id, &state).await?;
                crash::point("node-skipped", Some(id));
                status[i] = NodeStatus::Skipped;
                ctx.announce(Event::NodeSkipped {
                    node: id.clone(),
                    reason,
                });
                release(i, &mut waiting, &mut ready);
                continue;
            }
            let inputs = gather(&ctx, i, &outputs);
            status[i] = NodeStatus::Running;
            let ctx = ctx.clone();
            let attempt = prior[i].next_attempt;
            tasks.spawn(async move { (i, run_node(&ctx, i, inputs, attempt).await) });
        }
        if tasks.is_empty() {
            break;
        }
        tokio::select! {
            joined = tasks.join_next() => {
                let Some(joined) = joined else { continue };
                let (i, finished) = match joined {
                    Ok((i, result)) => (i, result?),
                    Err(e) if e.is_cancelled() => continue,
                    Err(e) => {
                        let reason = format!("a node task failed inside the host: {e}");
                        records::close_run(
                            &ctx.store,
                            &ctx.run_id,
                            RunStatus::Failed,
                            Some(&reason),
                            &records::not_run(&reason),
                        )
                        .await?;
                        stopped = Some((RunStatus::Failed, Some(reason)));
                        continue;
                    }
                };
                match finished {
                    Finished::Succeeded(out) => {
                        status[i] = NodeStatus::Succeeded;
                        outputs[i] = Some(out);
                        release(i, &mut waiting, &mut ready);
                    }
                    Finished::Failed(error) => {
                        status[i] = NodeStatus::Failed;
                        if nodes[i].spec.on_error == OnError::Fail {
                            let reason = failure_reason(&nodes[i].spec.id, &error.message);
                            stopped = Some((RunStatus::Failed, Some(reason)));
                        } else {
                            release(i, &mut waiting, &mut ready);
                        }
                    }
                    Finished::Closed => {}
                }
            }
            () = ctx.cancel.cancelled() => {
                records::close_run(
                    &ctx.store,
                    &ctx.run_id,
                    RunStatus::Cancelled,
                    None,
                    &records::cancelled(),
                )
                .await?;
                stopped = Some((RunStatus::Cancelled, None));
            }
        }
    }

    count_nodes(&ctx.metrics, &status, &prior);
    let (status, error) = match stopped {
        Some(stopped) => {
            tasks.abort_all();
            while tasks.join_next().await.is_some() {}
            stopped
        }
        None => {
            records::set_run_status(&ctx.store, &ctx.run_id, RunStatus::Succeeded, None).await?;
            (RunStatus::Succeeded, None)
        }
    };
    ctx.announce(Event::RunFinished { status, error });
    Ok(status)
}

/// Counts the nodes this drive ended into `weft_workflow_nodes_total`: those that finished
/// here by their status, those left unfinished (the run stopped) as `cancelled`; nodes that had
/// finished before a restart were counted then.
fn count_nodes(metrics: &Metrics, status: &[NodeStatus], prior: &[Prior]) {
    for (now, before) in status.iter().zip(prior) {
        if before.status.is_finished() {
            continue;
        }
        let label = match now.is_finished() {
            true => now.as_str(),
            false => NodeStatus::Cancelled.as_str(),
        };
        metrics.workload.node_finished(label);
    }
}

/// Why node `i` must be skipped, if it must: an upstream node was skipped or failed with
/// `skip_dependents`, or a wire's source succeeded without producing the wired output (a branch
/// not taken).
/// The projects the run's nodes name in their config (`"project"`, as the container-job and
/// python-script nodes spell it): their commits are pinned as the run starts.
fn named_projects(plan: &Plan) -> Vec<String> {
    let mut names: Vec<String> = plan
        .nodes
        .iter()
        .filter_map(|n| n.spec.config.get("project")?.as_str().map(str::to_string))
        .collect();
    names.sort();
    names.dedup();
    names
}

fn blocked(
    plan: &Plan,
    i: usize,
    status: &[NodeStatus],
    outputs: &[Option<HashMap<String, Held>>],
) -> Option<String> {
    let node = &plan.nodes[i];
    for &p in &node.after {
        let upstream = &plan.nodes[p].spec;
        match status[p] {
            NodeStatus::Skipped => {
                return Some(format!("upstream node '{}' was skipped", upstream.id));
            }
            NodeStatus::Failed if upstream.on_error == OnError::SkipDependents => {
                return Some(format!("upstream node '{}' failed", upstream.id));
            }
            _ => {}
        }
    }
    node.wires.iter().find_map(|w| {
        let produced = outputs[w.source]
            .as_ref()
            .is_none_or(|out| out.contains_key(&w.source_port));
        (status[w.source] == NodeStatus::Succeeded && !produced).then(|| {
            format!(
                "'{}' did not produce output '{}'",
                plan.nodes[w.source].spec.id, w.source_port
            )
        })
    })
}

/// The inputs of node `i`: what the run supplies, then what its wires carry.
fn gather(
    ctx: &RunContext,
    i: usize,
    outputs: &[Option<HashMap<String, Held>>],
) -> Vec<(String, Held)> {
    let node = &ctx.plan.nodes[i];
    let mut inputs: Vec<(String, Held)> = ctx
        .inputs
        .get(&node.spec.id)
        .into_iter()
        .flatten()
        .map(|(port, value)| (port.clone(), Held::Inline(value.clone())))
        .collect();
    for wire in &node.wires {
        if let Some(value) = outputs[wire.source]
            .as_ref()
            .and_then(|out| out.get(&wire.source_port))
        {
            inputs.retain(|(port, _)| port != &wire.target_port);
            inputs.push((wire.target_port.clone(), value.clone()));
        }
    }
    inputs
}

/// Whether another attempt may go differently.
fn worth_retrying(error: &CallError) -> bool {
    !matches!(
        error,
        CallError::Node {
            retryable: false,
            ..
        } | CallError::BadInputs(_)
            | CallError::BadOutputs(_)
    )
}

/// The values of `inputs`, the large ones read back from storage: held only while the node
/// runs.
async fn load(ctx: &RunContext, inputs: &[(String, Held)]) -> Result<Vec<(String, Value)>> {
    let mut values = Vec::with_capacity(inputs.len());
    for (port, held) in inputs {
        values.push((port.clone(), ctx.values.load(&ctx.run_id, held).await?));
    }
    Ok(values)
}

/// A node failure for outputs over a cap: not worth retrying, the node would produce the same.
fn output_limit(message: String) -> NodeFailure {
    NodeFailure {
        kind: "output-limit".into(),
        message,
        retryable: false,
        code: Some(Code::WorkflowOutputLimit.as_string()),
    }
}

/// Checks node `node`'s outputs against the caps (one output, the whole run), then keeps them,
/// the large ones in storage. `Ok(Err(_))` is the node's failure.
async fn keep_outputs(
    ctx: &RunContext,
    node: &str,
    outputs: Vec<(String, Value)>,
) -> Result<std::result::Result<Vec<(String, Held)>, NodeFailure>> {
    let max = ctx.max_output_bytes;
    if let Some((port, value)) = outputs.iter().find(|(_, v)| v.len() as u64 > max) {
        return Ok(Err(output_limit(format!(
            "output '{port}' is {} bytes, more than the {max} one output may carry \
             ([workflows] max_output_bytes)",
            value.len()
        ))));
    }
    let size: u64 = outputs.iter().map(|(_, v)| v.len() as u64).sum();
    let max = ctx.max_run_output_bytes;
    let reserved = ctx
        .output_bytes
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |used| {
            used.checked_add(size).filter(|total| *total <= max)
        });
    if let Err(used) = reserved {
        return Ok(Err(output_limit(format!(
            "its outputs ({size} bytes) would bring the run's outputs to {} bytes, more than \
             the {max} one run may produce ([workflows] max_run_output_bytes)",
            used.saturating_add(size)
        ))));
    }
    let mut kept = Vec::with_capacity(outputs.len());
    for (port, value) in outputs {
        let held = ctx.values.keep(&ctx.run_id, node, &port, value).await?;
        kept.push((port, held));
    }
    Ok(Ok(kept))
}

/// Runs node `i` from `attempt` on, retrying as declared, and stores each state.
async fn run_node(
    ctx: &Arc<RunContext>,
    i: usize,
    inputs: Vec<(String, Held)>,
    mut attempt: u32,
) -> Result<Finished> {
    let node = &ctx.plan.nodes[i];
    let id = node.spec.id.clone();
    let max_attempts = node.spec.retry.as_ref().map_or(1, |r| r.max_attempts);
    let mut limits = node.plugin.settings.limits;
    if let Some(timeout) = node.spec.timeout {
        // The node's own timeout may shorten, never lengthen, what the admin allows.
        limits.timeout_ms = limits.timeout_ms.min((timeout.as_millis() as u64).max(1));
    }
    let label = node.pinned_type();
    let grants = crate::registry::effective(&node.plugin.settings.grants, &ctx.grantee);
    loop {
        // The owner's slot first, so a user's waiting nodes hold none of the host's.
        let user_slot = ctx.plugins.slots().acquire(&ctx.owner_id).await;
        let permit = ctx.slots.acquire().await.expect("node slots stay open");
        if !records::node_started(&ctx.store, &ctx.run_id, &id, attempt, &inputs, now_ms()).await? {
            return Ok(Finished::Closed);
        }
        crash::point("node-started", Some(&id));
        ctx.announce(Event::NodeStarted {
            node: id.clone(),
            attempt,
        });
        let events = Arc::default();
        let services = ctx.plugins.services(
            &label,
            &ctx.owner_id,
            Arc::clone(&events),
            Some(live_events(ctx, &id)),
            Some(crate::job::JobScope {
                run_id: ctx.run_id.clone(),
                node_id: id.clone(),
                attempt,
            }),
        );
        let values = load(ctx, &inputs).await?;
        let started = Instant::now();
        let result = node
            .plugin
            .plugin
            .run(
                ctx.plugins.runtime(),
                &node.spec.config,
                values,
                &limits,
                &grants,
                services,
            )
            .await;
        let ended = now_ms();
        drop(permit);
        drop(user_slot);
        let duration_ms = started.elapsed().as_secs_f64() * 1e3;
        let logs: Vec<serde_json::Value> =
            std::mem::take(&mut *events.lock().expect("events lock"));
        let failure = match result {
            Ok(outs) => match keep_outputs(ctx, &id, outs).await? {
                Ok(kept) => {
                    let state = NodeState {
                        status: NodeStatus::Succeeded,
                        at: ended,
                        outputs: Some(&kept),
                        error: None,
                        logs: &logs,
                    };
                    if !records::node_state(&ctx.store, &ctx.run_id, &id, &state).await? {
                        return Ok(Finished::Closed);
                    }
                    crash::point("node-succeeded", Some(&id));
                    ctx.announce(Event::NodeSucceeded {
                        node: id,
                        attempt,
                        duration_ms,
                    });
                    return Ok(Finished::Succeeded(kept.into_iter().collect()));
                }
                Err(failure) => failure,
            },
            Err(error) => NodeFailure {
                kind: error.kind().into(),
                message: error.to_string(),
                retryable: worth_retrying(&error),
                code: None,
            },
        };
        if failure.retryable && attempt < max_attempts {
            let delay = node
                .spec
                .retry
                .as_ref()
                .map(|r| r.delay(attempt))
                .unwrap_or_default();
            let state = NodeState {
                status: NodeStatus::Retrying,
                at: ended,
                outputs: None,
                error: Some(&failure),
                logs: &logs,
            };
            if !records::node_state(&ctx.store, &ctx.run_id, &id, &state).await? {
                return Ok(Finished::Closed);
            }
            crash::point("node-retrying", Some(&id));
            ctx.announce(Event::NodeRetried {
                node: id.clone(),
                attempt,
                error: failure,
                delay_ms: delay.as_millis() as u64,
            });
            tokio::time::sleep(delay).await;
            attempt += 1;
            continue;
        }
        let stored = if node.spec.on_error == OnError::Fail {
            let reason = failure_reason(&id, &failure.message);
            records::node_failed_run(
                &ctx.store,
                &ctx.run_id,
                &id,
                &failure,
                &logs,
                &reason,
                ended,
            )
            .await?
        } else {
            let state = NodeState {
                status: NodeStatus::Failed,
                at: ended,
                outputs: None,
                error: Some(&failure),
                logs: &logs,
            };
            records::node_state(&ctx.store, &ctx.run_id, &id, &state).await?
        };
        if !stored {
            return Ok(Finished::Closed);
        }
        crash::point("node-failed", Some(&id));
        ctx.announce(Event::NodeFailed {
            node: id,
            attempt,
            error: failure.clone(),
        });
        return Ok(Finished::Failed(failure));
    }
}

/// Forwards a node's log lines and progress to the run's watchers as they happen.
fn live_events(ctx: &Arc<RunContext>, node: &str) -> crate::registry::LiveEvents {
    let ctx = Arc::downgrade(ctx);
    let node = node.to_string();
    Arc::new(move |event: &serde_json::Value| {
        let Some(ctx) = ctx.upgrade() else { return };
        let text = |key: &str| {
            event
                .get(key)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string()
        };
        let event = match event.get("type").and_then(|t| t.as_str()) {
            Some("queued") => Event::NodeQueued {
                node: node.clone(),
                position: event
                    .get("position")
                    .and_then(|p| p.as_u64())
                    .unwrap_or_default(),
                message: text("message"),
            },
            Some("progress") => Event::NodeProgress {
                node: node.clone(),
                fraction: event
                    .get("fraction")
                    .and_then(|f| f.as_f64())
                    .unwrap_or_default() as f32,
                message: text("message"),
            },
            _ => Event::NodeLog {
                node: node.clone(),
                level: text("level"),
                message: text("message"),
            },
        };
        ctx.announce(event);
    })
}
