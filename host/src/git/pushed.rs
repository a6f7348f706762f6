//! What other domains learn from and read in the projects' repositories: a hook run after a
//! push moves a project's current branch (data versions record the `.dvc` files it changed),
//! reads of files at a commit, and the commit a workflow run ran on. The repositories stay this module's.

use super::files::{blocking, flatten};
use super::repo::{self, failed};
use super::service::Git;
use crate::auth::Caller;
use crate::error::{Code, Result};
use bytes::Bytes;
use futures::future::BoxFuture;
use std::sync::Arc;

/// A push that moved a project's current branch.
#[derive(Debug, Clone)]
pub(crate) struct Pushed {
    pub(crate) project_id: String,
    /// The user who pushed.
    pub(crate) user_id: String,
    /// The branch's commit before (absent for the first).
    pub(crate) before: Option<String>,
    /// Its commit now.
    pub(crate) after: String,
}

/// Called after each [`Pushed`], before the push's lock is let go.
pub(crate) type PushHook = Arc<dyn Fn(Pushed) -> BoxFuture<'static, ()> + Send + Sync>;

/// A file at a commit: its path and content.
pub(crate) type FileAt = (String, Bytes);

impl Git {
    /// Runs `hook` after every push that moves a project's current branch from now on.
    pub(crate) fn on_push(&self, hook: PushHook) {
        self.push_hooks()
            .lock()
            .expect("push hooks poisoned")
            .push(hook);
    }

    pub(super) async fn announce_push(&self, pushed: Pushed) {
        let hooks = self
            .push_hooks()
            .lock()
            .expect("push hooks poisoned")
            .clone();
        for hook in hooks {
            hook(pushed.clone()).await;
        }
    }

    /// File `path` of the caller's project `project_id` at `rev` (default `HEAD`), with the
    /// commit's id.
    pub(crate) async fn file_at(
        &self,
        caller: &Caller,
        project_id: &str,
        rev: Option<String>,
        path: String,
    ) -> Result<(String, Bytes)> {
        self.read(caller, project_id, move |repo| {
            let (commit, content) = super::browse::blob(repo, rev.as_deref(), &path)?;
            Ok((commit.to_string(), content))
        })
        .await
    }

    /// File `path` of project `project_id` at commit `commit`, or `None` where it has no such
    /// file. No access check: for hooks, and for callers that checked access already.
    pub(crate) async fn file_in_commit(
        &self,
        project_id: &str,
        commit: String,
        path: String,
    ) -> Result<Option<Bytes>> {
        let repo_path = repo::path(self.root(), project_id);
        blocking(move || {
            let repo = repo::open(&repo_path)?;
            match super::browse::blob(&repo, Some(&commit), &path) {
                Ok((_, content)) => Ok(Some(content)),
                Err(e) if e.code == Code::GitPathNotFound => Ok(None),
                Err(e) => Err(e),
            }
        })
        .await
    }

    /// The files whose path `wanted` accepts that commit `after` of project `project_id`
    /// adds or changes since `before` (every one when `before` is absent), as they are at
    /// `after`. No access check: for hooks, which run for the pusher.
    pub(crate) async fn changed_files(
        &self,
        project_id: &str,
        before: Option<String>,
        after: String,
        wanted: fn(&str) -> bool,
    ) -> Result<Vec<FileAt>> {
        let path = repo::path(self.root(), project_id);
        blocking(move || {
            let repo = repo::open(&path)?;
            let tree = |rev: &str| {
                git2::Oid::from_str(rev)
                    .and_then(|id| repo.find_commit(id))
                    .map(|c| c.tree_id())
                    .map_err(failed)
            };
            let old = before.as_deref().map(tree).transpose()?;
            let (old, new) = (flatten(&repo, old)?, flatten(&repo, Some(tree(&after)?))?);
            let mut out = Vec::new();
            for (name, (id, _)) in new.iter().filter(|(name, _)| wanted(name)) {
                if old.get(name).is_some_and(|(was, _)| was == id) {
                    continue;
                }
                let blob = repo.find_blob(*id).map_err(failed)?;
                out.push((name.clone(), Bytes::copy_from_slice(blob.content())));
            }
            Ok(out)
        })
        .await
    }
}
