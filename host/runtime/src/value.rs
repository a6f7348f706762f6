//! Values on ports and the kinds ports declare.
//!
//! A value stays as compact as it crossed the boundary: JSON as its text (checked once, never
//! parsed into a tree, which would take 16-30 times the text's size), bytes as bytes. Both are
//! shared, so passing a value on is a pointer copy.

use crate::bindings::node::weft::plugin::types as wit;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::sync::Arc;

/// A value flowing along a workflow edge. As JSON, bytes are `{"$bytes": "<base64>"}`.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Any JSON document, as its text.
    Json(Json),
    /// Raw bytes.
    Bytes(bytes::Bytes),
}

/// A JSON document kept as its text, with its kind noted when it was checked. Two documents
/// are equal when their texts are.
#[derive(Debug, Clone)]
pub struct Json {
    /// Boxed inside the `Arc`: `Arc::from(Box<RawValue>)` would copy the text.
    text: Arc<Box<RawValue>>,
    kind: JsonKind,
}

/// What a JSON document is at its top level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JsonKind {
    Null,
    Boolean,
    Integer,
    Number,
    String,
    Array,
    Object,
}

impl Json {
    /// Checks `text` is one JSON document; keeps it without copying unless it has surrounding
    /// whitespace.
    pub fn from_text(text: String) -> Result<Self, serde_json::Error> {
        Ok(RawValue::from_string(text)?.into())
    }

    /// The document's text.
    pub fn text(&self) -> &str {
        self.text.get()
    }

    /// The document's text, for serialising as it is.
    pub fn raw(&self) -> &RawValue {
        &self.text
    }
}

impl From<Box<RawValue>> for Json {
    /// A document serde_json already checked, kept as it is.
    fn from(raw: Box<RawValue>) -> Self {
        let text = raw.get();
        let kind = match text.as_bytes().first() {
            Some(b'n') => JsonKind::Null,
            Some(b't' | b'f') => JsonKind::Boolean,
            Some(b'"') => JsonKind::String,
            Some(b'[') => JsonKind::Array,
            Some(b'{') => JsonKind::Object,
            _ => match serde_json::from_str::<serde_json::Number>(text) {
                Ok(n) if n.is_i64() || n.is_u64() => JsonKind::Integer,
                _ => JsonKind::Number,
            },
        };
        Self {
            text: Arc::new(raw),
            kind,
        }
    }
}

impl PartialEq for Json {
    fn eq(&self, other: &Self) -> bool {
        self.text() == other.text()
    }
}

const BYTES_KEY: &str = "$bytes";

/// The JSON form of bytes: an object with the single key `$bytes`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BytesForm {
    #[serde(rename = "$bytes")]
    bytes: String,
}

impl Serialize for Value {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Json(json) => json.text.serialize(s),
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
        let raw = Box::<RawValue>::deserialize(d)?;
        if raw.get().starts_with('{')
            && let Ok(form) = serde_json::from_str::<BytesForm>(raw.get())
        {
            use base64::Engine as _;
            return base64::engine::general_purpose::STANDARD
                .decode(form.bytes)
                .map(|b| Value::Bytes(b.into()))
                .map_err(|e| serde::de::Error::custom(format!("invalid base64 in $bytes: {e}")));
        }
        Ok(Value::Json(raw.into()))
    }
}

/// What a port carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ValueKind {
    /// Anything, JSON or bytes.
    Any,
    /// JSON `null`.
    Null,
    /// JSON `true` or `false`.
    Boolean,
    /// Any JSON number.
    Number,
    /// A JSON number without a fractional part.
    Integer,
    /// A JSON string.
    String,
    /// A JSON array.
    Array,
    /// A JSON object.
    Object,
    /// Raw bytes.
    Bytes,
}

impl ValueKind {
    /// Whether `value` is of this kind.
    pub fn accepts(self, value: &Value) -> bool {
        match (self, value) {
            (ValueKind::Any, _) => true,
            (ValueKind::Bytes, Value::Bytes(_)) => true,
            (_, Value::Bytes(_)) | (ValueKind::Bytes, _) => false,
            (kind, Value::Json(json)) => match kind {
                ValueKind::Null => json.kind == JsonKind::Null,
                ValueKind::Boolean => json.kind == JsonKind::Boolean,
                ValueKind::Number => matches!(json.kind, JsonKind::Number | JsonKind::Integer),
                ValueKind::Integer => json.kind == JsonKind::Integer,
                ValueKind::String => json.kind == JsonKind::String,
                ValueKind::Array => json.kind == JsonKind::Array,
                ValueKind::Object => json.kind == JsonKind::Object,
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
    /// A JSON value from a parsed document (for values that are small or already parsed).
    pub fn from_json(json: &serde_json::Value) -> Self {
        let raw = serde_json::value::to_raw_value(json).expect("a JSON value serialises");
        Value::Json(raw.into())
    }

    /// JSON text, checked.
    pub fn json_text(text: String) -> Result<Self, serde_json::Error> {
        Json::from_text(text).map(Value::Json)
    }

    /// Its size: the bytes of its JSON text, or of its bytes.
    pub fn len(&self) -> usize {
        match self {
            Value::Json(json) => json.text().len(),
            Value::Bytes(bytes) => bytes.len(),
        }
    }

    /// Whether it is empty bytes (JSON text is never empty).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Its JSON text or its bytes, shared rather than copied.
    pub fn to_bytes(&self) -> bytes::Bytes {
        /// A JSON text seen as bytes.
        struct Text(Arc<Box<RawValue>>);
        impl AsRef<[u8]> for Text {
            fn as_ref(&self) -> &[u8] {
                self.0.get().as_bytes()
            }
        }
        match self {
            Value::Json(json) => bytes::Bytes::from_owner(Text(json.text.clone())),
            Value::Bytes(bytes) => bytes.clone(),
        }
    }

    /// The value for the guest: moved when nothing else holds it, copied otherwise.
    pub(crate) fn into_wit(self) -> wit::Value {
        match self {
            Value::Json(json) => wit::Value::Json(match Arc::try_unwrap(json.text) {
                Ok(raw) => String::from(Box::<str>::from(raw)),
                Err(shared) => shared.get().to_string(),
            }),
            Value::Bytes(bytes) => wit::Value::Bytes(Vec::from(bytes)),
        }
    }

    pub(crate) fn from_wit(value: wit::Value) -> Result<Self, String> {
        match value {
            wit::Value::Json(text) => {
                Value::json_text(text).map_err(|e| format!("not valid JSON: {e}"))
            }
            wit::Value::Bytes(bytes) => Ok(Value::Bytes(bytes.into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kinds_accept_their_values_only() {
        let int = Value::from_json(&json!(3));
        let float = Value::from_json(&json!(3.5));
        let big = Value::json_text("18446744073709551615".into()).unwrap();
        assert!(ValueKind::Integer.accepts(&int));
        assert!(ValueKind::Integer.accepts(&big));
        assert!(!ValueKind::Integer.accepts(&float));
        assert!(ValueKind::Number.accepts(&float));
        assert!(ValueKind::Number.accepts(&int));
        assert!(!ValueKind::String.accepts(&int));
        assert!(ValueKind::Any.accepts(&Value::Bytes(vec![1].into())));
        assert!(!ValueKind::Object.accepts(&Value::Bytes(vec![1].into())));
        for (text, kind) in [
            ("null", ValueKind::Null),
            (" true ", ValueKind::Boolean),
            ("\"x\"", ValueKind::String),
            ("[1]", ValueKind::Array),
            ("{\"a\": []}", ValueKind::Object),
            ("-1e3", ValueKind::Number),
        ] {
            let value = Value::json_text(text.into()).unwrap();
            assert!(kind.accepts(&value), "{text} is {kind:?}");
            assert!(!ValueKind::Bytes.accepts(&value), "{text}");
        }
        assert!(ValueKind::Integer.fits(ValueKind::Number));
        assert!(!ValueKind::Number.fits(ValueKind::Integer));
        assert!(!ValueKind::Bytes.fits(ValueKind::Object));
    }

    #[test]
    fn json_text_is_checked_and_kept_as_is() {
        for bad in ["", "[1,", "1 2", "{\"a\":1}x", "nul"] {
            assert!(Value::json_text(bad.into()).is_err(), "{bad:?}");
        }
        let value = Value::json_text("[0,0, 0]".into()).unwrap();
        assert_eq!(value.len(), 8);
        assert_eq!(serde_json::to_string(&value).unwrap(), "[0,0, 0]");
    }

    #[test]
    fn values_serialise_as_plain_json_or_marked_bytes() {
        let v: Value = serde_json::from_value(json!({"$bytes": "AQI="})).unwrap();
        assert_eq!(v, Value::Bytes(vec![1, 2].into()));
        let v: Value = serde_json::from_str(r#"{"$bytes": "AQI="}"#).unwrap();
        assert_eq!(v, Value::Bytes(vec![1, 2].into()));
        let v: Value = serde_json::from_value(json!({"a": 1})).unwrap();
        assert_eq!(v, Value::from_json(&json!({"a": 1})));
        let v: Value = serde_json::from_value(json!({"$bytes": "AQI=", "b": 1})).unwrap();
        assert!(ValueKind::Object.accepts(&v));
        assert_eq!(
            serde_json::to_value(Value::Bytes(vec![1, 2].into())).unwrap(),
            json!({"$bytes": "AQI="})
        );
        assert!(serde_json::from_value::<Value>(json!({"$bytes": "!!"})).is_err());
    }
}
