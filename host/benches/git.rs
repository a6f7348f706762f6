//! Code versioning benchmark: prints figures, asserts nothing.
//!
//! `cargo bench -p weft --bench git` starts Weft in-process (SQLite, local files) and prints,
//! through the HTTP API and the real `git` client:
//! - a commit of a 1,000-file project with 10 files changed (median of 5; and the first one
//!   after a start, which hashes every file);
//! - the first history page (50 commits) of a 10,000-commit repository (median of 20);
//! - a checkout of a 1,000-file commit from another whose 1,000 files all differ, with the
//!   files older than the racy window and right after the previous checkout (median of 4 each);
//! - a clone of a 100 MB repository through Weft's smart HTTP and, on the same repository in
//!   the same run, through `git daemon` (git's own server, no HTTP; nginx and fcgiwrap are
//!   not installed here), median of 3 each.
//!
//! Names after `--` run only those cases: `cargo bench -p weft --bench git -- checkout`.

use rand::RngCore as _;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

mod common;

fn main() -> anyhow::Result<()> {
    common::run(bench())
}

/// The API, and the data folder of the Weft serving it (to write project files straight
/// into and reach repositories).
struct Api {
    api: common::Api,
    data: PathBuf,
}

impl Api {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        self.api.call(method, path, body).await
    }

    async fn project(&self, name: &str) -> anyhow::Result<String> {
        let project = self
            .call(
                reqwest::Method::POST,
                "/api/v1/projects",
                Some(json!({ "name": name })),
            )
            .await?;
        Ok(project["id"].as_str().unwrap_or_default().to_string())
    }

    async fn commit(&self, project: &str, message: &str) -> anyhow::Result<Duration> {
        let started = Instant::now();
        let body = json!({ "project_id": project, "message": message });
        self.call(reqwest::Method::POST, "/api/v1/git/commit", Some(body))
            .await?;
        Ok(started.elapsed())
    }

    fn files(&self, project: &str) -> PathBuf {
        self.data.join("projects").join(project)
    }

    fn repository(&self, project: &str) -> PathBuf {
        self.data.join("git").join(format!("{project}.git"))
    }
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// Writes `count` files of about 1 KiB under `folder`, each saying `tag`.
fn write_files(folder: &Path, count: usize, tag: &str) -> anyhow::Result<()> {
    for i in 0..count {
        let dir = folder.join(format!("pkg{}", i % 20));
        std::fs::create_dir_all(&dir)?;
        std::fs::write(
            dir.join(format!("m{i}.py")),
            format!("# {tag}\n{}", "x = 1\n".repeat(170)),
        )?;
    }
    Ok(())
}

async fn git(dir: &Path, args: &[&str]) -> anyhow::Result<()> {
    let output = tokio::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .await?;
    anyhow::ensure!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

async fn commits(api: &Api) -> anyhow::Result<()> {
    let project = api.project("commits").await?;
    write_files(&api.files(&project), 1000, "v0")?;
    // Files older than the racy window (2 s) keep their blob ids between commits.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let first = api.commit(&project, "a thousand files").await?;
    let mut times = Vec::new();
    for round in 1..=5 {
        for i in 0..10 {
            let path = api
                .files(&project)
                .join(format!("pkg{}/m{}.py", i % 20, i * 37));
            std::fs::write(path, format!("# round {round}\n"))?;
        }
        times.push(api.commit(&project, &format!("round {round}")).await?);
    }
    println!(
        "commit, 1,000-file project, 10 changed: {} (median of 5; the first commit, hashing all: {})",
        ms(median(times)),
        ms(first)
    );
    Ok(())
}

async fn history(api: &Api) -> anyhow::Result<()> {
    let project = api.project("history").await?;
    let mut script = String::new();
    for i in 0..10_000 {
        script.push_str(&format!(
            "commit refs/heads/main\ncommitter Bench <bench@weft.local> {} +0000\ndata <<EOM\ncommit {i}\nEOM\nM 100644 inline file.txt\ndata <<EOM\n{i}\nEOM\n\n",
            1_700_000_000 + i
        ));
    }
    let mut fast_import = tokio::process::Command::new("git")
        .args(["fast-import", "--quiet"])
        .env("GIT_DIR", api.repository(&project))
        .stdin(std::process::Stdio::piped())
        .spawn()?;
    use tokio::io::AsyncWriteExt as _;
    fast_import
        .stdin
        .take()
        .expect("stdin")
        .write_all(script.as_bytes())
        .await?;
    anyhow::ensure!(
        fast_import.wait().await?.success(),
        "git fast-import failed"
    );
    let mut times = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        let page = api
            .call(
                reqwest::Method::GET,
                &format!("/api/v1/git/history?project_id={project}&limit=50"),
                None,
            )
            .await?;
        times.push(started.elapsed());
        anyhow::ensure!(page["commits"].as_array().map(Vec::len) == Some(50));
    }
    println!(
        "history, first page of 50 of a 10,000-commit repository: {} (median of 20)",
        ms(median(times))
    );
    Ok(())
}

async fn checkouts(api: &Api) -> anyhow::Result<()> {
    let project = api.project("checkout").await?;
    write_files(&api.files(&project), 1000, "main")?;
    api.commit(&project, "main").await?;
    let branch = json!({ "project_id": project, "name": "other" });
    api.call(reqwest::Method::POST, "/api/v1/git/branch", Some(branch))
        .await?;
    let checkout = |rev: &str| json!({ "project_id": project, "ref": rev });
    api.call(
        reqwest::Method::POST,
        "/api/v1/git/checkout",
        Some(checkout("other")),
    )
    .await?;
    write_files(&api.files(&project), 1000, "other")?;
    api.commit(&project, "other").await?;
    // Right after the previous checkout every file is within the racy window and read again;
    // files older than it (as after any pause) are known by size and time.
    let (mut hot, mut settled) = (Vec::new(), Vec::new());
    for round in 0..8 {
        let rev = if round % 2 == 0 { "main" } else { "other" };
        if round >= 4 {
            tokio::time::sleep(Duration::from_millis(2100)).await;
        }
        let started = Instant::now();
        let done = api
            .call(
                reqwest::Method::POST,
                "/api/v1/git/checkout",
                Some(checkout(rev)),
            )
            .await?;
        let took = started.elapsed();
        anyhow::ensure!(done["written"] == 1000, "{done}");
        if round < 4 {
            hot.push(took)
        } else {
            settled.push(took)
        }
    }
    println!(
        "checkout of a 1,000-file commit (every file differs): {} with the files older than 2 s, {} right after the previous checkout (median of 4 each)",
        ms(median(settled)),
        ms(median(hot))
    );
    Ok(())
}

async fn clones(api: &Api) -> anyhow::Result<()> {
    let project = api.project("big").await?;
    let work = tempfile::tempdir()?;
    let source = work.path().join("source");
    std::fs::create_dir_all(&source)?;
    let mut bytes = vec![0u8; 1 << 20];
    for i in 0..100 {
        rand::rng().fill_bytes(&mut bytes);
        std::fs::write(source.join(format!("blob{i:03}.bin")), &bytes)?;
    }
    git(&source, &["init", "-q", "-b", "main"]).await?;
    git(&source, &["add", "-A"]).await?;
    git(
        &source,
        &[
            "-c",
            "user.name=Bench",
            "-c",
            "user.email=bench@weft.local",
            "commit",
            "-qm",
            "100 MB",
        ],
    )
    .await?;
    let host = api.api.base.trim_start_matches("http://");
    let url = format!("http://bench:{}@{host}/git/{project}.git", api.api.token);
    let started = Instant::now();
    git(&source, &["push", "-q", &url, "main"]).await?;
    println!(
        "push of a 100 MB repository through Weft: {}",
        ms(started.elapsed())
    );
    let mut weft = Vec::new();
    for round in 0..3 {
        let started = Instant::now();
        git(work.path(), &["clone", "-q", &url, &format!("weft{round}")]).await?;
        weft.push(started.elapsed());
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut daemon = tokio::process::Command::new("git")
        .args([
            "daemon",
            "--export-all",
            "--reuseaddr",
            "--listen=127.0.0.1",
            &format!("--port={port}"),
        ])
        .arg(format!("--base-path={}", api.data.join("git").display()))
        .kill_on_drop(true)
        .spawn()?;
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut direct = Vec::new();
    for round in 0..3 {
        let started = Instant::now();
        git(
            work.path(),
            &[
                "clone",
                "-q",
                &format!("git://127.0.0.1:{port}/{project}.git"),
                &format!("daemon{round}"),
            ],
        )
        .await?;
        direct.push(started.elapsed());
    }
    daemon.kill().await?;
    let (weft, direct) = (median(weft), median(direct));
    println!(
        "clone of a 100 MB repository: through Weft {}, through git daemon {} ({:.2}x; median of 3 each)",
        ms(weft),
        ms(direct),
        weft.as_secs_f64() / direct.as_secs_f64()
    );
    Ok(())
}

async fn bench() -> anyhow::Result<()> {
    let local = common::serve(|_| {}).await?;
    let api = Api {
        api: common::Api {
            base: local.base.clone(),
            token: local.token.clone(),
            http: reqwest::Client::new(),
        },
        data: local.state.config.data_dir.clone(),
    };
    let chosen: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let runs =
        |name: &str| chosen.is_empty() || chosen.iter().any(|c| name.starts_with(c.as_str()));
    if runs("commit") {
        commits(&api).await?;
    }
    if runs("history") {
        history(&api).await?;
    }
    if runs("checkout") {
        checkouts(&api).await?;
    }
    if runs("clone") {
        clones(&api).await?;
    }
    Ok(())
}
