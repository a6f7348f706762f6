//! How a node's inputs and outputs are stored: an object of port -> value with each value's kind
//! outside it, `{"json": <any JSON>}` or `{"bytes": "<base64>"}`, so what a run reads back after a
//! restart is exactly what the node produced. A value kept out of line (see [`super::values`])
//! is `{"stored": {"kind", "size", "node", "port"}}`. The API's way of showing bytes inside JSON
//! (`{"$bytes": "<base64>"}`) cannot tell such bytes from a JSON object of that shape, so it is
//! never used for storage.
//!
//! Rows written before this encoding (`run_nodes.value_format` 1) hold the API's form and are
//! read as they always were.
//!
//! Not here: the queries (see `records`).

use super::values::{Held, Stored};
use crate::error::{Error, Result};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::collections::BTreeMap;
use weft_runtime::Value;

/// Port name -> value, as stored for one node.
pub(super) type PortValues = BTreeMap<String, Held>;

/// The old encoding: plain JSON, bytes as `{"$bytes": "<base64>"}`.
pub(super) const LEGACY: i64 = 1;
/// The kind outside the value.
pub(super) const TAGGED: i64 = 2;

#[derive(Serialize)]
#[serde(rename_all = "lowercase")]
enum TaggedRef<'a> {
    /// JSON as its text: stored as it came, never parsed into a tree.
    Json(&'a RawValue),
    Bytes(String),
    Stored(&'a Stored),
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
enum Tagged {
    Json(Box<RawValue>),
    Bytes(String),
    Stored(Stored),
}

/// The stored text of `values` (in the [`TAGGED`] encoding).
pub(super) fn encode<'a>(values: impl IntoIterator<Item = (&'a String, &'a Held)>) -> String {
    let tagged: BTreeMap<&str, TaggedRef<'_>> = values
        .into_iter()
        .map(|(port, held)| {
            let tagged = match held {
                Held::Inline(Value::Json(json)) => TaggedRef::Json(json.raw()),
                Held::Inline(Value::Bytes(bytes)) => {
                    TaggedRef::Bytes(base64::engine::general_purpose::STANDARD.encode(bytes))
                }
                Held::Stored(stored) => TaggedRef::Stored(stored),
            };
            (port.as_str(), tagged)
        })
        .collect();
    serde_json::to_string(&tagged).expect("stored values serialise")
}

/// The values stored as `text` in encoding `format`.
pub(super) fn decode(text: &str, format: i64) -> Result<PortValues> {
    let unreadable = |e: &dyn std::fmt::Display| {
        Error::internal(format!("stored node values are unreadable: {e}"))
    };
    match format {
        LEGACY => serde_json::from_str::<BTreeMap<String, Value>>(text)
            .map(|values| {
                values
                    .into_iter()
                    .map(|(port, value)| (port, Held::Inline(value)))
                    .collect()
            })
            .map_err(|e| unreadable(&e)),
        TAGGED => {
            let tagged: BTreeMap<String, Tagged> =
                serde_json::from_str(text).map_err(|e| unreadable(&e))?;
            tagged
                .into_iter()
                .map(|(port, value)| {
                    let value = match value {
                        Tagged::Json(json) => Held::Inline(Value::Json(json.into())),
                        Tagged::Bytes(text) => Held::Inline(Value::Bytes(
                            base64::engine::general_purpose::STANDARD
                                .decode(text)
                                .map_err(|e| unreadable(&e))?
                                .into(),
                        )),
                        Tagged::Stored(stored) => Held::Stored(stored),
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
    use crate::workflow::values::StoredKind;
    use serde_json::json;

    fn json(value: serde_json::Value) -> Held {
        Held::Inline(Value::from_json(&value))
    }

    fn bytes(bytes: &[u8]) -> Held {
        Held::Inline(Value::Bytes(bytes.to_vec().into()))
    }

    fn every_kind() -> PortValues {
        [
            ("null", json(json!(null))),
            ("bool", json(json!(true))),
            ("int", json(json!(-9_007_199_254_740_993_i64))),
            ("uint", json(json!(u64::MAX))),
            ("float", json(json!(1.5e300))),
            ("string", json(json!("{\"$bytes\": \"AQI=\"}"))),
            ("array", json(json!([1, "two", null, {"$bytes": "AQI="}]))),
            ("object", json(json!({"a": {"b": [1]}}))),
            ("tag_like", json(json!({"$bytes": "AQI="}))),
            ("tag_like_bad", json(json!({"$bytes": "!!"}))),
            ("new_tag_like", json(json!({"bytes": "AQI="}))),
            ("stored_like", json(json!({"stored": {"kind": "json"}}))),
            ("bytes", bytes(&[0, 1, 2, 255])),
            ("empty_bytes", bytes(&[])),
            (
                "stored",
                Held::Stored(Stored {
                    kind: StoredKind::Json,
                    size: 40_000_001,
                    node: "big".into(),
                    port: "out".into(),
                }),
            ),
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
            ("a".to_string(), json(json!({"$bytes": "AQI="}))),
            ("b".to_string(), bytes(&[1, 2])),
            (
                "c".to_string(),
                Held::Stored(Stored {
                    kind: StoredKind::Bytes,
                    size: 9,
                    node: "n".into(),
                    port: "out".into(),
                }),
            ),
        ]
        .into();
        let stored: serde_json::Value = serde_json::from_str(&encode(&values)).unwrap();
        assert_eq!(
            stored,
            json!({"a": {"json": {"$bytes": "AQI="}}, "b": {"bytes": "AQI="},
                   "c": {"stored": {"kind": "bytes", "size": 9, "node": "n", "port": "out"}}})
        );
    }

    #[test]
    fn old_rows_read_as_before() {
        let old = r#"{"out": 3, "raw": {"$bytes": "AQI="}, "obj": {"a": 1}}"#;
        let values = decode(old, LEGACY).unwrap();
        assert_eq!(values["out"], json(json!(3)));
        assert_eq!(values["raw"], bytes(&[1, 2]));
        // Kept as written (JSON values are compared by their text).
        let Held::Inline(Value::Json(obj)) = &values["obj"] else {
            panic!("{:?}", values["obj"])
        };
        assert_eq!(obj.text(), r#"{"a": 1}"#);
    }

    #[test]
    fn unknown_encodings_and_broken_text_are_errors() {
        assert!(decode("{}", 3).is_err());
        assert!(decode(r#"{"a": {"bytes": "!!"}}"#, TAGGED).is_err());
        assert!(decode(r#"{"a": {"text": 1}}"#, TAGGED).is_err());
        assert!(decode(r#"{"a": 1}"#, TAGGED).is_err());
    }
}
