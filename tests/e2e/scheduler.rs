//! The task scheduler through its SwarmPilot paths, with real `weft task-instance` processes.

use crate::on_both_backends;
use crate::support::{
    Backend, TaskInstance, TestServer, WeftProcess, assert_error, bootstrap, fixtures::fixture,
    send, succeed, wait, weft,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::panic::Location;
use std::time::Duration;

async fn scheduler(backend: Backend) -> TestServer {
    scheduler_with(backend, |_| {}).await
}

async fn scheduler_with(
    backend: Backend,
    customize: impl FnOnce(&mut weft::config::Config),
) -> TestServer {
    // The scheduler's log is shown with a failing test's output.
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("weft=info")
        .try_init();
    TestServer::start_with(backend, |c| {
        c.scheduler.health_interval_ms = 150;
        c.scheduler.unhealthy_after = 2;
        c.scheduler.request_timeout_ms = 2_000;
        customize(c);
    })
    .await
}

/// The header a SwarmPilot client that cannot set `Authorization` sends its token in
/// (`[scheduler] token_header`'s default).
const TOKEN_HEADER: &str = "x-weft-token";

/// A SwarmPilot client's request as the admin, the token in [`TOKEN_HEADER`].
fn as_admin(server: &TestServer, method: Method, path: &str) -> reqwest::RequestBuilder {
    server
        .anon(method, path)
        .header(TOKEN_HEADER, &server.admin_token)
}

async fn post(server: &TestServer, path: &str, body: Value) -> (StatusCode, Value) {
    send(as_admin(server, Method::POST, path).json(&body)).await
}

async fn get(server: &TestServer, path: &str) -> (StatusCode, Value) {
    send(as_admin(server, Method::GET, path)).await
}

/// Asserts the SwarmPilot error shape with a Weft `code`.
#[track_caller]
fn assert_sp_error(status: StatusCode, body: &Value, want: u16, code: &str) {
    assert_eq!(status.as_u16(), want, "{body}");
    assert_eq!(body["status"], "error", "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

/// Fails the test at `caller` unless `answer` is a SwarmPilot success with `status` 200.
fn expect_success(caller: &Location<'static>, status: StatusCode, answer: &Value) {
    assert!(
        status == StatusCode::OK && answer["status"] == "success",
        "{caller}: status {status}: {answer}"
    );
}

/// Registers the instance on `port` (with `model`, else read from its `/info`); returns its id.
#[track_caller]
pub(crate) fn register(
    server: &TestServer,
    port: u16,
    model: Option<&str>,
) -> impl Future<Output = String> {
    let caller = Location::caller();
    let mut body = json!({"host": "127.0.0.1", "port": port});
    if let Some(m) = model {
        body["model_name"] = json!(m);
    }
    async move {
        let (status, answer) = post(server, "/ti/register", body).await;
        expect_success(caller, status, &answer);
        answer["ti_uuid"].as_str().expect("ti_uuid").to_string()
    }
}

/// Submits a task for `model`, asserting it was routed; returns the answer.
#[track_caller]
fn submit(server: &TestServer, model: &str, input: Value) -> impl Future<Output = Value> {
    let caller = Location::caller();
    let body = json!({"model_name": model, "task_input": input, "metadata": {"size": 1}});
    async move {
        let (status, answer) = post(server, "/queue/submit", body).await;
        expect_success(caller, status, &answer);
        answer
    }
}

/// `/task/query` of `task_id`, asserting it answered.
#[track_caller]
fn query(server: &TestServer, task_id: &str) -> impl Future<Output = Value> {
    let caller = Location::caller();
    let path = format!("/task/query?task_id={task_id}");
    async move {
        let (status, task) = get(server, &path).await;
        assert!(
            status == StatusCode::OK,
            "{caller}: status {status}: {task}"
        );
        task
    }
}

/// Waits until every task is finished and returns them by id.
#[track_caller]
pub(crate) fn wait_finished<'a>(
    server: &'a TestServer,
    ids: &'a [String],
) -> impl Future<Output = HashMap<String, Value>> + 'a {
    wait::until(
        "every task to finish",
        Duration::from_secs(60),
        move || async move {
            let mut tasks = HashMap::new();
            let mut unfinished = Vec::new();
            for id in ids {
                let task = query(server, id).await;
                if task["task_status"] == "completed" || task["task_status"] == "failed" {
                    tasks.insert(id.clone(), task);
                } else {
                    unfinished.push(task);
                }
            }
            if unfinished.is_empty() {
                Ok(tasks)
            } else {
                Err(unfinished)
            }
        },
    )
}

async fn instance_health(server: &TestServer, ti_uuid: &str) -> bool {
    let (_, list) = send(server.admin(Method::GET, "/api/v1/scheduler/instances")).await;
    list.as_array()
        .unwrap()
        .iter()
        .find(|ti| ti["ti_uuid"] == ti_uuid)
        .unwrap_or_else(|| panic!("{ti_uuid} not in {list}"))["healthy"]
        .as_bool()
        .unwrap()
}

#[track_caller]
fn wait_health<'a>(
    server: &'a TestServer,
    ti_uuid: &'a str,
    healthy: bool,
) -> impl Future<Output = ()> + 'a {
    wait::until(
        "the instance's health",
        Duration::from_secs(20),
        move || async move {
            let now = instance_health(server, ti_uuid).await;
            if now == healthy { Ok(()) } else { Err(now) }
        },
    )
}

/// Makes `strategy` the active one (for `model`, or the default).
pub(crate) async fn activate(
    server: &TestServer,
    strategy: &str,
    model: Option<&str>,
) -> (StatusCode, Value) {
    send(
        server
            .admin(Method::PUT, "/api/v1/scheduler/strategies/active")
            .json(&json!({"strategy": strategy, "model_name": model})),
    )
    .await
}

on_both_backends!(
    the_health_path_answers_as_swarmpilots,
    registrations_are_idempotent_and_checked,
    tasks_are_routed_run_and_completed,
    queue_info_lists_each_instance_of_a_model,
    bad_submits_queries_and_completions_change_nothing,
    a_removed_instance_gets_no_tasks,
    hot_swapping_strategies_loses_no_submit_and_the_trace_replays,
    failing_strategies_fall_back_and_active_ones_stay_installed,
    finished_tasks_are_purged_after_their_retention
);

/// Two instances serving `llm` on `server`: one registered itself, the other was registered
/// by a client (its model read from its `/info`). Returns them with their ids.
async fn two_llm_instances(server: &TestServer) -> ([TaskInstance; 2], String, String) {
    let base = server.url("");
    let a = TaskInstance::start("llm", 0, "20ms", &base, Some(&server.admin_token));
    let b = TaskInstance::start("llm", 0, "exp:10ms", &base, None);
    let a_id = a.ti_uuid.clone().unwrap();
    let b_id = register(server, b.port, None).await;
    ([a, b], a_id, b_id)
}

/// `/health` answers as SwarmPilot's scheduler does.
async fn the_health_path_answers_as_swarmpilots(backend: Backend) {
    let server = scheduler(backend).await;
    let (status, health) = get(&server, "/health").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(health["status"], "healthy");
    assert_eq!(health["service"], "scheduler");
    assert!(health["version"].is_string());
}

/// Registering is idempotent; the same address under another model is a conflict; an address
/// that does not answer, a malformed port or host and a malformed body are refused.
async fn registrations_are_idempotent_and_checked(backend: Backend) {
    let server = scheduler(backend).await;
    let (instances, a_id, b_id) = two_llm_instances(&server).await;
    let [a, b] = &instances;
    assert_eq!(
        register(&server, b.port, None).await,
        b_id,
        "registering twice is idempotent"
    );
    assert_eq!(register(&server, a.port, Some("llm")).await, a_id);
    let (status, clash) = post(
        &server,
        "/ti/register",
        json!({"host": "127.0.0.1", "port": a.port, "model_name": "other"}),
    )
    .await;
    assert_sp_error(status, &clash, 409, "50205");

    let (status, down) = post(
        &server,
        "/ti/register",
        json!({"host": "127.0.0.1", "port": 1}),
    )
    .await;
    assert_sp_error(status, &down, 200, "50102");
    assert!(down["ti_uuid"].is_null());
    let (status, bad) = post(
        &server,
        "/ti/register",
        json!({"host": "127.0.0.1", "port": "eighty"}),
    )
    .await;
    assert_sp_error(status, &bad, 422, "90402");
    assert!(bad["message"].as_str().unwrap().contains("port"), "{bad}");
    let (status, bad) = post(&server, "/ti/register", json!({"host": "a/b", "port": 80})).await;
    assert_sp_error(status, &bad, 422, "90402");
    let (status, bad) = send(
        server
            .anon(Method::POST, "/ti/register")
            .bearer_auth(&server.admin_token)
            .header("content-type", "application/json")
            .body("{oops"),
    )
    .await;
    assert_sp_error(status, &bad, 400, "90401");
}

/// Tasks are routed, run and completed with their results, on both instances. Round-robin
/// spreads them for sure (the default, shortest expected wait, may rightly send them all to
/// the instance that has no history yet or answers fastest).
async fn tasks_are_routed_run_and_completed(backend: Backend) {
    let server = scheduler(backend).await;
    let (_instances, a_id, b_id) = two_llm_instances(&server).await;
    let (status, view) = activate(&server, "round-robin", None).await;
    assert_eq!(status, StatusCode::OK, "{view}");
    let submits = (0..20).map(|i| submit(&server, "llm", json!({"prompt": format!("p{i}")})));
    let mut ids = Vec::new();
    for answer in futures::future::join_all(submits).await {
        let ti = answer["scheduled_ti"].as_str().unwrap();
        assert!(ti == a_id || ti == b_id, "{answer}");
        ids.push(answer["task_id"].as_str().unwrap().to_string());
    }
    let first = query(&server, &ids[0]).await;
    assert!(
        ["queued", "scheduled", "completed"].contains(&first["task_status"].as_str().unwrap()),
        "{first}"
    );
    assert!(
        first["submit_time"].as_f64().unwrap() > 1.7e9,
        "seconds since the epoch: {first}"
    );
    let done = wait_finished(&server, &ids).await;
    let mut used = HashSet::new();
    for (i, id) in ids.iter().enumerate() {
        let task = &done[id];
        assert_eq!(task["task_status"], "completed", "{task}");
        assert_eq!(
            task["result"]["output"]["prompt"],
            format!("p{i}"),
            "{task}"
        );
        // Every simulated service time is drawn above zero.
        assert!(task["execution_time"].as_f64().unwrap() > 0.0, "{task}");
        used.insert(task["scheduled_ti"].as_str().unwrap().to_string());
    }
    assert_eq!(used.len(), 2, "both instances ran tasks");
}

/// `/queue/info` lists the model's instances with the strategy's predicted wait; an unknown
/// model is a 404.
async fn queue_info_lists_each_instance_of_a_model(backend: Backend) {
    let server = scheduler(backend).await;
    let (_instances, a_id, b_id) = two_llm_instances(&server).await;
    let (status, info) = get(&server, "/queue/info?model_name=llm").await;
    assert_eq!(status, StatusCode::OK, "{info}");
    let queues = info["queues"].as_array().unwrap();
    let mut listed: Vec<&str> = queues
        .iter()
        .map(|q| q["ti_uuid"].as_str().unwrap_or_default())
        .collect();
    listed.sort_unstable();
    let mut want = [a_id.as_str(), b_id.as_str()];
    want.sort_unstable();
    assert_eq!(listed, want, "{info}");
    for q in queues {
        assert_eq!(q["model_name"], "llm");
        assert!(q["waiting_time_expect"].as_f64().is_some(), "{q}");
        assert!(q["waiting_time_error"].as_f64().is_some(), "{q}");
    }
    let (status, all) = get(&server, "/queue/info").await;
    assert_eq!(
        (status, all["queues"].as_array().unwrap().len()),
        (StatusCode::OK, 2)
    );
    let (status, unknown) = get(&server, "/queue/info?model_name=nope").await;
    assert_sp_error(status, &unknown, 404, "50203");
}

/// Bad submits, queries and completions are refused with their codes and change nothing: a
/// completion from the wrong instance is a conflict, a repeated one keeps the first result.
async fn bad_submits_queries_and_completions_change_nothing(backend: Backend) {
    let server = scheduler(backend).await;
    let (_instances, a_id, b_id) = two_llm_instances(&server).await;
    let (status, none) = post(
        &server,
        "/queue/submit",
        json!({"model_name": "nope", "task_input": {}}),
    )
    .await;
    assert_sp_error(status, &none, 503, "50101");
    let (status, bad) = post(
        &server,
        "/queue/submit",
        json!({"model_name": "llm", "task_input": [1]}),
    )
    .await;
    assert_sp_error(status, &bad, 422, "90402");
    let (status, bad) = post(&server, "/queue/submit", json!({"task_input": {}})).await;
    assert_sp_error(status, &bad, 422, "90402");
    let (status, missing) = get(&server, "/task/query?task_id=no-such-task").await;
    assert_sp_error(status, &missing, 404, "50201");
    let (status, missing) = get(&server, "/task/query").await;
    assert_sp_error(status, &missing, 400, "90405");

    let answer = submit(&server, "llm", json!({"prompt": "p0"})).await;
    let id = answer["task_id"].as_str().unwrap().to_string();
    let done = wait_finished(&server, std::slice::from_ref(&id)).await;
    let report = |task: &str, instance: &str| json!({"task_id": task, "instance_id": instance, "execution_time": 1.0, "result": {"forged": true}});
    let (status, unknown) = post(
        &server,
        "/notify/task_complete",
        report("no-such-task", &a_id),
    )
    .await;
    assert_sp_error(status, &unknown, 404, "50201");
    let owner = done[&id]["scheduled_ti"].as_str().unwrap();
    let other = if owner == a_id { &b_id } else { &a_id };
    let (status, wrong) = post(&server, "/notify/task_complete", report(&id, other)).await;
    assert_sp_error(status, &wrong, 409, "50202");
    let (status, again) = post(&server, "/notify/task_complete", report(&id, owner)).await;
    assert_eq!(
        (status, &again["status"]),
        (StatusCode::OK, &json!("success")),
        "{again}"
    );
    let task = query(&server, &id).await;
    assert_eq!(
        task["result"]["output"]["prompt"], "p0",
        "a repeated report changes nothing: {task}"
    );
}

/// A removed instance gets no more tasks; removing an unknown or malformed id is refused.
async fn a_removed_instance_gets_no_tasks(backend: Backend) {
    let server = scheduler(backend).await;
    let (_instances, a_id, b_id) = two_llm_instances(&server).await;
    let (status, bad) = post(&server, "/ti/remove", json!({"ti_uuid": "not-a-uuid"})).await;
    assert_sp_error(status, &bad, 422, "90402");
    let (status, unknown) = post(
        &server,
        "/ti/remove",
        json!({"ti_uuid": uuid::Uuid::new_v4()}),
    )
    .await;
    assert_sp_error(status, &unknown, 200, "50204");
    let (status, removed) = post(&server, "/ti/remove", json!({"ti_uuid": b_id})).await;
    assert_eq!(
        (status, &removed["status"]),
        (StatusCode::OK, &json!("success")),
        "{removed}"
    );
    for _ in 0..5 {
        let answer = submit(&server, "llm", json!({})).await;
        assert_eq!(
            answer["scheduled_ti"],
            a_id.as_str(),
            "only the remaining instance"
        );
    }
    // What a restart keeps: tests/e2e/restarts.rs.
}

/// The simulator's own TaskInstance paths: `/info`, `/queue/predict`, `/queue/submit` and
/// `/results/{task_id}`, which keeps only the newest results it is told to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulator_speaks_the_task_instance_protocol() {
    let server = scheduler(Backend::Sqlite).await;
    let ti = TaskInstance::start_with(
        "llm",
        "127.0.0.1:0",
        "const:1ms",
        &server.url(""),
        Some(&server.admin_token),
        &["--keep-results", "2"],
    );
    let at = |path: &str| format!("http://127.0.0.1:{}{path}", ti.port);
    let http = reqwest::Client::new();
    let (status, info) = send(http.get(at("/info"))).await;
    assert_eq!(status, StatusCode::OK, "{info}");
    // SwarmPilot's InstanceInfoResponse, as its TaskInstanceClient reads it.
    assert_eq!(info["status"], "success", "{info}");
    assert_eq!(info["deployed_model"]["model_name"], "llm", "{info}");
    assert_eq!(info["deployed_model"]["replicas"], 1, "{info}");
    assert_eq!(info["queue_info"]["length_of_queue"], 0, "{info}");
    assert_eq!(info["instance_status"], "idle", "{info}");
    assert!(info["timestamp"].as_f64().unwrap() > 1.7e9, "{info}");
    assert!(info["uptime"].as_f64().unwrap() > 0.0, "{info}");
    let (status, queue) = send(http.get(at("/queue/status"))).await;
    assert_eq!(status, StatusCode::OK, "{queue}");
    assert_eq!(
        (&queue["queue_size"], &queue["model_type"]),
        (&json!(0), &json!("llm")),
        "{queue}"
    );
    let (status, predicted) = send(http.post(at("/queue/predict")).json(&json!({}))).await;
    assert_eq!(status, StatusCode::OK, "{predicted}");
    assert_eq!(
        (&predicted["expected_ms"], &predicted["queue_size"]),
        (&json!(1.0), &json!(0)),
        "{predicted}"
    );
    let (status, refused) = send(
        http.post(at("/queue/submit"))
            .json(&json!({"task_id": "t", "model_name": "other"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert_eq!(refused["status"], "error", "{refused}");

    // One worker runs tasks in the order they came, so the first result is the oldest.
    let mut ids = Vec::new();
    for i in 0..3 {
        let answer = submit(&server, "llm", json!({"prompt": format!("p{i}")})).await;
        ids.push(answer["task_id"].as_str().unwrap().to_string());
    }
    wait_finished(&server, &ids).await;
    for (i, id) in ids.iter().enumerate().skip(1) {
        let (status, result) = send(http.get(at(&format!("/results/{id}")))).await;
        assert_eq!(status, StatusCode::OK, "{result}");
        assert_eq!(result["task_id"], id.as_str(), "{result}");
        assert_eq!(result["status"], "completed", "{result}");
        for field in [
            "enqueue_time",
            "completion_time",
            "wait_time",
            "execution_time",
            "total_time",
        ] {
            assert!(
                result[field].as_f64().is_some(),
                "TaskResult.{field}: {result}"
            );
        }
        assert_eq!(
            result["result"]["output"]["prompt"],
            format!("p{i}"),
            "{result}"
        );
    }
    let (status, gone) = send(http.get(at(&format!("/results/{}", ids[0])))).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{gone}");
    assert!(
        gone["message"]
            .as_str()
            .unwrap()
            .contains("last 2 finished"),
        "{gone}"
    );
}

/// By default nothing is trusted by network, loopback included: a token is needed (in
/// `Authorization` or the token header), and an admin's to register instances.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_callers_need_tokens_by_default() {
    let server = scheduler(Backend::Sqlite).await;
    let (status, body) = send(server.anon(Method::GET, "/health")).await;
    assert_eq!(
        (status, &body["status"]),
        (StatusCode::OK, &json!("healthy")),
        "health stays public"
    );
    let submit_body = json!({"model_name": "m", "task_input": {}});
    let (status, body) = send(
        server
            .anon(Method::POST, "/queue/submit")
            .json(&submit_body),
    )
    .await;
    assert_sp_error(status, &body, 401, "90301");
    assert!(
        body["hint"].as_str().unwrap().contains(TOKEN_HEADER),
        "{body}"
    );
    for path in ["/task/query?task_id=x", "/queue/info"] {
        let (status, body) = send(server.anon(Method::GET, path)).await;
        assert_sp_error(status, &body, 401, "90301");
    }
    let (status, body) = send(
        server
            .anon(Method::POST, "/ti/register")
            .json(&json!({"host": "127.0.0.1", "port": 9})),
    )
    .await;
    assert_sp_error(status, &body, 401, "90301");
    let (status, body) = send(
        server
            .anon(Method::POST, "/queue/submit")
            .header("authorization", "Basic dXNlcjpwYXNz")
            .json(&submit_body),
    )
    .await;
    assert_sp_error(status, &body, 401, "90301");
    let (status, body) = send(
        server
            .anon(Method::POST, "/queue/submit")
            .header(TOKEN_HEADER, "weft_not-a-real-token")
            .json(&submit_body),
    )
    .await;
    assert_sp_error(status, &body, 401, "90302");

    let (_, token) = server.user("client").await;
    let (status, body) = send(
        server
            .with_token(&token, Method::POST, "/queue/submit")
            .json(&submit_body),
    )
    .await;
    assert_sp_error(status, &body, 503, "50101");
    let (status, body) = send(
        server
            .anon(Method::POST, "/queue/submit")
            .header(TOKEN_HEADER, format!("Bearer {token}"))
            .json(&submit_body),
    )
    .await;
    assert_sp_error(status, &body, 503, "50101");
    let (status, body) = send(
        server
            .with_token(&token, Method::POST, "/ti/register")
            .json(&json!({"host": "127.0.0.1", "port": 9})),
    )
    .await;
    assert_sp_error(status, &body, 403, "90305");
    let (status, body) = send(
        server
            .admin(Method::POST, "/ti/register")
            .json(&json!({"host": "127.0.0.1", "port": 9})),
    )
    .await;
    assert_sp_error(status, &body, 200, "50102");
}

/// An instance that dies: the tasks it held finish elsewhere (or fail with the reason when
/// nothing else serves their model), it gets no new tasks, and it rejoins when it answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_instances_lose_no_tasks_and_rejoin() {
    let server = scheduler(Backend::Sqlite).await;
    let base = server.url("");
    let (status, _) = activate(&server, "round-robin", None).await;
    assert_eq!(status, StatusCode::OK);
    let mut a = TaskInstance::start("vision", 0, "300ms", &base, Some(&server.admin_token));
    let b = TaskInstance::start("vision", 0, "300ms", &base, Some(&server.admin_token));
    let (a_id, b_id) = (a.ti_uuid.clone().unwrap(), b.ti_uuid.clone().unwrap());
    let mut ids = Vec::new();
    let mut on_a = Vec::new();
    for i in 0..8 {
        let answer = submit(&server, "vision", json!({"n": i})).await;
        let id = answer["task_id"].as_str().unwrap().to_string();
        if answer["scheduled_ti"] == a_id.as_str() {
            on_a.push(id.clone());
        }
        ids.push(id);
    }
    assert_eq!(on_a.len(), 4, "round-robin splits evenly");
    a.kill();
    let done = wait_finished(&server, &ids).await;
    for id in &ids {
        assert_eq!(done[id]["task_status"], "completed", "{}", done[id]);
    }
    for id in &on_a {
        assert_eq!(
            done[id]["scheduled_ti"],
            b_id.as_str(),
            "re-routed: {}",
            done[id]
        );
    }
    assert!(!instance_health(&server, &a_id).await);
    for _ in 0..4 {
        assert_eq!(
            submit(&server, "vision", json!({})).await["scheduled_ti"],
            b_id.as_str()
        );
    }

    // Back on the same port: healthy again and given tasks.
    let _a = TaskInstance::start("vision", a.port, "300ms", &base, None);
    wait_health(&server, &a_id, true).await;
    let picks: HashSet<String> =
        futures::future::join_all((0..4).map(|_| submit(&server, "vision", json!({}))))
            .await
            .iter()
            .map(|s| s["scheduled_ti"].as_str().unwrap().to_string())
            .collect();
    assert!(
        picks.contains(&a_id),
        "the rejoined instance gets tasks: {picks:?}"
    );

    // The only instance of a model dies with tasks: they fail with the reason, none vanish.
    let mut solo = TaskInstance::start("solo", 0, "2s", &base, Some(&server.admin_token));
    let held: Vec<String> =
        futures::future::join_all((0..3).map(|_| submit(&server, "solo", json!({}))))
            .await
            .iter()
            .map(|s| s["task_id"].as_str().unwrap().to_string())
            .collect();
    solo.kill();
    let done = wait_finished(&server, &held).await;
    for id in &held {
        assert_eq!(done[id]["task_status"], "failed", "{}", done[id]);
        let error = done[id]["error"].as_str().unwrap();
        assert!(error.contains("unreachable"), "{error}");
    }
    let (status, body) = post(
        &server,
        "/queue/submit",
        json!({"model_name": "solo", "task_input": {}}),
    )
    .await;
    assert_sp_error(status, &body, 503, "50101");
}

/// Strategies swapped while clients submit without pause: every submit succeeds and every
/// task completes. The recorded trace then replays through two strategies.
async fn hot_swapping_strategies_loses_no_submit_and_the_trace_replays(backend: Backend) {
    let trace = tempfile::tempdir().unwrap();
    let trace_path = trace.path().join("trace.jsonl");
    let path = trace_path.clone();
    let server = scheduler_with(backend, move |c| c.scheduler.trace_path = Some(path)).await;
    let base = server.url("");
    let _instances: Vec<TaskInstance> = ["exp:2ms", "exp:6ms", "exp:12ms"]
        .iter()
        .map(|t| TaskInstance::start("swap", 0, t, &base, Some(&server.admin_token)))
        .collect();
    // The clients submit 60 tasks each, and go on until at least four swaps happened while
    // they were submitting: overlap by construction, however slow the machine.
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    const SWAPS: usize = 4;
    let (stop, swaps) = (AtomicBool::new(false), AtomicUsize::new(0));
    let swapper = async {
        let order = [
            "round-robin",
            "shortest-expected-wait",
            "power-of-two-choices",
            "probabilistic",
        ];
        while !stop.load(Ordering::SeqCst) {
            let n = swaps.load(Ordering::SeqCst);
            let (status, body) = activate(&server, order[n % order.len()], None).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            swaps.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(15)).await;
        }
    };
    let clients = async {
        let per_client = futures::future::join_all((0..4).map(|c| {
            let (server, swaps) = (&server, &swaps);
            async move {
                let mut ids = Vec::new();
                let started_at = swaps.load(Ordering::SeqCst);
                while ids.len() < 60 || swaps.load(Ordering::SeqCst) < started_at + SWAPS {
                    let i = ids.len();
                    let answer = submit(server, "swap", json!({"client": c, "i": i})).await;
                    ids.push(answer["task_id"].as_str().unwrap().to_string());
                }
                ids
            }
        }))
        .await;
        stop.store(true, Ordering::SeqCst);
        per_client.concat()
    };
    let (ids, ()) = tokio::join!(clients, swapper);
    let submitted = ids.len();
    assert!(submitted >= 240, "{submitted}");
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), submitted);
    let done = wait_finished(&server, &ids).await;
    assert!(done.values().all(|t| t["task_status"] == "completed"));

    let out = succeed(
        weft()
            .args(["scheduler", "replay"])
            .arg(&trace_path)
            .args(["--strategy", "round-robin"])
            .args(["--strategy", "shortest-expected-wait", "--json"]),
    );
    let outcomes: Value = serde_json::from_str(&out).unwrap();
    let outcomes = outcomes.as_array().unwrap();
    assert_eq!(outcomes.len(), 2);
    for (o, name) in outcomes
        .iter()
        .zip(["round-robin@", "shortest-expected-wait@"])
    {
        assert!(o["strategy"].as_str().unwrap().starts_with(name), "{o}");
        assert_eq!(o["tasks"], submitted, "{o}");
        let (p50, p99, mean) = (
            o["p50_ms"].as_f64().unwrap(),
            o["p99_ms"].as_f64().unwrap(),
            o["mean_ms"].as_f64().unwrap(),
        );
        assert!(0.0 < p50 && p50 <= p99 && mean > 0.0, "{o}");
        let ran: u64 = o["per_instance"]
            .as_object()
            .unwrap()
            .values()
            .map(|n| n.as_u64().unwrap())
            .sum();
        assert_eq!(ran as usize, submitted, "{o}");
    }
    let out = weft()
        .args(["scheduler", "replay"])
        .arg(&trace_path)
        .args(["--strategy", "fastest"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("neither a built-in strategy"));
}

/// A strategy that traps is deactivated and round-robin takes its place without failing the
/// submit; an active strategy cannot be removed; per-model strategies and the CLI.
async fn failing_strategies_fall_back_and_active_ones_stay_installed(backend: Backend) {
    let server = scheduler(backend).await;
    let base = server.url("");
    let _ti = TaskInstance::start("m", 0, "1ms", &base, Some(&server.admin_token));
    let _other = TaskInstance::start("other", 0, "1ms", &base, Some(&server.admin_token));
    let (status, body) = server.upload(fixture("trap-strategy")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let (status, body) = activate(&server, "fibo", None).await;
    assert_error(status, &body, 409, "60204");
    let (status, body) = activate(&server, "no-such-strategy", None).await;
    assert_error(status, &body, 404, "90203");
    let (_, user) = server.user("plain").await;
    let (status, body) = send(
        server
            .with_token(&user, Method::PUT, "/api/v1/scheduler/strategies/active")
            .json(&json!({"strategy": "round-robin"})),
    )
    .await;
    assert_error(status, &body, 403, "90305");

    let (status, view) = activate(&server, "trap-strategy", Some("other")).await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["strategy"], "trap-strategy@1.0.0");
    let (status, refused) =
        send(server.admin(Method::DELETE, "/api/v1/plugins/trap-strategy")).await;
    assert_error(status, &refused, 409, "60202");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("model 'other'"),
        "{refused}"
    );

    let (status, view) = activate(&server, "trap-strategy", Some("m")).await;
    assert_eq!(status, StatusCode::OK, "{view}");
    let answer = submit(&server, "m", json!({"x": 1})).await;
    assert!(answer["scheduled_ti"].is_string());
    let (_, s) = send(server.admin(Method::GET, "/api/v1/scheduler/strategies")).await;
    assert!(
        s["models"]["m"]["strategy"]
            .as_str()
            .unwrap()
            .starts_with("round-robin@"),
        "{s}"
    );
    assert_eq!(
        s["models"]["other"]["strategy"], "trap-strategy@1.0.0",
        "{s}"
    );
    let deactivated = s["deactivated"].as_array().unwrap();
    assert_eq!(deactivated.len(), 1, "{s}");
    assert_eq!(deactivated[0]["strategy"], "trap-strategy@1.0.0");
    assert_eq!(deactivated[0]["model_name"], "m");
    assert!(
        deactivated[0]["reason"].as_str().unwrap().contains("trap"),
        "{s}"
    );
    assert!(s["available"].as_array().unwrap().len() >= 5, "{s}");
    // Submits keep working on the replacement.
    for _ in 0..3 {
        submit(&server, "m", json!({})).await;
    }

    // Through the CLI: activate, list, drop the model's own strategy.
    let cli = |args: &[&str]| {
        succeed(weft().arg("scheduler").args(args).args([
            "--url",
            &base,
            "--token",
            &server.admin_token,
        ]))
    };
    assert!(
        cli(&["activate", "probabilistic"]).contains("probabilistic@0.1.0 now serves every model")
    );
    let listed = cli(&["strategies"]);
    assert!(
        listed.contains("every model") && listed.contains("model other"),
        "{listed}"
    );
    assert!(
        listed.contains("deactivated trap-strategy@1.0.0"),
        "{listed}"
    );
    assert!(cli(&["instances"]).contains("other"));
    cli(&["deactivate", "--model", "other"]);
    let (status, _) = send(server.admin(Method::DELETE, "/api/v1/plugins/trap-strategy")).await;
    assert!(status.is_success(), "removable once nothing uses it");
    let (status, body) = send(server.admin(
        Method::DELETE,
        "/api/v1/scheduler/strategies/active?model_name=other",
    ))
    .await;
    assert_error(status, &body, 404, "90203");
}

/// Instances listed in a SwarmPilot config file are registered at start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_load_from_a_config_file() {
    let ti = TaskInstance::start("from-file", 0, "1ms", "http://127.0.0.1:9", None);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scheduler.yaml");
    std::fs::write(&path, format!("instances:\n  - host: 127.0.0.1\n    port: {}\n  - host: 127.0.0.1\n    port: 1\n    model_name: gone\n", ti.port)).unwrap();
    let server = scheduler_with(Backend::Sqlite, move |c| {
        c.scheduler.config_path = Some(path)
    })
    .await;
    let instances = server.state.scheduler.instances();
    assert_eq!(
        instances.len(),
        1,
        "the unreachable one is skipped with a warning"
    );
    assert_eq!(instances[0].model_name, "from-file");
    assert_eq!(instances[0].port, ti.port);
}

/// `SCHEDULER_CONFIG_PATH` names the instances file too (as SwarmPilot's scheduler reads it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_instances_file_can_come_from_scheduler_config_path() {
    let ti = TaskInstance::start("from-env", 0, "1ms", "http://127.0.0.1:9", None);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("instances.yaml");
    std::fs::write(
        &file,
        format!("instances:\n  - host: 127.0.0.1\n    port: {}\n", ti.port),
    )
    .unwrap();
    let data = dir.path().to_str().unwrap();
    let token = bootstrap(&[], &["--data-dir", data]);
    let server = WeftProcess::serve_with(
        &["--data-dir", data],
        &[("SCHEDULER_CONFIG_PATH", file.to_str().unwrap())],
    );
    let (status, instances) = send(
        reqwest::Client::new()
            .get(format!("{}/api/v1/scheduler/instances", server.base_url()))
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{instances}");
    let listed = instances.as_array().unwrap();
    assert_eq!(listed.len(), 1, "{instances}");
    assert_eq!(listed[0]["model_name"], "from-env");
    assert_eq!(listed[0]["port"], ti.port);
}

/// `[scheduler] default_strategy` serves every model until an admin activates another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_strategy_is_configured() {
    let server = scheduler_with(Backend::Sqlite, |c| {
        c.scheduler.default_strategy = "round-robin".into()
    })
    .await;
    let (status, strategies) =
        send(server.admin(Method::GET, "/api/v1/scheduler/strategies")).await;
    assert_eq!(status, StatusCode::OK, "{strategies}");
    assert!(
        strategies["global"]["strategy"]
            .as_str()
            .unwrap()
            .starts_with("round-robin@"),
        "{strategies}"
    );
}

/// `weft scheduler activate NAME --model M` gives one model its own strategy; the others keep
/// theirs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_activates_a_strategy_for_one_model() {
    let server = scheduler(Backend::Sqlite).await;
    let base = server.url("");
    let _ti = TaskInstance::start("m", 0, "1ms", &base, Some(&server.admin_token));
    let out = succeed(
        weft()
            .args(["scheduler", "activate", "round-robin", "--model", "m"])
            .args(["--url", &base, "--token", &server.admin_token]),
    );
    assert!(out.contains("round-robin@0.1.0"), "{out}");
    let (status, strategies) =
        send(server.admin(Method::GET, "/api/v1/scheduler/strategies")).await;
    assert_eq!(status, StatusCode::OK, "{strategies}");
    assert!(
        strategies["models"]["m"]["strategy"]
            .as_str()
            .unwrap()
            .starts_with("round-robin@"),
        "{strategies}"
    );
    assert!(
        strategies["global"]["strategy"]
            .as_str()
            .unwrap()
            .starts_with("shortest-expected-wait@"),
        "the others keep theirs: {strategies}"
    );
}

/// A strategy that runs past its limits is deactivated with the reason, and round-robin
/// takes over without failing the submit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_strategy_over_its_limits_is_replaced() {
    let server = scheduler(Backend::Sqlite).await;
    let base = server.url("");
    let _ti = TaskInstance::start("m", 0, "1ms", &base, Some(&server.admin_token));
    let (status, body) = server.upload(fixture("loop-strategy")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = send(
        server
            .admin(Method::PUT, "/api/v1/plugins/loop-strategy/limits")
            .json(&json!({"cpu_ms": 100, "timeout_ms": 1000})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, view) = activate(&server, "loop-strategy", Some("m")).await;
    assert_eq!(status, StatusCode::OK, "{view}");

    let answer = submit(&server, "m", json!({"x": 1})).await;
    assert!(answer["scheduled_ti"].is_string(), "{answer}");
    let (status, s) = send(server.admin(Method::GET, "/api/v1/scheduler/strategies")).await;
    assert_eq!(status, StatusCode::OK, "{s}");
    assert!(
        s["models"]["m"]["strategy"]
            .as_str()
            .unwrap()
            .starts_with("round-robin@"),
        "{s}"
    );
    let deactivated = s["deactivated"].as_array().unwrap();
    assert_eq!(deactivated.len(), 1, "{s}");
    assert_eq!(deactivated[0]["strategy"], "loop-strategy@1.0.0");
    let reason = deactivated[0]["reason"].as_str().unwrap().to_lowercase();
    assert!(reason.contains("cpu"), "the limit is named: {reason}");
}

/// `weft serve --scheduler-listen ADDR` serves the SwarmPilot paths there, and only there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduler_can_have_its_own_listener() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap().to_string();
    let token = bootstrap(&[], &["--data-dir", &data]);
    let mut server =
        WeftProcess::serve_args(&["--data-dir", &data, "--scheduler-listen", "127.0.0.1:0"]);
    let main = server.base_url();
    let scheduler = server.logged_url("scheduler listening on ");
    let http = reqwest::Client::new();
    let (status, health) = send(http.get(format!("{scheduler}/health"))).await;
    assert_eq!(
        (status, &health["service"]),
        (StatusCode::OK, &json!("scheduler"))
    );
    let (status, body) = send(http.get(format!("{main}/health"))).await;
    assert_eq!(
        (status, &body["code"]),
        (StatusCode::NOT_FOUND, &json!("90201")),
        "not on the main listener"
    );
    let (status, body) = send(http.get(format!("{scheduler}/api/v1/health"))).await;
    assert_error(status, &body, 404, "90201");

    let _ti = TaskInstance::start("own", 0, "1ms", &scheduler, Some(&token));
    let (status, answer) = send(
        http.post(format!("{scheduler}/queue/submit"))
            .header(TOKEN_HEADER, &token)
            .json(&json!({"model_name": "own", "task_input": {"q": 1}})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let id = answer["task_id"].as_str().unwrap();
    wait::until("the task to complete", Duration::from_secs(30), || async {
        let (_, task) = send(
            http.get(format!("{scheduler}/task/query?task_id={id}"))
                .header(TOKEN_HEADER, &token),
        )
        .await;
        if task["task_status"] == "completed" {
            Ok(())
        } else {
            Err(task)
        }
    })
    .await;
    let (status, stats) = send(
        http.get(format!("{main}/api/v1/scheduler/stats"))
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{stats}");
    assert_eq!(stats["decisions"], 1, "{stats}");
    assert!(stats["p99_us"].as_f64().unwrap() > 0.0, "{stats}");
    assert!(server.terminate(Duration::from_secs(20)).success());
}

async fn finished_tasks_are_purged_after_their_retention(backend: Backend) {
    let server = scheduler_with(backend, |c| {
        c.scheduler.retention_hours = 2.0 / 3600.0;
        c.scheduler.purge_interval_secs = 1;
    })
    .await;
    let base = server.url("");
    let _fast = TaskInstance::start("fast", 0, "1ms", &base, Some(&server.admin_token));
    let _slow = TaskInstance::start("slow", 0, "120s", &base, Some(&server.admin_token));
    // The unfinished task is older than the finished one from the start.
    let waiting = submit(&server, "slow", json!({"n": 2})).await;
    let waiting = waiting["task_id"].as_str().unwrap().to_string();
    let done = submit(&server, "fast", json!({"n": 1})).await;
    let done = done["task_id"].as_str().unwrap().to_string();
    let finished = wait_finished(&server, std::slice::from_ref(&done)).await;
    assert_eq!(finished[&done]["task_status"], "completed");

    // Two seconds after it finished it is gone.
    let (status, body) = wait::until(
        "the finished task to be purged",
        Duration::from_secs(30),
        || async {
            let (status, body) = get(&server, &format!("/task/query?task_id={done}")).await;
            if status == StatusCode::NOT_FOUND {
                return Ok((status, body));
            }
            assert_eq!(body["task_status"], "completed", "{body}");
            Err(body)
        },
    )
    .await;
    assert_sp_error(status, &body, 404, "50201");
    // The purge that took it saw the unfinished one, older still, and kept it.
    assert_eq!(query(&server, &waiting).await["task_status"], "scheduled");
}

/// A client whose connections come from `ip` (another loopback address stands for another
/// machine).
fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip.parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap()
}

on_both_backends!(
    forged_completions_are_refused,
    only_the_submitter_sees_a_task,
    an_instances_own_reports_go_through
);

/// The scene of issue 18's attack: three instances and alice's task on each, mallory another
/// user. "held" never finishes during a test; it registered itself at 127.0.0.2, so its own
/// reports (sent from 127.0.0.1) carry its secret, as those of "remote" do. "local" was
/// registered by the admin at 127.0.0.1 and reports from there without a credential.
struct Issue18 {
    server: TestServer,
    held: TaskInstance,
    _remote: TaskInstance,
    local: TaskInstance,
    local_id: String,
    alice: String,
    mallory: String,
    /// alice's task per model.
    ids: HashMap<&'static str, String>,
}

impl Issue18 {
    async fn set(backend: Backend) -> Self {
        let server = scheduler(backend).await;
        let base = server.url("");
        let admin = server.admin_token.clone();
        let held =
            TaskInstance::start_with("held", "127.0.0.2:0", "120s", &base, Some(&admin), &[]);
        let remote =
            TaskInstance::start_with("remote", "127.0.0.2:0", "1ms", &base, Some(&admin), &[]);
        let local = TaskInstance::start("local", 0, "1ms", &base, None);
        let local_id = register(&server, local.port, None).await;
        let (_, alice) = server.user("alice").await;
        let (_, mallory) = server.user("mallory").await;
        let mut ids = HashMap::new();
        for model in ["held", "remote", "local"] {
            let (status, answer) = send(
                server
                    .with_token(&alice, Method::POST, "/queue/submit")
                    .json(&json!({"model_name": model, "task_input": {"who": "alice"}})),
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{answer}");
            ids.insert(model, answer["task_id"].as_str().unwrap().to_string());
        }
        Self {
            server,
            held,
            _remote: remote,
            local,
            local_id,
            alice,
            mallory,
            ids,
        }
    }

    fn held_id(&self) -> String {
        self.held.ti_uuid.clone().unwrap()
    }

    /// `/task/query` of task `id` as `token`.
    fn query_as(&self, token: &str, id: &str) -> reqwest::RequestBuilder {
        self.server
            .with_token(token, Method::GET, &format!("/task/query?task_id={id}"))
    }

    /// A forged completion of alice's held task naming `instance`.
    fn forged(&self, instance: &str) -> Value {
        json!({"task_id": self.ids["held"], "instance_id": instance, "execution_time": 1.0, "result": {"forged": true}})
    }
}

/// The attack of issue 18: completions for alice's task forged by another user, by nobody,
/// with a made-up secret, by alice herself, or naming another instance, are all refused.
async fn forged_completions_are_refused(backend: Backend) {
    let scene = Issue18::set(backend).await;
    let Issue18 {
        server,
        local_id,
        alice,
        mallory,
        ..
    } = &scene;
    let held_id = scene.held_id();
    let forged = |instance: &str| scene.forged(instance);
    let task = &scene.ids["held"];
    // The forged completions: by another user, by nobody, with a made-up secret, by the owner
    // herself; and by a caller at another instance's address, which names that instance.
    let http = reqwest::Client::new();
    let url = server.url("/notify/task_complete");
    let attempts = [
        http.post(&url).bearer_auth(mallory).json(&forged(&held_id)),
        http.post(&url)
            .header(TOKEN_HEADER, mallory)
            .json(&forged(&held_id)),
        http.post(&url).json(&forged(&held_id)),
        http.post(&url)
            .bearer_auth("wefti_made-up")
            .json(&forged(&held_id)),
        http.post(&url).bearer_auth(alice).json(&forged(&held_id)),
    ];
    for attempt in attempts {
        let (status, body) = send(attempt).await;
        assert_sp_error(status, &body, 403, "50301");
    }
    // Naming no registered instance gets the seed's warning, and touches no task.
    let (status, body) = send(
        http.post(&url)
            .bearer_auth(mallory)
            .json(&forged("no-such-instance")),
    )
    .await;
    assert_eq!(
        (status, &body["status"]),
        (StatusCode::OK, &json!("warning")),
        "{body}"
    );
    let (status, body) = send(http.post(&url).json(&forged(local_id))).await;
    assert_sp_error(status, &body, 409, "50202");
    let (status, mine) = send(scene.query_as(alice, task)).await;
    assert_eq!(status, StatusCode::OK, "{mine}");
    assert_eq!(mine["task_status"], "scheduled", "nothing changed: {mine}");
}

/// Only the submitter (and an admin) sees a task; anyone else is told it does not exist,
/// exactly as for a task that does not.
async fn only_the_submitter_sees_a_task(backend: Backend) {
    let scene = Issue18::set(backend).await;
    let Issue18 { alice, mallory, .. } = &scene;
    let admin = scene.server.admin_token.clone();
    let task = &scene.ids["held"];
    let query_as = |token: &str, id: &str| scene.query_as(token, id);
    // Only the owner (and an admin) sees the task, still unfinished; anyone else is told it
    // does not exist, exactly as for a task that does not.
    let (status, mine) = send(query_as(alice, task)).await;
    assert_eq!(status, StatusCode::OK, "{mine}");
    assert_eq!(mine["task_status"], "scheduled", "{mine}");
    assert!(mine["result"].is_null(), "{mine}");
    let (status, theirs) = send(query_as(mallory, task)).await;
    assert_sp_error(status, &theirs, 404, "50201");
    let (_, missing) = send(query_as(mallory, "no-such-task")).await;
    assert_eq!(
        theirs["message"]
            .as_str()
            .unwrap()
            .replace(task.as_str(), "ID"),
        missing["message"]
            .as_str()
            .unwrap()
            .replace("no-such-task", "ID"),
    );
    let (status, by_admin) = send(query_as(&admin, task)).await;
    assert_eq!(
        (status, &by_admin["task_status"]),
        (StatusCode::OK, &json!("scheduled"))
    );
}

/// The real instances' reports go through: by address, and by secret from elsewhere; a
/// registration hands out a new secret; a caller at an instance's registered address is
/// taken for it.
async fn an_instances_own_reports_go_through(backend: Backend) {
    let scene = Issue18::set(backend).await;
    let Issue18 {
        server,
        local,
        alice,
        ids,
        ..
    } = &scene;
    let held_id = scene.held_id();
    let forged = |instance: &str| scene.forged(instance);
    let query_as = |token: &str, id: &str| scene.query_as(token, id);
    let url = server.url("/notify/task_complete");
    // The real instances' reports go through: by address, and by secret from elsewhere.
    for model in ["remote", "local"] {
        let task = wait::until("the task to complete", Duration::from_secs(30), || async {
            let (status, task) = send(query_as(alice, &ids[model])).await;
            assert_eq!(status, StatusCode::OK, "{task}");
            if task["task_status"] == "completed" {
                Ok(task)
            } else {
                Err(task)
            }
        })
        .await;
        assert_eq!(task["result"]["output"]["who"], "alice", "{task}");
    }
    // A registration hands out a new secret each time; the answer carries it.
    let (_, again) = post(
        server,
        "/ti/register",
        json!({"host": "127.0.0.1", "port": local.port}),
    )
    .await;
    assert!(
        again["ti_secret"].as_str().unwrap().starts_with("wefti_"),
        "{again}"
    );
    // A caller at the instance's registered address is taken for it, unless that is turned
    // off for hosts where others can connect from the same address.
    let (status, body) = send(client_from("127.0.0.2").post(&url).json(&forged(&held_id))).await;
    assert_eq!(
        (status, &body["task_status"]),
        (StatusCode::OK, &json!("completed")),
        "{body}"
    );
}

/// `completions_by_address = false`: the instance's address alone is not enough.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completions_by_address_can_be_turned_off() {
    let server = scheduler_with(Backend::Sqlite, |c| {
        c.scheduler.completions_by_address = false
    })
    .await;
    let local = TaskInstance::start("held", 0, "120s", &server.url(""), None);
    let local_id = register(&server, local.port, None).await;
    let (_, alice) = server.user("alice").await;
    let (status, answer) = send(
        server
            .with_token(&alice, Method::POST, "/queue/submit")
            .json(&json!({"model_name": "held", "task_input": {}})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let report =
        json!({"task_id": answer["task_id"], "instance_id": local_id, "execution_time": 1.0});
    let (status, body) = send(
        server
            .anon(Method::POST, "/notify/task_complete")
            .json(&report),
    )
    .await;
    assert_sp_error(status, &body, 403, "50301");
    assert!(
        !body["hint"].as_str().unwrap().contains("address"),
        "{body}"
    );
}

/// `trusted_networks` lets callers from those networks in without a token, as an admin, and
/// no one else; a custom token header works for the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trusted_networks_need_no_token() {
    let server = scheduler_with(Backend::Sqlite, |c| {
        c.scheduler.trusted_networks = vec!["127.0.0.2/32".parse().unwrap()];
        c.scheduler.token_header = "x-api-key".into();
    })
    .await;
    let ti = TaskInstance::start("m", 0, "1ms", &server.url(""), None);
    let register_body = json!({"host": "127.0.0.1", "port": ti.port});
    let trusted = client_from("127.0.0.2");
    let (status, body) = send(
        trusted
            .post(server.url("/ti/register"))
            .json(&register_body),
    )
    .await;
    assert_eq!(
        (status, &body["status"]),
        (StatusCode::OK, &json!("success")),
        "{body}"
    );
    let (status, submitted) = send(
        trusted
            .post(server.url("/queue/submit"))
            .json(&json!({"model_name": "m", "task_input": {}})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{submitted}");
    let id = submitted["task_id"].as_str().unwrap();
    let (status, task) = send(trusted.get(server.url(&format!("/task/query?task_id={id}")))).await;
    assert_eq!(status, StatusCode::OK, "{task}");

    let untrusted = client_from("127.0.0.1");
    let (status, body) =
        send(untrusted.get(server.url(&format!("/task/query?task_id={id}")))).await;
    assert_sp_error(status, &body, 401, "90301");
    let (_, user) = server.user("user").await;
    let (status, body) = send(
        untrusted
            .get(server.url(&format!("/task/query?task_id={id}")))
            .header("x-api-key", &user),
    )
    .await;
    assert_sp_error(status, &body, 404, "50201");
    let (status, body) = send(
        untrusted
            .get(server.url(&format!("/task/query?task_id={id}")))
            .header("x-api-key", &server.admin_token),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
