//! Projects and their files: records in the store, files in storage (opendal; a local folder by
//! default). A project belongs to one user; others get 404.

use super::config::{StorageKind, WorkspacesConfig};
use super::paths;
use super::records;
use super::staging::Staging;
use crate::auth::Caller;
use crate::error::{Code, Error, Result};
use crate::store::{Store, new_id, now_ms, time};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use opendal::{EntryMode, ErrorKind, Operator};
use serde::Serialize;
use std::path::Path;
use std::sync::{Arc, Mutex};
use utoipa::ToSchema;

/// A user's project.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Project {
    pub id: String,
    pub owner_id: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One file of a project.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FileEntry {
    /// Relative to the project, `/`-separated.
    pub path: String,
    pub size: u64,
    pub modified: Option<DateTime<Utc>>,
}

/// What one project may hold (`[workspaces]`): uploads, syncs and versioning obey it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// The largest file, in bytes.
    pub(crate) max_file_bytes: u64,
    /// All its files together, in bytes.
    pub(crate) max_bytes: u64,
    /// Its number of files.
    pub(crate) max_files: u64,
}

/// Projects and their files.
#[derive(Clone)]
pub struct Projects {
    store: Store,
    files: Operator,
    /// The folder of the files with the local `fs` storage (`None` for a bucket).
    local: Option<std::path::PathBuf>,
    limits: Limits,
    hooks: Arc<Mutex<Vec<ProjectHook>>>,
    /// Projects read lately by the name a request gave: the DVC remote's client names the
    /// project in each of its requests, two per object pushed.
    named: Arc<crate::store::recent::Recent<Project>>,
}

/// What happened to a project, for services that keep something of their own per project
/// (versioning keeps a repository).
#[derive(Debug, Clone)]
pub(crate) enum ProjectEvent {
    /// The project with this id was made.
    Created(String),
    /// The project with this id and its files were deleted.
    Deleted(String),
}

/// Called after each [`ProjectEvent`], awaited before the request answers.
pub(crate) type ProjectHook = Arc<dyn Fn(ProjectEvent) -> BoxFuture<'static, ()> + Send + Sync>;

/// The stored file at `path`, with its size, as a stream of chunks: read with flat memory
/// whatever its size. Folders are refused as not found.
pub(crate) async fn stream_file(
    files: &opendal::Operator,
    path: &str,
) -> opendal::Result<(
    u64,
    futures::stream::BoxStream<'static, std::io::Result<Bytes>>,
)> {
    use futures::StreamExt;
    let meta = files.stat(path).await?;
    if meta.mode() != opendal::EntryMode::FILE {
        return Err(opendal::Error::new(ErrorKind::NotFound, "not a file"));
    }
    let size = meta.content_length();
    let chunks = files.reader(path).await?.into_bytes_stream(0..size).await?;
    Ok((size, chunks.boxed()))
}

/// A storage failure as an API error; the storage's own words stay in the log.
pub(crate) fn storage_error(err: opendal::Error) -> Error {
    match err.kind() {
        ErrorKind::NotFound => Error::new(Code::ProjectFileNotFound, "no such file in the project"),
        _ => {
            tracing::error!(error = %err, "project storage failed");
            Error::new(Code::ProjectStorage, "the project storage is unavailable")
                .hint("retry shortly; if it persists, check the storage configured in [workspaces]")
        }
    }
}

impl Projects {
    /// Projects whose files live where `config` says: a local folder (`files_dir`, default
    /// `<data_dir>/projects`) or an S3-compatible bucket.
    pub fn open(store: Store, config: &WorkspacesConfig, data_dir: &Path) -> anyhow::Result<Self> {
        let mut local = None;
        let files = match config.storage {
            StorageKind::Fs => {
                let root = config
                    .files_dir
                    .clone()
                    .unwrap_or_else(|| data_dir.join("projects"));
                std::fs::create_dir_all(&root)
                    .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", root.display()))?;
                let files =
                    Operator::new(opendal::services::Fs::default().root(&root.to_string_lossy()))?;
                local = Some(root);
                files
            }
            StorageKind::S3 => {
                // The S3 service talks HTTP through reqwest with rustls on ring (the provider
                // the rest of Weft uses); first installed wins, so repeated opens are fine.
                let _ = rustls::crypto::ring::default_provider().install_default();
                opendal_http_transport_reqwest::install_default();
                let s3 = &config.s3;
                if s3.bucket.is_empty() || s3.endpoint.is_empty() {
                    anyhow::bail!(
                        "[workspaces.s3] needs bucket and endpoint when storage = \"s3\""
                    );
                }
                let mut builder = opendal::services::S3::default()
                    .bucket(&s3.bucket)
                    .endpoint(&s3.endpoint)
                    .region(if s3.region.is_empty() {
                        "us-east-1"
                    } else {
                        &s3.region
                    })
                    .root(if s3.root.is_empty() { "/" } else { &s3.root })
                    .disable_config_load();
                if !s3.access_key_id.is_empty() {
                    builder = builder
                        .access_key_id(&s3.access_key_id)
                        .secret_access_key(&s3.secret_access_key);
                }
                Operator::new(builder)?
            }
        };
        Ok(Self {
            store,
            files,
            local,
            limits: Limits {
                max_file_bytes: config.max_file_bytes,
                max_bytes: config.project_max_bytes,
                max_files: config.project_max_files,
            },
            hooks: Arc::new(Mutex::new(Vec::new())),
            named: Arc::default(),
        })
    }

    /// What one project may hold.
    pub(crate) fn limits(&self) -> Limits {
        self.limits
    }

    /// Runs `hook` after every project made or deleted from now on.
    pub(crate) fn on_change(&self, hook: ProjectHook) {
        self.hooks
            .lock()
            .expect("project hooks poisoned")
            .push(hook);
    }

    async fn announce(&self, event: ProjectEvent) {
        let hooks = self.hooks.lock().expect("project hooks poisoned").clone();
        for hook in hooks {
            hook(event.clone()).await;
        }
    }

    /// Creates a project named `name` for `caller`.
    pub async fn create(&self, caller: &Caller, name: &str) -> Result<Project> {
        let name = name.trim();
        if name.is_empty()
            || name.len() > 100
            || name.contains('/')
            || name.chars().any(char::is_control)
        {
            return Err(Error::invalid_field(
                "name",
                "1-100 characters, no '/' or control characters",
            ));
        }
        let now = now_ms();
        let project = Project {
            id: new_id(),
            owner_id: caller.user_id.clone(),
            name: name.into(),
            created_at: time(now),
            updated_at: time(now),
        };
        if !records::insert_project(&self.store, &project).await? {
            return Err(Error::new(
                Code::ProjectExists,
                format!("you already have a project named '{name}'"),
            )
            .details(serde_json::json!({ "name": name })));
        }
        self.announce(ProjectEvent::Created(project.id.clone()))
            .await;
        Ok(project)
    }

    /// The caller's projects (an admin's lists all), oldest first.
    pub async fn list(&self, caller: &Caller) -> Result<Vec<Project>> {
        let owner = (!caller.is_admin()).then_some(caller.user_id.as_str());
        records::projects(&self.store, owner).await
    }

    /// The project `id` if `caller` may see it (its owner or an admin).
    pub async fn get(&self, caller: &Caller, id: &str) -> Result<Project> {
        match records::project(&self.store, id).await? {
            Some(p) if p.owner_id == caller.user_id || caller.is_admin() => Ok(p),
            _ => Err(
                Error::new(Code::ProjectNotFound, format!("project '{id}' not found"))
                    .details(serde_json::json!({ "project_id": id })),
            ),
        }
    }

    /// The project `name` names (`<owner name>/<project name>`, or its id) if `caller` may
    /// see it (its owner or an admin). With `recent`, a project read within the last second
    /// answers again without a store read: for the DVC remote, whose client asks twice per
    /// object. Only a deletion could make such a project stale (owners and names never
    /// change); this host forgets them all as it deletes one, another host sharing the store
    /// is seen within that second. Access is checked on every call, against a caller that
    /// [`crate::auth::Auth::sign_in_recent`] keeps no longer either.
    pub(crate) async fn named(&self, caller: &Caller, name: &str, recent: bool) -> Result<Project> {
        let kept = if recent { self.named.get(name) } else { None };
        let project = match kept {
            Some(project) => Some(project),
            None => {
                let generation = self.named.generation();
                let found = records::project_named(&self.store, name)
                    .await?
                    .map(Arc::new);
                if let Some(project) = &found {
                    self.named.keep(name, generation, project.clone());
                }
                found
            }
        };
        match project {
            Some(p) if p.owner_id == caller.user_id || caller.is_admin() => Ok((*p).clone()),
            _ => Err(
                Error::new(Code::ProjectNotFound, format!("no project '{name}'"))
                    .details(serde_json::json!({ "project": name })),
            ),
        }
    }

    /// The project of user `owner` that `name` names (its id or its name): how a workflow
    /// run and the container jobs of its nodes name the project they work on. Even an admin's
    /// run names only the admin's own projects.
    pub(crate) async fn owned(&self, owner: &str, name: &str) -> Result<Project> {
        records::projects(&self.store, Some(owner))
            .await?
            .into_iter()
            .find(|p| p.owner_id == owner && (p.id == name || p.name == name))
            .ok_or_else(|| {
                Error::new(Code::ProjectNotFound, format!("project '{name}' not found"))
                    .details(serde_json::json!({ "project": name }))
                    .hint("a run and its jobs may name only a project of the run's owner")
            })
    }

    /// Project `id`, whoever owns it (no access check: for hooks that act for a user already
    /// checked, such as a pusher).
    pub(crate) async fn find(&self, id: &str) -> Result<Option<Project>> {
        records::project(&self.store, id).await
    }

    /// Deletes a project and its files.
    pub async fn delete(&self, caller: &Caller, id: &str) -> Result<()> {
        let project = self.get(caller, id).await?;
        self.files
            .delete_with(&format!("{}/", project.id))
            .recursive(true)
            .await
            .map_err(storage_error)?;
        records::delete_project(&self.store, &project.id).await?;
        self.named.forget_all();
        self.announce(ProjectEvent::Deleted(project.id)).await;
        Ok(())
    }

    /// Every file of the project, by path.
    pub async fn files(&self, caller: &Caller, id: &str) -> Result<Vec<FileEntry>> {
        let project = self.get(caller, id).await?;
        self.list_files(&project.id).await
    }

    /// Every file stored for project `id` (no access check: for the session manager).
    pub async fn list_files(&self, id: &str) -> Result<Vec<FileEntry>> {
        let prefix = format!("{id}/");
        let entries = match self.files.list_with(&prefix).recursive(true).await {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(storage_error(e)),
        };
        let mut files: Vec<FileEntry> = entries
            .into_iter()
            .filter(|e| e.metadata().mode() == EntryMode::FILE)
            .map(|e| FileEntry {
                path: e.path().trim_start_matches(&prefix).to_string(),
                size: e.metadata().content_length(),
                modified: e
                    .metadata()
                    .last_modified()
                    .and_then(|t| DateTime::from_timestamp_millis(t.into_inner().as_millisecond())),
            })
            .collect();
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(files)
    }

    /// The content of one file.
    /// The content of one file as a stream of chunks (never held whole), with its size.
    pub async fn read(
        &self,
        caller: &Caller,
        id: &str,
        path: &str,
    ) -> Result<(
        u64,
        futures::stream::BoxStream<'static, std::io::Result<Bytes>>,
    )> {
        let project = self.get(caller, id).await?;
        let full = format!("{}/{}", project.id, paths::checked("path", path)?);
        stream_file(&self.files, &full).await.map_err(storage_error)
    }

    /// Removes files a crash left staged.
    pub async fn sweep_staging(&self) {
        super::staging::sweep(&self.files).await;
    }

    /// The storage the files live in (for sync, which stages and commits on its own, and for
    /// model artifacts, kept below a root of their own that starts with a dot as no project
    /// id does).
    pub(crate) fn storage(&self) -> &Operator {
        &self.files
    }

    /// The local folder the storage is (`None` for a bucket): for writers that stage there
    /// without opendal's flush of each file.
    pub(crate) fn local_root(&self) -> Option<&std::path::Path> {
        self.local.as_deref()
    }

    /// Records that project `id`'s files changed.
    pub(super) async fn touch(&self, id: &str) -> Result<()> {
        records::touch_project(&self.store, id, now_ms()).await
    }

    /// The content of a file of project `id` (no access check; `path` already checked).
    pub async fn read_file(&self, id: &str, path: &str) -> Result<Bytes> {
        let buffer = self
            .files
            .read(&format!("{id}/{path}"))
            .await
            .map_err(storage_error)?;
        Ok(buffer.to_bytes())
    }

    /// Stores `content` at `path` of project `id`, replacing what was there in one step (no
    /// access check; `path` already checked).
    pub async fn write_file(&self, id: &str, path: &str, content: Bytes) -> Result<FileEntry> {
        let size = content.len() as u64;
        if size > self.limits.max_file_bytes {
            return Err(self.too_large(path, Some(size)));
        }
        let staging = Staging::new(&self.files);
        let stored = async {
            let staged = staging.put(0, content).await?;
            staging.commit(&staged.path, &format!("{id}/{path}")).await
        }
        .await;
        staging.discard().await;
        stored?;
        self.touch(id).await?;
        Ok(FileEntry {
            path: path.into(),
            size,
            modified: Some(time(now_ms())),
        })
    }

    /// Stores every `(path, content)` of `files` in project `id`, up to `parallel` at once,
    /// each replacing what was at its path in one step; then records one change. No checks:
    /// for versioning, which writes paths it checked and the sizes a commit holds.
    ///
    /// The files are not flushed to disk one by one (each flush costs a disk round trip and
    /// made a 1,000-file checkout take seconds): a killed Weft still leaves each file whole or
    /// as it was (staged, then renamed into place), and the repository holds every version.
    /// In a bucket each file is one `PUT`, which replaces an object in one step.
    pub(crate) async fn store_files(
        &self,
        id: &str,
        files: futures::stream::BoxStream<'static, Result<(String, Bytes)>>,
        parallel: usize,
    ) -> Result<()> {
        use futures::{StreamExt, TryStreamExt};
        let staging = Staging::new(&self.files);
        let stored = files
            .enumerate()
            .map(|(n, file)| {
                let (staging, local, op) =
                    (staging.clone(), self.local.clone(), self.files.clone());
                let project = id.to_string();
                async move {
                    let (path, content) = file?;
                    let target = format!("{project}/{path}");
                    match local {
                        Some(root) => staging.put_local_n(&root, n as u64, content, &target).await,
                        None => op
                            .write(&target, content)
                            .await
                            .map(|_| ())
                            .map_err(storage_error),
                    }
                }
            })
            .buffer_unordered(parallel)
            .try_collect::<Vec<()>>()
            .await;
        staging.discard().await;
        stored?;
        self.touch(id).await
    }

    /// Stores the body at `path` as it arrives: it is staged, and replaces what was at `path`
    /// only once it is whole. Past `max_file_bytes` (or a `declared` length over it) it is
    /// refused while reading, and nothing is replaced.
    pub async fn write_stream<E: std::fmt::Display>(
        &self,
        caller: &Caller,
        id: &str,
        path: &str,
        declared: Option<u64>,
        body: impl futures::Stream<Item = std::result::Result<Bytes, E>> + Unpin,
    ) -> Result<FileEntry> {
        let project = self.get(caller, id).await?;
        let path = paths::checked("path", path)?;
        if let Some(size) = declared.filter(|size| *size > self.limits.max_file_bytes) {
            return Err(self.too_large(&path, Some(size)));
        }
        self.check_free(&project.id, &path).await?;
        let staging = Staging::new(&self.files);
        let stored: Result<u64> = async {
            let staged = staging
                .writer(0)
                .await?
                .write_all(
                    body,
                    self.limits.max_file_bytes,
                    || self.too_large(&path, None),
                    "send the file again; the stored one is unchanged",
                    |_| {},
                )
                .await?;
            staging
                .commit(&staged.path, &format!("{}/{path}", project.id))
                .await?;
            Ok(staged.size)
        }
        .await;
        staging.discard().await;
        let size = stored?;
        self.touch(&project.id).await?;
        Ok(FileEntry {
            path,
            size,
            modified: Some(time(now_ms())),
        })
    }

    /// Refuses a `path` where the project has a file and a folder of the same name would be
    /// needed (or the other way round).
    async fn check_free(&self, id: &str, path: &str) -> Result<()> {
        let conflict = |why: String| {
            Error::new(Code::ProjectPathConflict, why)
                .details(serde_json::json!({ "path": path }))
                .hint("delete or rename the one in the way first")
        };
        let mut ancestor = path;
        while let Some((parent, _)) = ancestor.rsplit_once('/') {
            match self.files.stat(&format!("{id}/{parent}")).await {
                Ok(meta) if meta.mode() == EntryMode::FILE => {
                    return Err(conflict(format!(
                        "'{parent}' is a file in the project, so '{path}' cannot be in a folder of that name"
                    )));
                }
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(storage_error(e)),
            }
            ancestor = parent;
        }
        let inside = match self
            .files
            .list_with(&format!("{id}/{path}/"))
            .limit(1)
            .await
        {
            Ok(entries) => !entries.is_empty(),
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => false,
            Err(e) => return Err(storage_error(e)),
        };
        if inside {
            return Err(conflict(format!(
                "'{path}' is a folder in the project, so it cannot also be a file"
            )));
        }
        Ok(())
    }

    /// The refusal of a file over the size limit (of `size` bytes, when known).
    pub fn too_large(&self, path: &str, size: Option<u64>) -> Error {
        let is = match size {
            Some(size) => format!("is {size} bytes"),
            None => "is longer".into(),
        };
        Error::new(
            Code::ProjectFileTooLarge,
            format!(
                "'{path}' {is}, over the limit of {} bytes",
                self.limits.max_file_bytes
            ),
        )
        .details(
            serde_json::json!({ "path": path, "size": size, "max_bytes": self.limits.max_file_bytes }),
        )
        .hint("an admin sets the limit with [workspaces] max_file_bytes")
    }

    /// Deletes one file.
    pub async fn remove(&self, caller: &Caller, id: &str, path: &str) -> Result<()> {
        let project = self.get(caller, id).await?;
        let path = paths::checked("path", path)?;
        if !self
            .files
            .exists(&format!("{}/{path}", project.id))
            .await
            .map_err(storage_error)?
        {
            return Err(Error::new(
                Code::ProjectFileNotFound,
                format!("no file '{path}' in the project"),
            ));
        }
        self.remove_file(&project.id, &path).await
    }

    /// [`Self::remove`] without the checks.
    pub async fn remove_file(&self, id: &str, path: &str) -> Result<()> {
        self.remove_file_at(format!("{id}/{path}")).await
    }

    /// Deletes the stored file at `full` (`<project>/<path>`), and the folders it leaves
    /// empty: on a local disk an empty folder `a` would stand in the way of a file `a` (a
    /// checkout that turns a folder into a file), and the project's listing has no folders.
    pub(super) async fn remove_file_at(&self, full: String) -> Result<()> {
        self.files.delete(&full).await.map_err(storage_error)?;
        let mut folder = full.as_str();
        while let Some((parent, _)) = folder.rsplit_once('/') {
            if !parent.contains('/') {
                break; // the project's own folder
            }
            let dir = format!("{parent}/");
            match self.files.list_with(&dir).limit(2).await {
                // A local disk lists the folder itself first.
                Ok(entries) if entries.iter().all(|e| e.path() == dir) => {
                    // A file written into it meanwhile keeps it: that is no failure.
                    if let Err(e) = self.files.delete(&dir).await {
                        tracing::debug!(folder = %dir, error = %e, "emptied folder kept");
                        break;
                    }
                }
                Ok(_) => break,
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(storage_error(e)),
            }
            folder = parent;
        }
        Ok(())
    }
}
