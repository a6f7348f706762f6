//! The plugin registry: workflow nodes and scheduling strategies as WebAssembly components.
//!
//! Components are stored content-addressed (`<data>/plugins/<sha256>.wasm`), registered as
//! `name@version` (unique), loaded into the [`weft_runtime::Runtime`] once and kept warm.
//! Admins upload, remove and grant capabilities; the built-ins from `plugins/` are registered
//! at start. Other services (workflows, the scheduler) resolve plugins here.

pub(crate) mod config;
mod errors;
mod grants;
mod records;
pub(crate) mod routes;
mod services;
mod slots;

pub use grants::effective;

pub(crate) use config::Setup;
pub(crate) use errors::call_error;
pub(crate) use grants::{GrantList, Grantee, ScopedGrant};
pub(crate) use records::{PluginVersion, Settings};
pub(crate) use services::{CallServices, LiveEvents, ServiceBackend};
pub(crate) use slots::UserSlots;

use crate::auth::Auth;
use crate::error::{Code, Error, Result};
use crate::store::Store;
use serde::Serialize;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock, Weak};
use utoipa::ToSchema;
use weft_runtime::{
    CacheOutcome, Limits, NodePlugin, Plugin, Runtime, RuntimeConfig, StrategyPlugin, Value,
};

/// Something that may be using a plugin version (a stored workflow, an active strategy).
pub trait PluginUsers: Send + Sync {
    /// A description of one user of `name@version`, if any. `last` is set when no other
    /// version of `name` would remain, so users naming `name` alone count too.
    fn user_of<'a>(
        &'a self,
        name: &'a str,
        version: &'a str,
        last: bool,
    ) -> weft_runtime::BoxFuture<'a, Result<Option<String>>>;
}

/// The registry service; cheap to clone.
#[derive(Clone)]
pub struct Plugins {
    inner: Arc<Inner>,
}

struct Inner {
    runtime: Arc<Runtime>,
    store: Store,
    auth: Auth,
    blobs: PathBuf,
    backend: Arc<ServiceBackend>,
    slots: Arc<UserSlots>,
    loaded: RwLock<HashMap<(String, String), Loaded>>,
    /// Weak: the services that use plugins hold the registry, and a cycle would keep every
    /// service (and the runtime's epoch thread) alive after the last handle went.
    users: RwLock<Vec<Weak<dyn PluginUsers>>>,
}

/// A loaded plugin of either kind.
#[derive(Clone)]
pub enum Loaded {
    /// A workflow node.
    Node(NodePlugin),
    /// A scheduling strategy.
    Strategy(StrategyPlugin),
}

/// A node resolved for a call: the plugin and what an admin set for it.
#[derive(Clone)]
pub struct ResolvedNode {
    /// The plugin's name.
    pub name: String,
    /// The version resolved (the latest when the workflow named none).
    pub version: String,
    /// The loaded component.
    pub plugin: NodePlugin,
    /// The grants and limits an admin set for the plugin.
    pub settings: Settings,
}

/// The result of an upload.
#[derive(Debug, Serialize, ToSchema)]
pub struct Added {
    /// The version registered.
    pub plugin: PluginVersion,
    /// False when the same component was already registered under this name@version.
    pub created: bool,
    /// Where the compiled code came from: `memory`, `disk` (cache) or `compiled`.
    #[schema(value_type = String)]
    pub compiled: CacheOutcome,
}

/// The result of running a node directly.
#[derive(Debug, Serialize, ToSchema)]
pub struct NodeRun {
    /// The plugin that ran, as `name@version`.
    pub plugin: String,
    /// Output port -> value (bytes as `{"$bytes": "<base64>"}`).
    #[schema(value_type = Object)]
    pub outputs: std::collections::BTreeMap<String, Value>,
    /// Log lines and progress the node reported.
    #[schema(value_type = Vec<Object>)]
    pub events: Vec<serde_json::Value>,
    /// Wall-clock time of the call, in milliseconds.
    pub duration_ms: f64,
}

impl Plugins {
    /// Starts the runtime, loads every stored plugin and registers the built-ins.
    pub async fn start(store: Store, config: Setup<'_>) -> anyhow::Result<Self> {
        let mut runtime_config = RuntimeConfig::new(config.plugins.cache_dir(config.data_dir));
        runtime_config.max_instances = config.plugins.max_instances;
        runtime_config.max_memory_bytes = config.plugins.max_memory_bytes;
        let blobs = config.data_dir.join("plugins");
        std::fs::create_dir_all(&blobs)?;
        let plugins = Self {
            inner: Arc::new(Inner {
                runtime: Runtime::new(runtime_config)
                    .map_err(|e| anyhow::anyhow!("cannot start the plugin runtime: {e:#}"))?,
                auth: Auth::new(store.clone(), config.api),
                store,
                blobs,
                backend: Arc::new(ServiceBackend {
                    secrets: config.secrets.clone(),
                    artifacts_dir: config.data_dir.join("artifacts"),
                    jobs: std::sync::OnceLock::new(),
                    lineage: std::sync::OnceLock::new(),
                }),
                slots: Arc::new(UserSlots::new(config.max_running_nodes_per_user)),
                loaded: RwLock::default(),
                users: RwLock::default(),
            }),
        };
        for (crate_name, bytes) in weft_builtins::BUILTIN {
            plugins
                .add(bytes, None, true)
                .await
                .map_err(|e| anyhow::anyhow!("built-in plugin {crate_name}: {}", e.message))?;
        }
        for stored in records::all(&plugins.inner.store).await? {
            if plugins.loaded(&stored.name, &stored.version).is_some() {
                continue;
            }
            let path = plugins.blob_path(&stored.hash);
            let loaded = match std::fs::read(&path) {
                Ok(bytes) => plugins
                    .inner
                    .runtime
                    .load_described(&bytes, Some(&stored.description))
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(format!("{}: {e}", path.display())),
            };
            match loaded {
                Ok((plugin, _)) => plugins.remember(&stored.name, &stored.version, plugin),
                Err(err) => {
                    tracing::error!(plugin = %stored.name, version = %stored.version, %err, "stored plugin cannot be loaded; it stays registered but unusable")
                }
            }
        }
        Ok(plugins)
    }

    /// The runtime, for services that call plugins.
    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.inner.runtime
    }

    /// Registers a component that checks out something else using plugins.
    pub fn add_users(&self, users: Weak<dyn PluginUsers>) {
        self.inner.users.write().expect("users lock").push(users);
    }

    /// Validates, stores and loads a component. Uploading the same bytes again is a no-op;
    /// different bytes under an existing name@version are refused.
    pub async fn add(&self, bytes: &[u8], by: Option<&str>, builtin: bool) -> Result<Added> {
        let (plugin, compiled) = self
            .inner
            .runtime
            .load(bytes)
            .await
            .map_err(errors::load_error)?;
        let hash = weft_runtime::content_hash(bytes);
        let (name, version, description) = match &plugin {
            Plugin::Node(node) => {
                let d = node.description();
                (d.name.clone(), d.version.clone(), serde_json::to_value(d))
            }
            Plugin::Strategy(s) => {
                let d = s.description();
                (d.name.clone(), d.version.clone(), serde_json::to_value(d))
            }
        };
        let existing = records::versions(&self.inner.store, &name).await?;
        if let Some(other) = existing.iter().find(|p| p.kind != plugin.kind()) {
            return Err(Error::new(
                Code::PluginWrongKind,
                format!("'{name}' is already registered as a {} plugin", other.kind),
            )
            .hint("pick another name; node and strategy names share one namespace"));
        }
        // A newer upload would silently replace the built-in for every workflow naming it
        // without a version.
        if !builtin && existing.iter().any(|p| p.builtin && p.version != version) {
            return Err(Error::new(
                Code::PluginExists,
                format!("'{name}' is a built-in plugin; uploads cannot add versions of it"),
            )
            .details(serde_json::json!({ "name": name, "version": version }))
            .hint("give your plugin another name in its describe"));
        }
        if let Some(same) = existing.iter().find(|p| p.version == version) {
            if same.hash == hash {
                self.remember(&name, &version, plugin);
                return Ok(Added {
                    plugin: same.clone(),
                    created: false,
                    compiled,
                });
            }
            if !builtin {
                return Err(Error::new(
                    Code::PluginExists,
                    format!("{name}@{version} is already registered with different content"),
                )
                .details(serde_json::json!({ "name": name, "version": version, "hash": same.hash }))
                .hint("bump the plugin's version, or remove the old one first"));
            }
        }
        self.write_blob(&hash, bytes).await?;
        let row = PluginVersion {
            name: name.clone(),
            version: version.clone(),
            kind: plugin.kind().into(),
            hash,
            size_bytes: bytes.len() as i64,
            builtin,
            created_at: chrono::Utc::now(),
            description: description.map_err(|e| Error::internal(e.to_string()))?,
        };
        records::upsert(&self.inner.store, &row, by).await?;
        self.remember(&name, &version, plugin);
        tracing::info!(plugin = %name, %version, kind = %row.kind, builtin, "plugin registered");
        Ok(Added {
            plugin: row,
            created: true,
            compiled,
        })
    }

    /// Every registered version.
    pub async fn list(&self) -> Result<Vec<PluginVersion>> {
        records::all(&self.inner.store).await
    }

    /// All versions of `name`, newest last, or 404.
    pub async fn versions(&self, name: &str) -> Result<Vec<PluginVersion>> {
        let mut versions = records::versions(&self.inner.store, name).await?;
        if versions.is_empty() {
            return Err(Error::not_found("plugin", name)
                .hint("GET /api/v1/plugins lists the registered plugins"));
        }
        versions.sort_by(|a, b| semver_cmp(&a.version, &b.version));
        Ok(versions)
    }

    /// Grants and limits of `name`.
    pub async fn settings(&self, name: &str) -> Result<Settings> {
        records::settings(&self.inner.store, name).await
    }

    /// Replaces the grants of `name`; each must say whom it is for.
    pub async fn set_grants(
        &self,
        name: &str,
        grants: Vec<ScopedGrant>,
        by: &str,
    ) -> Result<Settings> {
        self.versions(name).await?;
        let grants = grants::checked(grants, &self.inner.auth.list_users().await?)?;
        let mut settings = self.settings(name).await?;
        settings.grants = grants;
        records::save_settings(&self.inner.store, name, &settings, by).await?;
        tracing::info!(plugin = %name, grants = ?settings.grants, %by, "plugin grants changed");
        Ok(settings)
    }

    /// Whom a node runs for, as grants see them: `user_id` and their role.
    pub async fn grantee(&self, user_id: &str) -> Result<Grantee> {
        let role = match self.inner.auth.get_user(user_id).await {
            Ok(user) => Some(user.role),
            Err(e) if e.code == Code::NotFound => None,
            Err(e) => return Err(e),
        };
        Ok(Grantee {
            user_id: user_id.to_string(),
            role,
        })
    }

    /// Every user's node slots (`[workflows] max_running_nodes_per_user`).
    pub fn slots(&self) -> &Arc<UserSlots> {
        &self.inner.slots
    }

    /// Replaces the limits of `name`.
    pub async fn set_limits(&self, name: &str, limits: Limits, by: &str) -> Result<Settings> {
        self.versions(name).await?;
        limits
            .validate(self.inner.runtime.config().max_memory_bytes)
            .map_err(|reason| Error::invalid_field("limits", reason))?;
        let mut settings = self.settings(name).await?;
        settings.limits = limits;
        records::save_settings(&self.inner.store, name, &settings, by).await?;
        Ok(settings)
    }

    /// Removes one version (or all) of a plugin unless it is built in or in use.
    pub async fn remove(&self, name: &str, version: Option<&str>) -> Result<Vec<String>> {
        let versions = self.versions(name).await?;
        let targets: Vec<&PluginVersion> = match version {
            Some(v) => vec![
                versions
                    .iter()
                    .find(|p| p.version == v)
                    .ok_or_else(|| Error::not_found("plugin version", &format!("{name}@{v}")))?,
            ],
            None => versions.iter().collect(),
        };
        let last = targets.len() == versions.len();
        for target in &targets {
            if target.builtin {
                return Err(Error::new(
                    Code::PluginBuiltin,
                    format!(
                        "{name}@{} is built in and cannot be removed",
                        target.version
                    ),
                ));
            }
            let users: Vec<_> = self.inner.users.read().expect("users lock").clone();
            for users in users.iter().filter_map(Weak::upgrade) {
                if let Some(user) = users.user_of(name, &target.version, last).await? {
                    return Err(Error::new(
                        Code::PluginInUse,
                        format!("{name}@{} is in use by {user}", target.version),
                    )
                    .details(serde_json::json!({ "used_by": user }))
                    .hint("remove or change what uses it first"));
                }
            }
        }
        let mut removed = Vec::new();
        for target in targets {
            records::delete(&self.inner.store, name, &target.version).await?;
            self.inner
                .loaded
                .write()
                .expect("plugins lock")
                .remove(&(name.to_string(), target.version.clone()));
            if !records::hash_in_use(&self.inner.store, &target.hash).await? {
                let _ = tokio::fs::remove_file(self.blob_path(&target.hash)).await;
            }
            tracing::info!(plugin = %name, version = %target.version, "plugin removed");
            removed.push(target.version.clone());
        }
        Ok(removed)
    }

    /// Resolves `name` (newest version) or `name@version` to a loaded node.
    pub async fn node(&self, reference: &str) -> Result<ResolvedNode> {
        let (name, version, loaded) = self.resolve(reference).await?;
        let Loaded::Node(plugin) = loaded else {
            return Err(Error::new(
                Code::PluginWrongKind,
                format!("'{name}' is a strategy, not a workflow node"),
            ));
        };
        Ok(ResolvedNode {
            settings: self.settings(&name).await?,
            name,
            version,
            plugin,
        })
    }

    /// Resolves `name` or `name@version` to a loaded strategy.
    pub async fn strategy(&self, reference: &str) -> Result<(String, String, StrategyPlugin)> {
        let (name, version, loaded) = self.resolve(reference).await?;
        match loaded {
            Loaded::Strategy(plugin) => Ok((name, version, plugin)),
            Loaded::Node(_) => Err(Error::new(
                Code::PluginWrongKind,
                format!("'{name}' is a workflow node, not a scheduling strategy"),
            )),
        }
    }

    /// Runs a node once with `config` and `inputs` for `who`, as a user would test it, with
    /// the capabilities granted to them; refused while all their node slots are taken.
    pub async fn run_node(
        &self,
        reference: &str,
        config: &serde_json::Value,
        inputs: Vec<(String, Value)>,
        who: &Grantee,
    ) -> Result<NodeRun> {
        let node = self.node(reference).await?;
        let label = format!("{}@{}", node.name, node.version);
        let Some(_slot) = self.inner.slots.try_acquire(&who.user_id) else {
            let limit = self.inner.slots.per_user();
            return Err(Error::new(
                Code::PluginUserBusy,
                format!("you already have {limit} nodes running, the most one user may"),
            )
            .details(serde_json::json!({ "limit": limit }))
            .hint(
                "wait for your running nodes and workflow runs to finish; an admin sets the \
                   limit with [workflows] max_running_nodes_per_user",
            ));
        };
        let grants = effective(&node.settings.grants, who);
        let services = self.services(&label, &who.user_id, Arc::default(), None, None);
        let started = std::time::Instant::now();
        let result = node
            .plugin
            .run(
                &self.inner.runtime,
                config,
                inputs,
                &node.settings.limits,
                &grants,
                services.clone(),
            )
            .await;
        let duration_ms = started.elapsed().as_secs_f64() * 1e3;
        let outputs = result.map_err(|e| call_error(&label, e))?;
        let events = std::mem::take(&mut *services.events.lock().expect("events lock"));
        Ok(NodeRun {
            plugin: label,
            outputs: outputs.into_iter().collect(),
            events,
            duration_ms,
        })
    }

    /// Services for one call of `plugin` run for `owner` (whose artifacts it reaches),
    /// recording into `events` and telling `live`.
    pub(crate) fn services(
        &self,
        plugin: &str,
        owner: &str,
        events: Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
        live: Option<LiveEvents>,
        scope: Option<crate::job::JobScope>,
    ) -> Arc<CallServices> {
        let jobs = self.inner.backend.jobs.get().map(|jobs| {
            let (events, live) = (events.clone(), live.clone());
            let emit: crate::job::Emit =
                Arc::new(move |event| services::record(&events, live.as_ref(), event));
            jobs.call(owner, scope.clone(), emit)
        });
        Arc::new(CallServices {
            backend: self.inner.backend.clone(),
            plugin: plugin.to_string(),
            owner: owner.to_string(),
            events,
            live,
            jobs,
            scope,
        })
    }

    /// Lets nodes granted `artifacts` read data versions and record models through `lineage`,
    /// which records what runs' nodes do (set once, at start).
    pub(crate) fn set_lineage(&self, lineage: crate::lineage::Lineage) {
        let _ = self.inner.backend.lineage.set(lineage);
    }

    /// Pins, for a run starting, the commit its jobs will see of each project in `projects`.
    pub(crate) async fn pin_run(&self, run_id: &str, owner: &str, projects: &[String]) {
        if let Some(jobs) = self.inner.backend.jobs.get() {
            jobs.pin_run(run_id, owner, projects).await;
        }
    }

    /// Lets nodes granted `jobs` run containers through `jobs` (set once, at start).
    pub(crate) fn set_jobs(&self, jobs: crate::job::Jobs) {
        let _ = self.inner.backend.jobs.set(jobs);
    }

    async fn resolve(&self, reference: &str) -> Result<(String, String, Loaded)> {
        let (name, version) = match reference.split_once('@') {
            Some((n, v)) => (n, Some(v)),
            None => (reference, None),
        };
        let versions = self.versions(name).await?;
        let chosen = match version {
            Some(v) => versions.iter().find(|p| p.version == v).ok_or_else(|| {
                Error::not_found("plugin version", reference).details(serde_json::json!({
                    "available": versions.iter().map(|p| p.version.as_str()).collect::<Vec<_>>()
                }))
            })?,
            None => versions.last().expect("versions is non-empty"),
        };
        let loaded = self.loaded(name, &chosen.version).ok_or_else(|| {
            Error::new(
                Code::PluginInvalid,
                format!(
                    "{name}@{} is registered but could not be loaded",
                    chosen.version
                ),
            )
            .hint("see the server log; upload the plugin again")
        })?;
        Ok((name.to_string(), chosen.version.clone(), loaded))
    }

    fn loaded(&self, name: &str, version: &str) -> Option<Loaded> {
        self.inner
            .loaded
            .read()
            .expect("plugins lock")
            .get(&(name.to_string(), version.to_string()))
            .cloned()
    }

    fn remember(&self, name: &str, version: &str, plugin: Plugin) {
        let loaded = match plugin {
            Plugin::Node(n) => Loaded::Node(n),
            Plugin::Strategy(s) => Loaded::Strategy(s),
        };
        self.inner
            .loaded
            .write()
            .expect("plugins lock")
            .insert((name.to_string(), version.to_string()), loaded);
    }

    fn blob_path(&self, hash: &str) -> PathBuf {
        self.inner.blobs.join(format!("{hash}.wasm"))
    }

    async fn write_blob(&self, hash: &str, bytes: &[u8]) -> Result<()> {
        let path = self.blob_path(hash);
        if tokio::fs::try_exists(&path).await.unwrap_or(false) {
            return Ok(());
        }
        let tmp = path.with_extension(format!("tmp{}", uuid::Uuid::new_v4().simple()));
        let written = match tokio::fs::write(&tmp, bytes).await {
            Ok(()) => tokio::fs::rename(&tmp, &path).await,
            Err(e) => Err(e),
        };
        let Err(e) = written else { return Ok(()) };
        // Half a component is of no use: nothing of it stays.
        let _ = tokio::fs::remove_file(&tmp).await;
        tracing::error!(folder = %self.inner.blobs.display(), error = %e, "cannot store a component");
        Err(Error::new(
            Code::PluginStorage,
            format!("cannot store the component: {e}"),
        )
        .hint("the host's plugin folder (plugins/ in its data folder, named in the server log) must be a writable folder with room to spare"))
    }
}

/// Orders versions by semantic version, unparsable ones first.
fn semver_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    match (semver::Version::parse(a), semver::Version::parse(b)) {
        (Ok(a), Ok(b)) => a.cmp(&b),
        (Ok(_), Err(_)) => std::cmp::Ordering::Greater,
        (Err(_), Ok(_)) => std::cmp::Ordering::Less,
        (Err(_), Err(_)) => a.cmp(b),
    }
}
