//! The inputs a node receives and the outputs it returns.

use serde::de::DeserializeOwned;

use super::{NamedValue, NodeError, Value};

/// The values on a node's connected input ports.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    values: Vec<NamedValue>,
}

impl Inputs {
    /// Wraps the values of a run; built by the export glue, or by tests.
    pub fn new(values: Vec<NamedValue>) -> Self {
        Self { values }
    }

    /// The raw value on port `name`, JSON text or bytes.
    pub fn value(&self, name: &str) -> Option<&Value> {
        self.values
            .iter()
            .find(|v| v.name == name)
            .map(|v| &v.value)
    }

    /// The JSON value on port `name`, or `None` when the port is unconnected.
    pub fn opt_json(&self, name: &str) -> Result<Option<serde_json::Value>, NodeError> {
        self.opt(name)
    }

    /// The JSON value on the required port `name`.
    pub fn get_json(&self, name: &str) -> Result<serde_json::Value, NodeError> {
        self.get(name)
    }

    /// The value on port `name` deserialised into `T`, or `None` when the port is unconnected.
    pub fn opt<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>, NodeError> {
        match self.value(name) {
            None => Ok(None),
            Some(Value::Json(text)) => serde_json::from_str(text)
                .map(Some)
                .map_err(|err| NodeError::invalid_input(format!("input `{name}`: {err}"))),
            Some(Value::Bytes(_)) => Err(NodeError::invalid_input(format!(
                "input `{name}` carries bytes where JSON was expected"
            ))),
        }
    }

    /// The value on the required port `name` deserialised into `T`.
    pub fn get<T: DeserializeOwned>(&self, name: &str) -> Result<T, NodeError> {
        self.opt(name)?
            .ok_or_else(|| NodeError::invalid_input(format!("missing input `{name}`")))
    }

    /// All values, in the order the host sent them.
    pub fn iter(&self) -> impl Iterator<Item = &NamedValue> {
        self.values.iter()
    }
}

impl IntoIterator for Inputs {
    type Item = NamedValue;
    type IntoIter = std::vec::IntoIter<NamedValue>;

    fn into_iter(self) -> Self::IntoIter {
        self.values.into_iter()
    }
}

/// The values a node produces, by output port name.
#[derive(Debug, Clone, Default)]
pub struct Outputs {
    values: Vec<NamedValue>,
}

impl Outputs {
    /// No outputs yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets port `name` to a JSON value (anything `serde_json::Value` converts from,
    /// such as numbers, strings, booleans, vectors or `json!(...)`).
    pub fn json(self, name: &str, value: impl Into<serde_json::Value>) -> Self {
        self.value(name, Value::Json(value.into().to_string()))
    }

    /// Sets port `name` to raw bytes.
    pub fn bytes(self, name: &str, bytes: impl Into<Vec<u8>>) -> Self {
        self.value(name, Value::Bytes(bytes.into()))
    }

    /// Sets port `name` to a raw value, replacing an earlier one.
    pub fn value(mut self, name: &str, value: Value) -> Self {
        self.values.retain(|v| v.name != name);
        self.values.push(NamedValue {
            name: name.into(),
            value,
        });
        self
    }

    /// The value set on port `name`, if any.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.values
            .iter()
            .find(|v| v.name == name)
            .map(|v| &v.value)
    }
}

impl From<Outputs> for Vec<NamedValue> {
    fn from(outputs: Outputs) -> Self {
        outputs.values
    }
}
