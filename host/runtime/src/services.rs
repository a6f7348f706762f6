//! What the host offers plugins beyond computation: logs, progress, secrets, artifacts (with
//! data versions and models) and container jobs.
//! The runtime checks grants; the embedder (the `weft` host) supplies the implementation.

use crate::jobs::{JobExit, JobSpec};
use std::future::Future;
use std::pin::Pin;

/// A boxed future, so the trait stays object-safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Severity of a plugin's log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Finest detail.
    Trace,
    /// Detail for the plugin's author.
    Debug,
    /// Normal progress.
    Info,
    /// Something unexpected that the call survived.
    Warn,
    /// A failure.
    Error,
}

impl LogLevel {
    /// Writes `message` to the host's log at this level, attributed to `plugin`.
    pub fn emit(self, plugin: &str, message: &str) {
        match self {
            LogLevel::Trace => tracing::trace!(plugin, "{message}"),
            LogLevel::Debug => tracing::debug!(plugin, "{message}"),
            LogLevel::Info => tracing::info!(plugin, "{message}"),
            LogLevel::Warn => tracing::warn!(plugin, "{message}"),
            LogLevel::Error => tracing::error!(plugin, "{message}"),
        }
    }
}

/// Host services for one call (a node run) or one strategy instance.
pub trait HostServices: Send + Sync + 'static {
    /// A log line from the plugin.
    fn log(&self, level: LogLevel, message: &str);
    /// Progress of the current call, `fraction` already clamped to 0..=1.
    fn progress(&self, fraction: f32, message: &str);
    /// A secret's value (the grant was checked already).
    fn secret(&self, name: &str) -> BoxFuture<'_, Result<String, String>>;
    /// Stores bytes and returns their key (the grant was checked already).
    fn put_artifact(&self, name: &str, data: Vec<u8>) -> BoxFuture<'_, Result<String, String>>;
    /// Reads bytes back by key (the grant was checked already).
    fn get_artifact(&self, key: &str) -> BoxFuture<'_, Result<Vec<u8>, String>>;
    /// A dataset version's manifest as JSON text (the grant was checked already). Hosts
    /// without data versions refuse.
    fn dataset(
        &self,
        dataset: &str,
        _version: Option<u32>,
    ) -> BoxFuture<'_, Result<String, String>> {
        let msg = format!("no data versions are available for '{dataset}'");
        Box::pin(async move { Err(msg) })
    }
    /// A file of a dataset version (the grant was checked already).
    fn read_dataset_file(
        &self,
        dataset: &str,
        _version: u32,
        _path: &str,
    ) -> BoxFuture<'_, Result<Vec<u8>, String>> {
        let msg = format!("no data versions are available for '{dataset}'");
        Box::pin(async move { Err(msg) })
    }
    /// Records artifact `key` as the next version of model `name`; returns the model's id and
    /// the version's number (the grant was checked already).
    fn record_model(&self, name: &str, _key: &str) -> BoxFuture<'_, Result<(String, u64), String>> {
        let msg = format!("no model registry is available for '{name}'");
        Box::pin(async move { Err(msg) })
    }
    /// Records the artifacts `files` (path in the dataset, content key) as the next version
    /// of dataset `name` of the run's project; returns the dataset's id and the version's
    /// number (the grant was checked already).
    fn record_dataset(
        &self,
        name: &str,
        _files: Vec<(String, String)>,
    ) -> BoxFuture<'_, Result<(String, u32), String>> {
        let msg = format!("no data versions are available for '{name}'");
        Box::pin(async move { Err(msg) })
    }
    /// Starts a container job and returns its handle for this call (the grant was checked
    /// already). Hosts without an engine refuse.
    fn submit_job(&self, _spec: JobSpec) -> BoxFuture<'_, Result<u32, String>> {
        Box::pin(async { Err("no container engine is available for jobs".to_string()) })
    }
    /// The job's next output lines, waiting for some; `None` once it ended and all were read.
    fn job_logs(&self, _job: u32) -> BoxFuture<'_, Option<Vec<String>>> {
        Box::pin(async { None })
    }
    /// Waits for the job to end, collects its outputs and removes it.
    fn wait_job(&self, job: u32) -> BoxFuture<'_, Result<JobExit, String>> {
        Box::pin(async move { Err(format!("no job {job} in this call")) })
    }
}

/// Services that log through `tracing` and offer no secrets or artifacts.
pub struct NoServices {
    /// Who the log lines are attributed to.
    pub plugin: String,
}

impl HostServices for NoServices {
    fn log(&self, level: LogLevel, message: &str) {
        level.emit(&self.plugin, message);
    }

    fn progress(&self, fraction: f32, message: &str) {
        tracing::debug!(plugin = %self.plugin, fraction, "{message}");
    }

    fn secret(&self, name: &str) -> BoxFuture<'_, Result<String, String>> {
        let msg = format!("no secret store is available for '{name}'");
        Box::pin(async move { Err(msg) })
    }

    fn put_artifact(&self, _name: &str, _data: Vec<u8>) -> BoxFuture<'_, Result<String, String>> {
        Box::pin(async { Err("no artifact store is available".to_string()) })
    }

    fn get_artifact(&self, _key: &str) -> BoxFuture<'_, Result<Vec<u8>, String>> {
        Box::pin(async { Err("no artifact store is available".to_string()) })
    }
}
