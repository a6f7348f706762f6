//! Notebook benchmark on the real engine and the real Jupyter image: prints figures, asserts
//! nothing.
//!
//! `cargo bench -p weft --bench notebooks` starts Weft in-process, creates a notebook (which opens
//! a Jupyter session) and measures, after a warm-up, the round trip of executing `1+1`:
//! - through the API (`POST /api/v1/notebooks/{id}/execute`, answered once the outputs are
//!   saved to the `.ipynb` in the session and in the project), as a new cell each time and as
//!   the same cell run again;
//! - through Weft's kernel client alone (the kernel's WebSocket, nothing stored), to show what
//!   the API and the saving add.
//!
//! Needs `weft image build jupyter` (the test command builds the image).

use serde_json::{Value, json};
use std::time::{Duration, Instant};
use weft::notebook::jupyter::Jupyter;
use weft::notebook::kernel::{Kernel, Limits};

mod common;

const WARMUP: usize = 20;
const RUNS: usize = 200;

fn main() -> anyhow::Result<()> {
    common::run(bench())
}

async fn bench() -> anyhow::Result<()> {
    let image = weft::config::WorkspacesConfig::default().jupyter.image;
    let built = std::process::Command::new("docker")
        .args(["image", "inspect", &image])
        .output()
        .is_ok_and(|o| o.status.success());
    anyhow::ensure!(
        built,
        "{image} is missing: build it with `weft image build jupyter`"
    );
    let local = common::serve(|c| c.workspaces.start_timeout_secs = 120).await?;
    let http = reqwest::Client::new();
    let call = |path: &str, body: Value| {
        let request = http
            .post(format!("{}{path}", local.base))
            .bearer_auth(&local.token)
            .json(&body);
        async move {
            let response = request.send().await?;
            let status = response.status();
            let body: Value = response.json().await?;
            anyhow::ensure!(status.is_success(), "{status} {body}");
            anyhow::Ok(body)
        }
    };
    let project = call("/api/v1/projects", json!({"name": "bench"})).await?;
    let project = project["id"].as_str().unwrap_or_default().to_string();
    let started = Instant::now();
    let notebook = call("/api/v1/notebooks", json!({"project_id": project})).await?;
    let id = notebook["id"].as_str().unwrap_or_default().to_string();
    let execute = format!("/api/v1/notebooks/{id}/execute");
    let first = call(&execute, json!({"code": "1+1"})).await?;
    anyhow::ensure!(first["status"] == "ok", "{first}");
    println!(
        "notebook benchmark: {RUNS} executions of 1+1 after {WARMUP} warm-up ones (first one, session and kernel start included: {:.1} s)",
        started.elapsed().as_secs_f64()
    );

    let mut new_cell = Vec::new();
    for i in 0..WARMUP + RUNS {
        let started = Instant::now();
        let answer = call(&execute, json!({"code": "1+1"})).await?;
        anyhow::ensure!(
            answer["outputs"][0]["data"]["text/plain"] == "2",
            "{answer}"
        );
        if i >= WARMUP {
            new_cell.push(started.elapsed());
        }
    }
    let cell = first["cell_id"].clone();
    let mut same_cell = Vec::new();
    for i in 0..WARMUP + RUNS {
        let started = Instant::now();
        let answer = call(&execute, json!({"cell_id": cell, "code": "1+1"})).await?;
        anyhow::ensure!(answer["status"] == "ok", "{answer}");
        if i >= WARMUP {
            same_cell.push(started.elapsed());
        }
    }

    // The kernel client alone, on a kernel of its own in the same Jupyter server.
    let sessions = &local.state.sessions;
    let owner = weft::workspace::sessions::owner(&local.state.auth.list_users().await?[0].id);
    let session = sessions.get(&owner, &project).await?;
    let upstream = sessions.upstream_of(&session).await?;
    let jupyter = Jupyter::new(
        weft::workspace::upstream::client(Duration::from_secs(30)),
        &upstream,
        local.state.config.workspaces.max_file_bytes,
    )?;
    let kernel = Kernel::connect(
        jupyter,
        "direct.ipynb",
        "python3",
        Duration::from_secs(60),
        std::sync::Arc::new(|_| {}),
    )
    .await?;
    let limits = Limits {
        timeout: Duration::from_secs(30),
        interrupt_grace: Duration::from_secs(5),
        max_output_bytes: 1 << 20,
    };
    let mut direct = Vec::new();
    for i in 0..WARMUP + RUNS {
        let started = Instant::now();
        let outcome = kernel.execute("1+1", limits, &mut |_| {}).await;
        anyhow::ensure!(outcome.outputs.len() == 1, "{outcome:?}");
        if i >= WARMUP {
            direct.push(started.elapsed());
        }
    }
    kernel.shutdown().await;

    for (name, samples) in [
        ("API, a new cell each time", new_cell),
        ("API, the same cell again", same_cell),
        ("kernel client alone", direct),
    ] {
        let (p50, p90, p99) = percentiles(samples);
        println!(
            "{name:<28} median {:>6.2} ms  p90 {:>6.2} ms  p99 {:>6.2} ms",
            ms(p50),
            ms(p90),
            ms(p99)
        );
    }
    // Stop the session: its container goes.
    let _ = http
        .delete(format!("{}/api/v1/projects/{project}/session", local.base))
        .bearer_auth(&local.token)
        .send()
        .await;
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn percentiles(mut samples: Vec<Duration>) -> (Duration, Duration, Duration) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    (at(0.5), at(0.9), at(0.99))
}
