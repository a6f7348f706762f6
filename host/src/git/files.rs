//! The project's files as git sees them: which paths are versioned, their blob ids (hashed
//! only when their size or time changed since last seen, as git's index does), and making the
//! files equal to a tree.
//!
//! Files are read and written through the project storage (a local folder or S3), up to
//! [`BUDGET`] bytes in flight; libgit2 runs on a blocking thread fed through a channel.

use super::gitignore;
use super::limits::Kept;
use super::repo::failed;
use crate::error::{Code, Error, Result};
use crate::store::now_ms;
use crate::workspace::{Projects, paths};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use git2::{ObjectType, Oid, Repository, TreeWalkMode, TreeWalkResult};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// File bytes read but not yet hashed or written, at most (a larger file goes alone).
const BUDGET: usize = 64 << 20;

/// Files read or written at once.
const PARALLEL: usize = 16;

/// A file whose time is this close to when it was hashed may change again within the time's
/// precision unseen (S3 keeps seconds): it is hashed again next time.
const RACY_MS: i64 = 2_000;

/// The cache of blob ids by size and time, kept beside the repository (losing it costs time).
const CACHE_FILE: &str = "weft-files.cache";

/// Blob modes a project file can stand for.
pub(super) const FILE_MODE: i32 = 0o100644;

/// An index entry for `path` at blob `id` with `mode` (no file behind it: times and sizes 0).
pub(super) fn index_entry(path: &[u8], id: Oid, mode: u32) -> git2::IndexEntry {
    git2::IndexEntry {
        ctime: git2::IndexTime::new(0, 0),
        mtime: git2::IndexTime::new(0, 0),
        dev: 0,
        ino: 0,
        mode,
        uid: 0,
        gid: 0,
        file_size: 0,
        id,
        flags: 0,
        flags_extended: 0,
        path: path.to_vec(),
    }
}

/// Whether `path` (a project file's) is versioned: a clean relative path with no part named
/// like git's own folder (in any spelling `git fsck` refuses) or in `ignore`.
pub(super) fn versioned(path: &str, ignore: &[String]) -> bool {
    paths::check(path).as_deref() == Ok(path)
        && !path.split('/').any(|part| {
            let trimmed = part.trim_end_matches([' ', '.']);
            trimmed.eq_ignore_ascii_case(".git")
                || part.eq_ignore_ascii_case("git~1")
                || ignore.iter().any(|i| i == part)
        })
}

/// The project's versioned files: path -> blob id.
pub(super) type Snapshot = BTreeMap<String, Oid>;

/// A blob-carrying entry of a tree: path -> (blob id, mode).
pub(super) type Flat = BTreeMap<String, (Oid, i32)>;

/// Every entry of `tree` that is not a folder (blobs, links, submodules), by path.
pub(super) fn flatten(repo: &Repository, tree: Option<Oid>) -> Result<Flat> {
    let mut flat = Flat::new();
    let Some(tree) = tree else {
        return Ok(flat);
    };
    let tree = repo.find_tree(tree).map_err(failed)?;
    tree.walk(TreeWalkMode::PreOrder, |dir, entry| {
        if entry.kind() != Some(ObjectType::Tree)
            && let Some(name) = entry.name()
        {
            flat.insert(format!("{dir}{name}"), (entry.id(), entry.filemode()));
        }
        TreeWalkResult::Ok
    })
    .map_err(failed)?;
    Ok(flat)
}

#[derive(serde::Serialize, serde::Deserialize, Default)]
struct Cache(HashMap<String, (u64, i64, String)>);

fn load_cache(repo: &Path) -> Cache {
    std::fs::read(repo.join(CACHE_FILE))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

fn save_cache(repo: &Path, cache: &Cache) {
    let aside = repo.join(format!("{CACHE_FILE}.{}", crate::store::new_id()));
    let saved = serde_json::to_vec(cache)
        .map_err(std::io::Error::other)
        .and_then(|bytes| std::fs::write(&aside, bytes))
        .and_then(|()| std::fs::rename(&aside, repo.join(CACHE_FILE)));
    if let Err(e) = saved {
        let _ = std::fs::remove_file(&aside);
        tracing::warn!(error = %e, "cannot save the blob id cache");
    }
}

/// Reads the project's versioned files and gives each its blob id; with `write`, blobs not in
/// the repository yet are stored in it. A file the project's `.gitignore` files ignore is
/// left out unless `tracked` has it; what is left out is counted in the [`Kept`].
pub(super) async fn snapshot(
    projects: &Projects,
    project: &str,
    repo: &Path,
    ignore: &[String],
    tracked: &Flat,
    write: bool,
) -> Result<(Snapshot, Kept)> {
    let listed = projects.list_files(project).await?;
    let mut rules = Vec::new();
    for file in listed.iter().filter(|f| gitignore::is_gitignore(&f.path)) {
        if versioned(&file.path, ignore) {
            rules.push((
                file.path.clone(),
                projects.read_file(project, &file.path).await?,
            ));
        }
    }
    let candidates: Vec<String> = listed
        .iter()
        .filter(|f| !tracked.contains_key(&f.path) && versioned(&f.path, ignore))
        .map(|f| f.path.clone())
        .collect();
    let (cache, ignored) = {
        let repo = repo.to_path_buf();
        blocking(move || {
            let ignored = gitignore::ignored(&repo, rules, candidates)?;
            Ok((load_cache(&repo), ignored))
        })
        .await?
    };
    let mut snapshot = Snapshot::new();
    let mut kept = Kept::default();
    let mut fresh = Cache::default();
    let mut unknown = Vec::new();
    for file in listed {
        if !versioned(&file.path, ignore) || ignored.contains(&file.path) {
            kept.bytes += file.size;
            kept.files += 1;
            continue;
        }
        let time = file.modified.map(|t| t.timestamp_millis());
        let known = cache.0.get(&file.path).and_then(|(size, at, id)| {
            (Some(*at) == time && *size == file.size)
                .then(|| Oid::from_str(id).ok())
                .flatten()
        });
        match known {
            Some(id) => {
                fresh
                    .0
                    .insert(file.path.clone(), cache.0[&file.path].clone());
                snapshot.insert(file.path, id);
            }
            None => unknown.push((file.path, file.size, time)),
        }
    }
    let times: HashMap<String, (u64, Option<i64>)> = unknown
        .iter()
        .map(|(path, size, time)| (path.clone(), (*size, *time)))
        .collect();
    let store = write.then(|| repo.to_path_buf());
    let now = now_ms();
    for (path, id) in hash(projects, project, store, unknown).await? {
        if let Some((size, Some(time))) = times.get(&path)
            && *time < now - RACY_MS
        {
            fresh.0.insert(path.clone(), (*size, *time, id.to_string()));
        }
        snapshot.insert(path, id);
    }
    if write {
        // Blobs known from the cache may have been only hashed (a check for changes): the
        // commit about to name them needs them stored.
        let repo_path = repo.to_path_buf();
        let ids: Vec<(String, Oid)> = snapshot.iter().map(|(p, id)| (p.clone(), *id)).collect();
        let missing = blocking(move || {
            let repo = super::repo::open(&repo_path)?;
            let odb = repo.odb().map_err(failed)?;
            Ok(ids
                .into_iter()
                .filter(|(_, id)| !odb.exists(*id))
                .map(|(p, _)| p)
                .collect::<Vec<_>>())
        })
        .await?;
        if !missing.is_empty() {
            let again = missing.into_iter().map(|p| (p, 0, None)).collect();
            for (path, id) in hash(projects, project, Some(repo.to_path_buf()), again).await? {
                snapshot.insert(path, id);
            }
        }
    }
    let repo = repo.to_path_buf();
    blocking(move || {
        save_cache(&repo, &fresh);
        Ok(())
    })
    .await?;
    Ok((snapshot, kept))
}

/// Reads `files` and hashes them (storing the blobs in the repository at `store`, if given).
/// A file gone since it was listed is left out.
async fn hash(
    projects: &Projects,
    project: &str,
    store: Option<PathBuf>,
    files: Vec<(String, u64, Option<i64>)>,
) -> Result<Vec<(String, Oid)>> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(String, Bytes, OwnedSemaphorePermit)>(64);
    let worker = tokio::task::spawn_blocking(move || {
        let repo = store.as_deref().map(super::repo::open).transpose()?;
        let mut out = Vec::new();
        while let Some((path, bytes, permit)) = rx.blocking_recv() {
            let id = match &repo {
                Some(repo) => repo.blob(&bytes),
                None => Oid::hash_object(ObjectType::Blob, &bytes),
            }
            .map_err(failed)?;
            drop(permit);
            out.push((path, id));
        }
        Ok::<_, Error>(out)
    });
    let budget = Arc::new(Semaphore::new(BUDGET));
    let mut reads = futures::stream::iter(files)
        .map(|(path, size, _)| {
            let (budget, projects, project) =
                (budget.clone(), projects.clone(), project.to_string());
            async move {
                let permit = budget
                    .acquire_many_owned(size.min(BUDGET as u64) as u32)
                    .await
                    .map_err(|_| Error::internal("the read budget closed"))?;
                match projects.read_file(&project, &path).await {
                    Ok(bytes) => Ok(Some((path, bytes, permit))),
                    Err(e) if e.code == Code::ProjectFileNotFound => Ok(None),
                    Err(e) => Err(e),
                }
            }
        })
        .buffer_unordered(PARALLEL);
    let read = async {
        while let Some(file) = reads.next().await {
            if let Some(file) = file?
                && tx.send(file).await.is_err()
            {
                break;
            }
        }
        drop(tx);
        Ok::<_, Error>(())
    }
    .await;
    let hashed = worker
        .await
        .map_err(|e| Error::internal(format!("the hashing thread failed: {e}")))?;
    read?;
    hashed
}

/// What making the files equal to a tree did.
#[derive(Debug, Default, Clone)]
pub(super) struct Applied {
    pub(super) written: Vec<String>,
    pub(super) deleted: Vec<String>,
}

/// Makes the project's files (now `current`) equal to tree `target`: files it lacks are
/// deleted, files that differ written (each replaced in one step). Paths the project cannot
/// hold (not versioned, submodules) are left out.
pub(super) async fn apply(
    projects: &Projects,
    project: &str,
    repo: &Path,
    ignore: &[String],
    current: &Snapshot,
    target: Option<Oid>,
) -> Result<Applied> {
    let wanted = {
        let repo = repo.to_path_buf();
        blocking(move || {
            let repo = super::repo::open(&repo)?;
            flatten(&repo, target)
        })
        .await?
    };
    let wanted: BTreeMap<String, Oid> = wanted
        .into_iter()
        .filter(|(path, (_, mode))| *mode != 0o160000 && versioned(path, ignore))
        .map(|(path, (id, _))| (path, id))
        .collect();
    let deleted: Vec<String> = current
        .keys()
        .filter(|p| !wanted.contains_key(*p))
        .cloned()
        .collect();
    let written: Vec<(String, Oid)> = wanted
        .iter()
        .filter(|(p, id)| current.get(*p) != Some(id))
        .map(|(p, id)| (p.clone(), *id))
        .collect();
    futures::stream::iter(deleted.clone())
        .map(|path| {
            let (projects, project) = (projects.clone(), project.to_string());
            async move {
                match projects.remove_file(&project, &path).await {
                    Err(e) if e.code != Code::ProjectFileNotFound => Err(e),
                    _ => Ok(()),
                }
            }
        })
        .buffer_unordered(PARALLEL)
        .try_collect::<Vec<()>>()
        .await?;
    crate::crash::point("git-files-half", None);
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<(String, Bytes)>>(PARALLEL);
    let reader = {
        let repo = repo.to_path_buf();
        let written = written.clone();
        tokio::task::spawn_blocking(move || {
            let read = (|| {
                let repo = super::repo::open(&repo)?;
                for (path, id) in written {
                    let blob = repo.find_blob(id).map_err(failed)?;
                    let bytes = Bytes::copy_from_slice(blob.content());
                    if tx.blocking_send(Ok((path, bytes))).is_err() {
                        break;
                    }
                }
                Ok(())
            })();
            if let Err(e) = read {
                let _ = tx.blocking_send(Err(e));
            }
        })
    };
    let stored = projects
        .store_files(project, tokio_stream_of(rx), PARALLEL)
        .await;
    let _ = reader.await;
    stored?;
    Ok(Applied {
        written: written.into_iter().map(|(p, _)| p).collect(),
        deleted,
    })
}

fn tokio_stream_of<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> futures::stream::BoxStream<'static, T> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx)).boxed()
}

/// Runs `work` (libgit2, file system) on a blocking thread.
pub(super) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::internal(format!("a repository task failed: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::versioned;

    #[test]
    fn git_folders_ignored_names_and_unclean_paths_are_not_versioned() {
        let ignore = vec!["node_modules".to_string()];
        assert!(versioned("src/main.py", &ignore));
        assert!(versioned(".gitignore", &ignore));
        for path in [
            ".git/config",
            "a/.GIT/x",
            "a/.git./x",
            "GIT~1/x",
            "web/node_modules/x.js",
            "a//b",
            "../x",
        ] {
            assert!(!versioned(path, &ignore), "{path} is versioned");
        }
    }
}
