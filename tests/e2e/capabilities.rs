//! Capabilities are deny-by-default: a plugin uses HTTP, secrets or artifacts only when it
//! declared them AND an admin granted them.

use crate::support::fixtures::fixture;
use crate::support::{Backend, TestServer, assert_error, send};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn local_http_server() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route(
        "/hello",
        axum::routing::get(|| async { "hello from the test server" }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

async fn grant(server: &TestServer, plugin: &str, grants: Value) {
    let (status, body) = send(
        server
            .admin(Method::PUT, &format!("/api/v1/plugins/{plugin}/grants"))
            .json(&grants),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["grants"]["http"],
        grants.get("http").cloned().unwrap_or(json!([]))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_only_to_granted_hosts_of_declaring_nodes() {
    let server = TestServer::start(Backend::Sqlite).await;
    let addr = local_http_server().await;
    let url = format!("http://{addr}/hello");

    // http-request declares `http`, but nothing is granted yet.
    let (status, err) = server
        .run_plugin("http-request", json!({"config": {"url": url}}))
        .await;
    assert_error(status, &err, 422, "60205");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("denied"),
        "{err}"
    );

    // Granting another host does not help; granting this one does.
    grant(&server, "http-request", json!({"http": ["example.com"]})).await;
    let (status, _) = server
        .run_plugin("http-request", json!({"config": {"url": url}}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    grant(&server, "http-request", json!({"http": [addr.to_string()]})).await;
    let (status, out) = server
        .run_plugin("http-request", json!({"config": {"url": url}}))
        .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out["outputs"]["out"]["status"], 200);
    assert_eq!(out["outputs"]["out"]["body"], "hello from the test server");

    // A node that never declared `http` gets nothing, even when an admin grants it.
    let (status, _) = server.upload(fixture("sneaky-http")).await;
    assert_eq!(status, StatusCode::CREATED);
    grant(&server, "sneaky-http", json!({"http": [addr.to_string()]})).await;
    let (status, out) = server
        .run_plugin("sneaky-http", json!({"config": {"url": url}}))
        .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out["outputs"]["out"]["ok"], false, "{out}");
    let denial_logged = out["events"].as_array().unwrap().iter().any(|e| {
        e["level"] == "warn" && e["message"].as_str().unwrap_or_default().contains("denied")
    });
    assert!(denial_logged, "{out}");

    let (status, err) = send(
        server
            .admin(Method::PUT, "/api/v1/plugins/sneaky-http/grants")
            .json(&json!({"http": ["http://bad/url"]})),
    )
    .await;
    assert_error(status, &err, 422, "90402");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_need_a_declaration_and_a_grant() {
    let server = TestServer::start_with(Backend::Sqlite, |c| {
        c.secrets.insert("api-key".into(), "s3cret".into());
    })
    .await;
    let (status, _) = server.upload(fixture("sneaky-secret")).await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, out) = server
        .run_plugin("sneaky-secret", json!({"config": {"name": "api-key"}}))
        .await;
    assert_eq!(out["outputs"]["out"]["ok"], false, "{out}");
    assert!(
        out["outputs"]["out"]["error"]
            .as_str()
            .unwrap()
            .contains("denied"),
        "{out}"
    );
    assert!(!out.to_string().contains("s3cret"));

    grant(&server, "sneaky-secret", json!({"secrets": ["*"]})).await;
    let (_, out) = server
        .run_plugin("sneaky-secret", json!({"config": {"name": "api-key"}}))
        .await;
    assert_eq!(
        out["outputs"]["out"]["ok"], false,
        "undeclared capability must stay void: {out}"
    );
    assert!(!out.to_string().contains("s3cret"));
}

/// Artifacts: denied without a grant (nothing stored); granted, content-addressed in the data
/// folder and readable from a later call; keys that are not artifact keys are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn artifacts_need_a_grant_and_outlive_the_call() {
    let server = TestServer::start(Backend::Sqlite).await;
    let (status, _) = server.upload(fixture("artifact-store")).await;
    assert_eq!(status, StatusCode::CREATED);
    let store = |config: Value| server.run_plugin("artifact-store", json!({ "config": config }));
    let artifacts = server.config.data_dir.join("artifacts");

    let (_, out) = store(json!({"text": "hello artifacts"})).await;
    assert_eq!(out["outputs"]["out"]["ok"], false, "{out}");
    let error = out["outputs"]["out"]["error"].as_str().unwrap();
    assert!(error.contains("denied"), "{out}");
    assert!(!artifacts.exists() || std::fs::read_dir(&artifacts).unwrap().next().is_none());

    grant(&server, "artifact-store", json!({"artifacts": true})).await;
    let (_, out) = store(json!({"text": "hello artifacts"})).await;
    let written = &out["outputs"]["out"];
    assert_eq!(written["ok"], true, "{out}");
    assert_eq!(written["text"], "hello artifacts");
    let key = written["key"].as_str().unwrap();
    assert_eq!(
        key,
        weft_runtime::content_hash(b"hello artifacts"),
        "content-addressed"
    );
    assert_eq!(
        std::fs::read(artifacts.join(key)).unwrap(),
        b"hello artifacts"
    );

    let (_, out) = store(json!({"key": key})).await;
    assert_eq!(out["outputs"]["out"]["text"], "hello artifacts", "{out}");
    for bad in ["../weft.db", &"0".repeat(64)] {
        let (_, out) = store(json!({"key": bad})).await;
        assert_eq!(out["outputs"]["out"]["ok"], false, "{bad}: {out}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strategies_select_and_survive_a_trap() {
    use weft_runtime::{Instance, Limits, NoServices, Task};
    let server = TestServer::start(Backend::Sqlite).await;
    let plugins = &server.state.plugins;
    let instances: Vec<Instance> = (0..3)
        .map(|i| Instance {
            id: format!("ti-{i}"),
            model: "m".into(),
            host: "127.0.0.1".into(),
            queue_length: i,
            healthy: i != 1,
            reported_expected_ms: None,
            reported_error_ms: None,
        })
        .collect();
    let task = Task {
        id: "t".into(),
        model: "m".into(),
        metadata: "{}".into(),
    };
    let services = || {
        std::sync::Arc::new(NoServices {
            plugin: "test".into(),
        })
    };

    let (_, _, rr) = plugins.strategy("round-robin").await.unwrap();
    let rr = rr
        .instantiate(plugins.runtime(), Limits::default(), services())
        .await
        .unwrap();
    let mut chosen = Vec::new();
    for _ in 0..4 {
        chosen.push(rr.select(&task, &instances).await.unwrap().instance_id);
    }
    assert!(
        !chosen.contains(&"ti-1".to_string()),
        "unhealthy instance chosen: {chosen:?}"
    );
    assert_ne!(
        chosen[0], chosen[1],
        "round-robin must alternate: {chosen:?}"
    );
    assert_eq!(chosen[0], chosen[2]);
    let all_down: Vec<Instance> = instances
        .iter()
        .cloned()
        .map(|mut i| {
            i.healthy = false;
            i
        })
        .collect();
    let refused = rr.select(&task, &all_down).await.unwrap_err();
    assert_eq!(refused.kind(), "refused");

    let (status, _) = server.upload(fixture("trap-strategy")).await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, _, trap) = plugins.strategy("trap-strategy").await.unwrap();
    let trap = trap
        .instantiate(plugins.runtime(), Limits::default(), services())
        .await
        .unwrap();
    let err = trap.select(&task, &instances).await.unwrap_err();
    assert_eq!(err.kind(), "trap", "{err}");
    // The trapped instance was replaced: the next call works.
    let prediction = trap.predict(&instances[0]).await.unwrap();
    assert_eq!(prediction.expected_ms, 0.0);
    // And a node is not a strategy.
    assert!(plugins.strategy("fibo").await.is_err());
}
