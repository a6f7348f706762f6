//! Content-addressed artifact storage, for nodes that declare and were granted the
//! `artifacts` capability. Pass content keys between nodes instead of large payloads. The
//! same capability reads the run owner's dataset versions and records model versions; the
//! host records each in the run's lineage (`GET /api/v1/runs/{id}/lineage`).

use crate::__private::node::weft::plugin::artifacts;
use crate::node::NodeError;

/// Stores `data` under a descriptive `name`; returns the content key to read it back.
/// Outside a Weft host (native tests) this always fails.
pub fn put(name: &str, data: &[u8]) -> Result<String, NodeError> {
    if !cfg!(target_arch = "wasm32") {
        return Err(crate::not_in_host("artifacts::put"));
    }
    artifacts::put(name, data).map_err(NodeError::from_host)
}

/// Reads the bytes stored under `key`. Outside a Weft host (native tests) this always fails.
pub fn get(key: &str) -> Result<Vec<u8>, NodeError> {
    if !cfg!(target_arch = "wasm32") {
        return Err(crate::not_in_host("artifacts::get"));
    }
    artifacts::get(key).map_err(NodeError::from_host)
}

/// Version `version` (the newest when `None`) of the run owner's dataset `dataset` (its id):
/// its files, sizes and hashes as JSON (`{"dataset_id", "name", "project_id", "version",
/// "oid", "git_commit", "files": [{"path", "md5", "size"}]}`). The host records in the run's
/// lineage that the run read it. Outside a Weft host (native tests) this always fails.
pub fn dataset(dataset: &str, version: Option<u32>) -> Result<serde_json::Value, NodeError> {
    if !cfg!(target_arch = "wasm32") {
        return Err(crate::not_in_host("artifacts::dataset"));
    }
    let text = artifacts::dataset(dataset, version).map_err(NodeError::from_host)?;
    serde_json::from_str(&text)
        .map_err(|e| NodeError::failed(format!("the host sent an unreadable manifest: {e}")))
}

/// File `path` of version `version` of dataset `dataset`; recorded as read by the run.
/// Outside a Weft host (native tests) this always fails.
pub fn read_dataset_file(dataset: &str, version: u32, path: &str) -> Result<Vec<u8>, NodeError> {
    if !cfg!(target_arch = "wasm32") {
        return Err(crate::not_in_host("artifacts::read_dataset_file"));
    }
    artifacts::read_dataset_file(dataset, version, path).map_err(NodeError::from_host)
}

/// Records the artifact under `key` (from [`put`]) as the next version of the run owner's
/// model `name`, with the run's lineage (its code and the data it read); returns the model's
/// id and the version's number. Outside a Weft host (native tests) this always fails.
pub fn record_model(name: &str, key: &str) -> Result<(String, u64), NodeError> {
    if !cfg!(target_arch = "wasm32") {
        return Err(crate::not_in_host("artifacts::record_model"));
    }
    artifacts::record_model(name, key).map_err(NodeError::from_host)
}

/// Records the artifacts `files` (each a path in the dataset and a key from [`put`]) as the
/// next version of dataset `name` of the run's project (the project the workflow run names);
/// the host stores them in the project's DVC remote and records in the run's lineage that
/// the run wrote the version. Returns the dataset's id and the version's number (the latest
/// version's when it holds these files already). Outside a Weft host (native tests) this
/// always fails.
pub fn record_dataset(name: &str, files: &[(&str, &str)]) -> Result<(String, u32), NodeError> {
    if !cfg!(target_arch = "wasm32") {
        return Err(crate::not_in_host("artifacts::record_dataset"));
    }
    let files: Vec<(String, String)> = files
        .iter()
        .map(|(path, key)| (path.to_string(), key.to_string()))
        .collect();
    artifacts::record_dataset(name, &files).map_err(NodeError::from_host)
}
