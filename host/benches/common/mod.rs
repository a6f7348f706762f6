//! What the HTTP benchmarks share: the runtime, and Weft served in-process on a fresh data folder.

use std::net::SocketAddr;
use weft::config::Config;
use weft::state::AppState;

/// A figure of this process from `/proc/self/status` (`VmRSS`, `VmHWM`, ...), in MB.
#[allow(dead_code)] // read by the memory runs alone
pub(crate) fn status_mb(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))?
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<f64>()
                .ok()
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Runs `bench` on a multi-threaded tokio runtime.
pub(crate) fn run(bench: impl Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(bench)
}

/// A Weft server on ephemeral ports (the API's and the sessions'), its state, and an admin
/// token.
pub(crate) struct Local {
    pub base: String,
    /// The sessions listener: a session answers there for host `<id>.localhost:<its port>`.
    #[allow(dead_code)] // read by the sessions bench alone
    pub sessions: SocketAddr,
    pub token: String,
    #[allow(dead_code)] // the sessions_ui bench goes through the HTTP API alone
    pub state: AppState,
    _data: tempfile::TempDir,
}

impl Local {
    /// Fails with what to do when `image` is not on the engine.
    #[allow(dead_code)] // used by the container benches
    pub(crate) async fn require_image(&self, image: &str) -> anyhow::Result<()> {
        let driver = self.state.containers.driver();
        if driver.image(image).await?.is_none() {
            anyhow::bail!("the image {image} is missing: run tests/images/build.sh");
        }
        Ok(())
    }
}

/// Starts Weft on its default SQLite store after `customize` adjusted the configuration.
pub(crate) async fn serve(customize: impl FnOnce(&mut Config)) -> anyhow::Result<Local> {
    let data = tempfile::tempdir()?;
    let mut config = Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        data_dir: data.path().to_path_buf(),
        ..Config::default()
    };
    customize(&mut config);
    let sessions = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    config.workspaces.sessions_listen = sessions.local_addr()?;
    let state = AppState::open(config).await?;
    let (_, admin) = state.auth.bootstrap("bench").await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let app = weft::app::router(state.clone());
    tokio::spawn(async move { weft::api::serve(listener, app).await });
    let proxy = weft::workspace::proxy::router(state.clone());
    let sessions_addr = sessions.local_addr()?;
    tokio::spawn(async move { weft::api::serve(sessions, proxy).await });
    Ok(Local {
        base,
        sessions: sessions_addr,
        token: admin.token,
        state,
        _data: data,
    })
}

/// A client of the API with a token.
#[allow(dead_code)] // used by the sessions and git benches
pub(crate) struct Api {
    pub base: String,
    pub token: String,
    pub http: reqwest::Client,
}

#[allow(dead_code)] // used by the sessions and git benches
impl Api {
    /// Calls `method path` with `body`: the answer's JSON, or an error with its status.
    pub(crate) async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> anyhow::Result<serde_json::Value> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let status = response.status();
        let text = response.text().await?;
        anyhow::ensure!(status.is_success(), "{path}: {status} {text}");
        Ok(serde_json::from_str(&text).unwrap_or(serde_json::Value::Null))
    }
}
