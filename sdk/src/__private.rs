//! Generated bindings and export glue used by `export_node!` and `export_strategy!`.
//! Not a stable API: plugin authors use the modules re-exported at the crate root.

/// Bindings for the `weft:plugin/node-plugin` world.
pub mod node {
    wit_bindgen::generate!({
        path: "../wit",
        world: "weft:plugin/node-plugin",
        pub_export_macro: true,
        export_macro_name: "export_node_world",
        generate_all,
    });
}

/// Bindings for the `weft:plugin/strategy-plugin` world.
pub mod strategy {
    wit_bindgen::generate!({
        path: "../wit",
        world: "weft:plugin/strategy-plugin",
        pub_export_macro: true,
        export_macro_name: "export_strategy_world",
        // One `host` binding serves both worlds, so the logging helpers work everywhere.
        with: { "weft:plugin/host@0.1.0": crate::__private::node::weft::plugin::host },
    });
}

pub use node::export_node_world;
pub use node::exports::weft::plugin::node::Guest as NodeGuest;
pub use strategy::export_strategy_world;
pub use strategy::exports::weft::plugin::strategy::Guest as StrategyGuest;

use crate::node::{Context, Inputs, NamedValue, Node, NodeError};

/// Parses the wire form of a `run` call, runs `N` and flattens its outputs.
pub fn run_node<N: Node>(
    config: String,
    inputs: Vec<NamedValue>,
) -> Result<Vec<NamedValue>, NodeError> {
    let ctx = Context::new(config);
    let value = ctx.config()?;
    N::run(&ctx, value, Inputs::new(inputs)).map(Into::into)
}
