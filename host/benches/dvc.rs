//! Data versions benchmark: prints figures, asserts nothing.
//!
//! `cargo bench -p weft --bench dvc` starts Weft in-process (SQLite, local files) and, with the
//! real `dvc` (`$WEFT_TEST_DVC`, else `dvc` on the PATH) and `git`, prints side by side in one
//! run: `dvc push` and `dvc pull` (cache emptied first) of 1,000 files / 200 MB to Weft's DVC
//! remote and to a plain local-folder remote; then listing that version's 1,000 files through
//! `/api/v1/datasets/{id}/versions/1` (median of 20). nginx is not installed here, so no
//! nginx+WebDAV remote is measured.

use rand::RngCore as _;
use std::path::Path;
use std::time::{Duration, Instant};

mod common;

fn main() -> anyhow::Result<()> {
    common::run(bench())
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// Runs `program args` in `dir`, failing with its output.
async fn run(program: &str, dir: &Path, args: &[&str]) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let output = tokio::process::Command::new(program)
        .args(args)
        .current_dir(dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("DVC_NO_ANALYTICS", "1")
        .output()
        .await?;
    anyhow::ensure!(
        output.status.success(),
        "{program} {args:?}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(started.elapsed())
}

/// Pushes to `remote`, then pulls it back into an emptied cache: (push, pull).
async fn push_pull(dvc: &str, repo: &Path, remote: &str) -> anyhow::Result<(Duration, Duration)> {
    let push = run(dvc, repo, &["push", "-q", "-r", remote]).await?;
    std::fs::remove_dir_all(repo.join(".dvc/cache"))?;
    std::fs::remove_dir_all(repo.join("data"))?;
    let pull = run(dvc, repo, &["pull", "-q", "-r", remote]).await?;
    Ok((push, pull))
}

async fn bench() -> anyhow::Result<()> {
    let dvc = std::env::var("WEFT_TEST_DVC").unwrap_or_else(|_| "dvc".into());
    let local = common::serve(|_| {}).await?;
    let api = common::Api {
        base: local.base.clone(),
        token: local.token.clone(),
        http: reqwest::Client::new(),
    };
    let body = serde_json::json!({ "name": "bench" });
    let project = api
        .call(reqwest::Method::POST, "/api/v1/projects", Some(body))
        .await?;
    let project = project["id"].as_str().unwrap_or_default().to_string();
    let work = tempfile::tempdir()?;
    let host = local.base.trim_start_matches("http://");
    let url = format!("http://bench:{}@{host}/git/{project}.git", local.token);
    run("git", work.path(), &["clone", "-q", &url, "repo"]).await?;
    let repo = work.path().join("repo");
    let data = repo.join("data");
    let mut bytes = vec![0u8; 200 << 10];
    for i in 0..1000 {
        let dir = data.join(format!("shard{}", i % 10));
        std::fs::create_dir_all(&dir)?;
        rand::rng().fill_bytes(&mut bytes);
        std::fs::write(dir.join(format!("sample{i:04}.bin")), &bytes)?;
    }
    run(&dvc, &repo, &["init", "-q"]).await?;
    run(&dvc, &repo, &["add", "-q", "data"]).await?;
    let remote = format!("{}/dvc/{project}", local.base);
    let folder = work.path().join("folder-remote");
    for args in [
        vec!["remote", "add", "-d", "weft", remote.as_str()],
        vec!["remote", "modify", "weft", "auth", "custom"],
        vec![
            "remote",
            "modify",
            "weft",
            "custom_auth_header",
            "Authorization",
        ],
        vec![
            "remote",
            "add",
            "folder",
            folder.to_str().unwrap_or_default(),
        ],
    ] {
        run(&dvc, &repo, &args).await?;
    }
    let bearer = format!("Bearer {}", local.token);
    run(
        &dvc,
        &repo,
        &["remote", "modify", "--local", "weft", "password", &bearer],
    )
    .await?;

    let (weft_push, weft_pull) = push_pull(&dvc, &repo, "weft").await?;
    let (folder_push, folder_pull) = push_pull(&dvc, &repo, "folder").await?;
    println!(
        "dvc push of 1,000 files / 200 MB: Weft {}, local folder remote {} ({:.2}x)",
        secs(weft_push),
        secs(folder_push),
        weft_push.as_secs_f64() / folder_push.as_secs_f64()
    );
    println!(
        "dvc pull of 1,000 files / 200 MB (cache emptied): Weft {}, local folder remote {} ({:.2}x)",
        secs(weft_pull),
        secs(folder_pull),
        weft_pull.as_secs_f64() / folder_pull.as_secs_f64()
    );

    run("git", &repo, &["add", "-A"]).await?;
    let who = ["-c", "user.name=Bench", "-c", "user.email=bench@weft.local"];
    run(
        "git",
        &repo,
        &[&who[..], &["commit", "-qm", "data"]].concat(),
    )
    .await?;
    run("git", &repo, &["push", "-q", "origin", "HEAD"]).await?;
    let list = api
        .call(
            reqwest::Method::GET,
            &format!("/api/v1/datasets?project_id={project}"),
            None,
        )
        .await?;
    let id = list[0]["id"].as_str().unwrap_or_default().to_string();
    let mut times = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        let path = format!("/api/v1/datasets/{id}/versions/1");
        let version = api.call(reqwest::Method::GET, &path, None).await?;
        anyhow::ensure!(
            version["files"].as_array().map(Vec::len) == Some(1000),
            "{version}"
        );
        times.push(started.elapsed());
    }
    times.sort();
    println!(
        "listing a 1,000-file dataset version: {:.1} ms (median of 20)",
        times[10].as_secs_f64() * 1000.0
    );
    Ok(())
}
