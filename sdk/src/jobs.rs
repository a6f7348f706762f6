//! Container jobs, for nodes that declare and were granted the `jobs` capability: run a
//! program in a local container image on the host's engine, for the run's owner and under
//! their container limits, then collect its exit code, its last lines and files it wrote.
//! While it runs its lines reach the run's events by themselves; [`Job::logs`] reads them too.
//!
//! ```no_run
//! use weft_sdk::jobs::JobSpec;
//! let job = JobSpec::new("weft-test/python:1")
//!     .command(["python3", "-c", "print('hi')"])
//!     .cpu("1")
//!     .submit()?;
//! let exit = job.wait()?;
//! assert_eq!(exit.exit_code, 0);
//! # Ok::<(), weft_sdk::node::NodeError>(())
//! ```

use crate::__private::node::weft::plugin::jobs as wit;
use crate::node::NodeError;

/// What to run; build it with the methods, then [`JobSpec::submit`].
#[derive(Debug, Clone, PartialEq)]
pub struct JobSpec(wit::JobSpec);

/// How a job ended.
pub type JobExit = wit::JobExit;

/// A job started by this call.
#[derive(Debug)]
pub struct Job(u32);

impl JobSpec {
    /// A job in `image` (a local image of the host's engine) with the image's own command.
    pub fn new(image: &str) -> Self {
        Self(wit::JobSpec {
            image: image.into(),
            command: Vec::new(),
            workdir: None,
            env: Vec::new(),
            resources: wit::Resources {
                cpu: None,
                memory: None,
                gpu: None,
            },
            project: None,
            inputs: Vec::new(),
            outputs: Vec::new(),
        })
    }

    /// The program and its arguments.
    pub fn command<S: Into<String>>(mut self, command: impl IntoIterator<Item = S>) -> Self {
        self.0.command = command.into_iter().map(Into::into).collect();
        self
    }

    /// The working folder (absolute); `/workspace` by default.
    pub fn workdir(mut self, workdir: Option<String>) -> Self {
        self.0.workdir = workdir;
        self
    }

    /// Sets an environment variable.
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.0.env.push((name.into(), value.into()));
        self
    }

    /// Cores, as a quantity (`"2"`, `"500m"`).
    pub fn cpu(mut self, cpu: impl Into<String>) -> Self {
        self.0.resources.cpu = Some(cpu.into());
        self
    }

    /// CPU, memory and GPUs; absent ones take the host's defaults.
    pub fn resources(mut self, resources: &Resources) -> Self {
        self.0.resources = wit::Resources {
            cpu: resources.cpu.clone(),
            memory: resources.memory.clone(),
            gpu: resources.gpu.clone(),
        };
        self
    }

    /// A project of the run's owner (id or name) copied into the working folder.
    pub fn project(mut self, project: Option<String>) -> Self {
        self.0.project = project;
        self
    }

    /// Puts artifact `key` of the run's owner (from `artifacts::put`; the plugin needs the
    /// `artifacts` capability too) at `path`, relative to the working folder, before the start.
    pub fn input_artifact(mut self, path: &str, key: &str) -> Self {
        self.0.inputs.push(wit::InputFile {
            path: path.into(),
            source: wit::InputSource::Artifact(key.into()),
        });
        self
    }

    /// Puts `data` (a previous node's output, say) at `path`, relative to the working folder,
    /// before the start.
    pub fn input_data(mut self, path: &str, data: impl Into<Vec<u8>>) -> Self {
        self.0.inputs.push(wit::InputFile {
            path: path.into(),
            source: wit::InputSource::Data(data.into()),
        });
        self
    }

    /// A file to collect when the job ends, relative to the working folder.
    pub fn output(mut self, path: &str) -> Self {
        self.0.outputs.push(path.into());
        self
    }

    /// Starts the job (it waits in the host's queue while there is no room). Outside a Weft
    /// host (native tests) this always fails.
    pub fn submit(&self) -> Result<Job, NodeError> {
        if !cfg!(target_arch = "wasm32") {
            return Err(crate::not_in_host("jobs::submit"));
        }
        wit::submit(&self.0).map(Job).map_err(NodeError::from_host)
    }
}

impl Job {
    /// The job's next lines, waiting for some; `None` once it ended and all were read.
    pub fn logs(&self) -> Option<Vec<String>> {
        wit::logs(self.0)
    }

    /// Waits for the job to end, collects its outputs and removes its container.
    pub fn wait(self) -> Result<JobExit, NodeError> {
        wit::wait(self.0).map_err(NodeError::from_host)
    }
}

/// CPU, memory and GPUs as a node's config gives them (`{"cpu": "2", "memory": "1Gi",
/// "gpu": "1"}`), quantities as the host's containers take them.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    /// Cores.
    pub cpu: Option<String>,
    /// Bytes with a unit.
    pub memory: Option<String>,
    /// Whole GPUs.
    pub gpu: Option<String>,
}

/// The JSON Schema of [`Resources`], for a node's config schema.
pub fn resources_schema() -> serde_json::Value {
    serde_json::json!({
        "type": "object",
        "properties": {
            "cpu": { "type": "string", "description": "cores: \"2\", \"500m\"" },
            "memory": { "type": "string", "description": "bytes with a unit: \"512Mi\", \"2Gi\"" },
            "gpu": { "type": "string", "description": "whole GPUs: \"1\"" }
        },
        "additionalProperties": false
    })
}

/// Runs `spec` to its end; an exit code other than 0 is a retryable failure that quotes the
/// job's last lines.
pub fn run(spec: &JobSpec) -> Result<JobExit, NodeError> {
    let exit = spec.submit()?.wait()?;
    if exit.exit_code != 0 {
        return Err(NodeError::retryable(format!(
            "the job exited with code {}; its last lines:\n{}",
            exit.exit_code,
            last_lines(&exit.log_tail, 20)
        )));
    }
    Ok(exit)
}

/// The last `n` lines of `text`.
pub fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The last line of `text` that is a JSON document, parsed.
pub fn last_json_line(text: &str) -> Option<serde_json::Value> {
    text.lines()
        .rev()
        .map(str::trim)
        .filter(|l| l.starts_with('{') || l.starts_with('['))
        .find_map(|l| serde_json::from_str(l).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_json_line_wins_and_other_text_is_skipped() {
        let text = "epoch 1\n{\"loss\": 2}\n{\"loss\": 1}\ndone\n";
        assert_eq!(last_json_line(text), Some(serde_json::json!({"loss": 1})));
        assert_eq!(last_json_line("no json"), None);
        assert_eq!(last_lines("a\nb\nc", 2), "b\nc");
    }

    #[test]
    fn outside_a_host_submitting_fails() {
        assert!(JobSpec::new("x").submit().is_err());
    }
}
