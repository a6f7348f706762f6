//! The real `dvc` client (the version tests/run.sh pins) with real `git` against Weft's DVC
//! remote: push, pull in another clone, pushes that send only what changed, who may reach a
//! remote, and uploads that must leave nothing behind (corrupted, cut short, over quota);
//! dvc-webdav against the same remote, down to `dvc gc -c`.

use crate::on_both_backends;
use crate::support::dvc::{DvcUser, write_data};
use crate::support::{Backend, TestServer, assert_error, send};
use md5::{Digest as _, Md5};
use reqwest::{Method, StatusCode};
use std::path::Path;

on_both_backends!(
    pushed_data_pulls_back_byte_identical_and_a_change_sends_one_object,
    other_users_corrupted_and_cut_short_uploads_are_refused,
    an_upload_past_the_owner_s_quota_is_refused,
    a_revoked_token_and_a_deleted_project_are_refused_at_once,
    gc_through_the_webdav_remote_deletes_what_the_workspace_no_longer_uses
);

/// The objects stored for the project, below the storage's `.dvc-objects/<project>/`.
fn stored_objects(server: &TestServer, project: &str) -> usize {
    let root = server
        .config
        .data_dir
        .join("projects/.dvc-objects")
        .join(project);
    walk(&root)
}

fn walk(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .flatten()
            .map(|e| {
                if e.path().is_dir() {
                    walk(&e.path())
                } else {
                    1
                }
            })
            .sum()
    })
}

/// Every file below `dir`, by relative path, with its bytes.
fn files(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(folder) = stack.pop() {
        for entry in std::fs::read_dir(&folder).expect("read folder").flatten() {
            if entry.path().is_dir() {
                stack.push(entry.path());
            } else {
                let name = entry
                    .path()
                    .strip_prefix(dir)
                    .unwrap()
                    .display()
                    .to_string();
                out.insert(name, std::fs::read(entry.path()).expect("read file"));
            }
        }
    }
    out
}

async fn pushed_data_pulls_back_byte_identical_and_a_change_sends_one_object(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (_, token) = server.user("ada").await;
    let project = server.project(&token, "survey").await;
    let ada = DvcUser::new();
    let first = ada.clone(&server, &token, "ada/survey", "first").await;
    ada.ok(&first, &["init", "-q"]).await;
    write_data(&first, 12, 1);
    ada.ok(&first, &["add", "-q", "data"]).await;
    ada.remote(&first, &server, "ada/survey", &token).await;
    let pushed = ada.ok(&first, &["push"]).await;
    assert!(
        pushed.contains("13 files pushed"),
        "12 files and the folder's manifest: {pushed}"
    );
    assert_eq!(stored_objects(&server, &project), 13);
    ada.git.ok(&first, &["add", "-A"]).await;
    ada.git.ok(&first, &["commit", "-qm", "survey data"]).await;
    ada.git.ok(&first, &["push", "-q", "origin", "HEAD"]).await;

    // Another clone pulls the same bytes, sending the token as a Bearer header this time.
    let second = ada.clone(&server, &token, "ada/survey", "second").await;
    ada.bearer(&second, &token).await;
    ada.ok(&second, &["pull"]).await;
    assert_eq!(files(&second.join("data")), files(&first.join("data")));

    // One file changes: its object and the new manifest go, nothing else.
    std::fs::write(first.join("data/part-1.bin"), b"revised").unwrap();
    ada.ok(&first, &["add", "-q", "data"]).await;
    let again = ada.ok(&first, &["push"]).await;
    assert!(again.contains("2 files pushed"), "{again}");
    assert_eq!(stored_objects(&server, &project), 15);
    let status = ada.ok(&first, &["status", "-c"]).await;
    assert!(status.contains("in sync"), "{status}");
    // Pushing again sends nothing.
    let nothing = ada.ok(&first, &["push"]).await;
    assert!(nothing.contains("Everything is up to date"), "{nothing}");
}

async fn other_users_corrupted_and_cut_short_uploads_are_refused(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (_, ada_token) = server.user("ada").await;
    let (_, bob_token) = server.user("bob").await;
    let project = server.project(&ada_token, "private").await;
    let content = b"ada's measurements".to_vec();
    let md5 = hex::encode(Md5::digest(&content));
    let object = format!("/dvc/ada/private/files/md5/{}/{}", &md5[..2], &md5[2..]);
    let head = || async {
        let answer = server
            .with_token(&ada_token, Method::HEAD, &object)
            .send()
            .await;
        answer.unwrap().status()
    };
    let put =
        |token: &str, body: Vec<u8>| server.with_token(token, Method::POST, &object).body(body);

    // Bob cannot write or read Ada's remote, nor can anyone without a token.
    let (status, body) = send(put(&bob_token, content.clone())).await;
    assert_error(status, &body, 404, "10205");
    let anonymous = server.anon(Method::GET, &object).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert!(anonymous.headers().contains_key("www-authenticate"));

    // A body whose md5 is not the one its path names is refused and leaves nothing.
    let (status, body) = send(put(&ada_token, b"tampered".to_vec())).await;
    assert_error(status, &body, 400, "30420");
    assert_eq!(head().await, StatusCode::NOT_FOUND);

    // An upload cut short leaves nothing either.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = vec![
        Ok(content[..5].to_vec()),
        Err(std::io::Error::other("client killed")),
    ];
    let cut = server
        .with_token(&ada_token, Method::POST, &object)
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await;
    assert!(cut.is_err() || !cut.unwrap().status().is_success());
    assert_eq!(head().await, StatusCode::NOT_FOUND);
    assert_eq!(stored_objects(&server, &project), 0);

    // The whole object goes in once, and Ada alone reads it back.
    let (status, _) = send(put(&ada_token, content.clone())).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = send(put(&ada_token, content.clone())).await;
    assert_eq!(status, StatusCode::OK, "stored once");
    let read = server
        .with_token(&ada_token, Method::GET, &object)
        .send()
        .await
        .unwrap();
    assert_eq!(read.bytes().await.unwrap().as_ref(), content.as_slice());
    let (status, body) = send(server.with_token(&bob_token, Method::GET, &object)).await;
    assert_error(status, &body, 404, "10205");

    let staging = server.config.data_dir.join("projects/.staging");
    assert_eq!(walk(&staging), 0, "nothing left staged");
}

/// The remote keeps the token and the project a request named for a second (a push asks twice
/// per object); revoking the token or deleting the project still takes effect at once.
async fn a_revoked_token_and_a_deleted_project_are_refused_at_once(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (_, token) = server.user("ada").await;
    let object = "/dvc/ada/brief/files/md5/d4/1d8cd98f00b204e9800998ecf8427e";
    let ask = || send(server.with_token(&token, Method::GET, object));
    let project = server.project(&token, "brief").await;
    let (status, body) = ask().await;
    assert_error(status, &body, 404, "30222");
    let (status, _) =
        send(server.admin(Method::DELETE, &format!("/api/v1/projects/{project}"))).await;
    assert!(status.is_success(), "{status}");
    let (status, body) = ask().await;
    assert_error(status, &body, 404, "10205");

    server.project(&token, "brief").await;
    let (status, body) = ask().await;
    assert_error(status, &body, 404, "30222");
    let (_, tokens) = send(server.with_token(&token, Method::GET, "/api/v1/tokens")).await;
    let id = tokens[0]["id"].as_str().unwrap().to_string();
    let revoke = server.with_token(&token, Method::DELETE, &format!("/api/v1/tokens/{id}"));
    assert_eq!(send(revoke).await.0, StatusCode::OK);
    let (status, body) = ask().await;
    assert_error(status, &body, 401, "90304");
}

async fn an_upload_past_the_owner_s_quota_is_refused(backend: Backend) {
    let server = TestServer::start_with(backend, |c| c.datasets.max_bytes_per_user = 10).await;
    let (_, token) = server.user("ada").await;
    let project = server.project(&token, "big").await;
    let post = |content: &[u8]| {
        let md5 = hex::encode(Md5::digest(content));
        let path = format!("/dvc/{project}/files/md5/{}/{}", &md5[..2], &md5[2..]);
        send(
            server
                .with_token(&token, Method::POST, &path)
                .body(content.to_vec()),
        )
    };
    let (status, body) = post(b"0123456789A").await;
    assert_error(status, &body, 429, "30223");
    assert_eq!(body["details"]["quota_bytes"], 10);
    let (status, _) = post(b"0123456789").await;
    assert_eq!(status, StatusCode::CREATED, "exactly the quota fits");
    let (status, body) = post(b"x").await;
    assert_error(status, &body, 429, "30223");
    assert_eq!(stored_objects(&server, &project), 1);
}

async fn gc_through_the_webdav_remote_deletes_what_the_workspace_no_longer_uses(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (_, token) = server.user("ada").await;
    let (_, bob_token) = server.user("bob").await;
    let project = server.project(&token, "tidy").await;
    let ada = DvcUser::new();
    let first = ada.clone(&server, &token, "ada/tidy", "first").await;
    ada.ok(&first, &["init", "-q"]).await;
    write_data(&first, 6, 3);
    ada.ok(&first, &["add", "-q", "data"]).await;
    ada.webdav(&first, &server, "ada/tidy", &token).await;
    let pushed = ada.ok(&first, &["push"]).await;
    assert!(pushed.contains("7 files pushed"), "{pushed}");
    let status = ada.ok(&first, &["status", "-c"]).await;
    assert!(status.contains("in sync"), "{status}");
    let commit = |message: &'static str| {
        let (ada, first) = (&ada, &first);
        async move {
            ada.git.ok(first, &["add", "-A"]).await;
            ada.git.ok(first, &["commit", "-qm", message]).await;
            ada.git.ok(first, &["push", "-q", "origin", "HEAD"]).await;
        }
    };
    commit("tidy data").await;
    let storage = || async {
        let (_, storage) =
            send(server.with_token(&token, Method::GET, "/api/v1/datasets/storage")).await;
        storage
    };
    let before = storage().await;
    assert_eq!(before["objects"], 7, "{before}");

    // One file goes from the workspace: gc removes its object and the old manifest.
    let removed = std::fs::read(first.join("data/part-1.bin")).unwrap();
    std::fs::remove_file(first.join("data/part-1.bin")).unwrap();
    ada.ok(&first, &["add", "-q", "data"]).await;
    ada.ok(&first, &["push"]).await;
    commit("less data").await;
    let gc = ada.ok(&first, &["gc", "-w", "-c", "-f"]).await;
    assert!(gc.contains("Removed 2 objects from remote"), "{gc}");
    assert_eq!(stored_objects(&server, &project), 6);
    let after = storage().await;
    assert_eq!(after["objects"], 6, "{after}");
    let freed = before["stored_bytes"].as_i64().unwrap() - after["stored_bytes"].as_i64().unwrap();
    assert!(
        freed > removed.len() as i64,
        "the file's bytes and the old manifest's: {before} {after}"
    );
    let status = ada.ok(&first, &["status", "-c"]).await;
    assert!(status.contains("in sync"), "{status}");

    // The first version stays listed with its files (history); the second clone pulls the
    // current one.
    let (_, list) = send(server.with_token(
        &token,
        Method::GET,
        &format!("/api/v1/datasets?project_id={project}"),
    ))
    .await;
    let id = list[0]["id"].as_str().unwrap();
    let (_, v1) = send(server.with_token(
        &token,
        Method::GET,
        &format!("/api/v1/datasets/{id}/versions/1"),
    ))
    .await;
    assert_eq!(v1["files"].as_array().map(Vec::len), Some(6), "{v1}");
    let second = ada.clone(&server, &token, "ada/tidy", "second").await;
    ada.webdav(&second, &server, "ada/tidy", &token).await;
    ada.ok(&second, &["pull"]).await;
    assert_eq!(files(&second.join("data")), files(&first.join("data")));

    // Bob lists nothing of Ada's remote; paths outside DVC's layout and unbounded depths are
    // refused.
    let propfind = Method::from_bytes(b"PROPFIND").unwrap();
    let listing = |token: &str, path: &str, depth: &str| {
        server
            .with_token(token, propfind.clone(), path)
            .header("Depth", depth)
    };
    let (status, body) = send(listing(&bob_token, "/dvc/ada/tidy/files/md5", "1")).await;
    assert_error(status, &body, 404, "10205");
    let (status, body) = send(listing(&token, "/dvc/ada/tidy/.dvc/tmp", "1")).await;
    assert_error(status, &body, 404, "90201");
    let (status, body) = send(listing(&token, "/dvc/ada/tidy/files", "infinity")).await;
    assert_error(status, &body, 422, "30421");
}

/// The remote's objects in an S3-compatible bucket (moto's server, a stand-in for S3): pushed
/// there once each under `.dvc-objects/`, pulled back whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_in_s3() {
    let s3 = crate::support::s3::S3Server::start().await;
    let server = TestServer::start_with(Backend::Sqlite, |c| s3.store_projects(c, "/weft")).await;
    let (_, token) = server.user("ada").await;
    let project = server.project(&token, "cloud").await;
    let ada = DvcUser::new();
    let first = ada.clone(&server, &token, "ada/cloud", "first").await;
    ada.ok(&first, &["init", "-q"]).await;
    write_data(&first, 5, 7);
    ada.ok(&first, &["add", "-q", "data"]).await;
    ada.remote(&first, &server, "ada/cloud", &token).await;
    let pushed = ada.ok(&first, &["push"]).await;
    assert!(pushed.contains("6 files pushed"), "{pushed}");
    let prefix = format!("weft/.dvc-objects/{project}/files/md5/");
    let keys = s3.keys().await;
    let objects = keys.iter().filter(|k| k.starts_with(&prefix)).count();
    assert_eq!(objects, 6, "{keys:?}");
    assert!(!keys.iter().any(|k| k.contains(".staging/")), "{keys:?}");
    ada.git.ok(&first, &["add", "-A"]).await;
    ada.git.ok(&first, &["commit", "-qm", "data"]).await;
    ada.git.ok(&first, &["push", "-q", "origin", "HEAD"]).await;
    let second = ada.clone(&server, &token, "ada/cloud", "second").await;
    ada.remote(&second, &server, "ada/cloud", &token).await;
    ada.ok(&second, &["pull"]).await;
    assert_eq!(files(&second.join("data")), files(&first.join("data")));
}
