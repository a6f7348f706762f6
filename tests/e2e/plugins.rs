//! The plugin registry and runtime through the API: built-ins, uploads, versions, grants,
//! limits, and hostile components that must not hurt the host.

use crate::on_both_backends;
use crate::support::fixtures::fixture;
use crate::support::{Backend, TestServer, assert_error, send};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

on_both_backends!(
    builtins_are_registered,
    builtin_nodes_do_their_jobs,
    bad_direct_runs_are_refused,
    uploads_versions_and_removal,
    an_upload_the_store_cannot_write_is_60102_and_registers_nothing,
    grants_stored_before_scopes_are_kept_for_admins
);

/// Every built-in is registered at start, described, with nothing granted.
async fn builtins_are_registered(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (status, list) = send(server.admin(Method::GET, "/api/v1/plugins")).await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for builtin in [
        "json-transform",
        "template",
        "csv",
        "http-request",
        "math",
        "branch",
        "fibo",
        "round-robin",
        "shortest-expected-wait",
        "power-of-two-choices",
        "probabilistic",
    ] {
        assert!(names.contains(&builtin), "{builtin} missing from {names:?}");
    }
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .all(|p| p["builtin"] == true)
    );

    let (status, fibo) = send(server.admin(Method::GET, "/api/v1/plugins/fibo")).await;
    assert_eq!(status, StatusCode::OK, "{fibo}");
    assert_eq!(fibo["kind"], "node");
    assert_eq!(fibo["versions"][0]["hash"].as_str().unwrap().len(), 64);
    assert_eq!(fibo["grants"], json!([]), "nothing granted");
    let description = &fibo["versions"][0]["description"];
    assert_eq!(description["outputs"][0]["name"], "out");
    assert!(description["config_schema"].is_object());
}

/// Each built-in node does its job when run directly.
async fn builtin_nodes_do_their_jobs(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (status, out) = server
        .run_plugin("fibo", json!({"config": {"n": 10}}))
        .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out["outputs"]["out"], 55);

    let (status, out) = server
        .run_plugin(
            "json-transform",
            json!({
                "config": {"query": "[.items[] | select(.price > 2) | .name]"},
                "inputs": {"in": {"items": [{"name": "a", "price": 1}, {"name": "b", "price": 3}]}}
            }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out["outputs"]["out"], json!(["b"]));

    let (status, out) = server
        .run_plugin(
            "template",
            json!({
                "config": {"template": "Hello {{ name }}!"}, "inputs": {"in": {"name": "Ada"}}
            }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out["outputs"]["out"], "Hello Ada!");

    let (status, out) = server
        .run_plugin(
            "math",
            json!({"config": {"op": "mean"}, "inputs": {"in": [1, 2, 3, 6]}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out["outputs"]["out"], 3.0);

    let (status, out) = server
        .run_plugin(
            "csv",
            json!({"config": {"direction": "to-json"}, "inputs": {"in": "a,b\n1,x\n2,y\n"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out["outputs"]["out"][1]["b"], "y");

    let (status, out) = server
        .run_plugin(
            "branch",
            json!({"config": {"condition": ".score > 5"}, "inputs": {"in": {"score": 7}}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out["outputs"]["then"], json!({"score": 7}));
    assert!(out["outputs"].get("else").is_none());
}

/// A direct run with a bad config, an undeclared input, a strategy or an unknown name is
/// refused with its code.
async fn bad_direct_runs_are_refused(backend: Backend) {
    let server = TestServer::start(backend).await;
    // A node's own error is typed and names the problem.
    let (status, err) = server
        .run_plugin(
            "json-transform",
            json!({"config": {"query": "[[["}, "inputs": {"in": {}}}),
        )
        .await;
    assert_error(status, &err, 422, "60205");
    assert_eq!(err["details"]["node_error"], "invalid-config");

    // Inputs are checked against the declared ports before the node runs.
    let (status, err) = server
        .run_plugin("fibo", json!({"inputs": {"nope": 1}}))
        .await;
    assert_error(status, &err, 422, "60405");
    assert!(err["message"].as_str().unwrap().contains("nope"));

    let (status, err) = server.run_plugin("round-robin", json!({})).await;
    assert_error(status, &err, 409, "60204");
    let (status, err) = server.run_plugin("no-such-node", json!({})).await;
    assert_error(status, &err, 404, "90203");
}

/// The component store cannot write (its folder replaced by a file, which stops root too): an
/// upload is a 500 with 60102 saying so, with what to check, and nothing is registered; with
/// the folder back, the same upload is stored as new.
async fn an_upload_the_store_cannot_write_is_60102_and_registers_nothing(backend: Backend) {
    let server = TestServer::start(backend).await;
    let folder = server.config.data_dir.join("plugins");
    let aside = server.config.data_dir.join("plugins-aside");
    std::fs::rename(&folder, &aside).unwrap();
    std::fs::write(&folder, "a file where the folder was").unwrap();

    let (status, body) = server.upload(fixture("echo-node")).await;
    assert_error(status, &body, 500, "60102");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.starts_with("cannot store the component: ") && message.contains("Not a directory"),
        "{body}"
    );
    assert!(
        body["hint"].as_str().unwrap().contains("writable folder"),
        "{body}"
    );
    let (status, body) = send(server.admin(Method::GET, "/api/v1/plugins/echo-node")).await;
    assert_error(status, &body, 404, "90203");
    let (_, list) = send(server.admin(Method::GET, "/api/v1/plugins")).await;
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .all(|p| p["name"] != "echo-node"),
        "{list}"
    );

    std::fs::remove_file(&folder).unwrap();
    std::fs::rename(&aside, &folder).unwrap();
    let (status, added) = server.upload(fixture("echo-node")).await;
    assert_eq!(status, StatusCode::CREATED, "{added}");
    assert_eq!(added["created"], true, "{added}");
}

async fn uploads_versions_and_removal(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (_, user) = server.user("plugin-user").await;

    let (status, added) = server.upload(fixture("echo-node")).await;
    assert_eq!(status, StatusCode::CREATED, "{added}");
    assert_eq!(added["plugin"]["name"], "echo-node");
    assert_eq!(added["plugin"]["version"], "1.0.0");
    assert_eq!(added["created"], true);
    // The same bytes again change nothing.
    let (status, again) = server.upload(fixture("echo-node")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["created"], false);
    assert_eq!(again["compiled"], "memory");

    let (status, body) = send(
        server
            .with_token(&user, Method::POST, "/api/v1/plugins")
            .header("content-type", "application/wasm")
            .body(fixture("echo-node-v2")),
    )
    .await;
    assert_error(status, &body, 403, "90305");
    // Users may list and run but not manage.
    let (status, _) =
        send(server.with_token(&user, Method::GET, "/api/v1/plugins/echo-node")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) =
        send(server.with_token(&user, Method::DELETE, "/api/v1/plugins/echo-node")).await;
    assert_error(status, &body, 403, "90305");

    let (status, _) = server.upload(fixture("echo-node-v2")).await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, detail) = send(server.admin(Method::GET, "/api/v1/plugins/echo-node")).await;
    assert_eq!(detail["latest"], "2.0.0");
    assert_eq!(detail["versions"].as_array().unwrap().len(), 2);

    let (status, out) = server
        .run_plugin("echo-node@1.0.0", json!({"inputs": {"in": [1, 2]}}))
        .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out["plugin"], "echo-node@1.0.0");
    assert_eq!(out["outputs"]["out"], json!([1, 2]));
    let (_, out) = server
        .run_plugin("echo-node", json!({"inputs": {"in": "x"}}))
        .await;
    assert_eq!(out["plugin"], "echo-node@2.0.0");
    let (status, err) = server.run_plugin("echo-node@9.9.9", json!({})).await;
    assert_error(status, &err, 404, "90203");
    assert_eq!(err["details"]["available"], json!(["1.0.0", "2.0.0"]));

    let (status, body) = send(server.admin(Method::DELETE, "/api/v1/plugins/fibo")).await;
    assert_error(status, &body, 409, "60203");
    let (status, removed) =
        send(server.admin(Method::DELETE, "/api/v1/plugins/echo-node?version=1.0.0")).await;
    assert_eq!(status, StatusCode::OK, "{removed}");
    assert_eq!(removed["removed"], json!(["1.0.0"]));
    let (status, body) = server
        .run_plugin("echo-node@1.0.0", json!({"inputs": {"in": 1}}))
        .await;
    assert_error(status, &body, 404, "90203");
    let (status, _) = send(server.admin(Method::DELETE, "/api/v1/plugins/echo-node")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = send(server.admin(Method::GET, "/api/v1/plugins/echo-node")).await;
    assert_error(status, &body, 404, "90203");
}

/// The first line of the answer to an upload's headers sent with `Expect: 100-continue` and a
/// 60 MiB `Content-Length` (under the upload limit), before any of the body is sent; and the
/// JSON body of that answer when it is a final one.
async fn answer_to_upload_headers(server: &TestServer, token: &str) -> (String, Value) {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "POST /api/v1/plugins HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/wasm\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        server.addr,
        60 << 20
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut reader = BufReader::new(stream);
    let mut status_line = String::new();
    reader.read_line(&mut status_line).await.unwrap();
    if status_line.contains(" 100 ") {
        return (status_line, Value::Null);
    }
    let mut length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).await.unwrap();
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap();
        }
        if line == "\r\n" {
            break;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).await.unwrap();
    (status_line, serde_json::from_slice(&body).unwrap())
}

/// A non-admin's upload is refused on its headers: Weft answers 403 without asking for the
/// body, where an admin's upload is asked for it (`100 Continue`): the body is read only once
/// the caller is known to be an admin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_are_refused_before_the_body_is_read() {
    let server = TestServer::start(Backend::Sqlite).await;
    let (_, user) = server.user("uploader").await;
    let (status_line, body) = answer_to_upload_headers(&server, &user).await;
    assert!(status_line.starts_with("HTTP/1.1 403"), "{status_line}");
    assert_error(StatusCode::FORBIDDEN, &body, 403, "90305");
    let admin = server.admin_token.clone();
    let (status_line, _) = answer_to_upload_headers(&server, &admin).await;
    assert!(
        status_line.starts_with("HTTP/1.1 100"),
        "an admin's upload body is read: {status_line}"
    );
}

/// Grants stored before grants had scopes applied to everyone without saying so: migration
/// 0011 keeps them for admins only (the real migration file over rows of the old shape).
async fn grants_stored_before_scopes_are_kept_for_admins(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (_, user) = server.user("plain-user").await;
    let pool = server.state.store.pool();
    for (name, grants) in [
        ("fibo", r#"{"http":[],"secrets":[],"artifacts":false}"#),
        (
            "http-request",
            r#"{"http":["api.example.com"],"secrets":["*"],"artifacts":true}"#,
        ),
    ] {
        sqlx::query(
            "INSERT INTO plugin_settings (name, grants, limits, updated_at) VALUES ($1, $2, '{}', 0)",
        )
        .bind(name)
        .bind(grants)
        .execute(pool)
        .await
        .unwrap();
    }
    sqlx::raw_sql(include_str!("../../host/migrations/0011_scoped_grants.sql"))
        .execute(pool)
        .await
        .unwrap();
    let (_, fibo) = send(server.admin(Method::GET, "/api/v1/plugins/fibo")).await;
    assert_eq!(fibo["grants"], json!([]), "{fibo}");
    let (_, http) = send(server.admin(Method::GET, "/api/v1/plugins/http-request")).await;
    assert_eq!(
        http["grants"],
        json!([{"scope": {"users": [], "roles": ["admin"]}, "http": ["api.example.com"],
                "secrets": ["*"], "artifacts": true}]),
        "{http}"
    );
    let settings = server.state.plugins.settings("http-request").await.unwrap();
    let for_user = weft::registry::effective(
        &settings.grants,
        &server
            .state
            .plugins
            .grantee(
                &server
                    .state
                    .auth
                    .sign_in(&user, None)
                    .await
                    .unwrap()
                    .user_id,
            )
            .await
            .unwrap(),
    );
    assert_eq!(
        for_user,
        weft_runtime::Grants::default(),
        "an ordinary user gets nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_uploads_are_refused_clearly() {
    let server = TestServer::start(Backend::Sqlite).await;
    let (status, body) = server.upload(b"definitely not wasm".to_vec()).await;
    assert_error(status, &body, 422, "60401");
    let core_module = b"\0asm\x01\0\0\0".to_vec();
    let (status, body) = server.upload(core_module).await;
    assert_error(status, &body, 422, "60402");
    assert!(body["hint"].as_str().unwrap().contains("wasm32-wasip2"));
    let (status, body) = server.upload(fixture("wrong-world")).await;
    assert_error(status, &body, 422, "60403");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("weft:plugin/node-api"),
        "{body}"
    );
    // The real interface name with a `run` of another signature is the wrong world too, named.
    let (status, body) = server.upload(fixture("wrong-signature")).await;
    assert_error(status, &body, 422, "60403");
    assert!(
        body["message"].as_str().unwrap().contains("run(config)"),
        "{body}"
    );
    let (status, body) = send(
        server
            .admin(Method::POST, "/api/v1/plugins")
            .header("content-type", "text/plain")
            .body("x"),
    )
    .await;
    assert_error(status, &body, 415, "90404");
    // Nothing was registered, and good plugins still work.
    let (_, list) = send(server.admin(Method::GET, "/api/v1/plugins")).await;
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .all(|p| p["builtin"] == true)
    );
    let (status, out) = server
        .run_plugin("fibo", json!({"config": {"n": 20}}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(out["outputs"]["out"], 6765);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_nodes_are_contained() {
    let server = TestServer::start(Backend::Sqlite).await;
    for name in [
        "loop-forever",
        "alloc-bomb",
        "panic-node",
        "trap-node",
        "bad-outputs",
        "big-output",
    ] {
        let (status, body) = server.upload(fixture(name)).await;
        assert_eq!(status, StatusCode::CREATED, "{name}: {body}");
    }
    let (status, _) = send(
        server
            .admin(Method::PUT, "/api/v1/plugins/loop-forever/limits")
            .json(&json!({"cpu_ms": 300, "timeout_ms": 5000})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, err) = server.run_plugin("loop-forever", json!({})).await;
    assert_error(status, &err, 422, "60206");
    assert_eq!(err["details"]["failure"], "cpu-limit");

    let (status, _) = send(
        server
            .admin(Method::PUT, "/api/v1/plugins/loop-forever/limits")
            .json(&json!({"cpu_ms": 60000, "timeout_ms": 400})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, err) = server.run_plugin("loop-forever", json!({})).await;
    assert_error(status, &err, 422, "60206");
    assert_eq!(err["details"]["failure"], "timeout");

    let (status, err) = server.run_plugin("alloc-bomb", json!({})).await;
    assert_error(status, &err, 422, "60206");
    assert_eq!(err["details"]["failure"], "memory-limit");
    // An output larger than the plugin's memory is that limit too, not a trap: 80 MB of JSON in
    // one allocation under the default 64 MiB.
    let (status, err) = server
        .run_plugin("big-output", json!({"config": {"zeros": 40_000_000}}))
        .await;
    assert_error(status, &err, 422, "60206");
    assert_eq!(err["details"]["failure"], "memory-limit");

    let (status, err) = server.run_plugin("panic-node", json!({})).await;
    assert_error(status, &err, 422, "60205");
    assert_eq!(err["details"]["failure"], "panic");
    assert!(
        err["message"].as_str().unwrap().contains("panicked"),
        "{err}"
    );

    let (status, err) = server.run_plugin("trap-node", json!({})).await;
    assert_error(status, &err, 422, "60205");
    assert_eq!(err["details"]["failure"], "trap");

    let (status, err) = server.run_plugin("bad-outputs", json!({})).await;
    assert_error(status, &err, 422, "60205");
    assert_eq!(err["details"]["failure"], "bad-outputs");

    let (status, err) = send(
        server
            .admin(Method::PUT, "/api/v1/plugins/alloc-bomb/limits")
            .json(&json!({"memory_bytes": 1})),
    )
    .await;
    assert_error(status, &err, 422, "90402");

    // The host is unharmed: good plugins run and health is fine.
    let (status, out) = server
        .run_plugin("fibo", json!({"config": {"n": 10}}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(out["outputs"]["out"], 55);
    let (status, _) = send(server.anon(Method::GET, "/api/v1/health")).await;
    assert_eq!(status, StatusCode::OK);
}

/// A plugin that floods its log and its stderr: the call succeeds (32 KiB of stderr once
/// trapped it), each stderr line reaches the call's log, and past the call's allowance
/// messages are dropped and counted once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floods_of_logs_and_stderr_are_capped_never_fatal() {
    let server = TestServer::start(Backend::Sqlite).await;
    let (status, body) = server.upload(fixture("noisy-node")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let logs = |out: &Value| -> Vec<String> {
        out["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["type"] == "log")
            .map(|e| e["message"].as_str().unwrap().to_string())
            .collect()
    };

    let (status, out) = server
        .run_plugin("noisy-node", json!({"config": {"stderr_lines": 330}}))
        .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out["outputs"]["out"]["ok"], true, "{out}");
    let lines = logs(&out);
    assert_eq!(lines.len(), 330, "{lines:?}");
    assert!(
        lines
            .iter()
            .all(|l| l == &format!("stderr: {}", "e".repeat(100)))
    );

    let (status, _) = send(
        server
            .admin(Method::PUT, "/api/v1/plugins/noisy-node/limits")
            .json(&json!({"log_messages": 50})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, out) = server
        .run_plugin(
            "noisy-node",
            json!({"config": {"logs": 5000, "stderr_lines": 2000, "line_bytes": 100}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    let lines = logs(&out);
    assert_eq!(lines.len(), 51, "50 allowed and the count: {lines:?}");
    assert_eq!(lines[0], "log line 0");
    assert!(
        lines[50].starts_with("6950 log messages of this call dropped"),
        "{}",
        lines[50]
    );
}

/// `describe` runs once, at upload, within a few seconds: a slow one is refused, and a stored
/// plugin is loaded at start from the description stored at upload, never described again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_runs_once_at_upload_within_a_limit() {
    let server = TestServer::start(Backend::Sqlite).await;
    let (status, err) = server.upload(fixture("slow-describe")).await;
    assert_error(status, &err, 422, "60404");
    assert_eq!(err["details"]["failure"], "timeout", "{err}");

    let (status, body) = server.upload(fixture("noisy-node")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let state = server.reopen().await;
    sqlx::query("UPDATE plugins SET description = REPLACE(description, $1, $2) WHERE name = $3")
        .bind("Floods its log and stderr (test fixture)")
        .bind("as stored at upload")
        .bind("noisy-node")
        .execute(state.store.pool())
        .await
        .unwrap();
    let restarted = server.reopen().await;
    let node = restarted.plugins.node("noisy-node").await.unwrap();
    assert_eq!(node.plugin.description().summary, "as stored at upload");
}

/// Clear words for what went wrong: a plugin that exits is said to have exited (not a wasm
/// backtrace), an oversized upload names the upload setting, and an upload that would shadow
/// a built-in for every unversioned reference is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misbehaving_uploads_and_calls_are_explained() {
    let server = TestServer::start_with(Backend::Sqlite, |c| {
        c.plugins.max_upload_bytes = 8 << 20;
    })
    .await;
    let (status, body) = server.upload(fixture("noisy-node")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, err) = server
        .run_plugin("noisy-node", json!({"config": {"exit": 3}}))
        .await;
    assert_error(status, &err, 422, "60205");
    let message = err["message"].as_str().unwrap();
    // WASI preview 2 keeps only whether the status was 0.
    assert!(
        message.contains("the plugin exited (status 1)"),
        "{message}"
    );
    assert!(!message.contains("wasm backtrace"), "{message}");

    let (status, err) = server.upload(fixture("fake-fibo")).await;
    assert_error(status, &err, 409, "60201");
    assert!(
        err["message"].as_str().unwrap().contains("built-in"),
        "{err}"
    );
    let (status, out) = server
        .run_plugin("fibo", json!({"config": {"n": 10}}))
        .await;
    assert_eq!(
        (status, &out["outputs"]["out"]),
        (StatusCode::OK, &json!(55))
    );

    let (status, err) = server.upload(vec![0u8; 9 << 20]).await;
    assert_error(status, &err, 413, "90403");
    let hint = err["hint"].as_str().unwrap();
    assert!(hint.contains("[plugins] max_upload_bytes"), "{hint}");
}

/// The example plugins of `examples/` build as their README says and load: the node runs with
/// the answer the README shows, the strategy routes tasks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_plugins_build_and_load() {
    use crate::support::examples::component as example;
    let server = TestServer::start(Backend::Sqlite).await;
    let (status, added) = server.upload(example("text-stats")).await;
    assert_eq!(status, StatusCode::CREATED, "{added}");
    let (status, out) = server
        .run_plugin(
            "text-stats",
            json!({"config": {"top": 2}, "inputs": {"in": "the cat and the hat"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(
        out["outputs"]["out"],
        json!({"chars": 19, "words": 5, "lines": 1,
               "top_words": [{"word": "the", "count": 2}, {"word": "and", "count": 1}]}),
        "{out}"
    );

    let (status, added) = server.upload(example("least-loaded")).await;
    assert_eq!(status, StatusCode::CREATED, "{added}");
    let base = server.url("");
    let _ti = crate::support::TaskInstance::start("m", 0, "1ms", &base, Some(&server.admin_token));
    let (status, view) = send(
        server
            .admin(Method::PUT, "/api/v1/scheduler/strategies/active")
            .json(&json!({"strategy": "least-loaded"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["strategy"], "least-loaded@0.1.0", "{view}");
    let (status, answer) = send(
        server
            .admin(Method::POST, "/queue/submit")
            .json(&json!({"model_name": "m", "task_input": {}})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert!(answer["scheduled_ti"].is_string(), "{answer}");
}
