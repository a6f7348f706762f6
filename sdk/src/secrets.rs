//! Named secrets, for nodes that declare and were granted the `secrets` capability
//! (`Description::capability("secrets")`).

use crate::__private::node::weft::plugin::secrets;
use crate::node::NodeError;

/// Reads the secret `name`.
///
/// A refusal by the host (capability not declared or not granted) becomes a `denied` error,
/// any other failure (such as an unknown secret) a `failed` one. Outside a Weft host (native
/// tests) this always fails.
pub fn get(name: &str) -> Result<String, NodeError> {
    if !cfg!(target_arch = "wasm32") {
        return Err(crate::not_in_host("secrets::get"));
    }
    secrets::get(name).map_err(NodeError::from_host)
}
