//! MLflow tracking benchmark: prints figures, asserts nothing.
//!
//! `cargo bench -p weft --bench mlflow` runs the same client workload
//! (`benches/mlflow_workload.py`, the official `mlflow` client) against Weft served
//! in-process (SQLite, local files) and against a real `mlflow server` (SQLite backend, local
//! artifacts, its default 4 workers) in one run, and prints both side by side:
//! - logging: 100 runs x (10 params + 100 metric steps in one log_batch + 1 small artifact);
//! - populating 10,000 runs from 8 threads (create + log_batch each);
//! - `search_runs` over those 10,000 runs with a filter (`metrics.acc > 0.9 and
//!   params.group = 'g3'`, 100 hits) and ordered by a metric (first 100), median of 5; the
//!   filtered search also as its bare HTTP call, which leaves out the client's parsing of the
//!   answer (the same for both servers, and a floor under the client's figure);
//! - Weft's resident memory after each phase (this process: the server and little else).
//!
//! The client comes from the test virtualenv (`WEFT_TEST_PYTHON`, default
//! /tmp/weft-test-venv/bin/python, with `mlflow` beside it).

use serde_json::Value;
use std::path::PathBuf;
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

/// Runs the workload's `phase` against `uri` (with `token`); its figures.
async fn workload(uri: &str, token: Option<&str>, phase: &str) -> anyhow::Result<Value> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/mlflow_workload.py");
    let home = tempfile::tempdir()?;
    let mut command = tokio::process::Command::new(python());
    command
        .arg(script)
        .arg(phase)
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
    _data: tempfile::TempDir,
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

async fn mlflow_server() -> anyhow::Result<MlflowServer> {
    let data = tempfile::tempdir()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mlflow = python().with_file_name("mlflow");
    let child = tokio::process::Command::new(mlflow)
        .args(["server", "--host", "127.0.0.1", "--port", &port.to_string()])
        .arg("--backend-store-uri")
        .arg(format!("sqlite:///{}/mlflow.db", data.path().display()))
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
    Ok(MlflowServer {
        uri,
        child,
        _data: data,
    })
}

async fn bench() -> anyhow::Result<()> {
    let weft = common::serve(|_| {}).await?;
    let weft_uri = format!("{}/mlflow", weft.base);
    let rss_start = common::status_mb("VmRSS");
    let weft_logging = workload(&weft_uri, Some(&weft.token), "logging").await?;
    let rss_logging = common::status_mb("VmRSS");
    let weft_search = workload(&weft_uri, Some(&weft.token), "search").await?;
    let rss_search = common::status_mb("VmRSS");
    let peak = common::status_mb("VmHWM");

    let mlflow = mlflow_server().await?;
    let ml_logging = workload(&mlflow.uri, None, "logging").await?;
    let ml_search = workload(&mlflow.uri, None, "search").await?;

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
        &weft_search,
        &ml_search,
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
        "search_runs, order by metric, first 100",
        "ordered_s",
        &weft_search,
        &ml_search,
    );
    println!(
        "runs found by the filter: weft {}, mlflow server {}",
        weft_search["found"], ml_search["found"]
    );
    println!(
        "weft resident memory: {rss_start:.0} MB at start, {rss_logging:.0} MB after logging, \
         {rss_search:.0} MB after 10,000 runs and the searches (peak {peak:.0} MB)"
    );
    Ok(())
}
