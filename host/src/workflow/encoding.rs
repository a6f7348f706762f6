//! How a node's inputs and outputs are stored: an object of port -> value with each value's kind
//! outside it, `{"json": <any JSON>}` or `{"bytes": "<base64>"}`, so what a run reads back after a
//! restart is exactly what the node produced. The API's way of showing bytes inside JSON
//! (`{"$bytes": "<base64>"}`) cannot tell such bytes from a JSON object of that shape, so it is
//! never used for storage.
//!
//! Rows written before this encoding (`run_nodes.value_format` 1) hold the API's form and are
//! read as they always were.
//!
//! Not here: the queries (see `records`).

use crate::error::{Error, Result};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use weft_runtime::Value;

/// Port name -> value, as stored for one node.
pub type PortValues = BTreeMap<String, Value>;

/// The old encoding: plain JSON, bytes as `{"$bytes": "<base64>"}`.
pub const LEGACY: i64 = 1;
/// The kind outside the value.
pub const TAGGED: i64 = 2;

#[derive(Serialize)]
#[serde(rename_all = "lowercase")]
enum TaggedRef<'a> {
    Json(&'a serde_json::Value),
    Bytes(String),
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
enum Tagged {
    Json(serde_json::Value),
    Bytes(String),
}

/// The stored text of `values` (in the [`TAGGED`] encoding).
pub fn encode<'a>(values: impl IntoIterator<Item = (&'a String, &'a Value)>) -> String {
    let tagged: BTreeMap<&str, TaggedRef<'_>> = values
        .into_iter()
        .map(|(port, value)| {
            let tagged = match value {
                Value::Json(json) => TaggedRef::Json(json),
                Value::Bytes(bytes) => {
                    TaggedRef::Bytes(base64::engine::general_purpose::STANDARD.encode(bytes))
                }
            };
            (port.as_str(), tagged)
        })
        .collect();
    serde_json::to_string(&tagged).expect("stored values serialise")
}

/// The values stored as `text` in encoding `format`.
pub fn decode(text: &str, format: i64) -> Result<PortValues> {
    let unreadable = |e: &dyn std::fmt::Display| {
        Error::internal(format!("stored node values are unreadable: {e}"))
    };
    match format {
        LEGACY => serde_json::from_str(text).map_err(|e| unreadable(&e)),
        TAGGED => {
            let tagged: BTreeMap<String, Tagged> =
                serde_json::from_str(text).map_err(|e| unreadable(&e))?;
            tagged
                .into_iter()
                .map(|(port, value)| {
                    let value = match value {
                        Tagged::Json(json) => Value::Json(json),
                        Tagged::Bytes(text) => Value::Bytes(
                            base64::engine::general_purpose::STANDARD
                                .decode(text)
                                .map_err(|e| unreadable(&e))?,
                        ),
                    };
                    Ok((port, value))
                })
                .collect()
        }
        other => Err(Error::internal(format!(
            "stored node values use encoding {other}, which this host does not know"
        ))
        .hint("a newer Weft wrote this run; run that version or newer")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn every_kind() -> PortValues {
        [
            ("null", Value::Json(json!(null))),
            ("bool", Value::Json(json!(true))),
            ("int", Value::Json(json!(-9_007_199_254_740_993_i64))),
            ("uint", Value::Json(json!(u64::MAX))),
            ("float", Value::Json(json!(1.5e300))),
            ("string", Value::Json(json!("{\"$bytes\": \"AQI=\"}"))),
            (
                "array",
                Value::Json(json!([1, "two", null, {"$bytes": "AQI="}])),
            ),
            ("object", Value::Json(json!({"a": {"b": [1]}}))),
            ("tag_like", Value::Json(json!({"$bytes": "AQI="}))),
            ("tag_like_bad", Value::Json(json!({"$bytes": "!!"}))),
            ("new_tag_like", Value::Json(json!({"bytes": "AQI="}))),
            ("bytes", Value::Bytes(vec![0, 1, 2, 255])),
            ("empty_bytes", Value::Bytes(Vec::new())),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    #[test]
    fn every_kind_reads_back_as_written() {
        let values = every_kind();
        let text = encode(&values);
        assert_eq!(decode(&text, TAGGED).unwrap(), values);
    }

    #[test]
    fn the_kind_is_outside_the_value() {
        let values: PortValues = [
            ("a".to_string(), Value::Json(json!({"$bytes": "AQI="}))),
            ("b".to_string(), Value::Bytes(vec![1, 2])),
        ]
        .into();
        let stored: serde_json::Value = serde_json::from_str(&encode(&values)).unwrap();
        assert_eq!(
            stored,
            json!({"a": {"json": {"$bytes": "AQI="}}, "b": {"bytes": "AQI="}})
        );
    }

    #[test]
    fn old_rows_read_as_before() {
        let old = r#"{"out": 3, "raw": {"$bytes": "AQI="}, "obj": {"a": 1}}"#;
        let values = decode(old, LEGACY).unwrap();
        assert_eq!(values["out"], Value::Json(json!(3)));
        assert_eq!(values["raw"], Value::Bytes(vec![1, 2]));
        assert_eq!(values["obj"], Value::Json(json!({"a": 1})));
    }

    #[test]
    fn unknown_encodings_and_broken_text_are_errors() {
        assert!(decode("{}", 3).is_err());
        assert!(decode(r#"{"a": {"bytes": "!!"}}"#, TAGGED).is_err());
        assert!(decode(r#"{"a": {"text": 1}}"#, TAGGED).is_err());
        assert!(decode(r#"{"a": 1}"#, TAGGED).is_err());
    }
}
