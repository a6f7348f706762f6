//! Workspace session benchmark on the real engine: prints figures, asserts nothing.
//!
//! `cargo bench -p weft --bench sessions` starts Weft in-process and, through the HTTP API:
//! - opens and stops 5 sessions of each workspace image that is built (`weft image build
//!   jupyter`, `weft image build code-server`) and prints the create -> ready median;
//! - with one Jupyter session open, measures small requests per second (16 concurrent clients,
//!   3 s) and the rate of a 64 MiB download, through Weft's proxy, straight to the container,
//!   and through Debian's nginx (`apt-get install nginx`) proxying the same container, in the
//!   same run.

use serde_json::{Value, json};
use std::time::{Duration, Instant};
use weft::config::WorkspacesConfig;

mod common;

const SESSIONS: usize = 5;
const BIG: usize = 64 << 20;

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

/// Requests per second of GET `url` (with `headers`) from 16 clients for 3 s.
async fn request_rate(url: &str, headers: &[(&str, String)]) -> anyhow::Result<f64> {
    let http = reqwest::Client::new();
    let until = Instant::now() + Duration::from_secs(3);
    let mut clients = Vec::new();
    for _ in 0..16 {
        let (http, url) = (http.clone(), url.to_string());
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        clients.push(tokio::spawn(async move {
            let mut done = 0u64;
            while Instant::now() < until {
                let mut request = http.get(&url);
                for (k, v) in &headers {
                    request = request.header(k, v);
                }
                if request
                    .send()
                    .await
                    .and_then(|r| r.error_for_status())
                    .is_ok()
                {
                    done += 1;
                }
            }
            done
        }));
    }
    let mut total = 0;
    for client in clients {
        total += client.await?;
    }
    Ok(total as f64 / 3.0)
}

/// MiB/s of downloading `url` three times (the best of three).
async fn download_rate(url: &str, headers: &[(&str, String)]) -> anyhow::Result<f64> {
    let http = reqwest::Client::new();
    let mut best = 0.0f64;
    for _ in 0..3 {
        let mut request = http.get(url);
        for (k, v) in headers {
            request = request.header(*k, v);
        }
        let began = Instant::now();
        let bytes = request.send().await?.error_for_status()?.bytes().await?;
        anyhow::ensure!(bytes.len() == BIG, "short download: {}", bytes.len());
        best = best.max(BIG as f64 / (1 << 20) as f64 / began.elapsed().as_secs_f64());
    }
    Ok(best)
}

/// Debian's nginx proxying `upstream` on a free port, if installed.
fn start_nginx(upstream: &str, dir: &std::path::Path) -> Option<(std::process::Child, String)> {
    let nginx = ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let config = format!(
        "daemon off; worker_processes 1; pid {dir}/nginx.pid; error_log {dir}/error.log;\n\
         events {{ worker_connections 1024; }}\n\
         http {{ access_log off; client_body_temp_path {dir}; proxy_temp_path {dir};\n\
           upstream ws {{ server {upstream}; keepalive 32; }}\n\
           server {{ listen 127.0.0.1:{port};\n\
             location / {{ proxy_pass http://ws; proxy_http_version 1.1; proxy_set_header Connection \"\";\n\
                           proxy_buffering off; }} }} }}\n",
        dir = dir.display()
    );
    let file = dir.join("nginx.conf");
    std::fs::write(&file, config).ok()?;
    let child = std::process::Command::new(nginx)
        .args(["-c", &file.to_string_lossy()])
        .spawn()
        .ok()?;
    std::thread::sleep(Duration::from_millis(500));
    Some((child, format!("http://127.0.0.1:{port}")))
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

    if !image_built(&defaults.jupyter.image) {
        return Ok(());
    }
    let project = api
        .call(
            reqwest::Method::POST,
            "/api/v1/projects",
            Some(json!({ "name": "proxy" })),
        )
        .await?;
    let project = project["id"].as_str().unwrap_or_default().to_string();
    api.http
        .put(format!(
            "{}/api/v1/projects/{project}/files/big.bin",
            api.base
        ))
        .bearer_auth(&api.token)
        .body(vec![42u8; BIG])
        .send()
        .await?
        .error_for_status()?;
    api.call(
        reqwest::Method::POST,
        &format!("/api/v1/projects/{project}/session"),
        Some(json!({ "kind": "jupyter" })),
    )
    .await?;
    let session = api.ready(&project).await?;
    let id = session["session_id"].as_str().unwrap_or_default();
    let container = api
        .call(
            reqwest::Method::GET,
            &format!(
                "/api/v1/containers/{}",
                session["container_id"].as_str().unwrap_or_default()
            ),
            None,
        )
        .await?;
    let engine = local
        .state
        .containers
        .driver()
        .inspect(container["engine_id"].as_str().unwrap_or_default())
        .await?
        .and_then(|e| e.address)
        .ok_or_else(|| anyhow::anyhow!("the session's container has no address"))?;
    let secret = std::process::Command::new("docker")
        .args([
            "exec",
            container["engine_id"].as_str().unwrap_or_default(),
            "printenv",
            "JUPYTER_TOKEN",
        ])
        .output()?;
    let secret = String::from_utf8_lossy(&secret.stdout).trim().to_string();
    let direct = format!("http://{engine}:8888");
    let nginx_dir = tempfile::tempdir()?;
    let nginx = start_nginx(&format!("{engine}:8888"), nginx_dir.path());
    let mut routes = vec![
        (
            "weft proxy",
            format!("http://{}", local.sessions),
            vec![
                ("authorization", format!("Bearer {}", local.token)),
                ("host", format!("{id}.localhost:{}", local.sessions.port())),
            ],
        ),
        (
            "direct",
            direct,
            vec![("authorization", format!("token {secret}"))],
        ),
    ];
    if let Some((_, base)) = &nginx {
        routes.push((
            "nginx",
            base.clone(),
            vec![("authorization", format!("token {secret}"))],
        ));
    } else {
        println!("nginx        skipped: not installed (apt-get install nginx)");
    }
    for (label, base, headers) in &routes {
        let headers: Vec<(&str, String)> = headers.iter().map(|(k, v)| (*k, v.clone())).collect();
        let small = request_rate(&format!("{base}/api/status"), &headers).await?;
        let big = download_rate(&format!("{base}/files/big.bin"), &headers).await?;
        println!(
            "{label:<12} GET api/status {small:>8.0} req/s   64 MiB download {big:>7.0} MiB/s"
        );
    }
    if let Some((mut child, _)) = nginx {
        let _ = child.kill();
    }
    api.call(
        reqwest::Method::DELETE,
        &format!("/api/v1/projects/{project}/session"),
        None,
    )
    .await?;
    Ok(())
}
