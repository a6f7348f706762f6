//! Projects and their files: private to their owner, paths checked, sizes limited, stored in
//! the configured folder.

use crate::on_both_backends;
use crate::support::{Backend, TestServer, assert_error, send};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

on_both_backends!(
    project_names_are_unique_per_user_and_checked,
    files_keep_their_paths_and_bytes,
    paths_that_escape_are_refused,
    files_over_the_size_limit_are_refused,
    projects_are_private_to_their_owner,
    deleted_files_and_projects_are_gone,
    an_upload_that_breaks_off_changes_nothing,
    a_storage_failure_is_503
);

/// A server whose files may be at most 1 KiB, users bob and eve (tokens) and bob's project
/// "thesis" (its id).
async fn thesis(backend: Backend) -> (TestServer, String, String, String) {
    let server = TestServer::start_with(backend, |c| c.workspaces.max_file_bytes = 1024).await;
    let (_, bob) = server.user("bob").await;
    let (_, eve) = server.user("eve").await;
    let id = server.project(&bob, "thesis").await;
    (server, bob, eve, id)
}

/// A project belongs to its creator; names are unique per user and checked.
async fn project_names_are_unique_per_user_and_checked(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (bob_id, bob) = server.user("bob").await;
    let (_, eve) = server.user("eve").await;
    let (status, project) = send(
        server
            .with_token(&bob, Method::POST, "/api/v1/projects")
            .json(&json!({ "name": "thesis" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{project}");
    assert_eq!(project["owner_id"], bob_id.as_str());
    let (status, body) = send(
        server
            .with_token(&bob, Method::POST, "/api/v1/projects")
            .json(&json!({ "name": "thesis" })),
    )
    .await;
    assert_error(status, &body, 409, "10206");
    let (status, _) = send(
        server
            .with_token(&eve, Method::POST, "/api/v1/projects")
            .json(&json!({ "name": "thesis" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "names are per user");
    let (status, body) = send(
        server
            .with_token(&bob, Method::POST, "/api/v1/projects")
            .json(&json!({ "name": "a/b" })),
    )
    .await;
    assert_error(status, &body, 422, "90402");
}

/// Files keep nested paths and their exact bytes, in the project's folder; the listing gives
/// sizes.
async fn files_keep_their_paths_and_bytes(backend: Backend) {
    let (server, bob, _, id) = thesis(backend).await;
    // Files: nested paths, exact bytes back, a listing with sizes.
    let file = |path: &str| format!("/api/v1/projects/{id}/files/{path}");
    let content = b"print('hello')\n\x00\xff binary too";
    let (status, entry) = send(
        server
            .with_token(&bob, Method::PUT, &file("src/main.py"))
            .body(&content[..]),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{entry}");
    assert_eq!(entry["path"], "src/main.py");
    assert_eq!(entry["size"], content.len());
    server.put_file(&bob, &id, "notes.md", "# notes").await;
    let back = server
        .with_token(&bob, Method::GET, &file("src/main.py"))
        .send()
        .await
        .unwrap();
    assert_eq!(back.status(), StatusCode::OK);
    assert_eq!(back.bytes().await.unwrap().as_ref(), content);
    let (status, listed) =
        send(server.with_token(&bob, Method::GET, &format!("/api/v1/projects/{id}/files"))).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let paths: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["notes.md", "src/main.py"]);
    assert_eq!(listed[1]["size"], content.len());
    let on_disk = server
        .config
        .data_dir
        .join("projects")
        .join(&id)
        .join("src/main.py");
    assert_eq!(std::fs::read(on_disk).unwrap(), content);
}

/// Paths that escape the project are refused and nothing is written.
async fn paths_that_escape_are_refused(backend: Backend) {
    let (server, bob, _, id) = thesis(backend).await;
    let file = |path: &str| format!("/api/v1/projects/{id}/files/{path}");
    // Paths that escape are refused; nothing is written. (Slashes are encoded: a client
    // normalises a literal `..` segment away before sending.)
    for bad in [
        "..%2Fescape.txt",
        "src%2F..%2F..%2Fescape.txt",
        "%2Fetc/passwd",
    ] {
        let (status, body) = send(server.with_token(&bob, Method::PUT, &file(bad)).body("x")).await;
        assert_error(status, &body, 422, "90402");
    }
    assert!(!server.config.data_dir.join("projects/escape.txt").exists());
    assert!(!server.config.data_dir.join("escape.txt").exists());
}

/// A file over `max_file_bytes` is refused with the limit named; one at the limit is stored.
async fn files_over_the_size_limit_are_refused(backend: Backend) {
    let (server, bob, _, id) = thesis(backend).await;
    let file = |path: &str| format!("/api/v1/projects/{id}/files/{path}");
    // Over the size limit: refused with the limit named.
    let (status, body) = send(
        server
            .with_token(&bob, Method::PUT, &file("big.bin"))
            .body(vec![7u8; 1025]),
    )
    .await;
    assert_error(status, &body, 413, "10401");
    assert_eq!(body["details"]["max_bytes"], 1024);
    let (status, body) = send(
        server
            .with_token(&bob, Method::PUT, &file("fits.bin"))
            .body(vec![7u8; 1024]),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// Another user sees and touches none of a project (404, as for none); an admin sees all.
async fn projects_are_private_to_their_owner(backend: Backend) {
    let (server, bob, eve, id) = thesis(backend).await;
    let file = |path: &str| format!("/api/v1/projects/{id}/files/{path}");
    server.put_file(&bob, &id, "notes.md", "# notes").await;
    server.project(&eve, "thesis").await;
    // Another user sees none of it.
    for (method, path) in [
        (Method::GET, format!("/api/v1/projects/{id}")),
        (Method::GET, format!("/api/v1/projects/{id}/files")),
        (Method::GET, file("notes.md")),
        (Method::PUT, file("notes.md")),
        (Method::DELETE, file("notes.md")),
        (Method::DELETE, format!("/api/v1/projects/{id}")),
    ] {
        let (status, body) = send(server.with_token(&eve, method, &path)).await;
        assert_error(status, &body, 404, "10205");
    }
    let (status, mine) = send(server.with_token(&eve, Method::GET, "/api/v1/projects")).await;
    assert_eq!(status, StatusCode::OK, "{mine}");
    assert_eq!(mine.as_array().unwrap().len(), 1);
    let (status, all) = send(server.admin(Method::GET, "/api/v1/projects")).await;
    assert_eq!(status, StatusCode::OK, "{all}");
    assert_eq!(all.as_array().unwrap().len(), 2);
}

/// A deleted file is gone (and deleting it again says so); a deleted project goes with its
/// files.
async fn deleted_files_and_projects_are_gone(backend: Backend) {
    let (server, bob, _, id) = thesis(backend).await;
    let file = |path: &str| format!("/api/v1/projects/{id}/files/{path}");
    server.put_file(&bob, &id, "notes.md", "# notes").await;
    // Delete a file, then the project with its files.
    let (status, _) = send(server.with_token(&bob, Method::DELETE, &file("notes.md"))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = send(server.with_token(&bob, Method::GET, &file("notes.md"))).await;
    assert_error(status, &body, 404, "10207");
    let (status, body) = send(server.with_token(&bob, Method::DELETE, &file("notes.md"))).await;
    assert_error(status, &body, 404, "10207");
    let (status, _) =
        send(server.with_token(&bob, Method::DELETE, &format!("/api/v1/projects/{id}"))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(!server.config.data_dir.join("projects").join(&id).exists());
    let (status, body) =
        send(server.with_token(&bob, Method::GET, &format!("/api/v1/projects/{id}"))).await;
    assert_error(status, &body, 404, "10205");
}

/// Project files in an S3-compatible bucket, by configuration. The server is moto's, a
/// stand-in for S3 (an emulator of its API, not Amazon's service).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn project_files_in_s3() {
    let s3 = crate::support::s3::S3Server::start().await;
    let server = TestServer::start_with(Backend::Sqlite, |c| {
        s3.store_projects(c, "/weft");
    })
    .await;
    let (_, bob) = server.user("bob").await;
    let (status, project) = send(
        server
            .with_token(&bob, Method::POST, "/api/v1/projects")
            .json(&json!({ "name": "cloud" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{project}");
    let id = project["id"].as_str().unwrap().to_string();
    let file = |path: &str| format!("/api/v1/projects/{id}/files/{path}");
    for (path, content) in [("a.txt", "first"), ("deep/b.txt", "second")] {
        let (status, entry) = send(
            server
                .with_token(&bob, Method::PUT, &file(path))
                .body(content),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{entry}");
    }
    let mut keys = s3.keys().await;
    keys.sort();
    assert_eq!(
        keys,
        [format!("weft/{id}/a.txt"), format!("weft/{id}/deep/b.txt")],
        "stored in the bucket"
    );
    assert!(
        !server.config.data_dir.join("projects").exists(),
        "nothing on the local disk"
    );
    assert_eq!(server.file_paths(&bob, &id).await, ["a.txt", "deep/b.txt"]);
    let back = server.download(&bob, &file("deep/b.txt")).await;
    assert_eq!(back, "second");
    let (status, _) = send(server.with_token(&bob, Method::DELETE, &file("a.txt"))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(s3.keys().await, [format!("weft/{id}/deep/b.txt")]);
    let (status, _) =
        send(server.with_token(&bob, Method::DELETE, &format!("/api/v1/projects/{id}"))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(
        s3.keys().await.is_empty(),
        "the project's objects are deleted with it"
    );
}

/// An upload whose body breaks off before its announced length is refused (`10213`) and the
/// stored file is unchanged.
async fn an_upload_that_breaks_off_changes_nothing(backend: Backend) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let (server, bob, _, id) = thesis(backend).await;
    server.put_file(&bob, &id, "notes.md", "# kept").await;
    let stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let head = format!(
        "PUT /api/v1/projects/{id}/files/notes.md HTTP/1.1\r\nhost: weft\r\n\
         authorization: Bearer {bob}\r\ncontent-length: 1000\r\n\r\n# repla"
    );
    writer.write_all(head.as_bytes()).await.unwrap();
    // The client goes away mid-body: its side of the connection ends.
    writer.shutdown().await.unwrap();
    let mut answer = String::new();
    reader.read_to_string(&mut answer).await.unwrap();
    let status: u16 = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {answer}"));
    let body: Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}: {answer}"));
    assert_error(StatusCode::from_u16(status).unwrap(), &body, 400, "10213");
    let kept = server
        .download(&bob, &format!("/api/v1/projects/{id}/files/notes.md"))
        .await;
    assert_eq!(kept, "# kept");
}

/// A project storage that fails (its folder replaced by a plain file, standing in for an
/// outage) is answered 503 `10105`, not 500, with the storage's own words kept in the log.
async fn a_storage_failure_is_503(backend: Backend) {
    let (server, bob, _, id) = thesis(backend).await;
    server.put_file(&bob, &id, "notes.md", "# notes").await;
    let folder = server.config.data_dir.join("projects").join(&id);
    std::fs::remove_dir_all(&folder).unwrap();
    std::fs::write(&folder, b"not a folder").unwrap();
    let (status, body) = send(
        server
            .with_token(
                &bob,
                Method::PUT,
                &format!("/api/v1/projects/{id}/files/a/b.txt"),
            )
            .body("x"),
    )
    .await;
    assert_error(status, &body, 503, "10105");
    assert!(!body.to_string().contains("not a folder"), "{body}");
}
