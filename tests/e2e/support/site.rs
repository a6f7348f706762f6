//! One data folder and database on a backend, served by one real `weft serve` process after
//! another: for what must survive a restart, a SIGKILL or a crash.

use super::{Backend, WeftProcess, bootstrap};

/// A data folder, its database and the bootstrap admin's token.
pub struct Site {
    _dir: tempfile::TempDir,
    /// `--data-dir DIR --database-url URL`, for every `weft` command on this site.
    common: Vec<String>,
    pub database_url: String,
    pub token: String,
    pub client: reqwest::Client,
}

impl Site {
    /// A fresh data folder and database on `backend`, with an admin bootstrapped.
    pub async fn new(backend: Backend) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let database_url = backend.fresh_database(dir.path()).await;
        let common = vec![
            "--data-dir".to_string(),
            dir.path().to_str().expect("UTF-8 path").to_string(),
            "--database-url".to_string(),
            database_url.clone(),
        ];
        let token = bootstrap(&[], &common.iter().map(String::as_str).collect::<Vec<_>>());
        Self {
            _dir: dir,
            common,
            database_url,
            token,
            client: reqwest::Client::new(),
        }
    }

    /// The site's data folder.
    pub fn data_dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    /// The arguments that point a `weft` command at this site.
    pub fn common(&self) -> Vec<&str> {
        self.common.iter().map(String::as_str).collect()
    }

    /// `weft serve` on this site with `env` as extra configuration.
    pub fn serve(&self, env: &[(&str, &str)]) -> WeftProcess {
        WeftProcess::serve_with(&self.common(), env)
    }
}
