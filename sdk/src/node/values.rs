//! The inputs a node receives and the outputs it returns.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{NamedValue, NodeError, Value};

/// The values on a node's connected input ports.
///
/// Unconnected ports are simply absent. In tests, build inputs with [`Inputs::new`] and
/// [`Inputs::json`] / [`Inputs::bytes`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Inputs {
    values: Vec<NamedValue>,
}

impl Inputs {
    /// No inputs.
    pub fn new() -> Self {
        Self::default()
    }

    /// Wraps the values of a run as the host sent them.
    pub fn from_values(values: Vec<NamedValue>) -> Self {
        Self { values }
    }

    /// Adds (or replaces) a JSON value on port `name`; for building inputs in tests.
    pub fn json(self, name: &str, value: impl Into<serde_json::Value>) -> Self {
        self.with(name, Value::Json(value.into().to_string()))
    }

    /// Adds (or replaces) raw bytes on port `name`; for building inputs in tests.
    pub fn bytes(self, name: &str, bytes: impl Into<Vec<u8>>) -> Self {
        self.with(name, Value::Bytes(bytes.into()))
    }

    /// Adds (or replaces) a raw value on port `name`.
    pub fn with(mut self, name: &str, value: Value) -> Self {
        self.values.retain(|v| v.name != name);
        self.values.push(NamedValue {
            name: name.into(),
            value,
        });
        self
    }

    /// Whether port `name` carries a value.
    pub fn has(&self, name: &str) -> bool {
        self.value(name).is_some()
    }

    /// The raw value on port `name`, JSON text or bytes.
    pub fn value(&self, name: &str) -> Option<&Value> {
        self.values
            .iter()
            .find(|v| v.name == name)
            .map(|v| &v.value)
    }

    /// The value on port `name` deserialised into `T`, or `None` when the port is unconnected.
    /// A value that does not fit `T` (or bytes) is an `invalid-input` error naming the port.
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

    /// The value on the required port `name` deserialised into `T`; a missing value is an
    /// `invalid-input` error.
    pub fn get<T: DeserializeOwned>(&self, name: &str) -> Result<T, NodeError> {
        self.opt(name)?
            .ok_or_else(|| NodeError::invalid_input(format!("missing input `{name}`")))
    }

    /// The JSON value on port `name`, or `None` when the port is unconnected.
    pub fn opt_json(&self, name: &str) -> Result<Option<serde_json::Value>, NodeError> {
        self.opt(name)
    }

    /// The JSON value on the required port `name`.
    pub fn get_json(&self, name: &str) -> Result<serde_json::Value, NodeError> {
        self.get(name)
    }

    /// The bytes on port `name`, or `None` when unconnected. A JSON string is accepted too
    /// (as its UTF-8 bytes); other JSON values are an `invalid-input` error.
    pub fn opt_bytes(&self, name: &str) -> Result<Option<Vec<u8>>, NodeError> {
        match self.value(name) {
            None => Ok(None),
            Some(Value::Bytes(bytes)) => Ok(Some(bytes.clone())),
            Some(Value::Json(text)) => match serde_json::from_str::<serde_json::Value>(text) {
                Ok(serde_json::Value::String(s)) => Ok(Some(s.into_bytes())),
                _ => Err(NodeError::invalid_input(format!(
                    "input `{name}` carries JSON where bytes (or a string) were expected"
                ))),
            },
        }
    }

    /// The bytes on the required port `name`.
    pub fn get_bytes(&self, name: &str) -> Result<Vec<u8>, NodeError> {
        self.opt_bytes(name)?
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
///
/// Every output the node declared and did not mark optional must be set; the host checks
/// names and kinds against the description.
#[derive(Debug, Clone, Default, PartialEq)]
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

    /// Sets port `name` to any serialisable value.
    pub fn serialize<T: Serialize + ?Sized>(
        self,
        name: &str,
        value: &T,
    ) -> Result<Self, NodeError> {
        let text = serde_json::to_string(value)
            .map_err(|err| NodeError::failed(format!("output `{name}`: {err}")))?;
        Ok(self.value(name, Value::Json(text)))
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

    /// The JSON value set on port `name`, if any (and if it is JSON); for tests.
    pub fn get_json(&self, name: &str) -> Option<serde_json::Value> {
        match self.get(name)? {
            Value::Json(text) => serde_json::from_str(text).ok(),
            Value::Bytes(_) => None,
        }
    }

    /// The names of the ports set, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.values.iter().map(|v| v.name.as_str())
    }

    /// How many ports are set.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether no port is set.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

impl From<Outputs> for Vec<NamedValue> {
    fn from(outputs: Outputs) -> Self {
        outputs.values
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::ErrorKind;
    use serde_json::json;

    #[test]
    fn inputs_read_typed_json_and_bytes() {
        let inputs = Inputs::new()
            .json("n", 5)
            .json("s", "hi")
            .bytes("b", vec![1, 2]);
        assert_eq!(inputs.get::<u32>("n").unwrap(), 5);
        assert_eq!(inputs.opt::<u32>("missing").unwrap(), None);
        assert_eq!(inputs.get_bytes("b").unwrap(), [1, 2]);
        assert_eq!(inputs.get_bytes("s").unwrap(), b"hi");
        assert!(inputs.has("s") && !inputs.has("x"));

        let err = inputs.get::<u32>("s").unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidInput);
        assert!(err.message.contains("input `s`"), "{}", err.message);
        assert!(inputs.get_json("b").unwrap_err().message.contains("bytes"));
        assert!(inputs.get_bytes("n").is_err());
        assert!(
            inputs
                .get_json("x")
                .unwrap_err()
                .message
                .contains("missing input `x`")
        );
    }

    #[test]
    fn outputs_replace_and_read_back() {
        let out = Outputs::new()
            .json("a", 1)
            .json("a", json!({"k": [1]}))
            .bytes("b", *b"xy")
            .serialize("c", &vec!["p", "q"])
            .unwrap();
        assert_eq!(out.len(), 3);
        assert_eq!(out.get_json("a"), Some(json!({"k": [1]})));
        assert_eq!(out.get("b"), Some(&Value::Bytes(b"xy".to_vec())));
        assert_eq!(out.get_json("c"), Some(json!(["p", "q"])));
        assert_eq!(out.names().collect::<Vec<_>>(), ["a", "b", "c"]);
    }
}
