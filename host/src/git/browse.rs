//! Reading versions without changing anything: the diff between two commits, a commit's tree
//! and one file's content at a commit.

use super::changes::{self, Change};
use super::refs;
use super::repo::{self, failed};
use crate::error::{Code, Error, Result};
use bytes::Bytes;
use git2::{ObjectType, Oid, Repository, TreeWalkMode, TreeWalkResult};
use serde::Serialize;
use std::path::Path;
use utoipa::ToSchema;

/// The unified diff shown at most, in bytes (the file list is always whole).
const MAX_PATCH: usize = 8 << 20;

/// The changes from one commit to another.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct DiffView {
    /// The commit compared from; absent for the empty tree before a first commit.
    pub(super) from: Option<String>,
    pub(super) to: String,
    pub(super) files: Vec<Change>,
    /// The changes as a unified diff (binary files as "Binary files ... differ").
    pub(super) patch: String,
    /// Whether `patch` was cut at 8 MiB.
    pub(super) truncated: bool,
}

/// What a tree entry is.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(super) enum EntryKind {
    File,
    Folder,
    Link,
    Submodule,
}

/// One entry of a commit's tree.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct TreeEntry {
    /// From the repository's root.
    pub(super) path: String,
    pub(super) kind: EntryKind,
    /// git's file mode, in octal (`100644`, `100755`, `120000`, `040000`, `160000`).
    pub(super) mode: String,
    /// The object id (blob, tree or submodule commit).
    pub(super) id: String,
    /// Bytes, for files and links.
    pub(super) size: Option<usize>,
}

/// A folder of a commit.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct TreeView {
    pub(super) commit_id: String,
    /// The folder listed (empty for the root).
    pub(super) path: String,
    pub(super) entries: Vec<TreeEntry>,
}

fn at_head(repo: &Repository, rev: Option<&str>) -> Result<Oid> {
    match rev {
        Some(rev) => refs::commit(repo, rev),
        None => repo::head(repo)?.commit.ok_or_else(refs::no_commits),
    }
}

fn no_path(path: &str, commit: Oid) -> Error {
    Error::new(
        Code::GitPathNotFound,
        format!("no '{path}' in commit {commit}"),
    )
    .details(serde_json::json!({ "path": path, "commit_id": commit.to_string() }))
    .hint("GET /api/v1/git/tree lists what the commit holds")
}

/// The changes from `from` (default: `to`'s first parent) to `to` (default: `HEAD`).
pub(super) fn diff(repo: &Repository, from: Option<&str>, to: Option<&str>) -> Result<DiffView> {
    let to = at_head(repo, to)?;
    let to_commit = repo.find_commit(to).map_err(failed)?;
    let from = match from {
        Some(rev) => Some(refs::commit(repo, rev)?),
        None => to_commit.parent_ids().next(),
    };
    let from_tree = from
        .map(|id| repo.find_commit(id).map(|c| c.tree_id()))
        .transpose()
        .map_err(failed)?;
    let diff = changes::diff(repo, from_tree, Some(to_commit.tree_id()))?;
    let (patch, truncated) = changes::unified(&diff, MAX_PATCH)?;
    Ok(DiffView {
        from: from.map(|id| id.to_string()),
        to: to.to_string(),
        files: changes::changes(&diff)?,
        patch,
        truncated,
    })
}

/// The entries of folder `path` (default the root) at `rev` (default `HEAD`); every file
/// below it with `recursive`.
pub(super) fn tree(
    repo: &Repository,
    rev: Option<&str>,
    path: Option<&str>,
    recursive: bool,
) -> Result<TreeView> {
    let commit = at_head(repo, rev)?;
    let root = repo
        .find_commit(commit)
        .and_then(|c| c.tree())
        .map_err(failed)?;
    let prefix = path.unwrap_or_default().trim_matches('/').to_string();
    let tree = if prefix.is_empty() {
        root
    } else {
        let entry = root
            .get_path(Path::new(&prefix))
            .map_err(|_| no_path(&prefix, commit))?;
        if entry.kind() != Some(ObjectType::Tree) {
            return Err(
                no_path(&prefix, commit).hint("that is a file: read it with GET /api/v1/git/blob")
            );
        }
        repo.find_tree(entry.id()).map_err(failed)?
    };
    let mut entries = Vec::new();
    let mut failure = None;
    tree.walk(TreeWalkMode::PreOrder, |dir, entry| {
        let mode = entry.filemode();
        let kind = match mode {
            0o040000 => EntryKind::Folder,
            0o120000 => EntryKind::Link,
            0o160000 => EntryKind::Submodule,
            _ => EntryKind::File,
        };
        let size = match kind {
            EntryKind::File | EntryKind::Link => match repo.find_blob(entry.id()) {
                Ok(blob) => Some(blob.size()),
                Err(e) => {
                    failure = Some(e);
                    return TreeWalkResult::Abort;
                }
            },
            _ => None,
        };
        let name = entry.name().unwrap_or_default();
        let full = [prefix.as_str(), dir.trim_end_matches('/'), name]
            .into_iter()
            .filter(|p| !p.is_empty())
            .collect::<Vec<_>>()
            .join("/");
        entries.push(TreeEntry {
            path: full,
            kind,
            mode: format!("{mode:06o}"),
            id: entry.id().to_string(),
            size,
        });
        if recursive || !matches!(kind, EntryKind::Folder) {
            TreeWalkResult::Ok
        } else {
            TreeWalkResult::Skip
        }
    })
    .map_err(failed)?;
    if let Some(e) = failure {
        return Err(failed(e));
    }
    if recursive {
        entries.retain(|e| !matches!(e.kind, EntryKind::Folder));
    }
    Ok(TreeView {
        commit_id: commit.to_string(),
        path: prefix,
        entries,
    })
}

/// The content of file `path` at `rev` (default `HEAD`).
pub(super) fn blob(repo: &Repository, rev: Option<&str>, path: &str) -> Result<(Oid, Bytes)> {
    let commit = at_head(repo, rev)?;
    let root = repo
        .find_commit(commit)
        .and_then(|c| c.tree())
        .map_err(failed)?;
    let entry = root
        .get_path(Path::new(path))
        .map_err(|_| no_path(path, commit))?;
    let blob = entry
        .to_object(repo)
        .ok()
        .and_then(|o| o.into_blob().ok())
        .ok_or_else(|| {
            no_path(path, commit).hint("that is a folder: list it with GET /api/v1/git/tree")
        })?;
    Ok((commit, Bytes::copy_from_slice(blob.content())))
}
