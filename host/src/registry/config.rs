//! `[plugins]`: the plugin runtime and registry.

use crate::api::config::ApiConfig;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The plugin runtime and registry.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PluginsConfig {
    /// Largest accepted component upload, in bytes.
    pub max_upload_bytes: usize,
    /// Plugin instances that may exist at once.
    pub max_instances: u32,
    /// Ceiling for any plugin's memory limit, in bytes.
    pub max_memory_bytes: u64,
    /// Folder for compiled components [default: `$XDG_CACHE_HOME/weft/components`, else
    /// `~/.cache/weft/components`, else `<data_dir>/cache/components`]. Outside the data folder
    /// so that a fresh data folder does not compile the built-ins again; entries are keyed by
    /// content hash and the engine's compatibility (wasmtime version and settings), so several
    /// Weft processes and versions may share one.
    pub cache_dir: Option<PathBuf>,
}

impl PluginsConfig {
    /// Where compiled components are cached for a server whose data folder is `data_dir`.
    pub fn cache_dir(&self, data_dir: &Path) -> PathBuf {
        if let Some(dir) = &self.cache_dir {
            return dir.clone();
        }
        let home_cache = || std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache"));
        std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .or_else(home_cache)
            .map(|c| c.join("weft").join("components"))
            .unwrap_or_else(|| data_dir.join("cache").join("components"))
    }
}

impl Default for PluginsConfig {
    fn default() -> Self {
        Self {
            max_upload_bytes: 64 << 20,
            max_instances: 256,
            max_memory_bytes: 1 << 30,
            cache_dir: None,
        }
    }
}

/// What the registry starts with, taken from the whole configuration by the application.
pub struct Setup<'a> {
    pub plugins: &'a PluginsConfig,
    /// Holds the stored components and the
    /// artifacts plugins write.
    pub data_dir: &'a Path,
    pub api: &'a ApiConfig,
    /// `[secrets]`.
    pub secrets: &'a BTreeMap<String, String>,
    /// `[workflows] max_running_nodes_per_user`.
    pub max_running_nodes_per_user: usize,
}
