//! Session proxy benchmark: what Weft's proxy costs, in front of an upstream fast enough not to
//! be the bottleneck. Prints figures, asserts nothing.
//!
//! `cargo bench -p weft --bench proxy` runs the `weft` binary of this build with its code-server
//! session kind pointed at `weft-test/upstream:1` (`tests/images/build.sh`: Debian's nginx
//! serving static files and taking PUTs, and a WebSocket echo server behind it), opens one
//! session, and measures in one run, through Weft's proxy, through Debian's nginx on the host
//! (`apt-get install nginx`; skipped when missing) proxying the same container, and straight to
//! the container:
//! - small requests: `GET` of a 64-byte file from 32 concurrent keep-alive clients for 3 s;
//! - a 64 MiB download and a 64 MiB upload (`PUT`), MiB/s, the best of 3;
//! - WebSocket round trips of a 64-byte message on 8 connections for 3 s.
//!
//! The goal for Weft on each: at least 90% of direct, and ahead of nginx.

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};

mod common;

const IMAGE: &str = "weft-test/upstream:1";
const BIG: usize = 64 << 20;
const CLIENTS: usize = 32;
const SOCKETS: usize = 8;
const WINDOW: Duration = Duration::from_secs(3);

fn main() -> anyhow::Result<()> {
    let built = std::process::Command::new("docker")
        .args(["image", "inspect", IMAGE])
        .output()?;
    if !built.status.success() {
        println!("proxy skipped: {IMAGE} is not built (tests/images/build.sh)");
        return Ok(());
    }
    common::run(bench())
}

/// Where a route sends requests, and the headers it needs.
struct Route {
    label: &'static str,
    /// `http://host:port`, no trailing slash.
    base: String,
    headers: Vec<(&'static str, String)>,
}

impl Route {
    fn request(
        &self,
        http: &reqwest::Client,
        method: reqwest::Method,
        path: &str,
    ) -> reqwest::RequestBuilder {
        let mut request = http.request(method, format!("{}{path}", self.base));
        for (name, value) in &self.headers {
            request = request.header(*name, value);
        }
        request
    }
}

/// Requests per second of `GET /small.txt` from [`CLIENTS`] clients for [`WINDOW`].
async fn request_rate(route: &Route) -> anyhow::Result<f64> {
    let http = reqwest::Client::new();
    let until = Instant::now() + WINDOW;
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let request = route.request(&http, reqwest::Method::GET, "/small.txt");
        clients.push(tokio::spawn(async move {
            let mut done = 0u64;
            while Instant::now() < until {
                let Some(request) = request.try_clone() else {
                    break;
                };
                let response = request.send().await.and_then(|r| r.error_for_status());
                if let Ok(response) = response
                    && response.bytes().await.is_ok_and(|b| b.len() == 64)
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
    Ok(total as f64 / WINDOW.as_secs_f64())
}

/// MiB/s of the best of three 64 MiB downloads (`GET /big.bin`) or uploads (`PUT /up/...`).
async fn transfer_rate(route: &Route, upload: bool) -> anyhow::Result<f64> {
    let http = reqwest::Client::new();
    let body = bytes::Bytes::from(vec![42u8; BIG]);
    let mut best = 0.0f64;
    for _ in 0..3 {
        let began = Instant::now();
        if upload {
            route
                .request(&http, reqwest::Method::PUT, "/up/big.bin")
                .body(body.clone())
                .send()
                .await?
                .error_for_status()?;
        } else {
            let got = route
                .request(&http, reqwest::Method::GET, "/big.bin")
                .send()
                .await?
                .error_for_status()?
                .bytes()
                .await?;
            anyhow::ensure!(got.len() == BIG, "short download: {}", got.len());
        }
        best = best.max(BIG as f64 / (1 << 20) as f64 / began.elapsed().as_secs_f64());
    }
    Ok(best)
}

/// WebSocket round trips per second of a 64-byte message on [`SOCKETS`] connections to `/ws`.
async fn websocket_rate(route: &Route) -> anyhow::Result<f64> {
    let url = format!("{}/ws", route.base.replacen("http", "ws", 1));
    let until = Instant::now() + WINDOW;
    let mut sockets = Vec::new();
    for _ in 0..SOCKETS {
        let mut request = url.as_str().into_client_request()?;
        for (name, value) in &route.headers {
            request.headers_mut().insert(*name, value.parse()?);
        }
        let (mut socket, _) = tokio_tungstenite::connect_async(request).await?;
        sockets.push(tokio::spawn(async move {
            let message = Message::Binary(vec![7u8; 64].into());
            let mut done = 0u64;
            while Instant::now() < until {
                socket.send(message.clone()).await?;
                match socket.next().await {
                    Some(Ok(Message::Binary(echo))) if echo.len() == 64 => done += 1,
                    other => anyhow::bail!("no echo: {other:?}"),
                }
            }
            let _ = socket.close(None).await;
            anyhow::Ok(done)
        }));
    }
    let mut total = 0;
    for socket in sockets {
        total += socket.await??;
    }
    Ok(total as f64 / WINDOW.as_secs_f64())
}

/// Debian's nginx proxying `upstream` (HTTP and WebSockets) on a free port, if installed.
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
        "daemon off; worker_processes auto; pid {dir}/nginx.pid; error_log {dir}/error.log;\n\
         events {{ worker_connections 4096; }}\n\
         http {{ access_log off; client_body_temp_path {dir}; proxy_temp_path {dir};\n\
           keepalive_requests 1000000;\n\
           map $http_upgrade $connection_upgrade {{ default upgrade; '' ''; }}\n\
           upstream ws {{ server {upstream}; keepalive 64; }}\n\
           server {{ listen 127.0.0.1:{port};\n\
             location / {{ proxy_pass http://ws; proxy_http_version 1.1;\n\
                           proxy_set_header Upgrade $http_upgrade;\n\
                           proxy_set_header Connection $connection_upgrade;\n\
                           client_max_body_size 0; proxy_request_buffering off;\n\
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
    let weft = tokio::task::block_in_place(|| {
        common::Process::start(&format!(
            "[workspaces.code_server]\nimage = \"{IMAGE}\"\nport = 8888\n\
             command = [\"/usr/local/bin/upstream\"]\nready_path = \"small.txt\"\n"
        ))
    })?;
    let api = common::Api {
        base: weft.base.clone(),
        token: weft.admin.clone(),
        http: reqwest::Client::new(),
    };
    let project = api
        .call(
            reqwest::Method::POST,
            "/api/v1/projects",
            Some(json!({ "name": "proxy" })),
        )
        .await?;
    let project = project["id"].as_str().unwrap_or_default().to_string();
    let path = format!("/api/v1/projects/{project}/session");
    let session = api
        .call(
            reqwest::Method::POST,
            &path,
            Some(json!({ "kind": "code-server" })),
        )
        .await?;
    let session = ready(&api, &path, session).await?;
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
    let address = container_address(container["engine_id"].as_str().unwrap_or_default())?;
    let upstream = format!("{address}:8888");
    let port = weft.sessions_port;
    let id = session["session_id"].as_str().unwrap_or_default();
    let mut routes = vec![
        Route {
            label: "direct",
            base: format!("http://{upstream}"),
            headers: Vec::new(),
        },
        Route {
            label: "weft proxy",
            base: format!("http://127.0.0.1:{port}"),
            headers: vec![
                ("authorization", format!("Bearer {}", weft.admin)),
                ("host", format!("{id}.localhost:{port}")),
            ],
        },
    ];
    let nginx_dir = tempfile::tempdir()?;
    let nginx = start_nginx(&upstream, nginx_dir.path());
    match &nginx {
        Some((_, base)) => routes.push(Route {
            label: "nginx",
            base: base.clone(),
            headers: Vec::new(),
        }),
        None => println!("nginx skipped: not installed (apt-get install nginx)"),
    }
    let measured = measure(&routes).await;
    if let Some((mut child, _)) = nginx {
        common::terminate(&mut child);
    }
    api.call(reqwest::Method::DELETE, &path, None).await?;
    measured
}

/// Measures every route and prints the figures against the goal.
async fn measure(routes: &[Route]) -> anyhow::Result<()> {
    println!(
        "proxy benchmark, load average before {}; {CLIENTS} clients for small requests, {SOCKETS} WebSockets",
        common::load_average()
    );
    let mut figures = Vec::new();
    for route in routes {
        let small = request_rate(route).await?;
        let down = transfer_rate(route, false).await?;
        let up = transfer_rate(route, true).await?;
        let ws = websocket_rate(route).await?;
        println!(
            "{:<11} GET 64 B {small:>8.0} req/s   64 MiB down {down:>6.0} MiB/s   64 MiB up {up:>6.0} MiB/s   WebSocket {ws:>7.0} round trips/s",
            route.label
        );
        figures.push((route.label, [small, down, up, ws]));
    }
    let of = |label| figures.iter().find(|(l, _)| *l == label).map(|(_, f)| *f);
    if let (Some(direct), Some(weft_figures)) = (of("direct"), of("weft proxy")) {
        let nginx_figures = of("nginx");
        for (i, what) in ["small requests", "download", "upload", "WebSocket"]
            .iter()
            .enumerate()
        {
            let share = weft_figures[i] / direct[i] * 100.0;
            let ahead = nginx_figures.map(|n| weft_figures[i] / n[i] * 100.0);
            let met = share >= 90.0 && ahead.is_none_or(|a| a >= 100.0);
            println!(
                "goal {what:<15} weft {share:>5.0}% of direct (>= 90%), {} of nginx (> 100%): {}",
                ahead.map_or("n/a".to_string(), |a| format!("{a:.0}%")),
                if met { "met" } else { "UNMET" }
            );
        }
    }
    println!("load average after {}", common::load_average());
    Ok(())
}

/// Polls the session until it is ready.
async fn ready(api: &common::Api, path: &str, mut session: Value) -> anyhow::Result<Value> {
    let deadline = Instant::now() + Duration::from_secs(120);
    while session["status"] != "ready" {
        anyhow::ensure!(
            session["status"] != "failed",
            "the session failed: {session}"
        );
        anyhow::ensure!(Instant::now() < deadline, "not ready: {session}");
        tokio::time::sleep(Duration::from_millis(25)).await;
        session = api.call(reqwest::Method::GET, path, None).await?;
    }
    Ok(session)
}

/// The container's address on its network, from the engine.
fn container_address(engine_id: &str) -> anyhow::Result<String> {
    let out = std::process::Command::new("docker")
        .args([
            "inspect",
            "--format",
            "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}",
            engine_id,
        ])
        .output()?;
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("container {engine_id} has no address"))
}
