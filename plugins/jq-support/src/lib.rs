//! jq programs (through the jaq interpreter) over `serde_json` values.
//!
//! Shared by the `json-transform` and `branch` nodes; not a plugin itself.

use jaq_core::load::{Arena, File, Loader};
use jaq_core::{Compiler, Ctx, Vars, data, unwrap_valr};
use jaq_json::{Num, Val};
use serde::Deserialize;
use serde_json::{Map, Number, Value};

/// A compiled jq program.
pub struct Program {
    filter: jaq_core::Filter<data::JustLut<Val>>,
}

impl Program {
    /// Compiles `code` with jq's standard library; the error lists every problem found
    /// with its byte offset in `code`.
    pub fn compile(code: &str) -> Result<Self, String> {
        let defs = jaq_core::defs()
            .chain(jaq_std::defs())
            .chain(jaq_json::defs());
        let funs = jaq_core::funs()
            .chain(jaq_std::funs())
            .chain(jaq_json::funs());
        let arena = Arena::default();
        let program = File { code, path: () };
        let modules = Loader::new(defs)
            .load(&arena, program)
            .map_err(|errors| load_errors(code, errors))?;
        let filter = Compiler::default()
            .with_funs(funs)
            .compile(modules)
            .map_err(|errors| compile_errors(code, errors))?;
        Ok(Self { filter })
    }

    /// Runs the program on `input` and collects every value it yields; the first runtime
    /// error stops the run.
    pub fn run(&self, input: &Value) -> Result<Vec<Value>, String> {
        let input = Val::deserialize(input).map_err(|err| err.to_string())?;
        let ctx = Ctx::<data::JustLut<Val>>::new(&self.filter.lut, Vars::new([]));
        self.filter
            .id
            .run((ctx, input))
            .map(unwrap_valr)
            .map(|result| result.map(to_json).map_err(error_message))
            .collect()
    }
}

/// jq truthiness: everything but `false` and `null` is true.
pub fn is_truthy(value: &Value) -> bool {
    !matches!(value, Value::Null | Value::Bool(false))
}

fn to_json(val: Val) -> Value {
    match val {
        Val::Null => Value::Null,
        Val::Bool(b) => Value::Bool(b),
        Val::Num(n) => num_to_json(&n),
        Val::TStr(s) | Val::BStr(s) => Value::String(String::from_utf8_lossy(&s).into_owned()),
        Val::Arr(items) => Value::Array(items.iter().cloned().map(to_json).collect()),
        Val::Obj(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (text_of(k), to_json(v.clone())))
                .collect::<Map<_, _>>(),
        ),
    }
}

fn num_to_json(n: &Num) -> Value {
    match n {
        Num::Int(i) => Value::from(*i as i64),
        // jq prints NaN and infinities as null (or a huge number); JSON has neither.
        Num::Float(f) => Number::from_f64(*f).map_or(Value::Null, Value::Number),
        other => other
            .to_string()
            .parse::<Number>()
            .map_or(Value::Null, Value::Number),
    }
}

/// `error("text")` reads best as the bare text.
fn error_message(err: jaq_core::Error<Val>) -> String {
    text_of(&err.into_val())
}

/// A string as its text, anything else as jq prints it (jaq allows non-string object keys;
/// JSON does not).
fn text_of(key: &Val) -> String {
    match key {
        Val::TStr(s) | Val::BStr(s) => String::from_utf8_lossy(s).into_owned(),
        other => other.to_string(),
    }
}

fn offset(code: &str, at: &str) -> usize {
    (at.as_ptr() as usize).saturating_sub(code.as_ptr() as usize)
}

fn load_errors<P>(code: &str, errors: jaq_core::load::Errors<&str, P>) -> String {
    use jaq_core::load::Error;
    let mut messages = Vec::new();
    for (_, error) in errors {
        match error {
            Error::Io(errs) => {
                messages.extend(errs.into_iter().map(|(path, e)| format!("{path}: {e}")))
            }
            Error::Lex(errs) => messages.extend(errs.into_iter().map(|(expect, at)| {
                format!(
                    "expected {} at offset {}",
                    expect.as_str(),
                    offset(code, at)
                )
            })),
            Error::Parse(errs) => messages.extend(errs.into_iter().map(|(expect, at)| {
                let found = if at.is_empty() {
                    "end of program".to_string()
                } else {
                    format!("`{at}`")
                };
                format!(
                    "expected {} at offset {}, found {found}",
                    expect.as_str(),
                    offset(code, at)
                )
            })),
        }
    }
    messages.join("; ")
}

fn compile_errors<P>(code: &str, errors: jaq_core::compile::Errors<&str, P>) -> String {
    errors
        .into_iter()
        .flat_map(|(_, errs)| errs)
        .map(|(name, undefined)| {
            format!(
                "undefined {} `{name}` at offset {}",
                undefined.as_str(),
                offset(code, name)
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(code: &str, input: Value) -> Vec<Value> {
        Program::compile(code).unwrap().run(&input).unwrap()
    }

    #[test]
    fn selects_and_reshapes() {
        let input = json!({"users": [{"name": "a", "age": 30}, {"name": "b", "age": 12}]});
        assert_eq!(
            run("[.users[] | select(.age > 18) | {who: .name}]", input),
            [json!([{"who": "a"}])]
        );
    }

    #[test]
    fn streams_several_values_and_numbers_roundtrip() {
        assert_eq!(run(".[] * 2", json!([1, 2.5])), [json!(2), json!(5.0)]);
        assert_eq!(run("empty", json!(1)), Vec::<Value>::new());
    }

    #[test]
    fn standard_library_is_loaded() {
        assert_eq!(
            run("map(ascii_upcase) | join(\",\")", json!(["a", "b"])),
            [json!("A,B")]
        );
        assert_eq!(run("test(\"^a.c$\")", json!("abc")), [json!(true)]);
    }

    #[test]
    fn reports_syntax_and_name_errors() {
        let err = Program::compile(".a |").err().unwrap();
        assert!(err.contains("expected term"), "{err}");
        let err = Program::compile("nosuchfn(1)").err().unwrap();
        assert!(err.contains("undefined filter `nosuchfn`"), "{err}");
    }

    #[test]
    fn reports_runtime_errors() {
        let program = Program::compile(".a + 1").unwrap();
        assert!(program.run(&json!({"a": "x"})).is_err());
        let program = Program::compile("error(\"boom\")").unwrap();
        assert_eq!(program.run(&json!(null)).unwrap_err(), "boom");
    }

    #[test]
    fn truthiness_follows_jq() {
        assert!(!is_truthy(&json!(null)));
        assert!(!is_truthy(&json!(false)));
        assert!(is_truthy(&json!(0)));
        assert!(is_truthy(&json!("")));
    }
}
