//! Data versions under `/api/v1/datasets`, fed by the real `dvc` and `git`: a push that
//! changes a `.dvc` file records a version (who, when, which commit, which files), two
//! versions diff, storage counts each object once; a version whose objects arrive after its
//! commit is completed when they do; a project's files become a version DVC would name alike;
//! a pipeline's `dvc.lock`, made by `dvc repro`, records each stage's outputs; versions stored a row per file (before migration 0024) read the same after a restart; an
//! object damaged in storage is never served as good.

use crate::on_both_backends;
use crate::support::dvc::{DvcUser, write_data};
use crate::support::{Backend, TestServer, assert_error, send, wait};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::time::Duration;

on_both_backends!(
    pushes_record_versions_that_diff_and_count_once,
    versions_complete_late_and_project_files_become_versions,
    a_pushed_lock_file_records_what_each_stage_produced,
    rows_of_old_versions_become_lists_and_damaged_objects_are_dropped,
);

/// The project's datasets, once `versions` versions of its first are recorded.
async fn datasets_with(server: &TestServer, token: &str, project: &str, versions: i64) -> Value {
    let path = format!("/api/v1/datasets?project_id={project}");
    wait::until(
        "the push's data version",
        Duration::from_secs(20),
        || async {
            let (_, list) = send(server.with_token(token, Method::GET, &path)).await;
            if list[0]["versions"] == versions {
                Ok(list)
            } else {
                Err(list)
            }
        },
    )
    .await
}

async fn pushes_record_versions_that_diff_and_count_once(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (ada_id, token) = server.user("ada").await;
    let (_, bob) = server.user("bob").await;
    let project = server.project(&token, "survey").await;
    let ada = DvcUser::new();
    let clone = ada.clone(&server, &token, "ada/survey", "clone").await;
    ada.ok(&clone, &["init", "-q"]).await;
    write_data(&clone, 6, 3);
    ada.ok(&clone, &["add", "-q", "data"]).await;
    ada.remote(&clone, &server, "ada/survey", &token).await;
    ada.ok(&clone, &["push"]).await;
    ada.git.ok(&clone, &["add", "-A"]).await;
    ada.git.ok(&clone, &["commit", "-qm", "v1"]).await;
    ada.git.ok(&clone, &["push", "-q", "origin", "HEAD"]).await;
    let first_commit = ada.git.ok(&clone, &["rev-parse", "HEAD"]).await;
    let list = datasets_with(&server, &token, &project, 1).await;
    let v1 = &list[0]["latest"];
    assert_eq!(list[0]["name"], "data");
    assert_eq!(v1["source"], "push");
    assert_eq!(v1["git_commit"], first_commit.trim());
    assert_eq!(
        (v1["created_by"].as_str(), v1["created_by_name"].as_str()),
        (Some(ada_id.as_str()), Some("ada"))
    );
    assert_eq!(
        (v1["files"].as_i64(), v1["complete"].as_bool()),
        (Some(6), Some(true))
    );

    // One file changed, one removed, one added.
    std::fs::write(clone.join("data/part-1.bin"), b"revised").unwrap();
    std::fs::remove_file(clone.join("data/part-2.bin")).unwrap();
    std::fs::write(clone.join("data/extra.csv"), b"a,b\n1,2\n").unwrap();
    ada.ok(&clone, &["add", "-q", "data"]).await;
    ada.ok(&clone, &["push"]).await;
    ada.git.ok(&clone, &["commit", "-qam", "v2"]).await;
    ada.git.ok(&clone, &["push", "-q", "origin", "HEAD"]).await;
    let list = datasets_with(&server, &token, &project, 2).await;
    let id = list[0]["id"].as_str().unwrap().to_string();

    let (status, diff) = send(server.with_token(
        &token,
        Method::GET,
        &format!("/api/v1/datasets/{id}/diff?from=1&to=2"),
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{diff}");
    assert_eq!(diff["added"][0]["path"], "extra.csv");
    assert_eq!(diff["removed"][0]["path"], "part-2.bin");
    assert_eq!(diff["changed"][0]["path"], "part-1.bin");
    assert_eq!(diff["changed"][0]["new_size"], 7);
    assert_eq!(diff["bytes_added"], 7 + 8);

    let (_, detail) =
        send(server.with_token(&token, Method::GET, &format!("/api/v1/datasets/{id}"))).await;
    let versions = detail["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2);
    let logical = versions[0]["bytes"].as_i64().unwrap() + versions[1]["bytes"].as_i64().unwrap();
    let (_, files) = send(server.with_token(
        &token,
        Method::GET,
        &format!("/api/v1/datasets/{id}/versions/2"),
    ))
    .await;
    assert_eq!(files["files"].as_array().unwrap().len(), 6);
    assert!(
        files["files"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["md5"].as_str().unwrap().len() == 32)
    );

    // Storage: the 5 files both versions share are stored once.
    let (_, storage) =
        send(server.with_token(&token, Method::GET, "/api/v1/datasets/storage")).await;
    assert_eq!(storage["logical_bytes"], logical);
    let stored = storage["stored_bytes"].as_i64().unwrap();
    assert!(stored < logical, "{storage}");
    assert_eq!(
        storage["objects"],
        6 + 2 + 2,
        "6 files, 2 new ones, 2 manifests: {storage}"
    );
    assert_eq!(storage["projects"][0]["project_id"], project.as_str());

    // Bob sees none of it.
    let (status, body) =
        send(server.with_token(&bob, Method::GET, &format!("/api/v1/datasets/{id}"))).await;
    assert_error(status, &body, 404, "30220");
    let (_, list) = send(server.with_token(&bob, Method::GET, "/api/v1/datasets")).await;
    assert_eq!(list, serde_json::json!([]));
    let (status, body) = send(server.with_token(
        &bob,
        Method::GET,
        &format!("/api/v1/datasets/storage?user_id={ada_id}"),
    ))
    .await;
    assert_error(status, &body, 403, "90305");
}

async fn versions_complete_late_and_project_files_become_versions(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (_, token) = server.user("ada").await;
    let project = server.project(&token, "late").await;
    let ada = DvcUser::new();
    let clone = ada.clone(&server, &token, "ada/late", "clone").await;
    ada.ok(&clone, &["init", "-q"]).await;
    write_data(&clone, 4, 9);
    ada.ok(&clone, &["add", "-q", "data"]).await;
    ada.remote(&clone, &server, "ada/late", &token).await;
    // git first: the version is recorded before its objects are in the remote.
    ada.git.ok(&clone, &["add", "-A"]).await;
    ada.git.ok(&clone, &["commit", "-qm", "data"]).await;
    ada.git.ok(&clone, &["push", "-q", "origin", "HEAD"]).await;
    let list = datasets_with(&server, &token, &project, 1).await;
    assert_eq!(list[0]["latest"]["complete"], false);
    assert_eq!(list[0]["latest"]["files"], 4, "as the .dvc file says");
    let id = list[0]["id"].as_str().unwrap().to_string();
    let (status, body) = send(server.with_token(
        &token,
        Method::GET,
        &format!("/api/v1/datasets/{id}/versions/1"),
    ))
    .await;
    assert_error(status, &body, 422, "30421");
    ada.ok(&clone, &["push"]).await;
    let (_, files) = send(server.with_token(
        &token,
        Method::GET,
        &format!("/api/v1/datasets/{id}/versions/1"),
    ))
    .await;
    assert_eq!(files["version"]["complete"], true, "{files}");
    assert_eq!(files["files"].as_array().unwrap().len(), 4);

    // Recording the same .dvc file at its commit again finds the version there.
    let record = |body: Value| {
        server
            .with_token(&token, Method::POST, "/api/v1/datasets")
            .json(&body)
    };
    let (status, again) = send(record(
        serde_json::json!({"project_id": project, "dvc_file": "data.dvc", "commit": "HEAD"}),
    ))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{again}");
    assert_eq!(again["recorded"][0]["created"], false);
    assert_eq!(again["recorded"][0]["version"]["number"], 1);

    // The top-level data files, uploaded to the project's folder copy/ and recorded from
    // there, get the oid `dvc add` gives the same folder.
    for entry in std::fs::read_dir(clone.join("data"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_file())
    {
        let name = entry.file_name().into_string().unwrap();
        let path = format!("/api/v1/projects/{project}/files/copy/{name}");
        let (status, body) = send(
            server
                .with_token(&token, Method::PUT, &path)
                .body(std::fs::read(entry.path()).unwrap()),
        )
        .await;
        assert!(status.is_success(), "{body}");
    }
    let (status, made) = send(record(
        serde_json::json!({"project_id": project, "paths": ["copy"], "name": "copy"}),
    ))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    std::fs::remove_dir_all(clone.join("data/nested")).unwrap();
    ada.ok(&clone, &["add", "-q", "data"]).await;
    let dvc_file = std::fs::read_to_string(clone.join("data.dvc")).unwrap();
    let oid = made["recorded"][0]["version"]["oid"].as_str().unwrap();
    assert!(
        dvc_file.contains(oid),
        "DVC names the same files {oid}: {dvc_file}"
    );
    let (status, body) = send(record(
        serde_json::json!({"project_id": project, "paths": ["nothing"], "name": "x"}),
    ))
    .await;
    assert_error(status, &body, 422, "30421");
}

/// The project's datasets by name, once dataset `name` has `versions` versions.
async fn named(
    server: &TestServer,
    token: &str,
    project: &str,
    name: &str,
    versions: i64,
) -> std::collections::BTreeMap<String, Value> {
    let path = format!("/api/v1/datasets?project_id={project}");
    wait::until(
        "the push's data versions",
        Duration::from_secs(20),
        || async {
            let (_, list) = send(server.with_token(token, Method::GET, &path)).await;
            let by_name: std::collections::BTreeMap<String, Value> = list
                .as_array()
                .into_iter()
                .flatten()
                .map(|d| {
                    (
                        d["name"].as_str().unwrap_or_default().to_string(),
                        d.clone(),
                    )
                })
                .collect();
            match by_name.get(name) {
                Some(d) if d["versions"] == versions => Ok(by_name),
                _ => Err(list),
            }
        },
    )
    .await
}

async fn a_pushed_lock_file_records_what_each_stage_produced(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (_, token) = server.user("ada").await;
    let project = server.project(&token, "pipeline").await;
    let ada = DvcUser::new();
    let clone = ada.clone(&server, &token, "ada/pipeline", "clone").await;
    ada.ok(&clone, &["init", "-q"]).await;
    write_data(&clone, 5, 4);
    ada.ok(&clone, &["add", "-q", "data"]).await;
    let stages: [&[&str]; 3] = [
        &[
            "stage",
            "add",
            "-q",
            "-n",
            "prepare",
            "-d",
            "data",
            "-o",
            "prepared",
            "cp -r data prepared",
        ],
        &[
            "stage",
            "add",
            "-q",
            "-n",
            "count",
            "-d",
            "prepared",
            "-o",
            "count.txt",
            "ls -R prepared | wc -l > count.txt",
        ],
        // Its paths are relative to its wdir, which only dvc.yaml names.
        &[
            "stage",
            "add",
            "-q",
            "-n",
            "tally",
            "--wdir",
            "reports",
            "-d",
            "../count.txt",
            "-o",
            "tally.txt",
            "wc -c ../count.txt > tally.txt",
        ],
    ];
    std::fs::create_dir(clone.join("reports")).unwrap();
    std::fs::write(clone.join("reports/README"), "made by dvc repro\n").unwrap();
    for stage in stages {
        ada.ok(&clone, stage).await;
    }
    ada.ok(&clone, &["repro", "-q"]).await;
    ada.remote(&clone, &server, "ada/pipeline", &token).await;
    ada.ok(&clone, &["push"]).await;
    ada.git.ok(&clone, &["add", "-A"]).await;
    ada.git.ok(&clone, &["commit", "-qm", "pipeline"]).await;
    ada.git.ok(&clone, &["push", "-q", "origin", "HEAD"]).await;
    let first = ada.git.ok(&clone, &["rev-parse", "HEAD"]).await;
    let lock = std::fs::read_to_string(clone.join("dvc.lock")).unwrap();

    // The .dvc file's output and each stage's output are datasets, with the files pushed.
    let found = named(&server, &token, &project, "count.txt", 1).await;
    let names: Vec<&str> = found.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        ["count.txt", "data", "prepared", "reports/tally.txt"],
        "deps are no outputs; a stage's outputs are below its wdir"
    );
    assert!(lock.contains("path: tally.txt"), "{lock}");
    let prepared = &found["prepared"]["latest"];
    assert_eq!(prepared["source"], "push");
    assert_eq!(prepared["git_commit"], first.trim());
    assert_eq!(
        (prepared["files"].as_i64(), prepared["complete"].as_bool()),
        (Some(5), Some(true))
    );
    assert!(lock.contains(prepared["oid"].as_str().unwrap()), "{lock}");
    assert_eq!(
        prepared["oid"], found["data"]["latest"]["oid"],
        "a copy is the same content"
    );
    let count = &found["count.txt"]["latest"];
    assert_eq!(
        (count["files"].as_i64(), count["complete"].as_bool()),
        (Some(1), Some(true))
    );

    // A changed input reruns both stages; only the output whose content changed gets a version.
    std::fs::write(clone.join("data/part-1.bin"), b"revised").unwrap();
    ada.ok(&clone, &["add", "-q", "data"]).await;
    ada.ok(&clone, &["repro", "-q"]).await;
    ada.ok(&clone, &["push"]).await;
    ada.git.ok(&clone, &["commit", "-qam", "revised"]).await;
    ada.git.ok(&clone, &["push", "-q", "origin", "HEAD"]).await;
    let found = named(&server, &token, &project, "prepared", 2).await;
    assert_eq!(
        found["count.txt"]["versions"], 1,
        "same count, same content"
    );
    let id = found["prepared"]["id"].as_str().unwrap();
    let (_, diff) = send(server.with_token(
        &token,
        Method::GET,
        &format!("/api/v1/datasets/{id}/diff?from=1&to=2"),
    ))
    .await;
    assert_eq!(diff["changed"][0]["path"], "part-1.bin", "{diff}");

    // Recording the lock file by hand finds every version there; dvc.yaml names no content.
    let record = |body: Value| {
        server
            .with_token(&token, Method::POST, "/api/v1/datasets")
            .json(&body)
    };
    let (status, again) = send(record(
        serde_json::json!({"project_id": project, "dvc_file": "dvc.lock"}),
    ))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{again}");
    let created: Vec<&Value> = again["recorded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["created"])
        .collect();
    assert_eq!(created, [&Value::Bool(false); 3], "{again}");
    let (status, body) = send(record(
        serde_json::json!({"project_id": project, "dvc_file": "dvc.yaml"}),
    ))
    .await;
    assert_error(status, &body, 422, "90402");
}

/// A version stored as a Weft before migration 0024 stored it (a row per file) is converted
/// by a restart and lists the same files; an object whose stored bytes are not its md5's
/// (as a crash of the machine may leave one, unflushed) breaks its download off, is
/// forgotten (its bytes leave the owner's usage) and is taken again by the next push.
async fn rows_of_old_versions_become_lists_and_damaged_objects_are_dropped(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (ada_id, token) = server.user("ada").await;
    let project = server.project(&token, "old").await;
    let pool = server.state.store.pool();
    let (dataset, version) = (
        "0190a3c4-0000-7000-8000-00000000d000",
        "0190a3c4-0000-7000-8000-00000000d001",
    );
    sqlx::query("INSERT INTO datasets (id, project_id, owner_id, name, created_at) VALUES ($1, $2, $3, 'old', 0)")
        .bind(dataset)
        .bind(&project)
        .bind(&ada_id)
        .execute(pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO dataset_versions (id, dataset_id, number, oid, git_commit, source, created_by, \
         created_at, files, bytes, complete) VALUES ($1, $2, 1, $3, NULL, 'files', $4, 0, 3, 15, 1)",
    )
    .bind(version)
    .bind(dataset)
    .bind(format!("{:032x}.dir", 7))
    .bind(&ada_id)
    .execute(pool)
    .await
    .unwrap();
    let rows = [
        ("b/z.csv", "0123456789abcdef0123456789abcdef", 5i64),
        ("a.txt", "d41d8cd98f00b204e9800998ecf8427e", 0),
        ("b/y y.csv", "ffffffffffffffffffffffffffffffff", 10),
    ];
    for (path, md5, size) in rows {
        sqlx::query(
            "INSERT INTO dataset_files (version_id, path, md5, size) VALUES ($1, $2, $3, $4)",
        )
        .bind(version)
        .bind(path)
        .bind(md5)
        .bind(size)
        .execute(pool)
        .await
        .unwrap();
    }
    let _restarted = server.reopen().await;
    let left: i64 = sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM dataset_files")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(left, 0, "the rows are converted");
    let (status, listed) = send(server.with_token(
        &token,
        Method::GET,
        &format!("/api/v1/datasets/{dataset}/versions/1"),
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_eq!(
        listed["files"],
        serde_json::json!([
            {"path": "a.txt", "md5": "d41d8cd98f00b204e9800998ecf8427e", "size": 0},
            {"path": "b/y y.csv", "md5": "ffffffffffffffffffffffffffffffff", "size": 10},
            {"path": "b/z.csv", "md5": "0123456789abcdef0123456789abcdef", "size": 5},
        ])
    );

    // An object pushed, then damaged on disk.
    let content = b"hello, data";
    let md5 = {
        use md5::{Digest as _, Md5};
        hex::encode(Md5::digest(content))
    };
    let url = format!(
        "{}/dvc/{project}/files/md5/{}/{}",
        server.base,
        &md5[..2],
        &md5[2..]
    );
    let put = || {
        server
            .client
            .put(&url)
            .bearer_auth(&token)
            .body(content.to_vec())
            .send()
    };
    assert_eq!(put().await.unwrap().status(), StatusCode::CREATED);
    let used = || async {
        let (_, storage) =
            send(server.with_token(&token, Method::GET, "/api/v1/datasets/storage")).await;
        (
            storage["stored_bytes"].as_i64().unwrap(),
            storage["objects"].as_i64().unwrap(),
        )
    };
    assert_eq!(used().await, (content.len() as i64, 1));
    let stored = server
        .state
        .config
        .data_dir
        .join("projects/.dvc-objects")
        .join(&project)
        .join(format!("files/md5/{}/{}", &md5[..2], &md5[2..]));
    std::fs::write(&stored, b"hello, dat\0").unwrap();
    // A small object may be read to its end before the headers leave: then the answer breaks
    // off before them, else after them; never does it end as if whole.
    let received = match server.client.get(&url).bearer_auth(&token).send().await {
        Ok(answer) => answer.bytes().await,
        Err(e) => Err(e),
    };
    assert!(received.is_err(), "the download breaks off: {received:?}");
    let head = server
        .client
        .head(&url)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        head.status(),
        StatusCode::NOT_FOUND,
        "the damaged object is forgotten"
    );
    assert_eq!(used().await, (0, 0));
    assert_eq!(
        put().await.unwrap().status(),
        StatusCode::CREATED,
        "pushed again"
    );
    let again = server
        .client
        .get(&url)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(&again.bytes().await.unwrap()[..], content);
    assert_eq!(used().await, (content.len() as i64, 1));
}
