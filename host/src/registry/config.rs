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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiled_components_are_cached_outside_the_data_folder() {
        figment::Jail::expect_with(|jail| {
            let data = Path::new("/srv/weft-data");
            jail.set_env("HOME", "/home/ada");
            let plugins = PluginsConfig::default();
            assert_eq!(
                plugins.cache_dir(data),
                PathBuf::from("/home/ada/.cache/weft/components")
            );
            jail.set_env("XDG_CACHE_HOME", "/var/cache/ada");
            assert_eq!(
                plugins.cache_dir(data),
                PathBuf::from("/var/cache/ada/weft/components")
            );
            // A relative XDG_CACHE_HOME is invalid by the spec and ignored.
            jail.set_env("XDG_CACHE_HOME", "cache");
            assert_eq!(
                plugins.cache_dir(data),
                PathBuf::from("/home/ada/.cache/weft/components")
            );
            let set = PluginsConfig {
                cache_dir: Some("/opt/cache".into()),
                ..PluginsConfig::default()
            };
            assert_eq!(set.cache_dir(data), PathBuf::from("/opt/cache"));
            Ok(())
        });
    }
}
