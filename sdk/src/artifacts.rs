//! Content-addressed artifact storage, for nodes that declare and were granted the
//! `artifacts` capability. Pass content keys between nodes instead of large payloads.

use crate::__private::node::weft::plugin::artifacts;
use crate::node::NodeError;

/// Stores `data` under a descriptive `name`; returns the content key to read it back.
pub fn put(name: &str, data: &[u8]) -> Result<String, NodeError> {
    artifacts::put(name, data).map_err(NodeError::from_host)
}

/// Reads the bytes stored under `key`.
pub fn get(key: &str) -> Result<Vec<u8>, NodeError> {
    artifacts::get(key).map_err(NodeError::from_host)
}
