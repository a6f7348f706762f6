//! Web app benchmark in headless Chromium: prints figures, asserts nothing.
//!
//! `cargo bench -p weft --bench web_app` starts Weft in-process, stores a 1,000-node workflow
//! (a chain of fibo nodes) twice, with its nodes' positions (as the designer saves it) and
//! without, and runs tests/browser/web-app-bench.mjs (Debian's `chromium`, `npm ci` in
//! tests/browser): the first page's JS+CSS as transferred and its first contentful paint; the
//! designer opening each (navigation -> drawn), a node dragged (frame times), and auto-layout
//! with elkjs.

use serde_json::{Value, json};
use std::path::Path;

mod common;

const NODES: usize = 1000;
const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/browser/web-app-bench.mjs"
);

fn main() -> anyhow::Result<()> {
    common::run(bench())
}

async fn bench() -> anyhow::Result<()> {
    let chromium = std::env::var("WEFT_TEST_CHROMIUM").unwrap_or("/usr/bin/chromium".into());
    let playwright = Path::new(SCRIPT).with_file_name("node_modules/playwright-core");
    if !Path::new(&chromium).exists() || !playwright.is_dir() {
        println!("skipped: no {chromium} or no tests/browser/node_modules (npm ci there)");
        return Ok(());
    }
    let weft = common::serve(|_| {}).await?;
    let password = "a bench password";
    let admin = weft.state.auth.list_users().await?.remove(0);
    weft.state.auth.set_password(&admin.id, password).await?;
    let nodes: Vec<Value> = (0..NODES)
        .map(|i| json!({"id": format!("f{i}"), "type": "fibo", "config": {"n": 10}}))
        .collect();
    let edges: Vec<Value> = (1..NODES)
        .map(|i| json!({"source": format!("f{}", i - 1), "target": format!("f{i}")}))
        .collect();
    // As the designer saves it: every node's position (a chain folded into rows of 20).
    let positions: serde_json::Map<String, Value> = (0..NODES)
        .map(|i| {
            let at = json!({"x": (i % 20) * 280, "y": (i / 20) * 130});
            (format!("f{i}"), at)
        })
        .collect();
    let placed = store(
        &weft,
        json!({"name": "big", "nodes": nodes, "edges": edges,
        "ui": {"positions": positions}}),
    )
    .await?;
    let unplaced = store(
        &weft,
        json!({"name": "big-unplaced", "nodes": nodes, "edges": edges}),
    )
    .await?;
    let out = std::process::Command::new("node")
        .arg(SCRIPT)
        .args([
            &weft.base,
            &admin.name,
            password,
            &placed,
            &NODES.to_string(),
            &unplaced,
        ])
        .output()?;
    let figures: Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| anyhow::anyhow!("{e}: {}", String::from_utf8_lossy(&out.stderr)))?;
    println!("web app, first page (sign-in), cold:");
    println!(
        "  JS+CSS transferred {:.1} KB (gzipped; {:.1} KB decoded), first contentful paint {} ms",
        figures["first_page_js_css_bytes_transferred"]
            .as_f64()
            .unwrap_or(0.0)
            / 1024.0,
        figures["first_page_js_css_bytes_decoded"]
            .as_f64()
            .unwrap_or(0.0)
            / 1024.0,
        figures["first_contentful_paint_ms"]
    );
    println!("designer, {NODES}-node workflow:");
    println!(
        "  navigation -> drawn at its saved positions {} ms ({} nodes in view rendered)",
        figures["designer_load_ms"], figures["nodes_rendered"]
    );
    println!(
        "  navigation -> laid out (saved without positions) and drawn {} ms",
        figures["designer_load_unplaced_ms"]
    );
    println!(
        "  drag of a node: {} frames, p50 {} ms, p95 {} ms, {} fps",
        figures["drag_frames"],
        figures["drag_frame_ms_p50"],
        figures["drag_frame_ms_p95"],
        figures["drag_fps"]
    );
    println!(
        "  auto-layout (elkjs in its worker): {} ms as opened (laid out ahead), {} ms after an edit",
        figures["auto_layout_ms"], figures["auto_layout_edited_ms"]
    );
    Ok(())
}

/// Stores `definition` as a workflow of the bench's admin; returns its id.
async fn store(weft: &common::Local, definition: Value) -> anyhow::Result<String> {
    let stored: Value = reqwest::Client::new()
        .post(format!("{}/api/v1/workflows", weft.base))
        .bearer_auth(&weft.token)
        .json(&definition)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(stored["id"].as_str().unwrap_or_default().to_string())
}
