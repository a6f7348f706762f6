//! Content-addressed artifact storage, for nodes that declare and were granted the
//! `artifacts` capability. Pass content keys between nodes instead of large payloads.

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
