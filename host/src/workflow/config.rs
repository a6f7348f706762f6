//! `[workflows]`: the workflow engine.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The workflow engine.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkflowsConfig {
    /// Nodes of one run that may run at once.
    pub max_parallel_nodes: usize,
    /// Nodes of all runs that may run at once.
    pub max_total_nodes: usize,
    /// Nodes one workflow may have.
    pub max_nodes: usize,
    /// Unfinished (queued or running) runs one user may have; more are refused (40203).
    pub max_runs_per_user: usize,
    /// Nodes of one user's runs and direct runs that may run at once; further nodes of their
    /// runs wait, further direct runs are refused (60207).
    pub max_running_nodes_per_user: usize,
    /// Largest value one output of a node may carry (bytes of JSON text, or bytes); a node
    /// producing more fails (40204).
    pub max_output_bytes: u64,
    /// Most bytes of outputs one run may produce in all; the node going past it fails (40204).
    pub max_run_output_bytes: u64,
    /// Values up to this size are kept in the run's rows and in memory; larger ones are written
    /// to `values_dir` and read back only when a node takes them or a client downloads them.
    pub inline_value_bytes: u64,
    /// Where run values larger than `inline_value_bytes` are kept [default:
    /// <data_dir>/run-values]. Weft hosts sharing a database must share it.
    pub values_dir: Option<PathBuf>,
}

impl Default for WorkflowsConfig {
    fn default() -> Self {
        Self {
            max_parallel_nodes: 8,
            max_total_nodes: 128,
            max_nodes: 10_000,
            max_runs_per_user: 16,
            max_running_nodes_per_user: 32,
            max_output_bytes: 64 << 20,
            max_run_output_bytes: 1 << 30,
            inline_value_bytes: 64 << 10,
            values_dir: None,
        }
    }
}
