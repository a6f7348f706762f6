//! `[notebooks]`: code run in the kernel of a project's Jupyter session.

use serde::{Deserialize, Serialize};

/// Notebooks: code run in the kernel of a project's Jupyter session.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotebooksConfig {
    /// The Jupyter kernel spec new notebooks run on.
    pub kernel: String,
    /// An execution running longer is interrupted (a request may ask for less or more, up to
    /// `max_execution_timeout_secs`).
    pub execution_timeout_secs: u64,
    pub max_execution_timeout_secs: u64,
    /// How long an interrupted kernel has to stop before it is restarted.
    pub interrupt_grace_secs: u64,
    /// How long a new kernel has to answer before the execution fails.
    pub kernel_start_timeout_secs: u64,
    /// Executions one user may have running or waiting at once, over all notebooks; more are
    /// refused (20301).
    pub max_pending_per_user: usize,
    /// Outputs one execution keeps, in bytes: past it the oldest are dropped (the tail is
    /// kept) and a note says so.
    pub max_output_bytes: u64,
}

impl Default for NotebooksConfig {
    fn default() -> Self {
        Self {
            kernel: "python3".into(),
            execution_timeout_secs: 600,
            max_execution_timeout_secs: 24 * 60 * 60,
            interrupt_grace_secs: 10,
            kernel_start_timeout_secs: 60,
            max_pending_per_user: 16,
            max_output_bytes: 1024 * 1024,
        }
    }
}
