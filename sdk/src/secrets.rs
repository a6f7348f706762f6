//! Named secrets, for nodes that declare and were granted the `secrets` capability.

use crate::__private::node::weft::plugin::secrets;
use crate::node::NodeError;

/// Reads the secret `name`.
///
/// A refusal by the host becomes a `denied` error, any other failure (such as an unknown
/// secret) a `failed` one.
pub fn get(name: &str) -> Result<String, NodeError> {
    secrets::get(name).map_err(NodeError::from_host)
}
