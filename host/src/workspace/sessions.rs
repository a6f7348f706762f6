//! Workspace sessions: one active code-server or Jupyter container per (user, project), its
//! files copied in at start and synced back on demand and at stop, reached through Weft's proxy
//! on an origin of its own (see `super::origin`) with a one-time access token turned into a
//! cookie.

use super::config::{SessionKindConfig, WorkspacesConfig};
use super::keys::SessionKeys;
use super::origin::Origins;
use super::projects::Projects;
use super::records;
use super::sync::{self, SyncReport};
use crate::auth::{Caller, Role};
use crate::container::{Containers, NewContainer, POOL_OWNER, ResourceRequest};
use crate::error::{Code, Error, Result};
use crate::store::{Store, new_id, now_ms, text_enum, time};
use crate::telemetry::Metrics;
use crate::telemetry::sessions::ProxyMeters;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::broadcast;
use utoipa::ToSchema;

/// Labels a session's container with the session's id.
pub const LABEL_SESSION: &str = "weft.session";

/// What runs in a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub enum SessionKind {
    #[serde(rename = "jupyter")]
    /// JupyterLab and Notebook 7 on Jupyter Server.
    Jupyter,
    #[serde(rename = "code-server")]
    /// VS Code in the browser.
    CodeServer,
}

text_enum!(SessionKind { Jupyter = "jupyter", CodeServer = "code-server" });

impl SessionKind {
    /// Every kind, for the metrics.
    const ALL: [SessionKind; 2] = [SessionKind::Jupyter, SessionKind::CodeServer];
}

/// Where a session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SessionStatus {
    /// Recorded; its container is not created yet.
    Pending,
    /// Its container runs; its server does not answer yet.
    Starting,
    /// Its server answers through the proxy.
    Ready,
    /// Its files are being synced back to the project.
    Syncing,
    /// Ended: stopped by its user, or reaped (idle, lifetime, quota).
    Stopped,
    /// Could not start, or its container died.
    Failed,
}

text_enum!(SessionStatus { Pending = "pending", Starting = "starting", Ready = "ready", Syncing = "syncing", Stopped = "stopped", Failed = "failed" });

impl SessionStatus {
    /// Every status, for the metrics.
    const ALL: [SessionStatus; 6] = [
        SessionStatus::Pending,
        SessionStatus::Starting,
        SessionStatus::Ready,
        SessionStatus::Syncing,
        SessionStatus::Stopped,
        SessionStatus::Failed,
    ];
}

impl SessionStatus {
    /// Whether the session holds a container (pending, starting, ready or syncing).
    pub fn is_active(self) -> bool {
        matches!(
            self,
            Self::Pending | Self::Starting | Self::Ready | Self::Syncing
        )
    }
}

/// A session as a client sees it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Session {
    /// The session's id, also the first label of its origin's host name.
    pub session_id: String,
    /// The project it works on.
    pub project_id: String,
    /// The project's owner.
    pub owner_id: String,
    /// What runs in it.
    pub kind: SessionKind,
    /// Where it is.
    pub status: SessionStatus,
    /// Where the workspace is served: the root of the session's own origin
    /// (`http://<session_id>.localhost:8081/` by default).
    pub url: String,
    /// The Weft container it runs in.
    pub container_id: Option<String>,
    /// Why it failed, or why the last sync did.
    pub error: Option<String>,
    /// When it was opened.
    pub created_at: DateTime<Utc>,
    /// When its server first answered.
    pub ready_at: Option<DateTime<Utc>>,
    /// When it ended.
    pub stopped_at: Option<DateTime<Utc>>,
    /// When it was last used (proxied traffic, heartbeats, a busy kernel).
    pub last_activity_at: DateTime<Utc>,
    /// Given once, when the session is opened: open `url?token=...` with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_token: Option<String>,
    /// Given with `access_token`: `url?token=...`, the link that signs a browser in to the
    /// session once (the token is then spent for a cookie of that origin).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// While ready: when the reaper stops it (after a sync) unless it is used before then,
    /// `last_activity_at` + `[workspaces] idle_timeout_secs` (activity is recorded at most every
    /// 10 s; the reaper looks every `reap_interval_secs`).
    pub idle_stop_at: Option<DateTime<Utc>>,
    /// While ready: when it is synced and stopped whatever it is doing, `ready_at` +
    /// `[workspaces] max_lifetime_secs` (the time quota may end it before).
    pub lifetime_stop_at: Option<DateTime<Utc>>,
}

/// A session stopped on request, and what the sync before the stop brought back.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StoppedSession {
    /// The session, stopped.
    #[serde(flatten)]
    pub session: Session,
    /// What the sync brought back: files written, deleted and refused (none when the session
    /// was not ready, so there was nothing to sync).
    pub sync: Option<SyncReport>,
}

impl Session {
    /// The session with when the reaper will stop it (while it is ready), from `config`.
    fn with_deadlines(mut self, config: &WorkspacesConfig) -> Self {
        let ready = (self.status == SessionStatus::Ready)
            .then_some(self.ready_at)
            .flatten();
        let after = |at: DateTime<Utc>, secs: u64| {
            at.checked_add_signed(chrono::TimeDelta::seconds(secs.min(i64::MAX as u64) as i64))
        };
        self.idle_stop_at =
            ready.and_then(|_| after(self.last_activity_at, config.idle_timeout_secs));
        self.lifetime_stop_at = ready.and_then(|at| after(at, config.max_lifetime_secs));
        self
    }

    fn with_access_token(mut self, token: String) -> Self {
        self.link = Some(format!("{}?token={token}", self.url));
        self.access_token = Some(token);
        self
    }
}

/// Something that happened to a session.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SessionEvent {
    /// The session it happened to.
    pub session_id: String,
    #[serde(skip)]
    /// The session's owner: events go to the owner and admins only.
    pub owner_id: String,
    /// `status`, `sync` or `warning`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The session's status after it.
    pub status: SessionStatus,
    /// What happened, for warnings and failures.
    pub message: Option<String>,
    /// What a sync brought back (`sync`).
    pub sync: Option<SyncReport>,
    /// When it happened.
    pub at: DateTime<Utc>,
}

/// The cookie code-server accepts instead of its password: its value is the hashed password.
pub const CODE_SERVER_COOKIE: &str = "code-server-session";

/// Where the proxy sends a session's traffic.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// The session's id.
    pub session_id: String,
    /// The session's owner.
    pub owner_id: String,
    /// `http://<container address>:<port>`.
    pub base: String,
    /// The session's origin, as browsers send it in `Origin`.
    pub origin: String,
    /// The secret the server demands (see `super::keys`).
    pub secret: String,
    /// What runs in the session.
    pub kind: SessionKind,
}

impl Upstream {
    /// The `Authorization` header the server demands: Jupyter's token.
    pub fn authorization(&self) -> Option<String> {
        (self.kind == SessionKind::Jupyter).then(|| format!("token {}", self.secret))
    }

    /// The cookie (name, value) the server demands: code-server's session cookie.
    pub fn cookie(&self) -> Option<(&'static str, &str)> {
        (self.kind == SessionKind::CodeServer).then_some((CODE_SERVER_COOKIE, &*self.secret))
    }
}

/// The sessions service, cheap to clone.
#[derive(Clone)]
pub struct Sessions {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    projects: Projects,
    containers: Containers,
    config: WorkspacesConfig,
    origins: Origins,
    keys: SessionKeys,
    events: broadcast::Sender<SessionEvent>,
    /// One lock per (owner, project): opening, syncing and stopping happen one at a time.
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    http: reqwest::Client,
    upstreams: Mutex<HashMap<String, (Arc<Upstream>, std::time::Instant)>>,
    /// The records proxied requests were authorized by lately.
    seen: crate::store::recent::Recent<records::Secrets>,
    stop_hooks: Mutex<Vec<StopHook>>,
    /// When each session's activity was last recorded by [`Sessions::activity`].
    touched: Mutex<HashMap<String, std::time::Instant>>,
    metrics: Arc<Metrics>,
    /// The proxy's meters of each kind, in [`SessionKind::ALL`]'s order.
    proxy_meters: [ProxyMeters; 2],
    /// The idle pooled containers (see `super::pool`).
    pool: super::pool::Pool,
    /// A permit per session starting (`[workspaces] max_starting`).
    starting: tokio::sync::Semaphore,
}

/// Called with a session whose server is about to go, after its files were synced back.
pub type StopHook = Arc<dyn Fn(Session) -> BoxFuture<'static, ()> + Send + Sync>;

fn secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The owner as a caller, for the services working on their behalf (containers, notebooks).
pub fn owner(owner_id: &str) -> Caller {
    Caller {
        user_id: owner_id.into(),
        name: String::new(),
        role: Role::User,
        token_id: String::new(),
    }
}

/// How many sessions may start at once under `config`.
fn max_starting(config: &WorkspacesConfig) -> usize {
    match config.max_starting {
        0 => 2 * std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n as usize,
    }
}

fn no_session(project_id: &str) -> Error {
    Error::new(
        Code::SessionNotFound,
        format!("no open session for project '{project_id}'"),
    )
    .hint("open one with POST /api/v1/projects/{id}/session")
}

impl Sessions {
    /// The sessions service, its origins from `config` and its key from
    /// `config.secret_key_file` (default `<data_dir>/keys/sessions.key`, created if missing).
    pub fn new(
        store: Store,
        projects: Projects,
        containers: Containers,
        config: &WorkspacesConfig,
        data_dir: &std::path::Path,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<Self> {
        let proxy_meters = SessionKind::ALL.map(|kind| metrics.sessions.proxy(kind.as_str()));
        let origins = Origins::new(&config.sessions_url, config.sessions_listen.port())?;
        let key_file = config
            .secret_key_file
            .clone()
            .unwrap_or_else(|| data_dir.join("keys").join("sessions.key"));
        let keys = SessionKeys::load_or_create(&key_file)?;
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                projects,
                containers,
                config: config.clone(),
                origins,
                keys,
                events: broadcast::channel(1024).0,
                locks: Mutex::new(HashMap::new()),
                upstreams: Mutex::new(HashMap::new()),
                seen: crate::store::recent::Recent::default(),
                stop_hooks: Mutex::new(Vec::new()),
                touched: Mutex::new(HashMap::new()),
                pool: super::pool::Pool::default(),
                starting: tokio::sync::Semaphore::new(max_starting(config)),
                http: super::upstream::client(Duration::from_secs(2)),
                metrics,
                proxy_meters,
            }),
        })
    }

    /// Where sessions are served.
    pub fn origins(&self) -> &Origins {
        &self.inner.origins
    }

    /// The proxy's meters for sessions of `kind`.
    pub(super) fn proxy_meters(&self, kind: SessionKind) -> &ProxyMeters {
        let index = SessionKind::ALL.iter().position(|k| *k == kind);
        &self.inner.proxy_meters[index.unwrap_or_default()]
    }

    /// Sets `weft_sessions` to the sessions on record by kind and status, and
    /// `weft_pool_containers` to the idle pooled containers.
    pub async fn record_counts(&self) -> Result<()> {
        let stored = records::session_counts(&self.inner.store).await?;
        let mut counts = Vec::new();
        for kind in SessionKind::ALL {
            for status in SessionStatus::ALL {
                let n = stored
                    .iter()
                    .filter(|(k, s, _)| k == kind.as_str() && s == status.as_str())
                    .map(|(_, _, n)| n)
                    .sum();
                counts.push((kind.as_str(), status.as_str(), n));
            }
            self.inner
                .metrics
                .sessions
                .set_pool(kind.as_str(), self.pool_idle(kind) as u64);
        }
        self.inner.metrics.sessions.set_sessions(&counts);
        Ok(())
    }

    /// The workspace settings the sessions run under (for the reaper).
    pub(super) fn config(&self) -> &WorkspacesConfig {
        &self.inner.config
    }

    /// The container service the sessions' servers run in (for the reaper).
    pub(super) fn containers(&self) -> &Containers {
        &self.inner.containers
    }

    /// The client that talks to the sessions' servers (for the reaper).
    pub(super) fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    /// Every session in one of `statuses` (for the reaper).
    pub(super) async fn with_status(&self, statuses: &[SessionStatus]) -> Result<Vec<Session>> {
        records::sessions_with_status(&self.inner.store, &self.inner.origins, statuses).await
    }

    /// `owner`'s session time in the current quota period.
    pub async fn usage(&self, owner: &str) -> Result<super::quota::Usage> {
        super::quota::usage(&self.inner.store, &self.inner.config, owner).await
    }

    /// Runs `hook` for every session whose server stops from now on, before its container goes
    /// (e.g. to shut its kernels down cleanly).
    pub fn on_stop(&self, hook: StopHook) {
        self.inner
            .stop_hooks
            .lock()
            .expect("stop hooks poisoned")
            .push(hook);
    }

    /// Session events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<SessionEvent> {
        self.inner.events.subscribe()
    }

    /// The warm pools' idle containers.
    pub(super) fn pool(&self) -> &super::pool::Pool {
        &self.inner.pool
    }

    pub(super) fn kind_config(&self, kind: SessionKind) -> &SessionKindConfig {
        match kind {
            SessionKind::Jupyter => &self.inner.config.jupyter,
            SessionKind::CodeServer => &self.inner.config.code_server,
        }
    }

    pub(super) async fn lock(
        &self,
        owner_id: &str,
        project_id: &str,
    ) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self.inner.locks.lock().expect("session locks poisoned");
            locks.retain(|_, l| Arc::strong_count(l) > 1);
            locks
                .entry(format!("{owner_id}/{project_id}"))
                .or_default()
                .clone()
        };
        lock.lock_owned().await
    }

    pub(super) fn announce(
        &self,
        session: &Session,
        kind: &str,
        message: Option<String>,
        sync: Option<SyncReport>,
    ) {
        let _ = self.inner.events.send(SessionEvent {
            session_id: session.session_id.clone(),
            owner_id: session.owner_id.clone(),
            kind: kind.into(),
            status: session.status,
            message,
            sync,
            at: time(now_ms()),
        });
    }

    pub(super) async fn save(&self, s: &Session) -> Result<()> {
        let saved = records::save_session(&self.inner.store, s).await;
        // After the write: a read that raced it is not kept (see `super::seen`).
        self.inner.seen.forget(&s.session_id);
        saved?;
        self.announce(s, "status", s.error.clone(), None);
        Ok(())
    }

    pub(super) async fn by_id(&self, id: &str) -> Result<Option<Session>> {
        records::session(&self.inner.store, &self.inner.origins, id).await
    }

    async fn latest(&self, owner_id: &str, project_id: &str) -> Result<Option<Session>> {
        records::latest_session(&self.inner.store, &self.inner.origins, owner_id, project_id).await
    }

    async fn active(&self, owner_id: &str, project_id: &str) -> Result<Option<Session>> {
        Ok(self
            .latest(owner_id, project_id)
            .await?
            .filter(|s| s.status.is_active()))
    }

    /// Opens a session of `kind` on the caller's project, or returns the active one (with a
    /// fresh access token). The boolean says whether it was created.
    pub async fn open(
        &self,
        caller: &Caller,
        project_id: &str,
        kind: SessionKind,
    ) -> Result<(Session, bool)> {
        let (session, created) = self.open_with(caller, project_id, kind, true).await?;
        Ok((session.with_deadlines(&self.inner.config), created))
    }

    /// Like [`Self::open`], for services working in a session on the user's behalf: the
    /// active session comes back without a new access token, so the user's stays valid.
    pub async fn ensure(
        &self,
        caller: &Caller,
        project_id: &str,
        kind: SessionKind,
    ) -> Result<(Session, bool)> {
        self.open_with(caller, project_id, kind, false).await
    }

    async fn open_with(
        &self,
        caller: &Caller,
        project_id: &str,
        kind: SessionKind,
        fresh_token: bool,
    ) -> Result<(Session, bool)> {
        let project = self.inner.projects.get(caller, project_id).await?;
        let _lock = self.lock(&caller.user_id, &project.id).await;
        let token = secret();
        if let Some(mut active) = self.active(&caller.user_id, &project.id).await? {
            if active.kind != kind {
                return Err(Error::new(
                    Code::SessionConflict,
                    format!(
                        "a {} session is already open for this project",
                        active.kind.as_str()
                    ),
                )
                .details(serde_json::json!({ "session_id": active.session_id }))
                .hint("stop it first (DELETE /api/v1/projects/{id}/session)"));
            }
            if fresh_token {
                let set =
                    records::set_token_hash(&self.inner.store, &active.session_id, &hash(&token))
                        .await;
                self.inner.seen.forget(&active.session_id);
                set?;
                active = active.with_access_token(token);
            }
            return Ok((active, false));
        }
        if self.inner.config.quota_minutes > 0.0 {
            super::quota::check(&self.usage(&caller.user_id).await?)?;
        }
        let now = now_ms();
        // A pooled container was started for a session id drawn ahead: the session takes it.
        let pooled = self.pool_take(kind);
        let id = pooled
            .as_ref()
            .map_or_else(new_id, |p| p.session_id.clone());
        let inserted = records::insert_session(
            &self.inner.store,
            &id,
            &caller.user_id,
            &project.id,
            kind,
            &hash(&token),
            now,
        )
        .await;
        if let Err(e) = inserted {
            if let Some(pooled) = pooled {
                self.pool_return(kind, pooled);
            }
            return Err(e);
        }
        let mut session = self
            .by_id(&id)
            .await?
            .ok_or_else(|| Error::internal("the new session vanished"))?;
        self.announce(&session, "status", None, None);
        let this = self.clone();
        let starting = session.clone();
        tokio::spawn(async move { this.start(starting, pooled).await });
        if fresh_token {
            session = session.with_access_token(token);
        }
        Ok((session, true))
    }

    /// Starts the session's container with the project's files and waits until it answers:
    /// from a pooled container at once, else once fewer than `max_starting` others are
    /// starting.
    async fn start(&self, mut session: Session, pooled: Option<super::pool::Pooled>) {
        let _permit = match pooled {
            Some(_) => None,
            None => match self.inner.starting.acquire().await {
                Ok(permit) => Some(permit),
                Err(_) => return,
            },
        };
        match self.begin(&mut session).await {
            Ok(true) => {}
            stopped_or_failed => {
                if let Err(e) = stopped_or_failed {
                    tracing::error!(session = %session.session_id, error = %e, "cannot record a starting session");
                }
                // A pooled container taken for this session serves no other (its secret is
                // this session's).
                if let Some(pooled) = &pooled {
                    self.discard_pooled(pooled, POOL_OWNER).await;
                }
                return;
            }
        }
        let deadline =
            tokio::time::Instant::now() + Duration::from_secs(self.inner.config.start_timeout_secs);
        let outcome = tokio::time::timeout_at(deadline, self.bring_up(&mut session, pooled)).await;
        let (source, failure) = match outcome {
            Ok(Ok(source)) => (source, None),
            Ok(Err(e)) => ("cold", Some(e.message)),
            Err(_) => (
                "cold",
                Some(format!(
                    "not ready within {} s",
                    self.inner.config.start_timeout_secs
                )),
            ),
        };
        match failure {
            None => {
                session.status = SessionStatus::Ready;
                session.ready_at = Some(time(now_ms()));
                // Idle time counts from when the user could first use it, not from the request:
                // a slow start must not make a fresh session look idle.
                session.last_activity_at = session.ready_at.unwrap_or(session.last_activity_at);
                let took = session.last_activity_at - session.created_at;
                self.inner.metrics.sessions.opened(
                    session.kind.as_str(),
                    source,
                    took.num_milliseconds() as f64 / 1000.0,
                );
                tracing::info!(session = %session.session_id, kind = session.kind.as_str(), "session ready");
            }
            Some(reason) => {
                tracing::warn!(session = %session.session_id, %reason, "session failed to start");
                // A failed start holds no user work yet: its container goes.
                if let Some(container) = &session.container_id
                    && let Err(e) = self
                        .inner
                        .containers
                        .discard(&owner(&session.owner_id), container)
                        .await
                {
                    tracing::warn!(session = %session.session_id, error = %e, "cannot remove a failed session's container");
                }
                session.status = SessionStatus::Failed;
                session.error = Some(reason);
                session.stopped_at = Some(time(now_ms()));
            }
        }
        if let Err(e) = self.save(&session).await {
            tracing::error!(session = %session.session_id, error = %e, "cannot record a session's start");
        }
    }

    /// Marks a session that waited for its start as starting; `false` when it was stopped
    /// meanwhile (it stays stopped).
    async fn begin(&self, session: &mut Session) -> Result<bool> {
        let _lock = self.lock(&session.owner_id, &session.project_id).await;
        match self.by_id(&session.session_id).await? {
            Some(current) if current.status == SessionStatus::Pending => {
                *session = current;
                session.status = SessionStatus::Starting;
                self.save(session).await?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Brings the session's server up: the pooled container given, or else (or when taking
    /// it fails) a new one. Which of the two (`pool`, `cold`), for the open latency's metric.
    async fn bring_up(
        &self,
        session: &mut Session,
        pooled: Option<super::pool::Pooled>,
    ) -> Result<&'static str> {
        if let Some(pooled) = pooled {
            match self.take_over(session, &pooled).await {
                Ok(()) => return Ok("pool"),
                Err(e) => {
                    tracing::warn!(session = %session.session_id, error = %e, "cannot take a pooled container; starting a new one");
                    self.discard_pooled(&pooled, &session.owner_id).await;
                    session.container_id = None;
                }
            }
        }
        let caller = owner(&session.owner_id);
        let (request, labels) = self.server_request(session.kind, &session.session_id, false);
        let container = self
            .inner
            .containers
            .create_labelled(&caller, request, labels, &session.project_id)
            .await?;
        session.container_id = Some(container.id.clone());
        self.save(session).await?;
        let engine_id = container
            .engine_id
            .clone()
            .ok_or_else(|| Error::internal("the container has no engine id"))?;
        self.copy_project_in(session, &engine_id).await?;
        self.inner
            .containers
            .start_container(&caller, &container.id)
            .await?;
        self.wait_answering(session.kind, &session.session_id, &engine_id)
            .await?;
        Ok("cold")
    }

    /// The container of a `kind` server for session `session_id` (its secret, its origin in
    /// the command, its labels), started at once if `start`.
    pub(super) fn server_request(
        &self,
        kind: SessionKind,
        session_id: &str,
        start: bool,
    ) -> (NewContainer, BTreeMap<String, String>) {
        let config = self.kind_config(kind);
        let origin = self.inner.origins.origin(session_id);
        let command = config
            .command
            .iter()
            .map(|part| part.replace("{origin}", &origin))
            .collect();
        let request = NewContainer {
            image: config.image.clone(),
            command: Some(command),
            resources: self.resources(),
            environment: BTreeMap::from([self.server_secret(kind, session_id)]),
            workdir: None,
            start,
        };
        let labels = BTreeMap::from([(LABEL_SESSION.to_string(), session_id.to_string())]);
        (request, labels)
    }

    /// The CPU and memory of a session's container.
    pub(super) fn resources(&self) -> ResourceRequest {
        ResourceRequest {
            cpu: Some(self.inner.config.cpu.clone()),
            memory: Some(self.inner.config.memory.clone()),
            gpu: None,
        }
    }

    /// Copies the project's files into `/workspace` of the session's container (created or
    /// running), warning about those that cannot be in a workspace.
    pub(super) async fn copy_project_in(&self, session: &Session, engine_id: &str) -> Result<()> {
        let (files, left_out) = sync::pack(
            &self.inner.projects,
            &session.project_id,
            &self.inner.config.sync_ignore,
            None,
        )
        .await?;
        if let Some(first) = left_out.first() {
            let warning = format!(
                "{} stored files cannot be in a workspace and were left out: '{}' ({}){}",
                left_out.len(),
                first.path,
                first.reason,
                if left_out.len() > 1 { ", ..." } else { "" }
            );
            tracing::warn!(session = %session.session_id, %warning);
            self.announce(session, "warning", Some(warning), None);
        }
        self.inner
            .containers
            .driver()
            .copy_in(engine_id, "/workspace", files)
            .await
    }

    /// Waits until the `kind` server of session `session_id` in running container `engine_id`
    /// answers its ready path with the session's secret; fails when the container stops.
    pub(super) async fn wait_answering(
        &self,
        kind: SessionKind,
        session_id: &str,
        engine_id: &str,
    ) -> Result<()> {
        let ready_path = &self.kind_config(kind).ready_path;
        loop {
            let engine = self.inner.containers.driver().inspect(engine_id).await?;
            let Some(engine) = engine.filter(|e| e.is_running()) else {
                return Err(Error::new(
                    Code::ContainerStartFailed,
                    "the session's container stopped while starting",
                ));
            };
            if let Some(address) = engine.address {
                let upstream = self.server_at(kind, session_id, "", &address);
                let url = format!("{}/{ready_path}", upstream.base);
                let mut probe = self.inner.http.get(&url);
                if let Some(authorization) = upstream.authorization() {
                    probe = probe.header("authorization", authorization);
                }
                if let Some((name, value)) = upstream.cookie() {
                    probe = probe.header("cookie", format!("{name}={value}"));
                }
                let answer = probe.send().await;
                if answer.is_ok_and(|r| r.status().is_success()) {
                    return Ok(());
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits until session `id` is ready (or fails, stops, or `timeout` passes from the start of
    /// its start: time spent `pending` behind `max_starting` other starts does not count, or a
    /// class opening at once would time out in the queue).
    pub async fn wait_ready(&self, id: &str, timeout: Duration) -> Result<Session> {
        let mut events = self.subscribe();
        let mut deadline = tokio::time::Instant::now() + timeout;
        loop {
            let session = self
                .by_id(id)
                .await?
                .ok_or_else(|| Error::new(Code::SessionNotFound, format!("no session '{id}'")))?;
            match session.status {
                SessionStatus::Ready | SessionStatus::Syncing => return Ok(session),
                SessionStatus::Pending => deadline = tokio::time::Instant::now() + timeout,
                SessionStatus::Starting => {}
                status => {
                    return Err(Error::new(
                        Code::SessionNotReady,
                        format!(
                            "the session is {}: {}",
                            status.as_str(),
                            session.error.as_deref().unwrap_or("no reason recorded")
                        ),
                    )
                    .details(serde_json::json!({ "session_id": id, "status": status })));
                }
            }
            loop {
                match tokio::time::timeout_at(deadline, events.recv()).await {
                    Ok(Ok(event)) if event.session_id != id => continue,
                    // Its own event, or events missed: the store says where it is now.
                    Ok(Ok(_) | Err(broadcast::error::RecvError::Lagged(_))) => break,
                    // Still waiting for its turn, the last we saw: look again.
                    Err(_) if session.status == SessionStatus::Pending => break,
                    Ok(Err(broadcast::error::RecvError::Closed)) | Err(_) => {
                        return Err(Error::new(
                            Code::SessionNotReady,
                            format!("the session was not ready within {} s", timeout.as_secs()),
                        )
                        .details(
                            serde_json::json!({ "session_id": id, "status": session.status }),
                        ));
                    }
                }
            }
        }
    }

    /// The caller's latest session on the project (an admin's: the owner's).
    pub async fn get(&self, caller: &Caller, project_id: &str) -> Result<Session> {
        let project = self.inner.projects.get(caller, project_id).await?;
        self.latest(&project.owner_id, &project.id)
            .await?
            .map(|session| session.with_deadlines(&self.inner.config))
            .ok_or_else(|| no_session(project_id))
    }

    /// Keeps the active session from being reaped as idle.
    pub async fn heartbeat(&self, caller: &Caller, project_id: &str) -> Result<Session> {
        let project = self.inner.projects.get(caller, project_id).await?;
        let mut session = self
            .active(&project.owner_id, &project.id)
            .await?
            .ok_or_else(|| no_session(project_id))?;
        session.last_activity_at = time(now_ms());
        self.touch(&session.session_id).await?;
        Ok(session.with_deadlines(&self.inner.config))
    }

    /// Records activity on a session (proxied traffic, heartbeats).
    pub async fn touch(&self, session_id: &str) -> Result<()> {
        records::touch_session(&self.inner.store, session_id, now_ms()).await
    }

    /// Records that a session is in use (proxied traffic, notebook executions), at most once
    /// every 10 s per session: enough for the idle reaper, cheap on a busy session.
    pub async fn activity(&self, session_id: &str) {
        let due = {
            let mut touched = self.inner.touched.lock().expect("touch map poisoned");
            let now = std::time::Instant::now();
            let due = touched
                .get(session_id)
                .is_none_or(|last| now.duration_since(*last) > Duration::from_secs(10));
            if due {
                touched.insert(session_id.to_string(), now);
            }
            due
        };
        if due && let Err(e) = self.touch(session_id).await {
            tracing::warn!(session = %session_id, error = %e, "cannot record session activity");
        }
    }

    /// The active session on a project `caller` may see, with its lock held.
    async fn active_locked(
        &self,
        caller: &Caller,
        project_id: &str,
    ) -> Result<(tokio::sync::OwnedMutexGuard<()>, Session)> {
        let project = self.inner.projects.get(caller, project_id).await?;
        let lock = self.lock(&project.owner_id, &project.id).await;
        let session = self
            .active(&project.owner_id, &project.id)
            .await?
            .ok_or_else(|| no_session(project_id))?;
        Ok((lock, session))
    }

    /// Copies the workspace's changes back to the project now.
    pub async fn sync(&self, caller: &Caller, project_id: &str) -> Result<SyncReport> {
        let (_lock, mut session) = self.active_locked(caller, project_id).await?;
        if session.status != SessionStatus::Ready {
            return Err(Error::new(
                Code::SessionConflict,
                format!("the session is {}, not ready", session.status.as_str()),
            ));
        }
        let report = self.sync_back(&mut session).await?;
        session.status = SessionStatus::Ready;
        self.save(&session).await?;
        Ok(report)
    }

    /// Syncs the project's session back if one is ready, so that the project's files are the
    /// workspace's (for versioning, before it reads them). No session: nothing to do.
    pub async fn sync_if_open(&self, owner_id: &str, project_id: &str) -> Result<()> {
        let _lock = self.lock(owner_id, project_id).await;
        let Some(mut session) = self.active(owner_id, project_id).await? else {
            return Ok(());
        };
        if session.status != SessionStatus::Ready {
            return Ok(());
        }
        self.sync_back(&mut session).await?;
        session.status = SessionStatus::Ready;
        self.save(&session).await
    }

    /// Gives the project's ready session what versioning changed in the project's files: the
    /// `written` files are copied in (those alone) and `deleted` removed from `/workspace`.
    pub async fn deliver(
        &self,
        owner_id: &str,
        project_id: &str,
        written: &[String],
        deleted: &[String],
    ) -> Result<()> {
        if written.is_empty() && deleted.is_empty() {
            return Ok(());
        }
        let _lock = self.lock(owner_id, project_id).await;
        let Some(session) = self.active(owner_id, project_id).await? else {
            return Ok(());
        };
        let Some(container_id) = session.container_id.as_deref() else {
            return Ok(());
        };
        let container = self
            .inner
            .containers
            .get(&owner(owner_id), container_id)
            .await?;
        let Some(engine_id) = container.engine_id else {
            return Ok(());
        };
        let driver = self.inner.containers.driver();
        if !written.is_empty() {
            let (files, _) = sync::pack(
                &self.inner.projects,
                project_id,
                &self.inner.config.sync_ignore,
                Some(written),
            )
            .await?;
            driver.copy_in(&engine_id, "/workspace", files).await?;
        }
        for chunk in deleted.chunks(200) {
            let mut command = vec!["rm".to_string(), "-f".into(), "--".into()];
            command.extend(chunk.iter().map(|p| format!("/workspace/{p}")));
            driver.exec(&engine_id, &command).await?;
        }
        self.announce(
            &session,
            "files",
            Some("the project's files changed to another version".into()),
            None,
        );
        Ok(())
    }

    /// Syncs (status `syncing`), reporting the result as an event; on failure the session says
    /// so and keeps its container.
    async fn sync_back(&self, session: &mut Session) -> Result<SyncReport> {
        session.status = SessionStatus::Syncing;
        self.save(session).await?;
        let result = self.pull(session).await;
        match &result {
            Ok(report) => {
                // What was not synced stays visible on the session until the next sync.
                session.error = report.summary();
                self.announce(session, "sync", session.error.clone(), Some(report.clone()));
            }
            Err(e) => {
                session.status = SessionStatus::Ready;
                session.error = Some(format!("sync failed: {}", e.message));
                self.save(session).await?;
                self.announce(session, "sync", session.error.clone(), None);
            }
        }
        result.map_err(|e| {
            Error::new(
                Code::SessionSyncFailed,
                format!("the workspace could not be synced: {}", e.message),
            )
            .hint("the container is kept with your files; retry the sync")
        })
    }

    async fn pull(&self, session: &Session) -> Result<SyncReport> {
        let container_id = session
            .container_id
            .as_deref()
            .ok_or_else(|| Error::internal("the session has no container"))?;
        let container = self
            .inner
            .containers
            .get(&owner(&session.owner_id), container_id)
            .await?;
        let engine_id = container
            .engine_id
            .ok_or_else(|| Error::internal("the container has no engine id"))?;
        sync::pull(
            &self.inner.projects,
            self.inner.containers.driver(),
            &engine_id,
            &session.project_id,
            &self.inner.config,
        )
        .await
    }

    /// Syncs the workspace back, then stops and removes its container. A failed sync keeps the
    /// container and the session open.
    pub async fn stop(&self, caller: &Caller, project_id: &str) -> Result<StoppedSession> {
        let (_lock, mut session) = self.active_locked(caller, project_id).await?;
        let sync = self
            .shut(&mut session, SessionStatus::Stopped, None)
            .await?;
        Ok(StoppedSession { session, sync })
    }

    /// Syncs a session back (when its server was up), removes its container (at once: all it
    /// held worth keeping was synced, its kernels shut down by the stop hooks) and records it
    /// as `status` with `reason`; returns what the sync brought back. The caller holds the
    /// session's lock.
    pub(super) async fn shut(
        &self,
        session: &mut Session,
        status: SessionStatus,
        reason: Option<String>,
    ) -> Result<Option<SyncReport>> {
        let mut note = None;
        let mut synced = None;
        if matches!(
            session.status,
            SessionStatus::Ready | SessionStatus::Syncing
        ) {
            let report = self.sync_back(session).await?;
            note = report.summary();
            synced = Some(report);
            let hooks = self
                .inner
                .stop_hooks
                .lock()
                .expect("stop hooks poisoned")
                .clone();
            for hook in hooks {
                hook(session.clone()).await;
            }
        }
        if let Some(container) = &session.container_id {
            match self
                .inner
                .containers
                .discard(&owner(&session.owner_id), container)
                .await
            {
                Err(e) if e.code != Code::ContainerNotFound => return Err(e),
                _ => {}
            }
        }
        session.status = status;
        session.error = match (reason, note) {
            (Some(reason), Some(note)) => Some(format!("{reason}; {note}")),
            (reason, note) => reason.or(note),
        };
        session.stopped_at = Some(time(now_ms()));
        self.save(session).await?;
        if let (Some(ready), Some(stopped)) = (session.ready_at, session.stopped_at) {
            let used = stopped - ready;
            self.inner
                .metrics
                .sessions
                .quota_used(used.num_milliseconds() as f64 / 60_000.0);
        }
        self.inner
            .touched
            .lock()
            .expect("touch map poisoned")
            .remove(&session.session_id);
        tracing::info!(session = %session.session_id, status = status.as_str(), reason = ?session.error, "session ended");
        Ok(synced)
    }

    /// The upstream of a ready session, if `credential` opens it: the one-time access token
    /// (then spent; the answer carries the cookie secret to set), the cookie secret, or the
    /// owner's API identity. Another user gets 403; an unknown or stopped session 404.
    pub async fn authorize(
        &self,
        session_id: &str,
        credential: Credential<'_>,
    ) -> Result<(Arc<Upstream>, Option<String>)> {
        let stored = match self.inner.seen.get(session_id) {
            Some(seen) => seen,
            None => {
                let generation = self.inner.seen.generation();
                let stored = records::session_with_secrets(
                    &self.inner.store,
                    &self.inner.origins,
                    session_id,
                )
                .await?;
                let Some(stored) = stored else {
                    return Err(Error::new(
                        Code::SessionNotFound,
                        format!("no session '{session_id}'"),
                    ));
                };
                let stored = Arc::new(stored);
                self.inner.seen.keep(session_id, generation, stored.clone());
                stored
            }
        };
        let (session, token_hash, cookie_hash) = &*stored;
        let mut new_cookie = None;
        let allowed = match credential {
            Credential::Token(token) => {
                let ok = token_hash.as_deref() == Some(hash(token).as_str());
                if ok {
                    let cookie = secret();
                    // The token is spent; the cookie takes its place.
                    let spent =
                        records::spend_token(&self.inner.store, session_id, &hash(&cookie)).await;
                    self.inner.seen.forget(session_id);
                    spent?;
                    new_cookie = Some(cookie);
                }
                ok
            }
            Credential::Cookie(cookie) => cookie_hash.as_deref() == Some(hash(cookie).as_str()),
            Credential::Caller(caller) => caller.user_id == session.owner_id,
            Credential::None => false,
        };
        if !allowed {
            return Err(Error::forbidden("this session is not yours, or the access token was already used")
                .hint("open the session again (POST /api/v1/projects/{id}/session) for a new access token"));
        }
        if session.status != SessionStatus::Ready && session.status != SessionStatus::Syncing {
            return Err(Error::new(
                Code::SessionNotReady,
                format!("the session is {}", session.status.as_str()),
            )
            .details(serde_json::json!({ "status": session.status }))
            .hint("wait until it is ready, or open a new one"));
        }
        Ok((self.upstream_of(session).await?, new_cookie))
    }

    /// Where a session's server answers now; remembered for a few seconds, so proxied requests
    /// do not each ask the engine (nor copy it).
    pub async fn upstream_of(&self, session: &Session) -> Result<Arc<Upstream>> {
        const FRESH: Duration = Duration::from_secs(5);
        if let Some((upstream, at)) = self
            .inner
            .upstreams
            .lock()
            .expect("upstreams poisoned")
            .get(&session.session_id)
            && at.elapsed() < FRESH
        {
            return Ok(upstream.clone());
        }
        let upstream = Arc::new(self.find_upstream(session).await?);
        let mut upstreams = self.inner.upstreams.lock().expect("upstreams poisoned");
        // Stale ones go as a new one comes, so ended sessions do not pile up.
        upstreams.retain(|_, (_, at)| at.elapsed() < FRESH);
        upstreams.insert(
            session.session_id.clone(),
            (upstream.clone(), std::time::Instant::now()),
        );
        Ok(upstream)
    }

    async fn find_upstream(&self, session: &Session) -> Result<Upstream> {
        let container_id = session.container_id.clone().unwrap_or_default();
        let container = self
            .inner
            .containers
            .get(&owner(&session.owner_id), &container_id)
            .await?;
        let engine = match container.engine_id {
            Some(id) => self.inner.containers.driver().inspect(&id).await?,
            None => None,
        };
        let address = engine
            .filter(|e| e.is_running())
            .and_then(|e| e.address)
            .ok_or_else(|| {
                Error::new(
                    Code::SessionNotReady,
                    "the session's container is not running",
                )
            })?;
        Ok(self.upstream_at(session, &address))
    }

    /// The session's server at container address `address`, with the secret it demands.
    fn upstream_at(&self, session: &Session, address: &str) -> Upstream {
        self.server_at(
            session.kind,
            &session.session_id,
            &session.owner_id,
            address,
        )
    }

    /// The `kind` server of session `session_id` (owned by `owner_id`) at container address
    /// `address`, with the secret it demands.
    fn server_at(
        &self,
        kind: SessionKind,
        session_id: &str,
        owner_id: &str,
        address: &str,
    ) -> Upstream {
        Upstream {
            session_id: session_id.into(),
            owner_id: owner_id.into(),
            base: format!("http://{address}:{}", self.kind_config(kind).port),
            origin: self.inner.origins.origin(session_id),
            secret: self.server_secret(kind, session_id).1,
            kind,
        }
    }

    /// The environment variable that gives the server of session `session_id` its secret.
    fn server_secret(&self, kind: SessionKind, session_id: &str) -> (String, String) {
        let keys = &self.inner.keys;
        match kind {
            SessionKind::Jupyter => ("JUPYTER_TOKEN".into(), keys.jupyter_token(session_id)),
            SessionKind::CodeServer => {
                ("HASHED_PASSWORD".into(), keys.code_server_hash(session_id))
            }
        }
    }
}

/// What a proxied request carries to open a session.
pub enum Credential<'a> {
    /// The one-time access token (`?token=`), spent on use.
    Token(&'a str),
    /// The cookie secret the spent token was exchanged for.
    Cookie(&'a str),
    /// The owner's API identity (a signed-in Bearer token).
    Caller(&'a Caller),
    /// Nothing that opens a session.
    None,
}
