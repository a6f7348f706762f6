//! Node `csv`: converts CSV text to JSON and back, with the `csv` crate.
//!
//! Config: `{"direction": "to-json"|"from-json", "delimiter": ",", "header": true,
//! "typed": false}`.
//!
//! - `to-json`: input `in` is CSV text (a JSON string, or bytes in UTF-8). With `header`
//!   (default) the first record names the fields and `out` is an array of objects; without,
//!   `out` is an array of arrays. Cells are strings unless `typed` is set, which turns cells
//!   that read as integers, decimals, `true` or `false` into JSON numbers and booleans, and
//!   empty cells into `null`.
//! - `from-json`: input `in` is an array of objects (the header is every key, in order of
//!   first appearance; missing keys give empty cells) or an array of arrays (no header).
//!   Strings are written as they are, `null` as an empty cell, other values as JSON text.
//!   `out` is the CSV text.
//!
//! Malformed CSV or JSON of the wrong shape is an `invalid-input` error; a delimiter that is
//! not a single ASCII character an `invalid-config` error.

use serde_json::{Map, Value};
use weft_sdk::node::prelude::*;

/// The `csv` node.
pub struct Csv;

/// Which way to convert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    /// CSV text to JSON.
    ToJson,
    /// JSON to CSV text.
    FromJson,
}

/// Config of `csv`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Which way to convert.
    pub direction: Direction,
    /// Field separator, one ASCII character (default `,`).
    #[serde(default = "comma")]
    pub delimiter: String,
    /// Whether the first record is a header (default true).
    #[serde(default = "yes")]
    pub header: bool,
    /// `to-json` only: turn numeric and boolean cells into JSON numbers and booleans.
    #[serde(default)]
    pub typed: bool,
}

fn comma() -> String {
    ",".into()
}

fn yes() -> bool {
    true
}

fn delimiter(config: &Config) -> Result<u8, NodeError> {
    match config.delimiter.as_bytes() {
        [byte] if byte.is_ascii() => Ok(*byte),
        _ => Err(NodeError::invalid_config(format!(
            "delimiter must be a single ASCII character, not {:?}",
            config.delimiter
        ))),
    }
}

fn cell(text: &str, typed: bool) -> Value {
    if !typed {
        return Value::String(text.into());
    }
    match text {
        "" => Value::Null,
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        _ => text
            .parse::<i64>()
            .map(Value::from)
            .ok()
            .or_else(|| {
                text.parse::<f64>()
                    .ok()
                    .filter(|f| f.is_finite())
                    .map(Value::from)
            })
            .unwrap_or_else(|| Value::String(text.into())),
    }
}

/// Parses CSV text into JSON.
pub fn to_json(config: &Config, text: &str) -> Result<Value, NodeError> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter(config)?)
        .has_headers(config.header)
        .flexible(!config.header)
        .from_reader(text.as_bytes());
    let bad = |err: csv::Error| NodeError::invalid_input(format!("malformed CSV: {err}"));
    let headers: Vec<String> = if config.header {
        reader
            .headers()
            .map_err(bad)?
            .iter()
            .map(String::from)
            .collect()
    } else {
        Vec::new()
    };
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(bad)?;
        let cells = record.iter().map(|c| cell(c, config.typed));
        rows.push(if config.header {
            Value::Object(headers.iter().cloned().zip(cells).collect::<Map<_, _>>())
        } else {
            Value::Array(cells.collect())
        });
    }
    Ok(Value::Array(rows))
}

fn text_of(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Writes JSON rows as CSV text.
pub fn from_json(config: &Config, value: &Value) -> Result<String, NodeError> {
    let Value::Array(rows) = value else {
        return Err(NodeError::invalid_input(
            "input `in` must be an array of objects or of arrays",
        ));
    };
    let mut writer = csv::WriterBuilder::new()
        .delimiter(delimiter(config)?)
        .flexible(true)
        .from_writer(Vec::new());
    let failed = |err: csv::Error| NodeError::failed(format!("writing CSV: {err}"));
    if rows.iter().all(Value::is_object) && !rows.is_empty() {
        let mut columns: Vec<&str> = Vec::new();
        for row in rows.iter().filter_map(Value::as_object) {
            for key in row.keys() {
                if !columns.contains(&key.as_str()) {
                    columns.push(key);
                }
            }
        }
        if config.header {
            writer.write_record(&columns).map_err(failed)?;
        }
        for row in rows.iter().filter_map(Value::as_object) {
            let cells = columns
                .iter()
                .map(|c| row.get(*c).map(text_of).unwrap_or_default());
            writer.write_record(cells).map_err(failed)?;
        }
    } else {
        for (i, row) in rows.iter().enumerate() {
            let Value::Array(cells) = row else {
                return Err(NodeError::invalid_input(format!(
                    "row {i} is not an array (rows must be all objects or all arrays)"
                )));
            };
            writer
                .write_record(cells.iter().map(text_of))
                .map_err(failed)?;
        }
    }
    let bytes = writer
        .into_inner()
        .map_err(|err| NodeError::failed(format!("writing CSV: {err}")))?;
    String::from_utf8(bytes).map_err(|err| NodeError::failed(format!("writing CSV: {err}")))
}

impl Node for Csv {
    type Config = Config;

    fn describe() -> Description {
        Description::new("csv", "0.1.0", "Converts CSV text to JSON rows and back")
            .input(
                Port::new("in", Kind::Any)
                    .summary("to-json: CSV text (string or bytes); from-json: an array of rows"),
            )
            .output(
                Port::new("out", Kind::Any)
                    .summary("to-json: an array of rows; from-json: CSV text"),
            )
            .config_schema(json!({
                "type": "object",
                "required": ["direction"],
                "properties": {
                    "direction": { "enum": ["to-json", "from-json"] },
                    "delimiter": {
                        "type": "string", "minLength": 1, "maxLength": 1, "default": ","
                    },
                    "header": {
                        "type": "boolean", "default": true,
                        "description": "the first record names the fields"
                    },
                    "typed": {
                        "type": "boolean", "default": false,
                        "description": "to-json: numbers and booleans instead of strings"
                    }
                },
                "additionalProperties": false
            }))
    }

    fn run(config: Config, inputs: Inputs) -> Result<Outputs, NodeError> {
        match config.direction {
            Direction::ToJson => {
                let bytes = inputs.get_bytes("in")?;
                let text = String::from_utf8(bytes)
                    .map_err(|_| NodeError::invalid_input("input `in` is not UTF-8 text"))?;
                Ok(Outputs::new().json("out", to_json(&config, &text)?))
            }
            Direction::FromJson => {
                let value = inputs.get_json("in")?;
                Ok(Outputs::new().json("out", from_json(&config, &value)?))
            }
        }
    }
}

weft_sdk::export_node!(Csv);

#[cfg(test)]
mod tests {
    use super::*;
    use weft_sdk::node::call;

    fn config(value: Value) -> Config {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn to_json_with_header_and_types() {
        let text = "name,age,ok\nada,36,true\nbob,,false\n";
        let c = config(json!({"direction": "to-json"}));
        assert_eq!(
            to_json(&c, text).unwrap(),
            json!([
                {"name": "ada", "age": "36", "ok": "true"},
                {"name": "bob", "age": "", "ok": "false"}
            ])
        );
        let c = config(json!({"direction": "to-json", "typed": true}));
        assert_eq!(
            to_json(&c, text).unwrap(),
            json!([
                {"name": "ada", "age": 36, "ok": true},
                {"name": "bob", "age": null, "ok": false}
            ])
        );
    }

    #[test]
    fn to_json_without_header_and_other_delimiter() {
        let c = config(json!({"direction": "to-json", "header": false, "delimiter": ";"}));
        assert_eq!(
            to_json(&c, "a;b\n\"x;y\";2.5\n").unwrap(),
            json!([["a", "b"], ["x;y", "2.5"]])
        );
    }

    #[test]
    fn from_json_objects_and_arrays() {
        let c = config(json!({"direction": "from-json"}));
        let rows = json!([{"a": 1, "b": "x,y"}, {"b": null, "c": [1]}]);
        assert_eq!(from_json(&c, &rows).unwrap(), "a,b,c\n1,\"x,y\",\n,,[1]\n");
        let rows = json!([["h1", "h2"], [true, 2]]);
        assert_eq!(from_json(&c, &rows).unwrap(), "h1,h2\ntrue,2\n");
    }

    #[test]
    fn round_trip_through_the_node() {
        let text = "id,label\n1,one\n2,two\n";
        let rows = call::<Csv>(
            r#"{"direction": "to-json"}"#,
            Inputs::new().bytes("in", text.as_bytes()),
        )
        .unwrap()
        .get_json("out")
        .unwrap();
        let back = call::<Csv>(
            r#"{"direction": "from-json"}"#,
            Inputs::new().json("in", rows),
        )
        .unwrap()
        .get_json("out")
        .unwrap();
        assert_eq!(back, json!(text));
    }

    #[test]
    fn errors() {
        let err = call::<Csv>(
            r#"{"direction": "to-json", "delimiter": "::"}"#,
            Inputs::new().json("in", "a"),
        )
        .unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidConfig);
        let err = call::<Csv>(r#"{"direction": "sideways"}"#, Inputs::new()).unwrap_err();
        assert!(err.message.contains("unknown variant"), "{}", err.message);
        let err = call::<Csv>(
            r#"{"direction": "to-json"}"#,
            Inputs::new().json("in", "a,b\n1,2,3\n"),
        )
        .unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidInput);
        let err = call::<Csv>(
            r#"{"direction": "from-json"}"#,
            Inputs::new().json("in", json!([{"a": 1}, 2])),
        )
        .unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidInput);
    }
}
