//! Workflow nodes: implement [`Node`] on a type and export it with
//! [`export_node!`](crate::export_node).
//!
//! A fresh component instance serves each run, so a node keeps no state between runs.

mod description;
mod error;
mod values;

pub use crate::__private::node::weft::plugin::types::{
    ErrorKind, NamedValue, NodeDescription as Description, NodeError, Port, Value,
    ValueKind as Kind,
};
pub use values::{Inputs, Outputs};

use serde::de::DeserializeOwned;

/// Everything a node author usually needs, for `use weft_sdk::node::prelude::*;`.
pub mod prelude {
    pub use super::{
        Context, Description, ErrorKind, Inputs, Kind, Node, NodeError, Outputs, Port,
    };
    pub use serde_json::{Value, json};
}

/// A workflow node.
pub trait Node {
    /// Ports, config schema and capabilities; the host calls this once per loaded component.
    fn describe() -> Description;

    /// Runs once. `config` is the node's config from the workflow (`null` when empty);
    /// `inputs` holds the values of the connected input ports.
    fn run(ctx: &Context, config: serde_json::Value, inputs: Inputs) -> Result<Outputs, NodeError>;
}

/// The call a node is running in: gives typed access to the config.
#[derive(Debug, Clone)]
pub struct Context {
    config: String,
}

impl Context {
    /// A context for a run with `config` (JSON text); built by the export glue, or by tests.
    pub fn new(config: impl Into<String>) -> Self {
        Self {
            config: config.into(),
        }
    }

    /// The config deserialised into `T`; an `invalid-config` error names what did not fit.
    /// An empty config reads as JSON `null`.
    pub fn config<T: DeserializeOwned>(&self) -> Result<T, NodeError> {
        let text = match self.config.trim() {
            "" => "null",
            text => text,
        };
        serde_json::from_str(text)
            .map_err(|err| NodeError::invalid_config(format!("config: {err}")))
    }

    /// The config as the host sent it.
    pub fn raw_config(&self) -> &str {
        &self.config
    }
}

/// Exports a type implementing [`Node`] as the component's `weft:plugin/node` interface.
///
/// Call it once, at the crate root of a `cdylib`.
#[macro_export]
macro_rules! export_node {
    ($node:ty) => {
        const _: () = {
            struct WeftNodeExport;

            impl $crate::__private::NodeGuest for WeftNodeExport {
                fn describe() -> $crate::node::Description {
                    <$node as $crate::node::Node>::describe()
                }

                fn run(
                    config: ::std::string::String,
                    inputs: ::std::vec::Vec<$crate::node::NamedValue>,
                ) -> ::std::result::Result<
                    ::std::vec::Vec<$crate::node::NamedValue>,
                    $crate::node::NodeError,
                > {
                    $crate::__private::run_node::<$node>(config, inputs)
                }
            }

            $crate::__private::export_node_world!(
                WeftNodeExport with_types_in $crate::__private::node
            );
        };
    };
}
