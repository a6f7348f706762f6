//! The web app served by `weft serve` itself: its index at `/` and on its client routes, its
//! hashed assets cached for good and gzipped, and the API's paths never shadowed by it.

use crate::support::{Backend, TestServer, assert_error, send};
use reqwest::header::{
    ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_SECURITY_POLICY, CONTENT_TYPE,
};
use reqwest::{Method, StatusCode};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_is_served_at_the_root_and_its_client_routes() {
    let server = TestServer::start(Backend::Sqlite).await;
    let index = server.anon(Method::GET, "/").send().await.unwrap();
    assert_eq!(index.status(), StatusCode::OK);
    let headers = index.headers().clone();
    assert!(
        headers[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert_eq!(headers[CACHE_CONTROL], "no-cache");
    let csp = headers[CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"));
    assert!(
        csp.contains("script-src 'self';") && !csp.contains("unsafe-eval"),
        "{csp}"
    );
    let html = index.text().await.unwrap();
    assert!(html.contains("<div id=\"root\">"), "{html}");

    // A reload on a page of the app gets the same index.
    for page in ["/sign-in", "/workflows/abc", "/runs/r1", "/workspaces"] {
        let response = server.anon(Method::GET, page).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{page}");
        assert_eq!(response.text().await.unwrap(), html, "{page}");
    }

    // The script it loads: hashed, cached for a year, gzipped when the browser accepts it.
    let script = html
        .split("src=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a script in the index");
    assert!(
        script.starts_with("/assets/") && script.ends_with(".js"),
        "{script}"
    );
    let plain = server.anon(Method::GET, script).send().await.unwrap();
    assert_eq!(plain.status(), StatusCode::OK);
    assert_eq!(
        plain.headers()[CACHE_CONTROL],
        "public, max-age=31536000, immutable"
    );
    assert!(plain.headers().get(CONTENT_ENCODING).is_none());
    let plain = plain.bytes().await.unwrap();
    let gzipped = server
        .anon(Method::GET, script)
        .header(ACCEPT_ENCODING, "gzip, deflate, br")
        .send()
        .await
        .unwrap();
    assert_eq!(gzipped.headers()[CONTENT_ENCODING], "gzip");
    let gzipped = gzipped.bytes().await.unwrap();
    assert_eq!(&gzipped[..2], &[0x1f, 0x8b]);
    assert!(gzipped.len() < plain.len() / 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_never_shadows_the_api_docs_or_metrics() {
    let server = TestServer::start(Backend::Sqlite).await;
    for path in [
        "/api/v1/nothing-here",
        "/api",
        "/s/abc/",
        "/no/such/page",
        "/assets/nope.js",
    ] {
        let (status, body) = send(server.anon(Method::GET, path)).await;
        assert_error(status, &body, 404, "90201");
    }
    let (status, body) = send(server.anon(Method::GET, "/api/v1/health")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = send(server.anon(Method::GET, "/api/v1/openapi.json")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["paths"].is_object());
    let docs = server.anon(Method::GET, "/docs/").send().await.unwrap();
    assert_eq!(docs.status(), StatusCode::OK);
    assert!(docs.text().await.unwrap().contains("swagger"));
    let metrics = server.anon(Method::GET, "/metrics").send().await.unwrap();
    assert_ne!(metrics.status(), StatusCode::NOT_FOUND);
    // Only reads are served: a POST to a page is the API's 404.
    let (status, body) = send(server.anon(Method::POST, "/workflows")).await;
    assert_error(status, &body, 404, "90201");
}

/// The app's own unit tests (Vitest: connection rules, definitions, undo), run where the
/// build installed its packages.
#[test]
fn the_apps_unit_tests_pass() {
    let ui = concat!(env!("CARGO_MANIFEST_DIR"), "/../ui");
    let out = std::process::Command::new("npm")
        .current_dir(ui)
        .args(["run", "--silent", "test"])
        .output()
        .expect("run npm (the host's build needed it too)");
    assert!(
        out.status.success(),
        "the app's unit tests failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The app's API types (`ui/src/api/schema.d.ts`) are generated from the OpenAPI document by
/// openapi-typescript: this regenerates them from the served document and fails when the
/// committed file differs. `WEFT_UPDATE_API_TYPES=1` writes the new file instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_apps_api_types_match_the_openapi_document() {
    let server = TestServer::start(Backend::Sqlite).await;
    let document = server
        .anon(Method::GET, "/api/v1/openapi.json")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("openapi.json");
    let output = dir.path().join("schema.d.ts");
    std::fs::write(&input, document).unwrap();
    let ui = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../ui");
    let out = std::process::Command::new("node")
        .arg(ui.join("node_modules/openapi-typescript/bin/cli.js"))
        .arg(&input)
        .arg("-o")
        .arg(&output)
        .output()
        .expect("run openapi-typescript (installed by the host's build)");
    assert!(
        out.status.success(),
        "openapi-typescript failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let generated = std::fs::read_to_string(&output).unwrap();
    let committed_path = ui.join("src/api/schema.d.ts");
    if std::env::var_os("WEFT_UPDATE_API_TYPES").is_some() {
        std::fs::write(&committed_path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&committed_path).unwrap_or_default();
    assert!(
        committed == generated,
        "ui/src/api/schema.d.ts is not what the API's OpenAPI document generates: rerun this \
         test with WEFT_UPDATE_API_TYPES=1 and commit the file (the build type-checks the app \
         against it)"
    );
}
