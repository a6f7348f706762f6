//! Node `python-script`: runs a Python script in a container image (the `jobs` capability),
//! with the node's params as JSON, and outputs what the script reports.
//!
//! Config: `{"image": "weft-test/python:1", "script": "train.py", "args": ["--fast"],
//! "params": {"epochs": 100}, "project": "my-project", "output_file": "metrics.json",
//! "resources": {"cpu": "1", "memory": "512Mi"}}`. The script is a file of the project (copied
//! into the working folder), or `code` gives its source inline. The params reach the script as
//! JSON text in the environment variable `WEFT_PARAMS`: `config.params`, with the keys of input
//! `in` (an object) on top, or `in` under `"in"` when it is no object.
//!
//! Output `out`: the JSON in `output_file` when one is named, else the last line the script
//! printed that is a JSON document. An exit code other than 0 is a retryable failure quoting
//! the script's last lines.

use serde_json::{Map, Value};
use std::collections::BTreeMap;
use weft_sdk::jobs::{JobSpec, Resources, last_json_line, last_lines, resources_schema};
use weft_sdk::node::prelude::*;

/// The `python-script` node.
pub struct PythonScript;

/// Config of `python-script`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// A local image with `python3`.
    pub image: String,
    /// The script's path in the working folder (a file of the project).
    pub script: Option<String>,
    /// The script's source, instead of `script`.
    pub code: Option<String>,
    /// Arguments after the script.
    #[serde(default)]
    pub args: Vec<String>,
    /// Parameters, passed as JSON in `WEFT_PARAMS`.
    #[serde(default)]
    pub params: Map<String, Value>,
    /// A project of the run's owner copied into the working folder.
    pub project: Option<String>,
    /// The working folder; `/workspace` by default.
    pub workdir: Option<String>,
    /// Environment variables.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// CPU, memory and GPUs.
    #[serde(default)]
    pub resources: Resources,
    /// A JSON file the script writes, relative to the working folder: the node's output.
    pub output_file: Option<String>,
}

/// The params the script gets: the config's, with the input's keys on top.
pub fn params(config: &Config, input: Option<Value>) -> Value {
    let mut params = config.params.clone();
    match input {
        Some(Value::Object(input)) => params.extend(input),
        Some(other) => {
            params.insert("in".into(), other);
        }
        None => {}
    }
    Value::Object(params)
}

/// The job that runs the script.
pub fn spec(config: &Config, params: &Value) -> Result<JobSpec, NodeError> {
    let mut command = vec!["python3".to_string(), "-u".to_string()];
    match (&config.script, &config.code) {
        (Some(script), None) => command.push(script.clone()),
        (None, Some(code)) => command.extend(["-c".to_string(), code.clone()]),
        _ => {
            return Err(NodeError::invalid_config(
                "give exactly one of `script` (a file of the project) and `code` (the source)",
            ));
        }
    }
    command.extend(config.args.iter().cloned());
    let mut spec = JobSpec::new(&config.image)
        .command(command)
        .workdir(config.workdir.clone())
        .resources(&config.resources)
        .project(config.project.clone())
        .env("WEFT_PARAMS", &params.to_string());
    for (name, value) in &config.env {
        spec = spec.env(name, value);
    }
    if let Some(file) = &config.output_file {
        spec = spec.output(file);
    }
    Ok(spec)
}

impl Node for PythonScript {
    type Config = Config;

    fn describe() -> Description {
        Description::new(
            "python-script",
            "0.1.0",
            "Runs a Python script in a container image with params as JSON; outputs its last JSON line or a JSON file",
        )
        .input(
            Port::new("in", Kind::Any)
                .optional()
                .summary("merged into the params (an object's keys) or set as params.in"),
        )
        .output(Port::new("out", Kind::Any).summary("the script's last JSON line, or output_file"))
        .capability("jobs")
        .config_schema(json!({
            "type": "object",
            "required": ["image"],
            "properties": {
                "image": { "type": "string", "minLength": 1, "description": "a local image with python3" },
                "script": { "type": "string", "minLength": 1, "description": "the script's path in the working folder" },
                "code": { "type": "string", "description": "the script's source, instead of script" },
                "args": { "type": "array", "items": { "type": "string" } },
                "params": { "type": "object", "description": "passed as JSON in WEFT_PARAMS" },
                "project": { "type": "string" },
                "workdir": { "type": "string", "pattern": "^/" },
                "env": { "type": "object", "additionalProperties": { "type": "string" } },
                "resources": resources_schema(),
                "output_file": { "type": "string", "minLength": 1 }
            },
            "oneOf": [{ "required": ["script"] }, { "required": ["code"] }],
            "additionalProperties": false
        }))
    }

    fn run(config: Config, inputs: Inputs) -> Result<Outputs, NodeError> {
        let params = params(&config, inputs.opt_json("in")?);
        let exit = weft_sdk::jobs::run(&spec(&config, &params)?)?;
        let out = match &config.output_file {
            Some(file) => {
                let data = exit
                    .outputs
                    .first()
                    .and_then(|f| f.data.as_deref())
                    .ok_or_else(|| {
                        NodeError::failed(format!("the script did not write '{file}'"))
                    })?;
                serde_json::from_slice(data)
                    .map_err(|e| NodeError::failed(format!("'{file}' is not JSON: {e}")))?
            }
            None => last_json_line(&exit.log_tail).ok_or_else(|| {
                NodeError::failed(format!(
                    "the script printed no JSON line; its last lines:\n{}",
                    last_lines(&exit.log_tail, 10)
                ))
            })?,
        };
        Ok(Outputs::new().json("out", out))
    }
}

weft_sdk::export_node!(PythonScript);

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn input_keys_go_over_the_params() {
        let c = config(r#"{"image": "py", "code": "", "params": {"epochs": 100, "lr": 0.1}}"#);
        assert_eq!(
            params(&c, Some(json!({"lr": 0.5}))),
            json!({"epochs": 100, "lr": 0.5})
        );
        assert_eq!(params(&c, Some(json!([1])))["in"], json!([1]));
    }

    #[test]
    fn a_script_or_code_but_not_both() {
        let both = config(r#"{"image": "py", "code": "x", "script": "a.py"}"#);
        assert!(spec(&both, &json!({})).is_err());
        let neither = config(r#"{"image": "py"}"#);
        assert!(spec(&neither, &json!({})).is_err());
        assert!(spec(&config(r#"{"image": "py", "script": "a.py"}"#), &json!({})).is_ok());
    }
}
