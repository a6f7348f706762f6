//! Builders for the node description and its ports.

use super::{Description, Kind, Port};

impl Description {
    /// A description with no ports, an empty-object config schema and no capabilities.
    pub fn new(name: &str, version: &str, summary: &str) -> Self {
        Self {
            name: name.into(),
            version: version.into(),
            summary: summary.into(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            config_schema: r#"{"type":"object"}"#.into(),
            capabilities: Vec::new(),
        }
    }

    /// Adds an input port.
    pub fn input(mut self, port: Port) -> Self {
        self.inputs.push(port);
        self
    }

    /// Adds an output port.
    pub fn output(mut self, port: Port) -> Self {
        self.outputs.push(port);
        self
    }

    /// Sets the JSON Schema the config must match.
    pub fn config_schema(mut self, schema: serde_json::Value) -> Self {
        self.config_schema = schema.to_string();
        self
    }

    /// Declares a host capability the node needs: `"http"`, `"secrets"`, `"artifacts"` or `"jobs"`.
    pub fn capability(mut self, capability: &str) -> Self {
        self.capabilities.push(capability.into());
        self
    }
}

impl Port {
    /// A required port without summary.
    pub fn new(name: &str, kind: Kind) -> Self {
        Self {
            name: name.into(),
            kind,
            summary: String::new(),
            optional: false,
        }
    }

    /// Sets the one-line summary.
    pub fn summary(mut self, summary: &str) -> Self {
        self.summary = summary.into();
        self
    }

    /// Marks the port optional: an input may stay unconnected, an output unproduced.
    pub fn optional(mut self) -> Self {
        self.optional = true;
        self
    }
}
