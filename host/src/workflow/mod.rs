//! Workflows: DAGs of WebAssembly nodes. Definitions are validated against the registered
//! plugins before they are stored, every save makes a new version, and runs execute in parallel
//! with retries, timeouts and failure policies, resuming after a host restart.
//!
//! Not here: HTTP concerns (see `routes`) and calling plugins (see [`crate::registry`]).

mod attempts;
pub(crate) mod config;
mod encoding;
mod events;
mod executor;
mod layout;
pub(crate) mod model;
mod plan;
mod records;
mod rerun;
pub(crate) mod routes;
mod values;

pub use crate::api::page::Page;
pub use events::{Event, RunEvent};

pub(crate) use attempts::Attempt;
pub(crate) use events::EventHub;
pub(crate) use model::Definition;
pub(crate) use plan::Fault;
pub(crate) use records::{NodeStatus, RunDetail, RunStatus, RunSummary, Workflow};
pub(crate) use values::{RunValues, StoredKind};

use crate::auth::Caller;
use crate::error::{Code, Error, Result};
use crate::lineage::{Lineage, RunLineage, RunRef};
use crate::registry::{Grantee, PluginUsers, Plugins};
use crate::store::{Store, new_id};
use crate::telemetry::Metrics;
use config::WorkflowsConfig;
use executor::{Prior, RunContext, RunInputs};
use plan::{Bounds, Plan};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use weft_runtime::Value;

/// The workflow service; cheap to clone.
#[derive(Clone)]
pub struct Workflows {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    plugins: Plugins,
    values: RunValues,
    hub: EventHub,
    config: WorkflowsConfig,
    slots: Arc<Semaphore>,
    /// Held while a run is admitted (counted against its owner's limit, then stored), so two
    /// runs started at once cannot both take a user's last place.
    admission: tokio::sync::Mutex<()>,
    /// Runs executing in this process, by id.
    active: Mutex<HashMap<String, CancellationToken>>,
    /// Pins the project a run names to its commit.
    lineage: Lineage,
    metrics: Arc<Metrics>,
}

impl Workflows {
    /// Starts the service and resumes every run a previous process left unfinished.
    pub(crate) async fn start(
        store: Store,
        plugins: Plugins,
        lineage: Lineage,
        values: RunValues,
        config: WorkflowsConfig,
        metrics: Arc<Metrics>,
    ) -> Result<Self> {
        let workflows = Self {
            inner: Arc::new(Inner {
                slots: Arc::new(Semaphore::new(config.max_total_nodes.max(1))),
                store,
                plugins: plugins.clone(),
                values,
                hub: EventHub::default(),
                config,
                admission: tokio::sync::Mutex::default(),
                active: Mutex::default(),
                lineage,
                metrics,
            }),
        };
        plugins.add_users(Arc::<Inner>::downgrade(&workflows.inner));
        for id in records::unfinished_runs(&workflows.inner.store).await? {
            tracing::info!(run = %id, "resuming an unfinished run");
            if let Err(err) = workflows.resume(&id).await {
                tracing::error!(run = %id, %err, "cannot resume the run; marking it failed");
                let reason = format!("cannot resume after a restart: {}", err.message);
                records::close_run(
                    &workflows.inner.store,
                    &id,
                    RunStatus::Failed,
                    Some(&reason),
                    &records::not_run(&reason),
                )
                .await?;
            }
        }
        Ok(workflows)
    }

    /// Live run events.
    pub fn events(&self) -> &EventHub {
        &self.inner.hub
    }

    fn bounds(&self) -> Bounds {
        Bounds {
            max_nodes: self.inner.config.max_nodes,
        }
    }

    /// Checks a definition against the registered plugins, reporting every fault.
    pub async fn validate(&self, definition: &Definition) -> Result<Plan> {
        plan::plan(&self.inner.plugins, definition, self.bounds())
            .await
            .map_err(invalid)
    }

    /// Validates and stores a new workflow owned by the caller.
    pub async fn create(&self, caller: &Caller, definition: Definition) -> Result<Workflow> {
        self.validate(&definition).await?;
        let now = chrono::Utc::now();
        let workflow = Workflow {
            id: new_id(),
            owner_id: caller.user_id.clone(),
            name: definition.name.clone(),
            version: 1,
            definition,
            created_at: now,
            updated_at: now,
        };
        records::insert_workflow(&self.inner.store, &workflow).await?;
        tracing::info!(workflow = %workflow.id, name = %workflow.name, "workflow created");
        Ok(workflow)
    }

    /// Workflows the caller may see (an admin sees all), in creation order.
    pub async fn list(
        &self,
        caller: &Caller,
        cursor: Option<&str>,
        limit: i64,
    ) -> Result<Page<Workflow>> {
        let owner = (!caller.is_admin()).then_some(caller.user_id.as_str());
        let items =
            records::workflows(&self.inner.store, owner, cursor.unwrap_or_default(), limit).await?;
        let next_cursor = (items.len() as i64 == limit)
            .then(|| items.last().map(|w| w.id.clone()))
            .flatten();
        Ok(Page { items, next_cursor })
    }

    /// A workflow the caller may see; others' workflows are not found.
    pub async fn get(&self, caller: &Caller, id: &str) -> Result<Workflow> {
        match records::workflow(&self.inner.store, id).await? {
            Some(w) if w.owner_id == caller.user_id || caller.is_admin() => Ok(w),
            _ => Err(Error::not_found("workflow", id)),
        }
    }

    /// A workflow as it was at `version`.
    pub async fn get_version(&self, caller: &Caller, id: &str, version: i64) -> Result<Workflow> {
        let mut workflow = self.get(caller, id).await?;
        if version != workflow.version {
            workflow.definition = records::workflow_version(&self.inner.store, id, version)
                .await?
                .ok_or_else(|| {
                    Error::not_found("workflow version", &format!("{id} v{version}"))
                        .hint(format!("versions run from 1 to {}", workflow.version))
                })?;
            workflow.name = workflow.definition.name.clone();
            workflow.version = version;
        }
        Ok(workflow)
    }

    /// Saves a new version; runs keep the version they started with.
    pub async fn update(
        &self,
        caller: &Caller,
        id: &str,
        definition: Definition,
    ) -> Result<Workflow> {
        let mut workflow = self.get(caller, id).await?;
        self.validate(&definition).await?;
        workflow.version += 1;
        workflow.name = definition.name.clone();
        workflow.definition = definition;
        workflow.updated_at = chrono::Utc::now();
        records::update_workflow(&self.inner.store, &workflow, &caller.user_id).await?;
        Ok(workflow)
    }

    /// Deletes a workflow, its versions and its runs; refused while a run is active.
    pub async fn delete(&self, caller: &Caller, id: &str) -> Result<()> {
        self.get(caller, id).await?;
        if records::has_active_run(&self.inner.store, id).await? {
            return Err(Error::new(
                Code::WorkflowBusy,
                format!("workflow '{id}' has a run in progress"),
            )
            .hint("cancel its runs (POST /api/v1/runs/{run_id}/cancel) and delete it again"));
        }
        let runs = records::runs_of_workflow(&self.inner.store, id).await?;
        records::delete_workflow(&self.inner.store, id).await?;
        for run in runs {
            if let Err(err) = self.inner.values.remove_run(&run).await {
                tracing::warn!(run = %run, %err, "cannot remove the stored values of a deleted run");
            }
        }
        Ok(())
    }

    /// Run `id`'s lineage (what it ran on, read and produced), if `caller` may see the run.
    pub(crate) async fn lineage(&self, caller: &Caller, id: &str) -> Result<RunLineage> {
        let run = self.summary(caller, id).await?;
        self.inner
            .lineage
            .of_run(RunRef {
                id: run.id,
                workflow_id: run.workflow_id,
                project_id: run.project_id,
                git_commit: run.git_commit,
            })
            .await
    }

    /// Starts a run of the workflow's current version with `inputs` (node id -> port -> value),
    /// on `project` of the workflow's owner (id or name, as its container jobs name one) at
    /// its current commit when named; refused while the workflow's owner has
    /// `[workflows] max_runs_per_user` unfinished runs.
    pub async fn execute(
        &self,
        caller: &Caller,
        id: &str,
        inputs: serde_json::Map<String, serde_json::Value>,
        project: Option<&str>,
    ) -> Result<RunSummary> {
        let workflow = self.get(caller, id).await?;
        let plan = self.validate(&workflow.definition).await?;
        let (project_id, git_commit) = match project {
            Some(name) => {
                let (id, commit) = self.inner.lineage.pin(&workflow.owner_id, name).await?;
                (Some(id), commit)
            }
            None => (None, None),
        };
        let run = RunSummary {
            id: new_id(),
            workflow_id: workflow.id.clone(),
            workflow_version: workflow.version,
            owner_id: workflow.owner_id.clone(),
            status: RunStatus::Queued,
            error: None,
            created_at: chrono::Utc::now(),
            started_at: None,
            finished_at: None,
            project_id,
            git_commit,
        };
        let prior = vec![Prior::fresh(); plan.nodes.len()];
        self.launch(run, plan, inputs, prior).await
    }

    /// Stores and starts `run` of `plan` with `inputs`, the nodes as `prior` says (reused
    /// outputs of succeeded nodes are stored with the run first); refused while the owner has
    /// `[workflows] max_runs_per_user` unfinished runs.
    async fn launch(
        &self,
        run: RunSummary,
        plan: Plan,
        inputs: serde_json::Map<String, serde_json::Value>,
        prior: Vec<Prior>,
    ) -> Result<RunSummary> {
        let run_inputs = check_inputs(&plan, &inputs)?;
        let grantee = self.inner.plugins.grantee(&run.owner_id).await?;
        let pinned = plan.pinned_definition();
        let admission = self.inner.admission.lock().await;
        let limit = self.inner.config.max_runs_per_user;
        let active = records::active_runs_of(&self.inner.store, &run.owner_id).await?;
        if active >= limit as i64 {
            return Err(Error::new(
                Code::WorkflowRunLimit,
                format!("the workflow's owner already has {active} unfinished runs, the most one user may"),
            )
            .details(serde_json::json!({ "limit": limit, "active": active, "owner_id": run.owner_id }))
            .hint("wait for a run to finish or cancel one (POST /api/v1/runs/{id}/cancel); an \
                   admin sets the limit with [workflows] max_runs_per_user"));
        }
        records::insert_run(
            &self.inner.store,
            &run,
            &pinned,
            &serde_json::Value::Object(inputs),
        )
        .await?;
        for (node, prior) in plan.nodes.iter().zip(&prior) {
            if let (NodeStatus::Succeeded, Some(outputs)) = (prior.status, &prior.outputs) {
                let outputs: Vec<(String, values::Held)> = outputs
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                let state = records::NodeState {
                    status: NodeStatus::Succeeded,
                    at: crate::store::now_ms(),
                    outputs: Some(&outputs),
                    error: None,
                    logs: &[],
                };
                records::node_state(&self.inner.store, &run.id, &node.spec.id, &state).await?;
            }
        }
        drop(admission);
        self.spawn(&run, grantee, plan, run_inputs, prior);
        Ok(run)
    }

    /// Picks up a run the store says is unfinished, or ends it if its nodes say it has ended.
    async fn resume(&self, id: &str) -> Result<()> {
        let detail = records::run_detail(&self.inner.store, id)
            .await?
            .ok_or_else(|| Error::not_found("run", id))?;
        let plan = self.validate(&detail.definition).await?;
        if let Some((status, error)) = executor::settled(&plan, &detail.nodes) {
            tracing::info!(run = %id, status = status.as_str(), "the run's nodes say it has ended");
            let node_error = match &error {
                Some(reason) => records::not_run(reason),
                None => records::cancelled(),
            };
            return records::close_run(
                &self.inner.store,
                id,
                status,
                error.as_deref(),
                &node_error,
            )
            .await;
        }
        let inputs = match &detail.inputs {
            serde_json::Value::Object(map) => check_inputs(&plan, map)?,
            _ => RunInputs::default(),
        };
        let prior = detail
            .nodes
            .iter()
            .map(|node| {
                let attempts = node.attempts.max(0) as u32;
                match node.status {
                    NodeStatus::Succeeded => Prior {
                        status: node.status,
                        next_attempt: attempts,
                        outputs: Some(values::join(node.outputs.as_ref(), &node.stored_outputs)),
                    },
                    status if status.is_finished() => Prior {
                        status,
                        next_attempt: attempts,
                        outputs: None,
                    },
                    // Cut short by the restart: the same attempt runs again.
                    NodeStatus::Running => Prior {
                        next_attempt: attempts.max(1),
                        ..Prior::fresh()
                    },
                    NodeStatus::Retrying => Prior {
                        next_attempt: attempts + 1,
                        ..Prior::fresh()
                    },
                    _ => Prior::fresh(),
                }
            })
            .collect();
        let grantee = self.inner.plugins.grantee(&detail.run.owner_id).await?;
        self.spawn(&detail.run, grantee, plan, inputs, prior);
        Ok(())
    }

    fn spawn(
        &self,
        run: &RunSummary,
        grantee: Grantee,
        plan: Plan,
        inputs: RunInputs,
        prior: Vec<Prior>,
    ) {
        let cancel = CancellationToken::new();
        self.inner
            .active
            .lock()
            .expect("active runs lock")
            .insert(run.id.clone(), cancel.clone());
        let produced: u64 = prior
            .iter()
            .flat_map(|p| p.outputs.iter().flatten())
            .map(|(_, held)| held.size())
            .sum();
        let ctx = Arc::new(RunContext {
            store: self.inner.store.clone(),
            plugins: self.inner.plugins.clone(),
            hub: self.inner.hub.clone(),
            run_id: run.id.clone(),
            workflow_id: run.workflow_id.clone(),
            owner_id: run.owner_id.clone(),
            grantee,
            plan,
            inputs,
            cancel,
            max_parallel: self.inner.config.max_parallel_nodes.max(1),
            slots: self.inner.slots.clone(),
            values: self.inner.values.clone(),
            max_output_bytes: self.inner.config.max_output_bytes,
            max_run_output_bytes: self.inner.config.max_run_output_bytes,
            output_bytes: produced.into(),
            metrics: self.inner.metrics.clone(),
        });
        let created_at = run.created_at;
        let service = self.clone();
        tokio::spawn(async move {
            let run_id = ctx.run_id.clone();
            let outcome = executor::drive(ctx.clone(), prior).await;
            service
                .inner
                .active
                .lock()
                .expect("active runs lock")
                .remove(&run_id);
            match outcome {
                Ok(status) => {
                    let took = chrono::Utc::now() - created_at;
                    service
                        .inner
                        .metrics
                        .workload
                        .run_finished(status.as_str(), took.num_milliseconds() as f64 / 1000.0);
                    tracing::info!(run = %run_id, status = status.as_str(), "run finished")
                }
                Err(err) => {
                    // The store failed under the run; it resumes when the host restarts.
                    tracing::error!(run = %run_id, %err, "run stopped by a storage error");
                }
            }
        });
    }

    fn visible(&self, caller: &Caller, owner_id: &str) -> bool {
        owner_id == caller.user_id || caller.is_admin()
    }

    /// A run without its nodes, if the caller may see it.
    async fn visible_run(&self, caller: &Caller, run_id: &str) -> Result<RunSummary> {
        match records::run(&self.inner.store, run_id).await? {
            Some(run) if self.visible(caller, &run.owner_id) => Ok(run),
            _ => Err(Error::not_found("run", run_id)),
        }
    }

    /// A run without its nodes, if the caller may see it.
    pub(crate) async fn summary(&self, caller: &Caller, run_id: &str) -> Result<RunSummary> {
        self.visible_run(caller, run_id).await
    }

    /// A run with its nodes, if the caller may see it.
    pub async fn run(&self, caller: &Caller, run_id: &str) -> Result<RunDetail> {
        match records::run_detail(&self.inner.store, run_id).await? {
            Some(d) if self.visible(caller, &d.run.owner_id) => Ok(d),
            _ => Err(Error::not_found("run", run_id)),
        }
    }

    /// Output `port` of node `node_id` of a run the caller may see: its kind, its size and its
    /// content as a stream (a stored value is never read whole).
    pub async fn output(
        &self,
        caller: &Caller,
        run_id: &str,
        node_id: &str,
        port: &str,
    ) -> Result<(StoredKind, u64, values::Chunks)> {
        self.visible_run(caller, run_id).await?;
        let outputs = records::node_outputs(&self.inner.store, run_id, node_id)
            .await?
            .ok_or_else(|| Error::not_found("node", node_id))?;
        let Some(held) = outputs.as_ref().and_then(|o| o.get(port)) else {
            return Err(Error::not_found("output", &format!("{node_id}.{port}"))
                .hint("a node has outputs once it succeeded, and only those it produced"));
        };
        self.inner.values.read(run_id, held).await
    }

    /// Every attempt of node `node_id` of a run the caller may see, first first.
    pub async fn attempts(
        &self,
        caller: &Caller,
        run_id: &str,
        node_id: &str,
    ) -> Result<Vec<Attempt>> {
        self.visible_run(caller, run_id).await?;
        if !records::has_node(&self.inner.store, run_id, node_id).await? {
            return Err(Error::not_found("node", node_id));
        }
        attempts::of_node(&self.inner.store, run_id, node_id).await
    }

    /// The latest run of a workflow.
    pub async fn latest_run(&self, caller: &Caller, workflow_id: &str) -> Result<RunDetail> {
        self.get(caller, workflow_id).await?;
        let latest = records::runs_of(&self.inner.store, workflow_id, None, 1).await?;
        let Some(run) = latest.first() else {
            return Err(Error::not_found("run of workflow", workflow_id)
                .hint("start one with POST /api/v1/workflows/{id}/execute"));
        };
        self.run(caller, &run.id).await
    }

    /// Runs of a workflow, newest first.
    pub async fn runs(
        &self,
        caller: &Caller,
        workflow_id: &str,
        cursor: Option<&str>,
        limit: i64,
    ) -> Result<Page<RunSummary>> {
        self.get(caller, workflow_id).await?;
        let items = records::runs_of(&self.inner.store, workflow_id, cursor, limit).await?;
        let next_cursor = (items.len() as i64 == limit)
            .then(|| items.last().map(|r| r.id.clone()))
            .flatten();
        Ok(Page { items, next_cursor })
    }

    /// Cancels a run: running nodes stop, nothing new starts.
    pub async fn cancel(&self, caller: &Caller, run_id: &str) -> Result<RunSummary> {
        // The summary is enough here: no need to read every node.
        let run = self.visible_run(caller, run_id).await?;
        if run.status.is_finished() {
            return Err(Error::new(
                Code::RunFinished,
                format!("run '{run_id}' already finished ({})", run.status.as_str()),
            )
            .details(serde_json::json!({ "status": run.status })));
        }
        let token = self
            .inner
            .active
            .lock()
            .expect("active runs lock")
            .get(run_id)
            .cloned();
        match token {
            Some(token) => {
                let mut events = self.inner.hub.subscribe();
                token.cancel();
                // Answer once the run has stored its cancellation.
                let wait = async {
                    loop {
                        match events.recv().await {
                            Ok(e)
                                if e.run_id == run_id
                                    && matches!(e.event, Event::RunFinished { .. }) =>
                            {
                                break;
                            }
                            Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                            _ => {}
                        }
                    }
                };
                let _ = tokio::time::timeout(std::time::Duration::from_secs(10), wait).await;
            }
            None => {
                records::close_run(
                    &self.inner.store,
                    run_id,
                    RunStatus::Cancelled,
                    None,
                    &records::cancelled(),
                )
                .await?
            }
        }
        records::run(&self.inner.store, run_id)
            .await?
            .ok_or_else(|| Error::not_found("run", run_id))
    }
}

/// The validation error: every fault in `details.errors`.
fn invalid(faults: Vec<Fault>) -> Error {
    let first = faults
        .first()
        .map(|f| format!("{}: {}", f.path, f.message))
        .unwrap_or_default();
    let message = if faults.len() == 1 {
        format!("the workflow is invalid: {first}")
    } else {
        format!(
            "the workflow has {} problems; the first is {first}",
            faults.len()
        )
    };
    Error::new(Code::WorkflowInvalid, message)
        .details(serde_json::json!({ "errors": faults }))
        .hint("fix each entry of details.errors; `weft workflow validate FILE` checks a file")
}

/// Checks run inputs (`{"node id": {"port": value}}`) against the plan; every required input
/// that no edge feeds must be given.
fn check_inputs(
    plan: &Plan,
    inputs: &serde_json::Map<String, serde_json::Value>,
) -> Result<RunInputs> {
    let mut problems = Vec::new();
    let mut out = RunInputs::new();
    for (node_id, ports) in inputs {
        let Some(i) = plan.index(node_id) else {
            problems.push(format!("'{node_id}' is not a node of this workflow"));
            continue;
        };
        let node = &plan.nodes[i];
        let serde_json::Value::Object(ports) = ports else {
            problems.push(format!(
                "inputs of '{node_id}' must be an object of port -> value"
            ));
            continue;
        };
        let declared = &node.plugin.plugin.description().inputs;
        for (port, value) in ports {
            let Some(decl) = declared.iter().find(|p| &p.name == port) else {
                problems.push(format!("'{node_id}' has no input '{port}'"));
                continue;
            };
            let value: Value = match serde_json::from_value(value.clone()) {
                Ok(v) => v,
                Err(e) => {
                    problems.push(format!("input '{node_id}.{port}': {e}"));
                    continue;
                }
            };
            if !decl.kind.accepts(&value) {
                problems.push(format!(
                    "input '{node_id}.{port}' must be {}",
                    format!("{:?}", decl.kind).to_lowercase()
                ));
                continue;
            }
            out.entry(node_id.clone())
                .or_default()
                .push((port.clone(), value));
        }
    }
    for node in &plan.nodes {
        for port in node.open_inputs() {
            let given = out
                .get(&node.spec.id)
                .is_some_and(|ports| ports.iter().any(|(p, _)| p == &port.name));
            if !given {
                problems.push(format!(
                    "required input '{}.{}' is not fed by an edge and was not given",
                    node.spec.id, port.name
                ));
            }
        }
    }
    if problems.is_empty() {
        return Ok(out);
    }
    Err(Error::new(
        Code::WorkflowRunInputs,
        format!("the run's inputs do not fit the workflow: {}", problems[0]),
    )
    .details(serde_json::json!({ "errors": problems }))
    .hint("send {\"inputs\": {\"<node id>\": {\"<port>\": value}}}"))
}

impl PluginUsers for Inner {
    fn user_of<'a>(
        &'a self,
        name: &'a str,
        version: &'a str,
        last: bool,
    ) -> weft_runtime::BoxFuture<'a, Result<Option<String>>> {
        Box::pin(async move {
            if let Some((id, wf)) =
                records::workflow_using(&self.store, name, version, last).await?
            {
                return Ok(Some(format!("workflow '{wf}' ({id})")));
            }
            Ok(records::run_using(&self.store, name, version)
                .await?
                .map(|run| format!("run {run}")))
        })
    }
}
