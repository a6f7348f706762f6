//! The DVC remote: `dvc remote add -d weft http://HOST:8080/dvc/<owner>/<project>` (or
//! `/dvc/<project id>`), or the same URL as `webdav://` for dvc-webdav. DVC's http remote
//! (dvc-http over fsspec's HTTPFileSystem) asks for objects in DVC 3's layout below the URL:
//! `GET` to download and to ask whether one exists (status, push), `HEAD` for a size, `POST`
//! (or `PUT` with `method = PUT`) with a chunked body to upload. It cannot list or delete, so
//! `dvc gc -c` needs the WebDAV face (see `webdav`), which lists the layout's folders and
//! takes `DELETE` of an object; both faces share these routes.
//!
//! Auth is DVC's own `auth = basic` with the Weft token as the password (any user name), or
//! `auth = custom` with `custom_auth_header = Authorization` and `password = Bearer <token>`
//! (dvc-webdav: `user` and `password`, or `token`). Only the project's owner and admins
//! reach its remote; anyone else gets 404, as for none.

use super::objects::{Oid, Stored};
use super::service::Datasets;
use crate::auth::Auth;
use crate::error::{Code, Error, Result};
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
    Auth: FromRef<S>,
{
    Router::new().route("/dvc/{*path}", any(serve))
}

/// Where a path points in a project's remote: DVC 3's layout and nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Place {
    /// The remote's URL itself.
    Root,
    /// `files/`.
    Files,
    /// `files/md5/`.
    Md5,
    /// `files/md5/<2 hex digits>/`.
    Prefix(String),
    /// `files/md5/<2>/<30>[.dir]`.
    Object(Oid),
}

/// The project a path names (`<owner>/<name>`, or a project id alone) and the place in its
/// remote; anything outside DVC 3's layout is refused.
fn parse(path: &str) -> Result<(String, Place)> {
    let no_route = || {
        Error::new(Code::RouteNotFound, format!("nothing at /dvc/{path}")).hint(
            "Weft's DVC remote is http://HOST/dvc/<owner>/<project> (webdav:// for dvc-webdav) and serves only DVC 3's layout below it (files/md5/..)",
        )
    };
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let named_by_id = uuid::Uuid::parse_str(segments[0]).is_ok();
    let project_len = if named_by_id { 1 } else { 2 };
    if segments.len() < project_len || segments.iter().any(|s| s.is_empty()) {
        return Err(no_route());
    }
    let (project, rest) = segments.split_at(project_len);
    let place = match rest {
        [] => Place::Root,
        ["files"] => Place::Files,
        ["files", "md5"] => Place::Md5,
        ["files", "md5", prefix] if is_prefix(prefix) => Place::Prefix(prefix.to_string()),
        ["files", "md5", _, _] => {
            Place::Object(Oid::from_path(&rest.join("/")).ok_or_else(no_route)?)
        }
        _ => return Err(no_route()),
    };
    Ok((project.join("/"), place))
}

/// Whether `name` is a folder of the layout below `files/md5/`: two lowercase hex digits.
fn is_prefix(name: &str) -> bool {
    name.len() == 2
        && name
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

async fn serve(
    State(datasets): State<Datasets>,
    State(auth): State<Auth>,
    Path(path): Path<String>,
    request: Request,
) -> Response {
    match handle(&datasets, &auth, &path, request).await {
        Ok(response) => response,
        Err(e) => crate::auth::challenged(e),
    }
}

async fn handle(
    datasets: &Datasets,
    auth: &Auth,
    path: &str,
    request: Request,
) -> Result<Response> {
    let (name, place) = parse(path)?;
    let method = request.method().clone();
    let for_objects = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::DELETE,
    ];
    let allowed = match place {
        Place::Object(_) => for_objects.contains(&method) || super::webdav::serves(&method),
        _ => super::webdav::serves(&method),
    };
    if !allowed {
        return Err(Error::new(
            Code::MethodNotAllowed,
            format!("{method} is not allowed on /dvc/{path}"),
        )
        .hint("objects take GET, HEAD, PUT, POST and DELETE; folders of the layout PROPFIND and MKCOL"));
    }
    // A push asks twice per object (whether it exists, then its upload), with the same
    // token and project each time: both are read from the store at most once a second.
    let token = crate::auth::basic_or_bearer_token(request.headers())?;
    let caller = auth
        .sign_in_recent(&token, crate::auth::peer(&request))
        .await?;
    let project = datasets.projects().named(&caller, &name, true).await?;
    let objects = datasets.objects();
    let oid = match place {
        Place::Object(oid) if for_objects.contains(&method) => oid,
        place => return super::webdav::serve(objects, &project.id, place, request).await,
    };
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
        Method::DELETE => {
            objects.delete(&project.id, &oid).await?;
            response.status(StatusCode::NO_CONTENT).body(Body::empty())
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
    use super::{Place, parse};

    #[test]
    fn paths_name_a_project_and_a_place_in_dvc_3_s_layout() {
        let (project, place) =
            parse("ada/my data/files/md5/d4/1d8cd98f00b204e9800998ecf8427e.dir").unwrap();
        assert_eq!(project, "ada/my data");
        let Place::Object(oid) = place else {
            panic!("an object: {place:?}")
        };
        assert_eq!(oid.as_str(), "d41d8cd98f00b204e9800998ecf8427e.dir");
        let id = "0190a3c4-0000-7000-8000-000000000000";
        let (project, place) = parse(&format!("{id}/files/md5/d4/")).unwrap();
        assert_eq!((project.as_str(), place), (id, Place::Prefix("d4".into())));
        assert_eq!(parse(id).unwrap().1, Place::Root);
        assert_eq!(parse("ada/p/").unwrap(), ("ada/p".into(), Place::Root));
        assert_eq!(parse("ada/p/files").unwrap().1, Place::Files);
        assert_eq!(parse("ada/p/files/md5/").unwrap().1, Place::Md5);
        for outside in [
            "ada",
            "ada/p/d4/1d8cd98f00b204e9800998ecf8427e",
            "ada/p/files/md5/D4",
            "ada/p/files/md5/d4/1d8cd98f00b204e9800998ecf8427e/x",
            "ada/p/files/sha256",
            "ada/p/files/md5/../../q",
            "ada//p/files",
            "ada/p/.dvc/tmp",
        ] {
            assert!(parse(outside).is_err(), "{outside}");
        }
    }
}
