//! Three-way merges and reverts on trees in memory (libgit2): nothing is written until the
//! result is clean. A conflict is reported per file, with its hunks as ours / base / theirs.

use super::repo::failed;
use crate::error::Result;
use git2::{MergeFileOptions, MergeOptions, Oid, Repository};
use serde::Serialize;
use utoipa::ToSchema;

/// Why a file could not be merged.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(super) enum ConflictKind {
    /// Both sides changed the same lines: see `hunks`.
    Content,
    /// Both sides changed a binary file.
    Binary,
    /// One side deleted the file, the other changed it.
    Deleted,
}

/// One conflicting region of a file.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub(super) struct ConflictHunk {
    /// The line (from 1) of the target's (ours) version where the region starts.
    pub(super) line: usize,
    /// The target's (ours) lines.
    pub(super) ours: String,
    /// The lines as they were in the common ancestor.
    pub(super) base: String,
    /// The source's (theirs) lines.
    pub(super) theirs: String,
}

/// A file the merge could not settle.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(super) struct Conflict {
    pub(super) path: String,
    pub(super) kind: ConflictKind,
    pub(super) hunks: Vec<ConflictHunk>,
}

/// What merging gives.
pub(super) enum Merged {
    /// The target has everything already.
    UpToDate,
    /// The target can move to this commit (it is behind it).
    FastForward(Oid),
    /// The merged tree, clean.
    Tree(Oid),
    /// Files that conflict: nothing is written.
    Conflicts(Vec<Conflict>),
}

/// Merges commit `source` into commit `target`.
pub(super) fn merge(repo: &Repository, target: Oid, source: Oid) -> Result<Merged> {
    if target == source || repo.graph_descendant_of(target, source).map_err(failed)? {
        return Ok(Merged::UpToDate);
    }
    if repo.graph_descendant_of(source, target).map_err(failed)? {
        return Ok(Merged::FastForward(source));
    }
    let ours = repo.find_commit(target).map_err(failed)?;
    let theirs = repo.find_commit(source).map_err(failed)?;
    let mut options = MergeOptions::new();
    options.find_renames(true);
    let index = repo
        .merge_commits(&ours, &theirs, Some(&options))
        .map_err(failed)?;
    settle(repo, index)
}

/// Undoes commit `undo` on top of commit `onto` (a merge is undone against its first parent).
pub(super) fn revert(repo: &Repository, onto: Oid, undo: Oid) -> Result<Merged> {
    let ours = repo.find_commit(onto).map_err(failed)?;
    let undone = repo.find_commit(undo).map_err(failed)?;
    let mainline = u32::from(undone.parent_count() > 1);
    let index = repo
        .revert_commit(&undone, &ours, mainline, None)
        .map_err(failed)?;
    settle(repo, index)
}

fn settle(repo: &Repository, mut index: git2::Index) -> Result<Merged> {
    if index.has_conflicts() {
        return Ok(Merged::Conflicts(conflicts(repo, &index)?));
    }
    Ok(Merged::Tree(index.write_tree_to(repo).map_err(failed)?))
}

fn conflicts(repo: &Repository, index: &git2::Index) -> Result<Vec<Conflict>> {
    let mut out = Vec::new();
    for conflict in index.conflicts().map_err(failed)? {
        let conflict = conflict.map_err(failed)?;
        let path = [&conflict.our, &conflict.their, &conflict.ancestor]
            .into_iter()
            .flatten()
            .next()
            .map(|e| String::from_utf8_lossy(&e.path).into_owned())
            .unwrap_or_default();
        let (Some(ours), Some(theirs)) = (&conflict.our, &conflict.their) else {
            out.push(Conflict {
                path,
                kind: ConflictKind::Deleted,
                hunks: Vec::new(),
            });
            continue;
        };
        let binary = [ours.id, theirs.id]
            .into_iter()
            .any(|id| repo.find_blob(id).map(|b| b.is_binary()).unwrap_or(true));
        if binary {
            out.push(Conflict {
                path,
                kind: ConflictKind::Binary,
                hunks: Vec::new(),
            });
            continue;
        }
        // Added on both sides: merged against an empty ancestor.
        let empty;
        let ancestor = match &conflict.ancestor {
            Some(entry) => entry,
            None => {
                let id = repo.blob(b"").map_err(failed)?;
                empty = super::files::index_entry(&ours.path, id, ours.mode);
                &empty
            }
        };
        let mut options = MergeFileOptions::new();
        options
            .style_diff3(true)
            .ancestor_label("base")
            .our_label("ours")
            .their_label("theirs");
        let merged = repo
            .merge_file_from_index(ancestor, ours, theirs, Some(&mut options))
            .map_err(failed)?;
        out.push(Conflict {
            path,
            kind: ConflictKind::Content,
            hunks: hunks(&String::from_utf8_lossy(merged.content())),
        });
    }
    Ok(out)
}

/// The conflict regions of a file merged with diff3 markers.
fn hunks(merged: &str) -> Vec<ConflictHunk> {
    enum Part {
        Outside,
        Ours,
        Base,
        Theirs,
    }
    let mut part = Part::Outside;
    let mut line = 1;
    let mut hunks = Vec::new();
    let mut hunk = ConflictHunk::default();
    for text in merged.split_inclusive('\n') {
        let marker = |m: &str| {
            (text.starts_with(m) && text[7..].starts_with([' ', '\n', '\r']))
                || text.trim_end() == m
        };
        match part {
            Part::Outside if marker("<<<<<<<") => {
                hunk = ConflictHunk {
                    line,
                    ..ConflictHunk::default()
                };
                part = Part::Ours;
            }
            Part::Outside => line += 1,
            Part::Ours if marker("|||||||") => part = Part::Base,
            Part::Ours | Part::Base if marker("=======") => part = Part::Theirs,
            Part::Ours => {
                hunk.ours.push_str(text);
                line += 1;
            }
            Part::Base => hunk.base.push_str(text),
            Part::Theirs if marker(">>>>>>>") => {
                hunks.push(std::mem::take(&mut hunk));
                part = Part::Outside;
            }
            Part::Theirs => hunk.theirs.push_str(text),
        }
    }
    hunks
}

#[cfg(test)]
mod tests {
    use super::hunks;

    #[test]
    fn diff3_regions_become_hunks_with_their_line_in_ours() {
        let merged = "a\n<<<<<<< ours\nB1\n||||||| base\nb\n=======\nB2\n>>>>>>> theirs\nc\n";
        let found = hunks(merged);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].line, 2);
        assert_eq!(
            (
                found[0].ours.as_str(),
                found[0].base.as_str(),
                found[0].theirs.as_str()
            ),
            ("B1\n", "b\n", "B2\n")
        );
    }
}
