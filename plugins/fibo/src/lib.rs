//! Node `fibo`: the n-th Fibonacci number, computed iteratively in `u64`.
//!
//! Config `{"n": 10}` or input `n` (the input wins) -> output `out`. `fib(93)` is the largest
//! that fits in a `u64`; a larger `n` is an `invalid-input` error. Cheap enough to measure the
//! per-call overhead of the runtime in benchmarks.

use weft_sdk::node::prelude::*;

/// The largest `n` whose Fibonacci number fits in a `u64`.
pub const MAX_N: u64 = 93;

/// The `fibo` node.
pub struct Fibo;

/// Config of `fibo`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Which Fibonacci number; the input `n` overrides it.
    pub n: Option<u64>,
}

/// `fib(n)`, or `None` when it does not fit in a `u64` (`n > 93`).
pub fn fib(n: u64) -> Option<u64> {
    if n > MAX_N {
        return None;
    }
    let (mut a, mut b) = (0u64, 1u64);
    for _ in 0..n {
        // `b` runs one step ahead and may wrap on the last step; `a` never does (n <= 93).
        (a, b) = (b, a.wrapping_add(b));
    }
    Some(a)
}

impl Node for Fibo {
    type Config = Config;

    fn describe() -> Description {
        Description::new("fibo", "0.1.0", "The n-th Fibonacci number (u64; n <= 93)")
            .input(
                Port::new("n", Kind::Integer)
                    .optional()
                    .summary("which Fibonacci number; overrides config.n"),
            )
            .output(Port::new("out", Kind::Integer).summary("fib(n)"))
            .config_schema(json!({
                "type": "object",
                "properties": {
                    "n": { "type": "integer", "minimum": 0, "maximum": MAX_N }
                },
                "additionalProperties": false
            }))
    }

    fn run(config: Config, inputs: Inputs) -> Result<Outputs, NodeError> {
        let n = match inputs.opt::<u64>("n")? {
            Some(n) => n,
            None => config.n.ok_or_else(|| {
                NodeError::invalid_config("`n` is required (in the config or on input `n`)")
            })?,
        };
        let value = fib(n).ok_or_else(|| {
            NodeError::invalid_input(format!(
                "fib({n}) overflows a u64; n must be at most {MAX_N}"
            ))
        })?;
        Ok(Outputs::new().json("out", value))
    }
}

weft_sdk::export_node!(Fibo);

#[cfg(test)]
mod tests {
    use super::*;
    use weft_sdk::node::call;

    #[test]
    fn known_values() {
        assert_eq!(fib(0), Some(0));
        assert_eq!(fib(1), Some(1));
        assert_eq!(fib(10), Some(55));
        assert_eq!(fib(93), Some(12_200_160_415_121_876_738));
        assert_eq!(fib(94), None);
    }

    #[test]
    fn input_overrides_config() {
        let out = call::<Fibo>(r#"{"n": 10}"#, Inputs::new()).unwrap();
        assert_eq!(out.get_json("out"), Some(json!(55)));
        let out = call::<Fibo>(r#"{"n": 10}"#, Inputs::new().json("n", 20)).unwrap();
        assert_eq!(out.get_json("out"), Some(json!(6765)));
    }

    #[test]
    fn overflow_is_invalid_input_and_missing_n_invalid_config() {
        let err = call::<Fibo>(r#"{"n": 94}"#, Inputs::new()).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidInput);
        assert!(err.message.contains("overflows"), "{}", err.message);
        let err = call::<Fibo>("{}", Inputs::new()).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidConfig);
        let err = call::<Fibo>(r#"{"m": 1}"#, Inputs::new()).unwrap_err();
        assert!(err.message.contains("unknown field `m`"), "{}", err.message);
        let err = call::<Fibo>("{}", Inputs::new().json("n", -1)).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidInput);
    }

    #[test]
    fn description_is_consistent() {
        let d = Fibo::describe();
        assert_eq!(d.name, "fibo");
        let schema: Json = weft_sdk::serde_json::from_str(&d.config_schema).unwrap();
        assert_eq!(schema["properties"]["n"]["maximum"], 93);
    }
}
