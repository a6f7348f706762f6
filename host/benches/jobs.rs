//! Container job overhead on the real Docker engine: prints figures, asserts nothing.
//!
//! `cargo bench -p weft --bench jobs` starts Weft in-process on its default SQLite store,
//! grants `jobs` to the built-in `container-job` node and, 15 times each and interleaved:
//! - runs a one-node workflow of `container-job` around `true` in `weft-test/busybox:1` and
//!   takes the node's own time (started to succeeded as the run stores them: the component's
//!   call, the job's container created, started, its end seen, collected and removed);
//! - runs `docker run --rm weft-test/busybox:1 true` with the Docker CLI, timed from spawn to
//!   exit.
//!
//! The goal: the node's median under 400 ms and within 1.5x of `docker run --rm`'s.

use serde_json::{Value, json};
use std::time::{Duration, Instant};

mod common;

const IMAGE: &str = "weft-test/busybox:1";
const ROUNDS: usize = 15;

fn main() -> anyhow::Result<()> {
    common::run(bench())
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn millis(value: &Value) -> anyhow::Result<f64> {
    let text = value
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("no time: {value}"))?;
    Ok(chrono::DateTime::parse_from_rfc3339(text)?.timestamp_micros() as f64 / 1e3)
}

async fn bench() -> anyhow::Result<()> {
    let local = common::serve(|c| c.containers.allowed_images = vec![IMAGE.into()]).await?;
    local.require_image(IMAGE).await?;
    let http = reqwest::Client::new();
    let url = |path: &str| format!("{}/api/v1{path}", local.base);
    http.put(url("/plugins/container-job/grants"))
        .bearer_auth(&local.token)
        .json(&json!({"everyone": true, "jobs": true}))
        .send()
        .await?
        .error_for_status()?;
    let workflow: Value = http
        .post(url("/workflows"))
        .bearer_auth(&local.token)
        .json(&json!({"name": "true", "nodes": [{"id": "job", "type": "container-job",
            "config": {"image": IMAGE, "command": ["true"], "resources": {"cpu": "100m", "memory": "32Mi"}}}],
            "edges": []}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let execute = url(&format!(
        "/workflows/{}/execute",
        workflow["id"].as_str().unwrap_or_default()
    ));
    let (mut node, mut cli) = (Vec::new(), Vec::new());
    for round in 0..=ROUNDS {
        let run: Value = http
            .post(&execute)
            .bearer_auth(&local.token)
            .json(&json!({}))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let run_url = url(&format!("/runs/{}", run["id"].as_str().unwrap_or_default()));
        let done = loop {
            let run: Value = http
                .get(&run_url)
                .bearer_auth(&local.token)
                .send()
                .await?
                .json()
                .await?;
            if !matches!(run["status"].as_str(), Some("queued" | "running")) {
                break run;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        anyhow::ensure!(done["status"] == "succeeded", "the run failed: {done}");
        let job = &done["nodes"][0];
        let took = millis(&job["finished_at"])? - millis(&job["started_at"])?;
        let began = Instant::now();
        let status = std::process::Command::new("docker")
            .args(["run", "--rm", IMAGE, "true"])
            .status()?;
        anyhow::ensure!(status.success(), "docker run failed");
        // The first round warms the component and the engine up.
        if round > 0 {
            node.push(took);
            cli.push(began.elapsed().as_secs_f64() * 1e3);
        }
    }
    let (node, cli) = (median(node), median(cli));
    println!("container-job around `true`  median {node:>7.1} ms   ({ROUNDS} runs)");
    println!("docker run --rm ... true      median {cli:>7.1} ms   ({ROUNDS} runs)");
    println!(
        "ratio                         {:>7.2}x  (goal: under 400 ms and within 1.5x)",
        node / cli
    );
    Ok(())
}
