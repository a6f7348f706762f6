//! The built-in plugins, compiled from `plugins/` by this crate's build script and embedded.
//!
//! A crate of its own, with no dependencies, so that building the components (a nested cargo
//! run for wasm32-wasip2) starts at the beginning of a fresh build, beside the host's
//! dependencies, instead of after every one of them as the host's own build script must.

include!(concat!(env!("OUT_DIR"), "/builtin_plugins.rs"));
