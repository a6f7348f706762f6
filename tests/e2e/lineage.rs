//! Lineage: a workflow run on a project's commit reads a dataset version, stores an artifact
//! recorded as a model version and writes it as a version of another dataset of the project,
//! all through the `artifacts` capability; the run's, the datasets' and the model's lineage
//! show what the host saw the node do. A node without
//! the grant is refused (and nothing is recorded); another user is refused every lineage.

use crate::on_both_backends;
use crate::support::fixtures::fixture;
use crate::support::{Backend, TestServer, assert_error, node, send};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

on_both_backends!(a_run_records_the_code_data_and_models_it_used);

async fn a_run_records_the_code_data_and_models_it_used(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (status, _) = server.upload(fixture("artifact-store")).await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, ada) = server.user("ada").await;
    let (_, bob) = server.user("bob").await;
    let project = server.project(&ada, "survey").await;
    server
        .put_file(&ada, &project, "data/a.txt", "alpha\n")
        .await;
    server
        .put_file(&ada, &project, "data/b.txt", "beta\n")
        .await;
    let post = |path: &str, body: Value| server.with_token(&ada, Method::POST, path).json(&body);
    let (status, commit) = send(post(
        "/api/v1/git/commit",
        json!({"project_id": project, "message": "data"}),
    ))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{commit}");
    let commit = commit["commit_id"].as_str().unwrap().to_string();
    let (status, recorded) = send(post(
        "/api/v1/datasets",
        json!({"project_id": project, "paths": ["data"], "name": "data"}),
    ))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{recorded}");
    let dataset = recorded["recorded"][0]["dataset"]["id"]
        .as_str()
        .unwrap()
        .to_string();

    let workflow = server
        .create_workflow(
            &ada,
            json!({"name": "train", "edges": [], "nodes": [{"id": "train", "type": "artifact-store",
                "config": {"dataset": dataset, "path": "a.txt", "text": "trained", "model": "survey-model",
                    "write": "results"}}]}),
        )
        .await;
    let path = format!(
        "/api/v1/workflows/{}/execute",
        workflow["id"].as_str().unwrap()
    );
    let (status, body) = send(post(&path, json!({"project": "nope"}))).await;
    assert_error(status, &body, 404, "10205");
    let run_on_project = || async {
        let (status, run) = send(post(&path, json!({"project": "survey"}))).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{run}");
        assert_eq!(run["git_commit"], commit.as_str(), "pinned at start: {run}");
        let id = run["id"].as_str().unwrap().to_string();
        (server.wait_run(&ada, &id).await, id)
    };
    let lineage = |token: &str, path: String| {
        let request = server.with_token(token, Method::GET, &path);
        async move { send(request).await }
    };

    // Without the grant the node is refused, and nothing is recorded.
    let (run, denied_run) = run_on_project().await;
    let out = &node(&run, "train")["outputs"]["out"];
    assert_eq!(out["ok"], false, "{run}");
    assert!(
        out["error"].as_str().unwrap().starts_with("denied"),
        "{out}"
    );
    let (status, seen) = lineage(&ada, format!("/api/v1/runs/{denied_run}/lineage")).await;
    assert_eq!(status, StatusCode::OK, "{seen}");
    assert_eq!(seen["project_id"], project.as_str());
    assert_eq!(seen["datasets"], json!([]));
    assert_eq!(seen["datasets_written"], json!([]));
    assert_eq!(seen["artifacts"], json!([]));

    let (status, body) = send(
        server
            .admin(Method::PUT, "/api/v1/plugins/artifact-store/grants")
            .json(&json!({"everyone": true, "artifacts": true})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (run, run_id) = run_on_project().await;
    let out = &node(&run, "train")["outputs"]["out"];
    assert_eq!(out["ok"], true, "{run}");
    assert_eq!(out["text"], "alpha\ntrained");
    assert_eq!(out["files"], 2);
    let key = out["key"].as_str().unwrap().to_string();
    let model = out["model"][0].as_str().unwrap().to_string();
    assert_eq!(out["model"][1], 1);
    let written = out["written"][0].as_str().unwrap().to_string();
    assert_eq!(out["written"][1], 1);

    let (status, seen) = lineage(&ada, format!("/api/v1/runs/{run_id}/lineage")).await;
    assert_eq!(status, StatusCode::OK, "{seen}");
    assert_eq!(seen["git_commit"], commit.as_str(), "{seen}");
    let datasets = seen["datasets"].as_array().unwrap();
    assert_eq!(
        datasets.len(),
        1,
        "the manifest and the file are one version: {seen}"
    );
    assert_eq!(datasets[0]["id"], dataset.as_str());
    assert_eq!(datasets[0]["name"], "data");
    assert_eq!(datasets[0]["version"], 1);
    assert_eq!(datasets[0]["node_id"], "train");
    assert_eq!(seen["artifacts"][0]["id"], key.as_str(), "{seen}");
    assert_eq!(seen["artifacts"][0]["name"], "note.txt");
    assert_eq!(seen["models"][0]["id"], model.as_str(), "{seen}");
    assert_eq!(seen["models"][0]["name"], "survey-model");
    let wrote = &seen["datasets_written"];
    assert_eq!(wrote.as_array().map(Vec::len), Some(1), "{seen}");
    assert_eq!(wrote[0]["id"], written.as_str());
    assert_eq!(wrote[0]["name"], "results");
    assert_eq!(wrote[0]["version"], 1);
    assert_eq!(wrote[0]["kind"], "dataset_written");

    // The written version is the project's, at the run's commit, with the node's file.
    let (_, version) = lineage(&ada, format!("/api/v1/datasets/{written}/versions/1")).await;
    assert_eq!(version["version"]["source"], "run", "{version}");
    assert_eq!(version["version"]["git_commit"], commit.as_str());
    assert_eq!(version["version"]["complete"], true);
    let md5 = hex::encode(<md5::Md5 as md5::Digest>::digest(b"alpha\ntrained"));
    assert_eq!(
        version["files"],
        json!([{"path": "note.txt", "md5": md5, "size": 13}]),
        "{version}"
    );
    let (_, seen) = lineage(&ada, format!("/api/v1/datasets/{written}/lineage")).await;
    assert_eq!(seen["writers"][0]["run_id"], run_id.as_str(), "{seen}");
    assert_eq!(seen["runs"], json!([]), "nobody read it: {seen}");
    let (status, list) = lineage(&ada, format!("/api/v1/datasets?project_id={project}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list.as_array().map(Vec::len), Some(2), "{list}");

    let (status, seen) = lineage(&ada, format!("/api/v1/datasets/{dataset}/lineage")).await;
    assert_eq!(status, StatusCode::OK, "{seen}");
    let runs: Vec<&str> = seen["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["run_id"].as_str().unwrap())
        .collect();
    assert_eq!(runs, [run_id.as_str()], "{seen}");
    assert_eq!(seen["models"][0]["id"], model.as_str(), "{seen}");
    assert_eq!(seen["writers"], json!([]), "{seen}");

    let (status, seen) = lineage(&ada, format!("/api/v1/models/{model}/lineage")).await;
    assert_eq!(status, StatusCode::OK, "{seen}");
    assert_eq!(seen["versions"][0]["run_id"], run_id.as_str(), "{seen}");
    assert_eq!(seen["versions"][0]["version"], 1);
    assert_eq!(seen["code"][0]["git_commit"], commit.as_str(), "{seen}");
    assert_eq!(seen["code"][0]["project_id"], project.as_str());
    assert_eq!(seen["datasets"][0]["id"], dataset.as_str(), "{seen}");
    // The version holds the artifact, as the seed's model API shows it.
    let (_, detail) = lineage(&ada, format!("/api/v1/models/{model}")).await;
    assert_eq!(detail["versions"][0]["artifacts"], json!([key]), "{detail}");

    // Another user reaches none of it; an admin reaches all of it.
    let (status, body) = lineage(&bob, format!("/api/v1/runs/{run_id}/lineage")).await;
    assert_error(status, &body, 404, "90203");
    let (status, body) = lineage(&bob, format!("/api/v1/datasets/{dataset}/lineage")).await;
    assert_error(status, &body, 404, "30220");
    let (status, body) = lineage(&bob, format!("/api/v1/models/{model}/lineage")).await;
    assert_error(status, &body, 403, "30310");
    let admin = server.admin_token.clone();
    let (status, seen) = lineage(&admin, format!("/api/v1/models/{model}/lineage")).await;
    assert_eq!(status, StatusCode::OK, "{seen}");

    // A run that names no project has nowhere to write.
    let (status, run) = send(post(&path, json!({}))).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{run}");
    let run = server.wait_run(&ada, run["id"].as_str().unwrap()).await;
    let out = &node(&run, "train")["outputs"]["out"];
    assert!(
        out["error"].as_str().unwrap().starts_with("30225: "),
        "{out}"
    );
    // A file must be an artifact of the run's owner.
    let config = json!({"text": "x", "write": "results", "write_key": "0".repeat(64)});
    let (_, run) = server
        .run_plugin("artifact-store", json!({ "config": config }))
        .await;
    let error = run["outputs"]["out"]["error"].as_str().unwrap();
    assert!(error.starts_with("30226: "), "{run}");
}
