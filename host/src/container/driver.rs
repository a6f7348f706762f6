//! What Weft needs from a container engine, independent of which engine it is.
//!
//! [`super::docker::DockerDriver`] implements it on the Docker Engine API; a Swarm driver can
//! follow. Every method answers with Weft's `Error` so an engine fault reaches clients with a
//! stable code.

use crate::error::Result;
use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use std::collections::BTreeMap;
use std::time::Duration;

/// Everything needed to create one container. Hardening is not negotiable here: the driver
/// applies it to every spec (see [`super::hardening`]).
#[derive(Debug, Clone, Default)]
pub struct ContainerSpec {
    /// The engine-side name (unique on the engine).
    pub name: String,
    /// The image, present on the engine.
    pub image: String,
    /// Replaces the image's command when set.
    pub command: Option<Vec<String>>,
    /// Environment variables.
    pub env: BTreeMap<String, String>,
    /// The working folder; `None` keeps the image's.
    pub workdir: Option<String>,
    /// Labels, Weft's own included (see [`super::LABEL_INSTALL`]).
    pub labels: BTreeMap<String, String>,
    /// Named volumes only: host paths are never mounted.
    pub volumes: Vec<VolumeMount>,
    /// CPU, memory and GPUs.
    pub limits: Limits,
    /// `uid:gid` to run as; `None` keeps the image's own user.
    pub user: Option<String>,
    /// The network it joins (its owner's, see [`super::network`]); `None`: the engine's default.
    pub network: Option<String>,
    /// A size limit of the writable layer the engine enforces (only where its storage driver
    /// can, see `super::disk`).
    pub disk_bytes: Option<u64>,
}

/// What Weft reads from a local image.
#[derive(Debug, Clone)]
pub struct ImageInfo {
    /// The user the image runs as (`USER`); empty means root.
    pub user: String,
}

/// A bridge network for one user's containers.
#[derive(Debug, Clone)]
pub struct NetworkSpec {
    /// The network's name on the engine.
    pub name: String,
    /// The host-side bridge interface (at most 15 characters), so the host firewall can match
    /// every Weft bridge by prefix.
    pub bridge: String,
    /// Its addresses.
    pub subnet: ipnet::Ipv4Net,
    /// Labels, Weft's own included.
    pub labels: BTreeMap<String, String>,
}

/// How a network creation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkCreated {
    /// It was made.
    Created,
    /// A network of that name (or bridge) is already there.
    Exists,
    /// The subnet overlaps one the engine already uses: try another.
    SubnetTaken,
}

/// A network as the engine sees it.
#[derive(Debug, Clone)]
pub struct EngineNetwork {
    /// The network's name.
    pub name: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its subnets.
    pub subnets: Vec<ipnet::IpNet>,
}

/// A named engine volume mounted into a container.
#[derive(Debug, Clone)]
pub struct VolumeMount {
    /// The volume's name.
    pub volume: String,
    /// Where it is mounted in the container.
    pub target: String,
    /// Whether the container may only read it.
    pub read_only: bool,
}

/// The resources a container may use; always set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// Thousandths of a core.
    pub cpu_millis: u64,
    /// Memory, in bytes.
    pub memory_bytes: u64,
    /// Whole GPUs.
    pub gpus: u32,
}

/// A container as the engine sees it.
#[derive(Debug, Clone)]
pub struct EngineContainer {
    /// The engine's id.
    pub id: String,
    /// The engine's words: created, running, paused, restarting, removing, exited, dead.
    pub state: String,
    /// The exit code, once exited.
    pub exit_code: Option<i64>,
    /// Whether the kernel killed it for memory.
    pub oom_killed: bool,
    /// From the image's health check: starting, healthy, unhealthy; `None` without one.
    pub health: Option<String>,
    /// Unix milliseconds.
    pub created_at: Option<i64>,
    /// Unix milliseconds.
    pub started_at: Option<i64>,
    /// Unix milliseconds.
    pub finished_at: Option<i64>,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// The engine's own error for a container that could not run.
    pub error: Option<String>,
    /// The container's IP address on its network, while running.
    pub address: Option<String>,
}

impl EngineContainer {
    /// Whether its processes are there (running, paused or restarting).
    pub fn is_running(&self) -> bool {
        matches!(self.state.as_str(), "running" | "paused" | "restarting")
    }
}

/// What a command run with [`ContainerDriver::exec`] printed and how it ended.
#[derive(Debug, Clone)]
pub struct ExecOutput {
    /// The command's exit code.
    pub exit_code: i64,
    /// What it printed on standard output.
    pub stdout: String,
    /// What it printed on standard error.
    pub stderr: String,
}

/// A piece of what a command run with [`ContainerDriver::exec_stream`] does: its output as it
/// comes, then how it ended.
#[derive(Debug, Clone)]
pub enum ExecEvent {
    /// Standard output, as it comes.
    Stdout(Bytes),
    /// Standard error, as it comes.
    Stderr(Bytes),
    /// The last item: the command's exit code.
    Exited(i64),
}

/// One sample of a running container's use.
#[derive(Debug, Clone, Copy)]
pub struct Stats {
    /// Of one core: 150.0 is one and a half cores.
    pub cpu_percent: f64,
    /// Memory in use, in bytes.
    pub memory_bytes: u64,
    /// The memory limit, in bytes.
    pub memory_limit_bytes: u64,
    /// Processes in the container.
    pub pids: u64,
}

/// The engine and the host it runs on.
#[derive(Debug, Clone)]
pub struct EngineInfo {
    /// The engine's version.
    pub version: String,
    /// The engine's API version.
    pub api_version: String,
    /// The host's cores, in thousandths.
    pub cpu_millis: u64,
    /// The host's memory, in bytes.
    pub memory_bytes: u64,
    /// Whether the engine remaps container users into a user namespace.
    pub user_namespaces: bool,
    /// The engine's storage driver (`overlay2`, ...) and the file system under it (`xfs`,
    /// `extfs`, ...), which decide whether it can limit a writable layer's size.
    pub storage_driver: String,
    /// The file system under the storage driver.
    pub backing_filesystem: String,
}

/// Which stream a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogStream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// A chunk of a container's output (usually one line, newline included).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct LogChunk {
    /// Which stream it came from.
    pub stream: LogStream,
    /// The text (lossy UTF-8).
    pub text: String,
}

/// Something that happened to a labelled container on the engine.
#[derive(Debug, Clone)]
pub struct EngineEvent {
    /// The container's engine id.
    pub engine_id: String,
    /// The engine's action: start, die, stop, kill, oom, destroy, health_status: healthy, ...
    pub action: String,
    /// The container's labels.
    pub labels: BTreeMap<String, String>,
}

/// A container engine.
#[async_trait]
pub trait ContainerDriver: Send + Sync + 'static {
    /// The engine's version and the host's capacity; fails when the engine is not reachable.
    async fn info(&self) -> Result<EngineInfo>;
    /// `image` when it is present locally (nothing is ever pulled).
    async fn image(&self, image: &str) -> Result<Option<ImageInfo>>;
    /// Creates a container (not started); returns the engine's id.
    async fn create(&self, spec: &ContainerSpec) -> Result<String>;
    /// Starts a created container.
    async fn start(&self, id: &str) -> Result<()>;
    /// SIGTERM, then SIGKILL after `grace`. Stopping a stopped container is not an error.
    async fn stop(&self, id: &str, grace: Duration) -> Result<()>;
    /// Removes a container, running or not, with its anonymous volumes; a missing one is fine.
    async fn remove(&self, id: &str) -> Result<()>;
    /// Waits until the container is not running (its output written by then) and returns its
    /// exit code.
    async fn wait(&self, id: &str) -> Result<i64>;
    /// `None` when the engine does not know the container.
    async fn inspect(&self, id: &str) -> Result<Option<EngineContainer>>;
    /// The bytes a container's writable layer holds; `None` when the engine does not know it.
    async fn disk_usage(&self, id: &str) -> Result<Option<u64>>;
    /// Every container (running or not) carrying all of `labels`.
    async fn list(&self, labels: &BTreeMap<String, String>) -> Result<Vec<EngineContainer>>;
    /// Runs `command` in a running container and collects its output.
    async fn exec(&self, id: &str, command: &[String]) -> Result<ExecOutput>;
    /// Runs `command` in a running container; its output comes as it is produced (the engine
    /// waits while the stream is not read), then its exit code.
    fn exec_stream(&self, id: &str, command: &[String]) -> BoxStream<'static, Result<ExecEvent>>;
    /// The container's output: the last `tail` chunks (all when `None`), then live ones if
    /// `follow` until the container stops.
    fn logs(
        &self,
        id: &str,
        follow: bool,
        tail: Option<u64>,
    ) -> BoxStream<'static, Result<LogChunk>>;
    /// One sample of a running container's use.
    async fn stats(&self, id: &str) -> Result<Stats>;
    /// Unpacks a tar archive, read as the engine takes it, into the folder `path` of the
    /// container.
    async fn copy_in(
        &self,
        id: &str,
        path: &str,
        tar: BoxStream<'static, Result<Bytes>>,
    ) -> Result<()>;
    /// A tar archive of `path` in the container.
    fn copy_out(&self, id: &str, path: &str) -> BoxStream<'static, Result<Bytes>>;
    /// Creates a bridge network with inter-container traffic off.
    async fn create_network(&self, spec: &NetworkSpec) -> Result<NetworkCreated>;
    /// Every network carrying all of `labels` (every network when `labels` is empty).
    async fn networks(&self, labels: &BTreeMap<String, String>) -> Result<Vec<EngineNetwork>>;
    /// Removes a network; `false` when containers still use it. A missing one is fine.
    async fn remove_network(&self, name: &str) -> Result<bool>;
    /// Joins a running container to network `network`.
    async fn connect(&self, id: &str, network: &str) -> Result<()>;
    /// Takes a container off network `network`; not being on it is fine.
    async fn disconnect(&self, id: &str, network: &str) -> Result<()>;
    /// Changes a running container's CPU and memory limits (swap included in the memory).
    async fn update_limits(&self, id: &str, limits: Limits) -> Result<()>;
    /// Events of containers carrying all of `labels`, from now on.
    fn events(&self, labels: &BTreeMap<String, String>) -> BoxStream<'static, Result<EngineEvent>>;
}
