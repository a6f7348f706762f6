//! Containers on a container engine: create with admission and per-user limits, start, stop,
//! remove, watch, and keep the store true to what the engine says.
//!
//! The store is the ledger of what Weft created; the engine is the truth about what runs. The
//! engine's events and a periodic reconciliation (`reconcile`) bring the ledger in line, so a
//! container stopped, killed or removed behind Weft's back shows as such, and time is accounted.

pub(crate) mod config;
pub(crate) mod disk;
pub mod docker;
pub mod driver;
pub(crate) mod firewall;
pub mod hardening;
pub mod network;
pub(crate) mod quantity;
pub(crate) mod reconcile;
pub(crate) mod records;
pub(crate) mod resources;
pub(crate) mod routes;

pub(crate) use driver::{ContainerDriver, ContainerSpec, EngineContainer, Limits};
pub(crate) use records::{Container, ContainerStatus};

use crate::auth::Caller;
use crate::error::{Code, Error, Result};
use crate::store::{Store, now_ms, time};
use crate::telemetry::host::{HostMeters, Resources};
use chrono::{DateTime, Utc};
use config::ContainersConfig;
use futures::stream::BoxStream;
use resources::{Capacity, Quota, ResourceTable, Usage};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OwnedMutexGuard, broadcast};
use utoipa::ToSchema;

/// Labels on every container Weft creates.
pub const LABEL_INSTALL: &str = "weft.install";
/// The container's id in Weft.
pub const LABEL_CONTAINER: &str = "weft.container";
/// The id of the user who owns the container.
pub const LABEL_OWNER: &str = "weft.owner";
/// The data folder (project) a workspace container works on; empty for plain containers.
pub const LABEL_DATA_FOLDER: &str = "weft.data-folder";

/// The owner of the containers Weft keeps started for users to come (warm pools, see
/// `crate::workspace::pool`): they sit on a network of their own, count against the host's
/// capacity and no user's quota, and give way when a user's container needs the room. Handed
/// to a user ([`Containers::hand_over`]), a container keeps this as its `weft.owner` label
/// (labels are fixed at creation); its record names the user.
pub const POOL_OWNER: &str = "weft-pool";

/// A request for a new container.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewContainer {
    /// A local image (nothing is pulled).
    pub image: String,
    /// Replaces the image's command.
    #[serde(default)]
    pub command: Option<Vec<String>>,
    #[serde(default)]
    /// CPU, memory and GPUs; absent ones take the configured defaults.
    pub resources: ResourceRequest,
    #[serde(default)]
    /// Environment variables set in the container.
    pub environment: BTreeMap<String, String>,
    /// The working folder (absolute); the image's own when absent.
    #[serde(default)]
    pub workdir: Option<String>,
    /// Start it at once (default true).
    #[serde(default = "yes")]
    pub start: bool,
}

fn yes() -> bool {
    true
}

/// Resources as Kubernetes-style quantities; absent ones take the configured defaults.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourceRequest {
    /// Cores: `"2"`, `"0.5"`, `"500m"`.
    pub cpu: Option<String>,
    /// Bytes with a unit: `"512Mi"`, `"4Gi"`, `"1G"`.
    pub memory: Option<String>,
    /// Whole GPUs: `"1"`.
    pub gpu: Option<String>,
}

/// A container's status changed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StatusEvent {
    /// The container's id in Weft.
    pub container_id: String,
    #[serde(skip)]
    /// Whose it is: events go to the owner and admins only.
    pub owner_id: String,
    /// `removed` once deleted; otherwise the container's status.
    pub status: String,
    /// The engine's health check status, when the image has one.
    pub health: Option<String>,
    /// The exit code, once exited.
    pub exit_code: Option<i64>,
    /// Why it failed, when it did.
    pub error: Option<String>,
    /// When the change was seen.
    pub at: DateTime<Utc>,
}

/// The engine, as `GET /resources` reports it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EngineReport {
    /// Whether the engine answers.
    pub available: bool,
    /// Where the engine is (`unix:///var/run/docker.sock`, `tcp://...`).
    pub address: String,
    /// The engine's version, when it answers.
    pub version: Option<String>,
    /// The engine's API version, when it answers.
    pub api_version: Option<String>,
    /// Whether containers' users are remapped into a user namespace by the engine.
    pub user_namespaces: bool,
    /// Why it is not available.
    pub error: Option<String>,
    /// The host firewall between containers and the host, link-local addresses and each other.
    pub firewall: firewall::FirewallReport,
    /// How the writable-layer size limit is enforced.
    pub disk_quota: disk::DiskQuotaReport,
}

/// The caller's share.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserReport {
    /// Containers the caller has (any status).
    pub containers: u32,
    /// Most containers the caller may have.
    pub max_containers: u32,
    /// CPU the caller's created and running containers hold.
    pub cpu: String,
    /// Most CPU the caller's containers may hold.
    pub max_cpu: String,
    /// Memory the caller's created and running containers hold.
    pub memory: String,
    /// Most memory the caller's containers may hold.
    pub max_memory: String,
}

/// `GET /resources`: the engine, per-resource capacity/allocated/free, and the caller's share.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ResourcesReport {
    /// The engine and how it isolates containers.
    pub engine: EngineReport,
    /// Per resource: capacity, allocated and free.
    pub resources: ResourceTable,
    /// The caller's share.
    pub user: UserReport,
}

/// The containers service, cheap to clone.
#[derive(Clone)]
pub struct Containers {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    driver: Arc<dyn ContainerDriver>,
    address: String,
    install_id: String,
    defaults: Limits,
    quota: Quota,
    cpu_overcommit: f64,
    gpus: u32,
    stop_grace: Duration,
    start_grace: Duration,
    reconcile_every: Duration,
    orphan_grace: Duration,
    images: hardening::Images,
    networks: network::Networks,
    disk: disk::DiskQuota,
    firewall: firewall::FirewallReport,
    /// Held from the admission check until the new record is stored.
    admission: tokio::sync::Mutex<()>,
    /// The host's capacity as last asked and when (see [`Containers::capacity`]).
    capacity_seen: Mutex<Option<(std::time::Instant, Capacity)>>,
    /// When a pooled container last gave way to a user's (Unix ms; 0: never).
    last_eviction_ms: std::sync::atomic::AtomicI64,
    /// One lock per container: API operations, events and reconciliation change a record one
    /// at a time.
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    events: broadcast::Sender<StatusEvent>,
}

fn parse_config_quantity<T>(
    field: &str,
    text: &str,
    parse: fn(&str) -> std::result::Result<T, quantity::QuantityError>,
) -> anyhow::Result<T> {
    parse(text).map_err(|e| anyhow::anyhow!("[containers] {field}: {e}"))
}

impl Containers {
    /// The service on the Docker engine the configuration names; the engine is contacted
    /// lazily, so this works without one. Installs the host firewall, starts the event watcher,
    /// reconciliation and the disk watcher. `workspace_images` may always run.
    pub async fn start(
        store: Store,
        config: &ContainersConfig,
        workspace_images: &[String],
    ) -> anyhow::Result<Self> {
        let disk_limit =
            parse_config_quantity("disk_limit", &config.disk_limit, quantity::memory_bytes)?;
        let max_file_bytes = match &config.max_file_size {
            Some(text) => parse_config_quantity("max_file_size", text, quantity::memory_bytes)?,
            None => disk_limit,
        };
        let driver = docker::DockerDriver::new(
            config.docker_host.as_deref(),
            Duration::from_secs(config.engine_timeout_secs),
            hardening::Policy {
                capabilities: config.capabilities.clone(),
                pids_limit: config.pids_limit,
                nofile: config.nofile,
                max_file_bytes,
            },
        );
        let address = driver.address().to_owned();
        let firewall = firewall::install(&config.firewall, &address).await;
        let images = hardening::Images {
            allowed: config
                .allowed_images
                .iter()
                .chain(workspace_images)
                .cloned()
                .collect(),
            root: config.root_images.clone(),
        };
        let containers = Self::with_driver(
            store,
            config,
            Arc::new(driver),
            address,
            images,
            disk::DiskQuota::new(disk_limit),
            firewall,
        )
        .await?;
        reconcile::spawn(containers.clone());
        disk::spawn(
            containers.clone(),
            Duration::from_secs(config.disk_check_interval_secs.max(1)),
        );
        Ok(containers)
    }

    async fn with_driver(
        store: Store,
        config: &ContainersConfig,
        driver: Arc<dyn ContainerDriver>,
        address: String,
        images: hardening::Images,
        disk: disk::DiskQuota,
        firewall: firewall::FirewallReport,
    ) -> anyhow::Result<Self> {
        let defaults = Limits {
            cpu_millis: parse_config_quantity(
                "default_cpu",
                &config.default_cpu,
                quantity::cpu_millis,
            )?,
            memory_bytes: parse_config_quantity(
                "default_memory",
                &config.default_memory,
                quantity::memory_bytes,
            )?,
            gpus: 0,
        };
        let quota = Quota {
            max_containers: config.per_user.max_containers,
            max_cpu_millis: parse_config_quantity(
                "per_user.max_cpu",
                &config.per_user.max_cpu,
                quantity::cpu_millis,
            )?,
            max_memory_bytes: parse_config_quantity(
                "per_user.max_memory",
                &config.per_user.max_memory,
                quantity::memory_bytes,
            )?,
        };
        if !(config.cpu_overcommit >= 1.0 && config.cpu_overcommit.is_finite()) {
            anyhow::bail!("[containers] cpu_overcommit must be 1 or more");
        }
        let install_id = records::install_id(&store).await?;
        let networks = network::Networks::new(driver.clone(), &install_id, &config.network)?;
        Ok(Self {
            inner: Arc::new(Inner {
                images,
                networks,
                disk,
                firewall,
                store,
                driver,
                address,
                install_id,
                defaults,
                quota,
                cpu_overcommit: config.cpu_overcommit,
                gpus: config.gpus,
                stop_grace: Duration::from_secs(config.stop_timeout_secs),
                start_grace: Duration::from_millis(config.start_grace_ms),
                reconcile_every: Duration::from_secs(config.reconcile_interval_secs.max(1)),
                orphan_grace: Duration::from_secs(config.orphan_grace_secs),
                admission: tokio::sync::Mutex::new(()),
                capacity_seen: Mutex::new(None),
                last_eviction_ms: std::sync::atomic::AtomicI64::new(0),
                locks: Mutex::new(HashMap::new()),
                events: broadcast::channel(1024).0,
            }),
        })
    }

    /// The engine this service drives.
    pub fn driver(&self) -> &Arc<dyn ContainerDriver> {
        &self.inner.driver
    }

    /// The id labelling every container this installation creates.
    pub fn install_id(&self) -> &str {
        &self.inner.install_id
    }

    /// Status changes from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<StatusEvent> {
        self.inner.events.subscribe()
    }

    async fn lock(&self, id: &str) -> OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self.inner.locks.lock().expect("container locks poisoned");
            // Forget locks nobody holds so the map stays as small as the work in progress.
            locks.retain(|_, l| Arc::strong_count(l) > 1);
            locks.entry(id.to_owned()).or_default().clone()
        };
        lock.lock_owned().await
    }

    /// The container's lock when nobody holds it.
    fn try_lock(&self, id: &str) -> Option<OwnedMutexGuard<()>> {
        let lock = {
            let mut locks = self.inner.locks.lock().expect("container locks poisoned");
            locks.retain(|_, l| Arc::strong_count(l) > 1);
            locks.entry(id.to_owned()).or_default().clone()
        };
        lock.try_lock_owned().ok()
    }

    fn announce(&self, c: &Container) {
        let _ = self.inner.events.send(StatusEvent {
            container_id: c.id.clone(),
            owner_id: c.owner_id.clone(),
            status: c.status.as_str().into(),
            health: c.health.clone(),
            exit_code: c.exit_code,
            error: c.error.clone(),
            at: time(now_ms()),
        });
    }

    async fn save(&self, c: &Container) -> Result<()> {
        records::save(&self.inner.store, c).await?;
        self.announce(c);
        Ok(())
    }

    /// The request's limits, defaults filled in, quantities checked.
    pub(crate) fn limits(&self, request: &ResourceRequest) -> Result<Limits> {
        let field = |name: &str, e: quantity::QuantityError| {
            Error::invalid_field(&format!("resources.{name}"), e)
        };
        Ok(Limits {
            cpu_millis: match &request.cpu {
                Some(text) => quantity::cpu_millis(text).map_err(|e| field("cpu", e))?,
                None => self.inner.defaults.cpu_millis,
            },
            memory_bytes: match &request.memory {
                Some(text) => quantity::memory_bytes(text).map_err(|e| field("memory", e))?,
                None => self.inner.defaults.memory_bytes,
            },
            gpus: match &request.gpu {
                Some(text) => quantity::gpus(text).map_err(|e| field("gpu", e))?,
                None => 0,
            },
        })
    }

    /// Whether `limits` fit the share of `owner` and the host now; `restart` names a container
    /// of theirs being started again, which is already counted among their containers.
    async fn admit(&self, owner: &str, limits: Limits, restart: Option<&str>) -> Result<()> {
        let all = records::list(&self.inner.store, None).await?;
        let capacity = self.capacity().await?;
        let quota = if owner == POOL_OWNER {
            Quota::unlimited()
        } else {
            self.inner.quota
        };
        resources::admit(
            limits,
            Usage::of(
                all.iter()
                    .filter(|c| c.owner_id == owner && Some(c.id.as_str()) != restart),
            ),
            quota,
            Usage::of(&all),
            capacity,
        )
    }

    /// [`Self::admit`] for a new container; when the host is what is short, pooled containers
    /// give way one at a time first (a user never waits on a pool). The caller holds the
    /// admission lock.
    async fn admit_new(&self, owner: &str, limits: Limits) -> Result<()> {
        loop {
            match self.admit(owner, limits, None).await {
                Err(e) if e.code == Code::ContainerNoResources && owner != POOL_OWNER => {
                    if !self.evict_pooled().await? {
                        return Err(e);
                    }
                }
                admitted => return admitted,
            }
        }
    }

    /// Removes one pooled container nobody is working on (the newest); `false` when there is
    /// none. The caller holds the admission lock.
    async fn evict_pooled(&self) -> Result<bool> {
        let pooled = records::list(&self.inner.store, Some(POOL_OWNER)).await?;
        for record in pooled.iter().rev() {
            let Some(_lock) = self.try_lock(&record.id) else {
                continue;
            };
            if let Some(engine_id) = &record.engine_id {
                self.inner.driver.remove(engine_id).await?;
            }
            records::delete(&self.inner.store, &record.id).await?;
            let _ = self.inner.events.send(StatusEvent {
                container_id: record.id.clone(),
                owner_id: record.owner_id.clone(),
                status: "removed".into(),
                health: None,
                exit_code: None,
                error: Some("gave way to a user's container".into()),
                at: time(now_ms()),
            });
            self.inner
                .last_eviction_ms
                .store(now_ms(), std::sync::atomic::Ordering::Relaxed);
            tracing::info!(container = %record.id, "a pooled container gave way to a user's");
            return Ok(true);
        }
        Ok(false)
    }

    /// When a pooled container last gave way to a user's (Unix ms; 0: never).
    pub(crate) fn last_eviction_ms(&self) -> i64 {
        self.inner
            .last_eviction_ms
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Gives the running pooled container `id` to `owner` under `limits`: claimed in the store
    /// first (so that of two Weft hosts sharing the database one alone gets it), counted in
    /// their share from then on (refused like a new container when it does not fit it), its
    /// limits changed on the engine when they differ, joined to the owner's network and taken
    /// off the pool's. On an error after the claim the container may be half way: the caller
    /// removes it (it is the owner's by then).
    pub(crate) async fn hand_over(
        &self,
        id: &str,
        owner: &str,
        limits: Limits,
    ) -> Result<Container> {
        // The admission lock first, as everywhere: an eviction holds it while taking a
        // container's lock. It is held only until the claim is stored: the engine calls after it
        // (seconds on a busy engine) would hold every other admission back.
        let admission = self.inner.admission.lock().await;
        let _lock = self.lock(id).await;
        let mut record = records::get(&self.inner.store, id)
            .await?
            .filter(|c| c.owner_id == POOL_OWNER && c.status == ContainerStatus::Running)
            .ok_or_else(|| not_found(id))?;
        let engine_id = record.engine_id.clone().ok_or_else(|| gone(&record))?;
        let all = records::list(&self.inner.store, None).await?;
        resources::admit(
            limits,
            Usage::of(all.iter().filter(|c| c.owner_id == owner)),
            self.inner.quota,
            Usage::of(all.iter().filter(|c| c.id != id)),
            self.capacity().await?,
        )?;
        let pooled_limits = record.limits;
        if !records::hand_over(&self.inner.store, &mut record, POOL_OWNER, owner, limits).await? {
            return Err(not_found(id));
        }
        drop(admission);
        self.announce(&record);
        if pooled_limits != limits {
            self.inner.driver.update_limits(&engine_id, limits).await?;
        }
        {
            let _network = self.inner.networks.lock(owner).await;
            let network = self.inner.networks.ensure(owner).await?;
            self.inner.driver.connect(&engine_id, &network).await?;
        }
        self.inner
            .driver
            .disconnect(&engine_id, &network::name(POOL_OWNER))
            .await?;
        tracing::info!(container = %id, owner, "pooled container handed over");
        Ok(record)
    }

    /// The host's capacity: asked of the engine once, then answered from what it said last
    /// while a refresh runs in the background when that is over 10 s old. A busy engine's
    /// `/info` took 10-30 s under the test suite's load, and every admission waited on it.
    async fn capacity(&self) -> Result<Capacity> {
        const FRESH: Duration = Duration::from_secs(10);
        let seen = {
            let mut seen = self.inner.capacity_seen.lock().expect("capacity poisoned");
            let last = *seen;
            if let Some((at, capacity)) = last
                && at.elapsed() >= FRESH
            {
                // Marked fresh now, so one refresh runs at a time.
                *seen = Some((std::time::Instant::now(), capacity));
                let this = self.clone();
                tokio::spawn(async move {
                    if let Err(e) = this.ask_capacity().await {
                        tracing::debug!(error = %e.message, "cannot refresh the host's capacity");
                    }
                });
            }
            last
        };
        match seen {
            Some((_, capacity)) => Ok(capacity),
            None => self.ask_capacity().await,
        }
    }

    async fn ask_capacity(&self) -> Result<Capacity> {
        let capacity = self.capacity_of(&self.inner.driver.info().await?);
        *self.inner.capacity_seen.lock().expect("capacity poisoned") =
            Some((std::time::Instant::now(), capacity));
        Ok(capacity)
    }

    /// What Weft may hand out on the engine's host: its cores times the overcommit, its
    /// memory, and the declared GPUs.
    fn capacity_of(&self, info: &driver::EngineInfo) -> Capacity {
        Capacity {
            cpu_millis: (info.cpu_millis as f64 * self.inner.cpu_overcommit) as u64,
            memory_bytes: info.memory_bytes,
            gpus: self.inner.gpus,
        }
    }

    /// Whether `request` could ever be admitted for `owner`: it fits their limits and the
    /// host when nothing else runs. A job that fails this is refused; one that passes waits
    /// for room.
    pub(crate) async fn could_fit(&self, request: &ResourceRequest) -> Result<Limits> {
        let limits = self.limits(request)?;
        resources::admit(
            limits,
            Usage::default(),
            self.inner.quota,
            Usage::default(),
            self.capacity().await?,
        )?;
        Ok(limits)
    }

    /// Starts a created container of a job: unlike [`Self::start_container`] an exit right
    /// after the start is no failure (a job may be that quick), and nothing waits for it.
    pub(crate) async fn start_job(&self, caller: &Caller, id: &str) -> Result<Container> {
        let _lock = self.lock(id).await;
        let mut record = self.get(caller, id).await?;
        let engine_id = record.engine_id.clone().ok_or_else(|| gone(&record))?;
        self.inner.driver.start(&engine_id).await?;
        record.mark_running(now_ms());
        self.save(&record).await?;
        Ok(record)
    }

    /// `POST /resources/allocate`: whether a container with `request` would be admitted now.
    pub async fn check(&self, caller: &Caller, request: &ResourceRequest) -> Result<Limits> {
        let limits = self.limits(request)?;
        self.admit(&caller.user_id, limits, None).await?;
        Ok(limits)
    }

    /// `GET /resources`.
    pub async fn report(&self, caller: &Caller) -> Result<ResourcesReport> {
        let all = records::list(&self.inner.store, None).await?;
        let info = self.inner.driver.info().await;
        let engine = EngineReport {
            available: info.is_ok(),
            address: self.inner.address.clone(),
            version: info.as_ref().ok().map(|i| i.version.clone()),
            api_version: info.as_ref().ok().map(|i| i.api_version.clone()),
            user_namespaces: info.as_ref().is_ok_and(|i| i.user_namespaces),
            error: info.as_ref().err().map(|e| e.message.clone()),
            firewall: self.inner.firewall.clone(),
            disk_quota: self.inner.disk.report(info.as_ref().ok()),
        };
        let capacity = info.map(|info| self.capacity_of(&info)).unwrap_or_default();
        let mine = Usage::of(all.iter().filter(|c| c.owner_id == caller.user_id));
        let quota = self.inner.quota;
        Ok(ResourcesReport {
            engine,
            resources: ResourceTable::new(capacity, Usage::of(&all)),
            user: UserReport {
                containers: mine.containers,
                max_containers: quota.max_containers,
                cpu: quantity::format_cpu(mine.cpu_millis),
                max_cpu: quantity::format_cpu(quota.max_cpu_millis),
                memory: quantity::format_memory(mine.memory_bytes),
                max_memory: quantity::format_memory(quota.max_memory_bytes),
            },
        })
    }

    /// Sets the host's metrics: containers holding resources by purpose, capacity (when the
    /// engine answers) and what is allocated.
    pub(crate) async fn record_usage(&self, meters: &HostMeters) -> Result<()> {
        let stored = records::counts_by_purpose(&self.inner.store).await?;
        let counts = ["session", "job", "pool", "api"].map(|purpose| {
            let n = stored
                .iter()
                .filter(|(p, _)| p == purpose)
                .map(|(_, n)| n)
                .sum();
            (purpose, n)
        });
        meters.set_containers(&counts);
        let all = records::list(&self.inner.store, None).await?;
        let capacity = self.capacity().await.ok();
        let in_units = |cpu_millis: u64, memory_bytes: u64, gpus: u32| Resources {
            cpu_cores: cpu_millis as f64 / 1000.0,
            memory_bytes: memory_bytes as f64,
            gpus: f64::from(gpus),
        };
        let allocated = Usage::of(&all);
        meters.set_resources(
            capacity.map(|c| in_units(c.cpu_millis, c.memory_bytes, c.gpus)),
            in_units(allocated.cpu_millis, allocated.memory_bytes, allocated.gpus),
        );
        Ok(())
    }

    /// Creates (and by default starts) a container for `caller`.
    pub async fn create(&self, caller: &Caller, request: NewContainer) -> Result<Container> {
        self.create_labelled(caller, request, BTreeMap::new(), "")
            .await
    }

    /// [`Self::create`] with extra labels and the data folder it works on (for workspaces).
    pub async fn create_labelled(
        &self,
        caller: &Caller,
        request: NewContainer,
        extra_labels: BTreeMap<String, String>,
        data_folder: &str,
    ) -> Result<Container> {
        validate(&request)?;
        let limits = self.limits(&request.resources)?;
        self.inner.images.check(&request.image)?;
        let Some(image) = self.inner.driver.image(&request.image).await? else {
            return Err(Error::new(
                Code::ContainerImageMissing,
                format!("the image '{}' is not on this host's engine", request.image),
            )
            .details(serde_json::json!({ "image": request.image }))
            .hint("Weft never pulls images: build it here (docker build / docker import) or load it (docker load -i IMAGE.tar)"));
        };
        let mut record = Container::new(
            &caller.user_id,
            &request.image,
            request.command.clone(),
            request.environment.clone(),
            limits,
        );
        let _lock = self.lock(&record.id).await;
        {
            let _admission = self.inner.admission.lock().await;
            self.admit_new(&caller.user_id, limits).await?;
            records::insert(&self.inner.store, &record).await?;
        }
        let mut labels = extra_labels;
        labels.insert(LABEL_INSTALL.into(), self.inner.install_id.clone());
        labels.insert(LABEL_CONTAINER.into(), record.id.clone());
        labels.insert(LABEL_OWNER.into(), caller.user_id.clone());
        labels.insert(LABEL_DATA_FOLDER.into(), data_folder.into());
        let spec = ContainerSpec {
            name: record.name.clone(),
            image: request.image.clone(),
            command: request.command.clone(),
            env: request.environment.clone(),
            workdir: request.workdir.clone(),
            labels,
            volumes: Vec::new(),
            limits,
            user: self.inner.images.user(&request.image, &image.user),
            network: None,
            disk_bytes: None,
        };
        match self.create_on_engine(spec, &caller.user_id).await {
            Ok(engine_id) => record.engine_id = Some(engine_id),
            Err(e) => {
                // Nothing exists on the engine: the record goes too, and the resources with it.
                records::delete(&self.inner.store, &record.id).await?;
                return Err(e);
            }
        }
        self.save(&record).await?;
        tracing::info!(container = %record.id, owner = %caller.user_id, image = %record.image, "container created");
        if request.start {
            self.start_locked(&mut record).await?;
        }
        Ok(record)
    }

    /// Creates `spec` on the engine on `owner`'s network (made if missing, and kept while this
    /// runs), with the disk limit where the engine enforces it.
    async fn create_on_engine(&self, mut spec: ContainerSpec, owner: &str) -> Result<String> {
        let _network = self.inner.networks.lock(owner).await;
        spec.network = Some(self.inner.networks.ensure(owner).await?);
        let disk = &self.inner.disk;
        if disk.mode(self.inner.driver.as_ref()).await? == disk::Mode::Engine {
            spec.disk_bytes = Some(disk.limit_bytes());
        }
        match self.inner.driver.create(&spec).await {
            Err(e) if spec.disk_bytes.is_some() && disk.engine_refused(&e) => {
                spec.disk_bytes = None;
                self.inner.driver.create(&spec).await
            }
            created => created,
        }
    }

    /// The container `id` if `caller` may see it (its owner or an admin); others get 404.
    pub async fn get(&self, caller: &Caller, id: &str) -> Result<Container> {
        match records::get(&self.inner.store, id).await? {
            Some(c) if c.owner_id == caller.user_id || caller.is_admin() => Ok(c),
            _ => Err(not_found(id)),
        }
    }

    /// The caller's containers (an admin's lists all).
    pub async fn list(&self, caller: &Caller) -> Result<Vec<Container>> {
        let owner = (!caller.is_admin()).then_some(caller.user_id.as_str());
        records::list(&self.inner.store, owner).await
    }

    /// Starts a created or stopped container.
    pub async fn start_container(&self, caller: &Caller, id: &str) -> Result<Container> {
        let _lock = self.lock(id).await;
        let mut record = self.get(caller, id).await?;
        if record.status != ContainerStatus::Running {
            if !record.status.holds_resources() {
                let _admission = self.inner.admission.lock().await;
                self.admit(&record.owner_id, record.limits, Some(id))
                    .await?;
                // Held from here: the record claims its resources before the engine starts it.
                record.mark_running(now_ms());
                records::save(&self.inner.store, &record).await?;
            }
            self.start_locked(&mut record).await?;
        }
        Ok(record)
    }

    async fn start_locked(&self, record: &mut Container) -> Result<()> {
        let engine_id = record.engine_id.clone().ok_or_else(|| gone(record))?;
        if let Err(e) = self.inner.driver.start(&engine_id).await {
            record.mark_ended(
                ContainerStatus::Failed,
                now_ms(),
                Some(format!("could not start: {}", e.message)),
            );
            self.save(record).await?;
            return Err(Error::new(Code::ContainerStartFailed, format!("the container could not start: {}", e.message))
                .details(serde_json::json!({ "container_id": record.id }))
                .hint("check the image's command; the container is kept (status failed) until you delete it"));
        }
        record.mark_running(now_ms());
        self.save(record).await?;
        // A container that exits at once is a failed start, told to the caller now.
        tokio::time::sleep(self.inner.start_grace).await;
        let engine = self.inner.driver.inspect(&engine_id).await?;
        if let Some(engine) = &engine
            && engine.is_running()
        {
            if let Some(started) = engine.started_at {
                record.started_at = Some(time(started));
            }
            record.health = engine.health.clone();
            self.save(record).await?;
            return Ok(());
        }
        self.apply(record, engine.as_ref());
        self.save(record).await?;
        let logs = self.tail(&engine_id, 20).await;
        Err(Error::new(
            Code::ContainerStartFailed,
            format!(
                "the container exited right after starting{}",
                record
                    .exit_code
                    .map(|c| format!(" with code {c}"))
                    .unwrap_or_default()
            ),
        )
        .details(serde_json::json!({
            "container_id": record.id,
            "exit_code": record.exit_code,
            "logs": logs,
        }))
        .hint("its last output is in details.logs; the container is kept until you delete it"))
    }

    /// The last `lines` chunks of output, for error reports (empty when unavailable).
    async fn tail(&self, engine_id: &str, lines: u64) -> String {
        use futures::StreamExt;
        let chunks: Vec<_> = self
            .inner
            .driver
            .logs(engine_id, false, Some(lines))
            .collect()
            .await;
        chunks
            .into_iter()
            .filter_map(|c| c.ok())
            .map(|c| c.text)
            .collect()
    }

    /// Stops a container: SIGTERM, then SIGKILL after `grace` (the configured one by default).
    pub async fn stop(
        &self,
        caller: &Caller,
        id: &str,
        grace: Option<Duration>,
    ) -> Result<Container> {
        let _lock = self.lock(id).await;
        let mut record = self.get(caller, id).await?;
        let Some(engine_id) = record.engine_id.clone() else {
            return Ok(record);
        };
        let grace = grace.unwrap_or(self.inner.stop_grace);
        self.inner.driver.stop(&engine_id, grace).await?;
        let engine = self.inner.driver.inspect(&engine_id).await?;
        if record.status.holds_resources() {
            let at = engine
                .as_ref()
                .and_then(|e| e.finished_at)
                .unwrap_or_else(now_ms);
            record.exit_code = engine.as_ref().and_then(|e| e.exit_code);
            let killed = record.exit_code == Some(137);
            record.mark_ended(
                ContainerStatus::Stopped,
                at,
                killed.then(|| {
                    format!(
                        "did not stop within {} s of SIGTERM and was killed",
                        grace.as_secs()
                    )
                }),
            );
            self.save(&record).await?;
            tracing::info!(container = %id, killed, "container stopped");
        }
        Ok(record)
    }

    /// Removes a container from the engine (stopping it first, within the stop grace) and
    /// forgets it.
    pub async fn remove(&self, caller: &Caller, id: &str) -> Result<()> {
        self.remove_after(caller, id, Some(self.inner.stop_grace))
            .await
    }

    /// Removes a container at once, with no time to exit on SIGTERM, and forgets it: for one
    /// whose contents were saved elsewhere already (a session's container after its sync), where
    /// a graceful exit only makes its user wait (Jupyter's takes seconds on a busy host).
    pub async fn discard(&self, caller: &Caller, id: &str) -> Result<()> {
        self.remove_after(caller, id, None).await
    }

    /// Removes a container, stopped within `grace` first if it is running and `grace` is given.
    async fn remove_after(&self, caller: &Caller, id: &str, grace: Option<Duration>) -> Result<()> {
        let _lock = self.lock(id).await;
        let record = self.get(caller, id).await?;
        if let Some(engine_id) = &record.engine_id {
            if let Some(grace) = grace
                && record.status == ContainerStatus::Running
            {
                self.inner.driver.stop(engine_id, grace).await?;
            }
            self.inner.driver.remove(engine_id).await?;
        }
        records::delete(&self.inner.store, id).await?;
        let _ = self.inner.events.send(StatusEvent {
            container_id: record.id.clone(),
            owner_id: record.owner_id.clone(),
            status: "removed".into(),
            health: None,
            exit_code: record.exit_code,
            error: None,
            at: time(now_ms()),
        });
        tracing::info!(container = %id, "container removed");
        Ok(())
    }

    /// The container's output (`follow`: live until it stops).
    pub async fn logs(
        &self,
        caller: &Caller,
        id: &str,
        tail: Option<u64>,
    ) -> Result<BoxStream<'static, Result<driver::LogChunk>>> {
        let record = self.get(caller, id).await?;
        let engine_id = record.engine_id.clone().ok_or_else(|| gone(&record))?;
        Ok(self.inner.driver.logs(&engine_id, true, tail))
    }

    /// One sample of a running container's use.
    pub async fn stats(&self, caller: &Caller, id: &str) -> Result<driver::Stats> {
        let record = self.get(caller, id).await?;
        let engine_id = record.engine_id.clone().ok_or_else(|| gone(&record))?;
        self.inner.driver.stats(&engine_id).await
    }

    /// Brings `record` in line with the engine's view of it (`None`: the engine lost it).
    /// Returns whether anything changed.
    fn apply(&self, record: &mut Container, engine: Option<&EngineContainer>) -> bool {
        let before = (record.status, record.health.clone(), record.exit_code);
        match engine {
            None if record.status.holds_resources() => {
                record.mark_ended(
                    ContainerStatus::Stopped,
                    now_ms(),
                    Some("the container vanished from the engine".into()),
                );
            }
            None => {}
            Some(e) if e.is_running() => {
                if record.status != ContainerStatus::Running {
                    record.mark_running(e.started_at.unwrap_or_else(now_ms));
                }
                record.health = e.health.clone();
            }
            Some(e) if e.state == "created" => {}
            Some(e) if record.status.holds_resources() => {
                let at = e.finished_at.unwrap_or_else(now_ms);
                record.exit_code = e.exit_code;
                let (status, why) = if e.oom_killed {
                    (
                        ContainerStatus::Failed,
                        Some("killed: out of memory".to_string()),
                    )
                } else if let Some(error) = &e.error {
                    (ContainerStatus::Failed, Some(error.clone()))
                } else {
                    match e.exit_code {
                        // 143: ended by SIGTERM, what a stop sends.
                        Some(0 | 143) | None => (ContainerStatus::Stopped, None),
                        Some(code) => (
                            ContainerStatus::Failed,
                            Some(format!("exited with code {code}")),
                        ),
                    }
                };
                record.mark_ended(status, at, why);
            }
            Some(_) => {}
        }
        before != (record.status, record.health.clone(), record.exit_code)
    }

    /// Re-reads one container from the engine and stores what changed (events call this).
    pub async fn refresh(&self, id: &str) -> Result<()> {
        let _lock = self.lock(id).await;
        let Some(mut record) = records::get(&self.inner.store, id).await? else {
            return Ok(());
        };
        let Some(engine_id) = record.engine_id.clone() else {
            return Ok(());
        };
        let engine = self.inner.driver.inspect(&engine_id).await?;
        if self.apply(&mut record, engine.as_ref()) {
            self.save(&record).await?;
        }
        Ok(())
    }
}

fn validate(request: &NewContainer) -> Result<()> {
    if request.image.trim().is_empty() || request.image.chars().any(char::is_whitespace) {
        return Err(Error::invalid_field(
            "image",
            "must be an image name such as debian:bookworm",
        ));
    }
    if let Some(workdir) = &request.workdir
        && (!workdir.starts_with('/') || workdir.split('/').any(|part| part == ".."))
    {
        return Err(Error::invalid_field(
            "workdir",
            "must be an absolute path without '..'",
        ));
    }
    if let Some(command) = &request.command
        && command.is_empty()
    {
        return Err(Error::invalid_field(
            "command",
            "must hold at least the program to run",
        ));
    }
    for key in request.environment.keys() {
        let valid = !key.is_empty()
            && !key.starts_with(|c: char| c.is_ascii_digit())
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(Error::invalid_field(
                &format!("environment.{key}"),
                "names are letters, digits and _, not starting with a digit",
            ));
        }
    }
    Ok(())
}

fn not_found(id: &str) -> Error {
    Error::new(
        Code::ContainerNotFound,
        format!("container '{id}' not found"),
    )
    .details(serde_json::json!({ "container_id": id }))
}

/// A record whose engine container was never made.
fn gone(record: &Container) -> Error {
    Error::new(
        Code::ContainerNotFound,
        format!("container '{}' does not exist on the engine", record.id),
    )
    .hint("delete it and create a new one")
}
