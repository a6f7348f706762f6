//! Runtime failures as API errors.

use crate::error::{Code, Error};
use serde_json::json;
use weft_runtime::{CallError, LoadError};

/// A component that could not be loaded.
pub(super) fn load_error(err: LoadError) -> Error {
    match &err {
        LoadError::NotWasm => Error::new(Code::PluginNotWasm, err.to_string())
            .hint("upload the .wasm file built with `cargo build --release --target wasm32-wasip2`"),
        LoadError::CoreModule => Error::new(Code::PluginNotComponent, err.to_string()).hint(
            "build for the wasm32-wasip2 target (which emits a component) against weft-sdk",
        ),
        LoadError::WrongWorld { world, reason } => {
            Error::new(Code::PluginWrongWorld, err.to_string())
                .details(json!({ "world": world, "reason": reason }))
                .hint("build the plugin with weft-sdk's export_node! or export_strategy! against wit/ weft:plugin@0.1.0")
        }
        LoadError::Describe(call) => Error::new(Code::PluginInvalid, err.to_string())
            .details(json!({ "failure": call.kind() })),
        LoadError::Invalid(_) | LoadError::BadDescription(_) => {
            Error::new(Code::PluginInvalid, err.to_string())
        }
        LoadError::Cache(_) => Error::new(Code::PluginStorage, err.to_string()),
    }
}

/// A call into a plugin that failed.
pub(crate) fn call_error(plugin: &str, err: CallError) -> Error {
    let details = json!({ "plugin": plugin, "failure": err.kind(), "retryable": err.retryable() });
    let message = format!("{plugin}: {err}");
    match &err {
        CallError::Timeout { .. } | CallError::CpuLimit { .. } | CallError::MemoryLimit { .. } => {
            Error::new(Code::PluginLimit, message)
                .details(details)
                .hint(
                    "an admin can raise the plugin's limits with PUT /api/v1/plugins/{name}/limits",
                )
        }
        CallError::BadInputs(_) => Error::new(Code::PluginBadInputs, message).details(details),
        CallError::Capacity(_) => Error::new(Code::PluginCapacity, message)
            .details(details)
            .hint("try again shortly"),
        CallError::Node { kind, .. } => {
            let mut details = details;
            details["node_error"] = json!(kind);
            Error::new(Code::PluginFailed, message).details(details)
        }
        _ => Error::new(Code::PluginFailed, message).details(details),
    }
}
