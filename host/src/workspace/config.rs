//! `[workspaces]`: projects and workspace sessions.

use crate::container::quantity::quantity;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Projects and workspace sessions.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkspacesConfig {
    /// Where project files are kept with the local `fs` storage (default `<data_dir>/projects`).
    pub files_dir: Option<PathBuf>,
    /// `fs` (a local folder) or `s3` (an S3-compatible bucket, see `[workspaces.s3]`).
    pub storage: StorageKind,
    /// The bucket, with `storage = "s3"`.
    pub s3: S3Config,
    /// Largest file a project holds, in bytes.
    pub max_file_bytes: u64,
    /// Most bytes a sync brings into one project; files past it are reported and skipped.
    pub project_max_bytes: u64,
    /// Most files a sync brings into one project; files past it are reported and skipped.
    pub project_max_files: u64,
    /// Seconds a session has to answer on its port before it is failed and its container removed.
    /// Counted from when its start began (see `max_starting`), not from the request.
    pub start_timeout_secs: u64,
    /// Sessions starting at once; more wait, `pending`, for a start to end. Starting a
    /// workspace server is CPU-bound: a class opening 50 at once on 2 cores shared the CPU
    /// so evenly that none was ready within the start timeout and all failed together. 0
    /// means two per core of this host.
    pub max_starting: u32,
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
    /// The calendar period `quota_minutes` covers.
    pub quota_period: QuotaPeriod,
    /// CPU and memory of a session's container.
    #[serde(deserialize_with = "quantity")]
    pub cpu: String,
    #[serde(deserialize_with = "quantity")]
    /// Memory of a session's container.
    pub memory: String,
    /// How Jupyter sessions run.
    pub jupyter: SessionKindConfig,
    /// How code-server sessions run.
    pub code_server: SessionKindConfig,
    /// Where sessions are served, each on an origin of its own: `{session}` is the session's
    /// id (one DNS label), `{port}` the port of `sessions_listen`. Behind a TLS reverse proxy,
    /// e.g. `https://{session}.ws.example.com` with a wildcard DNS name and certificate.
    pub sessions_url: String,
    /// Address the session proxy listens on, apart from the API.
    pub sessions_listen: SocketAddr,
    /// Threads serving `sessions_listen`, each a single-threaded event loop accepting from the
    /// same socket (as nginx's workers do), so a proxied request, its connection to the
    /// container and a WebSocket's pump stay on one thread. 0 means one per core of this host.
    pub proxy_threads: u32,
    /// The key session secrets are derived from [default: <data_dir>/keys/sessions.key];
    /// created on first start. Weft hosts sharing a database must share it.
    pub secret_key_file: Option<PathBuf>,
    /// Warm pools: containers per kind kept started and idle, so opening a session takes one
    /// instead of starting a server (see `super::pool`).
    pub pool: PoolConfig,
}

/// `[workspaces.pool]`: idle, started containers kept per session kind (0: none, every session
/// starts its own). Keys are spelt as the kinds' own sections (`code_server`, as in
/// `[workspaces.code_server]`), so the environment can set them.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PoolConfig {
    pub jupyter: u32,
    pub code_server: u32,
}

/// Where project files are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageKind {
    /// A local folder (`files_dir`).
    Fs,
    /// An S3-compatible bucket (`[workspaces.s3]`).
    S3,
}

/// An S3-compatible bucket for project files (AWS, MinIO, Ceph, ...).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct S3Config {
    /// The bucket's name.
    pub bucket: String,
    /// e.g. `https://s3.eu-west-1.amazonaws.com` or `http://minio:9000`.
    pub endpoint: String,
    /// The bucket's region (`us-east-1` when empty).
    pub region: String,
    /// A folder inside the bucket (default its root).
    pub root: String,
    /// The access key (with `secret_access_key`); left unset when empty.
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
            max_starting: 0,
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
            proxy_threads: 0,
            secret_key_file: None,
            pool: PoolConfig::default(),
        }
    }
}
