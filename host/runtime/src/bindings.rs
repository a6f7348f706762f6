//! Host bindings generated from `wit/` for the two plugin worlds.

/// The `node` world.
pub(crate) mod node {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "weft:plugin/node",
        imports: { default: async },
        exports: { default: async },
        require_store_data_send: true,
        with: {
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
            "wasi:http": wasmtime_wasi_http::p2::bindings::http,
        },
    });
}

/// The `strategy` world; shares the `host` interface with the node world.
pub(crate) mod strategy {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "weft:plugin/strategy",
        imports: { default: async },
        exports: { default: async },
        require_store_data_send: true,
        with: {
            "weft:plugin/host": super::node::weft::plugin::host,
        },
    });
}
