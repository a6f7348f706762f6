//! The built-in plugins, compiled from `plugins/` by the build script and embedded.

include!(concat!(env!("OUT_DIR"), "/builtin_plugins.rs"));
