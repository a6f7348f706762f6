//! Workflow nodes: implement [`Node`] on a type and export it with
//! [`export_node!`](crate::export_node).
//!
//! The host calls [`Node::describe`] once when the plugin is loaded, and [`Node::run`] once per
//! execution of the node in a workflow run. A fresh component instance serves each run, so a
//! node keeps no state between runs: everything it needs comes from its config and inputs.
//!
//! Values cross the boundary as JSON text ([`Value::Json`]) or raw bytes ([`Value::Bytes`]);
//! [`Inputs`] and [`Outputs`] convert to and from `serde_json` and your own serde types.

mod description;
mod error;
mod values;

pub use crate::__private::node::weft::plugin::types::{
    ErrorKind, NamedValue, NodeDescription as Description, NodeError, Port, Value,
    ValueKind as Kind,
};
pub use values::{Inputs, Outputs};

use serde::de::DeserializeOwned;

/// A config type for nodes that take no config: accepts (and ignores) anything.
pub type NoConfig = serde::de::IgnoredAny;

/// Everything a node author usually needs, for `use weft_sdk::node::prelude::*;`.
pub mod prelude {
    pub use super::{
        Description, ErrorKind, Inputs, Kind, NoConfig, Node, NodeError, Outputs, Port,
    };
    pub use serde::Deserialize;
    pub use serde_json::{Value as Json, json};
}

/// A workflow node.
///
/// See the [crate documentation](crate) for a complete example.
pub trait Node {
    /// The node's config, deserialised from the JSON object in the workflow definition.
    ///
    /// Use [`NoConfig`] when the node takes none, or `serde_json::Value` to read it yourself.
    /// A missing (`null`) config reads as `{}` when `null` itself does not fit, so a struct
    /// whose fields all have defaults works without any config.
    type Config: DeserializeOwned;

    /// Name, version, ports, config schema and capabilities. Must not fail.
    fn describe() -> Description;

    /// Runs the node once on its config and the values of its connected inputs.
    fn run(config: Self::Config, inputs: Inputs) -> Result<Outputs, NodeError>;
}

/// Parses a config given as JSON text into `T`, the way the export glue does before
/// [`Node::run`]: empty text reads as `null`, and `null` as `{}` when `T` does not accept
/// `null`. Failures are `invalid-config` errors that name what did not fit.
pub fn parse_config<T: DeserializeOwned>(text: &str) -> Result<T, NodeError> {
    let text = match text.trim() {
        "" => "null",
        text => text,
    };
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|err| NodeError::invalid_config(format!("config is not valid JSON: {err}")))?;
    let is_null = value.is_null();
    match serde_json::from_value(value) {
        Ok(config) => Ok(config),
        Err(_) if is_null => serde_json::from_value(serde_json::Value::Object(Default::default()))
            .map_err(|err| NodeError::invalid_config(format!("config: {err}"))),
        Err(err) => Err(NodeError::invalid_config(format!("config: {err}"))),
    }
}

/// Runs node `N` as the host would: parses `config` (JSON text) into [`Node::Config`], then
/// calls [`Node::run`]. Handy in unit tests, which run natively.
///
/// ```
/// # use weft_sdk::node::prelude::*;
/// # struct Upper;
/// # impl Node for Upper {
/// #     type Config = NoConfig;
/// #     fn describe() -> Description { Description::new("upper", "0.1.0", "") }
/// #     fn run(_: NoConfig, inputs: Inputs) -> Result<Outputs, NodeError> {
/// #         let text: String = inputs.get("in")?;
/// #         Ok(Outputs::new().json("out", text.to_uppercase()))
/// #     }
/// # }
/// let outputs = weft_sdk::node::call::<Upper>("{}", Inputs::new().json("in", "abc")).unwrap();
/// assert_eq!(outputs.get_json("out"), Some(json!("ABC")));
/// ```
pub fn call<N: Node>(config: &str, inputs: Inputs) -> Result<Outputs, NodeError> {
    let config = parse_config::<N::Config>(config)?;
    N::run(config, inputs)
}

/// Exports a type implementing [`Node`] as the component's `weft:plugin/node-api` interface,
/// making the crate a component of the `weft:plugin/node` world.
///
/// Call it once, at the crate root of a `cdylib`.
#[macro_export]
macro_rules! export_node {
    ($node:ty) => {
        const _: () = {
            // Only wasm32 gets the component exports: their symbol names (`weft:plugin/...`)
            // cannot be linked into a native `cdylib`, and `cargo test` needs none of them.
            #[allow(dead_code)]
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

            // Natively, mark the type as used, so a private plugin type is no dead code.
            #[cfg(not(target_arch = "wasm32"))]
            const _: fn() -> $crate::node::Description = <$node as $crate::node::Node>::describe;

            #[cfg(target_arch = "wasm32")]
            $crate::__private::export_node_world!(
                WeftNodeExport with_types_in $crate::__private::node
            );
        };
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Optional {
        #[serde(default)]
        n: Option<u32>,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Required {
        query: String,
    }

    #[test]
    fn missing_config_reads_as_empty_object() {
        assert_eq!(parse_config::<Optional>("").unwrap(), Optional { n: None });
        assert_eq!(
            parse_config::<Optional>("null").unwrap(),
            Optional { n: None }
        );
        assert_eq!(
            parse_config::<serde_json::Value>("").unwrap(),
            serde_json::Value::Null
        );
        parse_config::<NoConfig>("[1, 2]").unwrap();
    }

    #[test]
    fn config_errors_are_invalid_config_and_name_the_problem() {
        let err = parse_config::<Required>("{}").unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidConfig);
        assert!(
            err.message.contains("missing field `query`"),
            "{}",
            err.message
        );
        let err = parse_config::<Required>("{\"query\": 3}").unwrap_err();
        assert!(err.message.contains("invalid type"), "{}", err.message);
        let err = parse_config::<Required>("{nope").unwrap_err();
        assert!(err.message.contains("not valid JSON"), "{}", err.message);
    }
}
