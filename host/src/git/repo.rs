//! The repositories on disk: one bare repository per project, `<dir>/<project id>.git`, made in
//! one step (initialised aside, then renamed into place) and brought back to a sound state
//! after a crash (stale lock files and push quarantines removed) before its first use.
//!
//! A repository's `HEAD` is the project's current branch (or a detached commit), and
//! `refs/weft/files` names the commit the project's files were last made equal to: when it
//! differs from `HEAD`'s commit, a change of the files was cut short and is completed (see
//! `service.rs`). `refs/weft/` is hidden from clients (`transfer.hideRefs`).

use crate::error::{Code, Error, Result};
use git2::{Oid, Repository, RepositoryInitOptions};
use std::path::{Path, PathBuf};

/// The ref naming the commit the project's files equal.
pub(super) const FILES_REF: &str = "refs/weft/files";

/// The branch a new repository starts on.
pub(super) const DEFAULT_BRANCH: &str = "main";

/// A libgit2 failure as an API error; its words stay in the log.
pub(super) fn failed(err: git2::Error) -> Error {
    tracing::error!(error = %err, "repository operation failed");
    Error::new(Code::GitFailed, "the repository operation failed").hint(
        "retry; if it persists, run `git fsck` on the project's repository in the data folder",
    )
}

/// Where the repository of project `id` is.
pub(super) fn path(root: &Path, id: &str) -> PathBuf {
    root.join(format!("{id}.git"))
}

/// Opens the repository at `path`.
pub(super) fn open(path: &Path) -> Result<Repository> {
    Repository::open_bare(path).map_err(failed)
}

/// Creates an empty repository at `path` (on branch `main`), unless one is there.
pub(super) fn create(root: &Path, path: &Path) -> Result<()> {
    if path.exists() {
        return Ok(());
    }
    let aside = root.join(format!(".init-{}", crate::store::new_id()));
    let made = (|| {
        let repo = Repository::init_opts(
            &aside,
            RepositoryInitOptions::new()
                .bare(true)
                .mkpath(true)
                .initial_head(DEFAULT_BRANCH),
        )?;
        let mut config = repo.config()?;
        // What clients see and may push: never Weft's own refs.
        config.set_str("transfer.hideRefs", "refs/weft")?;
        config.set_bool("http.receivepack", true)?;
        // A pushed object that `git fsck` would fault is refused.
        config.set_bool("receive.fsckObjects", true)?;
        // `git gc --auto` after a push runs inside the push, not in a process left behind.
        config.set_bool("gc.autoDetach", false)?;
        Ok::<_, git2::Error>(())
    })();
    if let Err(e) = made {
        let _ = std::fs::remove_dir_all(&aside);
        return Err(failed(e));
    }
    match std::fs::rename(&aside, path) {
        Ok(()) => Ok(()),
        // Made by another request at the same time: theirs stays.
        Err(_) if path.exists() => {
            let _ = std::fs::remove_dir_all(&aside);
            Ok(())
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&aside);
            Err(Error::new(
                Code::GitFailed,
                format!("cannot create the project's repository: {e}"),
            ))
        }
    }
}

/// Removes what a killed writer leaves in a repository: lock files (which would refuse every
/// later update) and a push's quarantine. Only while no writer runs (the project's lock held,
/// on its first use since Weft started).
pub(super) fn clear_leftovers(path: &Path) {
    fn locks(dir: &Path) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let p = entry.path();
            if p.is_dir() {
                locks(&p);
            } else if p.extension().is_some_and(|e| e == "lock") {
                tracing::warn!(file = %p.display(), "removing a lock file a stopped writer left");
                let _ = std::fs::remove_file(&p);
            }
        }
    }
    for name in [
        "HEAD.lock",
        "packed-refs.lock",
        "config.lock",
        "index.lock",
        "shallow.lock",
    ] {
        let _ = std::fs::remove_file(path.join(name));
    }
    locks(&path.join("refs"));
    if let Ok(entries) = std::fs::read_dir(path.join("objects")) {
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with("tmp_objdir-") || name.starts_with("incoming-") {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

/// Removes the folders of repositories whose creation a crash cut short.
pub(super) fn sweep_inits(root: &Path) {
    if let Ok(entries) = std::fs::read_dir(root) {
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(".init-") {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

/// Where `HEAD` is: a branch (`refs/heads/...`, maybe without commits yet) or a commit.
#[derive(Debug, Clone)]
pub(super) struct Head {
    /// The full ref name of the current branch; `None` when `HEAD` is detached.
    pub(super) branch: Option<String>,
    /// The commit `HEAD` is at; `None` on a branch without commits.
    pub(super) commit: Option<Oid>,
}

impl Head {
    /// The current branch's short name.
    pub(super) fn branch_name(&self) -> Option<&str> {
        self.branch
            .as_deref()
            .and_then(|b| b.strip_prefix("refs/heads/"))
    }
}

/// Where `HEAD` of `repo` is.
pub(super) fn head(repo: &Repository) -> Result<Head> {
    let reference = repo.find_reference("HEAD").map_err(failed)?;
    match reference.symbolic_target() {
        Some(branch) => Ok(Head {
            branch: Some(branch.to_string()),
            commit: repo.refname_to_id(branch).ok(),
        }),
        None => Ok(Head {
            branch: None,
            commit: reference.target(),
        }),
    }
}

/// The commit the project's files were last made equal to.
pub(super) fn files_commit(repo: &Repository) -> Option<Oid> {
    repo.refname_to_id(FILES_REF).ok()
}

/// Records that the project's files now equal `commit`.
pub(super) fn set_files_commit(repo: &Repository, commit: Oid) -> Result<()> {
    repo.reference(FILES_REF, commit, true, "weft: files")
        .map(|_| ())
        .map_err(failed)
}
