//! Generated bindings and export glue used by `export_node!` and `export_strategy!`.
//! Not a stable API: plugin authors use the modules re-exported at the crate root.
//!
//! Both worlds are generated here with `pub_export_macro`, which makes wit-bindgen split each
//! world's metadata in two: this crate only carries the *imports* of each world (which
//! `wit-component` drops when unused), and the world's exports are described by a custom
//! section emitted where the plugin calls the export macro. So a node plugin's component
//! contains the `node` world only, and a strategy's the `strategy` world only.

/// Bindings for the `weft:plugin/node` world.
pub mod node {
    wit_bindgen::generate!({
        path: "../wit",
        world: "weft:plugin/node",
        pub_export_macro: true,
        export_macro_name: "export_node_world",
        additional_derives: [PartialEq],
        // Holds a resource (`wasi:io/error.error`), which cannot be compared.
        additional_derives_ignore: ["stream-error"],
        generate_all,
    });
}

/// Bindings for the `weft:plugin/strategy` world.
pub mod strategy {
    wit_bindgen::generate!({
        path: "../wit",
        world: "weft:plugin/strategy",
        pub_export_macro: true,
        export_macro_name: "export_strategy_world",
        additional_derives: [PartialEq],
        // One `host` binding serves both worlds, so the logging helpers work everywhere.
        with: { "weft:plugin/host@0.1.0": crate::__private::node::weft::plugin::host },
    });
}

pub use node::export_node_world;
pub use node::exports::weft::plugin::node_api::Guest as NodeGuest;
pub use strategy::export_strategy_world;
pub use strategy::exports::weft::plugin::strategy_api::Guest as StrategyGuest;

use crate::node::{NamedValue, Node, NodeError};

/// Parses the wire form of a `run` call, runs `N` and flattens its outputs.
pub fn run_node<N: Node>(
    config: String,
    inputs: Vec<NamedValue>,
) -> Result<Vec<NamedValue>, NodeError> {
    crate::node::call::<N>(&config, crate::node::Inputs::from_values(inputs)).map(Into::into)
}
