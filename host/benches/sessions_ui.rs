//! Workspace UI benchmark on the real engine and images, in headless Chromium: prints figures,
//! asserts nothing.
//!
//! `cargo bench -p weft --bench sessions_ui` starts Weft in-process and, for each workspace
//! image that is built, opens 3 sessions of a project and prints the medians of open -> ready
//! (the API's `POST …/session` until `ready`) and of one-time link -> interactive UI (JupyterLab's
//! shell listing the project's files / VS Code's workbench listing them in its explorer),
//! measured by tests/browser/workspace-ui.mjs (Debian's `chromium`, `npm ci` in tests/browser).

use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};
use weft::config::WorkspacesConfig;

mod common;

const SESSIONS: usize = 3;
const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/browser/workspace-ui.mjs"
);

fn main() -> anyhow::Result<()> {
    common::run(bench())
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn image_built(image: &str) -> bool {
    std::process::Command::new("docker")
        .args(["image", "inspect", image])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Link -> interactive UI in ms, from workspace-ui.mjs in `open` mode.
fn interactive_ms(kind: &str, link: &str) -> anyhow::Result<f64> {
    let shots = std::env::temp_dir().join("weft-bench-shots");
    let out = std::process::Command::new("node")
        .arg(SCRIPT)
        .args([kind, "open", link])
        .arg(&shots)
        .output()?;
    let seen: Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| anyhow::anyhow!("{e}: {}", String::from_utf8_lossy(&out.stderr)))?;
    anyhow::ensure!(seen["ok"] == true, "{kind}: {seen}");
    seen["interactive_ms"]
        .as_f64()
        .ok_or_else(|| anyhow::anyhow!("{kind}: {seen}"))
}

async fn bench() -> anyhow::Result<()> {
    let chromium = std::env::var("WEFT_TEST_CHROMIUM").unwrap_or("/usr/bin/chromium".into());
    let playwright = Path::new(SCRIPT).with_file_name("node_modules/playwright-core");
    if !Path::new(&chromium).exists() || !playwright.is_dir() {
        println!("skipped: no {chromium} or no tests/browser/node_modules (npm ci there)");
        return Ok(());
    }
    let local = common::serve(|c| c.workspaces.start_timeout_secs = 120).await?;
    let http = reqwest::Client::new();
    let api = |method: reqwest::Method, path: &str| {
        http.request(method, format!("{}{path}", local.base))
            .bearer_auth(&local.token)
    };
    let defaults = WorkspacesConfig::default();
    for (kind, image, file, text) in [
        (
            "jupyter",
            &defaults.jupyter.image,
            "hello.ipynb",
            json!({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": []}).to_string(),
        ),
        (
            "code-server",
            &defaults.code_server.image,
            "notes.txt",
            "first line\n".to_string(),
        ),
    ] {
        if !image_built(image) {
            println!("{kind:<12} skipped: {image} is not built (weft image build {kind})");
            continue;
        }
        let project: Value = api(reqwest::Method::POST, "/api/v1/projects")
            .json(&json!({ "name": kind }))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let project = project["id"].as_str().unwrap_or_default().to_string();
        api(
            reqwest::Method::PUT,
            &format!("/api/v1/projects/{project}/files/{file}"),
        )
        .body(text)
        .send()
        .await?
        .error_for_status()?;
        let (mut ready, mut interactive) = (Vec::new(), Vec::new());
        for _ in 0..SESSIONS {
            let session_path = format!("/api/v1/projects/{project}/session");
            let began = Instant::now();
            let session: Value = api(reqwest::Method::POST, &session_path)
                .json(&json!({ "kind": kind }))
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            let deadline = Instant::now() + Duration::from_secs(120);
            loop {
                let now: Value = api(reqwest::Method::GET, &session_path)
                    .send()
                    .await?
                    .json()
                    .await?;
                match now["status"].as_str() {
                    Some("ready") => break,
                    Some("failed") => anyhow::bail!("the session failed: {now}"),
                    _ if Instant::now() > deadline => anyhow::bail!("not ready: {now}"),
                    _ => tokio::time::sleep(Duration::from_millis(25)).await,
                }
            }
            ready.push(began.elapsed().as_secs_f64() * 1e3);
            interactive.push(interactive_ms(
                kind,
                session["link"].as_str().unwrap_or_default(),
            )?);
            api(reqwest::Method::DELETE, &session_path)
                .send()
                .await?
                .error_for_status()?;
        }
        println!(
            "{kind:<12} open -> ready median {:>6.0} ms, link -> interactive UI in Chromium median {:>6.0} ms (over {SESSIONS} sessions)",
            median(ready),
            median(interactive)
        );
    }
    Ok(())
}
