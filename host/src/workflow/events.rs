//! Run events: announced (after they are stored) to every WebSocket watching a run or a user's runs.

// Part of the crate's public face (reached through `AppState`'s services) not yet documented
// item by item: issue 22, item 4.
#![allow(missing_docs)]

use super::records::{NodeFailure, RunStatus};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::sync::Arc;
use tokio::sync::broadcast;
use utoipa::ToSchema;

/// One thing that happened in a run.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RunEvent {
    pub run_id: String,
    pub workflow_id: String,
    #[serde(skip)]
    pub owner_id: String,
    pub at: DateTime<Utc>,
    #[serde(flatten)]
    pub event: Event,
}

/// What happened.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    RunStarted,
    NodeStarted {
        node: String,
        attempt: u32,
    },
    NodeProgress {
        node: String,
        fraction: f32,
        message: String,
    },
    NodeLog {
        node: String,
        level: String,
        message: String,
    },
    NodeSucceeded {
        node: String,
        attempt: u32,
        duration_ms: f64,
    },
    NodeRetried {
        node: String,
        attempt: u32,
        error: NodeFailure,
        delay_ms: u64,
    },
    NodeFailed {
        node: String,
        attempt: u32,
        error: NodeFailure,
    },
    NodeSkipped {
        node: String,
        reason: String,
    },
    RunFinished {
        status: RunStatus,
        #[serde(skip_serializing_if = "Option::is_none")]
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
