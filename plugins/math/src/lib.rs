//! Node `math`: arithmetic and aggregates over numbers.
//!
//! Config: `{"op": "add"|"sub"|"mul"|"div"|"sum"|"mean"|"min"|"max"|"count"|"median"|"stddev",
//! "a"?: number, "b"?: number}`.
//!
//! - Binary ops `add`, `sub`, `mul`, `div` take inputs `a` and `b` (each falling back to the
//!   config's `a` / `b` when unconnected), or, when neither is given, fold the array on input
//!   `in` from left to right (`add`/`mul` of `[]` are 0 and 1; `sub`/`div` need one element).
//! - Aggregates take the array of numbers on input `in`. `count` and `sum` accept `[]`;
//!   `mean`, `min`, `max`, `median` and `stddev` (the population standard deviation) need at
//!   least one number.
//!
//! The result goes to `out`, as an integer when it is a whole number. Division by zero, an
//! empty array where a value is needed, a non-number, or a result that is not finite are
//! `invalid-input` errors.

use serde_json::Value;
use weft_sdk::node::prelude::*;

/// The `math` node.
pub struct Math;

/// The operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    /// a + b, or the sum of `in`.
    Add,
    /// a - b, or `in[0] - in[1] - ...`.
    Sub,
    /// a × b, or the product of `in`.
    Mul,
    /// a ÷ b, or `in[0] / in[1] / ...`.
    Div,
    /// Sum of `in`.
    Sum,
    /// Arithmetic mean of `in`.
    Mean,
    /// Smallest of `in`.
    Min,
    /// Largest of `in`.
    Max,
    /// Number of elements of `in`.
    Count,
    /// Median of `in` (mean of the two middle values for an even count).
    Median,
    /// Population standard deviation of `in`.
    Stddev,
}

impl Op {
    /// The name used in the config.
    pub fn name(self) -> &'static str {
        match self {
            Op::Add => "add",
            Op::Sub => "sub",
            Op::Mul => "mul",
            Op::Div => "div",
            Op::Sum => "sum",
            Op::Mean => "mean",
            Op::Min => "min",
            Op::Max => "max",
            Op::Count => "count",
            Op::Median => "median",
            Op::Stddev => "stddev",
        }
    }
}

/// Config of `math`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The operation.
    pub op: Op,
    /// Default for input `a`.
    pub a: Option<f64>,
    /// Default for input `b`.
    pub b: Option<f64>,
}

fn invalid(message: impl Into<String>) -> NodeError {
    NodeError::invalid_input(message)
}

fn binary(op: Op, a: f64, b: f64) -> Result<f64, NodeError> {
    Ok(match op {
        Op::Add => a + b,
        Op::Sub => a - b,
        Op::Mul => a * b,
        Op::Div if b == 0.0 => return Err(invalid("division by zero")),
        Op::Div => a / b,
        _ => unreachable!("not a binary op: {op:?}"),
    })
}

fn nonempty(op: Op, values: &[f64]) -> Result<(), NodeError> {
    if values.is_empty() {
        Err(invalid(format!(
            "`{}` needs at least one number; `in` is empty",
            op.name()
        )))
    } else {
        Ok(())
    }
}

/// Applies `op` to a list of numbers (the `in` form).
pub fn over_list(op: Op, values: &[f64]) -> Result<f64, NodeError> {
    let result = match op {
        Op::Add | Op::Sum => values.iter().sum(),
        Op::Mul => values.iter().product(),
        Op::Sub | Op::Div => {
            nonempty(op, values)?;
            values[1..]
                .iter()
                .try_fold(values[0], |acc, &x| binary(op, acc, x))?
        }
        Op::Count => values.len() as f64,
        Op::Mean => {
            nonempty(op, values)?;
            values.iter().sum::<f64>() / values.len() as f64
        }
        Op::Min => {
            nonempty(op, values)?;
            values.iter().copied().fold(f64::INFINITY, f64::min)
        }
        Op::Max => {
            nonempty(op, values)?;
            values.iter().copied().fold(f64::NEG_INFINITY, f64::max)
        }
        Op::Median => {
            nonempty(op, values)?;
            let mut sorted = values.to_vec();
            sorted.sort_by(f64::total_cmp);
            let mid = sorted.len() / 2;
            if sorted.len() % 2 == 1 {
                sorted[mid]
            } else {
                (sorted[mid - 1] + sorted[mid]) / 2.0
            }
        }
        Op::Stddev => {
            nonempty(op, values)?;
            let n = values.len() as f64;
            let mean = values.iter().sum::<f64>() / n;
            (values.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt()
        }
    };
    finite(result)
}

/// Applies a binary `op` to `a` and `b`.
pub fn over_pair(op: Op, a: f64, b: f64) -> Result<f64, NodeError> {
    if !matches!(op, Op::Add | Op::Sub | Op::Mul | Op::Div) {
        return Err(NodeError::invalid_config(format!(
            "`{}` works on the array on input `in`, not on `a` and `b`",
            op.name()
        )));
    }
    finite(binary(op, a, b)?)
}

fn finite(x: f64) -> Result<f64, NodeError> {
    if x.is_finite() {
        Ok(x)
    } else {
        Err(invalid("the result is not a finite number (overflow)"))
    }
}

/// A number as JSON: an integer when it is whole (and exactly representable).
pub fn to_json(x: f64) -> Value {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    if x.fract() == 0.0 && x.abs() <= EXACT {
        Value::from(x as i64)
    } else {
        Value::from(x)
    }
}

fn numbers(value: Value) -> Result<Vec<f64>, NodeError> {
    let Value::Array(items) = value else {
        return Err(invalid("input `in` must be an array of numbers"));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            item.as_f64()
                .ok_or_else(|| invalid(format!("input `in`[{i}] is not a number: {item}")))
        })
        .collect()
}

impl Node for Math {
    type Config = Config;

    fn describe() -> Description {
        Description::new(
            "math",
            "0.1.0",
            "Arithmetic (a op b) and aggregates (sum, mean, median, stddev...) over numbers",
        )
        .input(
            Port::new("in", Kind::Array)
                .optional()
                .summary("an array of numbers"),
        )
        .input(
            Port::new("a", Kind::Number)
                .optional()
                .summary("left operand of add/sub/mul/div"),
        )
        .input(
            Port::new("b", Kind::Number)
                .optional()
                .summary("right operand of add/sub/mul/div"),
        )
        .output(Port::new("out", Kind::Number).summary("the result"))
        .config_schema(json!({
            "type": "object",
            "required": ["op"],
            "properties": {
                "op": {
                    "enum": ["add", "sub", "mul", "div", "sum", "mean", "min", "max",
                             "count", "median", "stddev"]
                },
                "a": { "type": "number", "description": "used when input `a` is unconnected" },
                "b": { "type": "number", "description": "used when input `b` is unconnected" }
            },
            "additionalProperties": false
        }))
    }

    fn run(config: Config, inputs: Inputs) -> Result<Outputs, NodeError> {
        let a = inputs.opt::<f64>("a")?.or(config.a);
        let b = inputs.opt::<f64>("b")?.or(config.b);
        let list = inputs.opt_json("in")?;
        let result = match (a, b, list) {
            (Some(a), Some(b), _) => over_pair(config.op, a, b)?,
            (None, None, Some(list)) => over_list(config.op, &numbers(list)?)?,
            (Some(_), None, _) | (None, Some(_), _) => {
                return Err(invalid("both `a` and `b` are needed (inputs or config)"));
            }
            (None, None, None) => {
                return Err(invalid("no numbers: connect `in`, or `a` and `b`"));
            }
        };
        Ok(Outputs::new().json("out", to_json(result)))
    }
}

weft_sdk::export_node!(Math);

#[cfg(test)]
mod tests {
    use super::*;
    use weft_sdk::node::call;

    fn list(op: &str, values: Value) -> Result<Value, NodeError> {
        call::<Math>(
            &json!({ "op": op }).to_string(),
            Inputs::new().json("in", values),
        )
        .map(|o| o.get_json("out").unwrap())
    }

    fn pair(op: &str, a: f64, b: f64) -> Result<Value, NodeError> {
        call::<Math>(
            &json!({ "op": op }).to_string(),
            Inputs::new().json("a", a).json("b", b),
        )
        .map(|o| o.get_json("out").unwrap())
    }

    #[test]
    fn binary_ops_on_a_and_b() {
        assert_eq!(pair("add", 2.0, 3.0).unwrap(), json!(5));
        assert_eq!(pair("sub", 2.0, 3.5).unwrap(), json!(-1.5));
        assert_eq!(pair("mul", 4.0, 2.5).unwrap(), json!(10));
        assert_eq!(pair("div", 1.0, 4.0).unwrap(), json!(0.25));
    }

    #[test]
    fn division_by_zero_is_invalid_input() {
        let err = pair("div", 1.0, 0.0).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidInput);
        assert!(err.message.contains("division by zero"));
        let err = list("div", json!([8, 2, 0])).unwrap_err();
        assert!(err.message.contains("division by zero"));
    }

    #[test]
    fn aggregates() {
        let xs = json!([2, 4, 4, 4, 5, 5, 7, 9]);
        assert_eq!(list("sum", xs.clone()).unwrap(), json!(40));
        assert_eq!(list("mean", xs.clone()).unwrap(), json!(5));
        assert_eq!(list("min", xs.clone()).unwrap(), json!(2));
        assert_eq!(list("max", xs.clone()).unwrap(), json!(9));
        assert_eq!(list("count", xs.clone()).unwrap(), json!(8));
        assert_eq!(list("median", xs.clone()).unwrap(), json!(4.5));
        assert_eq!(list("stddev", xs.clone()).unwrap(), json!(2));
        assert_eq!(list("median", json!([3, 1, 2])).unwrap(), json!(2));
        assert_eq!(list("sub", json!([10, 1, 2])).unwrap(), json!(7));
        assert_eq!(list("mul", json!([])).unwrap(), json!(1));
        assert_eq!(list("count", json!([])).unwrap(), json!(0));
    }

    #[test]
    fn bad_inputs_are_reported() {
        assert!(
            list("mean", json!([]))
                .unwrap_err()
                .message
                .contains("at least one")
        );
        assert!(
            list("sum", json!([1, "2"]))
                .unwrap_err()
                .message
                .contains("`in`[1]")
        );
        assert!(list("sum", json!({"a": 1})).is_err());
        assert!(
            pair("mul", f64::MAX, 10.0)
                .unwrap_err()
                .message
                .contains("finite")
        );
        let err = call::<Math>(r#"{"op": "add"}"#, Inputs::new().json("a", 1)).unwrap_err();
        assert!(err.message.contains("both `a` and `b`"), "{}", err.message);
        let err = call::<Math>(r#"{"op": "median", "a": 1, "b": 2}"#, Inputs::new()).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidConfig);
        let err = call::<Math>(r#"{"op": "pow"}"#, Inputs::new()).unwrap_err();
        assert!(
            err.message.contains("unknown variant `pow`"),
            "{}",
            err.message
        );
    }

    #[test]
    fn config_supplies_defaults_for_a_and_b() {
        let out = call::<Math>(r#"{"op": "mul", "b": 2}"#, Inputs::new().json("a", 21)).unwrap();
        assert_eq!(out.get_json("out"), Some(json!(42)));
    }
}
