//! The project's `.gitignore` files, read as git reads them in a working tree: a file they
//! match is not versioned unless a commit already tracks it (git never untracks a file on its
//! own either), so a commit leaves it out, `status` does not list it and a checkout leaves it
//! where it is.
//!
//! libgit2 applies the rules (patterns, negations, folders, nested files and their order) on
//! a scratch working tree holding the `.gitignore` files alone: the repository is bare and
//! the project's files may be in a bucket. One difference from git: libgit2 reads a negation
//! (`!keep.log`) as re-including only what a pattern earlier in the same file excluded. The host's own excludes (`core.excludesFile`, the
//! user's `~/.config/git/ignore`) do not apply: they are not the project's.

use super::repo::failed;
use crate::error::{Error, Result};
use bytes::Bytes;
use std::collections::HashSet;
use std::path::Path;

/// Whether `path` (a project file's) is a `.gitignore` file.
pub(super) fn is_gitignore(path: &str) -> bool {
    path.rsplit('/').next() == Some(".gitignore")
}

/// Of `candidates`, those the `.gitignore` files `rules` (path, content) ignore, by the
/// repository at `repo`'s rules.
pub(super) fn ignored(
    repo: &Path,
    rules: Vec<(String, Bytes)>,
    candidates: Vec<String>,
) -> Result<HashSet<String>> {
    if rules.is_empty() || candidates.is_empty() {
        return Ok(HashSet::new());
    }
    let scratch = tempfile::Builder::new()
        .prefix("weft-gitignore-")
        .tempdir()
        .map_err(|e| Error::internal(format!("cannot make a scratch folder: {e}")))?;
    let (tree, config) = (scratch.path().join("tree"), scratch.path().join("config"));
    let mut written = std::fs::write(&config, "[core]\n\texcludesFile = /dev/null\n");
    for (path, content) in &rules {
        let at = tree.join(path);
        written = written
            .and_then(|()| at.parent().map_or(Ok(()), std::fs::create_dir_all))
            .and_then(|()| std::fs::write(&at, content));
    }
    written
        .map_err(|e| Error::internal(format!("cannot write the .gitignore rules aside: {e}")))?;
    let repo = super::repo::open(repo)?;
    repo.config()
        .and_then(|mut c| c.add_file(&config, git2::ConfigLevel::App, true))
        .map_err(failed)?;
    repo.set_workdir(&tree, false).map_err(failed)?;
    let mut out = HashSet::new();
    for path in candidates {
        if repo.is_path_ignored(&path).map_err(failed)? {
            out.insert(path);
        }
    }
    Ok(out)
}
