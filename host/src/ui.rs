//! The web app (`ui/`), built by `build.rs` and embedded: served at `/` on the API's origin.
//!
//! Hashed files under `/assets/` are cached for a year (a new build has new names); the index
//! is revalidated on every load. The app's own paths (its client routes) get the index, so a
//! reload or a shared link opens the right page; every other unknown path keeps the API's JSON
//! 404, so nothing under `/api`, `/s/`, `/docs`, `/metrics` or the scheduler's paths is
//! shadowed. Text files are gzipped at build time and sent so when the client accepts it.
//!
//! Not for: the API (the app calls `/api/v1` like every client; it has no private endpoints).

use crate::api::error::route_not_found;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

/// A file of the built app: its URL path, its bytes, and for text its gzipped bytes.
type Asset = (&'static str, &'static [u8], Option<&'static [u8]>);

include!(concat!(env!("OUT_DIR"), "/ui_assets.rs"));

/// First path segments of the app's pages, answered with its index (`/` too).
const CLIENT_ROUTES: &[&str] = &["sign-in", "workflows", "runs", "workspaces"];

/// Where the app's scripts, styles and connections may come from: this origin only, and no
/// `eval` (the config forms' JSON Schema validator interprets schemas, see
/// ui/src/designer/validator.ts); inline styles are how the graph canvas positions its nodes.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'; \
     worker-src 'self' blob:; object-src 'none'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// The router's fallback: a file of the app, its index for a client route, or the JSON 404.
pub(crate) async fn serve(method: Method, uri: Uri, headers: HeaderMap) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return route_not_found(uri).await.into_response();
    }
    let path = uri.path();
    let asset = if is_client_route(path) {
        find("/index.html")
    } else {
        find(path)
    };
    match asset {
        Some(asset) => respond(path, asset, &headers),
        None => route_not_found(uri).await.into_response(),
    }
}

fn find(path: &str) -> Option<Asset> {
    UI_ASSETS
        .binary_search_by(|(p, _, _)| (*p).cmp(path))
        .ok()
        .map(|i| UI_ASSETS[i])
}

fn is_client_route(path: &str) -> bool {
    let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
    first.is_empty() || CLIENT_ROUTES.contains(&first)
}

fn respond(path: &str, (file, bytes, gzipped): Asset, request: &HeaderMap) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime(file)));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    let hashed = path.starts_with("/assets/");
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(if hashed { IMMUTABLE } else { "no-cache" }),
    );
    if file == "/index.html" {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        );
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    let body = match gzipped {
        Some(gz) => {
            headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
            if accepts_gzip(request) {
                headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
                gz
            } else {
                bytes
            }
        }
        None => bytes,
    };
    (StatusCode::OK, headers, body).into_response()
}

/// Whether `Accept-Encoding` lists gzip (or `*`) without refusing it with `q=0`.
fn accepts_gzip(request: &HeaderMap) -> bool {
    request
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or_default();
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
        })
}

fn mime(file: &str) -> &'static str {
    match file.rsplit('.').next().unwrap_or_default() {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "wasm" => "application/wasm",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_routes_get_the_index_and_nothing_else_does() {
        for path in [
            "/",
            "/sign-in",
            "/workflows",
            "/workflows/abc/edit",
            "/runs/1",
        ] {
            assert!(is_client_route(path), "{path}");
        }
        for path in [
            "/api/v1/x",
            "/s/abc/",
            "/docs/",
            "/metrics",
            "/health",
            "/no/page",
        ] {
            assert!(!is_client_route(path), "{path}");
        }
    }

    #[test]
    fn gzip_is_sent_only_when_accepted() {
        let with = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_static(value));
            accepts_gzip(&headers)
        };
        assert!(with("gzip, deflate, br"));
        assert!(with("br;q=1.0, gzip;q=0.8"));
        assert!(with("*"));
        assert!(!with("gzip;q=0"));
        assert!(!with("br, deflate"));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn the_build_embedded_the_index_and_hashed_assets() {
        assert!(find("/index.html").is_some());
        assert!(
            UI_ASSETS
                .iter()
                .any(|(p, _, gz)| p.starts_with("/assets/") && p.ends_with(".js") && gz.is_some())
        );
        assert!(UI_ASSETS.windows(2).all(|w| w[0].0 < w[1].0), "sorted");
    }
}
