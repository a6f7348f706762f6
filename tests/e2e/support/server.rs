//! An in-process Weft server on ephemeral ports (the API's and the sessions') with its own data
//! folder and database.

use super::Backend;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::Value;
use std::net::SocketAddr;
use std::panic::Location;
use tempfile::TempDir;
use weft::config::Config;
use weft::state::AppState;

/// A running server plus a client and the bootstrap admin's token.
pub struct TestServer {
    pub addr: SocketAddr,
    /// `http://ADDR`, the API's root.
    pub base: String,
    /// The sessions listener (session origins are `http://<id>.localhost:<its port>`).
    pub sessions_addr: SocketAddr,
    pub config: Config,
    pub state: AppState,
    pub admin_token: String,
    /// Reaches the API and session origins.
    pub client: reqwest::Client,
    _data: TempDir,
    tasks: [tokio::task::JoinHandle<()>; 2],
}

impl TestServer {
    /// Starts a server with default configuration on `backend`.
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, |_| {}).await
    }

    /// Starts a server after `customize` adjusted the configuration.
    pub async fn start_with(backend: Backend, customize: impl FnOnce(&mut Config)) -> Self {
        let data = tempfile::tempdir().expect("temp dir");
        let mut config = Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: data.path().to_path_buf(),
            database_url: Some(backend.fresh_database(data.path()).await),
            ..Config::default()
        };
        // Compiled components are shared by every test server: compile once, load from disk.
        config.plugins.cache_dir = Some(super::fixtures::shared_cache_dir());
        config.plugins.max_instances = 32;
        // The images tests/images/build.sh makes, as an admin would allow them.
        config.containers.allowed_images = vec!["weft-test/*".into()];
        customize(&mut config);
        // As `weft serve` does: the sessions listener first, its port in the session origins.
        let sessions = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let sessions_addr = sessions.local_addr().expect("addr");
        config.workspaces.sessions_listen = sessions_addr;
        let state = AppState::open(config.clone()).await.expect("open state");
        let (_, admin) = state.auth.bootstrap("admin").await.expect("bootstrap");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let app = weft::app::router(state.clone());
        let api = tokio::spawn(async move {
            weft::api::serve(listener, app).await.expect("serve");
        });
        let proxy = weft::workspace::proxy::router(state.clone());
        let proxy = tokio::spawn(async move {
            weft::api::serve(sessions, proxy).await.expect("serve");
        });
        Self {
            addr,
            base: format!("http://{addr}"),
            sessions_addr,
            config,
            state,
            admin_token: admin.token,
            client: super::loopback::client_builder()
                .build()
                .expect("HTTP client"),
            _data: data,
            tasks: [api, proxy],
        }
    }

    /// Opens the same data folder and database again, as a restarted Weft would.
    pub async fn reopen(&self) -> AppState {
        AppState::open(self.config.clone())
            .await
            .expect("reopen state")
    }

    /// Absolute URL for `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request without credentials.
    pub fn anon(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, self.url(path))
    }

    /// A request with `token`.
    pub fn with_token(&self, token: &str, method: Method, path: &str) -> RequestBuilder {
        self.anon(method, path).bearer_auth(token)
    }

    /// A request as the bootstrap admin.
    pub fn admin(&self, method: Method, path: &str) -> RequestBuilder {
        self.with_token(&self.admin_token, method, path)
    }

    /// Uploads a plugin component as the admin.
    pub async fn upload(&self, component: Vec<u8>) -> (StatusCode, Value) {
        send(
            self.admin(Method::POST, "/api/v1/plugins")
                .header("content-type", "application/wasm")
                .body(component),
        )
        .await
    }

    /// Runs a node plugin once as the admin; `body` holds `config` and `inputs`.
    pub async fn run_plugin(&self, plugin: &str, body: Value) -> (StatusCode, Value) {
        send(
            self.admin(Method::POST, &format!("/api/v1/plugins/{plugin}/run"))
                .json(&body),
        )
        .await
    }

    /// A WebSocket request for `path` carrying `token`.
    pub fn ws_request(
        &self,
        token: &str,
        path: &str,
    ) -> tokio_tungstenite::tungstenite::handshake::client::Request {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut request = format!("ws://{}{path}", self.addr)
            .into_client_request()
            .expect("WebSocket URL");
        request.headers_mut().insert(
            "authorization",
            format!("Bearer {token}").parse().expect("header"),
        );
        request
    }

    /// Creates a user with role `user` and returns (user id, token).
    #[track_caller]
    pub fn user(&self, name: &str) -> impl Future<Output = (String, String)> {
        let caller = Location::caller();
        async move {
            let (status, user) = send(
                self.admin(Method::POST, "/api/v1/users")
                    .json(&serde_json::json!({ "name": name })),
            )
            .await;
            expect_status(caller, status, StatusCode::CREATED, &user);
            let id = user["id"].as_str().expect("user id").to_string();
            let (status, token) = send(
                self.admin(Method::POST, "/api/v1/tokens")
                    .json(&serde_json::json!({ "name": "test", "user_id": id })),
            )
            .await;
            expect_status(caller, status, StatusCode::CREATED, &token);
            (id, token["token"].as_str().expect("token").to_string())
        }
    }
}

/// Project and session helpers, as `token`.
impl TestServer {
    /// Creates a project named `name` and returns its id, asserting it was created.
    #[track_caller]
    pub fn project(&self, token: &str, name: &str) -> impl Future<Output = String> {
        let caller = Location::caller();
        async move {
            let (status, project) = send(
                self.with_token(token, Method::POST, "/api/v1/projects")
                    .json(&serde_json::json!({ "name": name })),
            )
            .await;
            expect_status(caller, status, StatusCode::CREATED, &project);
            project["id"].as_str().expect("project id").to_string()
        }
    }

    /// `POST /projects/{project}/session` for `kind`.
    pub async fn open_session(
        &self,
        token: &str,
        project: &str,
        kind: &str,
    ) -> (StatusCode, Value) {
        send(
            self.with_token(
                token,
                Method::POST,
                &format!("/api/v1/projects/{project}/session"),
            )
            .json(&serde_json::json!({ "kind": kind })),
        )
        .await
    }

    /// The engine id of the container of `project`'s session, once the session is ready.
    #[track_caller]
    pub fn session_engine_id<'a>(
        &'a self,
        token: &'a str,
        project: &'a str,
    ) -> impl Future<Output = String> + 'a {
        let caller = Location::caller();
        let ready = self.session_ready(token, project);
        async move {
            let session = ready.await;
            let container = session["container_id"].as_str().expect("a container");
            let (status, container) = send(self.with_token(
                token,
                Method::GET,
                &format!("/api/v1/containers/{container}"),
            ))
            .await;
            expect_status(caller, status, StatusCode::OK, &container);
            container["engine_id"]
                .as_str()
                .expect("an engine id")
                .to_string()
        }
    }

    /// `DELETE /projects/{project}/session`: sync, then stop.
    pub async fn stop_session(&self, token: &str, project: &str) -> (StatusCode, Value) {
        send(self.with_token(
            token,
            Method::DELETE,
            &format!("/api/v1/projects/{project}/session"),
        ))
        .await
    }

    /// Writes `content` at `path` in the project's files, asserting it was stored.
    #[track_caller]
    pub fn put_file(
        &self,
        token: &str,
        project: &str,
        path: &str,
        content: &str,
    ) -> impl Future<Output = ()> {
        let caller = Location::caller();
        let request = self
            .with_token(
                token,
                Method::PUT,
                &format!("/api/v1/projects/{project}/files/{path}"),
            )
            .body(content.to_string());
        async move {
            let (status, body) = send(request).await;
            expect_status(caller, status, StatusCode::OK, &body);
        }
    }

    /// The paths of the project's files, sorted.
    #[track_caller]
    pub fn file_paths(&self, token: &str, project: &str) -> impl Future<Output = Vec<String>> {
        let caller = Location::caller();
        let request = self.with_token(
            token,
            Method::GET,
            &format!("/api/v1/projects/{project}/files"),
        );
        async move {
            let (status, listed) = send(request).await;
            expect_status(caller, status, StatusCode::OK, &listed);
            listed
                .as_array()
                .expect("a list of files")
                .iter()
                .map(|f| f["path"].as_str().expect("a path").to_string())
                .collect()
        }
    }

    /// The body of `GET path` as text, asserting 200.
    #[track_caller]
    pub fn download(&self, token: &str, path: &str) -> impl Future<Output = String> {
        let caller = Location::caller();
        let request = self.with_token(token, Method::GET, path);
        async move {
            let response = request.send().await.expect("request sent");
            let status = response.status();
            let text = response.text().await.expect("body read");
            expect_status(caller, status, StatusCode::OK, &Value::String(text.clone()));
            text
        }
    }
}

/// Workflow helpers: create, execute and wait, as `token`.
impl TestServer {
    /// Creates a workflow and returns its stored form, asserting it was accepted.
    #[track_caller]
    pub fn create_workflow(&self, token: &str, definition: Value) -> impl Future<Output = Value> {
        self.create_workflow_at(Location::caller(), token, definition)
    }

    async fn create_workflow_at(
        &self,
        caller: &'static Location<'static>,
        token: &str,
        definition: Value,
    ) -> Value {
        let (status, body) = send(
            self.with_token(token, Method::POST, "/api/v1/workflows")
                .json(&definition),
        )
        .await;
        expect_status(caller, status, StatusCode::CREATED, &body);
        body
    }

    /// Starts a run of workflow `id` with `inputs` and returns the run id.
    #[track_caller]
    pub fn execute(&self, token: &str, id: &str, inputs: Value) -> impl Future<Output = String> {
        self.execute_at(Location::caller(), token, id, inputs)
    }

    async fn execute_at(
        &self,
        caller: &'static Location<'static>,
        token: &str,
        id: &str,
        inputs: Value,
    ) -> String {
        let (status, run) = send(
            self.with_token(
                token,
                Method::POST,
                &format!("/api/v1/workflows/{id}/execute"),
            )
            .json(&serde_json::json!({ "inputs": inputs })),
        )
        .await;
        expect_status(caller, status, StatusCode::ACCEPTED, &run);
        run["id"].as_str().expect("run id").to_string()
    }

    /// Polls run `id` until it finishes (at most a minute) and returns it with its nodes.
    #[track_caller]
    pub fn wait_run<'a>(&'a self, token: &'a str, id: &'a str) -> impl Future<Output = Value> + 'a {
        let base = self.base.as_str();
        wait_for_run(&self.client, base, token, id)
    }

    /// Polls run `id` until its node `running` runs (at most 30 s) and returns the run.
    #[track_caller]
    pub fn wait_node_running<'a>(
        &'a self,
        token: &'a str,
        id: &'a str,
        running: &'a str,
    ) -> impl Future<Output = Value> + 'a {
        wait_for_node_running(&self.client, &self.base, token, id, running)
    }

    /// Polls the project's session until it is ready (at most 2 minutes; a failed session fails
    /// the test at once) and returns it.
    #[track_caller]
    pub fn session_ready<'a>(
        &'a self,
        token: &'a str,
        project: &'a str,
    ) -> impl Future<Output = Value> + 'a {
        wait_for_session(&self.client, &self.base, token, project)
    }

    /// Creates a workflow, runs it once without inputs and returns the finished run.
    #[track_caller]
    pub fn run_workflow(&self, token: &str, definition: Value) -> impl Future<Output = Value> {
        let caller = Location::caller();
        async move {
            let workflow = self.create_workflow_at(caller, token, definition).await;
            let id = workflow["id"].as_str().expect("workflow id");
            let run = self
                .execute_at(caller, token, id, serde_json::json!({}))
                .await;
            run_finished(caller, &self.client, &self.base, token, &run).await
        }
    }
}

/// Polls run `id` on the server at `base` until it finishes (at most a minute).
#[track_caller]
pub fn wait_for_run<'a>(
    client: &'a reqwest::Client,
    base: &'a str,
    token: &'a str,
    id: &'a str,
) -> impl Future<Output = Value> + 'a {
    run_finished(Location::caller(), client, base, token, id)
}

fn run_finished<'a>(
    caller: &'static Location<'static>,
    client: &'a reqwest::Client,
    base: &'a str,
    token: &'a str,
    id: &'a str,
) -> impl Future<Output = Value> + 'a {
    super::wait::until_at(
        caller,
        "the run to finish",
        std::time::Duration::from_secs(60),
        move || async move {
            let (status, run) = send(
                client
                    .get(format!("{base}/api/v1/runs/{id}"))
                    .bearer_auth(token),
            )
            .await;
            expect_status(caller, status, StatusCode::OK, &run);
            let finished = ["succeeded", "failed", "cancelled"]
                .contains(&run["status"].as_str().unwrap_or(""));
            if finished { Ok(run) } else { Err(run) }
        },
    )
}

/// Polls the project's session on the server at `base` until it is ready (at most 2 minutes; a
/// failed session fails the test at once) and returns it.
#[track_caller]
pub fn wait_for_session<'a>(
    client: &'a reqwest::Client,
    base: &'a str,
    token: &'a str,
    project: &'a str,
) -> impl Future<Output = Value> + 'a {
    super::wait::until(
        "the session to be ready",
        std::time::Duration::from_secs(120),
        move || async move {
            let (_, session) = send(
                client
                    .get(format!("{base}/api/v1/projects/{project}/session"))
                    .bearer_auth(token),
            )
            .await;
            match session["status"].as_str() {
                Some("ready") => Ok(session),
                Some("failed") => panic!("the session failed: {session}"),
                _ => Err(session),
            }
        },
    )
}

/// Polls run `id` on the server at `base` until its node `running` runs (at most 30 s) and
/// returns the run as it was then.
#[track_caller]
pub fn wait_for_node_running<'a>(
    client: &'a reqwest::Client,
    base: &'a str,
    token: &'a str,
    id: &'a str,
    running: &'a str,
) -> impl Future<Output = Value> + 'a {
    super::wait::until(
        "the node to run",
        std::time::Duration::from_secs(30),
        move || async move {
            let (_, run) = send(
                client
                    .get(format!("{base}/api/v1/runs/{id}"))
                    .bearer_auth(token),
            )
            .await;
            if node(&run, running)["status"] == "running" {
                Ok(run)
            } else {
                Err(run)
            }
        },
    )
}

/// Starts a run of `workflow` on the running `weft` at `base` and waits until its node
/// `running` runs (to kill the host there); returns the run's id and the run as it was then.
pub async fn execute_until_running(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    workflow: &Value,
    running: &str,
) -> (String, Value) {
    let (status, run) = send(
        client
            .post(format!(
                "{base}/api/v1/workflows/{}/execute",
                workflow["id"].as_str().expect("workflow id")
            ))
            .bearer_auth(token),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{run}");
    let run_id = run["id"].as_str().expect("run id").to_string();
    let run = wait_for_node_running(client, base, token, &run_id, running).await;
    (run_id, run)
}

/// A time the API wrote (RFC 3339) in Unix milliseconds.
pub fn millis(value: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(value.as_str().expect("a time"))
        .expect("RFC 3339")
        .timestamp_millis()
}

/// The node `id` of a run as returned by the API.
pub fn node<'a>(run: &'a Value, id: &str) -> &'a Value {
    run["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .find(|n| n["id"] == id)
        .unwrap_or_else(|| panic!("no node {id} in {run}"))
}

impl Drop for TestServer {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Calls a running `weft` at `base` as `token`, with an optional JSON body. The request is
/// built at once, so the answer's future borrows nothing.
pub fn call(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> impl Future<Output = (StatusCode, Value)> + use<> {
    let mut request = client
        .request(method, format!("{base}{path}"))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    send(request)
}

/// Sends `request` and returns the status and the body parsed as JSON (`Null` when empty,
/// a JSON string when the body is not JSON).
pub async fn send(request: RequestBuilder) -> (StatusCode, Value) {
    let response = request.send().await.expect("request sent");
    let status = response.status();
    let text = response.text().await.expect("body read");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, body)
}

/// Fails the test at `caller` (its line, not this helper's) unless `status` is `want`.
pub fn expect_status(
    caller: &'static Location<'static>,
    status: StatusCode,
    want: StatusCode,
    body: &Value,
) {
    assert!(
        status == want,
        "{caller}: status {status}, expected {want}: {body}"
    );
}
