//! `[containers]`: the Docker engine, container limits and each user's share.

use super::quantity::{optional_quantity, quantity};
use serde::{Deserialize, Serialize};

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
    /// The prefix length of each user network (27: 29 containers per user). The warm pool's
    /// network is 5 bits wider (a /22), at most half of `subnet_pool`.
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
