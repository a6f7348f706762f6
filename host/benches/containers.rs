//! Container lifecycle benchmark on the real Docker engine: prints figures, asserts nothing.
//!
//! `cargo bench -p weft --bench containers` starts Weft in-process on its default SQLite store
//! and, through the HTTP API, takes 20 containers of the local test image
//! `weft-test/busybox:1` (built by `tests/images/build.sh`) one after another through:
//! - create -> running: `POST /api/v1/containers` (create, start, and the start grace in which a
//!   container that exits at once is caught) until it answers `running`;
//! - stop: `POST /api/v1/containers/{id}/stop` until it answers `stopped`;
//! - stop -> removed: `DELETE /api/v1/containers/{id}` on a running container (stop, then remove)
//!   until it answers 204.
//!
//! 20 containers are stopped (then removed) and 20 more removed while running, so the create
//! figure covers 40.
//!
//! The seed's targets: create under 30 s, start under 10 s, stop under 5 s.

use serde_json::{Value, json};
use std::time::{Duration, Instant};

mod common;

const IMAGE: &str = "weft-test/busybox:1";
const CONTAINERS: usize = 20;

fn main() -> anyhow::Result<()> {
    common::run(bench())
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn show(label: &str, samples: Vec<Duration>) {
    let max = samples.iter().max().copied().unwrap_or_default();
    println!(
        "{label:<18} median {:>8.1} ms   max {:>8.1} ms   ({} containers)",
        median(samples.clone()).as_secs_f64() * 1e3,
        max.as_secs_f64() * 1e3,
        samples.len()
    );
}

async fn bench() -> anyhow::Result<()> {
    let local = common::serve(|c| c.containers.allowed_images = vec![IMAGE.into()]).await?;
    let info = local.state.containers.driver().info().await.map_err(|e| {
        anyhow::anyhow!("{e}: start dockerd (tests/run.sh does) and build the test images")
    })?;
    local.require_image(IMAGE).await?;
    println!(
        "Docker {} (API {}), image {IMAGE}",
        info.version, info.api_version
    );
    let http = reqwest::Client::new();
    let url = |path: &str| format!("{}/api/v1{path}", local.base);
    let body = json!({
        "image": IMAGE,
        "command": ["sleep", "100000"],
        "resources": { "cpu": "100m", "memory": "32Mi" }
    });
    let mut create = Vec::new();
    let mut stop = Vec::new();
    let mut removed = Vec::new();
    // 20 stopped then removed (the stop figure), 20 removed while running (stop -> removed).
    for round in 0..2 * CONTAINERS {
        let began = Instant::now();
        let created: Value = http
            .post(url("/containers"))
            .bearer_auth(&local.token)
            .json(&body)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        create.push(began.elapsed());
        anyhow::ensure!(created["status"] == "running", "not running: {created}");
        let id = created["id"].as_str().unwrap_or_default().to_string();
        let stopping = round < CONTAINERS;
        if stopping {
            let began = Instant::now();
            let stopped: Value = http
                .post(url(&format!("/containers/{id}/stop")))
                .bearer_auth(&local.token)
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            stop.push(began.elapsed());
            anyhow::ensure!(stopped["status"] == "stopped", "not stopped: {stopped}");
        }
        let began = Instant::now();
        http.delete(url(&format!("/containers/{id}")))
            .bearer_auth(&local.token)
            .send()
            .await?
            .error_for_status()?;
        if !stopping {
            removed.push(began.elapsed());
        }
    }
    show("create -> running", create);
    show("stop", stop);
    show("stop -> removed", removed);
    Ok(())
}
