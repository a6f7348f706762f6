//! The real `mlflow` client (the version tests/run.sh pins) against Weft's MLflow tracking
//! server: a training-like script end to end, who may reach what, and MLflow's answers to
//! bad input (its error shape and codes, its limits, NaN).

use crate::on_both_backends;
use crate::support::{Backend, TestServer, send};
use reqwest::Method;
use serde_json::{Value, json};

on_both_backends!(
    a_training_script_logs_registers_and_loads_its_model,
    bad_input_gets_mlflow_s_errors
);

/// Runs `tests/fixtures/mlflow/train.py` with `token`; its JSON summary.
pub async fn train(server: &TestServer, token: &str) -> Value {
    let python = std::env::var("WEFT_TEST_PYTHON").unwrap_or_else(|_| {
        panic!(
            "WEFT_TEST_PYTHON is not set: run the tests with tests/run.sh, which installs mlflow"
        )
    });
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/mlflow/train.py"
    );
    let home = tempfile::tempdir().unwrap();
    let out = tokio::process::Command::new(python)
        .arg(script)
        .env("MLFLOW_TRACKING_URI", server.url("/mlflow"))
        .env("MLFLOW_TRACKING_TOKEN", token)
        .env("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        // The client's telemetry thread edits os.environ while requests read it (a benchmark
        // run failed on it), and it would call out of this machine.
        .env("MLFLOW_DISABLE_TELEMETRY", "true")
        .env("HOME", home.path())
        .current_dir(home.path())
        .output()
        .await
        .expect("run python");
    assert!(
        out.status.success(),
        "train.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("train.py printed no summary ({e}): {stdout}"))
}

/// MLflow's REST call `path` (below /mlflow/api/2.0/mlflow) with `token`.
async fn call(
    server: &TestServer,
    token: &str,
    method: Method,
    path: &str,
    body: Value,
) -> (u16, Value) {
    let request = server.with_token(
        token,
        method.clone(),
        &format!("/mlflow/api/2.0/mlflow/{path}"),
    );
    let request = if method == Method::GET {
        request.query(
            &body
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect::<Vec<_>>(),
        )
    } else {
        request.json(&body)
    };
    let (status, body) = send(request).await;
    (status.as_u16(), body)
}

/// Everything a script logs comes back: the filtered search finds the one run, the history
/// has 100 steps, the artifacts download byte-identical, the model loads by its alias and
/// predicts; the searches of runs, experiments and the registry filter as MLflow's do
/// (LIKE case-sensitive, ILIKE not, on both backends); another user's token is refused the
/// run, an admin's reaches it.
async fn a_training_script_logs_registers_and_loads_its_model(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (_, alice) = server.user("alice").await;
    let summary = train(&server, &alice).await;
    assert_eq!(summary["found"], json!([summary["run_id"]]), "{summary}");
    assert_eq!(summary["ordered"], json!([0.95, 0.5]));
    let history = summary["history"].as_array().unwrap();
    assert_eq!(history.len(), 100, "{summary}");
    assert_eq!(history[99], json!([99, 0.01]));
    assert_eq!(summary["identical"], true);
    assert_eq!(summary["predicted"], json!([2, 3]));
    assert_eq!(summary["odd_is_nan"], true);
    assert_eq!(summary["params"], json!({"lr": "0.01", "epochs": "100"}));
    assert_eq!(summary["tags"], json!({"team": "vision"}));
    assert_eq!(summary["alias_version"], "1");
    assert_eq!(summary["version_tags"], json!({"validated": "yes"}));
    let v1 = json!([["adder", "1"]]);
    let invalid = "INVALID_PARAMETER_VALUE";
    assert_eq!(
        summary["searches"],
        json!({
            "runs: tags.team LIKE 'Vis%'": [],
            "runs: tags.team ILIKE 'Vis%'": [true],
            "runs: params.lr LIKE '0.0%'": [true],
            "experiments: name LIKE 'WEFT%'": [],
            "experiments: name ILIKE 'WEFT%'": ["weft-demo"],
            "models: name LIKE 'add%'": ["adder"],
            "models: name LIKE 'ADD%'": [],
            "models: name ILIKE 'ADD%'": ["adder"],
            "models: tags.owner = 'Vision'": ["adder"],
            "models: tags.owner LIKE 'vis%'": [],
            "models: tags.owner ILIKE 'vis%'": ["adder"],
            "versions: name = 'adder'": v1,
            "versions: run_id IN": v1,
            "versions: version_number": v1,
            "versions: version_number > 1": [],
            "versions: source_path LIKE": v1,
            "versions: tags.validated": v1,
            "versions: tags.validated ILIKE": v1,
            "versions: metrics.acc > 1": invalid,
            "models: version_number = 1": invalid,
        }),
        "LIKE is case-sensitive, ILIKE is not, as in MLflow; the registry's filters"
    );

    let run = json!({"run_id": summary["run_id"]});
    let (_, bob) = server.user("bob").await;
    let (status, refused) = call(&server, &bob, Method::GET, "runs/get", run.clone()).await;
    assert_eq!(
        (status, refused["error_code"].as_str()),
        (403, Some("PERMISSION_DENIED")),
        "{refused}"
    );
    let (status, _) = call(
        &server,
        &bob,
        Method::GET,
        "registered-models/get",
        json!({"name": "adder"}),
    )
    .await;
    assert_eq!(status, 404, "bob has no model named adder");
    let (status, got) = call(&server, &server.admin_token, Method::GET, "runs/get", run).await;
    assert_eq!(status, 200, "{got}");
    let (status, _) = call(
        &server,
        "not-a-token",
        Method::GET,
        "experiments/search",
        json!({}),
    )
    .await;
    assert_eq!(status, 401);
}

/// Unknown ids, a malformed filter (naming the position), MLflow's size limits, and NaN and
/// infinite metrics as MLflow keeps them.
async fn bad_input_gets_mlflow_s_errors(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (_, alice) = server.user("alice").await;
    let (status, body) = call(
        &server,
        &alice,
        Method::GET,
        "runs/get",
        json!({"run_id": "0123"}),
    )
    .await;
    assert_eq!(
        (status, body["error_code"].as_str()),
        (404, Some("RESOURCE_DOES_NOT_EXIST")),
        "{body}"
    );
    let (_, created) = call(
        &server,
        &alice,
        Method::POST,
        "experiments/create",
        json!({"name": "e"}),
    )
    .await;
    let experiment = created["experiment_id"].clone();
    let (status, body) = call(
        &server,
        &alice,
        Method::POST,
        "experiments/create",
        json!({"name": "e"}),
    )
    .await;
    assert_eq!(
        (status, body["error_code"].as_str()),
        (400, Some("RESOURCE_ALREADY_EXISTS"))
    );
    let (_, run) = call(
        &server,
        &alice,
        Method::POST,
        "runs/create",
        json!({"experiment_id": experiment}),
    )
    .await;
    let run_id = run["run"]["info"]["run_id"].clone();

    let filter = "metrics.acc > 0.9 and params.lr == '1'";
    let search = json!({"experiment_ids": [experiment], "filter": filter});
    let (status, body) = call(&server, &alice, Method::POST, "runs/search", search).await;
    assert_eq!(
        (status, body["error_code"].as_str()),
        (400, Some("INVALID_PARAMETER_VALUE"))
    );
    assert!(
        body["message"].as_str().unwrap().contains("position 33"),
        "{body}"
    );

    let long = "x".repeat(6001);
    let param = json!({"run_id": run_id, "key": "big", "value": long});
    let (status, body) = call(&server, &alice, Method::POST, "runs/log-parameter", param).await;
    assert_eq!(
        (status, body["error_code"].as_str()),
        (400, Some("INVALID_PARAMETER_VALUE"))
    );
    assert!(body["message"].as_str().unwrap().contains("6000"), "{body}");
    let tag = json!({"run_id": run_id, "key": "big", "value": "x".repeat(8001)});
    let (status, _) = call(&server, &alice, Method::POST, "runs/set-tag", tag).await;
    assert_eq!(status, 400);
    let param = json!({"run_id": run_id, "key": "lr", "value": "1"});
    call(&server, &alice, Method::POST, "runs/log-parameter", param).await;
    let changed = json!({"run_id": run_id, "key": "lr", "value": "2"});
    let (status, body) = call(&server, &alice, Method::POST, "runs/log-parameter", changed).await;
    assert_eq!(status, 400, "params are write-once: {body}");

    for (key, value) in [
        ("nan", json!("NaN")),
        ("inf", json!("Infinity")),
        ("ninf", json!("-Infinity")),
    ] {
        let metric =
            json!({"run_id": run_id, "key": key, "value": value, "timestamp": 1, "step": 0});
        let (status, body) = call(&server, &alice, Method::POST, "runs/log-metric", metric).await;
        assert_eq!(status, 200, "{body}");
    }
    let (_, got) = call(
        &server,
        &alice,
        Method::GET,
        "runs/get",
        json!({"run_id": run_id}),
    )
    .await;
    let metrics: Vec<Value> = got["run"]["data"]["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].clone())
        .collect();
    assert_eq!(
        metrics,
        vec![json!(f64::MAX), json!("NaN"), json!(f64::MIN)],
        "{got}"
    );
    let (status, body) = call(&server, &alice, Method::GET, "no/such/endpoint", json!({})).await;
    assert_eq!(
        (status, body["error_code"].as_str()),
        (404, Some("ENDPOINT_NOT_FOUND"))
    );
}
