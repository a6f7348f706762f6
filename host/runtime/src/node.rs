//! Node plugins: describe once at load, then run with config and inputs, checked against the
//! declared ports on the way in and out.

use crate::bindings::node::exports::weft::plugin::node_api;
use crate::bindings::node::weft::plugin::types as wit;
use crate::bindings::node::{Node, NodePre};
use crate::call::{describe, guarded, new_store, wrong_signature, wrong_world};
use crate::capabilities::{Capability, Grants};
use crate::engine::Runtime;
use crate::error::{CallError, LoadError};
use crate::limits::Limits;
use crate::services::HostServices;
use crate::state::PluginState;
use crate::text::{MAX_MESSAGE, MAX_SUMMARY, cap};
use crate::value::{Value, ValueKind};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::sync::Arc;
use wasmtime::component::Component;

/// A named input or output of a node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Port {
    /// The port's name, unique among the node's inputs (or outputs).
    pub name: String,
    /// What it carries; the host checks values against it.
    pub kind: ValueKind,
    /// One line for people.
    pub summary: String,
    /// Whether the node runs without it (inputs) or may leave it out (outputs).
    pub optional: bool,
}

/// What a node says about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeDescription {
    /// The node type's name in workflows.
    pub name: String,
    /// Its semantic version.
    pub version: String,
    /// One line saying what it does.
    pub summary: String,
    /// Declared inputs.
    pub inputs: Vec<Port>,
    /// Declared outputs.
    pub outputs: Vec<Port>,
    /// JSON Schema for the node's config.
    pub config_schema: serde_json::Value,
    /// Capabilities the node needs (`http`, `secrets`, `artifacts`, `jobs`).
    pub capabilities: Vec<Capability>,
}

/// A loaded, pre-instantiated node component.
#[derive(Clone)]
pub struct NodePlugin {
    pre: NodePre<PluginState>,
    description: Arc<NodeDescription>,
}

impl NodePlugin {
    /// The node in `component`, described by `known` (its description stored when it was
    /// added) or else by calling its `describe`.
    pub(crate) async fn new(
        rt: &Arc<Runtime>,
        component: &Component,
        known: Option<NodeDescription>,
    ) -> Result<Self, LoadError> {
        let wrong = wrong_world("node");
        let pre = NodePre::new(rt.node_linker.instantiate_pre(component).map_err(&wrong)?)
            .map_err(&wrong)?;
        if let Some(description) = known {
            return Ok(Self {
                pre,
                description: Arc::new(description),
            });
        }
        let described = describe(rt, async |store| {
            let instance = pre.instance_pre().instantiate_async(&mut *store).await?;
            // Exports are type-checked here, not by `NodePre::new`: a `run` of another
            // signature under the contract's name is the wrong world, not a trap.
            let node = match Node::new(&mut *store, &instance) {
                Ok(node) => node,
                Err(err) => {
                    return Ok(Err(wrong_signature(
                        "node",
                        rt,
                        component,
                        "weft:plugin/node-api",
                        err,
                    )));
                }
            };
            node.weft_plugin_node_api()
                .call_describe(&mut *store)
                .await
                .map(Ok)
        })
        .await??;
        Ok(Self {
            pre,
            description: Arc::new(convert_description(described)?),
        })
    }

    /// The node's self-description.
    pub fn description(&self) -> &NodeDescription {
        &self.description
    }

    /// Runs the node once. `grants` are the admin's; only declared capabilities take effect.
    /// The inputs are handed to the guest, moved rather than copied where nothing else holds
    /// them: a large value is in the host once while the call runs.
    pub async fn run(
        &self,
        rt: &Runtime,
        config: &serde_json::Value,
        inputs: Vec<(String, Value)>,
        limits: &Limits,
        grants: &Grants,
        services: Arc<dyn HostServices>,
    ) -> Result<Vec<(String, Value)>, CallError> {
        check_inputs(&self.description.inputs, &inputs)?;
        let config = config.to_string();
        let inputs: Vec<wit::NamedValue> = inputs
            .into_iter()
            .map(|(name, value)| wit::NamedValue {
                name,
                value: value.into_wit(),
            })
            .collect();
        let grants = grants.restricted_to(&self.description.capabilities);
        let mut store = new_store(rt, limits, grants, services);
        let pre = &self.pre;
        let result = guarded(&mut store, limits, async |store| {
            let node: Node = pre.instantiate_async(&mut *store).await?;
            node.weft_plugin_node_api()
                .call_run(&mut *store, &config, &inputs)
                .await
        })
        .await?;
        // The outputs are the host's now: the guest's memory and the inputs can go first.
        drop(store);
        drop(inputs);
        match result {
            Ok(outputs) => check_outputs(&self.description.outputs, outputs),
            Err(err) => Err(CallError::Node {
                kind: error_kind(err.kind).into(),
                // The SDK's refusals start with their kind: "denied: denied: ..." said it twice.
                message: cap(
                    match err
                        .message
                        .strip_prefix(&format!("{}: ", error_kind(err.kind)))
                    {
                        Some(rest) => rest.to_string(),
                        None => err.message,
                    },
                    MAX_MESSAGE,
                ),
                retryable: err.retryable,
            }),
        }
    }
}

fn error_kind(kind: wit::ErrorKind) -> &'static str {
    match kind {
        wit::ErrorKind::InvalidConfig => "invalid-config",
        wit::ErrorKind::InvalidInput => "invalid-input",
        wit::ErrorKind::Failed => "failed",
        wit::ErrorKind::Denied => "denied",
    }
}

/// Names of nodes and ports: what fits in a URL, a log line and a workflow file.
pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_'))
}

/// A `MAJOR.MINOR.PATCH` version with an optional `-pre` suffix.
pub(crate) fn valid_version(version: &str) -> bool {
    let core = version.split(['-', '+']).next().unwrap_or_default();
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
        && version.len() <= 64
}

fn convert_description(d: node_api::NodeDescription) -> Result<NodeDescription, LoadError> {
    let bad = |msg: String| LoadError::BadDescription(msg);
    if !valid_name(&d.name) {
        return Err(bad(format!(
            "name '{}' must be 1-64 characters of a-z, 0-9, '-', '_'",
            d.name
        )));
    }
    if !valid_version(&d.version) {
        return Err(bad(format!("version '{}' must look like 1.2.3", d.version)));
    }
    let ports = |ports: Vec<wit::Port>, side: &str| -> Result<Vec<Port>, LoadError> {
        let mut seen = HashSet::new();
        ports
            .into_iter()
            .map(|p| {
                if !valid_name(&p.name) || !seen.insert(p.name.clone()) {
                    return Err(bad(format!(
                        "{side} port '{}' is invalid or declared twice",
                        p.name
                    )));
                }
                Ok(Port {
                    name: p.name,
                    kind: ValueKind::from_wit(p.kind),
                    summary: cap(p.summary, MAX_SUMMARY),
                    optional: p.optional,
                })
            })
            .collect()
    };
    let config_schema: serde_json::Value = serde_json::from_str(&d.config_schema)
        .map_err(|e| bad(format!("config-schema is not JSON: {e}")))?;
    if !(config_schema.is_object() || config_schema.is_boolean()) {
        return Err(bad("config-schema must be a JSON Schema object".into()));
    }
    let capabilities = d
        .capabilities
        .iter()
        .map(|c| {
            Capability::parse(c).ok_or_else(|| {
                bad(format!(
                    "unknown capability '{c}' (known: http, secrets, artifacts, jobs)"
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(NodeDescription {
        inputs: ports(d.inputs, "input")?,
        outputs: ports(d.outputs, "output")?,
        name: d.name,
        version: d.version,
        summary: cap(d.summary, MAX_SUMMARY),
        config_schema,
        capabilities,
    })
}

fn check_inputs(declared: &[Port], inputs: &[(String, Value)]) -> Result<(), CallError> {
    let mut seen = HashSet::new();
    for (name, value) in inputs {
        let port = declared.iter().find(|p| &p.name == name).ok_or_else(|| {
            CallError::BadInputs(format!(
                "no input port '{name}' (declared: {})",
                port_names(declared)
            ))
        })?;
        if !seen.insert(name.as_str()) {
            return Err(CallError::BadInputs(format!("input '{name}' given twice")));
        }
        if !port.kind.accepts(value) {
            return Err(CallError::BadInputs(format!(
                "input '{name}' must be {:?}",
                port.kind
            )));
        }
    }
    if let Some(missing) = declared
        .iter()
        .find(|p| !p.optional && !seen.contains(p.name.as_str()))
    {
        return Err(CallError::BadInputs(format!(
            "required input '{}' is missing",
            missing.name
        )));
    }
    Ok(())
}

fn check_outputs(
    declared: &[Port],
    outputs: Vec<wit::NamedValue>,
) -> Result<Vec<(String, Value)>, CallError> {
    let mut checked = Vec::with_capacity(outputs.len());
    for output in outputs {
        let port = declared
            .iter()
            .find(|p| p.name == output.name)
            .ok_or_else(|| {
                CallError::BadOutputs(format!(
                    "the node produced undeclared output '{}' (declared: {})",
                    output.name,
                    port_names(declared)
                ))
            })?;
        if checked.iter().any(|(n, _)| n == &output.name) {
            return Err(CallError::BadOutputs(format!(
                "output '{}' produced twice",
                output.name
            )));
        }
        let value = Value::from_wit(output.value)
            .map_err(|e| CallError::BadOutputs(format!("output '{}' is {e}", output.name)))?;
        if !port.kind.accepts(&value) {
            return Err(CallError::BadOutputs(format!(
                "output '{}' must be {:?}",
                output.name, port.kind
            )));
        }
        checked.push((output.name, value));
    }
    if let Some(missing) = declared
        .iter()
        .find(|p| !p.optional && !checked.iter().any(|(n, _)| n == &p.name))
    {
        return Err(CallError::BadOutputs(format!(
            "required output '{}' was not produced",
            missing.name
        )));
    }
    Ok(checked)
}

/// Port names for messages: `a, b`, or `none`.
pub fn port_names(ports: &[Port]) -> String {
    if ports.is_empty() {
        return "none".into();
    }
    ports
        .iter()
        .map(|p| p.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_versions() {
        assert!(valid_name("json-transform"));
        assert!(!valid_name("Json"));
        assert!(!valid_name(""));
        assert!(!valid_name("a/b"));
        assert!(valid_version("1.2.3"));
        assert!(valid_version("0.1.0-beta.1"));
        assert!(!valid_version("1.2"));
        assert!(!valid_version("v1.2.3"));
    }

    #[test]
    fn inputs_are_checked_against_ports() {
        let ports = vec![
            Port {
                name: "a".into(),
                kind: ValueKind::Number,
                summary: String::new(),
                optional: false,
            },
            Port {
                name: "b".into(),
                kind: ValueKind::Any,
                summary: String::new(),
                optional: true,
            },
        ];
        let n = |v: serde_json::Value| Value::from_json(&v);
        assert!(check_inputs(&ports, &[("a".into(), n(1.into()))]).is_ok());
        let err = check_inputs(&ports, &[]).unwrap_err().to_string();
        assert!(err.contains("required input 'a'"), "{err}");
        let err = check_inputs(&ports, &[("a".into(), n("x".into()))])
            .unwrap_err()
            .to_string();
        assert!(err.contains("must be Number"), "{err}");
        let err = check_inputs(&ports, &[("c".into(), n(1.into()))])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no input port 'c'") && err.contains("a, b"),
            "{err}"
        );
    }
}
