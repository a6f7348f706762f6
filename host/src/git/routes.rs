//! The versioning API under `/api/v1/git`, with the seed's paths: the project is named in the
//! body or the query (`project_id`), as the seed's paths have no project segment.

use super::browse::{self, DiffView, TreeView};
use super::history::{CodeVersion, HistoryPage};
use super::refs::Branch;
use super::service::{Checkout, Git, MergeResult, NewCommit, Status};
use crate::api::extract::{Json, Query};
use crate::auth::Caller;
use crate::error::{Error, Result};
use crate::workspace::paths;
use axum::extract::{FromRef, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

/// Commit messages longer than this are refused.
const MAX_MESSAGE: usize = 64 << 10;

/// History entries per page by default, and at most.
const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 500;

/// Routes under `/api/v1`; all require a token and act on the caller's projects (an admin's:
/// anyone's).
pub(crate) fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    Git: FromRef<S>,
{
    OpenApiRouter::new()
        .routes(routes!(commit))
        .routes(routes!(history))
        .routes(routes!(create_branch, list_branches, delete_branch))
        .routes(routes!(status))
        .routes(routes!(diff))
        .routes(routes!(tree))
        .routes(routes!(blob))
        .routes(routes!(checkout))
        .routes(routes!(merge))
        .routes(routes!(revert))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CommitRequest {
    project_id: String,
    message: String,
    /// Default: the current branch. Another branch (made from the current commit if new)
    /// becomes the current one, as the files are now its commit.
    branch: Option<String>,
    /// Commit only these files or folders; the rest stays as the last commit has it.
    paths: Option<Vec<String>>,
}

/// Commit the project's files (its running session synced first). Nothing changed: 409.
#[utoipa::path(post, path = "/git/commit", operation_id = "git_commit", tag = "git", request_body = CommitRequest,
    responses((status = 201, body = CodeVersion), (status = 409, body = crate::api::ErrorBody),
              (status = 422, body = crate::api::ErrorBody)))]
async fn commit(
    State(git): State<Git>,
    caller: Caller,
    Json(body): Json<CommitRequest>,
) -> Result<(StatusCode, Json<CodeVersion>)> {
    if body.message.trim().is_empty() || body.message.len() > MAX_MESSAGE {
        return Err(Error::invalid_field(
            "message",
            "1 to 65536 bytes, not only spaces",
        ));
    }
    let branch = body
        .branch
        .as_deref()
        .map(super::refs::check_name)
        .transpose()?;
    let paths = body
        .paths
        .map(|list| {
            list.iter()
                .enumerate()
                .map(|(i, p)| paths::checked(&format!("paths[{i}]"), p))
                .collect::<Result<Vec<_>>>()
        })
        .transpose()?;
    let request = NewCommit {
        message: body.message,
        branch,
        paths,
    };
    let version = git.commit(&caller, &body.project_id, request).await?;
    Ok((StatusCode::CREATED, Json(version)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct HistoryQuery {
    project_id: String,
    /// Default: the current branch.
    branch: Option<String>,
    /// Only the commits that changed this file or folder.
    path: Option<String>,
    /// Commits per page (default 50, at most 500).
    limit: Option<usize>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Include each commit's changed files.
    changes: Option<bool>,
}

/// A branch's commits, newest first, a page at a time.
#[utoipa::path(get, path = "/git/history", operation_id = "git_history", tag = "git", params(HistoryQuery),
    responses((status = 200, body = HistoryPage), (status = 404, body = crate::api::ErrorBody)))]
async fn history(
    State(git): State<Git>,
    caller: Caller,
    Query(q): Query<HistoryQuery>,
) -> Result<Json<HistoryPage>> {
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    let request = super::history::Request {
        branch: q.branch,
        path: q.path,
        limit,
        cursor: q.cursor,
        with_changes: q.changes.unwrap_or(false),
    };
    Ok(Json(git.history(&caller, &q.project_id, request).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewBranch {
    project_id: String,
    /// A branch name by git's `check-ref-format` rules.
    name: String,
    /// Where it starts (a branch, tag or commit); default the current commit.
    from: Option<String>,
}

/// Make a branch.
#[utoipa::path(post, path = "/git/branch", operation_id = "git_create_branch", tag = "git", request_body = NewBranch,
    responses((status = 201, body = Branch), (status = 409, body = crate::api::ErrorBody),
              (status = 422, body = crate::api::ErrorBody)))]
async fn create_branch(
    State(git): State<Git>,
    caller: Caller,
    Json(body): Json<NewBranch>,
) -> Result<(StatusCode, Json<Branch>)> {
    let branch = git
        .create_branch(&caller, &body.project_id, body.name, body.from)
        .await?;
    Ok((StatusCode::CREATED, Json(branch)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ProjectQuery {
    project_id: String,
}

/// The project's branches.
#[utoipa::path(get, path = "/git/branch", operation_id = "git_list_branches", tag = "git", params(ProjectQuery),
    responses((status = 200, body = [Branch])))]
async fn list_branches(
    State(git): State<Git>,
    caller: Caller,
    Query(q): Query<ProjectQuery>,
) -> Result<Json<Vec<Branch>>> {
    Ok(Json(git.branches(&caller, &q.project_id).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct BranchQuery {
    project_id: String,
    name: String,
}

/// Delete a branch (not the current one); its commits stay reachable from others.
#[utoipa::path(delete, path = "/git/branch", operation_id = "git_delete_branch", tag = "git", params(BranchQuery),
    responses((status = 200, body = Branch), (status = 404, body = crate::api::ErrorBody),
              (status = 409, body = crate::api::ErrorBody)))]
async fn delete_branch(
    State(git): State<Git>,
    caller: Caller,
    Query(q): Query<BranchQuery>,
) -> Result<Json<Branch>> {
    Ok(Json(
        git.delete_branch(&caller, &q.project_id, q.name).await?,
    ))
}

/// The current branch and commit, and the files that differ from it.
#[utoipa::path(get, path = "/git/status", operation_id = "git_status", tag = "git", params(ProjectQuery),
    responses((status = 200, body = Status)))]
async fn status(
    State(git): State<Git>,
    caller: Caller,
    Query(q): Query<ProjectQuery>,
) -> Result<Json<Status>> {
    Ok(Json(git.status(&caller, &q.project_id).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct DiffQuery {
    project_id: String,
    /// Default: `to`'s first parent.
    from: Option<String>,
    /// Default: the current commit.
    to: Option<String>,
}

/// The files changed between two commits, and the unified diff.
#[utoipa::path(get, path = "/git/diff", operation_id = "git_diff", tag = "git", params(DiffQuery),
    responses((status = 200, body = DiffView), (status = 404, body = crate::api::ErrorBody)))]
async fn diff(
    State(git): State<Git>,
    caller: Caller,
    Query(q): Query<DiffQuery>,
) -> Result<Json<DiffView>> {
    let view = git
        .read(&caller, &q.project_id, move |repo| {
            browse::diff(repo, q.from.as_deref(), q.to.as_deref())
        })
        .await?;
    Ok(Json(view))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct TreeQuery {
    project_id: String,
    /// A branch, tag or commit; default the current commit.
    #[serde(rename = "ref")]
    #[param(rename = "ref")]
    rev: Option<String>,
    /// The folder to list; default the root.
    path: Option<String>,
    /// Every file below the folder instead of its entries.
    recursive: Option<bool>,
}

/// A folder of a commit.
#[utoipa::path(get, path = "/git/tree", operation_id = "git_tree", tag = "git", params(TreeQuery),
    responses((status = 200, body = TreeView), (status = 404, body = crate::api::ErrorBody)))]
async fn tree(
    State(git): State<Git>,
    caller: Caller,
    Query(q): Query<TreeQuery>,
) -> Result<Json<TreeView>> {
    let view = git
        .read(&caller, &q.project_id, move |repo| {
            browse::tree(
                repo,
                q.rev.as_deref(),
                q.path.as_deref(),
                q.recursive.unwrap_or(false),
            )
        })
        .await?;
    Ok(Json(view))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct BlobQuery {
    project_id: String,
    /// A branch, tag or commit; default the current commit.
    #[serde(rename = "ref")]
    #[param(rename = "ref")]
    rev: Option<String>,
    path: String,
}

/// One file's content at a commit.
#[utoipa::path(get, path = "/git/blob", operation_id = "git_blob", tag = "git", params(BlobQuery),
    responses((status = 200, content_type = "application/octet-stream"), (status = 404, body = crate::api::ErrorBody)))]
async fn blob(
    State(git): State<Git>,
    caller: Caller,
    Query(q): Query<BlobQuery>,
) -> Result<impl IntoResponse> {
    let path = paths::checked("path", &q.path)?;
    let (commit, content) = git
        .read(&caller, &q.project_id, move |repo| {
            browse::blob(repo, q.rev.as_deref(), &path)
        })
        .await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (
                header::HeaderName::from_static("x-weft-commit"),
                commit.to_string(),
            ),
        ],
        content,
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CheckoutRequest {
    project_id: String,
    /// A branch (it becomes current) or a commit (checked out on its own).
    #[serde(rename = "ref")]
    #[schema(rename = "ref")]
    rev: String,
    /// Discard uncommitted changes instead of refusing.
    #[serde(default)]
    force: bool,
}

/// Make the project's files a version's (its running session synced first, then given the
/// new files). Uncommitted changes refuse it (409, listed) unless `force`.
#[utoipa::path(post, path = "/git/checkout", operation_id = "git_checkout", tag = "git", request_body = CheckoutRequest,
    responses((status = 200, body = Checkout), (status = 409, body = crate::api::ErrorBody)))]
async fn checkout(
    State(git): State<Git>,
    caller: Caller,
    Json(body): Json<CheckoutRequest>,
) -> Result<Json<Checkout>> {
    Ok(Json(
        git.checkout(&caller, &body.project_id, body.rev, body.force)
            .await?,
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct MergeRequest {
    project_id: String,
    /// The branch or commit merged.
    source: String,
    /// The branch merged into.
    target: String,
    /// The merge commit's message.
    message: Option<String>,
}

/// Three-way merge of `source` into branch `target`; conflicts answer 409 with each file's
/// hunks (ours, base, theirs) and change nothing.
#[utoipa::path(post, path = "/git/merge", operation_id = "git_merge", tag = "git", request_body = MergeRequest,
    responses((status = 200, body = MergeResult), (status = 409, body = crate::api::ErrorBody)))]
async fn merge(
    State(git): State<Git>,
    caller: Caller,
    Json(body): Json<MergeRequest>,
) -> Result<Json<MergeResult>> {
    Ok(Json(
        git.merge(
            &caller,
            &body.project_id,
            body.source,
            body.target,
            body.message,
        )
        .await?,
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RevertRequest {
    project_id: String,
    /// The commit undone.
    commit: String,
    /// The branch the undoing is committed to; default the current one.
    branch: Option<String>,
}

/// Commit the undoing of a commit; conflicts answer 409 and change nothing.
#[utoipa::path(post, path = "/git/revert", operation_id = "git_revert", tag = "git", request_body = RevertRequest,
    responses((status = 201, body = CodeVersion), (status = 409, body = crate::api::ErrorBody)))]
async fn revert(
    State(git): State<Git>,
    caller: Caller,
    Json(body): Json<RevertRequest>,
) -> Result<(StatusCode, Json<CodeVersion>)> {
    let version = git
        .revert(&caller, &body.project_id, body.commit, body.branch)
        .await?;
    Ok((StatusCode::CREATED, Json(version)))
}
