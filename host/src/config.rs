//! Configuration: defaults, then a TOML file, then `WEFT_*` environment variables, then flags.
//!
//! Nested sections map to environment variables with a double underscore:
//! `[api] max_body_bytes` is `WEFT_API__MAX_BODY_BYTES`.

use anyhow::Context as _;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Everything `weft serve` needs to run.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address the API listens on.
    pub listen: SocketAddr,
    /// Folder holding the SQLite file and local storage.
    pub data_dir: PathBuf,
    /// Database URL; empty means the SQLite file `<data_dir>/weft.db`.
    pub database_url: Option<String>,
    /// Log output: `text` or `json`.
    pub log_format: LogFormat,
    pub api: ApiConfig,
    pub plugins: PluginsConfig,
    pub workflows: WorkflowsConfig,
    pub scheduler: SchedulerConfig,
    pub containers: ContainersConfig,
    pub workspaces: WorkspacesConfig,
    pub notebooks: NotebooksConfig,
    /// Secrets plugins may read once granted (`[secrets] name = "value"`, or
    /// `WEFT_SECRETS__NAME=value`).
    pub secrets: BTreeMap<String, String>,
}

/// The plugin runtime and registry.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PluginsConfig {
    /// Largest accepted component upload, in bytes.
    pub max_upload_bytes: usize,
    /// Plugin instances that may exist at once.
    pub max_instances: u32,
    /// Ceiling for any plugin's memory limit, in bytes.
    pub max_memory_bytes: u64,
    /// Folder for compiled components [default: `$XDG_CACHE_HOME/weft/components`, else
    /// `~/.cache/weft/components`, else `<data_dir>/cache/components`]. Outside the data folder
    /// so that a fresh data folder does not compile the built-ins again; entries are keyed by
    /// content hash and the engine's compatibility (wasmtime version and settings), so several
    /// Weft processes and versions may share one.
    pub cache_dir: Option<PathBuf>,
}

impl PluginsConfig {
    /// Where compiled components are cached for a server whose data folder is `data_dir`.
    pub fn cache_dir(&self, data_dir: &std::path::Path) -> PathBuf {
        if let Some(dir) = &self.cache_dir {
            return dir.clone();
        }
        let home_cache = || std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache"));
        std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .or_else(home_cache)
            .map(|c| c.join("weft").join("components"))
            .unwrap_or_else(|| data_dir.join("cache").join("components"))
    }
}

impl Default for PluginsConfig {
    fn default() -> Self {
        Self {
            max_upload_bytes: 64 << 20,
            max_instances: 256,
            max_memory_bytes: 1 << 30,
            cache_dir: None,
        }
    }
}

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

/// The task scheduler (SwarmPilot API).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SchedulerConfig {
    /// A separate address for the scheduler's SwarmPilot paths; by default they are served at
    /// the root of the main listener.
    pub listen: Option<SocketAddr>,
    /// Networks whose clients may use the SwarmPilot paths without a token, as an admin would
    /// (SwarmPilot clients send none); empty by default: everyone else needs a token. List only
    /// networks where every host is yours: not a reverse proxy's address.
    pub trusted_networks: Vec<ipnet::IpNet>,
    /// A header the SwarmPilot paths also read a token from (the bare token, or
    /// `Bearer <token>`), for clients that can add one header but not `Authorization`.
    #[serde(deserialize_with = "header_name")]
    pub token_header: String,
    /// Whether a completion sent from the registered address of the instance a task was sent
    /// to is accepted without a credential (SwarmPilot's instances send none). Turn off when
    /// anything else can connect from the instances' addresses, e.g. a reverse proxy on their
    /// host: instances then send their secret (from the registration) or an admin's token.
    pub completions_by_address: bool,
    /// Strategy in effect until an admin activates another (`name` or `name@version`).
    pub default_strategy: String,
    /// How often every task instance is asked for `/info`, in milliseconds.
    pub health_interval_ms: u64,
    /// Failed health checks in a row before an instance is marked unhealthy.
    pub unhealthy_after: u32,
    /// Time limit of each call to a task instance, in milliseconds.
    pub request_timeout_ms: u64,
    /// Seconds after its submission a task whose instance has not reported it fails, with
    /// the reason (its instance may have lost it); 0: never.
    pub task_timeout_secs: u64,
    /// Most tasks submitted and not finished at once; a submit beyond is refused (503, code
    /// 50103) until some finish or time out. Bounds the scheduler's memory.
    pub max_unfinished_tasks: usize,
    /// How long finished tasks stay queryable, in hours (fractions allowed).
    pub retention_hours: f64,
    /// Seconds between purges of tasks past their retention.
    pub purge_interval_secs: u64,
    /// Task instances to register at start (YAML or TOML: `instances: [{host, port,
    /// model_name?}]`); the `SCHEDULER_CONFIG_PATH` variable names one too.
    pub config_path: Option<PathBuf>,
    /// Where to record a trace of submits and completions (JSON lines) for
    /// `weft scheduler replay`; off when unset.
    pub trace_path: Option<PathBuf>,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            listen: None,
            trusted_networks: Vec::new(),
            token_header: "x-weft-token".into(),
            completions_by_address: true,
            default_strategy: "shortest-expected-wait".into(),
            health_interval_ms: 2_000,
            unhealthy_after: 2,
            request_timeout_ms: 5_000,
            task_timeout_secs: 1_800,
            max_unfinished_tasks: 200_000,
            retention_hours: 24.0 * 7.0,
            purge_interval_secs: 600,
            config_path: std::env::var_os("SCHEDULER_CONFIG_PATH").map(PathBuf::from),
            trace_path: None,
        }
    }
}

/// Containers on the Docker engine: where the engine is, the limits every container gets, and
/// each user's share. Quantities are Kubernetes-style (`"500m"`, `"2"`, `"512Mi"`, `"4Gi"`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ContainersConfig {
    /// The engine's address (`unix:///var/run/docker.sock`, `tcp://host:2375`); by default
    /// `DOCKER_HOST` or the local socket.
    pub docker_host: Option<String>,
    /// CPU of a container that asks for none.
    #[serde(deserialize_with = "quantity")]
    pub default_cpu: String,
    /// Memory of a container that asks for none.
    #[serde(deserialize_with = "quantity")]
    pub default_memory: String,
    /// GPUs on this host that Weft may hand out (the engine does not report them).
    pub gpus: u32,
    /// How many times the host's cores Weft may hand out as CPU limits (limits cap use; few
    /// containers use all of theirs at once). Memory is never overcommitted.
    pub cpu_overcommit: f64,
    /// Most processes in one container.
    pub pids_limit: i64,
    /// Capabilities kept after dropping all: what an entrypoint needs to own its home folder
    /// and drop to an unprivileged user.
    pub capabilities: Vec<String>,
    /// Seconds a stop waits after SIGTERM before killing.
    pub stop_timeout_secs: u64,
    /// How long a started container is watched for exiting at once, in milliseconds.
    pub start_grace_ms: u64,
    /// Time limit of each call to the engine, in seconds.
    pub engine_timeout_secs: u64,
    /// Seconds between reconciliations of the store with the engine.
    pub reconcile_interval_secs: u64,
    /// Seconds a labelled container unknown to the store is left alone before it is removed.
    pub orphan_grace_secs: u64,
    /// Each user's share; admins are held to it too.
    pub per_user: UserLimits,
    /// Images users may run through `POST /containers`, as patterns where `*` matches any run
    /// of characters (`/` and `:` included): `["weft-test/*", "python:3.12*"]`. The workspace
    /// images are always allowed; any other image is refused (10301).
    pub allowed_images: Vec<String>,
    /// Images allowed to run as the user their image names when that user is root; every other
    /// image whose user is root runs as `65534:65534` (nobody).
    pub root_images: Vec<String>,
    /// Open files per process (the `nofile` ulimit, soft and hard).
    pub nofile: u64,
    /// Largest writable layer a container may fill (`"20Gi"`; `"0"` for no limit): the engine
    /// enforces it where its storage driver can (overlay2 on xfs with pquota), elsewhere a
    /// watcher stops a container over it.
    #[serde(deserialize_with = "quantity")]
    pub disk_limit: String,
    /// Largest single file a process may write (the `fsize` ulimit); by default `disk_limit`.
    #[serde(deserialize_with = "optional_quantity")]
    pub max_file_size: Option<String>,
    /// Seconds between the disk watcher's rounds (when the engine cannot enforce the limit).
    pub disk_check_interval_secs: u64,
    pub network: NetworkConfig,
    pub firewall: FirewallConfig,
}

/// The per-user bridge networks containers join.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkConfig {
    /// Where each user network's subnet is drawn from.
    pub subnet_pool: ipnet::Ipv4Net,
    /// The prefix length of each user network (27: 30 containers per user).
    pub subnet_prefix: u8,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        Self {
            subnet_pool: "10.213.0.0/16".parse().expect("valid network"),
            subnet_prefix: 27,
        }
    }
}

/// The host firewall (iptables) between containers and the host.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FirewallConfig {
    /// Whether Weft installs its chains at start (needs root and iptables on the engine's
    /// host).
    pub enabled: bool,
    /// TCP ports of the host containers may reach (e.g. Weft's public API port); every other
    /// connection from a container to the host is refused.
    pub host_ports: Vec<u16>,
    /// Networks containers may never reach (link-local, which holds cloud metadata services,
    /// by default). IPv4 only: user networks have no IPv6. Where the host's DNS resolver has a
    /// link-local address (some clouds), narrow this to the metadata address.
    pub deny: Vec<ipnet::IpNet>,
}

impl Default for FirewallConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            host_ports: Vec::new(),
            deny: vec!["169.254.0.0/16".parse().expect("valid network")],
        }
    }
}

/// What one user's containers may hold at once.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UserLimits {
    /// Containers that exist (any status).
    pub max_containers: u32,
    /// CPU held by created and running containers.
    #[serde(deserialize_with = "quantity")]
    pub max_cpu: String,
    /// Memory held by created and running containers.
    #[serde(deserialize_with = "quantity")]
    pub max_memory: String,
}

impl Default for ContainersConfig {
    fn default() -> Self {
        Self {
            docker_host: None,
            default_cpu: "1".into(),
            default_memory: "1Gi".into(),
            gpus: 0,
            cpu_overcommit: 4.0,
            pids_limit: 512,
            capabilities: ["CHOWN", "DAC_OVERRIDE", "FOWNER", "SETGID", "SETUID"]
                .map(String::from)
                .to_vec(),
            stop_timeout_secs: 10,
            start_grace_ms: 200,
            engine_timeout_secs: 60,
            reconcile_interval_secs: 30,
            orphan_grace_secs: 300,
            per_user: UserLimits::default(),
            allowed_images: Vec::new(),
            root_images: Vec::new(),
            nofile: 4096,
            disk_limit: "20Gi".into(),
            max_file_size: None,
            disk_check_interval_secs: 30,
            network: NetworkConfig::default(),
            firewall: FirewallConfig::default(),
        }
    }
}

impl Default for UserLimits {
    fn default() -> Self {
        Self {
            max_containers: 20,
            max_cpu: "8".into(),
            max_memory: "16Gi".into(),
        }
    }
}

/// Projects and workspace sessions.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkspacesConfig {
    /// Where project files are kept with the local `fs` storage (default `<data_dir>/projects`).
    pub files_dir: Option<PathBuf>,
    /// `fs` (a local folder) or `s3` (an S3-compatible bucket, see `[workspaces.s3]`).
    pub storage: StorageKind,
    pub s3: S3Config,
    /// Largest file a project holds, in bytes.
    pub max_file_bytes: u64,
    /// Most bytes a sync brings into one project; files past it are reported and skipped.
    pub project_max_bytes: u64,
    /// Most files a sync brings into one project; files past it are reported and skipped.
    pub project_max_files: u64,
    /// Seconds a session has to answer on its port before it is failed and its container removed.
    pub start_timeout_secs: u64,
    /// Folder and file names never synced back from a workspace.
    pub sync_ignore: Vec<String>,
    /// A session with no activity (proxied traffic, heartbeats, a busy Jupyter kernel) for
    /// this long is synced and stopped.
    pub idle_timeout_secs: u64,
    /// A session is synced and stopped this long after it started, whatever it is doing.
    pub max_lifetime_secs: u64,
    /// How long before the hard limit a warning event is sent.
    pub warn_before_secs: u64,
    /// Seconds between the reaper's rounds.
    pub reap_interval_secs: u64,
    /// Session minutes each user has per period (fractions allowed); 0 for no quota.
    pub quota_minutes: f64,
    pub quota_period: QuotaPeriod,
    /// CPU and memory of a session's container.
    #[serde(deserialize_with = "quantity")]
    pub cpu: String,
    #[serde(deserialize_with = "quantity")]
    pub memory: String,
    pub jupyter: SessionKindConfig,
    pub code_server: SessionKindConfig,
    /// Where sessions are served, each on an origin of its own: `{session}` is the session's
    /// id (one DNS label), `{port}` the port of `sessions_listen`. Behind a TLS reverse proxy,
    /// e.g. `https://{session}.ws.example.com` with a wildcard DNS name and certificate.
    pub sessions_url: String,
    /// Address the session proxy listens on, apart from the API.
    pub sessions_listen: SocketAddr,
    /// The key session secrets are derived from [default: <data_dir>/keys/sessions.key];
    /// created on first start. Weft hosts sharing a database must share it.
    pub secret_key_file: Option<PathBuf>,
}

/// Where project files are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageKind {
    Fs,
    S3,
}

/// An S3-compatible bucket for project files (AWS, MinIO, Ceph, ...).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct S3Config {
    pub bucket: String,
    /// e.g. `https://s3.eu-west-1.amazonaws.com` or `http://minio:9000`.
    pub endpoint: String,
    pub region: String,
    /// A folder inside the bucket (default its root).
    pub root: String,
    pub access_key_id: String,
    /// Better given as `WEFT_WORKSPACES__S3__SECRET_ACCESS_KEY` than in the file.
    pub secret_access_key: String,
}

/// The calendar period (UTC) a session time quota covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum QuotaPeriod {
    Day,
    Week,
    Month,
}

impl QuotaPeriod {
    pub fn as_str(self) -> &'static str {
        match self {
            QuotaPeriod::Day => "day",
            QuotaPeriod::Week => "week",
            QuotaPeriod::Month => "month",
        }
    }
}

/// How one kind of session is run, at the root of its session's origin. In `command`,
/// `{origin}` is that origin (`http://<id>.localhost:8081`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionKindConfig {
    pub image: String,
    /// The port the server listens on inside the container.
    pub port: u16,
    pub command: Vec<String>,
    /// Answers 200 once the server is up.
    pub ready_path: String,
}

impl Default for WorkspacesConfig {
    fn default() -> Self {
        Self {
            files_dir: None,
            storage: StorageKind::Fs,
            s3: S3Config::default(),
            max_file_bytes: 100 * 1024 * 1024,
            project_max_bytes: 10 * 1024 * 1024 * 1024,
            project_max_files: 100_000,
            start_timeout_secs: 30,
            sync_ignore: [
                "__pycache__",
                ".venv",
                "venv",
                "node_modules",
                ".git",
                ".ipynb_checkpoints",
            ]
            .map(String::from)
            .to_vec(),
            idle_timeout_secs: 30 * 60,
            max_lifetime_secs: 4 * 60 * 60,
            warn_before_secs: 5 * 60,
            reap_interval_secs: 15,
            quota_minutes: 0.0,
            quota_period: QuotaPeriod::Month,
            cpu: "1".into(),
            memory: "1Gi".into(),
            jupyter: SessionKindConfig {
                image: "weft/jupyter:2".into(),
                port: 8888,
                command: [
                    "/opt/venv/bin/jupyter",
                    "server",
                    "--ip=0.0.0.0",
                    "--port=8888",
                    "--no-browser",
                    "--ServerApp.root_dir=/workspace",
                    "--ServerApp.default_url=/lab",
                    "--ServerApp.allow_origin={origin}",
                ]
                .map(String::from)
                .to_vec(),
                ready_path: "api/status".into(),
            },
            code_server: SessionKindConfig {
                image: "weft/code-server:2".into(),
                port: 8888,
                command: [
                    "/opt/code-server/bin/code-server",
                    "--bind-addr=0.0.0.0:8888",
                    "--auth=password",
                    "--disable-telemetry",
                    "--disable-update-check",
                    "--disable-workspace-trust",
                    "/workspace",
                ]
                .map(String::from)
                .to_vec(),
                ready_path: "healthz".into(),
            },
            sessions_url: "http://{session}.localhost:{port}".into(),
            sessions_listen: SocketAddr::from(([127, 0, 0, 1], 8081)),
            secret_key_file: None,
        }
    }
}

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

/// HTTP API limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// Whether `/metrics` can be read without a token (for a scraper on a trusted network).
    pub public_metrics: bool,
    /// Failed sign-ins (a presented token that does not authenticate) one client address may
    /// make within `sign_in_window_secs`; then it is answered 429 with `Retry-After` until the
    /// oldest failure leaves the window. 0 turns the limit off. Behind a reverse proxy every
    /// client has the proxy's address.
    pub sign_in_max_failures: u32,
    pub sign_in_window_secs: u64,
    /// Client addresses whose failures are remembered at once (memory stays bounded).
    pub sign_in_tracked_addresses: usize,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("weft-data"),
            database_url: None,
            log_format: LogFormat::Text,
            api: ApiConfig::default(),
            plugins: PluginsConfig::default(),
            workflows: WorkflowsConfig::default(),
            scheduler: SchedulerConfig::default(),
            containers: ContainersConfig::default(),
            workspaces: WorkspacesConfig::default(),
            notebooks: NotebooksConfig::default(),
            secrets: BTreeMap::new(),
        }
    }
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 2 * 1024 * 1024,
            public_metrics: false,
            sign_in_max_failures: 10,
            sign_in_window_secs: 60,
            sign_in_tracked_addresses: 10_000,
        }
    }
}

/// Flags that override the file and the environment; `None` leaves the value alone.
#[derive(Debug, Default, Clone, Serialize, clap::Args)]
pub struct Overrides {
    /// Address to listen on [default: 127.0.0.1:8080]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    /// Data folder for the SQLite file and local storage [default: ./weft-data]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    /// Database URL, sqlite://PATH or postgres://USER@HOST/DB [default: <data-dir>/weft.db]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    /// Log format
    #[arg(long, value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<LogFormat>,
    /// Serve the scheduler's SwarmPilot paths on this address instead of the main one
    #[arg(long, value_name = "ADDR")]
    #[serde(
        rename = "scheduler",
        skip_serializing_if = "Option::is_none",
        serialize_with = "scheduler_listen"
    )]
    pub scheduler_listen: Option<SocketAddr>,
}

/// `--scheduler-listen` lands in `[scheduler] listen`.
fn scheduler_listen<S: serde::Serializer>(
    addr: &Option<SocketAddr>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap as _;
    let mut map = serializer.serialize_map(Some(1))?;
    map.serialize_entry("listen", addr)?;
    map.end()
}

/// A valid HTTP header name, lower-cased.
/// A quantity (`"2"`, `"500m"`, `"4Gi"`) as text, also when it arrives as a number: the
/// environment's `16` and a file's `max_cpu = 16` are numbers to the loader.
fn quantity<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Given {
        Text(String),
        Whole(u64),
        Fraction(f64),
    }
    Ok(match Given::deserialize(deserializer)? {
        Given::Text(text) => text,
        Given::Whole(n) => n.to_string(),
        Given::Fraction(x) => x.to_string(),
    })
}

/// [`quantity`], optional.
fn optional_quantity<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    struct Wrapped(#[serde(deserialize_with = "quantity")] String);
    Ok(Option::<Wrapped>::deserialize(deserializer)?.map(|w| w.0))
}

fn header_name<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let name = String::deserialize(deserializer)?;
    http::HeaderName::from_bytes(name.as_bytes())
        .map(|h| h.as_str().to_string())
        .map_err(|_| serde::de::Error::custom(format!("'{name}' is not an HTTP header name")))
}

impl Config {
    /// Loads the configuration. `file` is the TOML file to read: an explicit one must exist, the
    /// default `weft.toml` is read only if present.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> anyhow::Result<Self> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(path) => {
                anyhow::ensure!(
                    path.is_file(),
                    "configuration file {} does not exist",
                    path.display()
                );
                figment = figment.merge(Toml::file_exact(path));
            }
            None if Path::new("weft.toml").is_file() => {
                figment = figment.merge(Toml::file_exact("weft.toml"));
            }
            None => {}
        }
        // Only variables naming a configuration section count: WEFT_CONFIG names the file and
        // tools may set other WEFT_ variables of their own.
        let sections: Vec<String> = match serde_json::to_value(Config::default()) {
            Ok(serde_json::Value::Object(map)) => map.into_iter().map(|(k, _)| k).collect(),
            _ => Vec::new(),
        };
        let env = Env::prefixed("WEFT_").split("__").filter(move |key| {
            let head = key.as_str().split('.').next().unwrap_or_default();
            sections.iter().any(|s| s.eq_ignore_ascii_case(head))
        });
        figment
            .merge(env)
            .merge(Serialized::defaults(overrides))
            .extract()
            .context("invalid configuration")
    }

    /// The database URL in effect.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) if !url.is_empty() => url.clone(),
            _ => format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("weft.db").display()
            ),
        }
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's closure signature is fixed
mod tests {
    use super::*;
    use figment::Jail;

    #[test]
    fn quantities_are_text_or_numbers_in_the_file_and_the_environment() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "weft.toml",
                "[containers]\ndefault_cpu = 2\nmax_file_size = 1073741824\n[containers.per_user]\nmax_memory = \"8Gi\"\n",
            )?;
            jail.set_env("WEFT_CONTAINERS__PER_USER__MAX_CPU", "16");
            jail.set_env("WEFT_WORKSPACES__CPU", "0.5");
            let c = Config::load(None, &Overrides::default()).unwrap();
            assert_eq!(c.containers.default_cpu, "2");
            assert_eq!(c.containers.max_file_size.as_deref(), Some("1073741824"));
            assert_eq!(c.containers.per_user.max_memory, "8Gi");
            assert_eq!(c.containers.per_user.max_cpu, "16");
            assert_eq!(c.workspaces.cpu, "0.5");
            Ok(())
        });
    }

    #[test]
    fn precedence_is_file_then_env_then_flags() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "weft.toml",
                "listen = \"0.0.0.0:9000\"\ndata_dir = \"from-file\"\n[api]\nmax_body_bytes = 10\n",
            )?;
            let c = Config::load(None, &Overrides::default()).unwrap();
            assert_eq!(c.listen.port(), 9000);
            assert_eq!(c.data_dir, PathBuf::from("from-file"));
            assert_eq!(c.api.max_body_bytes, 10);

            jail.set_env("WEFT_DATA_DIR", "from-env");
            jail.set_env("WEFT_API__MAX_BODY_BYTES", "20");
            jail.set_env("WEFT_SOMETHING_ELSE", "ignored");
            let c = Config::load(None, &Overrides::default()).unwrap();
            assert_eq!(c.data_dir, PathBuf::from("from-env"));
            assert_eq!(c.api.max_body_bytes, 20);
            assert_eq!(c.listen.port(), 9000);

            let flags = Overrides {
                data_dir: Some("from-flag".into()),
                ..Default::default()
            };
            let c = Config::load(None, &flags).unwrap();
            assert_eq!(c.data_dir, PathBuf::from("from-flag"));
            assert_eq!(c.scheduler.listen, None);

            jail.set_env("WEFT_SCHEDULER__HEALTH_INTERVAL_MS", "300");
            let flags = Overrides {
                scheduler_listen: Some(SocketAddr::from(([127, 0, 0, 1], 8102))),
                ..Default::default()
            };
            let c = Config::load(None, &flags).unwrap();
            assert_eq!(c.scheduler.listen.unwrap().port(), 8102);
            assert_eq!(
                c.scheduler.health_interval_ms, 300,
                "the rest of the section stays"
            );
            Ok(())
        });
    }

    #[test]
    fn defaults_work_without_file_and_default_to_sqlite_in_data_dir() {
        Jail::expect_with(|_| {
            let c = Config::load(None, &Overrides::default()).unwrap();
            assert_eq!(c.listen, SocketAddr::from(([127, 0, 0, 1], 8080)));
            assert_eq!(c.database_url(), "sqlite://weft-data/weft.db?mode=rwc");
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_and_missing_explicit_file_are_errors() {
        Jail::expect_with(|jail| {
            jail.create_file("weft.toml", "lisen = \"x\"\n")?;
            let err = Config::load(None, &Overrides::default()).unwrap_err();
            assert!(format!("{err:#}").contains("lisen"), "{err:#}");
            let err =
                Config::load(Some(Path::new("nope.toml")), &Overrides::default()).unwrap_err();
            assert!(err.to_string().contains("does not exist"));
            Ok(())
        });
    }

    #[test]
    fn compiled_components_are_cached_outside_the_data_folder() {
        figment::Jail::expect_with(|jail| {
            let data = Path::new("/srv/weft-data");
            jail.set_env("HOME", "/home/ada");
            let plugins = PluginsConfig::default();
            assert_eq!(
                plugins.cache_dir(data),
                PathBuf::from("/home/ada/.cache/weft/components")
            );
            jail.set_env("XDG_CACHE_HOME", "/var/cache/ada");
            assert_eq!(
                plugins.cache_dir(data),
                PathBuf::from("/var/cache/ada/weft/components")
            );
            // A relative XDG_CACHE_HOME is invalid by the spec and ignored.
            jail.set_env("XDG_CACHE_HOME", "cache");
            assert_eq!(
                plugins.cache_dir(data),
                PathBuf::from("/home/ada/.cache/weft/components")
            );
            let set = PluginsConfig {
                cache_dir: Some("/opt/cache".into()),
                ..PluginsConfig::default()
            };
            assert_eq!(set.cache_dir(data), PathBuf::from("/opt/cache"));
            Ok(())
        });
    }
}
