//! The real `git` client against a Weft server, the versioning API's calls, and `git fsck
//! --strict` on what Weft wrote.

use super::{TestServer, send};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::path::{Path, PathBuf};
use tempfile::TempDir;

/// A `git` user of their own: a home without configuration, a name, no prompts.
pub struct GitUser {
    pub home: TempDir,
}

impl GitUser {
    pub fn new() -> Self {
        Self {
            home: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// A folder in the user's home (for clones).
    pub fn dir(&self, name: &str) -> PathBuf {
        self.home.path().join(name)
    }

    /// Runs `git args` in `dir`; returns (success, stdout, stderr).
    pub async fn run(&self, dir: &Path, args: &[&str]) -> (bool, String, String) {
        std::fs::create_dir_all(dir).expect("git's folder");
        let output = tokio::process::Command::new("git")
            .args(args)
            .current_dir(dir)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.home.path())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_AUTHOR_NAME", "Ada")
            .env("GIT_AUTHOR_EMAIL", "ada@example.org")
            .env("GIT_COMMITTER_NAME", "Ada")
            .env("GIT_COMMITTER_EMAIL", "ada@example.org")
            .output()
            .await
            .expect("git runs (tests/run.sh installs it)");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    /// Clones `url` into the folder `name` of the user's home, asserting it succeeds; returns
    /// the clone's folder.
    #[track_caller]
    pub fn clone_into<'a>(
        &'a self,
        url: &'a str,
        name: &'a str,
    ) -> impl Future<Output = PathBuf> + 'a {
        let caller = std::panic::Location::caller();
        async move {
            let (ok, _, err) = self
                .run(self.home.path(), &["clone", "-q", url, name])
                .await;
            assert!(ok, "git clone {url} failed (called at {caller}): {err}");
            self.dir(name)
        }
    }

    /// Runs `git args` in `dir`, asserting it succeeds; returns its stdout.
    #[track_caller]
    pub fn ok<'a>(
        &'a self,
        dir: &'a Path,
        args: &'a [&'a str],
    ) -> impl Future<Output = String> + 'a {
        let caller = std::panic::Location::caller();
        async move {
            let (ok, out, err) = self.run(dir, args).await;
            assert!(ok, "git {args:?} failed (called at {caller}): {err}");
            out
        }
    }
}

/// The clone URL of `repo` (`owner/project` or a project id) on `server`, with `token` as
/// the password.
pub fn clone_url(server: &TestServer, token: &str, repo: &str) -> String {
    format!("http://git:{token}@{}/git/{repo}.git", server.addr)
}

/// The repository of project `id` in the server's data folder.
pub fn repository(server: &TestServer, id: &str) -> PathBuf {
    server.config.data_dir.join("git").join(format!("{id}.git"))
}

/// Asserts `git fsck --strict` finds nothing wrong with the repository at `path`.
pub async fn assert_fsck(path: &Path) {
    let output = tokio::process::Command::new("git")
        .args(["fsck", "--strict", "--no-dangling", "--no-progress"])
        .env("GIT_DIR", path)
        .output()
        .await
        .expect("git fsck runs");
    assert!(
        output.status.success(),
        "git fsck --strict on {}: {}{}",
        path.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The versioning API, as `token`.
impl TestServer {
    /// `POST /api/v1/git/<path>` with `body`.
    pub async fn git_post(&self, token: &str, path: &str, body: Value) -> (StatusCode, Value) {
        send(
            self.with_token(token, Method::POST, &format!("/api/v1/git/{path}"))
                .json(&body),
        )
        .await
    }

    /// `GET /api/v1/git/<path_and_query>`.
    pub async fn git_get(&self, token: &str, path_and_query: &str) -> (StatusCode, Value) {
        send(self.with_token(token, Method::GET, &format!("/api/v1/git/{path_and_query}"))).await
    }

    /// Commits the project's files with `message`, asserting 201; returns the commit.
    #[track_caller]
    pub fn commit<'a>(
        &'a self,
        token: &'a str,
        project: &'a str,
        message: &'a str,
    ) -> impl Future<Output = Value> + 'a {
        let caller = std::panic::Location::caller();
        async move {
            let body = serde_json::json!({ "project_id": project, "message": message });
            let (status, commit) = self.git_post(token, "commit", body).await;
            assert_eq!(
                status,
                StatusCode::CREATED,
                "commit (called at {caller}): {commit}"
            );
            commit
        }
    }

    /// The text of `path` in the project's files.
    pub async fn file_text(&self, token: &str, project: &str, path: &str) -> String {
        self.download(token, &format!("/api/v1/projects/{project}/files/{path}"))
            .await
    }
}

/// Project file helpers the versioning tests use.
impl TestServer {
    /// Deletes `path` from the project's files, asserting 204.
    pub async fn remove_file(&self, token: &str, project: &str, path: &str) {
        let (status, body) = send(self.with_token(
            token,
            Method::DELETE,
            &format!("/api/v1/projects/{project}/files/{path}"),
        ))
        .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    }
}
