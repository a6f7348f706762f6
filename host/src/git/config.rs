//! `[git]`: where projects' repositories live and how the real `git` serves them.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Code versions: one git repository per project.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GitConfig {
    /// Where the repositories are kept [default: <data_dir>/git]. They are the history of the
    /// projects' files: back them up with the data folder, also when the files are in S3.
    pub dir: Option<PathBuf>,
    /// The `git` program smart HTTP runs (`git http-backend`); clone, fetch and push need
    /// it, the `/api/v1/git` API does not.
    pub binary: PathBuf,
    /// Folder and file names never versioned (besides `.git`, which never is).
    pub ignore: Vec<String>,
    /// Largest push body, in bytes; a longer one is cut off and changes nothing.
    pub max_push_bytes: u64,
}

impl Default for GitConfig {
    fn default() -> Self {
        Self {
            dir: None,
            binary: PathBuf::from("git"),
            ignore: [
                "__pycache__",
                ".venv",
                "venv",
                "node_modules",
                ".ipynb_checkpoints",
            ]
            .map(String::from)
            .to_vec(),
            max_push_bytes: 2 << 30,
        }
    }
}

impl GitConfig {
    /// The folder of the repositories, for the data folder `data_dir`.
    pub fn dir(&self, data_dir: &Path) -> PathBuf {
        self.dir.clone().unwrap_or_else(|| data_dir.join("git"))
    }
}
