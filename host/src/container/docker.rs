//! [`ContainerDriver`] on the Docker Engine API (bollard), local socket or TCP.

use super::driver::{
    ContainerDriver, ContainerSpec, EngineContainer, EngineEvent, EngineInfo, EngineNetwork,
    ExecEvent, ExecOutput, ImageInfo, Limits, LogChunk, LogStream, NetworkCreated, NetworkSpec,
    Stats,
};
use super::hardening::{self, Policy};
use crate::error::{Code, Error, Result};
use async_trait::async_trait;
use bollard::Docker;
use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, ContainerUpdateBody, Ipam, IpamConfig,
    NetworkConnectRequest, NetworkCreateRequest, NetworkDisconnectRequest,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, DownloadFromContainerOptionsBuilder, EventsOptionsBuilder,
    InspectContainerOptionsBuilder, ListContainersOptionsBuilder, ListNetworksOptionsBuilder,
    LogsOptionsBuilder, RemoveContainerOptionsBuilder, StatsOptionsBuilder,
    StopContainerOptionsBuilder, UploadToContainerOptionsBuilder,
};
use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt, TryStreamExt};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OnceCell;

/// How long copying an archive into a container may take (a project of gigabytes streams).
const COPY_TIMEOUT: Duration = Duration::from_secs(3600);

/// The Docker engine at one address. The connection is made (and the API version negotiated)
/// on first use and retried until it works, so Weft starts without an engine.
pub struct DockerDriver {
    inner: Arc<Inner>,
}

struct Inner {
    address: String,
    timeout: Duration,
    policy: Policy,
    client: OnceCell<Docker>,
}

impl DockerDriver {
    /// A driver for `address` (`unix:///path`, `tcp://host:port`; `None`: `DOCKER_HOST` or the
    /// local socket). Nothing is contacted yet.
    pub fn new(address: Option<&str>, timeout: Duration, policy: Policy) -> Self {
        let address = address
            .map(str::to_owned)
            .or_else(|| std::env::var("DOCKER_HOST").ok())
            .unwrap_or_else(|| "unix:///var/run/docker.sock".into());
        Self {
            inner: Arc::new(Inner {
                address,
                timeout,
                policy,
                client: OnceCell::new(),
            }),
        }
    }

    /// The engine's address, for messages.
    pub fn address(&self) -> &str {
        &self.inner.address
    }

    async fn client(&self) -> Result<&Docker> {
        self.inner.client().await
    }

    fn fault(&self, err: bollard::errors::Error) -> Error {
        self.inner.fault(err)
    }

    /// A stream made once the engine is connected; the connection error is its only item when
    /// the engine cannot be reached.
    fn connected<T, S>(
        &self,
        open: impl FnOnce(&Docker, Arc<Inner>) -> S + Send + 'static,
    ) -> BoxStream<'static, Result<T>>
    where
        T: Send + 'static,
        S: futures::Stream<Item = Result<T>> + Send + 'static,
    {
        let inner = self.inner.clone();
        futures::stream::once(async move {
            let docker = inner.client().await?.clone();
            Ok::<_, Error>(open(&docker, inner))
        })
        .try_flatten()
        .boxed()
    }

    async fn inspect_raw(
        &self,
        id: &str,
        with_size: bool,
    ) -> Result<Option<ContainerInspectResponse>> {
        let options = InspectContainerOptionsBuilder::default()
            .size(with_size)
            .build();
        match self
            .client()
            .await?
            .inspect_container(id, Some(options))
            .await
        {
            Ok(found) => Ok(Some(found)),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(e) => Err(self.fault(e)),
        }
    }
}

impl Inner {
    async fn client(&self) -> Result<&Docker> {
        self.client
            .get_or_try_init(|| async {
                let secs = self.timeout.as_secs().max(1);
                let docker = if let Some(path) = self.address.strip_prefix("unix://") {
                    Docker::connect_with_unix(path, secs, bollard::API_DEFAULT_VERSION)
                } else {
                    Docker::connect_with_http(&self.address, secs, bollard::API_DEFAULT_VERSION)
                }
                .map_err(|e| self.fault(e))?;
                docker.negotiate_version().await.map_err(|e| self.fault(e))
            })
            .await
    }

    /// An engine error in Weft's terms.
    fn fault(&self, err: bollard::errors::Error) -> Error {
        use bollard::errors::Error as E;
        match err {
            E::DockerResponseServerError {
                status_code,
                message,
            } => match status_code {
                404 => Error::new(Code::ContainerNotFound, message),
                _ => Error::new(
                    Code::ContainerEngineFailed,
                    format!("the Docker engine refused: {message}"),
                )
                .details(serde_json::json!({ "engine_status": status_code })),
            },
            E::RequestTimeoutError => Error::new(
                Code::ContainerEngineTimeout,
                format!(
                    "the Docker engine at {} did not answer within {} s",
                    self.address,
                    self.timeout.as_secs()
                ),
            )
            .hint("the engine may be overloaded or hung; check dockerd's log"),
            E::SocketNotFoundError(_)
            | E::IOError { .. }
            | E::HyperLegacyError { .. }
            | E::HttpClientError { .. } => engine_unavailable(&self.address, &err.to_string()),
            other => Error::new(
                Code::ContainerEngineFailed,
                format!("the Docker engine answered unexpectedly: {other}"),
            ),
        }
    }
}

/// The engine is not there: what to do about it.
pub fn engine_unavailable(address: &str, reason: &str) -> Error {
    Error::new(
        Code::ContainerEngineUnavailable,
        format!("the Docker engine is not reachable at {address}: {reason}"),
    )
    .hint(
        "containers and workspaces need a Docker engine: install Debian's docker.io and start \
         dockerd, or point [containers] docker_host at one; everything else in Weft works without it",
    )
}

fn label_filters(labels: &BTreeMap<String, String>) -> HashMap<String, Vec<String>> {
    HashMap::from([(
        "label".to_string(),
        labels.iter().map(|(k, v)| format!("{k}={v}")).collect(),
    )])
}

/// Docker's RFC 3339 times as Unix milliseconds; its "zero time" means never.
fn millis(text: Option<&str>) -> Option<i64> {
    let t = chrono::DateTime::parse_from_rfc3339(text?).ok()?;
    (t.timestamp() > 0).then(|| t.timestamp_millis())
}

fn from_inspect(found: ContainerInspectResponse) -> EngineContainer {
    let state = found.state.unwrap_or_default();
    // The address on the network the container was created on (its owner's), whatever else
    // it may have been connected to since.
    let joined = found.host_config.and_then(|h| h.network_mode);
    let address = found
        .network_settings
        .and_then(|n| n.networks)
        .and_then(|mut networks| {
            let own = joined
                .and_then(|name| networks.remove(&name))
                .and_then(|e| e.ip_address)
                .filter(|ip| !ip.is_empty());
            own.or_else(|| {
                networks
                    .into_values()
                    .filter_map(|e| e.ip_address)
                    .find(|ip| !ip.is_empty())
            })
        });
    EngineContainer {
        id: found.id.unwrap_or_default(),
        state: state
            .status
            .map(|s| s.to_string())
            .unwrap_or_else(|| "unknown".into()),
        exit_code: state.exit_code,
        oom_killed: state.oom_killed.unwrap_or(false),
        health: state
            .health
            .and_then(|h| h.status)
            .map(|s| s.to_string())
            .filter(|s| !s.is_empty() && s != "none"),
        created_at: millis(found.created.as_deref()),
        started_at: millis(state.started_at.as_deref()),
        finished_at: millis(state.finished_at.as_deref()),
        labels: found
            .config
            .and_then(|c| c.labels)
            .unwrap_or_default()
            .into_iter()
            .collect(),
        error: state.error.filter(|e| !e.is_empty()),
        address,
    }
}

fn chunk(output: LogOutput) -> Option<LogChunk> {
    let (stream, message) = match output {
        LogOutput::StdOut { message } | LogOutput::Console { message } => {
            (LogStream::Stdout, message)
        }
        LogOutput::StdErr { message } => (LogStream::Stderr, message),
        LogOutput::StdIn { .. } => return None,
    };
    Some(LogChunk {
        stream,
        text: String::from_utf8_lossy(&message).into_owned(),
    })
}

#[async_trait]
impl ContainerDriver for DockerDriver {
    async fn info(&self) -> Result<EngineInfo> {
        let docker = self.client().await?;
        let info = docker.info().await.map_err(|e| self.fault(e))?;
        Ok(EngineInfo {
            version: info.server_version.unwrap_or_default(),
            api_version: docker.client_version().to_string(),
            cpu_millis: info.ncpu.unwrap_or(0).max(0) as u64 * 1000,
            memory_bytes: info.mem_total.unwrap_or(0).max(0) as u64,
            user_namespaces: info
                .security_options
                .unwrap_or_default()
                .iter()
                .any(|o| o.contains("name=userns")),
            backing_filesystem: info
                .driver_status
                .unwrap_or_default()
                .into_iter()
                .find(|pair| pair.first().is_some_and(|k| k == "Backing Filesystem"))
                .and_then(|pair| pair.into_iter().nth(1))
                .unwrap_or_default(),
            storage_driver: info.driver.unwrap_or_default(),
        })
    }

    async fn image(&self, image: &str) -> Result<Option<ImageInfo>> {
        match self.client().await?.inspect_image(image).await {
            Ok(found) => Ok(Some(ImageInfo {
                user: found.config.and_then(|c| c.user).unwrap_or_default(),
            })),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(e) => Err(self.fault(e)),
        }
    }

    async fn create(&self, spec: &ContainerSpec) -> Result<String> {
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            cmd: spec.command.clone(),
            env: Some(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            labels: Some(spec.labels.clone().into_iter().collect()),
            user: spec.user.clone(),
            working_dir: spec.workdir.clone(),
            host_config: Some(hardening::host_config(spec, &self.inner.policy)),
            ..Default::default()
        };
        let options = CreateContainerOptionsBuilder::default()
            .name(&spec.name)
            .build();
        let created = self
            .client()
            .await?
            .create_container(Some(options), body)
            .await
            .map_err(|e| self.fault(e))?;
        Ok(created.id)
    }

    async fn start(&self, id: &str) -> Result<()> {
        self.client()
            .await?
            .start_container(id, None)
            .await
            .map_err(|e| self.fault(e))
    }

    async fn stop(&self, id: &str, grace: Duration) -> Result<()> {
        let options = StopContainerOptionsBuilder::default()
            .t(i32::try_from(grace.as_secs()).unwrap_or(i32::MAX))
            .build();
        match self.client().await?.stop_container(id, Some(options)).await {
            // 304: it was not running.
            Ok(())
            | Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 304, ..
            }) => Ok(()),
            Err(e) => Err(self.fault(e)),
        }
    }

    async fn wait(&self, id: &str) -> Result<i64> {
        let options = bollard::query_parameters::WaitContainerOptionsBuilder::default()
            .condition("not-running")
            .build();
        let mut waits = self.client().await?.wait_container(id, Some(options));
        match waits.next().await {
            Some(Ok(done)) => Ok(done.status_code),
            // bollard reports an exit code other than 0 as an error.
            Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => Ok(code),
            Some(Err(e)) => Err(self.fault(e)),
            None => Err(Error::new(
                Code::ContainerEngineFailed,
                "the engine ended the wait without an exit code",
            )),
        }
    }

    async fn remove(&self, id: &str) -> Result<()> {
        let options = RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(true)
            .build();
        match self
            .client()
            .await?
            .remove_container(id, Some(options))
            .await
        {
            Ok(())
            | Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(()),
            Err(e) => Err(self.fault(e)),
        }
    }

    async fn inspect(&self, id: &str) -> Result<Option<EngineContainer>> {
        Ok(self.inspect_raw(id, false).await?.map(from_inspect))
    }

    async fn disk_usage(&self, id: &str) -> Result<Option<u64>> {
        Ok(self
            .inspect_raw(id, true)
            .await?
            .map(|found| found.size_rw.unwrap_or(0).max(0) as u64))
    }

    async fn list(&self, labels: &BTreeMap<String, String>) -> Result<Vec<EngineContainer>> {
        let options = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&label_filters(labels))
            .build();
        let summaries = self
            .client()
            .await?
            .list_containers(Some(options))
            .await
            .map_err(|e| self.fault(e))?;
        let mut found = Vec::with_capacity(summaries.len());
        for summary in summaries {
            let Some(id) = summary.id else { continue };
            // Gone between the list and the inspect: not there.
            if let Some(container) = self.inspect(&id).await? {
                found.push(container);
            }
        }
        Ok(found)
    }

    async fn exec(&self, id: &str, command: &[String]) -> Result<ExecOutput> {
        let docker = self.client().await?;
        let exec = docker
            .create_exec(
                id,
                CreateExecOptions {
                    cmd: Some(command.to_vec()),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| self.fault(e))?;
        let mut out = ExecOutput {
            exit_code: -1,
            stdout: String::new(),
            stderr: String::new(),
        };
        if let StartExecResults::Attached { mut output, .. } = docker
            .start_exec(&exec.id, None)
            .await
            .map_err(|e| self.fault(e))?
        {
            while let Some(part) = output.next().await {
                match chunk(part.map_err(|e| self.fault(e))?) {
                    Some(LogChunk {
                        stream: LogStream::Stdout,
                        text,
                    }) => out.stdout.push_str(&text),
                    Some(LogChunk { text, .. }) => out.stderr.push_str(&text),
                    None => {}
                }
            }
        }
        let inspected = docker
            .inspect_exec(&exec.id)
            .await
            .map_err(|e| self.fault(e))?;
        out.exit_code = inspected.exit_code.unwrap_or(-1);
        Ok(out)
    }

    fn exec_stream(&self, id: &str, command: &[String]) -> BoxStream<'static, Result<ExecEvent>> {
        let (id, command) = (id.to_owned(), command.to_vec());
        let inner = self.inner.clone();
        futures::stream::once(async move {
            let docker = inner.client().await?.clone();
            let exec = docker
                .create_exec(
                    &id,
                    CreateExecOptions {
                        cmd: Some(command),
                        attach_stdout: Some(true),
                        attach_stderr: Some(true),
                        ..Default::default()
                    },
                )
                .await
                .map_err(|e| inner.fault(e))?;
            let output = match docker
                .start_exec(&exec.id, None)
                .await
                .map_err(|e| inner.fault(e))?
            {
                StartExecResults::Attached { output, .. } => output,
                StartExecResults::Detached => futures::stream::empty().boxed(),
            };
            let fault = inner.clone();
            let output =
                output
                    .map_err(move |e| fault.fault(e))
                    .try_filter_map(|part| async move {
                        Ok(match part {
                            LogOutput::StdOut { message } | LogOutput::Console { message } => {
                                Some(ExecEvent::Stdout(message))
                            }
                            LogOutput::StdErr { message } => Some(ExecEvent::Stderr(message)),
                            LogOutput::StdIn { .. } => None,
                        })
                    });
            let exited = futures::stream::once(async move {
                let inspected = docker
                    .inspect_exec(&exec.id)
                    .await
                    .map_err(|e| inner.fault(e))?;
                Ok(ExecEvent::Exited(inspected.exit_code.unwrap_or(-1)))
            });
            Ok::<_, Error>(output.chain(exited))
        })
        .try_flatten()
        .boxed()
    }

    fn logs(
        &self,
        id: &str,
        follow: bool,
        tail: Option<u64>,
    ) -> BoxStream<'static, Result<LogChunk>> {
        let tail = tail.map_or_else(|| "all".to_string(), |n| n.to_string());
        let options = LogsOptionsBuilder::default()
            .follow(follow)
            .stdout(true)
            .stderr(true)
            .tail(&tail)
            .build();
        let id = id.to_owned();
        self.connected(move |docker, inner| {
            docker
                .logs(&id, Some(options))
                .map_err(move |e| inner.fault(e))
                .try_filter_map(|o| async move { Ok(chunk(o)) })
        })
    }

    async fn stats(&self, id: &str) -> Result<Stats> {
        let options = StatsOptionsBuilder::default().stream(false).build();
        let sample = self
            .client()
            .await?
            .stats(id, Some(options))
            .next()
            .await
            .ok_or_else(|| Error::new(Code::ContainerEngineFailed, "the engine sent no stats"))?
            .map_err(|e| self.fault(e))?;
        let cpu = sample.cpu_stats.unwrap_or_default();
        let pre = sample.precpu_stats.unwrap_or_default();
        let used = |c: &bollard::models::ContainerCpuStats| {
            c.cpu_usage
                .as_ref()
                .and_then(|u| u.total_usage)
                .unwrap_or(0)
        };
        let delta = used(&cpu).saturating_sub(used(&pre)) as f64;
        let system = cpu
            .system_cpu_usage
            .unwrap_or(0)
            .saturating_sub(pre.system_cpu_usage.unwrap_or(0)) as f64;
        let cores = cpu.online_cpus.unwrap_or(1).max(1) as f64;
        let memory = sample.memory_stats.unwrap_or_default();
        Ok(Stats {
            cpu_percent: if system > 0.0 {
                delta / system * cores * 100.0
            } else {
                0.0
            },
            memory_bytes: memory.usage.unwrap_or(0),
            memory_limit_bytes: memory.limit.unwrap_or(0),
            pids: sample.pids_stats.and_then(|p| p.current).unwrap_or(0),
        })
    }

    async fn copy_in(
        &self,
        id: &str,
        path: &str,
        tar: BoxStream<'static, Result<Bytes>>,
    ) -> Result<()> {
        let options = UploadToContainerOptionsBuilder::default()
            .path(path)
            .build();
        let body = tar.map_err(|e| std::io::Error::other(e.message));
        // The engine answers once the whole archive went in: as long as it takes to stream.
        let docker = self
            .client()
            .await?
            .clone()
            .with_timeout(self.inner.timeout.max(COPY_TIMEOUT));
        docker
            .upload_to_container(id, Some(options), bollard::body_try_stream(body))
            .await
            .map_err(|e| self.fault(e))
    }

    fn copy_out(&self, id: &str, path: &str) -> BoxStream<'static, Result<Bytes>> {
        let options = DownloadFromContainerOptionsBuilder::default()
            .path(path)
            .build();
        let id = id.to_owned();
        self.connected(move |docker, inner| {
            docker
                .download_from_container(&id, Some(options))
                .map_err(move |e| inner.fault(e))
        })
    }

    async fn create_network(&self, spec: &NetworkSpec) -> Result<NetworkCreated> {
        let request = NetworkCreateRequest {
            name: spec.name.clone(),
            driver: Some("bridge".into()),
            ipam: Some(Ipam {
                config: Some(vec![IpamConfig {
                    subnet: Some(spec.subnet.to_string()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            options: Some(HashMap::from([
                ("com.docker.network.bridge.name".into(), spec.bridge.clone()),
                (
                    "com.docker.network.bridge.enable_icc".into(),
                    "false".into(),
                ),
            ])),
            labels: Some(spec.labels.clone().into_iter().collect()),
            ..Default::default()
        };
        match self.client().await?.create_network(request).await {
            Ok(_) => Ok(NetworkCreated::Created),
            Err(bollard::errors::Error::DockerResponseServerError { message, .. })
                if message.contains("overlaps") =>
            {
                Ok(NetworkCreated::SubnetTaken)
            }
            // Engines before API 1.44 check names only on request; the bridge name, derived
            // from the network's name, is always checked.
            Err(bollard::errors::Error::DockerResponseServerError { message, .. })
                if message.contains("already exists") || message.contains("same bridge name") =>
            {
                Ok(NetworkCreated::Exists)
            }
            Err(e) => Err(self.fault(e)),
        }
    }

    async fn networks(&self, labels: &BTreeMap<String, String>) -> Result<Vec<EngineNetwork>> {
        let options = ListNetworksOptionsBuilder::default()
            .filters(&label_filters(labels))
            .build();
        let found = self
            .client()
            .await?
            .list_networks(Some(options))
            .await
            .map_err(|e| self.fault(e))?;
        Ok(found
            .into_iter()
            .map(|n| EngineNetwork {
                name: n.name.unwrap_or_default(),
                labels: n.labels.unwrap_or_default().into_iter().collect(),
                subnets: n
                    .ipam
                    .and_then(|i| i.config)
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|c| c.subnet?.parse().ok())
                    .collect(),
            })
            .collect())
    }

    async fn remove_network(&self, name: &str) -> Result<bool> {
        match self.client().await?.remove_network(name).await {
            Ok(())
            | Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(true),
            Err(bollard::errors::Error::DockerResponseServerError { message, .. })
                if message.contains("active endpoints") =>
            {
                Ok(false)
            }
            Err(e) => Err(self.fault(e)),
        }
    }

    async fn connect(&self, id: &str, network: &str) -> Result<()> {
        let request = NetworkConnectRequest {
            container: id.into(),
            ..Default::default()
        };
        self.client()
            .await?
            .connect_network(network, request)
            .await
            .map_err(|e| self.fault(e))
    }

    async fn disconnect(&self, id: &str, network: &str) -> Result<()> {
        let request = NetworkDisconnectRequest {
            container: id.into(),
            force: Some(true),
        };
        match self
            .client()
            .await?
            .disconnect_network(network, request)
            .await
        {
            Ok(()) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError { message, .. })
                if message.contains("is not connected") =>
            {
                Ok(())
            }
            Err(e) => Err(self.fault(e)),
        }
    }

    async fn update_limits(&self, id: &str, limits: Limits) -> Result<()> {
        let memory = i64::try_from(limits.memory_bytes).unwrap_or(i64::MAX);
        let body = ContainerUpdateBody {
            memory: Some(memory),
            memory_swap: Some(memory),
            nano_cpus: Some(
                i64::try_from(limits.cpu_millis.saturating_mul(1_000_000)).unwrap_or(i64::MAX),
            ),
            ..Default::default()
        };
        self.client()
            .await?
            .update_container(id, body)
            .await
            .map_err(|e| self.fault(e))
    }

    fn events(&self, labels: &BTreeMap<String, String>) -> BoxStream<'static, Result<EngineEvent>> {
        let mut filters = label_filters(labels);
        filters.insert("type".into(), vec!["container".into()]);
        let options = EventsOptionsBuilder::default().filters(&filters).build();
        self.connected(move |docker, inner| {
            docker
                .events(Some(options))
                .map_err(move |e| inner.fault(e))
                .try_filter_map(|event| async move {
                    let actor = event.actor.unwrap_or_default();
                    Ok(match (actor.id, event.action) {
                        (Some(engine_id), Some(action)) => Some(EngineEvent {
                            engine_id,
                            action,
                            labels: actor.attributes.unwrap_or_default().into_iter().collect(),
                        }),
                        _ => None,
                    })
                })
        })
    }
}
