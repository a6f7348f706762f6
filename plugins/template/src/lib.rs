//! Node `template`: renders a [minijinja](https://docs.rs/minijinja) (Jinja2) text template.
//!
//! Config: `{"template": "Hello {{ name }}! {% for i in items %}{{ i }} {% endfor %}",
//! "strict": false}`. The template sees the keys of the JSON object on input `in` as variables,
//! and the whole input as `input` (also when it is not an object). The rendered text goes to
//! output `out`.
//!
//! A template that does not parse is an `invalid-config` error; a failure while rendering (an
//! undefined variable with `strict: true`, a filter applied to the wrong type) an
//! `invalid-input` error.

use minijinja::{Environment, UndefinedBehavior};
use serde_json::{Map, Value};
use weft_sdk::node::prelude::*;

/// The `template` node.
pub struct Template;

/// Config of `template`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The template text.
    pub template: String,
    /// Fail on undefined variables instead of rendering them as empty text.
    #[serde(default)]
    pub strict: bool,
}

/// Renders `config.template` with `input` as context.
pub fn render(config: &Config, input: Option<Value>) -> Result<String, NodeError> {
    let mut env = Environment::new();
    env.set_undefined_behavior(if config.strict {
        UndefinedBehavior::Strict
    } else {
        UndefinedBehavior::Lenient
    });
    let template = env
        .template_from_str(&config.template)
        .map_err(|err| NodeError::invalid_config(format!("template does not parse: {err:#}")))?;
    let mut context = match &input {
        Some(Value::Object(map)) => map.clone(),
        _ => Map::new(),
    };
    context.insert("input".into(), input.unwrap_or(Value::Null));
    template
        .render(minijinja::value::Serde(&context))
        .map_err(|err| NodeError::invalid_input(format!("rendering failed: {err:#}")))
}

impl Node for Template {
    type Config = Config;

    fn describe() -> Description {
        Description::new("template", "0.1.0", "Renders a Jinja-style text template")
            .input(
                Port::new("in", Kind::Any)
                    .optional()
                    .summary("variables (an object's keys); the whole value is `input`"),
            )
            .output(Port::new("out", Kind::String).summary("the rendered text"))
            .config_schema(json!({
                "type": "object",
                "required": ["template"],
                "properties": {
                    "template": {
                        "type": "string",
                        "description": "minijinja (Jinja2) template text"
                    },
                    "strict": {
                        "type": "boolean",
                        "default": false,
                        "description": "fail on undefined variables instead of rendering ''"
                    }
                },
                "additionalProperties": false
            }))
    }

    fn run(config: Config, inputs: Inputs) -> Result<Outputs, NodeError> {
        let text = render(&config, inputs.opt_json("in")?)?;
        Ok(Outputs::new().json("out", text))
    }
}

weft_sdk::export_node!(Template);

#[cfg(test)]
mod tests {
    use super::*;

    fn config(template: &str, strict: bool) -> Config {
        Config {
            template: template.into(),
            strict,
        }
    }

    #[test]
    fn renders_object_keys_loops_and_filters() {
        let input = json!({"name": "Ada", "items": [1, 2, 3]});
        let text = render(
            &config(
                "Hi {{ name|upper }}:{% for i in items %} {{ i * 2 }}{% endfor %}",
                false,
            ),
            Some(input),
        )
        .unwrap();
        assert_eq!(text, "Hi ADA: 2 4 6");
    }

    #[test]
    fn whole_input_is_available_as_input() {
        let text = render(
            &config("{{ input|length }} items", false),
            Some(json!([1, 2])),
        )
        .unwrap();
        assert_eq!(text, "2 items");
        let text = render(&config("static", false), None).unwrap();
        assert_eq!(text, "static");
    }

    #[test]
    fn undefined_is_empty_unless_strict() {
        assert_eq!(render(&config("[{{ nope }}]", false), None).unwrap(), "[]");
        let err = render(&config("[{{ nope }}]", true), None).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidInput);
    }

    #[test]
    fn syntax_errors_are_invalid_config() {
        let err = render(&config("{% for x in %}", false), None).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidConfig);
        assert!(err.message.contains("syntax error"), "{}", err.message);
    }

    #[test]
    fn runs_through_the_node_interface() {
        let out = weft_sdk::node::call::<Template>(
            r#"{"template": "{{ a }}-{{ b }}"}"#,
            Inputs::new().json("in", json!({"a": 1, "b": "x"})),
        )
        .unwrap();
        assert_eq!(out.get_json("out"), Some(json!("1-x")));
    }
}
