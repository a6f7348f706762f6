//! Notebooks: a project's `.ipynb` files, run cell by cell in a kernel of the project's Jupyter
//! session. Weft is the client of Jupyter's REST and WebSocket channels: it sends the code,
//! streams the outputs as the kernel produces them, writes them back to the `.ipynb` (in the
//! session and in the project's storage), and keeps the history of executions.
//!
//! Executions on one notebook run one at a time, in the order they came. Not here: the
//! sessions themselves ([`crate::workspace`]) and Jupyter's own UI, which the proxy serves.

pub(crate) mod config;
pub(crate) mod document;
pub(crate) mod execution;
pub mod jupyter;
pub mod kernel;
mod outputs;
mod quickack;
mod records;
pub(crate) mod routes;

use crate::auth::Caller;
use crate::error::{Code, Error, Result};
use crate::store::{Store, new_id, now_ms, time};
use crate::telemetry::Metrics;
use crate::workspace::config::WorkspacesConfig;
use crate::workspace::sessions::{Session, SessionKind, SessionStatus, owner};
use crate::workspace::{Projects, Sessions, paths};
use chrono::{DateTime, Utc};
use config::NotebooksConfig;
use document::{Cell, Document};
use execution::{Execution, ExecutionStatus};
use jupyter::Jupyter;
use kernel::{Kernel, KernelState, Limits};
use records::Record;
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::broadcast;
use utoipa::ToSchema;

/// A notebook: its file in a project and its kernel.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Notebook {
    /// The notebook's id.
    pub id: String,
    /// The project whose file it is.
    pub project_id: String,
    /// The project's owner.
    pub owner_id: String,
    /// The `.ipynb` file, relative to the project.
    pub path: String,
    /// The user who created it (the owner, or an admin).
    pub created_by: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When its file was last written.
    pub updated_at: DateTime<Utc>,
    /// Its kernel.
    pub kernel: KernelInfo,
    /// The cells with their outputs (when one notebook is asked for).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cells: Option<Vec<Cell>>,
}

/// A notebook's kernel.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct KernelInfo {
    /// What the kernel is doing.
    pub state: KernelState,
    /// Jupyter's kernel id, while one is attached.
    pub id: Option<String>,
    /// The Weft session whose Jupyter server runs it.
    pub session_id: Option<String>,
}

/// What a notebook's kernel is doing.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NotebookStatus {
    /// The notebook's id.
    pub notebook_id: String,
    /// Its kernel.
    pub kernel: KernelInfo,
    /// The execution running now.
    pub running: Option<Running>,
    /// Executions waiting for their turn.
    pub queued: usize,
}

/// The execution a kernel is running.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Running {
    /// The execution's id.
    pub execution_id: String,
    /// The cell it runs.
    pub cell_id: String,
    /// The user who ran it.
    pub user_id: String,
    /// The code it runs.
    pub code: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
}

/// What happens in a notebook, as the output WebSocket streams it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NotebookEvent {
    /// The notebook it happened in.
    pub notebook_id: String,
    #[serde(skip)]
    /// The notebook's owner (not sent).
    pub owner_id: String,
    /// `execution_started`, `output`, `execution_finished` or `kernel`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// The execution it is about, if any.
    pub execution_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// The cell of that execution.
    pub cell_id: Option<String>,
    /// One nbformat output, as the kernel produced it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub output: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// How the execution ended (`execution_finished`).
    pub status: Option<ExecutionStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// The kernel's new state (`kernel`).
    pub kernel_state: Option<KernelState>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// What went wrong, or what changed.
    pub message: Option<String>,
    /// When it happened.
    pub at: DateTime<Utc>,
}

impl NotebookEvent {
    fn new(notebook_id: &str, owner_id: &str, kind: &str) -> Self {
        Self {
            notebook_id: notebook_id.into(),
            owner_id: owner_id.into(),
            kind: kind.into(),
            execution_id: None,
            cell_id: None,
            output: None,
            status: None,
            kernel_state: None,
            message: None,
            at: time(now_ms()),
        }
    }
}

/// What to run: `code` alone adds a cell at the end; `cell_id` runs that cell (its source
/// replaced by `code` when both are given).
#[derive(Debug, Clone, Default, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecuteRequest {
    /// Code to run: a new cell's source, or the new source of `cell_id`.
    pub code: Option<String>,
    /// The cell to run.
    pub cell_id: Option<String>,
    /// Seconds before the kernel is interrupted (default `[notebooks] execution_timeout_secs`).
    pub timeout_secs: Option<f64>,
}

/// A notebook's kernel and executions in this process.
#[derive(Default)]
struct Live {
    /// Held by the execution whose turn it is (tokio's mutex is fair: turns go in order).
    turn: tokio::sync::Mutex<()>,
    queued: AtomicUsize,
    kernel: Mutex<Option<Arc<Kernel>>>,
    /// What the kernel was when none is attached.
    last_state: Mutex<Option<KernelState>>,
    running: Mutex<Option<Running>>,
}

impl Live {
    fn kernel(&self) -> Option<Arc<Kernel>> {
        self.kernel.lock().expect("kernel poisoned").clone()
    }

    fn info(&self) -> KernelInfo {
        match self.kernel() {
            Some(kernel) => KernelInfo {
                state: kernel.state(),
                id: Some(kernel.kernel_id.clone()),
                session_id: Some(kernel.jupyter.session_id.clone()),
            },
            None => KernelInfo {
                state: self
                    .last_state
                    .lock()
                    .expect("state poisoned")
                    .unwrap_or(KernelState::Detached),
                id: None,
                session_id: None,
            },
        }
    }

    fn detach(&self, state: KernelState) -> Option<Arc<Kernel>> {
        *self.last_state.lock().expect("state poisoned") = Some(state);
        self.kernel.lock().expect("kernel poisoned").take()
    }
}

/// The notebook service, cheap to clone.
#[derive(Clone)]
pub struct Notebooks {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    projects: Projects,
    sessions: Sessions,
    config: NotebooksConfig,
    session_start_timeout: Duration,
    /// The largest notebook read from a session's Jupyter.
    max_file_bytes: u64,
    http: reqwest::Client,
    events: broadcast::Sender<NotebookEvent>,
    live: Mutex<HashMap<String, Arc<Live>>>,
    /// Executions running or waiting, per user (`[notebooks] max_pending_per_user`).
    pending: Mutex<HashMap<String, usize>>,
    metrics: Arc<Metrics>,
}

/// One of a user's pending executions; its place is given back when it is dropped.
struct Pending {
    inner: Arc<Inner>,
    user_id: String,
}

impl Pending {
    /// A place for one more execution of `user_id`, unless they have all they may.
    fn take(inner: &Arc<Inner>, user_id: &str) -> Result<Self> {
        let limit = inner.config.max_pending_per_user;
        let mut pending = inner.pending.lock().expect("pending poisoned");
        let count = pending.entry(user_id.to_string()).or_default();
        if *count >= limit {
            return Err(Error::new(
                Code::NotebookQueueFull,
                format!("you already have {count} notebook executions running or waiting, the most one user may"),
            )
            .details(serde_json::json!({ "limit": limit, "pending": *count }))
            .hint("wait for your executions to end (GET /api/v1/notebooks/{id}/status shows the \
                   queue); an admin sets the limit with [notebooks] max_pending_per_user"));
        }
        *count += 1;
        Ok(Self {
            inner: inner.clone(),
            user_id: user_id.to_string(),
        })
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        let mut pending = self.inner.pending.lock().expect("pending poisoned");
        if let Some(count) = pending.get_mut(&self.user_id) {
            *count -= 1;
            if *count == 0 {
                pending.remove(&self.user_id);
            }
        }
    }
}

fn not_found(id: &str) -> Error {
    Error::new(Code::NotebookNotFound, format!("notebook '{id}' not found"))
        .details(serde_json::json!({ "notebook_id": id }))
}

impl Notebooks {
    /// Starts the service: executions a restart interrupted are marked so, and kernels are shut
    /// down with their sessions from now on.
    pub async fn start(
        store: Store,
        projects: Projects,
        sessions: Sessions,
        config: &NotebooksConfig,
        workspaces: &WorkspacesConfig,
        metrics: Arc<Metrics>,
    ) -> Result<Self> {
        let interrupted = execution::interrupt_running(&store).await?;
        if interrupted > 0 {
            tracing::warn!(
                interrupted,
                "notebook executions were interrupted by a restart"
            );
        }
        let this = Self {
            inner: Arc::new(Inner {
                store,
                projects,
                sessions: sessions.clone(),
                config: config.clone(),
                session_start_timeout: Duration::from_secs(workspaces.start_timeout_secs + 5),
                max_file_bytes: workspaces.max_file_bytes,
                http: crate::workspace::upstream::client(Duration::from_secs(30)),
                events: broadcast::channel(4096).0,
                live: Mutex::new(HashMap::new()),
                pending: Mutex::new(HashMap::new()),
                metrics,
            }),
        };
        let hook = this.clone();
        sessions.on_stop(Arc::new(move |session| {
            let this = hook.clone();
            Box::pin(async move { this.session_stopping(&session).await })
        }));
        Ok(this)
    }

    /// Notebook events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<NotebookEvent> {
        self.inner.events.subscribe()
    }

    fn announce(&self, event: NotebookEvent) {
        let _ = self.inner.events.send(event);
    }

    fn live(&self, id: &str) -> Arc<Live> {
        self.inner
            .live
            .lock()
            .expect("live notebooks poisoned")
            .entry(id.into())
            .or_default()
            .clone()
    }

    fn live_if_any(&self, id: &str) -> Option<Arc<Live>> {
        self.inner
            .live
            .lock()
            .expect("live notebooks poisoned")
            .get(id)
            .cloned()
    }

    async fn record(&self, caller: &Caller, id: &str) -> Result<Record> {
        match records::notebook(&self.inner.store, id).await? {
            Some(r) if r.owner_id == caller.user_id || caller.is_admin() => Ok(r),
            _ => Err(not_found(id)),
        }
    }

    fn view(&self, record: &Record, cells: Option<Vec<Cell>>) -> Notebook {
        let kernel = self.live_if_any(&record.id).map_or(
            KernelInfo {
                state: KernelState::Detached,
                id: None,
                session_id: None,
            },
            |live| live.info(),
        );
        Notebook {
            id: record.id.clone(),
            project_id: record.project_id.clone(),
            owner_id: record.owner_id.clone(),
            path: record.path.clone(),
            created_by: record.created_by.clone(),
            created_at: time(record.created_at),
            updated_at: time(record.updated_at),
            kernel,
            cells,
        }
    }

    /// Creates a notebook at `path` in the project (by default the first free
    /// `UntitledN.ipynb`), or adopts the valid `.ipynb` already there, and binds it to the
    /// project's Jupyter session, opened if needed. The kernel starts in the background.
    pub async fn create(
        &self,
        caller: &Caller,
        project_id: &str,
        path: Option<&str>,
    ) -> Result<Notebook> {
        let projects = &self.inner.projects;
        let project = projects.get(caller, project_id).await?;
        let path = match path {
            Some(path) => notebook_path(path)?,
            None => self.free_path(&project.id).await?,
        };
        let taken = records::notebook_at(&self.inner.store, &project.id, &path).await?;
        if let Some(id) = taken {
            return Err(Error::new(
                Code::NotebookExists,
                format!("'{path}' is already a notebook of this project"),
            )
            .details(serde_json::json!({ "notebook_id": id, "path": path }))
            .hint("use that notebook, or choose another path"));
        }
        let existing = match projects.read_file(&project.id, &path).await {
            Ok(content) => Some(Document::parse(&path, &content)?),
            Err(e) if e.code == Code::ProjectFileNotFound => None,
            Err(e) => return Err(e),
        };
        self.inner
            .sessions
            .ensure(&owner(&project.owner_id), &project.id, SessionKind::Jupyter)
            .await?;
        let doc = match existing {
            Some(doc) => doc,
            None => {
                let doc = Document::new(&self.inner.config.kernel);
                projects
                    .write_file(&project.id, &path, doc.to_bytes())
                    .await?;
                doc
            }
        };
        let now = now_ms();
        let record = Record {
            id: new_id(),
            project_id: project.id.clone(),
            owner_id: project.owner_id.clone(),
            path,
            created_by: caller.user_id.clone(),
            created_at: now,
            updated_at: now,
        };
        if !records::insert_notebook(&self.inner.store, &record).await? {
            return Err(Error::new(
                Code::NotebookExists,
                format!("'{}' became a notebook meanwhile", record.path),
            ));
        }
        tracing::info!(notebook = %record.id, project = %record.project_id, path = %record.path, "notebook created");
        let live = self.live(&record.id);
        *live.last_state.lock().expect("state poisoned") = Some(KernelState::Starting);
        let (this, starting) = (self.clone(), record.clone());
        tokio::spawn(async move {
            let live = this.live(&starting.id);
            let _turn = live.turn.lock().await;
            if let Err(e) = this.kernel_for(&starting, &live).await {
                tracing::warn!(notebook = %starting.id, error = %e, "the notebook's kernel did not start");
                live.detach(KernelState::Detached);
            }
        });
        Ok(self.view(&record, Some(doc.cells)))
    }

    /// `Untitled.ipynb`, `Untitled1.ipynb`, ...: the first free in the project.
    async fn free_path(&self, project_id: &str) -> Result<String> {
        let files = self.inner.projects.list_files(project_id).await?;
        let mut taken: std::collections::HashSet<String> =
            files.into_iter().map(|f| f.path).collect();
        taken.extend(records::notebook_paths(&self.inner.store, project_id).await?);
        Ok((0..)
            .map(|n| match n {
                0 => "Untitled.ipynb".to_string(),
                n => format!("Untitled{n}.ipynb"),
            })
            .find(|p| !taken.contains(p))
            .expect("an unbounded range has a free name"))
    }

    /// The caller's notebooks (an admin's: everyone's), optionally of one project.
    pub async fn list(&self, caller: &Caller, project_id: Option<&str>) -> Result<Vec<Notebook>> {
        let owner = (!caller.is_admin()).then_some(caller.user_id.as_str());
        let records = records::notebooks(&self.inner.store, owner, project_id).await?;
        Ok(records.iter().map(|r| self.view(r, None)).collect())
    }

    /// One notebook with its cells and outputs (the live copy in its session while a kernel is
    /// attached, else the project's file).
    pub async fn get(&self, caller: &Caller, id: &str) -> Result<Notebook> {
        let record = self.record(caller, id).await?;
        let kernel = self.live_if_any(&record.id).and_then(|live| live.kernel());
        let doc = self.load(&record, kernel.as_deref()).await?;
        Ok(self.view(&record, Some(doc.cells)))
    }

    /// The kernel's state, the running execution and the queue.
    pub async fn status(&self, caller: &Caller, id: &str) -> Result<NotebookStatus> {
        let record = self.record(caller, id).await?;
        let live = self.live_if_any(&record.id);
        Ok(NotebookStatus {
            notebook_id: record.id.clone(),
            kernel: self.view(&record, None).kernel,
            running: live
                .as_ref()
                .and_then(|l| l.running.lock().expect("running poisoned").clone()),
            queued: live.map_or(0, |l| l.queued.load(Ordering::SeqCst)),
        })
    }

    /// The notebook's executions, newest first.
    pub async fn history(&self, caller: &Caller, id: &str, limit: i64) -> Result<Vec<Execution>> {
        let record = self.record(caller, id).await?;
        execution::history(&self.inner.store, &record.id, limit.clamp(1, 1000)).await
    }

    /// Whether `caller` may see the notebook (for the output stream).
    pub async fn check(&self, caller: &Caller, id: &str) -> Result<()> {
        self.record(caller, id).await.map(drop)
    }

    /// Deletes the notebook: its kernel is shut down, its file removed from the project and
    /// from a running session, its history dropped.
    pub async fn delete(&self, caller: &Caller, id: &str) -> Result<()> {
        let record = self.record(caller, id).await?;
        let kernel = self
            .live_if_any(&record.id)
            .and_then(|l| l.detach(KernelState::Shutdown));
        let jupyter = match &kernel {
            Some(kernel) => Some(kernel.jupyter.clone()),
            None => self.running_jupyter(&record).await?,
        };
        if let Some(kernel) = kernel {
            kernel.shutdown().await;
        }
        // A file left in the session would come back with its next sync.
        if let Some(jupyter) = jupyter {
            jupyter.delete(&record.path).await?;
        }
        match self
            .inner
            .projects
            .remove_file(&record.project_id, &record.path)
            .await
        {
            Err(e) if e.code != Code::ProjectFileNotFound => return Err(e),
            _ => {}
        }
        records::delete_notebook(&self.inner.store, &record.id).await?;
        self.inner
            .live
            .lock()
            .expect("live notebooks poisoned")
            .remove(&record.id);
        tracing::info!(notebook = %record.id, "notebook deleted");
        Ok(())
    }

    /// The Jupyter server of the project's ready session, if one runs (none is started).
    async fn running_jupyter(&self, record: &Record) -> Result<Option<Jupyter>> {
        let session = match self
            .inner
            .sessions
            .get(&owner(&record.owner_id), &record.project_id)
            .await
        {
            Ok(s) if s.kind == SessionKind::Jupyter && s.status == SessionStatus::Ready => s,
            Ok(_) => return Ok(None),
            Err(e) if e.code == Code::SessionNotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let upstream = self.inner.sessions.upstream_of(&session).await?;
        Jupyter::new(
            self.inner.http.clone(),
            &upstream,
            self.inner.max_file_bytes,
        )
        .map(Some)
    }

    /// The notebook's kernel, attached (and the session opened and the kernel started) if
    /// needed. The caller holds the notebook's turn.
    async fn kernel_for(&self, record: &Record, live: &Live) -> Result<Arc<Kernel>> {
        if let Some(kernel) = live.kernel() {
            if kernel.usable() {
                return Ok(kernel);
            }
            let state = kernel.state();
            live.detach(state);
            if state == KernelState::Dead {
                // Jupyter would hand the dead kernel back for this path.
                kernel.shutdown().await;
            }
        }
        let sessions = &self.inner.sessions;
        let (session, _) = sessions
            .ensure(
                &owner(&record.owner_id),
                &record.project_id,
                SessionKind::Jupyter,
            )
            .await?;
        let session = sessions
            .wait_ready(&session.session_id, self.inner.session_start_timeout)
            .await?;
        let upstream = sessions.upstream_of(&session).await?;
        let jupyter = Jupyter::new(
            self.inner.http.clone(),
            &upstream,
            self.inner.max_file_bytes,
        )?;
        if jupyter.read(&record.path).await?.is_none() {
            // Made after the session started: its files were copied in before.
            let content = self
                .inner
                .projects
                .read_file(&record.project_id, &record.path)
                .await?;
            jupyter
                .write(&record.path, &String::from_utf8_lossy(&content))
                .await?;
        }
        let (this, event_record) = (self.clone(), record.clone());
        let on_state: kernel::StateHook = Arc::new(move |state| {
            let mut event = NotebookEvent::new(&event_record.id, &event_record.owner_id, "kernel");
            event.kernel_state = Some(state);
            this.announce(event);
        });
        let kernel = Kernel::connect(
            jupyter,
            &record.path,
            &self.inner.config.kernel,
            Duration::from_secs(self.inner.config.kernel_start_timeout_secs),
            on_state,
        )
        .await?;
        tracing::info!(notebook = %record.id, kernel = %kernel.kernel_id, session = %session.session_id, "kernel attached");
        let kernel = Arc::new(kernel);
        *live.kernel.lock().expect("kernel poisoned") = Some(kernel.clone());
        Ok(kernel)
    }

    /// The notebook's document: the session's live copy when a kernel is attached, else the
    /// project's file.
    async fn load(&self, record: &Record, kernel: Option<&Kernel>) -> Result<Document> {
        if let Some(kernel) = kernel
            && let Some(text) = kernel.jupyter.read(&record.path).await?
        {
            return Document::parse(&record.path, text.as_bytes());
        }
        let content = self
            .inner
            .projects
            .read_file(&record.project_id, &record.path)
            .await
            .map_err(|e| match e.code {
                Code::ProjectFileNotFound => Error::new(
                    Code::ProjectFileNotFound,
                    format!(
                        "the notebook's file '{}' is gone from the project",
                        record.path
                    ),
                )
                .hint("delete the notebook, or upload the file again"),
                _ => e,
            })?;
        Document::parse(&record.path, &content)
    }

    /// Writes the document to the session (when a kernel is attached) and to the project, both
    /// at once.
    async fn save(&self, record: &Record, kernel: Option<&Kernel>, doc: &Document) -> Result<()> {
        let bytes = doc.to_bytes();
        let live_copy = async {
            match kernel {
                Some(kernel) => {
                    kernel
                        .jupyter
                        .write(&record.path, &String::from_utf8_lossy(&bytes))
                        .await
                }
                None => Ok(()),
            }
        };
        let stored = async {
            self.inner
                .projects
                .write_file(&record.project_id, &record.path, bytes.clone())
                .await?;
            records::touch_notebook(&self.inner.store, &record.id, now_ms()).await
        };
        let (live_copy, stored) = tokio::join!(live_copy, stored);
        live_copy.and(stored)
    }

    /// Runs code in the notebook's kernel after the executions queued before it, and answers
    /// with its outputs once it ended. It goes on if the caller leaves. Refused while the
    /// caller has `[notebooks] max_pending_per_user` executions running or waiting.
    pub async fn execute(
        &self,
        caller: &Caller,
        id: &str,
        request: ExecuteRequest,
    ) -> Result<Execution> {
        let record = self.record(caller, id).await?;
        if request.code.is_none() && request.cell_id.is_none() {
            return Err(Error::invalid_field(
                "code",
                "give `code`, `cell_id`, or both",
            ));
        }
        let config = &self.inner.config;
        let timeout = match request.timeout_secs {
            None => Duration::from_secs(config.execution_timeout_secs),
            Some(s) if s > 0.0 && s <= config.max_execution_timeout_secs as f64 => {
                Duration::from_secs_f64(s)
            }
            Some(s) => {
                return Err(Error::invalid_field(
                    "timeout_secs",
                    format!(
                        "{s} is not within 0 and {} seconds",
                        config.max_execution_timeout_secs
                    ),
                )
                .hint("ask for less; an admin sets the most with [notebooks] max_execution_timeout_secs"));
            }
        };
        let limits = Limits {
            timeout,
            interrupt_grace: Duration::from_secs(config.interrupt_grace_secs),
            max_output_bytes: usize::try_from(config.max_output_bytes).unwrap_or(usize::MAX),
        };
        let pending = Pending::take(&self.inner, &caller.user_id)?;
        let (this, user) = (self.clone(), caller.user_id.clone());
        tokio::spawn(async move {
            let _pending = pending;
            this.run(record, user, request, limits).await
        })
        .await
        .map_err(|e| Error::internal(format!("the execution failed: {e}")))?
    }

    async fn run(
        &self,
        record: Record,
        user_id: String,
        request: ExecuteRequest,
        limits: Limits,
    ) -> Result<Execution> {
        let live = self.live(&record.id);
        live.queued.fetch_add(1, Ordering::SeqCst);
        let turn = live.turn.lock().await;
        live.queued.fetch_sub(1, Ordering::SeqCst);
        let kernel = self.kernel_for(&record, &live).await?;
        // Code run through the API keeps the session from looking idle, as its traffic does.
        self.inner
            .sessions
            .activity(&kernel.jupyter.session_id)
            .await;
        let mut doc = self.load(&record, Some(&kernel)).await?;
        let (cell_id, code) = doc.prepare(request.cell_id.as_deref(), request.code)?;
        let mut execution =
            execution::begin(&self.inner.store, &record.id, &user_id, &cell_id, &code).await?;
        *live.running.lock().expect("running poisoned") = Some(Running {
            execution_id: execution.execution_id.clone(),
            cell_id: cell_id.clone(),
            user_id: user_id.clone(),
            code: code.clone(),
            started_at: execution.started_at,
        });
        let event = |kind: &str| {
            let mut event = NotebookEvent::new(&record.id, &record.owner_id, kind);
            event.execution_id = Some(execution.execution_id.clone());
            event.cell_id = Some(cell_id.clone());
            event
        };
        self.announce(event("execution_started"));
        let mut on_output = |output: &Value| {
            let mut e = event("output");
            e.output = Some(output.clone());
            self.announce(e);
        };
        let mut outcome = kernel.execute(&code, limits, &mut on_output).await;
        let mut finished = event("execution_finished");
        doc.record(&cell_id, outcome.execution_count, &outcome.outputs);
        if let Err(e) = self.save(&record, Some(&kernel), &doc).await {
            tracing::warn!(notebook = %record.id, error = %e, "cannot save the notebook's outputs");
            let saved = format!(
                "its outputs could not be saved to the notebook: {}",
                e.message
            );
            outcome.message = Some(match outcome.message.take() {
                Some(message) => format!("{message}; {saved}"),
                None => saved,
            });
        }
        execution::finish(&self.inner.store, &mut execution, outcome).await?;
        self.inner
            .metrics
            .workload
            .notebook_executed(execution.status.as_str());
        live.running.lock().expect("running poisoned").take();
        finished.status = Some(execution.status);
        finished.message = execution.message.clone();
        self.announce(finished);
        drop(turn);
        tracing::info!(notebook = %record.id, execution = %execution.execution_id, status = execution.status.as_str(), ms = execution.duration_ms, "execution finished");
        Ok(execution)
    }

    /// Shuts down the kernels of notebooks in a session whose server is stopping.
    async fn session_stopping(&self, session: &Session) {
        let lives: Vec<(String, Arc<Live>)> = self
            .inner
            .live
            .lock()
            .expect("live notebooks poisoned")
            .iter()
            .map(|(id, live)| (id.clone(), live.clone()))
            .collect();
        for (id, live) in lives {
            let ours = live
                .kernel()
                .is_some_and(|k| k.jupyter.session_id == session.session_id);
            if !ours {
                continue;
            }
            if let Some(kernel) = live.detach(KernelState::Shutdown) {
                kernel.shutdown().await;
                tracing::info!(notebook = %id, kernel = %kernel.kernel_id, "kernel shut down with its session");
                let mut event = NotebookEvent::new(&id, &session.owner_id, "kernel");
                event.kernel_state = Some(KernelState::Shutdown);
                event.message = Some("the session stopped".into());
                self.announce(event);
            }
        }
    }
}

/// A checked project path ending in `.ipynb`.
fn notebook_path(path: &str) -> Result<String> {
    let path = paths::checked("path", path)?;
    if !path.ends_with(".ipynb") {
        return Err(
            Error::invalid_field("path", "a notebook's path ends in .ipynb")
                .hint("e.g. analysis/report.ipynb"),
        );
    }
    Ok(path)
}
