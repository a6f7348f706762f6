//! The host services plugins reach through the runtime: logs, progress, secrets, container
//! jobs (run for the call's user by [`crate::job`]), dataset versions (read and written) and
//! model versions (through [`crate::lineage`], which records what a run's node read and
//! produced) and
//! content-addressed artifacts in the data folder, one namespace per user
//! (`<data>/artifacts/<user id>/<sha256>`): a node reads and writes only the artifacts of the
//! user it runs for, so a key learnt from another user's run reads nothing.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use weft_runtime::{HostServices, JobExit, JobSpec, LogLevel};

/// The most a node writes as one dataset version.
const MAX_DATASET_WRITE_BYTES: u64 = 256 * 1024 * 1024;

/// Shared backing for every call's services.
pub(crate) struct ServiceBackend {
    pub secrets: BTreeMap<String, String>,
    pub artifacts_dir: PathBuf,
    /// Container jobs, once the container service is up.
    pub(crate) jobs: std::sync::OnceLock<crate::job::Jobs>,
    /// Data versions, models and the lineage of what runs' nodes do with them, once those
    /// services are up.
    pub(crate) lineage: std::sync::OnceLock<crate::lineage::Lineage>,
}

/// Services for one call, attributing logs to `plugin`.
pub(crate) struct CallServices {
    pub backend: Arc<ServiceBackend>,
    pub plugin: String,
    /// The user the call runs for: the caller of a direct run, a workflow run's owner.
    pub owner: String,
    /// Log lines and progress of the call, kept for the caller.
    pub events: Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
    /// Where each event also goes as it happens (a workflow run's live stream).
    pub live: Option<LiveEvents>,
    /// The call's container jobs; `None` where the host runs none.
    pub(crate) jobs: Option<crate::job::CallJobs>,
    /// The run's node this call is an attempt of, whose lineage records what the call reads
    /// and produces; `None` for a node run directly (nothing is recorded).
    pub(crate) scope: Option<crate::job::JobScope>,
}

/// A receiver of a call's log and progress events as they happen.
pub(crate) type LiveEvents = Arc<dyn Fn(&serde_json::Value) + Send + Sync>;

impl CallServices {
    /// The owner's artifact folder; `None` for an owner id that is no safe folder name (ids are
    /// generated UUIDs, so this is a guard, not a path anyone should hit).
    fn artifacts_dir(&self) -> Option<PathBuf> {
        let safe = !self.owner.is_empty()
            && self
                .owner
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        safe.then(|| self.backend.artifacts_dir.join(&self.owner))
    }

    /// Where the content of each artifact `(path, key)` a node names as a dataset version's
    /// file is stored, refused past [`MAX_DATASET_WRITE_BYTES`] together before any is read.
    async fn dataset_contents(
        &self,
        files: Vec<(String, String)>,
    ) -> crate::error::Result<Vec<(String, PathBuf)>> {
        use crate::error::{Code, Error};
        let missing = |path: &str, key: &str| {
            Error::new(
                Code::DatasetArtifactNotFound,
                format!(
                    "file '{path}' names artifact '{key}', which the run's owner does not have"
                ),
            )
            .details(serde_json::json!({ "path": path, "key": key }))
            .hint("name each file's content by the key `put` returned")
        };
        let dir = self
            .artifacts_dir()
            .ok_or_else(|| Error::internal("artifact store unavailable for this user"))?;
        let mut total = 0u64;
        for (path, key) in &files {
            let valid = key.len() == 64 && key.chars().all(|c| c.is_ascii_hexdigit());
            let size = match valid {
                true => tokio::fs::metadata(dir.join(key))
                    .await
                    .ok()
                    .map(|m| m.len()),
                false => None,
            };
            total += size.ok_or_else(|| missing(path, key))?;
        }
        if total > MAX_DATASET_WRITE_BYTES {
            return Err(Error::new(
                Code::DatasetFileTooLarge,
                format!(
                    "the files hold {total} bytes, more than the {MAX_DATASET_WRITE_BYTES} a node may write as one version"
                ),
            )
            .hint("write the data with `dvc push` from a container job of the project"));
        }
        Ok(files
            .into_iter()
            .map(|(path, key)| (path, dir.join(key)))
            .collect())
    }

    fn record(&self, event: serde_json::Value) {
        record(&self.events, self.live.as_ref(), event);
    }

    fn lineage(&self) -> Result<&crate::lineage::Lineage, String> {
        self.backend
            .lineage
            .get()
            .ok_or_else(|| "data versions are not available yet".to_string())
    }
}

/// Keeps a call's event (the first 1,000) and hands it to the live stream.
pub(super) fn record(
    events: &std::sync::Mutex<Vec<serde_json::Value>>,
    live: Option<&LiveEvents>,
    event: serde_json::Value,
) {
    if let Some(live) = live {
        live(&event);
    }
    let mut events = events.lock().expect("events lock");
    if events.len() < 1_000 {
        events.push(event);
    }
}

impl HostServices for CallServices {
    fn log(&self, level: LogLevel, message: &str) {
        level.emit(&self.plugin, message);
        self.record(serde_json::json!({ "type": "log", "level": level, "message": message }));
    }

    fn progress(&self, fraction: f32, message: &str) {
        self.record(
            serde_json::json!({ "type": "progress", "fraction": fraction, "message": message }),
        );
    }

    fn secret(&self, name: &str) -> weft_runtime::BoxFuture<'_, Result<String, String>> {
        let found = self
            .backend
            .secrets
            .get(name)
            .cloned()
            .ok_or_else(|| format!("secret '{name}' is not configured"));
        Box::pin(async move { found })
    }

    fn put_artifact(
        &self,
        name: &str,
        data: Vec<u8>,
    ) -> weft_runtime::BoxFuture<'_, Result<String, String>> {
        let dir = self.artifacts_dir();
        let name = name.to_string();
        Box::pin(async move {
            let dir = dir.ok_or("artifact store unavailable for this user")?;
            let key = weft_runtime::content_hash(&data);
            tokio::fs::create_dir_all(&dir)
                .await
                .map_err(|e| format!("artifact store unavailable: {e}"))?;
            let path = dir.join(&key);
            if !tokio::fs::try_exists(&path).await.unwrap_or(false) {
                let tmp = dir.join(format!("{key}.tmp{}", uuid::Uuid::new_v4().simple()));
                tokio::fs::write(&tmp, &data)
                    .await
                    .map_err(|e| format!("cannot store artifact: {e}"))?;
                tokio::fs::rename(&tmp, &path)
                    .await
                    .map_err(|e| format!("cannot store artifact: {e}"))?;
            }
            self.lineage()?
                .stored_artifact(self.scope.as_ref(), &key, &name)
                .await
                .map_err(|e| e.for_guest())?;
            Ok(key)
        })
    }

    fn dataset(
        &self,
        dataset: &str,
        version: Option<u32>,
    ) -> weft_runtime::BoxFuture<'_, Result<String, String>> {
        let dataset = dataset.to_string();
        Box::pin(async move {
            let manifest = self
                .lineage()?
                .read_dataset(&self.owner, self.scope.as_ref(), &dataset, version)
                .await
                .map_err(|e| e.for_guest())?;
            Ok(manifest.to_string())
        })
    }

    fn read_dataset_file(
        &self,
        dataset: &str,
        version: u32,
        path: &str,
    ) -> weft_runtime::BoxFuture<'_, Result<Vec<u8>, String>> {
        let (dataset, path) = (dataset.to_string(), path.to_string());
        Box::pin(async move {
            let content = self
                .lineage()?
                .read_dataset_file(&self.owner, self.scope.as_ref(), &dataset, version, &path)
                .await
                .map_err(|e| e.for_guest())?;
            Ok(content.to_vec())
        })
    }

    fn record_model(
        &self,
        name: &str,
        key: &str,
    ) -> weft_runtime::BoxFuture<'_, Result<(String, u64), String>> {
        let (name, key) = (name.to_string(), key.to_string());
        Box::pin(async move {
            let content = self.get_artifact(&key).await?;
            let (model, version) = self
                .lineage()?
                .record_model(
                    &self.owner,
                    self.scope.as_ref(),
                    &name,
                    &key,
                    content.into(),
                )
                .await
                .map_err(|e| e.for_guest())?;
            Ok((model, version as u64))
        })
    }

    fn record_dataset(
        &self,
        name: &str,
        files: Vec<(String, String)>,
    ) -> weft_runtime::BoxFuture<'_, Result<(String, u32), String>> {
        let name = name.to_string();
        Box::pin(async move {
            let contents = self
                .dataset_contents(files)
                .await
                .map_err(|e| e.for_guest())?;
            let (dataset, version) = self
                .lineage()?
                .write_dataset(&self.owner, self.scope.as_ref(), &name, contents)
                .await
                .map_err(|e| e.for_guest())?;
            Ok((dataset, version as u32))
        })
    }

    fn submit_job(&self, spec: JobSpec) -> weft_runtime::BoxFuture<'_, Result<u32, String>> {
        Box::pin(async move {
            match &self.jobs {
                Some(jobs) => jobs.submit(spec).await,
                None => Err("no container engine is available for jobs".into()),
            }
        })
    }

    fn job_logs(&self, job: u32) -> weft_runtime::BoxFuture<'_, Option<Vec<String>>> {
        Box::pin(async move { self.jobs.as_ref()?.logs(job).await })
    }

    fn wait_job(&self, job: u32) -> weft_runtime::BoxFuture<'_, Result<JobExit, String>> {
        Box::pin(async move {
            match &self.jobs {
                Some(jobs) => jobs.wait(job).await,
                None => Err(format!("no job {job} in this call")),
            }
        })
    }

    fn get_artifact(&self, key: &str) -> weft_runtime::BoxFuture<'_, Result<Vec<u8>, String>> {
        let valid = key.len() == 64 && key.chars().all(|c| c.is_ascii_hexdigit());
        let dir = self.artifacts_dir();
        let key = key.to_string();
        Box::pin(async move {
            if !valid {
                return Err(format!("'{key}' is not an artifact key"));
            }
            let dir = dir.ok_or("artifact store unavailable for this user")?;
            tokio::fs::read(dir.join(&key))
                .await
                .map_err(|_| format!("artifact '{key}' not found"))
        })
    }
}
