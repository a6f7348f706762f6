//! The real `dvc` client (the version tests/run.sh pins) with real `git`, against Weft's DVC
//! remote: a user with a home of their own, clones of a project, a folder of data.

use super::TestServer;
use super::git::{GitUser, clone_url};
use std::path::{Path, PathBuf};

/// A data scientist: `git` and `dvc` with a home of their own.
pub struct DvcUser {
    pub git: GitUser,
}

impl DvcUser {
    pub fn new() -> Self {
        Self {
            git: GitUser::new(),
        }
    }

    /// Runs `dvc args` in `dir`; returns (success, stdout and stderr together).
    pub async fn run(&self, dir: &Path, args: &[&str]) -> (bool, String) {
        let dvc = std::env::var("WEFT_TEST_DVC").unwrap_or_else(|_| {
            panic!("WEFT_TEST_DVC is not set: run the tests with tests/run.sh, which installs dvc")
        });
        let output = tokio::process::Command::new(dvc)
            .args(args)
            .current_dir(dir)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.git.home.path())
            .env("DVC_NO_ANALYTICS", "1")
            .env("DVC_SITE_CACHE_DIR", self.git.home.path().join(".dvc-site"))
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_TERMINAL_PROMPT", "0")
            .output()
            .await
            .expect("dvc runs (tests/run.sh installs it)");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        (output.status.success(), text)
    }

    /// Runs `dvc args` in `dir`, asserting it succeeds; returns what it printed.
    #[track_caller]
    pub fn ok<'a>(
        &'a self,
        dir: &'a Path,
        args: &'a [&'a str],
    ) -> impl Future<Output = String> + 'a {
        let caller = std::panic::Location::caller();
        async move {
            let (ok, out) = self.run(dir, args).await;
            assert!(ok, "dvc {args:?} failed (called at {caller}): {out}");
            out
        }
    }

    /// Clones `repo` from `server` as `token` into `name`, with Weft's remote as the default
    /// one: Basic auth with the token as the password (kept in `.dvc/config.local`).
    pub async fn clone(&self, server: &TestServer, token: &str, repo: &str, name: &str) -> PathBuf {
        let dir = self
            .git
            .clone_into(&clone_url(server, token, repo), name)
            .await;
        for args in [
            &["config", "user.name", "Ada"][..],
            &["config", "user.email", "ada@example.org"],
        ] {
            self.git.ok(&dir, args).await;
        }
        dir
    }

    /// Points the clone's remote `weft` at `repo`'s remote on `server`: DVC's Basic auth with
    /// `token` as the password (kept in `.dvc/config.local`, out of git).
    pub async fn remote(&self, dir: &Path, server: &TestServer, repo: &str, token: &str) {
        let url = server.url(&format!("/dvc/{repo}"));
        self.add_remote(dir, &url, token).await;
        self.ok(dir, &["remote", "modify", "weft", "auth", "basic"])
            .await;
    }

    /// Points the clone's remote `weft` at `repo`'s remote on `server` through dvc-webdav
    /// (`webdav://`, which can list and delete: `dvc gc -c`), with `token` as the password.
    pub async fn webdav(&self, dir: &Path, server: &TestServer, repo: &str, token: &str) {
        let url = server
            .url(&format!("/dvc/{repo}"))
            .replacen("http", "webdav", 1);
        self.add_remote(dir, &url, token).await;
    }

    async fn add_remote(&self, dir: &Path, url: &str, token: &str) {
        self.ok(dir, &["remote", "add", "-f", "-d", "weft", url])
            .await;
        self.ok(dir, &["remote", "modify", "weft", "user", "ada"])
            .await;
        self.ok(
            dir,
            &["remote", "modify", "--local", "weft", "password", token],
        )
        .await;
    }

    /// Makes the clone's remote `weft` send `token` as `Authorization: Bearer` (DVC's custom
    /// auth) instead.
    pub async fn bearer(&self, dir: &Path, token: &str) {
        let bearer = format!("Bearer {token}");
        for args in [
            &["remote", "modify", "--local", "weft", "auth", "custom"][..],
            &[
                "remote",
                "modify",
                "--local",
                "weft",
                "custom_auth_header",
                "Authorization",
            ],
            &["remote", "modify", "--local", "weft", "password", &bearer],
        ] {
            self.ok(dir, args).await;
        }
    }
}

/// Writes `count` files of varied sizes (some binary) into `dir/data`; `seed` varies them.
pub fn write_data(dir: &Path, count: usize, seed: u8) {
    let data = dir.join("data");
    std::fs::create_dir_all(data.join("nested")).expect("data folder");
    for i in 0..count {
        let size = 1 + (i * 7919) % 70_000;
        let bytes: Vec<u8> = (0..size)
            .map(|n| (n as u8).wrapping_mul(31).wrapping_add(i as u8 ^ seed))
            .collect();
        let name = if i % 3 == 0 {
            format!("nested/part-{i}.bin")
        } else {
            format!("part-{i}.bin")
        };
        std::fs::write(data.join(name), bytes).expect("write data");
    }
}
