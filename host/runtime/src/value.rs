//! Values on ports and the kinds ports declare.

use crate::bindings::node::weft::plugin::types as wit;
use serde::{Deserialize, Serialize};

/// A value flowing along a workflow edge. As JSON, bytes are `{"$bytes": "<base64>"}`.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Any JSON document.
    Json(serde_json::Value),
    /// Raw bytes.
    Bytes(Vec<u8>),
}

const BYTES_KEY: &str = "$bytes";

impl Serialize for Value {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Json(json) => json.serialize(s),
            Value::Bytes(bytes) => {
                use base64::Engine as _;
                let text = base64::engine::general_purpose::STANDARD.encode(bytes);
                serde_json::json!({ BYTES_KEY: text }).serialize(s)
            }
        }
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let json = serde_json::Value::deserialize(d)?;
        if let Some(serde_json::Value::String(text)) = json.get(BYTES_KEY)
            && json.as_object().is_some_and(|o| o.len() == 1)
        {
            use base64::Engine as _;
            return base64::engine::general_purpose::STANDARD
                .decode(text)
                .map(Value::Bytes)
                .map_err(|e| serde::de::Error::custom(format!("invalid base64 in $bytes: {e}")));
        }
        Ok(Value::Json(json))
    }
}

/// What a port carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ValueKind {
    Any,
    Null,
    Boolean,
    Number,
    Integer,
    String,
    Array,
    Object,
    Bytes,
}

impl ValueKind {
    /// Whether `value` is of this kind.
    pub fn accepts(self, value: &Value) -> bool {
        use serde_json::Value as J;
        match (self, value) {
            (ValueKind::Any, _) => true,
            (ValueKind::Bytes, Value::Bytes(_)) => true,
            (_, Value::Bytes(_)) | (ValueKind::Bytes, _) => false,
            (kind, Value::Json(json)) => match kind {
                ValueKind::Null => json.is_null(),
                ValueKind::Boolean => json.is_boolean(),
                ValueKind::Number => json.is_number(),
                ValueKind::Integer => json.is_i64() || json.is_u64(),
                ValueKind::String => json.is_string(),
                ValueKind::Array => json.is_array(),
                ValueKind::Object => matches!(json, J::Object(_)),
                ValueKind::Any | ValueKind::Bytes => unreachable!("handled above"),
            },
        }
    }

    /// Whether a value produced on a port of kind `self` always fits a port of kind `target`.
    pub fn fits(self, target: ValueKind) -> bool {
        self == target
            || target == ValueKind::Any
            || (self == ValueKind::Integer && target == ValueKind::Number)
            || (self == ValueKind::Any && target != ValueKind::Bytes)
    }

    pub(crate) fn from_wit(kind: wit::ValueKind) -> Self {
        match kind {
            wit::ValueKind::Any => ValueKind::Any,
            wit::ValueKind::Null => ValueKind::Null,
            wit::ValueKind::Boolean => ValueKind::Boolean,
            wit::ValueKind::Number => ValueKind::Number,
            wit::ValueKind::Integer => ValueKind::Integer,
            wit::ValueKind::String => ValueKind::String,
            wit::ValueKind::Array => ValueKind::Array,
            wit::ValueKind::Object => ValueKind::Object,
            wit::ValueKind::Bytes => ValueKind::Bytes,
        }
    }
}

impl Value {
    pub(crate) fn to_wit(&self) -> wit::Value {
        match self {
            Value::Json(json) => wit::Value::Json(json.to_string()),
            Value::Bytes(bytes) => wit::Value::Bytes(bytes.clone()),
        }
    }

    pub(crate) fn from_wit(value: wit::Value) -> Result<Self, String> {
        match value {
            wit::Value::Json(text) => serde_json::from_str(&text)
                .map(Value::Json)
                .map_err(|e| format!("not valid JSON: {e}")),
            wit::Value::Bytes(bytes) => Ok(Value::Bytes(bytes)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kinds_accept_their_values_only() {
        let int = Value::Json(json!(3));
        let float = Value::Json(json!(3.5));
        assert!(ValueKind::Integer.accepts(&int));
        assert!(!ValueKind::Integer.accepts(&float));
        assert!(ValueKind::Number.accepts(&float));
        assert!(!ValueKind::String.accepts(&int));
        assert!(ValueKind::Any.accepts(&Value::Bytes(vec![1])));
        assert!(!ValueKind::Object.accepts(&Value::Bytes(vec![1])));
        assert!(ValueKind::Integer.fits(ValueKind::Number));
        assert!(!ValueKind::Number.fits(ValueKind::Integer));
        assert!(!ValueKind::Bytes.fits(ValueKind::Object));
    }

    #[test]
    fn values_serialise_as_plain_json_or_marked_bytes() {
        let v: Value = serde_json::from_value(json!({"$bytes": "AQI="})).unwrap();
        assert_eq!(v, Value::Bytes(vec![1, 2]));
        let v: Value = serde_json::from_value(json!({"a": 1})).unwrap();
        assert_eq!(v, Value::Json(json!({"a": 1})));
        assert_eq!(
            serde_json::to_value(Value::Bytes(vec![1, 2])).unwrap(),
            json!({"$bytes": "AQI="})
        );
        assert!(serde_json::from_value::<Value>(json!({"$bytes": "!!"})).is_err());
    }
}
