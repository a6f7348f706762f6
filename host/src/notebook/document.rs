//! The `.ipynb` document (nbformat 4.5): read and checked, a cell found or added, its outputs
//! written back. Fields Weft does not know are kept as they were.
//!
//! Not a general nbformat library: no upgrades from nbformat 3, no trusted-output signatures.

use crate::error::{Code, Error, Result};
use bytes::Bytes;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

/// A notebook as stored in its `.ipynb` file.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub(crate) struct Document {
    pub cells: Vec<Cell>,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub metadata: Map<String, Value>,
    pub nbformat: u32,
    pub nbformat_minor: u32,
}

/// What a cell holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CellType {
    Code,
    Markdown,
    Raw,
}

/// One cell. `execution_count` and `outputs` belong to code cells only.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Cell {
    #[serde(default)]
    pub id: String,
    pub cell_type: CellType,
    #[serde(deserialize_with = "multiline")]
    pub source: String,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub metadata: Map<String, Value>,
    #[serde(default)]
    pub execution_count: Option<i64>,
    /// nbformat outputs: `stream`, `execute_result`, `display_data`, `error`.
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub outputs: Vec<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub attachments: Option<Value>,
}

/// nbformat's multi-line strings: one string, or a list of lines to join.
fn multiline<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Text {
        One(String),
        Lines(Vec<String>),
    }
    Ok(match Text::deserialize(deserializer)? {
        Text::One(text) => text,
        Text::Lines(lines) => lines.concat(),
    })
}

/// `text` as nbformat writes it: a list of lines, each keeping its newline.
fn lines(text: &str) -> Value {
    Value::Array(
        text.split_inclusive('\n')
            .map(|line| Value::String(line.into()))
            .collect(),
    )
}

fn new_cell_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn valid_cell_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn invalid(path: &str, why: impl std::fmt::Display) -> Error {
    Error::new(
        Code::NotebookInvalid,
        format!("'{path}' is not a valid nbformat 4 notebook: {why}"),
    )
    .details(json!({ "path": path }))
    .hint("fix the file (Jupyter's own editor shows what is wrong) or choose another path")
}

impl Document {
    /// An empty notebook on `kernel`.
    pub(crate) fn new(kernel: &str) -> Self {
        let (display_name, language) = if kernel.starts_with("python") {
            ("Python 3 (ipykernel)", "python")
        } else {
            (kernel, kernel)
        };
        Self {
            cells: Vec::new(),
            metadata: json!({
                "kernelspec": {"name": kernel, "display_name": display_name, "language": language},
                "language_info": {"name": language},
            })
            .as_object()
            .cloned()
            .unwrap_or_default(),
            nbformat: 4,
            nbformat_minor: 5,
        }
    }

    /// Reads and checks the file at `path`. Cells without ids (nbformat before 4.5) get one.
    pub(crate) fn parse(path: &str, content: &[u8]) -> Result<Self> {
        let mut doc: Document = serde_json::from_slice(content).map_err(|e| invalid(path, e))?;
        if doc.nbformat != 4 {
            return Err(invalid(
                path,
                format!("nbformat {} (only 4 is read)", doc.nbformat),
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, cell) in doc.cells.iter_mut().enumerate() {
            if cell.id.is_empty() {
                cell.id = new_cell_id();
            } else if !valid_cell_id(&cell.id) {
                return Err(invalid(
                    path,
                    format!("cell {i} has the id '{}', which nbformat refuses", cell.id),
                ));
            }
            if !seen.insert(cell.id.clone()) {
                return Err(invalid(
                    path,
                    format!("two cells have the id '{}'", cell.id),
                ));
            }
            if let Some(bad) = cell.outputs.iter().find(|o| !o["output_type"].is_string()) {
                return Err(invalid(
                    path,
                    format!("cell {i} has an output without output_type: {bad}"),
                ));
            }
        }
        doc.nbformat_minor = doc.nbformat_minor.max(5);
        Ok(doc)
    }

    /// The file's content, as nbformat writes it (one-space indent, lists of lines).
    pub(crate) fn to_bytes(&self) -> Bytes {
        let cells: Vec<Value> = self.cells.iter().map(Cell::to_ipynb).collect();
        let doc = json!({
            "cells": cells,
            "metadata": self.metadata,
            "nbformat": self.nbformat,
            "nbformat_minor": self.nbformat_minor,
        });
        let mut out = Vec::new();
        let formatter = serde_json::ser::PrettyFormatter::with_indent(b" ");
        let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
        doc.serialize(&mut serializer)
            .expect("a JSON value serialises");
        out.push(b'\n');
        out.into()
    }

    /// The cell an execution runs, with the code to run. `cell_id` alone runs that code cell;
    /// with `code` too, its source is replaced first; `code` alone adds a new cell at the end.
    pub(crate) fn prepare(
        &mut self,
        cell_id: Option<&str>,
        code: Option<String>,
    ) -> Result<(String, String)> {
        let Some(cell_id) = cell_id else {
            let code = code
                .ok_or_else(|| Error::invalid_field("code", "give `code`, `cell_id`, or both"))?;
            let cell = Cell::code(code.clone());
            let id = cell.id.clone();
            self.cells.push(cell);
            return Ok((id, code));
        };
        let cell = self
            .cells
            .iter_mut()
            .find(|c| c.id == cell_id)
            .ok_or_else(|| {
                Error::new(
                    Code::NotebookCellNotFound,
                    format!("the notebook has no cell '{cell_id}'"),
                )
                .details(json!({ "cell_id": cell_id }))
                .hint("GET the notebook for its cells and their ids")
            })?;
        if cell.cell_type != CellType::Code {
            return Err(Error::invalid_field(
                "cell_id",
                format!("cell '{cell_id}' is a {:?} cell, not code", cell.cell_type).to_lowercase(),
            ));
        }
        if let Some(code) = code {
            cell.source = code;
        }
        Ok((cell.id.clone(), cell.source.clone()))
    }

    /// Writes an execution's count and outputs into its cell (streams of one name that follow
    /// each other merged, as Jupyter saves them).
    pub(crate) fn record(
        &mut self,
        cell_id: &str,
        execution_count: Option<i64>,
        outputs: &[Value],
    ) {
        let Some(cell) = self.cells.iter_mut().find(|c| c.id == cell_id) else {
            return;
        };
        cell.execution_count = execution_count;
        cell.outputs = merge_streams(outputs);
    }
}

impl Cell {
    fn code(source: String) -> Self {
        Self {
            id: new_cell_id(),
            cell_type: CellType::Code,
            source,
            metadata: Map::new(),
            execution_count: None,
            outputs: Vec::new(),
            attachments: None,
        }
    }

    fn to_ipynb(&self) -> Value {
        let mut cell = json!({
            "id": self.id,
            "cell_type": self.cell_type,
            "metadata": self.metadata,
            "source": lines(&self.source),
        });
        let fields = cell.as_object_mut().expect("an object");
        match self.cell_type {
            CellType::Code => {
                fields.insert("execution_count".into(), json!(self.execution_count));
                let outputs = self.outputs.iter().map(output_to_ipynb).collect();
                fields.insert("outputs".into(), Value::Array(outputs));
            }
            CellType::Markdown | CellType::Raw => {
                if let Some(attachments) = &self.attachments {
                    fields.insert("attachments".into(), attachments.clone());
                }
            }
        }
        cell
    }
}

/// A stream's text as a list of lines, as nbformat writes it.
fn output_to_ipynb(output: &Value) -> Value {
    let mut output = output.clone();
    if output["output_type"] == "stream"
        && let Some(text) = output["text"].as_str().map(lines)
    {
        output["text"] = text;
    }
    output
}

fn stream_text(output: &Value) -> String {
    match &output["text"] {
        Value::String(text) => text.clone(),
        Value::Array(parts) => parts.iter().filter_map(Value::as_str).collect(),
        _ => String::new(),
    }
}

fn merge_streams(outputs: &[Value]) -> Vec<Value> {
    let mut merged: Vec<Value> = Vec::with_capacity(outputs.len());
    for output in outputs {
        if output["output_type"] == "stream"
            && let Some(last) = merged.last_mut()
            && last["output_type"] == "stream"
            && last["name"] == output["name"]
        {
            let text = stream_text(last) + &stream_text(output);
            last["text"] = Value::String(text);
            continue;
        }
        merged.push(output.clone());
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_notebook_round_trips_with_its_cells_outputs_and_unknown_metadata() {
        let mut doc = Document::new("python3");
        doc.metadata.insert("custom".into(), json!({"kept": true}));
        let (cell, code) = doc.prepare(None, Some("print(1)\nx = 2\n".into())).unwrap();
        assert_eq!(code, "print(1)\nx = 2\n");
        doc.record(
            &cell,
            Some(1),
            &[
                json!({"output_type": "stream", "name": "stdout", "text": "a\n"}),
                json!({"output_type": "stream", "name": "stdout", "text": "b\n"}),
                json!({"output_type": "stream", "name": "stderr", "text": "c\n"}),
                json!({"output_type": "execute_result", "execution_count": 1, "data": {"text/plain": "2"}, "metadata": {}}),
            ],
        );
        let bytes = doc.to_bytes();
        let raw: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(raw["nbformat"], 4);
        assert_eq!(raw["nbformat_minor"], 5);
        assert_eq!(raw["cells"][0]["source"], json!(["print(1)\n", "x = 2\n"]));
        assert_eq!(raw["cells"][0]["outputs"][0]["text"], json!(["a\n", "b\n"]));
        assert_eq!(raw["cells"][0]["outputs"].as_array().unwrap().len(), 3);
        assert_eq!(raw["metadata"]["custom"]["kept"], true);

        let again = Document::parse("a.ipynb", &bytes).unwrap();
        assert_eq!(again.cells[0].id, cell);
        assert_eq!(again.cells[0].source, "print(1)\nx = 2\n");
        assert_eq!(again.cells[0].execution_count, Some(1));
        assert_eq!(
            again.to_bytes(),
            bytes,
            "reading and writing changes nothing"
        );
    }

    #[test]
    fn markdown_cells_carry_no_execution_fields_and_cannot_run() {
        let text = br##"{"cells":[{"cell_type":"markdown","metadata":{},"source":["# Title"]}],
                        "metadata":{},"nbformat":4,"nbformat_minor":4}"##;
        let mut doc = Document::parse("a.ipynb", text).unwrap();
        assert_eq!(doc.nbformat_minor, 5, "upgraded to 4.5: cells have ids");
        let id = doc.cells[0].id.clone();
        assert!(valid_cell_id(&id));
        let raw: Value = serde_json::from_slice(&doc.to_bytes()).unwrap();
        assert!(raw["cells"][0].get("outputs").is_none());
        assert!(raw["cells"][0].get("execution_count").is_none());
        let err = doc.prepare(Some(&id), None).unwrap_err();
        assert_eq!(err.code, Code::InvalidField);
        let err = doc.prepare(Some("nope"), None).unwrap_err();
        assert_eq!(err.code, Code::NotebookCellNotFound);
        let err = doc.prepare(None, None).unwrap_err();
        assert_eq!(err.code, Code::InvalidField);
    }

    #[test]
    fn a_cell_run_again_with_new_code_replaces_its_source() {
        let mut doc = Document::new("python3");
        let (id, _) = doc.prepare(None, Some("1".into())).unwrap();
        let (same, code) = doc.prepare(Some(&id), Some("2".into())).unwrap();
        assert_eq!((same.as_str(), code.as_str()), (id.as_str(), "2"));
        assert_eq!(doc.cells.len(), 1);
    }

    #[test]
    fn files_that_are_not_nbformat_4_are_refused_with_the_reason() {
        for (text, why) in [
            (&b"not json"[..], "expected"),
            (br#"{"cells":[],"metadata":{},"nbformat":3,"nbformat_minor":0}"#, "nbformat 3"),
            (br#"{"cells":[{"cell_type":"code","source":"","id":"a b"}],"metadata":{},"nbformat":4,"nbformat_minor":5}"#, "refuses"),
            (br#"{"cells":[{"cell_type":"code","source":"","id":"a"},{"cell_type":"code","source":"","id":"a"}],"metadata":{},"nbformat":4,"nbformat_minor":5}"#, "two cells"),
            (br#"{"cells":[{"cell_type":"code","source":"","outputs":[{}]}],"metadata":{},"nbformat":4,"nbformat_minor":5}"#, "output_type"),
            (br#"{"cells":[{"cell_type":"heading","source":""}],"metadata":{},"nbformat":4,"nbformat_minor":5}"#, "heading"),
        ] {
            let err = Document::parse("bad.ipynb", text).unwrap_err();
            assert_eq!(err.code, Code::NotebookInvalid);
            assert!(err.message.contains(why), "{why}: {}", err.message);
        }
    }
}
