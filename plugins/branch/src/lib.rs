//! Node `branch`: evaluates a jq condition on the JSON value on input `in` and passes that
//! value on unchanged to output `then` when the condition holds, to `else` otherwise.
//! Exactly one of the two (optional) outputs is produced, so only one side of the workflow
//! runs on.
//!
//! Config: `{"condition": ".status == \"ok\""}`. The condition holds when its first result
//! is truthy in jq's sense (anything but `false` and `null`); a condition that yields no
//! result does not hold. A condition that does not compile is an `invalid-config` error; one
//! that fails on the data an `invalid-input` error.

use serde_json::Value;
use weft_jq_support::{Program, is_truthy};
use weft_sdk::node::prelude::*;

/// The `branch` node.
pub struct Branch;

/// Config of `branch`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// A jq expression evaluated on the input.
    pub condition: String,
}

/// Whether `condition` holds for `input`.
pub fn holds(condition: &str, input: &Value) -> Result<bool, NodeError> {
    let program = Program::compile(condition)
        .map_err(|err| NodeError::invalid_config(format!("condition does not compile: {err}")))?;
    let results = program
        .run(input)
        .map_err(|err| NodeError::invalid_input(format!("condition failed on the input: {err}")))?;
    Ok(results.first().is_some_and(is_truthy))
}

impl Node for Branch {
    type Config = Config;

    fn describe() -> Description {
        Description::new(
            "branch",
            "0.1.0",
            "Passes its input to `then` or `else` depending on a jq condition",
        )
        .input(Port::new("in", Kind::Any).summary("the value to test and pass on"))
        .output(
            Port::new("then", Kind::Any)
                .optional()
                .summary("the input, when the condition holds"),
        )
        .output(
            Port::new("else", Kind::Any)
                .optional()
                .summary("the input, when the condition does not hold"),
        )
        .config_schema(json!({
            "type": "object",
            "required": ["condition"],
            "properties": {
                "condition": {
                    "type": "string",
                    "minLength": 1,
                    "description": "jq expression; true unless its first result is false or null"
                }
            },
            "additionalProperties": false
        }))
    }

    fn run(config: Config, inputs: Inputs) -> Result<Outputs, NodeError> {
        let input = inputs.get_json("in")?;
        let port = if holds(&config.condition, &input)? {
            "then"
        } else {
            "else"
        };
        Ok(Outputs::new().json(port, input))
    }
}

weft_sdk::export_node!(Branch);

#[cfg(test)]
mod tests {
    use super::*;
    use weft_sdk::node::call;

    fn route(condition: &str, input: Value) -> Result<Outputs, NodeError> {
        let config = json!({ "condition": condition }).to_string();
        call::<Branch>(&config, Inputs::new().json("in", input))
    }

    #[test]
    fn exactly_one_output_carrying_the_input() {
        let input = json!({"status": "ok", "n": 3});
        let out = route(".status == \"ok\"", input.clone()).unwrap();
        assert_eq!(out.names().collect::<Vec<_>>(), ["then"]);
        assert_eq!(out.get_json("then"), Some(input.clone()));
        let out = route(".n > 5", input.clone()).unwrap();
        assert_eq!(out.names().collect::<Vec<_>>(), ["else"]);
        assert_eq!(out.get_json("else"), Some(input));
    }

    #[test]
    fn jq_truthiness() {
        assert!(holds(".", &json!(0)).unwrap());
        assert!(holds(".", &json!("")).unwrap());
        assert!(!holds(".", &json!(null)).unwrap());
        assert!(!holds(".missing", &json!({})).unwrap());
        assert!(!holds("empty", &json!(1)).unwrap());
    }

    #[test]
    fn errors_are_typed() {
        let err = route(".a ==", json!({})).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidConfig);
        let err = route(".a + 1", json!({"a": "x"})).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidInput);
        let err = call::<Branch>(r#"{"condition": "."}"#, Inputs::new()).unwrap_err();
        assert!(
            err.message.contains("missing input `in`"),
            "{}",
            err.message
        );
    }
}
