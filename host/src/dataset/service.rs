//! The data versions service: the remotes' objects, datasets and their versions. A dataset is
//! what one path of a project holds (a folder or file a `.dvc` file tracks, or files named
//! when recording); each version is one content (its oid), numbered from 1, with the files it
//! holds once its manifest is in the project's remote.

use super::config::DatasetsConfig;
use super::file_list::FileList;
use super::manifest::{self, Out};
use super::objects::{Objects, Oid};
use super::records;
use crate::auth::Caller;
use crate::error::{Code, Error, Result};
use crate::git::{Git, PushHook, Pushed};
use crate::store::{Store, new_id, now_ms, time};
use crate::workspace::{Project, ProjectEvent, ProjectHook, Projects};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use utoipa::ToSchema;

/// A dataset with its latest version.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct Dataset {
    pub(crate) id: String,
    pub(crate) project_id: String,
    pub(crate) owner_id: String,
    /// Its path in the project (what a `.dvc` file tracks) or the name it was recorded with.
    pub(crate) name: String,
    pub(crate) created_at: DateTime<Utc>,
    /// How many versions it has.
    pub(crate) versions: i64,
    pub(crate) latest: Option<DatasetVersion>,
}

/// One version of a dataset.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct DatasetVersion {
    pub(crate) id: String,
    /// 1 for the first version, then one more for each.
    pub(crate) number: i64,
    /// Its content in DVC's terms: a file's md5, or `<md5>.dir` for a folder's manifest.
    pub(crate) oid: String,
    /// The commit of the project's repository it came from.
    pub(crate) git_commit: Option<String>,
    /// How it was recorded: `push` (a push changed its `.dvc` or `dvc.lock` file), `dvc_file`,
    /// `files` or `run` (a workflow run's node wrote it).
    pub(crate) source: String,
    /// The user who recorded it (pushed, or called the API), and their name.
    pub(crate) created_by: String,
    pub(crate) created_by_name: Option<String>,
    pub(crate) created_at: DateTime<Utc>,
    /// Files and bytes it holds (as its `.dvc` file states them until `complete`).
    pub(crate) files: i64,
    pub(crate) bytes: i64,
    /// Whether its files are listed: its manifest and objects are in the project's remote.
    pub(crate) complete: bool,
}

/// One file of a version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub(crate) struct DatasetFile {
    /// Relative to the dataset's folder.
    pub(crate) path: String,
    pub(crate) md5: String,
    pub(crate) size: i64,
}

/// What recording found: the dataset, its version, and whether that version is new.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Recorded {
    pub(crate) dataset: Dataset,
    pub(crate) version: DatasetVersion,
    /// False when the dataset's latest version already had this content.
    pub(crate) created: bool,
}

/// Storage one project's data takes.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ProjectStorage {
    pub(crate) project_id: String,
    pub(crate) name: String,
    /// What its objects take, each stored once.
    pub(crate) stored_bytes: i64,
    pub(crate) objects: i64,
    /// What its dataset versions hold together, counted per version (what copies would take).
    pub(crate) logical_bytes: i64,
}

/// Data versions, cheap to clone.
#[derive(Clone)]
pub(crate) struct Datasets {
    inner: Arc<Inner>,
}

struct Inner {
    objects: Objects,
    store: Store,
    git: Git,
    projects: Projects,
    quota: u64,
}

/// What a recording is from, and by whom.
pub(super) struct Origin<'a> {
    pub(super) source: &'static str,
    pub(super) git_commit: Option<String>,
    pub(super) by: &'a str,
}

impl Datasets {
    pub(crate) fn new(
        store: Store,
        projects: &Projects,
        git: Git,
        config: &DatasetsConfig,
    ) -> Self {
        let objects = Objects::new(
            store.clone(),
            projects.storage().clone(),
            projects.local_root().map(ToOwned::to_owned),
            config.max_bytes_per_user,
        );
        Self {
            inner: Arc::new(Inner {
                objects,
                store,
                git,
                projects: projects.clone(),
                quota: config.max_bytes_per_user,
            }),
        }
    }

    /// Converts the files of the versions recorded before migration 0024 (a row per file)
    /// into one list each: once, as Weft starts; a few at a time so that a big version's rows
    /// are never all in memory with another's. How many versions it converted.
    pub(crate) async fn convert_file_rows(&self) -> Result<usize> {
        let mut converted = 0;
        loop {
            match records::convert_file_rows(self.store(), 16).await? {
                0 => return Ok(converted),
                n => converted += n,
            }
        }
    }

    /// The remotes' objects.
    pub(super) fn objects(&self) -> &Objects {
        &self.inner.objects
    }

    pub(super) fn store(&self) -> &Store {
        &self.inner.store
    }

    pub(super) fn projects(&self) -> &Projects {
        &self.inner.projects
    }

    pub(super) fn git(&self) -> &Git {
        &self.inner.git
    }

    pub(super) fn quota(&self) -> u64 {
        self.inner.quota
    }

    /// The files of content `oid` in `project`'s remote (`name` names a single file), or
    /// `None` while its manifest or one of its objects is not there.
    async fn contents(
        &self,
        project: &str,
        name: &str,
        oid: &Oid,
    ) -> Result<Option<Vec<DatasetFile>>> {
        if !oid.is_dir() {
            let size = self.objects().size(project, oid).await?;
            let file = name.rsplit('/').next().unwrap_or(name).to_string();
            return Ok(size.map(|size| {
                vec![DatasetFile {
                    path: file,
                    md5: oid.md5().to_string(),
                    size: size as i64,
                }]
            }));
        }
        let Some(manifest) = self.objects().read_whole(project, oid).await? else {
            return Ok(None);
        };
        let sizes = records::object_sizes(self.store(), project).await?;
        let mut files = Vec::new();
        for (path, md5) in manifest::entries(&manifest)? {
            let Some(size) = sizes.get(&md5) else {
                return Ok(None);
            };
            files.push(DatasetFile {
                path,
                md5,
                size: *size as i64,
            });
        }
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(Some(files))
    }

    /// Records `out` of `project` as the next version of the dataset at its path, unless its
    /// latest version has that content already.
    pub(super) async fn record(
        &self,
        project: &Project,
        out: Out,
        origin: Origin<'_>,
    ) -> Result<Recorded> {
        let mut dataset =
            records::dataset(self.store(), &project.id, &project.owner_id, &out.path).await?;
        if let Some(latest) = dataset.latest.clone().filter(|v| v.oid == out.oid.as_str()) {
            return Ok(Recorded {
                dataset,
                version: latest,
                created: false,
            });
        }
        let files = self.contents(&project.id, &out.path, &out.oid).await?;
        let (count, bytes) = match &files {
            Some(files) => (files.len() as i64, files.iter().map(|f| f.size).sum()),
            None => (out.files, out.bytes),
        };
        let version = DatasetVersion {
            id: new_id(),
            number: dataset.versions + 1,
            oid: out.oid.as_str().to_string(),
            git_commit: origin.git_commit,
            source: origin.source.to_string(),
            created_by: origin.by.to_string(),
            created_by_name: None,
            created_at: time(now_ms()),
            files: count,
            bytes,
            complete: files.is_some(),
        };
        records::insert_version(self.store(), &dataset.id, &version, files.as_deref()).await?;
        dataset.versions = version.number;
        dataset.latest = Some(version.clone());
        Ok(Recorded {
            dataset,
            version,
            created: true,
        })
    }

    /// Records each output of the `.dvc` file (or each stage's output of the `dvc.lock` file)
    /// `path` at commit `rev` (default `HEAD`) of the caller's project.
    pub(super) async fn record_dvc_file(
        &self,
        caller: &Caller,
        project_id: &str,
        path: String,
        rev: Option<String>,
    ) -> Result<Vec<Recorded>> {
        let project = self.projects().get(caller, project_id).await?;
        let (commit, text) = self
            .git()
            .file_at(caller, &project.id, rev, path.clone())
            .await?;
        let pipeline = self.pipeline_of(&project.id, &commit, &path).await?;
        let mut recorded = Vec::new();
        for out in manifest::outs(&path, &text, pipeline.as_deref())? {
            let origin = Origin {
                source: "dvc_file",
                git_commit: Some(commit.clone()),
                by: &caller.user_id,
            };
            recorded.push(self.record(&project, out, origin).await?);
        }
        Ok(recorded)
    }

    /// Records the files of the caller's project under `paths` as a version of dataset
    /// `name`: each file stored in the project's remote once, with a manifest as DVC writes
    /// one (paths relative to the one folder named, or to the project).
    pub(super) async fn record_files(
        &self,
        caller: &Caller,
        project_id: &str,
        name: String,
        paths: Vec<String>,
    ) -> Result<Recorded> {
        use crate::workspace::projects::stream_file;
        let project = self.projects().get(caller, project_id).await?;
        let under = |file: &str, path: &str| {
            file == path || (file.starts_with(path) && file[path.len()..].starts_with('/'))
        };
        let chosen: Vec<String> = self
            .projects()
            .list_files(&project.id)
            .await?
            .into_iter()
            .map(|f| f.path)
            .filter(|f| paths.iter().any(|p| under(f, p)))
            .collect();
        if chosen.is_empty() {
            return Err(Error::new(
                Code::DatasetInvalid,
                "no files of the project are under the paths given",
            )
            .details(serde_json::json!({ "paths": paths }))
            .hint("GET /api/v1/projects/{id}/files lists the project's files"));
        }
        let base = match paths.as_slice() {
            [one] if !chosen.iter().any(|f| f == one) => Some(format!("{one}/")),
            _ => None,
        };
        let storage = self.projects().storage().clone();
        let mut entries = Vec::with_capacity(chosen.len());
        for file in chosen {
            let (_, chunks) = stream_file(&storage, &format!("{}/{file}", project.id))
                .await
                .map_err(super::objects::storage_error)?;
            let (oid, _) = self
                .objects()
                .add(caller, &project.id, &project.owner_id, chunks)
                .await?;
            let relpath = match &base {
                Some(base) => file
                    .strip_prefix(base.as_str())
                    .unwrap_or(&file)
                    .to_string(),
                None => file,
            };
            entries.push((relpath, oid.md5().to_string()));
        }
        let origin = Origin {
            source: "files",
            git_commit: None,
            by: &caller.user_id,
        };
        self.record_folder(caller, &project, name, entries, origin)
            .await
    }

    /// Records the files `files` (each a path in the dataset and the local file holding its
    /// content, streamed into the remote), produced by a workflow run of `caller` (the run's
    /// owner) on `project_id` at `git_commit`, as the next version of dataset `name` of that
    /// project.
    pub(crate) async fn record_produced(
        &self,
        caller: &Caller,
        project_id: &str,
        git_commit: Option<String>,
        name: &str,
        files: Vec<(String, std::path::PathBuf)>,
    ) -> Result<Recorded> {
        let project = self.projects().get(caller, project_id).await?;
        let name = crate::workspace::paths::checked("name", name).map_err(|_| {
            Error::new(
                Code::DatasetInvalid,
                format!("'{name}' is no dataset name: a relative path in the project"),
            )
            .hint("name it as a folder of the project, for example `data/prepared`")
        })?;
        if files.is_empty() {
            return Err(Error::new(
                Code::DatasetInvalid,
                format!("a version of '{name}' needs at least one file"),
            )
            .hint("pass each file's path and the key `put` returned for its content"));
        }
        let mut entries = Vec::with_capacity(files.len());
        let mut seen = std::collections::HashSet::with_capacity(files.len());
        for (path, stored) in files {
            let checked = crate::workspace::paths::checked("path", &path).map_err(|_| {
                Error::new(
                    Code::DatasetInvalid,
                    format!("'{path}' is no file path: a relative path in the dataset"),
                )
                .details(serde_json::json!({ "path": path }))
                .hint("use relative paths without `..`, for example `part-1.csv`")
            })?;
            if !seen.insert(checked.clone()) {
                return Err(Error::new(
                    Code::DatasetInvalid,
                    format!("'{checked}' is named twice in one version"),
                )
                .details(serde_json::json!({ "path": checked }))
                .hint("each path of a version holds one file"));
            }
            let file = tokio::fs::File::open(&stored)
                .await
                .map_err(|e| Error::internal(format!("cannot open a written file: {e}")))?;
            let body = tokio_util::io::ReaderStream::new(file);
            let (oid, _) = self
                .objects()
                .add(caller, &project.id, &project.owner_id, body)
                .await?;
            entries.push((checked, oid.md5().to_string()));
        }
        let origin = Origin {
            source: "run",
            git_commit,
            by: &caller.user_id,
        };
        self.record_folder(caller, &project, name, entries, origin)
            .await
    }

    /// Writes the manifest of `entries` (`(relpath, md5)` of objects already in `project`'s
    /// remote) and records that folder as the next version of dataset `name`.
    async fn record_folder(
        &self,
        caller: &Caller,
        project: &Project,
        name: String,
        mut entries: Vec<(String, String)>,
        origin: Origin<'_>,
    ) -> Result<Recorded> {
        let listed = manifest::manifest(&mut entries);
        let md5 = {
            use md5::{Digest as _, Md5};
            hex::encode(Md5::digest(&listed))
        };
        let oid = Oid::parse(&format!("{md5}.dir"))
            .ok_or_else(|| Error::internal("a manifest's md5 is not hex"))?;
        let body = futures::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from(listed))]);
        self.objects()
            .write(caller, &project.id, &project.owner_id, &oid, body)
            .await?;
        let out = Out {
            path: name,
            oid,
            bytes: 0,
            files: entries.len() as i64,
        };
        self.record(project, out, origin).await
    }

    /// The caller's datasets (an admin's: everyone's), of one project if named.
    pub(super) async fn list(
        &self,
        caller: &Caller,
        project_id: Option<&str>,
    ) -> Result<Vec<Dataset>> {
        let owner = (!caller.is_admin()).then_some(caller.user_id.as_str());
        records::datasets(self.store(), owner, project_id, None).await
    }

    /// Dataset `id`, if the caller may see it (its owner or an admin).
    pub(crate) async fn get(&self, caller: &Caller, id: &str) -> Result<Dataset> {
        let found = records::datasets(self.store(), None, None, Some(id))
            .await?
            .pop();
        match found {
            Some(d) if d.owner_id == caller.user_id || caller.is_admin() => Ok(d),
            _ => Err(
                Error::new(Code::DatasetNotFound, format!("dataset '{id}' not found"))
                    .details(serde_json::json!({ "dataset_id": id }))
                    .hint("GET /api/v1/datasets lists yours"),
            ),
        }
    }

    /// The versions of dataset `id`, oldest first (those whose objects arrived since they
    /// were recorded are completed on the way).
    pub(super) async fn versions(
        &self,
        caller: &Caller,
        id: &str,
    ) -> Result<(Dataset, Vec<DatasetVersion>)> {
        let dataset = self.get(caller, id).await?;
        let mut versions = records::versions(self.store(), &dataset.id).await?;
        for version in versions.iter_mut().filter(|v| !v.complete) {
            self.complete(&dataset, version).await?;
        }
        Ok((dataset, versions))
    }

    /// Lists `version`'s files if its objects are in the remote now.
    async fn complete(&self, dataset: &Dataset, version: &mut DatasetVersion) -> Result<()> {
        let Some(oid) = Oid::parse(&version.oid) else {
            return Ok(());
        };
        if let Some(files) = self
            .contents(&dataset.project_id, &dataset.name, &oid)
            .await?
        {
            records::complete_version(self.store(), &version.id, &files).await?;
            version.files = files.len() as i64;
            version.bytes = files.iter().map(|f| f.size).sum();
            version.complete = true;
        }
        Ok(())
    }

    /// Version `number` of dataset `id` and its files, as stored.
    pub(super) async fn version(
        &self,
        caller: &Caller,
        id: &str,
        number: i64,
    ) -> Result<(DatasetVersion, FileList)> {
        let (_, versions) = self.versions(caller, id).await?;
        let version = versions
            .into_iter()
            .find(|v| v.number == number)
            .ok_or_else(|| {
                Error::new(
                    Code::DatasetVersionNotFound,
                    format!("dataset '{id}' has no version {number}"),
                )
                .details(serde_json::json!({ "dataset_id": id, "number": number }))
                .hint("GET /api/v1/datasets/{id} lists its versions")
            })?;
        if !version.complete {
            return Err(Error::new(
                Code::DatasetInvalid,
                format!("the files of version {number} are not in the project's remote yet"),
            )
            .hint("`dvc push` them to Weft's remote"));
        }
        let files = records::files(self.store(), &version.id).await?;
        Ok((version, files))
    }

    /// Version `number` of dataset `id` (the newest when `None`) with its dataset and files:
    /// what a workflow node reads through the `artifacts` capability.
    pub(crate) async fn pick(
        &self,
        caller: &Caller,
        id: &str,
        number: Option<i64>,
    ) -> Result<(Dataset, DatasetVersion, Vec<DatasetFile>)> {
        let (dataset, versions) = self.versions(caller, id).await?;
        let number = match number {
            Some(n) => n,
            None => versions.last().map(|v| v.number).ok_or_else(|| {
                Error::new(
                    Code::DatasetVersionNotFound,
                    format!("dataset '{id}' has no version yet"),
                )
                .hint("record one with POST /api/v1/datasets or a push of its .dvc file")
            })?,
        };
        let (version, files) = self.version(caller, id, number).await?;
        Ok((dataset, version, files.decode()?))
    }

    /// File `path` of version `number` of dataset `id`, whole: refused above `max_bytes`.
    pub(crate) async fn file(
        &self,
        caller: &Caller,
        id: &str,
        number: i64,
        path: &str,
        max_bytes: u64,
    ) -> Result<(Dataset, bytes::Bytes)> {
        let (dataset, _, files) = self.pick(caller, id, Some(number)).await?;
        let file = files.iter().find(|f| f.path == path).ok_or_else(|| {
            Error::new(
                Code::DatasetFileNotFound,
                format!("version {number} of dataset '{id}' has no file '{path}'"),
            )
            .details(serde_json::json!({ "dataset_id": id, "number": number, "path": path }))
            .hint("the version's manifest lists its files (paths relative to the dataset)")
        })?;
        if file.size as u64 > max_bytes {
            return Err(Error::new(
                Code::DatasetFileTooLarge,
                format!(
                    "'{path}' has {} bytes, more than the {max_bytes} a node may read whole",
                    file.size
                ),
            )
            .hint("split the file, or read it in a container job of the project"));
        }
        let oid = Oid::parse(&file.md5).ok_or_else(|| Error::internal("a file without an md5"))?;
        let content = self
            .objects()
            .read_whole(&dataset.project_id, &oid)
            .await?
            .ok_or_else(|| super::objects::not_found(&oid))?;
        Ok((dataset, content))
    }

    /// What the data of each project of user `user_id` takes.
    pub(super) async fn storage(&self, user_id: &str) -> Result<Vec<ProjectStorage>> {
        records::storage(self.store(), user_id).await
    }

    /// The hook the git service calls after a push: each `.dvc` or `dvc.lock` file the push
    /// adds or changes records a version of what it tracks (of each stage's outputs).
    pub(crate) fn push_hook(&self) -> PushHook {
        let datasets = self.clone();
        Arc::new(move |pushed| {
            let datasets = datasets.clone();
            Box::pin(async move {
                let project = pushed.project_id.clone();
                if let Err(e) = datasets.record_push(pushed).await {
                    tracing::warn!(%project, error = %e, "cannot record the data versions a push changed");
                }
            })
        })
    }

    async fn record_push(&self, pushed: Pushed) -> Result<()> {
        let Some(project) = self.projects().find(&pushed.project_id).await? else {
            return Ok(());
        };
        let changed = self
            .git()
            .changed_files(
                &project.id,
                pushed.before,
                pushed.after.clone(),
                manifest::is_dvc_file,
            )
            .await?;
        for (path, text) in changed {
            let pipeline = self.pipeline_of(&project.id, &pushed.after, &path).await?;
            let outs = match manifest::outs(&path, &text, pipeline.as_deref()) {
                Ok(outs) => outs,
                Err(e) => {
                    tracing::info!(project = %project.id, %path, error = %e, "a pushed DVC file records no version");
                    continue;
                }
            };
            for out in outs {
                let origin = Origin {
                    source: "push",
                    git_commit: Some(pushed.after.clone()),
                    by: &pushed.user_id,
                };
                self.record(&project, out, origin).await?;
            }
        }
        Ok(())
    }

    /// The `dvc.yaml` beside the lock file `path` at `commit` of the project, if `path` is a
    /// lock file and the commit has one.
    async fn pipeline_of(
        &self,
        project_id: &str,
        commit: &str,
        path: &str,
    ) -> Result<Option<bytes::Bytes>> {
        match manifest::pipeline_of(path) {
            Some(pipeline) => {
                self.git()
                    .file_in_commit(project_id, commit.to_string(), pipeline)
                    .await
            }
            None => Ok(None),
        }
    }

    /// The hook the projects service calls: a deleted project loses its objects and datasets.
    pub(crate) fn project_hook(&self) -> ProjectHook {
        let datasets = self.clone();
        Arc::new(move |event| {
            let datasets = datasets.clone();
            Box::pin(async move {
                if let ProjectEvent::Deleted(id) = event {
                    let removed = async {
                        records::delete_datasets(datasets.store(), &id).await?;
                        datasets.objects().remove_project(&id).await
                    };
                    if let Err(e) = removed.await {
                        tracing::warn!(project = %id, error = %e, "cannot remove the data of a deleted project");
                    }
                }
            })
        })
    }
}

/// What changed from one version's files to another's.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct VersionDiff {
    pub(crate) from: i64,
    pub(crate) to: i64,
    pub(crate) added: Vec<DatasetFile>,
    pub(crate) removed: Vec<DatasetFile>,
    pub(crate) changed: Vec<ChangedFile>,
    /// Bytes of the files added and of the new content of those changed.
    pub(crate) bytes_added: i64,
    /// Bytes of the files removed and of the old content of those changed.
    pub(crate) bytes_removed: i64,
}

/// A file in both versions with different content.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ChangedFile {
    pub(crate) path: String,
    pub(crate) old_md5: String,
    pub(crate) new_md5: String,
    pub(crate) old_size: i64,
    pub(crate) new_size: i64,
}

/// The diff from files `old` to files `new`.
pub(super) fn diff(
    from: i64,
    to: i64,
    old: Vec<DatasetFile>,
    new: Vec<DatasetFile>,
) -> VersionDiff {
    let mut old: BTreeMap<String, DatasetFile> =
        old.into_iter().map(|f| (f.path.clone(), f)).collect();
    let mut out = VersionDiff {
        from,
        to,
        added: Vec::new(),
        removed: Vec::new(),
        changed: Vec::new(),
        bytes_added: 0,
        bytes_removed: 0,
    };
    for file in new {
        match old.remove(&file.path) {
            Some(was) if was.md5 == file.md5 => {}
            Some(was) => {
                out.bytes_added += file.size;
                out.bytes_removed += was.size;
                out.changed.push(ChangedFile {
                    path: file.path,
                    old_md5: was.md5,
                    new_md5: file.md5,
                    old_size: was.size,
                    new_size: file.size,
                });
            }
            None => {
                out.bytes_added += file.size;
                out.added.push(file);
            }
        }
    }
    out.bytes_removed += old.values().map(|f| f.size).sum::<i64>();
    out.removed = old.into_values().collect();
    out
}
