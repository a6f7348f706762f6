//! Node `container-job`: runs a command in a container image on the host's engine (the `jobs`
//! capability), for the run's owner and under their container limits.
//!
//! Config: `{"image": "weft-test/python:1", "command": ["python3", "train.py"], "workdir":
//! "/workspace", "env": {"SEED": "1"}, "resources": {"cpu": "2", "memory": "1Gi", "gpu": "1"},
//! "project": "my-project", "inputs": {"data/train.csv": {"artifact": "<key>"}, "prev.json":
//! {"input": "/files/metrics.json"}}, "outputs": ["metrics.json"]}`. The project (one of the run
//! owner's, at the commit the run pinned as it started) is copied into the working folder
//! first, then the inputs: an artifact of the owner by its key, or a part of input `in` (a JSON
//! pointer; `""` for all of it; a string is written as its text, anything else as JSON). Input
//! `in`, when connected, also reaches the job as JSON text in the environment variable
//! `WEFT_INPUT`.
//!
//! Output `out`: `{"exit_code": 0, "logs": "<last lines>", "files": {"metrics.json": ...}}`,
//! each file parsed as JSON when it is JSON, else as text (`null`: not written). An exit code
//! other than 0 is a retryable failure quoting the job's last lines.

use serde_json::{Map, Value};
use std::collections::BTreeMap;
use weft_sdk::jobs::{JobSpec, Resources, last_lines, resources_schema};
use weft_sdk::node::prelude::*;

/// The `container-job` node.
pub struct ContainerJob;

/// Config of `container-job`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// A local image of the host's engine.
    pub image: String,
    /// The program and its arguments; empty keeps the image's command.
    #[serde(default)]
    pub command: Vec<String>,
    /// The working folder; `/workspace` by default.
    pub workdir: Option<String>,
    /// Environment variables.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// CPU, memory and GPUs.
    #[serde(default)]
    pub resources: Resources,
    /// A project of the run's owner copied into the working folder.
    pub project: Option<String>,
    /// Files put into the working folder before the start, by path.
    #[serde(default)]
    pub inputs: BTreeMap<String, InputSource>,
    /// Files to collect, relative to the working folder.
    #[serde(default)]
    pub outputs: Vec<String>,
}

/// Where an input file comes from.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum InputSource {
    /// An artifact of the run's owner, by its key.
    Artifact(String),
    /// The part of input `in` this JSON pointer names.
    Input(String),
}

/// The bytes of the part of `input` that `pointer` names: a string's text, else JSON.
fn input_part(input: Option<&Value>, path: &str, pointer: &str) -> Result<Vec<u8>, NodeError> {
    let part = input.and_then(|v| v.pointer(pointer)).ok_or_else(|| {
        NodeError::invalid_input(format!(
            "input file '{path}': input 'in' has nothing at '{pointer}'"
        ))
    })?;
    Ok(match part {
        Value::String(text) => text.clone().into_bytes(),
        other => other.to_string().into_bytes(),
    })
}

/// The job `config` describes, with `input` as `WEFT_INPUT`.
pub fn spec(config: &Config, input: Option<&Value>) -> Result<JobSpec, NodeError> {
    let mut spec = JobSpec::new(&config.image)
        .command(config.command.iter().cloned())
        .workdir(config.workdir.clone())
        .resources(&config.resources)
        .project(config.project.clone());
    for (name, value) in &config.env {
        spec = spec.env(name, value);
    }
    if let Some(input) = input {
        spec = spec.env("WEFT_INPUT", &input.to_string());
    }
    for (path, source) in &config.inputs {
        spec = match source {
            InputSource::Artifact(key) => spec.input_artifact(path, key),
            InputSource::Input(pointer) => spec.input_data(path, input_part(input, path, pointer)?),
        };
    }
    for path in &config.outputs {
        spec = spec.output(path);
    }
    Ok(spec)
}

/// A collected file as a JSON value: parsed JSON, else text, `null` when not written.
pub fn file_value(data: Option<&[u8]>) -> Value {
    match data {
        None => Value::Null,
        Some(bytes) => serde_json::from_slice(bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned())),
    }
}

impl Node for ContainerJob {
    type Config = Config;

    fn describe() -> Description {
        Description::new(
            "container-job",
            "0.1.0",
            "Runs a command in a container image for the run's owner and outputs its exit code, last lines and files",
        )
        .input(
            Port::new("in", Kind::Any)
                .optional()
                .summary("passed to the job as JSON in WEFT_INPUT"),
        )
        .output(Port::new("out", Kind::Object).summary("{exit_code, logs, files}"))
        .capability("jobs")
        // Only for inputs that name an artifact; without the grant such a job is refused.
        .capability("artifacts")
        .config_schema(json!({
            "type": "object",
            "required": ["image"],
            "properties": {
                "image": { "type": "string", "minLength": 1, "description": "a local image of the host's engine" },
                "command": { "type": "array", "items": { "type": "string" } },
                "workdir": { "type": "string", "pattern": "^/" },
                "env": { "type": "object", "additionalProperties": { "type": "string" } },
                "resources": resources_schema(),
                "project": { "type": "string", "description": "a project of the run's owner, copied into the working folder" },
                "inputs": {
                    "type": "object",
                    "description": "files put into the working folder before the start, by relative path",
                    "additionalProperties": {
                        "oneOf": [
                            { "type": "object", "required": ["artifact"], "properties": { "artifact": { "type": "string", "description": "an artifact key of the run's owner" } }, "additionalProperties": false },
                            { "type": "object", "required": ["input"], "properties": { "input": { "type": "string", "description": "a JSON pointer into input 'in' (\"\" for all of it)" } }, "additionalProperties": false }
                        ]
                    }
                },
                "outputs": { "type": "array", "items": { "type": "string" }, "description": "files to collect, relative to the working folder" }
            },
            "additionalProperties": false
        }))
    }

    fn run(config: Config, inputs: Inputs) -> Result<Outputs, NodeError> {
        let input = inputs.opt_json("in")?;
        let exit = weft_sdk::jobs::run(&spec(&config, input.as_ref())?)?;
        let files: Map<String, Value> = exit
            .outputs
            .iter()
            .map(|f| (f.path.clone(), file_value(f.data.as_deref())))
            .collect();
        Ok(Outputs::new().json(
            "out",
            json!({
                "exit_code": exit.exit_code,
                "logs": last_lines(&exit.log_tail, 50),
                "files": files,
            }),
        ))
    }
}

weft_sdk::export_node!(ContainerJob);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_json_when_they_parse_and_text_otherwise() {
        assert_eq!(file_value(Some(b"{\"a\": 1}")), json!({"a": 1}));
        assert_eq!(file_value(Some(b"plain")), json!("plain"));
        assert_eq!(file_value(None), Value::Null);
    }

    #[test]
    fn unknown_config_fields_are_refused() {
        let err =
            weft_sdk::node::call::<ContainerJob>(r#"{"image": "x", "cmd": []}"#, Inputs::new())
                .unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidConfig);
    }
}
