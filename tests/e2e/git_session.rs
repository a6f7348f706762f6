//! Versioning with a running Jupyter session (real engine, SQLite): a commit syncs the
//! workspace first, and a checkout gives the workspace the files it changed (those alone).

use crate::support::docker;
use crate::support::{Backend, TestServer, send};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// `PUT` of a text file through Jupyter's contents API at `site`.
async fn save(server: &TestServer, token: &str, site: &str, path: &str, text: &str) {
    let body = json!({ "type": "file", "format": "text", "content": text });
    let request = server.client.put(format!("{site}api/contents/{path}"));
    let (status, saved) = send(request.bearer_auth(token).json(&body)).await;
    assert!(status.is_success(), "{saved}");
}

/// A file as Jupyter reads it in the workspace: its status and model (`content`,
/// `last_modified`).
async fn model(server: &TestServer, token: &str, site: &str, path: &str) -> (StatusCode, Value) {
    let request = server
        .client
        .get(format!("{site}api/contents/{path}?content=1"));
    send(request.bearer_auth(token)).await
}

/// A file's status and text in the workspace.
async fn read(server: &TestServer, token: &str, site: &str, path: &str) -> (StatusCode, Value) {
    let (status, file) = model(server, token, site, path).await;
    (status, file["content"].clone())
}

/// A file saved in Jupyter is in the next commit (the session was synced first); checking out
/// an older commit changes and removes files in the workspace too, and leaves the files it did
/// not change untouched (not copied in again: their time stays).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_is_synced_before_a_commit_and_follows_a_checkout() {
    let image = weft::config::WorkspacesConfig::default().jupyter.image;
    assert!(
        docker::docker(&["image", "inspect", &image]).0,
        "{image} is missing: run tests/run.sh (it builds it)"
    );
    let (server, _cleanup) = docker::server(Backend::Sqlite, |c| {
        c.workspaces.start_timeout_secs = 90;
        c.workspaces.memory = "512Mi".into();
    })
    .await;
    let (_, bob) = server.user("bob").await;
    let project = server.project(&bob, "analysis").await;
    server.put_file(&bob, &project, "a.txt", "one\n").await;
    server.put_file(&bob, &project, "c.txt", "same\n").await;
    let first = server.commit(&bob, &project, "one").await;
    let (status, opened) = server.open_session(&bob, &project, "jupyter").await;
    assert_eq!(status, StatusCode::CREATED, "{opened}");
    let session = server.session_ready(&bob, &project).await;
    let site = session["url"].as_str().unwrap().to_string();
    save(&server, &bob, &site, "a.txt", "two\n").await;
    save(&server, &bob, &site, "b.txt", "from jupyter\n").await;
    // Saved by Jupyter, its time has a fraction of a second, which a copy would not keep.
    save(&server, &bob, &site, "c.txt", "same\n").await;
    let second = server.commit(&bob, &project, "two").await;
    let changed: Vec<&str> = second["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["path"].as_str().unwrap())
        .collect();
    assert_eq!(changed, ["a.txt", "b.txt"], "{second}");
    let before = model(&server, &bob, &site, "c.txt").await.1["last_modified"].clone();
    let checkout = json!({ "project_id": project, "ref": first["commit_id"] });
    let (status, done) = server.git_post(&bob, "checkout", checkout).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(
        read(&server, &bob, &site, "a.txt").await,
        (StatusCode::OK, json!("one\n"))
    );
    assert_eq!(
        read(&server, &bob, &site, "b.txt").await.0,
        StatusCode::NOT_FOUND
    );
    let after = model(&server, &bob, &site, "c.txt").await.1["last_modified"].clone();
    assert_eq!(after, before, "c.txt was copied in again");
    let (status, stopped) = server.stop_session(&bob, &project).await;
    assert_eq!(status, StatusCode::OK, "{stopped}");
    assert_eq!(server.file_paths(&bob, &project).await, ["a.txt", "c.txt"]);
}
