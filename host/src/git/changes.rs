//! What changed between two trees: per file (added, modified, deleted, with lines added and
//! removed, binary files named as such) and as a unified diff.

use super::repo::failed;
use crate::error::Result;
use git2::{Delta, Diff, DiffFormat, DiffOptions, Oid, Patch, Repository};
use serde::Serialize;
use utoipa::ToSchema;

/// How a file changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(super) enum ChangeKind {
    Added,
    Modified,
    Deleted,
}

/// One file's change.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(super) struct Change {
    pub(super) path: String,
    pub(super) change: ChangeKind,
    /// Lines added (0 for a binary file).
    pub(super) additions: usize,
    /// Lines removed (0 for a binary file).
    pub(super) deletions: usize,
    /// Whether git sees the file as binary (no lines to count or show).
    pub(super) binary: bool,
}

/// The diff from tree `from` to tree `to` (a missing tree is the empty one).
pub(super) fn diff<'r>(
    repo: &'r Repository,
    from: Option<Oid>,
    to: Option<Oid>,
) -> Result<Diff<'r>> {
    let tree = |id: Option<Oid>| id.map(|id| repo.find_tree(id)).transpose();
    let (from, to) = (tree(from).map_err(failed)?, tree(to).map_err(failed)?);
    let mut options = DiffOptions::new();
    options.ignore_submodules(false);
    repo.diff_tree_to_tree(from.as_ref(), to.as_ref(), Some(&mut options))
        .map_err(failed)
}

/// Every file `diff` changes, in path order.
pub(super) fn changes(diff: &Diff<'_>) -> Result<Vec<Change>> {
    let mut out = Vec::with_capacity(diff.deltas().len());
    for (index, delta) in diff.deltas().enumerate() {
        let change = match delta.status() {
            Delta::Added => ChangeKind::Added,
            Delta::Deleted => ChangeKind::Deleted,
            _ => ChangeKind::Modified,
        };
        let file = if change == ChangeKind::Deleted {
            delta.old_file()
        } else {
            delta.new_file()
        };
        let path = file
            .path()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let patch = Patch::from_diff(diff, index).map_err(failed)?;
        // Whether a file is binary is known once its content was loaded for the patch.
        let binary = patch.as_ref().is_none_or(|p| p.delta().flags().is_binary());
        let (additions, deletions) = match &patch {
            Some(patch) if !binary => {
                let (_, additions, deletions) = patch.line_stats().map_err(failed)?;
                (additions, deletions)
            }
            _ => (0, 0),
        };
        out.push(Change {
            path,
            change,
            additions,
            deletions,
            binary,
        });
    }
    Ok(out)
}

/// `diff` as unified text, at most `limit` bytes; the flag says whether it was cut.
pub(super) fn unified(diff: &Diff<'_>, limit: usize) -> Result<(String, bool)> {
    let mut text = Vec::new();
    let mut cut = false;
    diff.print(DiffFormat::Patch, |_, _, line| {
        let prefix: &[u8] = match line.origin() {
            c @ ('+' | '-' | ' ') => &[c as u8],
            _ => &[],
        };
        if text.len() + prefix.len() + line.content().len() > limit {
            cut = true;
            return false;
        }
        text.extend_from_slice(prefix);
        text.extend_from_slice(line.content());
        true
    })
    .or_else(|e| if cut { Ok(()) } else { Err(e) })
    .map_err(failed)?;
    Ok((String::from_utf8_lossy(&text).into_owned(), cut))
}
