//! The WebDAV face of a project's DVC remote, as dvc-webdav (over webdav4) uses it:
//! `PROPFIND` lists DVC 3's layout (the remote's URL, `files/`, `files/md5/`, its two-digit
//! folders and their objects) so that `dvc gc -c` can see what the remote holds, and `MKCOL`
//! succeeds on the layout's folders, which exist as long as the project does. Objects are read,
//! written and deleted by the same handlers as the http remote's (see `remote`).
//!
//! Not a general WebDAV server: no other paths, no locks, no properties to set, no `COPY` or
//! `MOVE` (dvc-webdav uploads straight to an object's path). `PROPFIND` answers the same live
//! properties whatever its body asks; `Depth: 0` (or none, as webdav4 sends to ask whether a
//! path exists) answers the path itself, `Depth: 1` its children too, `infinity` is refused.

use super::objects::Objects;
use super::records::ObjectEntry;
use super::remote::Place;
use crate::error::{Code, Error, Result};
use axum::body::Body;
use axum::extract::Request;
use axum::http::{Method, StatusCode, header};
use axum::response::Response;
use std::fmt::Write as _;

/// A `PROPFIND` body is read up to this many bytes (webdav4 sends none, or a few hundred).
const MAX_PROPFIND_BODY: usize = 64 << 10;

fn propfind() -> Method {
    Method::from_bytes(b"PROPFIND").expect("a valid method")
}

fn mkcol() -> Method {
    Method::from_bytes(b"MKCOL").expect("a valid method")
}

/// Whether `method` is one this face answers on any place of the layout.
pub(super) fn serves(method: &Method) -> bool {
    *method == propfind() || *method == mkcol() || *method == Method::OPTIONS
}

/// Answers `request` (a method [`serves`] takes) on `place` of project `project`'s remote.
pub(super) async fn serve(
    objects: &Objects,
    project: &str,
    place: Place,
    request: Request,
) -> Result<Response> {
    let method = request.method().clone();
    let response = if method == Method::OPTIONS {
        Response::builder()
            .header("DAV", "1")
            .header(
                header::ALLOW,
                "OPTIONS, GET, HEAD, PUT, POST, DELETE, PROPFIND, MKCOL",
            )
            .body(Body::empty())
    } else if method == mkcol() {
        if matches!(place, Place::Object(_)) {
            return Err(Error::new(
                Code::MethodNotAllowed,
                "an object of the remote is not a folder",
            ));
        }
        Response::builder()
            .status(StatusCode::CREATED)
            .body(Body::empty())
    } else {
        let depth = depth(request.headers())?;
        // The path as the client spelled it (percent-encoded): hrefs must name it the same way.
        let base = escape(request.uri().path().trim_end_matches('/'));
        axum::body::to_bytes(request.into_body(), MAX_PROPFIND_BODY)
            .await
            .map_err(|_| {
                Error::new(
                    Code::PayloadTooLarge,
                    format!("a PROPFIND body may have {MAX_PROPFIND_BODY} bytes at most"),
                )
            })?;
        let xml = listing(objects, project, &place, depth, &base).await?;
        Response::builder()
            .status(StatusCode::MULTI_STATUS)
            .header(header::CONTENT_TYPE, "application/xml; charset=utf-8")
            .body(Body::from(xml))
    };
    response.map_err(|e| Error::internal(format!("cannot build the answer: {e}")))
}

/// Whether a `PROPFIND` asks for the children too (`Depth: 1`).
fn depth(headers: &axum::http::HeaderMap) -> Result<bool> {
    match headers.get("depth").map(|v| v.as_bytes()) {
        None | Some(b"0") => Ok(false),
        Some(b"1") => Ok(true),
        Some(_) => Err(Error::new(
            Code::DatasetInvalid,
            "PROPFIND is answered with Depth 0 or 1 only",
        )
        .hint("list the layout one folder at a time: files/md5/, then files/md5/<2 hex digits>/")),
    }
}

/// The multistatus document for `place` (at `base`) and, with `children`, what it holds.
async fn listing(
    objects: &Objects,
    project: &str,
    place: &Place,
    children: bool,
    base: &str,
) -> Result<String> {
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<D:multistatus xmlns:D=\"DAV:\">",
    );
    match place {
        Place::Object(oid) => {
            let entry = objects
                .entry(project, oid)
                .await?
                .ok_or_else(|| super::objects::not_found(oid))?;
            object(&mut xml, base, &entry);
        }
        Place::Prefix(prefix) => {
            let entries = objects.entries(project, prefix).await?;
            if entries.is_empty() {
                return Err(Error::new(
                    Code::DataObjectNotFound,
                    format!("the remote has no objects in files/md5/{prefix}/"),
                ));
            }
            folder(&mut xml, base);
            for entry in entries.iter().filter(|_| children) {
                object(&mut xml, &format!("{base}/{}", &entry.oid[2..]), entry);
            }
        }
        Place::Md5 => {
            folder(&mut xml, base);
            if children {
                for prefix in objects.prefixes(project).await? {
                    folder(&mut xml, &format!("{base}/{prefix}"));
                }
            }
        }
        Place::Files | Place::Root => {
            folder(&mut xml, base);
            if children {
                let child = if *place == Place::Root {
                    "files"
                } else {
                    "md5"
                };
                folder(&mut xml, &format!("{base}/{child}"));
            }
        }
    }
    xml.push_str("</D:multistatus>\n");
    Ok(xml)
}

/// A folder of the layout at `href` (no trailing slash).
fn folder(xml: &mut String, href: &str) {
    let _ = write!(
        xml,
        "<D:response><D:href>{href}/</D:href><D:propstat><D:prop>\
         <D:resourcetype><D:collection/></D:resourcetype></D:prop>\
         <D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>"
    );
}

/// Object `entry` at `href`: its size, md5 as its ETag (the objects are content-addressed)
/// and when it was stored.
fn object(xml: &mut String, href: &str, entry: &ObjectEntry) {
    let modified = crate::store::time(entry.created_at).format("%a, %d %b %Y %H:%M:%S GMT");
    let etag = entry.oid.trim_end_matches(".dir");
    let _ = write!(
        xml,
        "<D:response><D:href>{href}</D:href><D:propstat><D:prop><D:resourcetype/>\
         <D:getcontentlength>{}</D:getcontentlength><D:getetag>\"{etag}\"</D:getetag>\
         <D:getcontenttype>application/octet-stream</D:getcontenttype>\
         <D:getlastmodified>{modified}</D:getlastmodified></D:prop>\
         <D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>",
        entry.size
    );
}

/// `text` as XML character data.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
