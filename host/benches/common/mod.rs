//! What the HTTP benchmarks share: the runtime, and Weft served in-process on a fresh data folder.

use std::net::SocketAddr;
use weft::config::Config;
use weft::state::AppState;

/// A figure of this process from `/proc/self/status` (`VmRSS`, `VmHWM`, ...), in MB.
#[allow(dead_code)] // read by the memory runs alone
pub(crate) fn status_mb(field: &str) -> f64 {
    process_status_mb("self", field)
}

/// A figure of process `pid` (a number, or `self`) from its `/proc` status, in MB.
#[allow(dead_code)] // read by the memory runs alone
pub(crate) fn process_status_mb(pid: &str, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
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

/// CPU time of process `pid` (a number, or `self`) from its `/proc` stat, in seconds: its own
/// (user and system) and its children's that it waited for.
#[allow(dead_code)] // read by the benches that time a process's CPU
pub(crate) fn cpu_seconds(pid: &str) -> (f64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command (which may hold spaces) in parentheses: utime, stime, cutime
    // and cstime are the 14th to 17th, in ticks of 1/100 s.
    let rest = stat.rsplit(')').next().unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let secs = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 100.0
    };
    (secs(11) + secs(12), secs(13) + secs(14))
}

/// The machine's load averages over 1, 5 and 15 minutes, as `/proc/loadavg` has them.
#[allow(dead_code)] // printed by the benches that share the machine's cores with their load
pub(crate) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
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
#[allow(dead_code)] // the benches that run `weft serve` as a process of its own build none
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
#[allow(dead_code)] // the benches that run `weft serve` as a process of its own call none
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

/// A `weft serve` child process of this build on a fresh data folder, with its log in that
/// folder: the benches that measure Weft apart from their own client's load.
#[allow(dead_code)] // used by the proxy and workspaces_load benches
pub(crate) struct Process {
    child: std::process::Child,
    pub base: String,
    pub sessions_port: u16,
    /// The first admin's token.
    pub admin: String,
    pub log: std::path::PathBuf,
    _data: tempfile::TempDir,
}

impl Drop for Process {
    fn drop(&mut self) {
        terminate(&mut self.child);
    }
}

/// Stops `child` with SIGTERM (nginx's master then stops its workers, which SIGKILL would
/// leave behind holding the bench's output), killing it after 10 s.
#[allow(dead_code)] // used by the proxy and workspaces_load benches
pub(crate) fn terminate(child: &mut std::process::Child) {
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let began = std::time::Instant::now();
    while began.elapsed() < std::time::Duration::from_secs(10) {
        if !matches!(child.try_wait(), Ok(None)) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[allow(dead_code)] // used by the proxy and workspaces_load benches
impl Process {
    /// Bootstraps an admin and serves with `config` (TOML) on ephemeral ports.
    pub(crate) fn start(config: &str) -> anyhow::Result<Self> {
        use std::io::BufRead;
        let data = tempfile::tempdir()?;
        let file = data.path().join("weft.toml");
        std::fs::write(&file, config)?;
        let weft = |args: &[&str]| {
            let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_weft"));
            command
                .args(args)
                .env("WEFT_CONFIG", &file)
                .env("WEFT_DATA_DIR", data.path())
                .env("WEFT_LISTEN", "127.0.0.1:0")
                .env("WEFT_WORKSPACES__SESSIONS_LISTEN", "127.0.0.1:0")
                .env("RUST_LOG", "warn,weft=info");
            command
        };
        let out = weft(&["admin", "bootstrap", "--name", "admin"]).output()?;
        anyhow::ensure!(
            out.status.success(),
            "weft admin bootstrap: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let admin = String::from_utf8(out.stdout)?.trim().to_string();
        let log = data.path().join("weft.log");
        let child = weft(&["serve"])
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()?;
        let mut process = Self {
            child,
            base: String::new(),
            sessions_port: 0,
            admin,
            log,
            _data: data,
        };
        let began = std::time::Instant::now();
        while process.base.is_empty() || process.sessions_port == 0 {
            anyhow::ensure!(
                began.elapsed() < std::time::Duration::from_secs(300),
                "weft did not say where it listens within 300 s"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
            let file = std::fs::File::open(&process.log)?;
            for line in std::io::BufReader::new(file).lines().map_while(Result::ok) {
                let after = |marker: &str| {
                    let rest = line.split(marker).nth(1)?;
                    Some(rest.split_whitespace().next()?.to_string())
                };
                if let Some(addr) = after("weft listening on http://") {
                    process.base = format!("http://{addr}");
                }
                if let Some(port) = after("sessions listening on http://")
                    .and_then(|a| a.rsplit(':').next()?.parse().ok())
                {
                    process.sessions_port = port;
                }
            }
        }
        Ok(process)
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }
}
