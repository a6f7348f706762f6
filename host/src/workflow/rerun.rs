//! Running a finished run again from one node: a new run of the same pinned definition and
//! inputs in which the nodes that succeeded before, and are neither that node nor depend on
//! it, keep their outputs and do not run again.
//!
//! Only outputs held in the database are reused: a node whose outputs went to the value
//! storage (larger than `[workflows] inline_value_bytes`) runs again, since stored values
//! belong to their run.

use super::executor::Prior;
use super::{NodeStatus, RunStatus, RunSummary, Workflows, values};
use crate::auth::Caller;
use crate::error::{Code, Error, Result};
use crate::store::new_id;
use std::collections::BTreeMap;

impl Workflows {
    /// Starts a new run of finished run `run_id` that runs `from` and every node after it
    /// again, reusing the outputs of the nodes before it that succeeded.
    pub async fn rerun(&self, caller: &Caller, run_id: &str, from: &str) -> Result<RunSummary> {
        let old = self.run(caller, run_id).await?;
        if !old.run.status.is_finished() {
            return Err(Error::new(Code::Conflict, "the run has not finished")
                .details(serde_json::json!({ "status": old.run.status }))
                .hint("wait for it to finish, or cancel it first"));
        }
        let plan = self.validate(&old.definition).await?;
        let Some(start) = plan.index(from) else {
            return Err(Error::invalid_field(
                "from",
                format!("the run has no node '{from}'"),
            ));
        };
        // `from` and everything that depends on it, at any depth.
        let mut again = vec![false; plan.nodes.len()];
        again[start] = true;
        let mut changed = true;
        while changed {
            changed = false;
            for (i, node) in plan.nodes.iter().enumerate() {
                if !again[i] && node.after.iter().any(|&a| again[a]) {
                    again[i] = true;
                    changed = true;
                }
            }
        }
        let prior = plan
            .nodes
            .iter()
            .zip(&again)
            .map(|(node, &again)| {
                let before = old.nodes.iter().find(|n| n.id == node.spec.id);
                match before {
                    Some(n)
                        if !again
                            && n.status == NodeStatus::Succeeded
                            && n.stored_outputs.is_empty() =>
                    {
                        Prior {
                            status: NodeStatus::Succeeded,
                            next_attempt: n.attempts.max(0) as u32,
                            outputs: Some(values::join(n.outputs.as_ref(), &BTreeMap::new())),
                        }
                    }
                    _ => Prior::fresh(),
                }
            })
            .collect();
        let inputs = match &old.inputs {
            serde_json::Value::Object(map) => map.clone(),
            _ => serde_json::Map::new(),
        };
        let run = RunSummary {
            id: new_id(),
            workflow_id: old.run.workflow_id.clone(),
            workflow_version: old.run.workflow_version,
            owner_id: old.run.owner_id.clone(),
            status: RunStatus::Queued,
            error: None,
            created_at: chrono::Utc::now(),
            started_at: None,
            finished_at: None,
            // The same code as the run it repeats.
            project_id: old.run.project_id.clone(),
            git_commit: old.run.git_commit.clone(),
        };
        tracing::info!(run = %run.id, from_run = %run_id, from, by = %caller.name, "run again");
        self.launch(run, plan, inputs, prior).await
    }
}
