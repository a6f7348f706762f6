//! Registered task instances (TIs) and the client that speaks the SwarmPilot TaskInstance
//! protocol to them: `GET /info`, `POST /queue/submit`, `POST /queue/predict`. An instance is
//! known for its completions by the addresses its host resolves to, or by the secret it was
//! given when it registered (stored as a hash only).

use super::client::HttpClient;
use super::raw::RawJson;
use crate::error::Result;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::Method;
use rand::RngCore as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::net::IpAddr;
use std::time::{Duration, Instant};
use utoipa::ToSchema;

/// Every instance secret starts with this; API tokens start with `weft_`, so the two are told
/// apart before any look-up.
pub(crate) const SECRET_PREFIX: &str = "wefti_";

/// How often the addresses of an instance registered by host name are looked up again.
const RESOLVE_EVERY: Duration = Duration::from_secs(30);

/// A task instance as the scheduler tracks it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TaskInstance {
    pub ti_uuid: String,
    pub host: String,
    pub port: u16,
    pub model_name: String,
    /// Answered its last health checks; unhealthy instances get no new tasks.
    pub healthy: bool,
    /// Health checks failed in a row.
    pub failures: u32,
    /// Tasks routed to it and not finished yet.
    pub in_flight: u32,
    /// The length of its queue as it last said on `/info` (SwarmPilot's
    /// `queue_info.length_of_queue`), counted up and down with the tasks sent and finished
    /// since: its queue may hold tasks from elsewhere.
    pub reported_queue: Option<u64>,
    /// Its own `instance_status` (SwarmPilot: `idle` or `running`) and model replicas, from
    /// its last `/info`.
    pub instance_status: Option<String>,
    pub replicas: Option<u64>,
    /// Its own last prediction (expected, error) in ms, while no task was sent since.
    #[serde(skip)]
    pub reported: Option<(f64, f64)>,
    /// What `host` resolved to, and when: completions from these addresses are its own.
    #[serde(skip)]
    pub addresses: Vec<IpAddr>,
    #[serde(skip)]
    pub resolved_at: Option<Instant>,
    /// The hash of the secret it was given at registration, if any.
    #[serde(skip)]
    pub secret_hash: Option<String>,
}

impl TaskInstance {
    pub fn new(ti_uuid: String, host: String, port: u16, model_name: String) -> Self {
        Self {
            ti_uuid,
            host,
            port,
            model_name,
            healthy: true,
            failures: 0,
            in_flight: 0,
            reported_queue: None,
            instance_status: None,
            replicas: None,
            reported: None,
            addresses: Vec::new(),
            resolved_at: None,
            secret_hash: None,
        }
    }

    /// Whether its addresses are due to be looked up (again): at first, and now and then for
    /// a host name (an IP address never changes).
    pub fn needs_resolving(&self) -> bool {
        match self.resolved_at {
            None => true,
            Some(at) => self.host.parse::<IpAddr>().is_err() && at.elapsed() >= RESOLVE_EVERY,
        }
    }

    /// Whether a completion from `peer` comes from this instance's host.
    pub fn is_at(&self, peer: IpAddr) -> bool {
        self.addresses.contains(&peer.to_canonical())
    }

    /// Whether `secret` is the one this instance was given.
    pub fn has_secret(&self, secret: &str) -> bool {
        self.secret_hash
            .as_deref()
            .is_some_and(|stored| stored == hash_secret(secret))
    }

    /// Takes in what the instance said on `/info`.
    pub fn heard(&mut self, info: InstanceInfo) {
        self.reported_queue = info.queue_length;
        self.instance_status = info.status;
        self.replicas = info.replicas;
    }

    /// Whether `id` names this instance: its ti_uuid, or its address as SwarmPilot's
    /// instances name themselves (`host:port`, also with `http://`), as it registered.
    pub fn is_named(&self, id: &str) -> bool {
        let id = id.trim().trim_end_matches('/');
        if id.eq_ignore_ascii_case(&self.ti_uuid) {
            return true;
        }
        let address = id
            .strip_prefix("http://")
            .or_else(|| id.strip_prefix("https://"))
            .unwrap_or(id);
        let Some((host, port)) = address.rsplit_once(':') else {
            return false;
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        port.parse() == Ok(self.port)
            && host.eq_ignore_ascii_case(self.host.trim_start_matches('[').trim_end_matches(']'))
    }

    /// Base URL of the instance's API.
    pub fn url(&self) -> String {
        base_url(&self.host, self.port)
    }

    /// The instance as a strategy sees it.
    pub fn view(&self) -> weft_runtime::Instance {
        weft_runtime::Instance {
            id: self.ti_uuid.clone(),
            model: self.model_name.clone(),
            host: self.host.clone(),
            queue_length: self.reported_queue.map_or(self.in_flight, |q| {
                self.in_flight.max(u32::try_from(q).unwrap_or(u32::MAX))
            }),
            healthy: self.healthy,
            reported_expected_ms: self.reported.map(|r| r.0),
            reported_error_ms: self.reported.map(|r| r.1),
        }
    }
}

/// The addresses `host` resolves to (itself when it is one); none when it does not resolve.
pub(crate) async fn resolve(host: &str, port: u16) -> Vec<IpAddr> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return vec![ip.to_canonical()];
    }
    match tokio::net::lookup_host((host, port)).await {
        Ok(found) => {
            let mut ips: Vec<IpAddr> = found.map(|a| a.ip().to_canonical()).collect();
            ips.sort();
            ips.dedup();
            ips
        }
        Err(err) => {
            tracing::warn!(%host, %err, "cannot resolve a task instance's host; its completions need its secret");
            Vec::new()
        }
    }
}

/// A new instance secret (256 random bits).
pub(crate) fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{SECRET_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// The stored form of a secret.
pub(crate) fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// `http://host:port`, bracketing IPv6 addresses.
pub(crate) fn base_url(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("http://[{host}]:{port}")
    } else {
        format!("http://{host}:{port}")
    }
}

/// What an instance says of itself on `GET /info`: SwarmPilot's shape (`{"status",
/// "timestamp", "deployed_model": {"model_name", "replicas"}, "queue_info":
/// {"length_of_queue"}, "instance_status", "uptime"}`, as its scheduler's `TaskInstanceClient`
/// reads it), or the flat `model_name`/`queue_length` form some instances send.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(from = "InfoAnswer")]
pub struct InstanceInfo {
    pub model_name: Option<String>,
    pub replicas: Option<u64>,
    pub queue_length: Option<u64>,
    /// SwarmPilot's `instance_status` (`idle`, `running`, ...).
    pub status: Option<String>,
}

impl InstanceInfo {
    /// Whether the instance says it cannot take tasks (SwarmPilot's scheduler skips instances
    /// in `error`).
    pub fn is_failing(&self) -> bool {
        self.status
            .as_deref()
            .is_some_and(|s| matches!(s, "error" | "failed" | "stopped"))
    }
}

/// `GET /info` as sent, before the two shapes are merged.
#[derive(Deserialize)]
struct InfoAnswer {
    #[serde(default)]
    deployed_model: Option<DeployedModel>,
    #[serde(default)]
    queue_info: Option<QueueInfo>,
    #[serde(default)]
    instance_status: Option<String>,
    #[serde(default, alias = "model_type", alias = "model")]
    model_name: Option<String>,
    #[serde(default, alias = "queue_size")]
    queue_length: Option<u64>,
}

#[derive(Deserialize)]
struct DeployedModel {
    #[serde(default)]
    model_name: Option<String>,
    #[serde(default)]
    replicas: Option<u64>,
}

#[derive(Deserialize)]
struct QueueInfo {
    #[serde(default)]
    length_of_queue: Option<u64>,
}

impl From<InfoAnswer> for InstanceInfo {
    fn from(a: InfoAnswer) -> Self {
        let (deployed, replicas) = a
            .deployed_model
            .map_or((None, None), |d| (d.model_name, d.replicas));
        Self {
            model_name: deployed.or(a.model_name).filter(|m| !m.trim().is_empty()),
            replicas,
            queue_length: a
                .queue_info
                .and_then(|q| q.length_of_queue)
                .or(a.queue_length),
            status: a.instance_status,
        }
    }
}

/// The body of `POST /queue/submit` to an instance.
#[derive(Debug, Serialize)]
pub(crate) struct Submit<'a> {
    pub task_id: &'a str,
    pub model_name: &'a str,
    pub task_input: &'a RawJson,
    pub metadata: &'a RawJson,
    pub ti_uuid: &'a str,
}

/// HTTP client for task instances.
#[derive(Clone)]
pub(crate) struct TiClient {
    http: HttpClient,
}

impl TiClient {
    pub(crate) fn new(timeout: Duration) -> Self {
        Self {
            http: HttpClient::new(timeout),
        }
    }

    /// One exchange with the instance at `base`; an answer other than 2xx is an error
    /// naming `path`, the status and the start of the answer.
    async fn exchange(
        &self,
        method: Method,
        base: &str,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<Bytes, String> {
        let (status, answer) = self
            .http
            .call(method, &format!("{base}{path}"), body, None)
            .await?;
        if status.is_success() {
            return Ok(answer);
        }
        Err(format!(
            "{path} answered {status}: {}",
            String::from_utf8_lossy(&answer)
                .chars()
                .take(200)
                .collect::<String>()
        ))
    }

    /// `GET /info`.
    pub(crate) async fn info(&self, base: &str) -> Result<InstanceInfo, String> {
        let body = self.exchange(Method::GET, base, "/info", None).await?;
        serde_json::from_slice(&body)
            .map_err(|e| format!("/info is not the TaskInstance shape: {e}"))
    }

    /// `POST /queue/predict`: the instance's own (expected, error) in ms.
    pub(crate) async fn predict(&self, base: &str) -> Result<(f64, f64), String> {
        #[derive(Deserialize)]
        struct Predicted {
            expected_ms: f64,
            error_ms: f64,
        }
        let body = self
            .exchange(
                Method::POST,
                base,
                "/queue/predict",
                Some(Bytes::from_static(b"{}")),
            )
            .await?;
        let p: Predicted = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
        Ok((p.expected_ms, p.error_ms))
    }

    /// `POST /queue/submit` with the scheduler's task id.
    pub(crate) async fn submit(&self, base: &str, task: &Submit<'_>) -> Result<(), String> {
        // Sized up front: grown from empty, the body would be copied several times.
        let mut body =
            Vec::with_capacity(160 + task.task_input.get().len() + task.metadata.get().len());
        serde_json::to_writer(&mut body, task).map_err(|e| e.to_string())?;
        self.exchange(Method::POST, base, "/queue/submit", Some(body.into()))
            .await
            .map(drop)
    }
}
