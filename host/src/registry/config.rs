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
    /// Folder for compiled components [default: <data_dir>/cache/components]; several Weft
    /// processes may share one.
    pub cache_dir: Option<PathBuf>,
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
    /// Holds the stored components, the compiled ones (unless `plugins.cache_dir`) and the
    /// artifacts plugins write.
    pub data_dir: &'a Path,
    pub api: &'a ApiConfig,
    /// `[secrets]`.
    pub secrets: &'a BTreeMap<String, String>,
    /// `[workflows] max_running_nodes_per_user`.
    pub max_running_nodes_per_user: usize,
}
