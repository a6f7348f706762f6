//! Data versions benchmark: prints figures, asserts nothing.
//!
//! `cargo bench -p weft --bench dvc` starts Weft in-process (SQLite, local files) and, with the
//! real `dvc` (`$WEFT_TEST_DVC`, else `dvc` on the PATH; dvc-webdav beside it) and `git`,
//! prints side by side in one run: `dvc push` and `dvc pull` (cache emptied first) of 1,000
//! files / 200 MB to Weft's DVC remote (as an http remote uploading with `POST`, DVC's
//! default, and with `PUT`, and as a webdav remote), to a plain local-folder remote, and to
//! Debian's nginx serving a folder with its dav module as an http remote (`method PUT`;
//! installed with apt when missing, skipped if that fails), and, as the floor any HTTP remote
//! can reach with this client, a push to the same nginx answering every upload `201` and
//! storing nothing; with the dvc client's own CPU time for each push and the server's
//! (`WEFT_DVC_REMOTES=weft,nginx` runs only those remotes, and the folder); then the
//! listing of that version's 1,000 files and of a 100,000-file version
//! (`/api/v1/datasets/{id}/versions/{n}`, median of 20 and of 5), the latter written as rows
//! the way a Weft before migration 0024 stored it and converted by a restart (timed).

use rand::RngCore as _;
use std::path::Path;
use std::time::{Duration, Instant};

mod common;

/// The files of the pushed folder (200 KiB each).
const FILES: usize = 1000;

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

/// CPU time (user and system) of this process's children waited for so far: the clients
/// the bench ran, whatever the machine's load did to their wall-clock time.
fn children_cpu() -> Duration {
    Duration::from_secs_f64(common::cpu_seconds("self").1)
}

/// The server behind a remote, whose CPU time a push costs.
#[derive(Clone, Copy)]
enum Server<'a> {
    /// The folder remote has none.
    None,
    /// Weft, served in this process: its CPU time is the process's own.
    Weft,
    Nginx(&'a Nginx),
}

impl Server<'_> {
    /// The server's CPU time so far.
    fn cpu(self) -> Option<Duration> {
        let secs = match self {
            Server::None => return None,
            Server::Weft => common::cpu_seconds("self").0,
            Server::Nginx(nginx) => nginx.workers_cpu(),
        };
        Some(Duration::from_secs_f64(secs))
    }
}

/// One remote's figures.
#[derive(Clone, Copy)]
struct Figures {
    push: Duration,
    /// The dvc client's CPU time during the push.
    push_cpu: Duration,
    /// The server's CPU time during the push; None for the folder, which has no server.
    server_cpu: Option<Duration>,
    /// None for the floor, which keeps nothing to pull.
    pull: Option<Duration>,
}

/// Which of a remote's figures a line shows.
type Pick = fn(&Figures) -> Option<Duration>;

/// Pushes to `remote`, served by `server`, then (if `pull`) pulls it back into an emptied
/// cache.
async fn push_pull(
    dvc: &str,
    repo: &Path,
    remote: &str,
    server: Server<'_>,
    pull: bool,
) -> anyhow::Result<Figures> {
    let (cpu, server_before) = (children_cpu(), server.cpu());
    let push = run(dvc, repo, &["push", "-q", "-r", remote]).await?;
    let push_cpu = children_cpu().saturating_sub(cpu);
    let server_cpu = server
        .cpu()
        .zip(server_before)
        .map(|(after, before)| after.saturating_sub(before));
    if !pull {
        return Ok(Figures {
            push,
            push_cpu,
            server_cpu,
            pull: None,
        });
    }
    std::fs::remove_dir_all(repo.join(".dvc/cache"))?;
    std::fs::remove_dir_all(repo.join("data"))?;
    let pull = run(dvc, repo, &["pull", "-q", "-r", remote]).await?;
    Ok(Figures {
        push,
        push_cpu,
        server_cpu,
        pull: Some(pull),
    })
}

/// Debian's nginx serving a folder with its dav module (PUT, DELETE, MKCOL, COPY, MOVE), and
/// below `/floor/` answering every `PUT` 201 (reading the body, keeping nothing) and any other
/// request 404, on a free loopback port; stopped when dropped.
struct Nginx {
    prefix: std::path::PathBuf,
    url: String,
    floor: String,
}

impl Nginx {
    /// Starts nginx below `prefix` (its folder, configuration and logs), installing Debian's
    /// `nginx-light` first when there is no nginx; `None` (with why) if it cannot be had.
    async fn start(prefix: &Path) -> Option<Self> {
        let installed = tokio::process::Command::new("nginx")
            .arg("-v")
            .output()
            .await;
        if installed.is_err() {
            println!("nginx is missing: apt-get install -y nginx-light");
            let apt = tokio::process::Command::new("apt-get")
                .args(["install", "-y", "-q", "nginx-light"])
                .env("DEBIAN_FRONTEND", "noninteractive")
                .output()
                .await;
            if !apt.is_ok_and(|o| o.status.success()) {
                println!("nginx could not be installed: its figures are skipped");
                return None;
            }
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .ok()?
            .port();
        let root = prefix.join("remote");
        std::fs::create_dir_all(&root).ok()?;
        std::fs::create_dir_all(prefix.join("tmp")).ok()?;
        let conf = format!(
            "daemon on; user root; worker_processes 2; pid {p}/nginx.pid; error_log {p}/error.log;\n\
             events {{ worker_connections 256; }}\n\
             http {{ access_log off; client_body_temp_path {p}/tmp; client_max_body_size 0;\n\
               server {{ listen 127.0.0.1:{port}; root {p};\n\
                 location /remote/ {{ dav_methods PUT DELETE MKCOL COPY MOVE; \
                   create_full_put_path on; dav_access user:rw; }}\n\
                 location /floor/ {{ if ($request_method = PUT) {{ return 201; }} return 404; }} }} }}\n",
            p = prefix.display()
        );
        std::fs::write(prefix.join("nginx.conf"), conf).ok()?;
        let nginx = Self {
            prefix: prefix.to_path_buf(),
            url: format!("http://127.0.0.1:{port}/remote"),
            floor: format!("http://127.0.0.1:{port}/floor"),
        };
        let started = nginx.control(&[]).await;
        if !started {
            println!("nginx did not start: its figures are skipped");
            return None;
        }
        Some(nginx)
    }

    /// The CPU time, in seconds, of nginx's workers (its master's children) so far.
    fn workers_cpu(&self) -> f64 {
        let master = std::fs::read_to_string(self.prefix.join("nginx.pid")).unwrap_or_default();
        let master = master.trim();
        std::fs::read_to_string(format!("/proc/{master}/task/{master}/children"))
            .unwrap_or_default()
            .split_whitespace()
            .map(|worker| common::cpu_seconds(worker).0)
            .sum()
    }

    /// Runs `nginx -p PREFIX -c nginx.conf args`; whether it succeeded.
    async fn control(&self, args: &[&str]) -> bool {
        let conf = self.prefix.join("nginx.conf");
        tokio::process::Command::new("nginx")
            .arg("-p")
            .arg(&self.prefix)
            .arg("-c")
            .arg(&conf)
            .args(args)
            .status()
            .await
            .is_ok_and(|s| s.success())
    }
}

async fn bench() -> anyhow::Result<()> {
    let dvc = std::env::var("WEFT_TEST_DVC").unwrap_or_else(|_| "dvc".into());
    let local = common::serve(|_| {}).await?;
    let api = common::Api {
        base: local.base.clone(),
        token: local.token.clone(),
        http: reqwest::Client::new(),
    };
    let new_project = |name: &'static str| {
        let api = &api;
        async move {
            let body = serde_json::json!({ "name": name });
            let project = api
                .call(reqwest::Method::POST, "/api/v1/projects", Some(body))
                .await?;
            anyhow::Ok(project["id"].as_str().unwrap_or_default().to_string())
        }
    };
    let project = new_project("bench").await?;
    // The other remotes of Weft push to a project each: the first one's has every object.
    let webdav_project = new_project("bench-webdav").await?;
    let put_project = new_project("bench-put").await?;
    let work = tempfile::tempdir()?;
    let host = local.base.trim_start_matches("http://");
    let url = format!("http://bench:{}@{host}/git/{project}.git", local.token);
    run("git", work.path(), &["clone", "-q", &url, "repo"]).await?;
    let repo = work.path().join("repo");
    let data = repo.join("data");
    let mut bytes = vec![0u8; 200 << 10];
    for i in 0..FILES {
        let dir = data.join(format!("shard{}", i % 10));
        std::fs::create_dir_all(&dir)?;
        rand::rng().fill_bytes(&mut bytes);
        std::fs::write(dir.join(format!("sample{i:04}.bin")), &bytes)?;
    }
    run(&dvc, &repo, &["init", "-q"]).await?;
    run(&dvc, &repo, &["add", "-q", "data"]).await?;
    let remote = format!("{}/dvc/{project}", local.base);
    let put_remote = format!("{}/dvc/{put_project}", local.base);
    let webdav = format!("{}/dvc/{webdav_project}", local.base).replacen("http", "webdav", 1);
    let folder = work.path().join("folder-remote");
    let nginx = Nginx::start(&work.path().join("nginx")).await;
    let mut config = vec![
        vec!["remote", "add", "-d", "weft", remote.as_str()],
        vec!["remote", "add", "weft-webdav", webdav.as_str()],
        vec![
            "remote",
            "modify",
            "--local",
            "weft-webdav",
            "token",
            local.token.as_str(),
        ],
        vec![
            "remote",
            "add",
            "folder",
            folder.to_str().unwrap_or_default(),
        ],
    ];
    if let Some(nginx) = &nginx {
        config.push(vec!["remote", "add", "nginx", nginx.url.as_str()]);
        config.push(vec!["remote", "modify", "nginx", "method", "PUT"]);
        config.push(vec!["remote", "add", "floor", nginx.floor.as_str()]);
        config.push(vec!["remote", "modify", "floor", "method", "PUT"]);
    }
    // The same http remote of Weft uploading with `PUT`, as nginx's does.
    config.push(vec!["remote", "add", "weft-put", put_remote.as_str()]);
    config.push(vec!["remote", "modify", "weft-put", "method", "PUT"]);
    let bearer = format!("Bearer {}", local.token);
    for remote in ["weft", "weft-put"] {
        config.push(vec!["remote", "modify", remote, "auth", "custom"]);
        config.push(vec![
            "remote",
            "modify",
            remote,
            "custom_auth_header",
            "Authorization",
        ]);
        config.push(vec![
            "remote", "modify", "--local", remote, "password", &bearer,
        ]);
    }
    for args in config {
        run(&dvc, &repo, &args).await?;
    }

    // `WEFT_DVC_REMOTES=weft,nginx` measures those alone (and the folder, the yardstick).
    let chosen = std::env::var("WEFT_DVC_REMOTES").ok();
    let chosen = |remote: &str| {
        remote == "folder"
            || chosen
                .as_deref()
                .is_none_or(|list| list.split(',').any(|r| r.trim() == remote))
    };
    let mut figures = Vec::new();
    for remote in [
        "weft",
        "weft-put",
        "weft-webdav",
        "folder",
        "nginx",
        "floor",
    ] {
        let server = match (remote, &nginx) {
            ("folder", _) => Server::None,
            ("nginx" | "floor", Some(nginx)) => Server::Nginx(nginx),
            ("nginx" | "floor", None) => continue,
            _ => Server::Weft,
        };
        if !chosen(remote) {
            continue;
        }
        let before = dvc_server_time(&local.state);
        let pull = remote != "floor";
        let measured = push_pull(&dvc, &repo, remote, server, pull).await?;
        figures.push((remote, measured));
        if remote.starts_with("weft") {
            let after = dvc_server_time(&local.state);
            let spent: Vec<String> = after
                .iter()
                .map(|(method, (count, secs))| {
                    let (count0, secs0) = before.get(method).copied().unwrap_or_default();
                    let (count, secs) = (count - count0, secs - secs0);
                    format!(
                        "{method} {count:.0} x {:.2} ms",
                        secs * 1000.0 / count.max(1.0)
                    )
                })
                .collect();
            println!(
                "  {remote}: Weft's answers during its push and pull (requests x mean server time): {}",
                spent.join(", ")
            );
        }
    }
    if let Some(nginx) = &nginx {
        nginx.control(&["-s", "stop"]).await;
    }
    let folder = figures
        .iter()
        .find(|(remote, _)| *remote == "folder")
        .map(|(_, figures)| *figures)
        .ok_or_else(|| anyhow::anyhow!("the folder remote has no figures"))?;
    let rows: [(&str, Pick); 3] = [
        ("push", |f| Some(f.push)),
        ("pull (cache emptied)", |f| f.pull),
        ("push, the client's own CPU time,", |f| Some(f.push_cpu)),
    ];
    for (what, of) in rows {
        let line: Vec<String> = figures
            .iter()
            .filter_map(|(remote, f)| {
                let (time, base) = (of(f)?, of(&folder)?);
                Some(format!(
                    "{remote} {} ({:.2}x)",
                    secs(time),
                    time.as_secs_f64() / base.as_secs_f64()
                ))
            })
            .collect();
        println!(
            "dvc {what} of 1,000 files / 200 MB: {} (x: against the local folder remote)",
            line.join(", ")
        );
    }
    let server: Vec<String> = figures
        .iter()
        .filter_map(|(remote, f)| {
            let ms = f.server_cpu?.as_secs_f64() * 1000.0 / FILES as f64;
            Some(format!("{remote} {ms:.2} ms"))
        })
        .collect();
    println!(
        "dvc push, the server's own CPU time per file (Weft's whole process; nginx's workers): {}",
        server.join(", ")
    );
    println!(
        "  floor: nginx answering every upload 201 and keeping nothing, the fastest any HTTP \
         remote can be with this client"
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
    let median = listing(&api, &id, 1, 1000, 20).await?;
    println!("listing a 1,000-file dataset version: {median:.1} ms (median of 20)");
    let owner = project_owner(&api, &project).await?;
    let big = big_version(&local.state, &project, &owner, 100_000).await?;
    // The rows are as a Weft before migration 0024 left them: a restart converts them.
    let started = Instant::now();
    let _restarted = weft::state::AppState::open((*local.state.config).clone()).await?;
    println!(
        "restart converting a 100,000-file version's rows into one list: {}",
        secs(started.elapsed())
    );
    let median = listing(&api, &big, 1, 100_000, 5).await?;
    println!("listing a 100,000-file dataset version: {median:.1} ms (median of 5)");
    Ok(())
}

/// The requests the DVC remote answered so far, by method: (count, seconds spent on them
/// from the request's arrival to the answer's headers, its upload read whole by then).
fn dvc_server_time(
    state: &weft::state::AppState,
) -> std::collections::BTreeMap<String, (f64, f64)> {
    let mut out = std::collections::BTreeMap::<String, (f64, f64)>::new();
    for line in state.metrics.render().lines() {
        let Some(rest) = line.strip_prefix("weft_http_request_duration_seconds_") else {
            continue;
        };
        if !rest.contains("route=\"/dvc/{*path}\"") {
            continue;
        }
        let method = rest
            .split("method=\"")
            .nth(1)
            .and_then(|m| m.split('"').next())
            .unwrap_or_default()
            .to_string();
        let value: f64 = line
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or_default();
        let entry = out.entry(method).or_default();
        if rest.starts_with("count") {
            entry.0 += value;
        } else if rest.starts_with("sum") {
            entry.1 += value;
        }
    }
    out
}

/// The median time, in ms, of `rounds` reads of version `number` of dataset `id` (which has
/// `files` files) through the API, to the answer's last byte.
async fn listing(
    api: &common::Api,
    id: &str,
    number: i64,
    files: usize,
    rounds: usize,
) -> anyhow::Result<f64> {
    let mut times = Vec::new();
    for _ in 0..rounds {
        let path = format!("/api/v1/datasets/{id}/versions/{number}");
        let started = Instant::now();
        let answer = api
            .http
            .get(format!("{}{path}", api.base))
            .bearer_auth(&api.token)
            .send()
            .await?
            .error_for_status()?
            .bytes()
            .await?;
        // Timed to the answer's last byte: parsing it is the client's work.
        times.push(started.elapsed());
        let version: serde_json::Value = serde_json::from_slice(&answer)?;
        anyhow::ensure!(
            version["files"].as_array().map(Vec::len) == Some(files),
            "{path}: not {files} files"
        );
    }
    times.sort();
    Ok(times[rounds / 2].as_secs_f64() * 1000.0)
}

async fn project_owner(api: &common::Api, project: &str) -> anyhow::Result<String> {
    let answer = api
        .call(
            reqwest::Method::GET,
            &format!("/api/v1/projects/{project}"),
            None,
        )
        .await?;
    Ok(answer["owner_id"].as_str().unwrap_or_default().to_string())
}

/// A dataset of `project` whose version 1 lists `count` files, written straight into the
/// database as a Weft before migration 0024 left a pushed folder of that many files, a row
/// per file (pushing 100,000 objects first would make the benchmark minutes longer and
/// measure the listing no better); a restart converts them into the one list Weft reads.
async fn big_version(
    state: &weft::state::AppState,
    project: &str,
    owner: &str,
    count: usize,
) -> anyhow::Result<String> {
    let (dataset, version) = (
        uuid::Uuid::now_v7().to_string(),
        uuid::Uuid::now_v7().to_string(),
    );
    let mut tx = state.store.pool().begin().await?;
    sqlx::query(
        "INSERT INTO datasets (id, project_id, owner_id, name, created_at) VALUES ($1, $2, $3, 'big', 0)",
    )
    .bind(&dataset)
    .bind(project)
    .bind(owner)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO dataset_versions (id, dataset_id, number, oid, git_commit, source, created_by, \
         created_at, files, bytes, complete) VALUES ($1, $2, 1, $3, NULL, 'files', $4, 0, $5, $6, 1)",
    )
    .bind(&version)
    .bind(&dataset)
    .bind(format!("{:032x}.dir", 0xb16u128))
    .bind(owner)
    .bind(count as i64)
    .bind(count as i64 * 4096)
    .execute(&mut *tx)
    .await?;
    for batch in (0..count).collect::<Vec<_>>().chunks(500) {
        let values: Vec<String> = (0..batch.len())
            .map(|i| format!("($1, ${}, ${}, 4096)", 2 * i + 2, 2 * i + 3))
            .collect();
        let sql = format!(
            "INSERT INTO dataset_files (version_id, path, md5, size) VALUES {}",
            values.join(", ")
        );
        let mut query = sqlx::query(&sql).bind(&version);
        for n in batch {
            query = query
                .bind(format!("shard{:02}/sample{n:06}.bin", n % 100))
                .bind(format!("{:032x}", *n as u128 * 0x9e37_79b9_7f4a_7c15));
        }
        query.execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(dataset)
}
