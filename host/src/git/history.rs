//! A branch's commits, newest first, a page at a time; with a path, only the commits that
//! changed it. The walk is git's `log` order (by commit time, a commit never before one that
//! descends from it, ties in the order found) and incremental: a page costs the commits it
//! shows and those skipped to reach it, not the whole history.

use super::changes::{self, Change};
use super::repo::failed;
use crate::error::{Code, Error, Result};
use chrono::{DateTime, Utc};
use git2::{Commit, Oid, Repository, Tree};
use serde::Serialize;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};
use std::path::Path;
use utoipa::ToSchema;

/// A commit: the seed's CodeVersion.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(super) struct CodeVersion {
    pub(super) commit_id: String,
    pub(super) message: String,
    /// The author's name.
    pub(super) author: String,
    pub(super) author_email: String,
    /// When it was authored.
    pub(super) timestamp: DateTime<Utc>,
    /// The commits it follows (two for a merge).
    pub(super) parents: Vec<String>,
    /// The files it changed against its first parent (`changes=true` on the history).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) changes: Option<Vec<Change>>,
}

/// What page of which history.
pub(super) struct Request {
    /// Default: the current branch.
    pub(super) branch: Option<String>,
    /// Only the commits that changed this file or folder.
    pub(super) path: Option<String>,
    pub(super) limit: usize,
    /// Where the page starts (a previous page's `next_cursor`).
    pub(super) cursor: Option<String>,
    /// Whether each commit lists its changes.
    pub(super) with_changes: bool,
}

/// One page of history.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct HistoryPage {
    pub(super) commits: Vec<CodeVersion>,
    /// Pass as `cursor` for the next page; absent on the last.
    pub(super) next_cursor: Option<String>,
}

/// `commit` as a CodeVersion, with its changes if asked.
pub(super) fn version(
    repo: &Repository,
    commit: &Commit<'_>,
    with_changes: bool,
) -> Result<CodeVersion> {
    let author = commit.author();
    let changes = if with_changes {
        let parent = commit.parents().next().map(|p| p.tree_id());
        let diff = changes::diff(repo, parent, Some(commit.tree_id()))?;
        Some(changes::changes(&diff)?)
    } else {
        None
    };
    Ok(CodeVersion {
        commit_id: commit.id().to_string(),
        message: commit.message().unwrap_or_default().to_string(),
        author: author.name().unwrap_or_default().to_string(),
        author_email: author.email().unwrap_or_default().to_string(),
        timestamp: DateTime::from_timestamp(author.when().seconds(), 0).unwrap_or_default(),
        parents: commit.parent_ids().map(|id| id.to_string()).collect(),
        changes,
    })
}

/// Where a page starts: the tip the walk began at (so new commits do not shift the pages)
/// and how many commits to skip.
fn parse_cursor(cursor: &str) -> Result<(Oid, usize)> {
    cursor
        .split_once('.')
        .and_then(|(tip, skip)| Some((Oid::from_str(tip).ok()?, skip.parse().ok()?)))
        .ok_or_else(|| {
            Error::new(Code::InvalidParameter, "the cursor is not one a page gave")
                .details(serde_json::json!({ "parameter": "cursor" }))
                .hint("pass next_cursor from the previous page, or none for the first")
        })
}

fn entry(tree: &Tree<'_>, path: &Path) -> Option<Oid> {
    tree.get_path(path).ok().map(|e| e.id())
}

/// Whether `commit` changed `path` (against every parent, as `git log -- path` simplifies).
fn touches(commit: &Commit<'_>, path: &Path) -> Result<bool> {
    let tree = commit.tree().map_err(failed)?;
    let here = entry(&tree, path);
    if commit.parent_count() == 0 {
        return Ok(here.is_some());
    }
    for parent in commit.parents() {
        if entry(&parent.tree().map_err(failed)?, path) == here {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Up to `request.limit` commits reachable from `tip` (or where the cursor says), newest
/// first.
pub(super) fn page(repo: &Repository, tip: Oid, request: &Request) -> Result<HistoryPage> {
    let limit = request.limit;
    let (tip, skip) = match request.cursor.as_deref() {
        Some(cursor) => parse_cursor(cursor)?,
        None => (tip, 0),
    };
    let first = repo.find_commit(tip).map_err(|_| {
        Error::new(
            Code::GitRefNotFound,
            format!("no commit '{tip}' in the project"),
        )
    })?;
    let path = request.path.as_deref().map(Path::new);
    let mut matched = 0;
    let mut commits = Vec::with_capacity(limit.min(1000));
    // Newest first; among equal times, the first found (a parent is found after its child).
    let mut queue = BinaryHeap::from([(first.time().seconds(), Reverse(0u64), tip)]);
    let mut seen = HashSet::from([tip]);
    let mut found = 0u64;
    while let Some((_, _, id)) = queue.pop() {
        let commit = repo.find_commit(id).map_err(failed)?;
        for parent in commit.parents() {
            if seen.insert(parent.id()) {
                found += 1;
                queue.push((parent.time().seconds(), Reverse(found), parent.id()));
            }
        }
        if let Some(path) = path
            && !touches(&commit, path)?
        {
            continue;
        }
        matched += 1;
        if matched <= skip {
            continue;
        }
        if commits.len() == limit {
            return Ok(HistoryPage {
                commits,
                next_cursor: Some(format!("{tip}.{}", matched - 1)),
            });
        }
        commits.push(version(repo, &commit, request.with_changes)?);
    }
    Ok(HistoryPage {
        commits,
        next_cursor: None,
    })
}
