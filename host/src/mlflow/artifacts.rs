//! Artifacts through MLflow's proxy paths (`mlflow-artifacts:/<experiment>/...`), kept in the
//! projects' storage below `.mlflow/`: uploads and downloads stream chunk by chunk, so a
//! file of any size passes in flat memory. The first segment of a path is the experiment,
//! whose owner (or an admin) alone reaches it.

use super::service::{ARTIFACT_ROOT, Tracking};
use super::wire::invalid;
use crate::auth::Caller;
use crate::error::{Code, Error, Result};
use crate::workspace::projects::stream_file;
use bytes::Bytes;
use futures::StreamExt as _;
use futures::stream::BoxStream;
use opendal::{EntryMode, ErrorKind};
use serde_json::{Value, json};

/// A storage failure as an API error; the storage's own words stay in the log.
pub(super) fn storage_error(err: opendal::Error) -> Error {
    if err.kind() == ErrorKind::NotFound {
        return Error::new(Code::ModelNotFound, "no such artifact");
    }
    tracing::error!(error = %err, "artifact storage failed");
    Error::new(Code::ModelStorage, "the artifact storage is unavailable")
        .hint("retry shortly; if it persists, check the storage configured in [workspaces]")
}

/// `path` checked (relative, no `.`/`..`/empty segments) and its experiment id.
fn checked(path: &str) -> Result<(String, &str)> {
    let path = path.trim_matches('/');
    let bad = path.is_empty()
        || path.contains('\\')
        || path
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..");
    if bad {
        return Err(invalid(format!("Invalid artifact path: '{path}'")));
    }
    let experiment = path.split('/').next().unwrap_or_default();
    Ok((path.to_string(), experiment))
}

impl Tracking {
    /// Stores the chunks of `body` at `path`, as they arrive.
    pub(crate) async fn upload_artifact<E: std::fmt::Display>(
        &self,
        caller: &Caller,
        path: &str,
        mut body: impl futures::Stream<Item = std::result::Result<Bytes, E>> + Unpin,
    ) -> Result<()> {
        let (path, experiment) = checked(path)?;
        self.experiment_access(caller, experiment).await?;
        let full = format!("{ARTIFACT_ROOT}{path}");
        let mut writer = self.files.writer(&full).await.map_err(storage_error)?;
        while let Some(chunk) = body.next().await {
            match chunk {
                Ok(chunk) => writer.write(chunk).await.map_err(storage_error)?,
                Err(e) => {
                    let _ = writer.abort().await;
                    return Err(Error::new(
                        Code::UploadIncomplete,
                        format!("the upload broke off: {e}"),
                    ));
                }
            }
        }
        writer.close().await.map_err(storage_error)?;
        Ok(())
    }

    /// The artifact at `path` as a stream of chunks, with its size.
    pub(crate) async fn download_artifact(
        &self,
        caller: &Caller,
        path: &str,
    ) -> Result<(u64, BoxStream<'static, std::io::Result<Bytes>>)> {
        let (path, experiment) = checked(path)?;
        self.experiment_access(caller, experiment).await?;
        stream_file(&self.files, &format!("{ARTIFACT_ROOT}{path}"))
            .await
            .map_err(storage_error)
    }

    /// The files and folders directly in `path`, by name, as the protocol lists them.
    pub(crate) async fn list_artifacts(&self, caller: &Caller, path: &str) -> Result<Value> {
        let (path, experiment) = checked(path)?;
        self.experiment_access(caller, experiment).await?;
        let prefix = format!("{ARTIFACT_ROOT}{path}/");
        let entries = match self.files.list(&prefix).await {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(storage_error(e)),
        };
        let mut files: Vec<Value> = entries
            .into_iter()
            .filter(|e| e.path() != prefix)
            .map(|e| {
                let name = e.path().trim_start_matches(&prefix).trim_end_matches('/').to_string();
                if e.metadata().mode() == EntryMode::DIR {
                    json!({"path": name, "is_dir": true})
                } else {
                    json!({"path": name, "is_dir": false, "file_size": e.metadata().content_length()})
                }
            })
            .collect();
        files.sort_by(|a, b| a["path"].as_str().cmp(&b["path"].as_str()));
        Ok(json!({ "files": files }))
    }

    /// Removes the artifact (or folder of artifacts) at `path`.
    pub(crate) async fn delete_artifact(&self, caller: &Caller, path: &str) -> Result<()> {
        let (path, experiment) = checked(path)?;
        self.experiment_access(caller, experiment).await?;
        let full = format!("{ARTIFACT_ROOT}{path}");
        self.files.delete(&full).await.map_err(storage_error)?;
        self.files
            .delete_with(&format!("{full}/"))
            .recursive(true)
            .await
            .map_err(storage_error)
    }
}
