//! Run events: announced (after they are stored) to every WebSocket watching a run or a user's runs.

use super::records::{NodeFailure, RunStatus};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::sync::Arc;
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

/// The fan-out point of run events.
#[derive(Clone)]
pub struct EventHub {
    sender: broadcast::Sender<Arc<RunEvent>>,
}

impl Default for EventHub {
    fn default() -> Self {
        Self {
            sender: broadcast::channel(4096).0,
        }
    }
}

impl EventHub {
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<RunEvent>> {
        self.sender.subscribe()
    }

    pub fn announce(&self, event: RunEvent) {
        // No subscriber is fine: the store already has the state.
        let _ = self.sender.send(Arc::new(event));
    }
}
