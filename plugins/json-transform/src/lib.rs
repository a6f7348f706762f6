//! Node `json-transform`: runs a jq program (with the jaq interpreter and jq's standard
//! library) over the JSON value on input `in` and puts the result on output `out`.
//!
//! Config: `{"query": ".users[] | select(.age > 18) | .name", "all": false}`.
//! - `all: false` (default): `out` is the program's first result, `null` when it yields none.
//! - `all: true`: `out` is an array of every result.
//!
//! A query that does not compile is an `invalid-config` error naming the problem and its
//! offset; a query that fails on the data (for example adding a string to a number) is an
//! `invalid-input` error. An unconnected `in` reads as `null`.

use serde_json::Value;
use weft_jq_support::Program;
use weft_sdk::node::prelude::*;

/// The `json-transform` node.
pub struct JsonTransform;

/// Config of `json-transform`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The jq program.
    pub query: String,
    /// Collect every result into an array instead of taking the first.
    #[serde(default)]
    pub all: bool,
}

/// Compiles and runs `config.query` on `input`.
pub fn transform(config: &Config, input: &Value) -> Result<Value, NodeError> {
    let program = Program::compile(&config.query)
        .map_err(|err| NodeError::invalid_config(format!("query does not compile: {err}")))?;
    let results = program
        .run(input)
        .map_err(|err| NodeError::invalid_input(format!("query failed on the input: {err}")))?;
    Ok(if config.all {
        Value::Array(results)
    } else {
        results.into_iter().next().unwrap_or(Value::Null)
    })
}

impl Node for JsonTransform {
    type Config = Config;

    fn describe() -> Description {
        Description::new(
            "json-transform",
            "0.1.0",
            "Transforms JSON with a jq program (first result, or all of them as an array)",
        )
        .input(
            Port::new("in", Kind::Any)
                .optional()
                .summary("the JSON value the program reads as `.` (null when unconnected)"),
        )
        .output(Port::new("out", Kind::Any).summary("the program's result"))
        .config_schema(json!({
            "type": "object",
            "required": ["query"],
            "properties": {
                "query": {
                    "type": "string",
                    "minLength": 1,
                    "description": "jq program, for example `.items | map(.price) | add`"
                },
                "all": {
                    "type": "boolean",
                    "default": false,
                    "description": "output an array of every result instead of the first one"
                }
            },
            "additionalProperties": false
        }))
    }

    fn run(config: Config, inputs: Inputs) -> Result<Outputs, NodeError> {
        let input = inputs.opt_json("in")?.unwrap_or(Value::Null);
        let out = transform(&config, &input)?;
        Ok(Outputs::new().json("out", out))
    }
}

weft_sdk::export_node!(JsonTransform);

#[cfg(test)]
mod tests {
    use super::*;
    use weft_sdk::node::call;

    fn run(config: Value, input: Value) -> Result<Value, NodeError> {
        call::<JsonTransform>(&config.to_string(), Inputs::new().json("in", input))
            .map(|out| out.get_json("out").unwrap())
    }

    #[test]
    fn first_result_by_default_and_all_on_request() {
        let input = json!({"users": [{"name": "a", "age": 30}, {"name": "b", "age": 40}]});
        let q = ".users[] | .name";
        assert_eq!(run(json!({"query": q}), input.clone()).unwrap(), json!("a"));
        assert_eq!(
            run(json!({"query": q, "all": true}), input).unwrap(),
            json!(["a", "b"])
        );
        assert_eq!(
            run(json!({"query": "empty"}), json!(1)).unwrap(),
            Value::Null
        );
    }

    #[test]
    fn reshapes_with_the_standard_library() {
        let out = run(
            json!({"query": "{total: (map(.price) | add), names: (map(.name) | sort)}"}),
            json!([{"name": "y", "price": 2}, {"name": "x", "price": 3.5}]),
        )
        .unwrap();
        assert_eq!(out, json!({"total": 5.5, "names": ["x", "y"]}));
    }

    #[test]
    fn bad_query_is_invalid_config_and_names_the_problem() {
        let err = run(json!({"query": ".a | nosuch(1)"}), json!({})).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidConfig);
        assert!(err.message.contains("nosuch"), "{}", err.message);
        let err = run(json!({"query": ".a |"}), json!({})).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidConfig);
        let err = run(json!({}), json!({})).unwrap_err();
        assert!(
            err.message.contains("missing field `query`"),
            "{}",
            err.message
        );
    }

    #[test]
    fn failure_on_data_is_invalid_input() {
        let err = run(json!({"query": ".a + 1"}), json!({"a": "x"})).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidInput);
    }

    #[test]
    fn unconnected_input_is_null() {
        let out = call::<JsonTransform>(r#"{"query": ". == null"}"#, Inputs::new()).unwrap();
        assert_eq!(out.get_json("out"), Some(json!(true)));
    }
}
