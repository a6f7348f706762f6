//! `[scheduler]`: the task scheduler.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;

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

/// A valid HTTP header name, lower-cased.
fn header_name<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let name = String::deserialize(deserializer)?;
    http::HeaderName::from_bytes(name.as_bytes())
        .map(|h| h.as_str().to_string())
        .map_err(|_| serde::de::Error::custom(format!("'{name}' is not an HTTP header name")))
}
