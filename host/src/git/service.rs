//! The code versioning service: every change of a repository or of a project's files through
//! it happens under the project's lock, one at a time (one Weft host; several hosts sharing a
//! PostgreSQL database do not share these locks).
//!
//! Each write keeps this order, so that a crash at any point leaves the files equal to a
//! commit or as they were: objects first, then the branch, then `HEAD`, then the files, then
//! `refs/weft/files`. On a repository's first use after a start, files whose change was cut
//! short (`refs/weft/files` behind `HEAD`) are made equal to `HEAD`'s commit.

use super::changes::{self, Change, ChangeKind};
use super::config::GitConfig;
use super::files::{self, Applied, FILE_MODE, Flat, Snapshot, blocking, versioned};
use super::history::{self, CodeVersion, HistoryPage};
use super::limits::{self, Kept};
use super::merge::{self, Conflict, Merged};
use super::records;
use super::refs::{self, Branch};
use super::repo::{self, Head, failed};
use crate::auth::Caller;
use crate::error::{Code, Error, Result};
use crate::store::Store;
use crate::workspace::{Project, Projects, Sessions, paths};
use git2::{Index, Oid, Repository, Signature};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use utoipa::ToSchema;

/// Paths named in an error's details, at most.
const LISTED: usize = 100;

/// The versioning service, cheap to clone.
#[derive(Clone)]
pub struct Git {
    inner: Arc<Inner>,
}

struct Inner {
    root: PathBuf,
    config: GitConfig,
    store: Store,
    projects: Projects,
    sessions: Sessions,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Repositories checked since the start (leftovers cleared, cut-short changes completed).
    checked: Mutex<HashSet<String>>,
    /// git's version, or what is missing for smart HTTP.
    backend: std::result::Result<String, String>,
    /// Run after a push moves a project's current branch.
    push_hooks: Mutex<Vec<super::pushed::PushHook>>,
}

/// A file that differs from the current commit.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(super) struct FileChange {
    pub(super) path: String,
    pub(super) change: ChangeKind,
}

/// Who a commit is by: a Weft user, `<name>@weft.local`.
pub(super) struct Author {
    name: String,
    email: String,
}

impl Author {
    pub(super) fn of(name: &str) -> Self {
        let name: String = name.chars().filter(|c| !"<>\n\r".contains(*c)).collect();
        let name = if name.trim().is_empty() {
            "weft".into()
        } else {
            name
        };
        let local: String = name
            .trim()
            .chars()
            .map(|c| if c.is_whitespace() { '.' } else { c })
            .collect();
        Self {
            email: format!("{local}@weft.local"),
            name,
        }
    }

    fn signature(&self) -> Result<Signature<'static>> {
        Signature::now(&self.name, &self.email).map_err(failed)
    }
}

/// What the project's repository and files are at.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Status {
    /// The current branch; absent when a commit is checked out directly.
    pub(super) branch: Option<String>,
    /// The commit the files follow; absent before the first commit.
    pub(super) commit_id: Option<String>,
    /// Files that differ from it.
    pub(super) changes: Vec<FileChange>,
}

/// What a checkout did.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Checkout {
    /// The branch now current; absent when a commit was checked out directly.
    pub(super) branch: Option<String>,
    pub(super) commit_id: String,
    /// Files written and deleted to get there.
    pub(super) written: usize,
    pub(super) deleted: usize,
}

/// How a merge went.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(super) enum MergeOutcome {
    /// A merge commit was made.
    Merged,
    /// The target was behind the source and now points at it.
    FastForward,
    /// The target had everything already.
    UpToDate,
}

/// What a merge did.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct MergeResult {
    pub(super) result: MergeOutcome,
    /// The branch merged into.
    pub(super) branch: String,
    /// Where it is now.
    pub(super) commit_id: String,
    /// What changed on it.
    pub(super) changes: Vec<Change>,
}

/// A push under way: the project's lock and what it was before.
pub(super) struct Push {
    _lock: tokio::sync::OwnedMutexGuard<()>,
    pub(super) project: Project,
    /// The user pushing.
    pusher: String,
    pub(super) repo: PathBuf,
    before: Head,
    snapshot: Snapshot,
    /// Files that differ from the current commit (a push to the current branch is refused).
    pub(super) uncommitted: Vec<FileChange>,
    /// The current branch's full ref name.
    pub(super) current: Option<String>,
    /// What the `pre-receive` hook needs to hold a push to the project's limits.
    pub(super) limits: Vec<(&'static str, String)>,
}

/// The project's files against `HEAD`.
struct State {
    snapshot: Snapshot,
    /// The stored files versioning leaves as they are.
    kept: Kept,
    head: Head,
    /// Where the files differ from `HEAD`'s commit.
    changes: Vec<FileChange>,
}

fn uncommitted_error(changes: &[FileChange], action: &str) -> Error {
    let listed: Vec<&FileChange> = changes.iter().take(LISTED).collect();
    Error::new(
        Code::GitUncommittedChanges,
        format!(
            "the project has {} uncommitted change{}: {action} would lose them",
            changes.len(),
            if changes.len() == 1 { "" } else { "s" }
        ),
    )
    .details(serde_json::json!({ "changes": listed, "count": changes.len() }))
    .hint("commit them first (POST /api/v1/git/commit), or pass \"force\": true to discard them")
}

fn conflict_error(conflicts: Vec<Conflict>, what: &str) -> Error {
    Error::new(
        Code::GitConflict,
        format!("{what} conflicts in {} file(s); nothing was changed", conflicts.len()),
    )
    .details(serde_json::json!({ "conflicts": conflicts }))
    .hint("change the files on one side so they agree (or merge the other way), commit, and try again")
}

/// The files that differ between the commit's entries `flat` and the files `snapshot`.
fn uncommitted(flat: &Flat, snapshot: &Snapshot, ignore: &[String]) -> Vec<FileChange> {
    let mut out = Vec::new();
    for (path, (id, mode)) in flat {
        if *mode == 0o160000 || !versioned(path, ignore) {
            continue;
        }
        match snapshot.get(path) {
            Some(now) if now == id => {}
            Some(_) => out.push(FileChange {
                path: path.clone(),
                change: ChangeKind::Modified,
            }),
            None => out.push(FileChange {
                path: path.clone(),
                change: ChangeKind::Deleted,
            }),
        }
    }
    for path in snapshot.keys().filter(|p| !flat.contains_key(*p)) {
        out.push(FileChange {
            path: path.clone(),
            change: ChangeKind::Added,
        });
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// The tree of the files `snapshot` over commit entries `base`: entries the files cannot stand
/// for (submodules, paths not versioned) and those outside `only` are kept from `base`; a
/// file keeps its mode (executable, link) from `base`.
fn build_tree(
    repo: &Repository,
    base: &Flat,
    snapshot: &Snapshot,
    only: Option<&[String]>,
    ignore: &[String],
) -> Result<Oid> {
    let chosen = |path: &str| {
        only.is_none_or(|only| {
            only.iter().any(|q| {
                path == q || (path.starts_with(q.as_str()) && path[q.len()..].starts_with('/'))
            })
        })
    };
    let mut index = Index::new().map_err(failed)?;
    let mut add = |path: &str, id: Oid, mode: i32| {
        index.add(&files::index_entry(path.as_bytes(), id, mode as u32))
    };
    for (path, (id, mode)) in base {
        if !chosen(path) || *mode == 0o160000 || !versioned(path, ignore) {
            add(path, *id, *mode).map_err(failed)?;
        }
    }
    for (path, id) in snapshot.iter().filter(|(p, _)| chosen(p)) {
        let mode = match base.get(path) {
            Some((_, mode)) if *mode != 0o160000 => *mode,
            _ => FILE_MODE,
        };
        add(path, *id, mode).map_err(failed)?;
    }
    index.write_tree_to(repo).map_err(failed)
}

/// Makes commit `id` with `tree` on `parents`.
fn make_commit(
    repo: &Repository,
    author: &Author,
    message: &str,
    tree: Oid,
    parents: &[Oid],
) -> Result<Oid> {
    let signature = author.signature()?;
    let tree = repo.find_tree(tree).map_err(failed)?;
    let parents = parents
        .iter()
        .map(|id| repo.find_commit(*id))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(failed)?;
    let parents: Vec<&git2::Commit<'_>> = parents.iter().collect();
    let message = if message.ends_with('\n') {
        message.to_string()
    } else {
        format!("{message}\n")
    };
    repo.commit(None, &signature, &signature, &message, &tree, &parents)
        .map_err(failed)
}

fn tree_of(repo: &Repository, commit: Option<Oid>) -> Result<Option<Oid>> {
    commit
        .map(|id| repo.find_commit(id).map(|c| c.tree_id()))
        .transpose()
        .map_err(failed)
}

/// A commit's changes from `from` and its CodeVersion.
fn described(repo: &Repository, id: Oid, from: Option<Oid>) -> Result<CodeVersion> {
    let commit = repo.find_commit(id).map_err(failed)?;
    let mut version = history::version(repo, &commit, false)?;
    let diff = changes::diff(repo, tree_of(repo, from)?, Some(commit.tree_id()))?;
    version.changes = Some(changes::changes(&diff)?);
    Ok(version)
}

/// A commit request, checked.
pub(super) struct NewCommit {
    pub(super) message: String,
    pub(super) branch: Option<String>,
    pub(super) paths: Option<Vec<String>>,
}

impl Git {
    /// The service over the repositories in `config`'s folder (default `<data_dir>/git`).
    pub fn open(
        config: &GitConfig,
        data_dir: &Path,
        store: Store,
        projects: Projects,
        sessions: Sessions,
    ) -> anyhow::Result<Self> {
        let root = config.dir(data_dir);
        std::fs::create_dir_all(&root)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", root.display()))?;
        repo::sweep_inits(&root);
        super::hook::install(&root)?;
        let backend = super::backend::check(&config.binary);
        match &backend {
            Ok(version) => tracing::info!(%version, "git serves clone, fetch and push at /git/"),
            Err(missing) => tracing::warn!(
                "clone, fetch and push over HTTP answer 503 (30101) until git is installed: {missing}; \
                 the /api/v1/git API works without it"
            ),
        }
        Ok(Self {
            inner: Arc::new(Inner {
                root,
                config: config.clone(),
                store,
                projects,
                sessions,
                locks: Mutex::new(HashMap::new()),
                checked: Mutex::new(HashSet::new()),
                backend,
                push_hooks: Mutex::new(Vec::new()),
            }),
        })
    }

    /// The folder of the repositories.
    pub(super) fn root(&self) -> &Path {
        &self.inner.root
    }

    /// The `[git]` settings.
    pub(super) fn config(&self) -> &GitConfig {
        &self.inner.config
    }

    /// git's version, or what smart HTTP is missing.
    pub(super) fn backend(&self) -> std::result::Result<&String, &String> {
        self.inner.backend.as_ref()
    }

    /// The hooks run after a push.
    pub(super) fn push_hooks(&self) -> &Mutex<Vec<super::pushed::PushHook>> {
        &self.inner.push_hooks
    }

    /// The project `name` names (`<owner>/<project>`, owner by user name, or a project id), if
    /// `caller` may reach it (404 otherwise, as for none): how other tools' paths name one.
    pub(crate) async fn project_named(&self, caller: &Caller, name: &str) -> Result<Project> {
        self.inner.projects.named(caller, name, false).await
    }

    async fn lock(&self, project_id: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self.inner.locks.lock().expect("git locks poisoned");
            locks.retain(|_, l| Arc::strong_count(l) > 1);
            locks.entry(project_id.to_string()).or_default().clone()
        };
        lock.lock_owned().await
    }

    /// The caller's project, its lock held, and its repository ready: how every write begins.
    async fn open_locked(
        &self,
        caller: &Caller,
        project_id: &str,
    ) -> Result<(Project, tokio::sync::OwnedMutexGuard<()>, PathBuf)> {
        let project = self.inner.projects.get(caller, project_id).await?;
        let lock = self.lock(&project.id).await;
        let path = self.ready_locked(&project).await?;
        Ok((project, lock, path))
    }

    fn ignore(&self) -> &[String] {
        &self.inner.config.ignore
    }

    /// The repository of `project`, ready for reading: created (with a first commit of the
    /// files of a project older than versioning), checked after a start.
    pub(super) async fn ready(&self, project: &Project) -> Result<PathBuf> {
        let path = repo::path(&self.inner.root, &project.id);
        if self.is_checked(&project.id) && path.exists() {
            return Ok(path);
        }
        let _lock = self.lock(&project.id).await;
        self.ready_locked(project).await
    }

    /// [`Self::ready`] with the project's lock held.
    async fn ready_locked(&self, project: &Project) -> Result<PathBuf> {
        let root = self.inner.root.clone();
        let path = repo::path(&root, &project.id);
        if !path.exists() {
            let made = path.clone();
            blocking(move || repo::create(&root, &made)).await?;
            if !self
                .inner
                .projects
                .list_files(&project.id)
                .await?
                .is_empty()
            {
                let owner = records::user_name(&self.inner.store, &project.owner_id)
                    .await?
                    .unwrap_or_default();
                let request = NewCommit {
                    message: "The project's files as they were when versioning began".into(),
                    branch: None,
                    paths: None,
                };
                self.commit_locked(project, &path, Author::of(&owner), request)
                    .await?;
            }
        } else if !self.is_checked(&project.id) {
            let cleared = path.clone();
            blocking(move || {
                repo::clear_leftovers(&cleared);
                Ok(())
            })
            .await?;
            self.complete_files(project, &path).await?;
        }
        self.inner
            .checked
            .lock()
            .expect("checked poisoned")
            .insert(project.id.clone());
        Ok(path)
    }

    fn is_checked(&self, id: &str) -> bool {
        self.inner
            .checked
            .lock()
            .expect("checked poisoned")
            .contains(id)
    }

    /// Completes a change of the files a crash cut short: they become `HEAD`'s commit.
    async fn complete_files(&self, project: &Project, path: &Path) -> Result<()> {
        let at = path.to_path_buf();
        let (head, files_at) = blocking(move || {
            let repo = repo::open(&at)?;
            Ok((repo::head(&repo)?, repo::files_commit(&repo)))
        })
        .await?;
        let Some(commit) = head.commit.filter(|c| Some(*c) != files_at) else {
            return Ok(());
        };
        tracing::warn!(project = %project.id, %commit, "completing a change of the project's files that was cut short");
        self.move_files(project, path, None, commit).await?;
        Ok(())
    }

    /// Makes the project's files (now `current`, read if not given) equal to `commit`'s, records
    /// it, and gives a running session the new files.
    async fn move_files(
        &self,
        project: &Project,
        path: &Path,
        current: Option<Snapshot>,
        commit: Oid,
    ) -> Result<Applied> {
        let at = path.to_path_buf();
        let (tree, tracked) = blocking(move || {
            let repo = repo::open(&at)?;
            let tree = tree_of(&repo, Some(commit))?;
            // Files either commit tracks are the files' to change, ignored or not.
            let mut tracked = files::flatten(&repo, tree_of(&repo, repo::files_commit(&repo))?)?;
            tracked.extend(files::flatten(&repo, tree)?);
            Ok((tree, tracked))
        })
        .await?;
        let current = match current {
            Some(current) => current,
            None => self.snapshot(project, path, &tracked, false).await?.0,
        };
        let applied = files::apply(
            &self.inner.projects,
            &project.id,
            path,
            self.ignore(),
            &current,
            tree,
        )
        .await?;
        let at = path.to_path_buf();
        blocking(move || repo::set_files_commit(&repo::open(&at)?, commit)).await?;
        if let Err(e) = self
            .inner
            .sessions
            .deliver(
                &project.owner_id,
                &project.id,
                &applied.written,
                &applied.deleted,
            )
            .await
        {
            tracing::warn!(project = %project.id, error = %e, "the session did not get the new files");
        }
        Ok(applied)
    }

    async fn snapshot(
        &self,
        project: &Project,
        path: &Path,
        tracked: &Flat,
        write: bool,
    ) -> Result<(Snapshot, Kept)> {
        files::snapshot(
            &self.inner.projects,
            &project.id,
            path,
            self.ignore(),
            tracked,
            write,
        )
        .await
    }

    /// Syncs the project's running session back, so that its files are the project's.
    async fn sync_session(&self, project: &Project) -> Result<()> {
        self.inner
            .sessions
            .sync_if_open(&project.owner_id, &project.id)
            .await
    }

    /// The files, `HEAD`, and what differs between them (the lock held).
    async fn state(&self, project: &Project, path: &Path) -> Result<State> {
        let at = path.to_path_buf();
        let (head, flat) = blocking(move || {
            let repo = repo::open(&at)?;
            let head = repo::head(&repo)?;
            let flat = files::flatten(&repo, tree_of(&repo, head.commit)?)?;
            Ok((head, flat))
        })
        .await?;
        let (snapshot, kept) = self.snapshot(project, path, &flat, false).await?;
        let changes = uncommitted(&flat, &snapshot, self.ignore());
        Ok(State {
            snapshot,
            kept,
            head,
            changes,
        })
    }

    /// Commits the project's files (after syncing its session).
    pub(super) async fn commit(
        &self,
        caller: &Caller,
        project_id: &str,
        request: NewCommit,
    ) -> Result<CodeVersion> {
        let (project, _lock, path) = self.open_locked(caller, project_id).await?;
        self.sync_session(&project).await?;
        self.commit_locked(&project, &path, Author::of(&caller.name), request)
            .await
    }

    async fn commit_locked(
        &self,
        project: &Project,
        path: &Path,
        author: Author,
        request: NewCommit,
    ) -> Result<CodeVersion> {
        let at = path.to_path_buf();
        let wanted = request.branch.clone();
        let (head, branch, parent, base_tree, base) = blocking(move || {
            let repo = repo::open(&at)?;
            let head = repo::head(&repo)?;
            let branch = wanted
                .map(|b| format!("refs/heads/{b}"))
                .or(head.branch.clone());
            let parent = match &branch {
                Some(branch) => repo.refname_to_id(branch).ok().or(head.commit),
                None => head.commit,
            };
            let base_tree = tree_of(&repo, parent)?;
            let base = files::flatten(&repo, base_tree)?;
            Ok((head, branch, parent, base_tree, base))
        })
        .await?;
        let (snapshot, _) = self.snapshot(project, path, &base, true).await?;
        let at = path.to_path_buf();
        let ignore = self.ignore().to_vec();
        blocking(move || {
            let repo = repo::open(&at)?;
            let tree = build_tree(&repo, &base, &snapshot, request.paths.as_deref(), &ignore)?;
            let empty = base_tree.is_none() && repo.find_tree(tree).map_err(failed)?.is_empty();
            if Some(tree) == base_tree || empty {
                return Err(Error::new(
                    Code::GitNothingToCommit,
                    "nothing to commit: the project's files are as the last commit has them",
                )
                .hint("change, add or delete files first"));
            }
            let id = make_commit(&repo, &author, &request.message, tree, parent.as_slice())?;
            crate::crash::point("git-commit-objects", None);
            match &branch {
                Some(branch) => {
                    repo.reference(branch, id, true, "weft: commit")
                        .map_err(failed)?;
                    if head.branch.as_ref() != Some(branch) {
                        repo.set_head(branch).map_err(failed)?;
                    }
                }
                None => repo.set_head_detached(id).map_err(failed)?,
            }
            repo::set_files_commit(&repo, id)?;
            described(&repo, id, parent)
        })
        .await
    }

    /// The branch, commit and uncommitted changes of the project.
    pub(super) async fn status(&self, caller: &Caller, project_id: &str) -> Result<Status> {
        let (project, _lock, path) = self.open_locked(caller, project_id).await?;
        self.sync_session(&project).await?;
        let State { head, changes, .. } = self.state(&project, &path).await?;
        Ok(Status {
            branch: head.branch_name().map(str::to_string),
            commit_id: head.commit.map(|c| c.to_string()),
            changes,
        })
    }

    /// Runs `read` on the project's repository (no lock: refs change atomically).
    pub(super) async fn read<T: Send + 'static>(
        &self,
        caller: &Caller,
        project_id: &str,
        read: impl FnOnce(&Repository) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let project = self.inner.projects.get(caller, project_id).await?;
        let path = self.ready(&project).await?;
        blocking(move || read(&repo::open(&path)?)).await
    }

    /// Runs `write` on the project's repository with its lock held.
    async fn write<T: Send + 'static>(
        &self,
        caller: &Caller,
        project_id: &str,
        write: impl FnOnce(&Repository) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (_, _lock, path) = self.open_locked(caller, project_id).await?;
        blocking(move || write(&repo::open(&path)?)).await
    }

    /// A page of a branch's (default: the current one's) history.
    pub(super) async fn history(
        &self,
        caller: &Caller,
        project_id: &str,
        mut request: history::Request,
    ) -> Result<HistoryPage> {
        request.path = request
            .path
            .map(|p| paths::checked("path", &p))
            .transpose()?;
        self.read(caller, project_id, move |repo| {
            let tip = match &request.branch {
                Some(name) => {
                    refs::branch_tip(repo, name)?.ok_or_else(|| refs::not_a_branch(name))?
                }
                None => match repo::head(repo)?.commit {
                    Some(tip) => tip,
                    None => {
                        return Ok(HistoryPage {
                            commits: Vec::new(),
                            next_cursor: None,
                        });
                    }
                },
            };
            history::page(repo, tip, &request)
        })
        .await
    }

    /// The project's branches.
    pub(super) async fn branches(&self, caller: &Caller, project_id: &str) -> Result<Vec<Branch>> {
        self.read(caller, project_id, refs::list).await
    }

    /// Makes a branch.
    pub(super) async fn create_branch(
        &self,
        caller: &Caller,
        project_id: &str,
        name: String,
        from: Option<String>,
    ) -> Result<Branch> {
        self.write(caller, project_id, move |repo| {
            refs::create(repo, &name, from.as_deref())
        })
        .await
    }

    /// Deletes a branch (not the current one).
    pub(super) async fn delete_branch(
        &self,
        caller: &Caller,
        project_id: &str,
        name: String,
    ) -> Result<Branch> {
        self.write(caller, project_id, move |repo| refs::delete(repo, &name))
            .await
    }

    /// Makes the project's files those of `rev` (a branch becomes current; a commit is checked
    /// out detached). Uncommitted changes refuse it unless `force`.
    pub(super) async fn checkout(
        &self,
        caller: &Caller,
        project_id: &str,
        rev: String,
        force: bool,
    ) -> Result<Checkout> {
        let (project, _lock, path) = self.open_locked(caller, project_id).await?;
        self.sync_session(&project).await?;
        let State {
            snapshot,
            kept,
            changes,
            ..
        } = self.state(&project, &path).await?;
        if !changes.is_empty() && !force {
            return Err(uncommitted_error(&changes, "checking out another version"));
        }
        let at = path.clone();
        let (ignore, limits) = (self.ignore().to_vec(), self.inner.projects.limits());
        let (branch, commit) = blocking(move || {
            let repo = repo::open(&at)?;
            let (branch, commit) = match refs::branch_tip(&repo, &rev)? {
                Some(tip) => (Some(rev.clone()), tip),
                None => (None, refs::commit(&repo, &rev)?),
            };
            let flat = files::flatten(&repo, tree_of(&repo, Some(commit))?)?;
            limits::check(&repo, &flat, &ignore, limits, kept)?;
            match &branch {
                Some(name) => repo.set_head(&format!("refs/heads/{name}")),
                None => repo.set_head_detached(commit),
            }
            .map_err(failed)?;
            Ok((branch, commit))
        })
        .await?;
        let applied = self
            .move_files(&project, &path, Some(snapshot), commit)
            .await?;
        Ok(Checkout {
            branch,
            commit_id: commit.to_string(),
            written: applied.written.len(),
            deleted: applied.deleted.len(),
        })
    }

    /// Brings `branch` to `result` (a commit on it), moving the files along when it is current
    /// (if they fit the project's limits). The files must have no uncommitted changes then;
    /// they were read into `current`.
    async fn advance(
        &self,
        project: &Project,
        path: &Path,
        branch: &str,
        result: Oid,
        current: Option<(Snapshot, Kept)>,
    ) -> Result<()> {
        let at = path.to_path_buf();
        let full = format!("refs/heads/{branch}");
        let (ignore, limits) = (self.ignore().to_vec(), self.inner.projects.limits());
        let kept = current.as_ref().map(|(_, kept)| *kept);
        blocking(move || {
            let repo = repo::open(&at)?;
            if let Some(kept) = kept {
                let flat = files::flatten(&repo, tree_of(&repo, Some(result))?)?;
                limits::check(&repo, &flat, &ignore, limits, kept)?;
            }
            repo.reference(&full, result, true, "weft: merge")
                .map(|_| ())
                .map_err(failed)
        })
        .await?;
        if let Some((snapshot, _)) = current {
            self.move_files(project, path, Some(snapshot), result)
                .await?;
        }
        Ok(())
    }

    /// When `branch` is current: syncs the session and reads the files, refusing uncommitted
    /// changes (they would be overwritten).
    async fn clean_files_if_current(
        &self,
        project: &Project,
        path: &Path,
        branch: &str,
        action: &str,
    ) -> Result<Option<(Snapshot, Kept)>> {
        let at = path.to_path_buf();
        let head = blocking(move || repo::head(&repo::open(&at)?)).await?;
        if head.branch_name() != Some(branch) {
            return Ok(None);
        }
        self.sync_session(project).await?;
        let State {
            snapshot,
            kept,
            changes,
            ..
        } = self.state(project, path).await?;
        if !changes.is_empty() {
            return Err(uncommitted_error(&changes, action));
        }
        Ok(Some((snapshot, kept)))
    }

    /// Merges `source` (a branch or commit) into branch `target`: a fast-forward when it can,
    /// else a merge commit; conflicts change nothing.
    pub(super) async fn merge(
        &self,
        caller: &Caller,
        project_id: &str,
        source: String,
        target: String,
        message: Option<String>,
    ) -> Result<MergeResult> {
        let (project, _lock, path) = self.open_locked(caller, project_id).await?;
        let at = path.clone();
        let branch = target.clone();
        let source_name = source.clone();
        let (tip, from) = blocking(move || {
            let repo = repo::open(&at)?;
            let tip =
                refs::branch_tip(&repo, &branch)?.ok_or_else(|| refs::not_a_branch(&branch))?;
            Ok((tip, refs::commit(&repo, &source)?))
        })
        .await?;
        let current = self
            .clean_files_if_current(&project, &path, &target, "merging into the current branch")
            .await?;
        let at = path.clone();
        let author = Author::of(&caller.name);
        let message = message.unwrap_or_else(|| format!("Merge {source_name} into {target}"));
        let (outcome, result) = blocking(move || {
            let repo = repo::open(&at)?;
            match merge::merge(&repo, tip, from)? {
                Merged::UpToDate => Ok((MergeOutcome::UpToDate, tip)),
                Merged::FastForward(id) => Ok((MergeOutcome::FastForward, id)),
                Merged::Tree(tree) => Ok((
                    MergeOutcome::Merged,
                    make_commit(&repo, &author, &message, tree, &[tip, from])?,
                )),
                Merged::Conflicts(conflicts) => Err(conflict_error(conflicts, "the merge")),
            }
        })
        .await?;
        if result != tip {
            self.advance(&project, &path, &target, result, current)
                .await?;
        }
        let at = path.clone();
        let changes = blocking(move || {
            let repo = repo::open(&at)?;
            let diff = changes::diff(
                &repo,
                tree_of(&repo, Some(tip))?,
                tree_of(&repo, Some(result))?,
            )?;
            changes::changes(&diff)
        })
        .await?;
        Ok(MergeResult {
            result: outcome,
            branch: target,
            commit_id: result.to_string(),
            changes,
        })
    }

    /// Commits the undoing of commit `rev` on `branch` (default: the current one).
    pub(super) async fn revert(
        &self,
        caller: &Caller,
        project_id: &str,
        rev: String,
        branch: Option<String>,
    ) -> Result<CodeVersion> {
        let (project, _lock, path) = self.open_locked(caller, project_id).await?;
        let at = path.clone();
        let (branch, tip, undo) = blocking(move || {
            let repo = repo::open(&at)?;
            let branch = match branch {
                Some(branch) => branch,
                None => repo::head(&repo)?
                    .branch_name()
                    .map(str::to_string)
                    .ok_or_else(|| {
                        Error::invalid_field("branch", "no branch is current: name one")
                    })?,
            };
            let tip =
                refs::branch_tip(&repo, &branch)?.ok_or_else(|| refs::not_a_branch(&branch))?;
            Ok((branch, tip, refs::commit(&repo, &rev)?))
        })
        .await?;
        let current = self
            .clean_files_if_current(&project, &path, &branch, "reverting on the current branch")
            .await?;
        let at = path.clone();
        let author = Author::of(&caller.name);
        let on = branch.clone();
        let result = blocking(move || {
            let repo = repo::open(&at)?;
            match merge::revert(&repo, tip, undo)? {
                Merged::Tree(tree) if Some(tree) == tree_of(&repo, Some(tip))? => Err(Error::new(
                    Code::GitNothingToCommit,
                    format!("reverting {} changes nothing on '{on}'", short(undo)),
                )
                .hint("its changes are undone already")),
                Merged::Tree(tree) => {
                    let undone = repo.find_commit(undo).map_err(failed)?;
                    let message = format!(
                        "Revert \"{}\"\n\nThis reverts commit {undo}.\n",
                        undone.summary().unwrap_or_default()
                    );
                    make_commit(&repo, &author, &message, tree, &[tip])
                }
                Merged::Conflicts(conflicts) => Err(conflict_error(conflicts, "the revert")),
                Merged::UpToDate | Merged::FastForward(_) => {
                    Err(Error::internal("a revert cannot fast-forward"))
                }
            }
        })
        .await?;
        self.advance(&project, &path, &branch, result, current)
            .await?;
        let at = path.clone();
        blocking(move || described(&repo::open(&at)?, result, Some(tip))).await
    }

    /// Takes the project's lock for a push and reads what it is before: the current branch
    /// and the files' uncommitted changes (a push to the current branch is refused with them).
    pub(super) async fn begin_push(&self, project: Project, pusher: &Caller) -> Result<Push> {
        let lock = self.lock(&project.id).await;
        let repo = self.ready_locked(&project).await?;
        self.sync_session(&project).await?;
        let State {
            snapshot,
            kept,
            head: before,
            changes: uncommitted,
        } = self.state(&project, &repo).await?;
        Ok(Push {
            _lock: lock,
            pusher: pusher.user_id.clone(),
            current: before.branch.clone(),
            limits: limits::hook_env(self.inner.projects.limits(), kept, self.ignore()),
            project,
            repo,
            before,
            snapshot,
            uncommitted,
        })
    }

    /// After a push: if it moved the current branch, the files follow it (as git's
    /// `updateInstead`).
    pub(super) async fn end_push(&self, push: Push) -> Result<()> {
        crate::crash::point("git-push-received", None);
        let at = push.repo.clone();
        let after = blocking(move || repo::head(&repo::open(&at)?)).await?;
        if after.branch == push.before.branch
            && after.commit != push.before.commit
            && push.uncommitted.is_empty()
            && let Some(commit) = after.commit
        {
            self.move_files(&push.project, &push.repo, Some(push.snapshot), commit)
                .await?;
            self.announce_push(super::pushed::Pushed {
                project_id: push.project.id.clone(),
                user_id: push.pusher.clone(),
                before: push.before.commit.map(|c| c.to_string()),
                after: commit.to_string(),
            })
            .await;
        }
        Ok(())
    }

    /// Removes project `id`'s repository (the project is gone).
    pub(crate) async fn remove(&self, id: &str) {
        let _lock = self.lock(id).await;
        let path = repo::path(&self.inner.root, id);
        if path.exists()
            && let Err(e) = tokio::fs::remove_dir_all(&path).await
        {
            tracing::warn!(project = %id, error = %e, "cannot remove the repository of a deleted project");
        }
        self.inner
            .checked
            .lock()
            .expect("checked poisoned")
            .remove(id);
    }

    /// The commit `HEAD` names in `caller`'s project `project_id`; `None` before a first commit.
    pub(crate) async fn head_commit(
        &self,
        caller: &Caller,
        project_id: &str,
    ) -> Result<Option<String>> {
        self.read(caller, project_id, |repo| {
            Ok(repo::head(repo)?.commit.map(|c| c.to_string()))
        })
        .await
    }

    /// The files of `commit` in `caller`'s project `project_id`, as a tar stream.
    pub(crate) async fn archive(
        &self,
        caller: &Caller,
        project_id: &str,
        commit: &str,
    ) -> Result<futures::stream::BoxStream<'static, Result<bytes::Bytes>>> {
        let project = self.inner.projects.get(caller, project_id).await?;
        let path = self.ready(&project).await?;
        let commit = Oid::from_str(commit)
            .map_err(|_| Error::internal(format!("'{commit}' is no commit id")))?;
        Ok(super::archive::stream(path, commit))
    }

    /// Makes the repository of a new project `id` (empty, on `main`).
    pub(crate) async fn create(&self, id: &str) -> Result<()> {
        let root = self.inner.root.clone();
        let path = repo::path(&root, id);
        blocking(move || repo::create(&root, &path)).await
    }
}

fn short(id: Oid) -> String {
    id.to_string()[..10].to_string()
}

impl Git {
    /// The hook the projects service calls: a new project gets an empty repository, a deleted
    /// one loses its repository.
    pub(crate) fn project_hook(&self) -> crate::workspace::ProjectHook {
        let git = self.clone();
        Arc::new(move |event| {
            let git = git.clone();
            Box::pin(async move {
                match event {
                    crate::workspace::ProjectEvent::Created(id) => {
                        if let Err(e) = git.create(&id).await {
                            tracing::warn!(project = %id, error = %e, "cannot create the project's repository; it is made on first use");
                        }
                    }
                    crate::workspace::ProjectEvent::Deleted(id) => git.remove(&id).await,
                }
            })
        })
    }
}
