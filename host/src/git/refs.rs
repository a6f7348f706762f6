//! Branches and revisions: names checked by git's `check-ref-format` rules (libgit2's), the
//! branches listed, made and deleted, a revision (`main`, a commit id, `main~2`) resolved.

use super::repo::{self, failed};
use crate::error::{Code, Error, Result};
use git2::{BranchType, ErrorCode, Oid, Repository};
use serde::Serialize;
use utoipa::ToSchema;

/// A branch of the project's repository.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(super) struct Branch {
    pub(super) name: String,
    /// The commit it is at.
    pub(super) commit_id: String,
    /// Whether it is the project's current branch (the one its files follow).
    pub(super) current: bool,
}

/// `name` as a branch name, or why git refuses it.
pub(super) fn check_name(name: &str) -> Result<String> {
    let valid = git2::Branch::name_is_valid(name).unwrap_or(false)
        && git2::Reference::is_valid_name(&format!("refs/heads/{name}"));
    if valid {
        Ok(name.to_string())
    } else {
        Err(Error::new(
            Code::GitInvalidRefName,
            format!("'{name}' is not a valid branch name"),
        )
        .details(serde_json::json!({ "name": name }))
        .hint(
            "git's check-ref-format rules: no spaces, '..', '~', '^', ':', '?', '*', '[', '\\', \
             no leading '-' or '.', no trailing '/', '.' or '.lock', not 'HEAD'",
        ))
    }
}

/// The commit `rev` names (a branch, a tag, a commit id or a revision like `main~1`).
pub(super) fn commit(repo: &Repository, rev: &str) -> Result<Oid> {
    let missing = || {
        Error::new(
            Code::GitRefNotFound,
            format!("no commit '{rev}' in the project"),
        )
        .details(serde_json::json!({ "ref": rev }))
        .hint("name a branch, a tag or a commit id (GET /api/v1/git/history lists them)")
    };
    if rev.is_empty() || rev.len() > 256 || rev.starts_with('-') {
        return Err(missing());
    }
    // Whatever libgit2 cannot resolve to a commit (unknown, ambiguous, malformed, a tree) is
    // not a commit of the project.
    repo.revparse_single(rev)
        .and_then(|o| o.peel_to_commit())
        .map(|c| c.id())
        .map_err(|_| missing())
}

/// The commit at the tip of branch `name`, if it exists.
pub(super) fn branch_tip(repo: &Repository, name: &str) -> Result<Option<Oid>> {
    if !git2::Branch::name_is_valid(name).unwrap_or(false) {
        return Ok(None);
    }
    match repo.find_branch(name, BranchType::Local) {
        Ok(branch) => Ok(branch.get().target()),
        Err(e) if e.code() == ErrorCode::NotFound => Ok(None),
        Err(e) => Err(failed(e)),
    }
}

/// Every branch, by name.
pub(super) fn list(repo: &Repository) -> Result<Vec<Branch>> {
    let head = repo::head(repo)?;
    let mut out = Vec::new();
    for branch in repo.branches(Some(BranchType::Local)).map_err(failed)? {
        let (branch, _) = branch.map_err(failed)?;
        let (Some(name), Some(id)) = (
            branch.name().ok().flatten().map(str::to_string),
            branch.get().target(),
        ) else {
            continue;
        };
        out.push(Branch {
            current: head.branch_name() == Some(name.as_str()),
            commit_id: id.to_string(),
            name,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Makes branch `name` at the commit `from` names (default `HEAD`'s).
pub(super) fn create(repo: &Repository, name: &str, from: Option<&str>) -> Result<Branch> {
    let name = check_name(name)?;
    if branch_tip(repo, &name)?.is_some() {
        return Err(
            Error::new(Code::GitBranchExists, format!("the branch '{name}' exists"))
                .details(serde_json::json!({ "name": name }))
                .hint("pick another name, or delete it first"),
        );
    }
    let at = match from {
        Some(rev) => commit(repo, rev)?,
        None => repo::head(repo)?.commit.ok_or_else(no_commits)?,
    };
    let target = repo.find_commit(at).map_err(failed)?;
    repo.branch(&name, &target, false).map_err(failed)?;
    Ok(Branch {
        name,
        commit_id: at.to_string(),
        current: false,
    })
}

/// Deletes branch `name` (never the current one).
pub(super) fn delete(repo: &Repository, name: &str) -> Result<Branch> {
    let head = repo::head(repo)?;
    if head.branch_name() == Some(name) {
        return Err(Error::new(
            Code::GitCurrentBranch,
            format!("'{name}' is the project's current branch"),
        )
        .hint("check out another branch first (POST /api/v1/git/checkout)"));
    }
    let mut branch = repo
        .find_branch(name, BranchType::Local)
        .map_err(|_| not_a_branch(name))?;
    let commit_id = branch
        .get()
        .target()
        .map(|id| id.to_string())
        .unwrap_or_default();
    branch.delete().map_err(failed)?;
    Ok(Branch {
        name: name.into(),
        commit_id,
        current: false,
    })
}

/// The refusal of a branch that does not exist.
pub(super) fn not_a_branch(name: &str) -> Error {
    Error::new(
        Code::GitRefNotFound,
        format!("no branch '{name}' in the project"),
    )
    .details(serde_json::json!({ "branch": name }))
    .hint("GET /api/v1/git/branch lists the branches")
}

/// The refusal of a request that needs a commit in a repository with none.
pub(super) fn no_commits() -> Error {
    Error::new(Code::GitEmpty, "the project has no commits yet")
        .hint("commit its files first (POST /api/v1/git/commit)")
}
