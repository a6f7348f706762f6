//! First-start benchmark: prints figures, asserts nothing.
//!
//! `cargo bench -p weft --bench startup` runs the real `weft serve` binary of this build on a
//! fresh data folder and prints, for each case, the median time from spawning the process to
//! the first `200` from `/health`:
//! - `cold cache`: a fresh data folder and an empty compiled-component cache (the very first
//!   start on a machine: every built-in component is compiled);
//! - `warm cache`: a fresh data folder with the cache another data folder filled (the cache
//!   lives outside the data folder, so new deployments and test servers skip compilation);
//! - `restart`: the same data folder again.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const RUNS: usize = 3;

fn main() -> anyhow::Result<()> {
    let cache = tempfile::tempdir()?;
    let mut cold = Vec::new();
    let mut warm = Vec::new();
    let mut restart = Vec::new();
    for _ in 0..RUNS {
        std::fs::remove_dir_all(cache.path())?;
        let data = tempfile::tempdir()?;
        cold.push(first_health(data.path(), cache.path())?);
        let fresh = tempfile::tempdir()?;
        warm.push(first_health(fresh.path(), cache.path())?);
        restart.push(first_health(fresh.path(), cache.path())?);
    }
    for (case, samples) in [
        ("cold cache, fresh data folder", cold),
        ("warm cache, fresh data folder", warm),
        ("restart, same data folder", restart),
    ] {
        println!(
            "startup {case:<31} spawn -> /health 200: median {:>7.0} ms (of {RUNS}: {})",
            median(&samples),
            samples
                .iter()
                .map(|ms| format!("{ms:.0}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(())
}

fn median(samples: &[f64]) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

/// Milliseconds from spawning `weft serve` on `data` to its first healthy answer; then stops it.
fn first_health(data: &Path, cache: &Path) -> anyhow::Result<f64> {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_weft"))
        .arg("serve")
        .env("WEFT_DATA_DIR", data)
        .env("WEFT_LISTEN", "127.0.0.1:0")
        .env("WEFT_WORKSPACES__SESSIONS_LISTEN", "127.0.0.1:0")
        .env("WEFT_PLUGINS__CACHE_DIR", cache)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let result = wait_healthy(&mut child, started);
    let _ = child.kill();
    let _ = child.wait();
    result
}

fn wait_healthy(child: &mut Child, started: Instant) -> anyhow::Result<f64> {
    let (tx, rx) = std::sync::mpsc::channel();
    for stream in [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
    ]
    .into_iter()
    .flatten()
    {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if let Some(addr) = line.split("weft listening on http://").nth(1) {
                    let addr: String = addr.chars().take_while(|c| !c.is_whitespace()).collect();
                    let _ = tx.send(addr);
                }
            }
        });
    }
    let addr = rx
        .recv_timeout(Duration::from_secs(300))
        .map_err(|_| anyhow::anyhow!("weft did not say it listens within 300 s"))?;
    loop {
        let healthy = health_ok(&addr);
        if healthy {
            return Ok(started.elapsed().as_secs_f64() * 1e3);
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(300),
            "no healthy answer"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// One `GET /health` over a plain connection (the measured answer is the server's first).
fn health_ok(addr: &str) -> bool {
    let Ok(mut conn) = std::net::TcpStream::connect(addr) else {
        return false;
    };
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let request = format!("GET /health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    let mut answer = String::new();
    conn.write_all(request.as_bytes()).is_ok()
        && conn.read_to_string(&mut answer).is_ok()
        && answer.starts_with("HTTP/1.1 200")
}
