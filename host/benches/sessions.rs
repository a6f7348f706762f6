//! Workspace session benchmark on the real engine: prints figures, asserts nothing.
//!
//! `cargo bench -p weft --bench sessions` starts Weft in-process and, through the HTTP API:
//! - opens and stops 5 sessions of each workspace image that is built (`weft image build
//!   jupyter`, `weft image build code-server`) and prints the create -> ready median.
//!
//! The proxy's own costs are measured by the `proxy` bench, the load of many sessions by
//! `workspaces_load`.

use serde_json::{Value, json};
use std::time::{Duration, Instant};
use weft::config::WorkspacesConfig;

mod common;

const SESSIONS: usize = 5;

fn main() -> anyhow::Result<()> {
    common::run(bench())
}

impl common::Api {
    async fn ready(&self, project: &str) -> anyhow::Result<Value> {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let session = self
                .call(
                    reqwest::Method::GET,
                    &format!("/api/v1/projects/{project}/session"),
                    None,
                )
                .await?;
            match session["status"].as_str() {
                Some("ready") => return Ok(session),
                Some("failed") => anyhow::bail!("the session failed: {session}"),
                _ if Instant::now() > deadline => anyhow::bail!("not ready: {session}"),
                _ => tokio::time::sleep(Duration::from_millis(25)).await,
            }
        }
    }
}

fn image_built(image: &str) -> bool {
    std::process::Command::new("docker")
        .args(["image", "inspect", image])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

async fn bench() -> anyhow::Result<()> {
    let local = common::serve(|c| c.workspaces.start_timeout_secs = 120).await?;
    let api = common::Api {
        base: local.base.clone(),
        token: local.token.clone(),
        http: reqwest::Client::new(),
    };
    let defaults = WorkspacesConfig::default();
    for (kind, image) in [
        ("jupyter", &defaults.jupyter.image),
        ("code-server", &defaults.code_server.image),
    ] {
        if !image_built(image) {
            println!("{kind:<12} skipped: {image} is not built (weft image build {kind})");
            continue;
        }
        let project = api
            .call(
                reqwest::Method::POST,
                "/api/v1/projects",
                Some(json!({ "name": kind })),
            )
            .await?;
        let project = project["id"].as_str().unwrap_or_default().to_string();
        let mut samples = Vec::new();
        for _ in 0..SESSIONS {
            let began = Instant::now();
            api.call(
                reqwest::Method::POST,
                &format!("/api/v1/projects/{project}/session"),
                Some(json!({ "kind": kind })),
            )
            .await?;
            api.ready(&project).await?;
            samples.push(began.elapsed());
            api.call(
                reqwest::Method::DELETE,
                &format!("/api/v1/projects/{project}/session"),
                None,
            )
            .await?;
        }
        println!(
            "{kind:<12} create -> ready median {:>7.0} ms over {SESSIONS} sessions",
            median(samples).as_secs_f64() * 1e3
        );
    }

    Ok(())
}
