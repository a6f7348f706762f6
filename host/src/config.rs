//! Configuration: defaults, then a TOML file, then `WEFT_*` environment variables, then flags.
//!
//! Each domain owns its section's struct (`[workflows]` is `crate::workflow::config`, ...);
//! this module composes them into [`Config`] and loads it.
//!
//! Nested sections map to environment variables with a double underscore:
//! `[api] max_body_bytes` is `WEFT_API__MAX_BODY_BYTES`.

// The sections the tests and benchmarks name through the configuration.
pub use crate::workspace::config::{S3Config, StorageKind, WorkspacesConfig};

use crate::api::config::ApiConfig;
use crate::container::config::ContainersConfig;
use crate::dataset::config::DatasetsConfig;
use crate::git::config::GitConfig;
use crate::notebook::config::NotebooksConfig;
use crate::registry::config::PluginsConfig;
use crate::scheduler::config::SchedulerConfig;
use crate::workflow::config::WorkflowsConfig;
use anyhow::Context as _;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Everything `weft serve` needs to run.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address the API listens on.
    pub listen: SocketAddr,
    /// Folder holding the SQLite file and local storage.
    pub data_dir: PathBuf,
    /// Database URL; empty means the SQLite file `<data_dir>/weft.db`.
    pub database_url: Option<String>,
    /// Log output: `text` or `json`.
    pub log_format: LogFormat,
    /// `[api]`: request limits, public metrics, sign-in limits.
    pub api: ApiConfig,
    /// `[plugins]`: the plugin runtime and registry.
    pub plugins: PluginsConfig,
    /// `[workflows]`: the workflow engine.
    pub workflows: WorkflowsConfig,
    /// `[scheduler]`: the task scheduler (SwarmPilot API).
    pub scheduler: SchedulerConfig,
    /// `[containers]`: the Docker engine, container limits and each user's share.
    pub containers: ContainersConfig,
    /// `[workspaces]`: projects and workspace sessions.
    pub workspaces: WorkspacesConfig,
    /// `[notebooks]`: notebooks run in a session's Jupyter kernel.
    pub notebooks: NotebooksConfig,
    /// `[git]`: the projects' repositories and smart HTTP.
    pub git: GitConfig,
    /// `[datasets]`: data versions (the DVC remote) and each user's quota.
    pub datasets: DatasetsConfig,
    /// Secrets plugins may read once granted (`[secrets] name = "value"`, or
    /// `WEFT_SECRETS__NAME=value`).
    pub secrets: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
/// How log lines are written.
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("weft-data"),
            database_url: None,
            log_format: LogFormat::Text,
            api: ApiConfig::default(),
            plugins: PluginsConfig::default(),
            workflows: WorkflowsConfig::default(),
            scheduler: SchedulerConfig::default(),
            containers: ContainersConfig::default(),
            workspaces: WorkspacesConfig::default(),
            notebooks: NotebooksConfig::default(),
            git: GitConfig::default(),
            datasets: DatasetsConfig::default(),
            secrets: BTreeMap::new(),
        }
    }
}

/// Flags that override the file and the environment; `None` leaves the value alone.
#[derive(Debug, Default, Clone, Serialize, clap::Args)]
pub struct Overrides {
    /// Address to listen on [default: 127.0.0.1:8080]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    /// Data folder for the SQLite file and local storage [default: ./weft-data]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    /// Database URL, sqlite://PATH or postgres://USER@HOST/DB [default: <data-dir>/weft.db]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    /// Log format
    #[arg(long, value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<LogFormat>,
    /// Serve the scheduler's SwarmPilot paths on this address instead of the main one
    #[arg(long, value_name = "ADDR")]
    #[serde(
        rename = "scheduler",
        skip_serializing_if = "Option::is_none",
        serialize_with = "scheduler_listen"
    )]
    pub scheduler_listen: Option<SocketAddr>,
}

/// `--scheduler-listen` lands in `[scheduler] listen`.
fn scheduler_listen<S: serde::Serializer>(
    addr: &Option<SocketAddr>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap as _;
    let mut map = serializer.serialize_map(Some(1))?;
    map.serialize_entry("listen", addr)?;
    map.end()
}

impl Config {
    /// Loads the configuration. `file` is the TOML file to read: an explicit one must exist, the
    /// default `weft.toml` is read only if present.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> anyhow::Result<Self> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(path) => {
                anyhow::ensure!(
                    path.is_file(),
                    "configuration file {} does not exist",
                    path.display()
                );
                figment = figment.merge(Toml::file_exact(path));
            }
            None if Path::new("weft.toml").is_file() => {
                figment = figment.merge(Toml::file_exact("weft.toml"));
            }
            None => {}
        }
        // Only variables naming a configuration section count: WEFT_CONFIG names the file and
        // tools may set other WEFT_ variables of their own.
        let sections: Vec<String> = match serde_json::to_value(Config::default()) {
            Ok(serde_json::Value::Object(map)) => map.into_iter().map(|(k, _)| k).collect(),
            _ => Vec::new(),
        };
        let env = Env::prefixed("WEFT_").split("__").filter(move |key| {
            let head = key.as_str().split('.').next().unwrap_or_default();
            sections.iter().any(|s| s.eq_ignore_ascii_case(head))
        });
        figment
            .merge(env)
            .merge(Serialized::defaults(overrides))
            .extract()
            .context("invalid configuration")
    }

    /// The database URL in effect.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) if !url.is_empty() => url.clone(),
            _ => format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("weft.db").display()
            ),
        }
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's closure signature is fixed
mod tests {
    use super::*;
    use figment::Jail;

    #[test]
    fn quantities_are_text_or_numbers_in_the_file_and_the_environment() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "weft.toml",
                "[containers]\ndefault_cpu = 2\nmax_file_size = 1073741824\n[containers.per_user]\nmax_memory = \"8Gi\"\n",
            )?;
            jail.set_env("WEFT_CONTAINERS__PER_USER__MAX_CPU", "16");
            jail.set_env("WEFT_WORKSPACES__CPU", "0.5");
            let c = Config::load(None, &Overrides::default()).unwrap();
            assert_eq!(c.containers.default_cpu, "2");
            assert_eq!(c.containers.max_file_size.as_deref(), Some("1073741824"));
            assert_eq!(c.containers.per_user.max_memory, "8Gi");
            assert_eq!(c.containers.per_user.max_cpu, "16");
            assert_eq!(c.workspaces.cpu, "0.5");
            Ok(())
        });
    }

    #[test]
    fn pool_sizes_are_read_from_the_file_and_the_environment() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "weft.toml",
                "[workspaces.pool]\njupyter = 2\ncode_server = 1\n",
            )?;
            let c = Config::load(None, &Overrides::default()).unwrap();
            assert_eq!(
                (c.workspaces.pool.jupyter, c.workspaces.pool.code_server),
                (2, 1)
            );
            Ok(())
        });
        Jail::expect_with(|jail| {
            jail.set_env("WEFT_WORKSPACES__POOL__CODE_SERVER", "3");
            let c = Config::load(None, &Overrides::default()).unwrap();
            assert_eq!(c.workspaces.pool.code_server, 3);
            Ok(())
        });
    }

    #[test]
    fn precedence_is_file_then_env_then_flags() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "weft.toml",
                "listen = \"0.0.0.0:9000\"\ndata_dir = \"from-file\"\n[api]\nmax_body_bytes = 10\n",
            )?;
            let c = Config::load(None, &Overrides::default()).unwrap();
            assert_eq!(c.listen.port(), 9000);
            assert_eq!(c.data_dir, PathBuf::from("from-file"));
            assert_eq!(c.api.max_body_bytes, 10);

            jail.set_env("WEFT_DATA_DIR", "from-env");
            jail.set_env("WEFT_API__MAX_BODY_BYTES", "20");
            jail.set_env("WEFT_SOMETHING_ELSE", "ignored");
            let c = Config::load(None, &Overrides::default()).unwrap();
            assert_eq!(c.data_dir, PathBuf::from("from-env"));
            assert_eq!(c.api.max_body_bytes, 20);
            assert_eq!(c.listen.port(), 9000);

            let flags = Overrides {
                data_dir: Some("from-flag".into()),
                ..Default::default()
            };
            let c = Config::load(None, &flags).unwrap();
            assert_eq!(c.data_dir, PathBuf::from("from-flag"));
            assert_eq!(c.scheduler.listen, None);

            jail.set_env("WEFT_SCHEDULER__HEALTH_INTERVAL_MS", "300");
            let flags = Overrides {
                scheduler_listen: Some(SocketAddr::from(([127, 0, 0, 1], 8102))),
                ..Default::default()
            };
            let c = Config::load(None, &flags).unwrap();
            assert_eq!(c.scheduler.listen.unwrap().port(), 8102);
            assert_eq!(
                c.scheduler.health_interval_ms, 300,
                "the rest of the section stays"
            );
            Ok(())
        });
    }

    #[test]
    fn defaults_work_without_file_and_default_to_sqlite_in_data_dir() {
        Jail::expect_with(|_| {
            let c = Config::load(None, &Overrides::default()).unwrap();
            assert_eq!(c.listen, SocketAddr::from(([127, 0, 0, 1], 8080)));
            assert_eq!(c.database_url(), "sqlite://weft-data/weft.db?mode=rwc");
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_and_missing_explicit_file_are_errors() {
        Jail::expect_with(|jail| {
            jail.create_file("weft.toml", "lisen = \"x\"\n")?;
            let err = Config::load(None, &Overrides::default()).unwrap_err();
            assert!(format!("{err:#}").contains("lisen"), "{err:#}");
            let err =
                Config::load(Some(Path::new("nope.toml")), &Overrides::default()).unwrap_err();
            assert!(err.to_string().contains("does not exist"));
            Ok(())
        });
    }

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
