//! MLflow tracking benchmark: prints figures, asserts nothing.
//!
//! `cargo bench -p weft --bench mlflow` runs the same client workload
//! (`benches/mlflow_workload.py`, the official `mlflow` client) against Weft served
//! in-process (SQLite, local files) and against a real `mlflow server` (SQLite backend, local
//! artifacts, its default 4 workers) in one run, and prints both side by side:
//! - logging: 100 runs x (10 params + 100 metric steps in one log_batch + 1 small artifact);
//! - populating 10,000 runs from 8 threads (create + log_batch each); the real server's
//!   populated database is kept below the target folder (`mlflow-bench/`) and reused by later
//!   runs, since populating it takes ~13 minutes;
//! - `search_runs` over those 10,000 runs with a filter (`metrics.acc > 0.9 and
//!   params.group = 'g3'`, 100 hits) and ordered by a metric (first 100), median of 5; the
//!   filtered search also as its bare HTTP call, which leaves out the client's parsing of the
//!   answer, and that parsing alone (the client's own share, the same for both servers);
//! - Weft's resident memory after each phase (this process: the server and little else),
//!   and around a 1 GiB artifact logged and downloaded back through the client.
//!
//! The client comes from the test virtualenv (`WEFT_TEST_PYTHON`, default
//! /tmp/weft-test-venv/bin/python, with `mlflow` beside it).

use serde_json::Value;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

mod common;

fn main() -> anyhow::Result<()> {
    common::run(bench())
}

fn python() -> PathBuf {
    std::env::var_os("WEFT_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp/weft-test-venv/bin/python"))
}

const WORKLOAD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/mlflow_workload.py");

/// Runs the workload's `phase` (its name and arguments) against `uri` (with `token`); its
/// figures.
async fn workload(uri: &str, token: Option<&str>, phase: &[&str]) -> anyhow::Result<Value> {
    let home = tempfile::tempdir()?;
    let mut command = tokio::process::Command::new(python());
    command
        .arg(WORKLOAD)
        .args(phase)
        .env("MLFLOW_TRACKING_URI", uri)
        .env("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        // The client's telemetry thread edits os.environ while requests read it: a run
        // failed on the race (KeyError: '_MLFLOW_TELEMETRY_SESSION_ID').
        .env("MLFLOW_DISABLE_TELEMETRY", "true")
        .env("DO_NOT_TRACK", "true")
        .env("HOME", home.path())
        .current_dir(home.path());
    if let Some(token) = token {
        command.env("MLFLOW_TRACKING_TOKEN", token);
    }
    let out = command.output().await?;
    anyhow::ensure!(
        out.status.success(),
        "the workload failed against {uri}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    Ok(serde_json::from_str(
        stdout.lines().last().unwrap_or_default(),
    )?)
}

/// A real `mlflow server` on a free port, stopped with every process it started when
/// dropped.
struct MlflowServer {
    uri: String,
    child: tokio::process::Child,
    data: tempfile::TempDir,
}

impl Drop for MlflowServer {
    /// `mlflow server` starts uvicorn, a job runner and huey consumers that outlive it when
    /// it alone is killed: the whole process group is stopped.
    fn drop(&mut self) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", "--", &format!("-{pid}")])
                .status();
        }
    }
}

/// Starts `mlflow server` on a free port, on a copy of `database` when given (an SQLite file
/// its store made) or on a new one.
async fn mlflow_server(database: Option<&Path>) -> anyhow::Result<MlflowServer> {
    let data = tempfile::tempdir()?;
    let db = data.path().join("mlflow.db");
    if let Some(database) = database {
        std::fs::copy(database, &db)?;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mlflow = python().with_file_name("mlflow");
    let child = tokio::process::Command::new(mlflow)
        .args(["server", "--host", "127.0.0.1", "--port", &port.to_string()])
        .arg("--backend-store-uri")
        .arg(format!("sqlite:///{}", db.display()))
        .arg("--artifacts-destination")
        .arg(data.path().join("artifacts"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()?;
    let uri = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    let http = reqwest::Client::new();
    loop {
        if let Ok(r) = http.get(format!("{uri}/health")).send().await
            && r.status().is_success()
        {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(180),
            "mlflow server did not answer /health within 180 s"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Ok(MlflowServer { uri, child, data })
}

impl MlflowServer {
    /// A consistent copy of its database at `to` (SQLite's online backup, taken through the
    /// client's Python), for later runs to start from.
    async fn keep_database(&self, to: &Path) -> anyhow::Result<()> {
        let backup = "import sqlite3, sys\n\
                      source, copy = sqlite3.connect(sys.argv[1]), sqlite3.connect(sys.argv[2])\n\
                      source.backup(copy)\n\
                      copy.close()";
        let status = tokio::process::Command::new(python())
            .args(["-c", backup])
            .arg(self.data.path().join("mlflow.db"))
            .arg(to)
            .status()
            .await?;
        anyhow::ensure!(status.success(), "copying mlflow's database failed");
        Ok(())
    }
}

/// The real server's database with the 10,000 searched runs, kept between runs of the
/// benchmark below the target folder (populating it takes ~13 minutes), keyed by the
/// workload's text so that a changed workload populates anew. Delete the folder to
/// populate again.
struct KeptRuns {
    folder: PathBuf,
}

impl KeptRuns {
    fn new() -> anyhow::Result<Self> {
        let script = std::fs::read(WORKLOAD)?;
        let mut hasher = std::hash::DefaultHasher::new();
        script.hash(&mut hasher);
        // The bench binary is target/<profile>/deps/mlflow-<hash>.
        let exe = std::env::current_exe()?;
        let target = exe
            .ancestors()
            .nth(3)
            .ok_or_else(|| anyhow::anyhow!("no target folder above {}", exe.display()))?;
        Ok(Self {
            folder: target
                .join("mlflow-bench")
                .join(format!("{:016x}", hasher.finish())),
        })
    }

    fn database(&self) -> PathBuf {
        self.folder.join("mlflow.db")
    }

    /// The populating phase's figures (its experiment id and seconds) when the database is
    /// kept; written last, so a cut-off copy is never taken for one.
    fn figures(&self) -> Option<Value> {
        let text = std::fs::read_to_string(self.folder.join("populate.json")).ok()?;
        serde_json::from_str(&text).ok()
    }

    async fn keep(&self, server: &MlflowServer, figures: &Value) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.folder)?;
        let partial = self.folder.join("mlflow.db.partial");
        let _ = std::fs::remove_file(&partial);
        server.keep_database(&partial).await?;
        std::fs::rename(&partial, self.database())?;
        std::fs::write(
            self.folder.join("populate.json"),
            serde_json::to_vec(figures)?,
        )?;
        Ok(())
    }
}

/// Weft's resident memory around a 1 GiB artifact logged and downloaded back through the
/// client (MB before, peak during, after) and the seconds of each way.
struct LargeArtifact {
    before: f64,
    peak: f64,
    after: f64,
    figures: Value,
}

/// Starts this process's peak resident memory (`VmHWM`) afresh from the current figure.
fn reset_peak_memory() -> anyhow::Result<()> {
    Ok(std::fs::write("/proc/self/clear_refs", "5")?)
}

async fn large_artifact(uri: &str, token: &str) -> anyhow::Result<LargeArtifact> {
    let before = common::status_mb("VmRSS");
    reset_peak_memory()?;
    let figures = workload(uri, Some(token), &["large"]).await?;
    Ok(LargeArtifact {
        before,
        peak: common::status_mb("VmHWM"),
        after: common::status_mb("VmRSS"),
        figures,
    })
}

/// The id of the experiment holding the searched runs in a populating phase's `figures`.
fn experiment_of(figures: &Value) -> anyhow::Result<String> {
    figures["experiment"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("the populating phase named no experiment"))
}

async fn bench() -> anyhow::Result<()> {
    println!("load average at start: {}", common::load_average());
    let weft = common::serve(|_| {}).await?;
    let weft_uri = format!("{}/mlflow", weft.base);
    let token = Some(weft.token.as_str());
    let rss_start = common::status_mb("VmRSS");
    let weft_logging = workload(&weft_uri, token, &["logging"]).await?;
    let rss_logging = common::status_mb("VmRSS");
    let weft_populated = workload(&weft_uri, token, &["populate"]).await?;
    let experiment = experiment_of(&weft_populated)?;
    let weft_search = workload(&weft_uri, token, &["search", &experiment]).await?;
    let rss_search = common::status_mb("VmRSS");
    let peak = common::status_mb("VmHWM");
    let large = large_artifact(&weft_uri, &weft.token).await?;

    // Logging on a new database, as Weft's; searching on the kept one when there is one.
    let ml_logging = {
        let mlflow = mlflow_server(None).await?;
        workload(&mlflow.uri, None, &["logging"]).await?
    };
    let kept = KeptRuns::new()?;
    let kept_figures = kept.figures();
    let mlflow = mlflow_server(kept_figures.as_ref().map(|_| kept.database()).as_deref()).await?;
    let ml_populated = match &kept_figures {
        Some(figures) => figures.clone(),
        None => {
            let figures = workload(&mlflow.uri, None, &["populate"]).await?;
            kept.keep(&mlflow, &figures).await?;
            figures
        }
    };
    let experiment = experiment_of(&ml_populated)?;
    let ml_search = workload(&mlflow.uri, None, &["search", &experiment]).await?;

    let row = |name: &str, key: &str, w: &Value, m: &Value| {
        let (w, m) = (
            w[key].as_f64().unwrap_or(0.0),
            m[key].as_f64().unwrap_or(0.0),
        );
        println!(
            "{name:<44} {:>10.1} ms {:>10.1} ms {:>7.1}x",
            w * 1000.0,
            m * 1000.0,
            m / w.max(f64::EPSILON)
        );
    };
    println!(
        "{:<44} {:>13} {:>13} {:>8}",
        "", "weft", "mlflow server", "speedup"
    );
    row(
        "logging: 100 runs (10 params, 100 steps, 1 file)",
        "logging_s",
        &weft_logging,
        &ml_logging,
    );
    row(
        "populating 10,000 runs (8 threads)",
        "populate_s",
        &weft_populated,
        &ml_populated,
    );
    row(
        "search_runs, filter over 10,000 runs (median)",
        "search_s",
        &weft_search,
        &ml_search,
    );
    row(
        "  the same search's HTTP call alone (median)",
        "search_raw_s",
        &weft_search,
        &ml_search,
    );
    row(
        "  the client parsing that call's answer",
        "parse_s",
        &weft_search,
        &ml_search,
    );
    row(
        "search_runs, order by metric, first 100",
        "ordered_s",
        &weft_search,
        &ml_search,
    );
    if kept_figures.is_some() {
        println!(
            "(mlflow server's 10,000 runs kept from an earlier run in {}; its populating \
             figure is that run's)",
            kept.folder.display()
        );
    }
    println!(
        "runs found by the filter: weft {}, mlflow server {}",
        weft_search["found"], ml_search["found"]
    );
    println!(
        "weft resident memory: {rss_start:.0} MB at start, {rss_logging:.0} MB after logging, \
         {rss_search:.0} MB after 10,000 runs and the searches (peak {peak:.0} MB)"
    );
    println!(
        "1 GiB artifact through the client into Weft: upload {:.1} s, download {:.1} s; \
         weft resident memory {:.0} MB before, {:.0} MB peak, {:.0} MB after",
        large.figures["upload_s"].as_f64().unwrap_or(0.0),
        large.figures["download_s"].as_f64().unwrap_or(0.0),
        large.before,
        large.peak,
        large.after
    );
    println!("load average at end: {}", common::load_average());
    Ok(())
}
