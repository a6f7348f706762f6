//! Capabilities are deny-by-default: a plugin uses HTTP, secrets or artifacts only when it
//! declared them AND an admin granted them to the user it runs for. HTTP reaches only granted
//! hosts and ports, and an address the name resolves to only when it is public or granted by
//! address; artifacts live in the run owner's namespace.

use crate::on_both_backends;
use crate::support::fixtures::fixture;
use crate::support::{Backend, TestServer, assert_error, node, send};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

on_both_backends!(
    http_only_to_granted_hosts_of_declaring_nodes,
    secrets_need_a_declaration_and_a_grant,
    artifacts_need_a_grant_and_outlive_the_call,
    strategies_select_and_survive_a_trap,
    grants_scoped_to_a_user_are_not_inherited,
    http_checks_the_address_a_granted_name_resolves_to,
    artifacts_of_one_user_are_not_readable_by_anothers_run,
);

/// An HTTP server on loopback answering `/hello`, counting the requests it got.
async fn local_http_server() -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    let app = axum::Router::new().route(
        "/hello",
        axum::routing::get(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            async { "hello from the test server" }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, hits)
}

/// Replaces the grants of `plugin` with `grants` (one grant or a list), asserting it worked.
async fn grant(server: &TestServer, plugin: &str, grants: Value) {
    let (status, body) = send(
        server
            .admin(Method::PUT, &format!("/api/v1/plugins/{plugin}/grants"))
            .json(&grants),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let first = if grants.is_array() {
        &grants[0]
    } else {
        &grants
    };
    assert_eq!(
        body["grants"][0]["http"],
        first.get("http").cloned().unwrap_or(json!([]))
    );
}

async fn http_only_to_granted_hosts_of_declaring_nodes(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (addr, _) = local_http_server().await;
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
    grant(
        &server,
        "http-request",
        json!({"everyone": true, "http": ["example.com"]}),
    )
    .await;
    let (status, err) = server
        .run_plugin("http-request", json!({"config": {"url": url}}))
        .await;
    assert_error(status, &err, 422, "60205");
    grant(
        &server,
        "http-request",
        json!({"everyone": true, "http": [addr.to_string()]}),
    )
    .await;
    let (status, out) = server
        .run_plugin("http-request", json!({"config": {"url": url}}))
        .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out["outputs"]["out"]["status"], 200);
    assert_eq!(out["outputs"]["out"]["body"], "hello from the test server");

    // A node that never declared `http` gets nothing, even when an admin grants it.
    let (status, _) = server.upload(fixture("sneaky-http")).await;
    assert_eq!(status, StatusCode::CREATED);
    grant(
        &server,
        "sneaky-http",
        json!({"everyone": true, "http": [addr.to_string()]}),
    )
    .await;
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
            .json(&json!({"everyone": true, "http": ["http://bad/url"]})),
    )
    .await;
    assert_error(status, &err, 422, "90402");
}

async fn secrets_need_a_declaration_and_a_grant(backend: Backend) {
    let server = TestServer::start_with(backend, |c| {
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

    grant(
        &server,
        "sneaky-secret",
        json!({"everyone": true, "secrets": ["*"]}),
    )
    .await;
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
async fn artifacts_need_a_grant_and_outlive_the_call(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (status, _) = server.upload(fixture("artifact-store")).await;
    assert_eq!(status, StatusCode::CREATED);
    let store = |config: Value| server.run_plugin("artifact-store", json!({ "config": config }));
    let artifacts = server.config.data_dir.join("artifacts");
    let admin = server
        .state
        .auth
        .sign_in(&server.admin_token, None)
        .await
        .unwrap();

    let (_, out) = store(json!({"text": "hello artifacts"})).await;
    assert_eq!(out["outputs"]["out"]["ok"], false, "{out}");
    let error = out["outputs"]["out"]["error"].as_str().unwrap();
    assert!(error.contains("denied"), "{out}");
    assert!(!artifacts.exists() || std::fs::read_dir(&artifacts).unwrap().next().is_none());

    grant(
        &server,
        "artifact-store",
        json!({"everyone": true, "artifacts": true}),
    )
    .await;
    let (_, out) = store(json!({"text": "hello artifacts"})).await;
    let written = &out["outputs"]["out"];
    assert_eq!(written["ok"], true, "{out}");
    assert_eq!(written["text"], "hello artifacts");
    let key = written["key"].as_str().unwrap();
    // SHA-256 of the text (`printf 'hello artifacts' | sha256sum`).
    assert_eq!(
        key, "fe6ad633adbe0867d26cd0620978e74f605dc53d853cee4ff111b11a54ee4954",
        "content-addressed"
    );
    assert_eq!(
        std::fs::read(artifacts.join(&admin.user_id).join(key)).unwrap(),
        b"hello artifacts",
        "stored in the caller's namespace"
    );

    let (_, out) = store(json!({"key": key})).await;
    assert_eq!(out["outputs"]["out"]["text"], "hello artifacts", "{out}");
    for bad in ["../weft.db", &"0".repeat(64)] {
        let (_, out) = store(json!({"key": bad})).await;
        assert_eq!(out["outputs"]["out"]["ok"], false, "{bad}: {out}");
    }
}

async fn strategies_select_and_survive_a_trap(backend: Backend) {
    use weft_runtime::{Instance, Limits, NoServices, Task};
    let server = TestServer::start(backend).await;
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

/// A grant scoped to alice is hers alone: bob and the admin run the same node without it,
/// directly and in a workflow (where the run's owner counts); a grant must say whom it is for;
/// a role scope covers the users with that role.
async fn grants_scoped_to_a_user_are_not_inherited(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (addr, hits) = local_http_server().await;
    let url = format!("http://{addr}/hello");
    let (alice_id, alice) = server.user("alice").await;
    let (_, bob) = server.user("bob").await;
    let run_as = |token: &str| {
        send(
            server
                .with_token(token, Method::POST, "/api/v1/plugins/http-request/run")
                .json(&json!({"config": {"url": url}})),
        )
    };

    let (status, err) = send(
        server
            .admin(Method::PUT, "/api/v1/plugins/http-request/grants")
            .json(&json!({"http": [addr.to_string()]})),
    )
    .await;
    assert_error(status, &err, 422, "90402");
    assert!(err["hint"].as_str().unwrap().contains("everyone"), "{err}");

    grant(
        &server,
        "http-request",
        json!({"scope": {"users": ["alice"]}, "http": [addr.to_string()]}),
    )
    .await;
    let (_, shown) = send(server.admin(Method::GET, "/api/v1/plugins/http-request")).await;
    assert_eq!(
        shown["grants"][0]["scope"]["users"],
        json!([alice_id]),
        "names are stored as ids: {shown}"
    );

    let (status, out) = run_as(&alice).await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out["outputs"]["out"]["body"], "hello from the test server");
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    for other in [&bob, &server.admin_token] {
        let (status, err) = run_as(other).await;
        assert_error(status, &err, 422, "60205");
        let message = err["message"].as_str().unwrap();
        assert!(message.contains("denied"), "{err}");
        assert!(!message.contains("denied: denied"), "said once: {err}");
    }
    assert_eq!(
        hits.load(Ordering::SeqCst),
        1,
        "bob's and the admin's requests never left Weft"
    );

    let fetch = json!({"name": "fetch", "nodes": [
        {"id": "get", "type": "http-request", "config": {"url": url}}], "edges": []});
    let run = server.run_workflow(&alice, fetch.clone()).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let run = server.run_workflow(&bob, fetch).await;
    assert_eq!(run["status"], "failed", "{run}");
    let logs = node(&run, "get")["logs"].to_string();
    assert!(logs.contains("not granted"), "{run}");
    assert_eq!(
        hits.load(Ordering::SeqCst),
        2,
        "only alice's run reached it"
    );

    grant(
        &server,
        "http-request",
        json!([{"scope": {"roles": ["user"]}, "http": [addr.to_string()]}]),
    )
    .await;
    let (status, out) = run_as(&bob).await;
    assert_eq!(status, StatusCode::OK, "{out}");
    let (status, err) = run_as(&server.admin_token).await;
    assert_error(status, &err, 422, "60205");
}

/// A granted name is checked again at the address it resolves to: `localhost` reaches
/// loopback only when the grant names the address; the port is part of every grant (80 and
/// 443 when none is given); `0.0.0.0/0` names no loopback or link-local address.
async fn http_checks_the_address_a_granted_name_resolves_to(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (addr, hits) = local_http_server().await;
    let port = addr.port();
    let fetch = |url: &str| server.run_plugin("http-request", json!({"config": {"url": url}}));
    let by_name = format!("http://localhost:{port}/hello");
    let by_address = format!("http://127.0.0.1:{port}/hello");
    let hits_now = || hits.load(Ordering::SeqCst);

    grant(
        &server,
        "http-request",
        json!({"everyone": true, "http": [format!("localhost:{port}"), format!("0.0.0.0/0:{port}")]}),
    )
    .await;
    for url in [&by_name, &by_address] {
        let (status, err) = fetch(url).await;
        assert_error(status, &err, 422, "60205");
    }
    assert_eq!(hits_now(), 0, "refused before connecting");
    let admin = server.admin_token.clone();
    let run = server
        .run_workflow(
            &admin,
            json!({"name": "rebind", "nodes": [
                {"id": "get", "type": "http-request", "config": {"url": by_name}}], "edges": []}),
        )
        .await;
    let logs = node(&run, "get")["logs"].to_string();
    assert!(
        logs.contains("loopback") && logs.contains(&format!("127.0.0.1:{port}")),
        "the log says why and what to grant: {logs}"
    );

    grant(
        &server,
        "http-request",
        json!({"everyone": true, "http": [format!("localhost:{port}"), format!("127.0.0.1:{port}")]}),
    )
    .await;
    for url in [&by_name, &by_address] {
        let (status, out) = fetch(url).await;
        assert_eq!(status, StatusCode::OK, "{url}: {out}");
        assert_eq!(out["outputs"]["out"]["body"], "hello from the test server");
    }
    assert_eq!(hits_now(), 2);

    let (other, other_hits) = local_http_server().await;
    let (status, err) = fetch(&format!("http://127.0.0.1:{}/hello", other.port())).await;
    assert_error(status, &err, 422, "60205");
    grant(
        &server,
        "http-request",
        json!({"everyone": true, "http": ["localhost", "127.0.0.0/8"]}),
    )
    .await;
    for url in [&by_name, &by_address] {
        let (status, err) = fetch(url).await;
        assert_error(status, &err, 422, "60205");
    }
    assert_eq!(other_hits.load(Ordering::SeqCst), 0, "wrong port refused");
    assert_eq!(hits_now(), 2, "no port granted means 80 and 443 only");

    grant(
        &server,
        "http-request",
        json!({"everyone": true, "http": ["0.0.0.0/0:80"]}),
    )
    .await;
    let run = server
        .run_workflow(
            &admin,
            json!({"name": "metadata", "nodes": [{"id": "get", "type": "http-request",
                "config": {"url": "http://169.254.169.254/latest/meta-data/"}}], "edges": []}),
        )
        .await;
    assert_eq!(run["status"], "failed", "{run}");
    let logs = node(&run, "get")["logs"].to_string();
    assert!(logs.contains("link-local"), "{logs}");
}

/// Artifacts live in the run owner's namespace: bob's run cannot read alice's artifact by its
/// key (even knowing it), and alice's next run can.
async fn artifacts_of_one_user_are_not_readable_by_anothers_run(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (status, _) = server.upload(fixture("artifact-store")).await;
    assert_eq!(status, StatusCode::CREATED);
    grant(
        &server,
        "artifact-store",
        json!({"everyone": true, "artifacts": true}),
    )
    .await;
    let (alice_id, alice) = server.user("alice").await;
    let (bob_id, bob) = server.user("bob").await;
    let workflow = |config: Value| {
        json!({"name": "artifact", "nodes": [
            {"id": "art", "type": "artifact-store", "config": config}], "edges": []})
    };
    let out = |run: &Value| node(run, "art")["outputs"]["out"].clone();

    let run = server
        .run_workflow(&alice, workflow(json!({"text": "alice's secret"})))
        .await;
    let written = out(&run);
    assert_eq!(written["ok"], true, "{run}");
    let key = written["key"].as_str().unwrap().to_string();

    let run = server
        .run_workflow(&bob, workflow(json!({"key": key})))
        .await;
    let read = out(&run);
    assert_eq!(read["ok"], false, "{run}");
    assert!(
        read["error"].as_str().unwrap().contains("not found"),
        "{read}"
    );
    assert!(!run.to_string().contains("alice's secret"));

    let run = server
        .run_workflow(&alice, workflow(json!({"key": key})))
        .await;
    assert_eq!(out(&run)["text"], "alice's secret", "{run}");
    let artifacts = server.config.data_dir.join("artifacts");
    assert!(artifacts.join(&alice_id).join(&key).is_file());
    assert!(!artifacts.join(&bob_id).join(&key).exists());
    assert!(!artifacts.join(&key).exists());
}
