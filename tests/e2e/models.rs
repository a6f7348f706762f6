//! The seed's `/api/v1/models` over what the real `mlflow` client logged (tests/fixtures/
//! mlflow/train.py): models and versions with params, metrics and artifacts, versions
//! recorded through the API (from a run, or with uploaded files), comparison, who may reach
//! what, and bad input in Weft's error shape.

use crate::mlflow::train;
use crate::on_both_backends;
use crate::support::{Backend, TestServer, assert_error, send};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

on_both_backends!(
    the_client_s_models_show_and_compare_through_the_seed_api,
    bad_model_requests_get_weft_s_errors
);

/// `method path` as `token`, with a JSON body when given.
async fn api(
    server: &TestServer,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let request = server.with_token(token, method, &format!("/api/v1{path}"));
    send(match body {
        Some(body) => request.json(&body),
        None => request,
    })
    .await
}

/// What train.py registered shows as version 1; versions recorded from its run and with
/// uploaded files follow, compare as the rule says, and stay the owner's.
async fn the_client_s_models_show_and_compare_through_the_seed_api(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (_, alice) = server.user("alice").await;
    let summary = train(&server, &alice).await;
    let (status, page) = api(&server, &alice, Method::GET, "/models", None).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["items"].as_array().unwrap().len(), 1, "{page}");
    assert_eq!(page["items"][0]["name"], "adder");
    assert_eq!(page["items"][0]["latest_version"], 1);
    let id = page["items"][0]["id"].as_str().unwrap().to_string();

    let (_, model) = api(&server, &alice, Method::GET, &format!("/models/{id}"), None).await;
    let first = &model["versions"][0];
    assert_eq!(first["id"], "1", "{model}");
    assert_eq!(first["params"], json!({"lr": "0.01", "epochs": "100"}));
    assert_eq!(first["metrics"]["acc"], 0.95, "{first}");
    assert_eq!(first["metrics"]["loss"], 0.01);
    assert_eq!(first["metrics"]["odd"], Value::Null, "NaN shows as null");
    assert!(
        first["artifacts"]
            .as_array()
            .unwrap()
            .contains(&json!("MLmodel"))
    );
    assert_eq!(first["aliases"], json!(["champion"]));

    let from_run =
        json!({"name": "adder", "source_run_id": summary["run_id"], "artifact_path": "data"});
    let (status, second) = api(&server, &alice, Method::POST, "/models", Some(from_run)).await;
    assert_eq!(status, 201, "{second}");
    assert_eq!(second["version"], 2);
    assert_eq!(
        second["artifacts"],
        json!(["notes.txt", "plots/deep/data.bin"])
    );

    let fresh = json!({"name": "adder", "params": {"lr": "0.1", "epochs": 100}, "metrics": {"acc": 0.5, "loss": 0.2}});
    let (status, third) = api(&server, &alice, Method::POST, "/models", Some(fresh)).await;
    assert_eq!(
        (status.as_u16(), &third["version"]),
        (201, &json!(3)),
        "{third}"
    );
    let file = format!("/api/v1/models/{id}/versions/3/artifacts/weights/w.bin");
    let put = server
        .with_token(&alice, Method::PUT, &file)
        .body(vec![7u8; 70_000]);
    assert_eq!(send(put).await.0, 204);
    let got = server
        .with_token(&alice, Method::GET, &file)
        .send()
        .await
        .unwrap();
    assert_eq!(got.bytes().await.unwrap().as_ref(), &[7u8; 70_000][..]);
    let (_, model) = api(&server, &alice, Method::GET, &format!("/models/{id}"), None).await;
    assert_eq!(model["versions"][0]["artifacts"], json!(["weights/w.bin"]));

    let compare = format!("/models/{id}/compare?versions=1,3");
    let (status, cmp) = api(&server, &alice, Method::GET, &compare, None).await;
    assert_eq!(status, 200, "{cmp}");
    assert_eq!(
        cmp["params_differ"],
        json!([{"key": "lr", "values": {"1": "0.01", "3": "0.1"}}])
    );
    assert_eq!(cmp["params_same"], json!({"epochs": "100"}));
    let metric = |cmp: &Value, key: &str| {
        cmp["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["key"] == key)
            .cloned()
            .unwrap()
    };
    assert_eq!(metric(&cmp, "acc")["best"], json!([1]));
    assert_eq!(metric(&cmp, "loss")["better"], "lower");
    assert_eq!(metric(&cmp, "loss")["best"], json!([1]));
    let flipped = format!("{compare}&higher_is_better=loss");
    let (_, cmp) = api(&server, &alice, Method::GET, &flipped, None).await;
    assert_eq!(metric(&cmp, "loss")["best"], json!([3]), "{cmp}");

    let (_, bob) = server.user("bob").await;
    let (status, body) = api(&server, &bob, Method::GET, &format!("/models/{id}"), None).await;
    assert_error(status, &body, 403, "30310");
    let (_, page) = api(&server, &bob, Method::GET, "/models", None).await;
    assert_eq!(page["items"], json!([]), "bob sees none of alice's models");
    let steal = json!({"name": "mine", "source_run_id": summary["run_id"]});
    let (status, body) = api(&server, &bob, Method::POST, "/models", Some(steal)).await;
    assert_error(status, &body, 403, "30310");
    let put = server.with_token(&bob, Method::PUT, &file).body("x");
    assert_eq!(send(put).await.0, 403);
    let (status, _) = api(&server, &server.admin_token, Method::GET, &compare, None).await;
    assert_eq!(status, 200, "an admin reaches every model");
}

/// Unknown models and versions, malformed version lists, bad fields and paths.
async fn bad_model_requests_get_weft_s_errors(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (_, alice) = server.user("alice").await;
    let (status, body) = api(&server, &alice, Method::GET, "/models/nope", None).await;
    assert_error(status, &body, 404, "30210");
    let (status, body) = api(
        &server,
        &alice,
        Method::POST,
        "/models",
        Some(json!({"name": " "})),
    )
    .await;
    assert_error(status, &body, 400, "30410");
    assert_eq!(body["details"]["field"], "name");
    let bad_path = json!({"name": "m", "artifact_path": "../up"});
    let (status, body) = api(&server, &alice, Method::POST, "/models", Some(bad_path)).await;
    assert_error(status, &body, 400, "30410");
    let no_run = json!({"name": "m", "source_run_id": "0123"});
    let (status, body) = api(&server, &alice, Method::POST, "/models", Some(no_run)).await;
    assert_error(status, &body, 404, "30210");
    let (status, body) = api(&server, &alice, Method::GET, "/models?limit=0", None).await;
    assert_eq!(status, 400, "{body}");

    let (_, made) = api(
        &server,
        &alice,
        Method::POST,
        "/models",
        Some(json!({"name": "m"})),
    )
    .await;
    let id = made["model_id"].as_str().unwrap();
    for (query, status, code) in [
        ("versions=1,x", 400, "30410"),
        ("versions=", 400, "30410"),
        ("versions=1,9", 404, "30210"),
        (
            "versions=1&lower_is_better=a&higher_is_better=a",
            400,
            "30410",
        ),
    ] {
        let path = format!("/models/{id}/compare?{query}");
        let (got, body) = api(&server, &alice, Method::GET, &path, None).await;
        assert_error(got, &body, status, code);
    }
    let escape = format!("/api/v1/models/{id}/versions/1/artifacts/a%2F..%2F..%2Fb");
    let put = server.with_token(&alice, Method::PUT, &escape).body("x");
    assert_ne!(
        send(put).await.0,
        204,
        "no path leaves the version's folder"
    );
    let changed =
        json!({"name": "m", "source_run_id": made["source_run_id"], "params": {"k": "1"}});
    api(
        &server,
        &alice,
        Method::POST,
        "/models",
        Some(changed.clone()),
    )
    .await;
    let mut again = changed;
    again["params"]["k"] = json!("2");
    let (status, body) = api(&server, &alice, Method::POST, "/models", Some(again)).await;
    assert_error(status, &body, 400, "30410");
}
