//! Smart HTTP for the real `git` client: `git clone http://HOST/git/<owner>/<project>.git`
//! (or `/git/<project id>.git`), fetch, pull, push, shallow clones. The password of HTTP Basic
//! auth is a Weft API token (the user name is ignored, as on the big forges); a request
//! without one gets a Basic challenge, so git asks for it. Only the project's owner and
//! admins reach a repository; anyone else is answered as if it did not exist.
//!
//! git's own wire implementation serves it (`git http-backend`, see `backend.rs`); a push runs
//! under the project's lock, and a push to the current branch moves the project's files to it
//! as git's `receive.denyCurrentBranch = updateInstead` does (refused by the pre-receive hook
//! when the files have uncommitted changes).

use super::backend::Cgi;
use super::service::Git;
use crate::auth::{Auth, Caller};
use crate::error::{Code, Error, Result};
use crate::workspace::Project;
use axum::Router;
use axum::extract::{FromRef, Request, State};
use axum::http::Method;
use axum::response::Response;
use axum::routing::any;

/// Changes shown in a refused push's message, at most.
const LISTED: usize = 5;

/// The `/git/...` routes (outside `/api/v1`: git's paths are git's).
pub(crate) fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    Git: FromRef<S>,
    Auth: FromRef<S>,
{
    Router::new().route("/git/{*path}", any(serve))
}

/// What a request asks of git.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Service {
    /// `GET info/refs?service=...`: the refs and capabilities.
    Refs,
    /// `POST git-upload-pack`: clone and fetch.
    UploadPack,
    /// `POST git-receive-pack`: push.
    ReceivePack,
}

/// The repository a path names (`owner/project` or a project id) and the service asked.
fn parse(path: &str) -> Option<(&str, Service, &'static str)> {
    let (repo, service, suffix) = [
        ("/info/refs", Service::Refs, "info/refs"),
        ("/git-upload-pack", Service::UploadPack, "git-upload-pack"),
        (
            "/git-receive-pack",
            Service::ReceivePack,
            "git-receive-pack",
        ),
    ]
    .into_iter()
    .find_map(|(end, service, suffix)| {
        path.strip_suffix(end).map(|repo| (repo, service, suffix))
    })?;
    let repo = repo.strip_suffix(".git").unwrap_or(repo).trim_matches('/');
    (!repo.is_empty()).then_some((repo, service, suffix))
}

/// The project the path names, if `caller` may reach it (404 otherwise, as for none).
async fn project(git: &Git, caller: &Caller, name: &str) -> Result<Project> {
    git.project_named(caller, name).await.map_err(|e| {
        if e.code == Code::ProjectNotFound {
            e.hint("clone /git/<owner>/<project>.git or /git/<project id>.git with your token")
        } else {
            e
        }
    })
}

async fn serve(
    State(git): State<Git>,
    State(auth): State<Auth>,
    axum::extract::Path(path): axum::extract::Path<String>,
    request: Request,
) -> Response {
    match handle(&git, &auth, &path, request).await {
        Ok(response) => response,
        Err(e) => crate::auth::challenged(e),
    }
}

async fn handle(git: &Git, auth: &Auth, path: &str, request: Request) -> Result<Response> {
    let (name, service, suffix) = parse(path).ok_or_else(|| {
        Error::new(Code::RouteNotFound, format!("no git route /git/{path}"))
            .hint("Weft serves git's smart HTTP protocol only: clone /git/<owner>/<project>.git")
    })?;
    let wanted = match service {
        Service::Refs => Method::GET,
        Service::UploadPack | Service::ReceivePack => Method::POST,
    };
    if request.method() != wanted {
        return Err(Error::new(
            Code::MethodNotAllowed,
            format!("{} is not allowed on /git/{path}", request.method()),
        ));
    }
    let caller = auth
        .sign_in(
            &crate::auth::basic_or_bearer_token(request.headers())?,
            crate::auth::peer(&request),
        )
        .await?;
    let project = project(git, &caller, name).await?;
    if let Err(missing) = git.backend() {
        return Err(Error::new(
            Code::GitUnavailable,
            format!("clone, fetch and push are unavailable: {missing}"),
        )
        .hint(
            "an admin installs git on Weft's host and restarts Weft; /api/v1/git works meanwhile",
        ));
    }
    let query = request.uri().query().unwrap_or_default().to_string();
    let pushing = service == Service::ReceivePack
        || (service == Service::Refs && query.contains("service=git-receive-pack"));
    let (parts, body) = request.into_parts();
    let remote_addr = parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip().to_string());
    let mut cgi = Cgi {
        binary: &git.config().binary,
        root: git.root(),
        hooks: super::hook::dir(git.root()),
        path_info: format!("/{}.git/{suffix}", project.id),
        method: parts.method.as_str(),
        query: &query,
        headers: &parts.headers,
        user: &caller.name,
        remote_addr,
        env: Vec::new(),
        max_body: if pushing {
            git.config().max_push_bytes
        } else {
            1 << 30
        },
    };
    if service != Service::ReceivePack {
        git.ready(&project).await?;
        return cgi.run(body, async {}).await;
    }
    let push = git.begin_push(project, &caller).await?;
    cgi.env
        .push(("WEFT_CURRENT_REF", push.current.clone().unwrap_or_default()));
    cgi.env.extend(push.limits.iter().cloned());
    if !push.uncommitted.is_empty() {
        let named: Vec<&str> = push
            .uncommitted
            .iter()
            .take(LISTED)
            .map(|c| c.path.as_str())
            .collect();
        let more = push.uncommitted.len().saturating_sub(LISTED);
        cgi.env.push((
            "WEFT_UNCOMMITTED",
            format!(
                "{}{}",
                named.join(", "),
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                }
            ),
        ));
    }
    let git = git.clone();
    cgi.run(body, async move {
        let project = push.project.id.clone();
        if let Err(e) = git.end_push(push).await {
            tracing::error!(%project, error = %e, "the project's files did not follow the push; they follow on the repository's next use");
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::{Service, parse};

    #[test]
    fn paths_name_a_repository_by_owner_and_name_or_by_id() {
        assert_eq!(
            parse("ada/my project.git/info/refs"),
            Some(("ada/my project", Service::Refs, "info/refs"))
        );
        assert_eq!(
            parse("0190-abc.git/git-upload-pack"),
            Some(("0190-abc", Service::UploadPack, "git-upload-pack"))
        );
        assert_eq!(
            parse("ada/p/git-receive-pack"),
            Some(("ada/p", Service::ReceivePack, "git-receive-pack"))
        );
        assert_eq!(parse("ada/p.git/HEAD"), None);
        assert_eq!(parse(".git/info/refs"), None);
    }
}
