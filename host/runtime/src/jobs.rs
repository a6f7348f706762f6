//! Container jobs as the runtime hands them between a guest and the host: plain Rust shapes of
//! the `jobs` interface, so the embedder implements [`crate::HostServices`] without knowing
//! the generated bindings.

use crate::bindings::node::weft::plugin::jobs as wit;

/// What a node asked to run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobSpec {
    /// A local image of the host's engine.
    pub image: String,
    /// The program and its arguments; empty keeps the image's command.
    pub command: Vec<String>,
    /// The working folder; `None` for the host's default.
    pub workdir: Option<String>,
    /// Environment variables.
    pub env: Vec<(String, String)>,
    /// Cores, as a quantity.
    pub cpu: Option<String>,
    /// Memory, as a quantity.
    pub memory: Option<String>,
    /// Whole GPUs, as a quantity.
    pub gpu: Option<String>,
    /// A project of the run's owner (id or name) copied into the working folder.
    pub project: Option<String>,
    /// Files put into the working folder before the start: each path and its content (an
    /// artifact named by the node already read from the owner's store).
    pub inputs: Vec<(String, Vec<u8>)>,
    /// Files to collect after the job ends, relative to the working folder.
    pub outputs: Vec<String>,
}

/// How a job ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobExit {
    /// The program's exit code.
    pub exit_code: i64,
    /// The end of what it printed.
    pub log_tail: String,
    /// Each asked-for file: its path and content (`None`: not written).
    pub outputs: Vec<(String, Option<Vec<u8>>)>,
}

impl JobSpec {
    /// The spec a guest gave, its input files' contents read already.
    pub(crate) fn from_guest(spec: wit::JobSpec, inputs: Vec<(String, Vec<u8>)>) -> Self {
        Self {
            image: spec.image,
            command: spec.command,
            workdir: spec.workdir,
            env: spec.env,
            cpu: spec.resources.cpu,
            memory: spec.resources.memory,
            gpu: spec.resources.gpu,
            project: spec.project,
            inputs,
            outputs: spec.outputs,
        }
    }
}

impl From<JobExit> for wit::JobExit {
    fn from(exit: JobExit) -> Self {
        Self {
            exit_code: exit.exit_code,
            log_tail: exit.log_tail,
            outputs: exit
                .outputs
                .into_iter()
                .map(|(path, data)| wit::OutputFile { path, data })
                .collect(),
        }
    }
}
