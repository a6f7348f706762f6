//! Run events: announced (after they are stored) to every WebSocket watching a run or a user's runs.

use super::records::{NodeFailure, RunStatus};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;
use utoipa::ToSchema;

/// One thing that happened in a run.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RunEvent {
    /// The run it happened in.
    pub run_id: String,
    /// The run's workflow.
    pub workflow_id: String,
    #[serde(skip)]
    /// The run's owner (not sent).
    pub owner_id: String,
    /// When it happened.
    pub at: DateTime<Utc>,
    #[serde(flatten)]
    /// What happened.
    pub event: Event,
}

/// What happened.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// The run began.
    RunStarted,
    /// A node's attempt began.
    NodeStarted {
        /// The node's id.
        node: String,
        /// Its attempt, from 1.
        attempt: u32,
    },
    /// A node reported how far it is.
    NodeProgress {
        /// The node's id.
        node: String,
        /// How much is done, from 0 to 1.
        fraction: f32,
        /// What it is doing.
        message: String,
    },
    /// A node's container job waits for room on the host.
    NodeQueued {
        /// The node's id.
        node: String,
        /// How many jobs waiting for the host come before it (0: it is next).
        position: u64,
        /// The same, in words.
        message: String,
    },
    /// A node wrote a log line.
    NodeLog {
        /// The node's id.
        node: String,
        /// The line's level (`trace`, `debug`, `info`, `warn`, `error`).
        level: String,
        /// The line.
        message: String,
    },
    /// A node's attempt succeeded.
    NodeSucceeded {
        /// The node's id.
        node: String,
        /// The attempt that succeeded, from 1.
        attempt: u32,
        /// How long the attempt took, in milliseconds.
        duration_ms: f64,
    },
    /// A node's attempt failed and the node will be tried again.
    NodeRetried {
        /// The node's id.
        node: String,
        /// The attempt that failed, from 1.
        attempt: u32,
        /// Why it failed.
        error: NodeFailure,
        /// How long before the next attempt, in milliseconds.
        delay_ms: u64,
    },
    /// A node failed for good (no attempt left).
    NodeFailed {
        /// The node's id.
        node: String,
        /// The last attempt, from 1.
        attempt: u32,
        /// Why it failed.
        error: NodeFailure,
    },
    /// A node did not run.
    NodeSkipped {
        /// The node's id.
        node: String,
        /// Why it did not run.
        reason: String,
    },
    /// The run ended.
    RunFinished {
        /// How it ended.
        status: RunStatus,
        #[serde(skip_serializing_if = "Option::is_none")]
        /// Why it failed, when it did.
        error: Option<String>,
    },
}

/// The fan-out point of run events. It also remembers, per node, the queue position last told
/// while its job waits: that state lives in no record, and a watcher connecting after it was
/// announced would otherwise see a running node and nothing more until the node moves.
#[derive(Clone)]
pub struct EventHub {
    sender: broadcast::Sender<Arc<RunEvent>>,
    /// Each waiting node's latest [`Event::NodeQueued`], until the node announces anything else.
    waiting: Arc<Mutex<Waiting>>,
}

/// `(run, node)` -> the node's latest queue position.
type Waiting = HashMap<(String, String), Arc<RunEvent>>;

impl Default for EventHub {
    fn default() -> Self {
        Self {
            sender: broadcast::channel(4096).0,
            waiting: Arc::default(),
        }
    }
}

impl EventHub {
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<RunEvent>> {
        self.sender.subscribe()
    }

    pub fn announce(&self, event: RunEvent) {
        let event = Arc::new(event);
        {
            let mut waiting = self.waiting.lock().expect("waiting nodes poisoned");
            match &event.event {
                Event::NodeQueued { node, .. } => {
                    waiting.insert((event.run_id.clone(), node.clone()), event.clone());
                }
                Event::RunFinished { .. } => waiting.retain(|(run, _), _| *run != event.run_id),
                other => {
                    if let Some(node) = other.node() {
                        waiting.remove(&(event.run_id.clone(), node.to_string()));
                    }
                }
            }
        }
        // No subscriber is fine: the store already has the state.
        let _ = self.sender.send(event);
    }

    /// The latest queue position of each node of `run` whose job waits for room now; a watcher
    /// sends them after the run's snapshot (subscribed before, so a later move still reaches it).
    pub fn waiting(&self, run: &str) -> Vec<Arc<RunEvent>> {
        let waiting = self.waiting.lock().expect("waiting nodes poisoned");
        let mut found: Vec<_> = waiting
            .iter()
            .filter(|((r, _), _)| r == run)
            .map(|(_, e)| e.clone())
            .collect();
        found.sort_by_key(|e| e.at);
        found
    }
}

impl Event {
    /// The node it is about, if any.
    fn node(&self) -> Option<&str> {
        match self {
            Event::RunStarted | Event::RunFinished { .. } => None,
            Event::NodeStarted { node, .. }
            | Event::NodeProgress { node, .. }
            | Event::NodeQueued { node, .. }
            | Event::NodeLog { node, .. }
            | Event::NodeSucceeded { node, .. }
            | Event::NodeRetried { node, .. }
            | Event::NodeFailed { node, .. }
            | Event::NodeSkipped { node, .. } => Some(node),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(event: Event) -> RunEvent {
        RunEvent {
            run_id: "r".into(),
            workflow_id: "w".into(),
            owner_id: "o".into(),
            at: Utc::now(),
            event,
        }
    }

    #[test]
    fn a_waiting_node_is_remembered_until_it_moves_on() {
        let hub = EventHub::default();
        let queued = |position| Event::NodeQueued {
            node: "a".into(),
            position,
            message: String::new(),
        };
        hub.announce(event(queued(1)));
        hub.announce(event(queued(0)));
        let waiting = hub.waiting("r");
        assert_eq!(waiting.len(), 1);
        assert!(matches!(
            waiting[0].event,
            Event::NodeQueued { position: 0, .. }
        ));
        assert!(hub.waiting("other").is_empty());
        let log = Event::NodeLog {
            node: "a".into(),
            level: "info".into(),
            message: "got room".into(),
        };
        hub.announce(event(log));
        assert!(hub.waiting("r").is_empty());
        hub.announce(event(queued(2)));
        hub.announce(event(Event::RunFinished {
            status: RunStatus::Cancelled,
            error: None,
        }));
        assert!(hub.waiting("r").is_empty());
    }
}
