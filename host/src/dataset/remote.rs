//! The DVC remote over HTTP: `dvc remote add -d weft http://HOST:8080/dvc/<owner>/<project>`
//! (or `/dvc/<project id>`). DVC's http remote (dvc-http over fsspec's HTTPFileSystem) asks
//! for objects in DVC 3's layout below the URL: `GET` to download and to ask whether one
//! exists (status, push), `HEAD` for a size, `POST` (or `PUT` with `method = PUT`) with a
//! chunked body to upload. It cannot list or delete, so `dvc gc -c` is not available on http
//! remotes (DVC refuses it in the client).
//!
//! Auth is DVC's own `auth = basic` with the Weft token as the password (any user name), or
//! `auth = custom` with `custom_auth_header = Authorization` and `password = Bearer <token>`.
//! Only the project's owner and admins reach its remote; anyone else gets 404, as for none.

use super::objects::{Oid, Stored};
use super::service::Datasets;
use crate::auth::Auth;
use crate::error::{Code, Error, Result};
use crate::git::Git;
use axum::Router;
use axum::body::Body;
use axum::extract::{FromRef, Path, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::response::Response;
use axum::routing::any;

/// The `/dvc/...` routes (outside `/api/v1`: the paths are DVC's).
pub(crate) fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    Datasets: FromRef<S>,
    Git: FromRef<S>,
    Auth: FromRef<S>,
{
    Router::new().route("/dvc/{*path}", any(serve))
}

/// The project a path names and the object in it.
fn parse(path: &str) -> Result<(&str, Oid)> {
    let no_route = || {
        Error::new(Code::RouteNotFound, format!("no DVC object at /dvc/{path}")).hint(
            "Weft's DVC remote is http://HOST/dvc/<owner>/<project> and serves DVC 3's layout (files/md5/..)",
        )
    };
    let (project, object) = path.split_once("/files/md5/").ok_or_else(no_route)?;
    let oid = Oid::from_path(&format!("files/md5/{object}")).ok_or_else(no_route)?;
    let project = project.trim_matches('/');
    if project.is_empty() {
        return Err(no_route());
    }
    Ok((project, oid))
}

async fn serve(
    State(datasets): State<Datasets>,
    State(git): State<Git>,
    State(auth): State<Auth>,
    Path(path): Path<String>,
    request: Request,
) -> Response {
    match handle(&datasets, &git, &auth, &path, request).await {
        Ok(response) => response,
        Err(e) => crate::auth::challenged(e),
    }
}

async fn handle(
    datasets: &Datasets,
    git: &Git,
    auth: &Auth,
    path: &str,
    request: Request,
) -> Result<Response> {
    let (name, oid) = parse(path)?;
    let method = request.method().clone();
    if ![Method::GET, Method::HEAD, Method::POST, Method::PUT].contains(&method) {
        return Err(Error::new(
            Code::MethodNotAllowed,
            format!("{method} is not allowed on a DVC object"),
        ));
    }
    let token = crate::auth::basic_or_bearer_token(request.headers())?;
    let caller = auth.sign_in(&token, crate::auth::peer(&request)).await?;
    let project = git.project_named(&caller, name).await?;
    let objects = datasets.objects();
    let response = Response::builder();
    let response = match method {
        Method::HEAD => {
            let size = objects
                .size(&project.id, &oid)
                .await?
                .ok_or_else(|| super::objects::not_found(&oid))?;
            response
                .header(header::CONTENT_LENGTH, size)
                .header(header::CONTENT_TYPE, "application/octet-stream")
                .body(Body::empty())
        }
        Method::GET => {
            let (size, chunks) = objects.read(&project.id, &oid).await?;
            response
                .header(header::CONTENT_LENGTH, size)
                .header(header::CONTENT_TYPE, "application/octet-stream")
                .body(Body::from_stream(chunks))
        }
        _ => {
            let body = request.into_body().into_data_stream();
            let stored = objects
                .write(&caller, &project.id, &project.owner_id, &oid, body)
                .await?;
            let status = match stored {
                Stored::Created => StatusCode::CREATED,
                Stored::Existed => StatusCode::OK,
            };
            response.status(status).body(Body::empty())
        }
    };
    response.map_err(|e| Error::internal(format!("cannot build the answer: {e}")))
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn paths_name_a_project_and_an_object() {
        let (project, oid) =
            parse("ada/my data/files/md5/d4/1d8cd98f00b204e9800998ecf8427e.dir").unwrap();
        assert_eq!(project, "ada/my data");
        assert_eq!(oid.as_str(), "d41d8cd98f00b204e9800998ecf8427e.dir");
        assert!(parse("0190-abc/files/md5/d4/1d8cd98f00b204e9800998ecf8427e").is_ok());
        assert!(parse("files/md5/d4/1d8cd98f00b204e9800998ecf8427e").is_err());
        assert!(parse("ada/p/d4/1d8cd98f00b204e9800998ecf8427e").is_err());
    }
}
