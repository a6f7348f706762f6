//! Warm pool benchmark on the real engine: prints figures, asserts nothing.
//!
//! `cargo bench -p weft --bench pool` starts Weft in-process twice, without a pool and with
//! `[workspaces.pool] jupyter = 1`, and opens and stops a Jupyter session (`weft/jupyter:2`,
//! a project of a few small files) `SESSIONS` times through the HTTP API: open -> ready p50 and
//! p95 per path. With the pool, each open waits first until the pool is full again, so every
//! sample is a take from a warm pool (the refill's own start is not measured).

use serde_json::json;
use std::time::{Duration, Instant};
use weft::config::WorkspacesConfig;
use weft::workspace::sessions::SessionKind;

mod common;

const SESSIONS: usize = 12;

fn main() -> anyhow::Result<()> {
    common::run(bench())
}

fn percentile(sorted: &[Duration], p: usize) -> f64 {
    let at = (sorted.len() * p).div_ceil(100).saturating_sub(1);
    sorted[at.min(sorted.len() - 1)].as_secs_f64() * 1e3
}

/// Open -> ready of `SESSIONS` sessions on a Weft with a Jupyter pool of `pool`.
async fn measure(pool: u32) -> anyhow::Result<Vec<Duration>> {
    let local = common::serve(|c| {
        c.workspaces.start_timeout_secs = 120;
        c.workspaces.pool.jupyter = pool;
    })
    .await?;
    let api = common::Api {
        base: local.base.clone(),
        token: local.token.clone(),
        http: reqwest::Client::new(),
    };
    let project = api
        .call(
            reqwest::Method::POST,
            "/api/v1/projects",
            Some(json!({ "name": "pool" })),
        )
        .await?;
    let project = project["id"].as_str().unwrap_or_default().to_string();
    for (path, content) in [
        ("analysis.ipynb", "{}"),
        ("data/input.csv", "a,b\n1,2\n"),
        ("README.md", "# pool"),
    ] {
        api.http
            .put(format!(
                "{}/api/v1/projects/{project}/files/{path}",
                api.base
            ))
            .bearer_auth(&api.token)
            .body(content)
            .send()
            .await?
            .error_for_status()?;
    }
    let sessions = &local.state.sessions;
    let mut samples = Vec::new();
    for _ in 0..SESSIONS {
        let deadline = Instant::now() + Duration::from_secs(120);
        while sessions.pool_idle(SessionKind::Jupyter) < pool as usize {
            anyhow::ensure!(Instant::now() < deadline, "the pool did not fill");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let began = Instant::now();
        let opened = api
            .call(
                reqwest::Method::POST,
                &format!("/api/v1/projects/{project}/session"),
                Some(json!({ "kind": "jupyter" })),
            )
            .await?;
        let id = opened["session_id"].as_str().unwrap_or_default();
        sessions
            .wait_ready(id, Duration::from_secs(120))
            .await
            .map_err(|e| anyhow::anyhow!("{}", e.message))?;
        samples.push(began.elapsed());
        api.call(
            reqwest::Method::DELETE,
            &format!("/api/v1/projects/{project}/session"),
            None,
        )
        .await?;
    }
    // The pool's containers outlive this in-process Weft: remove what it made.
    let filter = format!("label=weft.install={}", local.state.containers.install_id());
    let listed = std::process::Command::new("docker")
        .args(["ps", "-aq", "--filter", &filter])
        .output()?;
    let ids: Vec<String> = String::from_utf8_lossy(&listed.stdout)
        .split_whitespace()
        .map(String::from)
        .collect();
    if !ids.is_empty() {
        std::process::Command::new("docker")
            .args(["rm", "-f"])
            .args(&ids)
            .output()?;
    }
    samples.sort();
    Ok(samples)
}

async fn bench() -> anyhow::Result<()> {
    let image = WorkspacesConfig::default().jupyter.image;
    let built = std::process::Command::new("docker")
        .args(["image", "inspect", &image])
        .output()
        .is_ok_and(|o| o.status.success());
    if !built {
        println!("skipped: {image} is not built (weft image build jupyter)");
        return Ok(());
    }
    for (path, pool) in [("cold start", 0), ("warm pool", 1)] {
        let samples = measure(pool).await?;
        println!(
            "jupyter {path:<10} open -> ready p50 {:>6.0} ms  p95 {:>6.0} ms  over {SESSIONS} sessions",
            percentile(&samples, 50),
            percentile(&samples, 95)
        );
    }
    Ok(())
}
