//! DVC's own files, read and written: the outputs a `.dvc` file tracks and those each stage of
//! a `dvc.lock` file produced (YAML), and a folder's manifest (the `.dir` object: JSON,
//! `[{"md5": ..., "relpath": ...}, ...]` sorted by path).

use super::objects::Oid;
use crate::error::{Code, Error, Result};
use serde::Deserialize;
use std::collections::BTreeMap;

/// One output a `.dvc` file tracks or a `dvc.lock` stage produced.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Out {
    /// Relative to the project: the DVC file's folder joined with the output's path.
    pub(super) path: String,
    pub(super) oid: Oid,
    /// Bytes and files as the DVC file states them (until the manifest is known).
    pub(super) bytes: i64,
    pub(super) files: i64,
}

#[derive(Deserialize)]
struct DvcFile {
    #[serde(default)]
    outs: Vec<RawOut>,
}

/// A `dvc.lock` file (DVC 2's and 3's `schema: '2.0'`): what each stage last produced.
#[derive(Deserialize)]
struct LockFile {
    schema: Option<String>,
    #[serde(default)]
    stages: BTreeMap<String, DvcFile>,
}

#[derive(Deserialize)]
struct RawOut {
    path: String,
    md5: Option<String>,
    size: Option<i64>,
    nfiles: Option<i64>,
    hash: Option<String>,
}

fn invalid(file: &str, why: impl std::fmt::Display) -> Error {
    Error::new(
        Code::DatasetInvalid,
        format!("'{file}' is not a usable DVC file: {why}"),
    )
    .details(serde_json::json!({ "dvc_file": file }))
}

/// Whether the project's file `path` is one whose outputs become dataset versions: a `.dvc`
/// file or a `dvc.lock` file.
pub(super) fn is_dvc_file(path: &str) -> bool {
    path.ends_with(".dvc") || is_lock_file(path)
}

fn is_lock_file(path: &str) -> bool {
    path == "dvc.lock" || path.ends_with("/dvc.lock")
}

/// The `dvc.yaml` beside the lock file `file`: it holds each stage's `wdir`, which the lock
/// file leaves out although its paths are relative to it.
pub(super) fn pipeline_of(file: &str) -> Option<String> {
    is_lock_file(file).then(|| format!("{}dvc.yaml", &file[..file.len() - "dvc.lock".len()]))
}

/// The outputs the DVC file at `file` (its path in the project: a `.dvc` or `dvc.lock`
/// file), whose text is `text`, names; `pipeline` is the text of a lock file's
/// [`pipeline_of`], where there is one.
pub(super) fn outs(file: &str, text: &[u8], pipeline: Option<&[u8]>) -> Result<Vec<Out>> {
    if is_lock_file(file) {
        dvc_lock(file, text, pipeline)
    } else {
        dvc_file(file, text)
    }
}

/// The outputs of the `.dvc` file at `file`, whose text is `text`.
fn dvc_file(file: &str, text: &[u8]) -> Result<Vec<Out>> {
    let parsed: DvcFile = serde_norway::from_slice(text).map_err(|e| invalid(file, e))?;
    let hint = "`dvc add` or `dvc commit` it, then commit the .dvc file";
    parsed
        .outs
        .into_iter()
        .map(|out| output(file, out, hint))
        .collect()
}

/// A stage of a `dvc.yaml` file, for its working directory. A `foreach` or `matrix` stage
/// gives it under `do` or beside the matrix.
#[derive(Deserialize)]
struct PipelineStage {
    wdir: Option<String>,
    #[serde(rename = "do")]
    each: Option<Box<PipelineStage>>,
}

#[derive(Deserialize)]
struct Pipeline {
    #[serde(default)]
    stages: BTreeMap<String, PipelineStage>,
}

/// The working directory of each stage of `pipeline` (a `dvc.yaml`) that names one other
/// than its own folder.
fn working_dirs(file: &str, pipeline: &[u8]) -> Result<BTreeMap<String, String>> {
    let parsed: Pipeline = serde_norway::from_slice(pipeline).map_err(|e| {
        invalid(file, format!("its dvc.yaml cannot be read: {e}"))
            .hint("`dvc repro` reads it: fix what it reports, commit and push")
    })?;
    let mut dirs = BTreeMap::new();
    for (name, stage) in parsed.stages {
        let wdir = stage.wdir.or(stage.each.and_then(|each| each.wdir));
        match wdir.as_deref().map(|w| w.trim_end_matches('/')) {
            None | Some("." | "") => {}
            Some(templated) if templated.contains("${") => {
                return Err(invalid(
                    file,
                    format!("stage '{name}' has a templated wdir ('{templated}')"),
                )
                .hint("record its outputs with a .dvc file, or give the stage a literal wdir"));
            }
            Some(wdir) => {
                dirs.insert(name, wdir.trim_start_matches("./").to_string());
            }
        }
    }
    Ok(dirs)
}

/// The outputs of every stage of the `dvc.lock` file at `file`, whose text is `text`, in
/// the order of the stages' names; each below its stage's working directory, which
/// `pipeline` (the `dvc.yaml` beside it) names.
fn dvc_lock(file: &str, text: &[u8], pipeline: Option<&[u8]>) -> Result<Vec<Out>> {
    let parsed: LockFile = serde_norway::from_slice(text).map_err(|e| invalid(file, e))?;
    if parsed.schema.as_deref() != Some("2.0") {
        return Err(
            invalid(file, "it is not a lock file of schema 2.0 (DVC 2 or 3)")
                .hint("`dvc repro` with DVC 3 rewrites it; commit and push it"),
        );
    }
    let wdirs = pipeline
        .map(|pipeline| working_dirs(file, pipeline))
        .transpose()?
        .unwrap_or_default();
    let hint = "`dvc repro` (or `dvc commit`) the stage, then commit dvc.lock";
    let mut outs = Vec::new();
    for (name, stage) in parsed.stages {
        // A `foreach` or `matrix` stage's entries are named `stage@key`.
        let base = name.split_once('@').map_or(name.as_str(), |(base, _)| base);
        for mut out in stage.outs {
            if let Some(wdir) = wdirs.get(base) {
                out.path = format!("{wdir}/{}", out.path);
            }
            outs.push(output(file, out, hint)?);
        }
    }
    Ok(outs)
}

/// Output `out` of DVC file `file`, its path made relative to the project; `hint` says how
/// to give an output without an md5 one.
fn output(file: &str, out: RawOut, hint: &str) -> Result<Out> {
    if out.hash.as_deref() != Some("md5") {
        return Err(invalid(file, format!("'{}' was added by DVC 2", out.path))
            .hint("Weft's remote keeps DVC 3's objects: `dvc cache migrate --dvc-files` with DVC 3, commit and push"));
    }
    let oid = out
        .md5
        .as_deref()
        .and_then(Oid::parse)
        .ok_or_else(|| invalid(file, format!("'{}' has no md5", out.path)).hint(hint))?;
    let path = match file.rsplit_once('/') {
        Some((folder, _)) => format!("{folder}/{}", out.path),
        None => out.path.clone(),
    };
    let path = crate::workspace::paths::checked("outs.path", &path)
        .map_err(|_| invalid(file, format!("'{}' is outside the project", out.path)))?;
    Ok(Out {
        path,
        files: out.nfiles.unwrap_or(1),
        bytes: out.size.unwrap_or(0),
        oid,
    })
}

#[derive(Deserialize)]
struct Entry {
    md5: String,
    relpath: String,
}

/// The `(relpath, md5)` of each file a folder's manifest lists.
pub(super) fn entries(manifest: &[u8]) -> Result<Vec<(String, String)>> {
    let entries: Vec<Entry> = serde_json::from_slice(manifest).map_err(|e| {
        Error::new(
            Code::DatasetInvalid,
            format!("a folder's manifest is not DVC's JSON: {e}"),
        )
    })?;
    Ok(entries.into_iter().map(|e| (e.relpath, e.md5)).collect())
}

/// The manifest of the files `(relpath, md5)`, byte for byte as DVC writes it (Python's
/// `json.dumps(..., sort_keys=True)`), so the same folder gets the same oid either way.
pub(super) fn manifest(files: &mut [(String, String)]) -> Vec<u8> {
    files.sort();
    let entries: Vec<String> = files
        .iter()
        .map(|(path, md5)| {
            format!(
                "{{\"md5\": {}, \"relpath\": {}}}",
                python_json(md5),
                python_json(path)
            )
        })
        .collect();
    format!("[{}]", entries.join(", ")).into_bytes()
}

/// A string as Python's `json.dumps` writes it (non-ASCII escaped as `\uXXXX`).
fn python_json(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dvc_3_file_names_its_outputs_below_its_folder() {
        let text = b"outs:\n- md5: 2c673be473351c2377be4e610f588a00.dir\n  size: 21\n  nfiles: 3\n  hash: md5\n  path: images\n";
        let outs = dvc_file("raw/images.dvc", text).unwrap();
        assert_eq!(outs.len(), 1);
        assert_eq!(outs[0].path, "raw/images");
        assert!(outs[0].oid.is_dir());
        assert_eq!((outs[0].bytes, outs[0].files), (21, 3));
        let legacy = b"outs:\n- md5: 2c673be473351c2377be4e610f588a00\n  path: a.csv\n";
        assert_eq!(
            dvc_file("a.csv.dvc", legacy).unwrap_err().code,
            Code::DatasetInvalid
        );
        let escaping =
            b"outs:\n- md5: 2c673be473351c2377be4e610f588a00\n  hash: md5\n  path: ../x\n";
        assert!(dvc_file("a.dvc", escaping).is_err());
    }

    #[test]
    fn a_lock_file_names_each_stage_s_outputs_below_its_folder() {
        let text = b"schema: '2.0'\nstages:\n  prepare:\n    cmd: cp -r raw out\n    deps:\n    - path: raw\n      hash: md5\n      md5: 11111111111111111111111111111111.dir\n    outs:\n    - path: out\n      hash: md5\n      md5: 2c673be473351c2377be4e610f588a00.dir\n      size: 21\n      nfiles: 3\n  score:\n    cmd: wc -l out > n.txt\n    outs:\n    - path: n.txt\n      hash: md5\n      md5: 2c673be473351c2377be4e610f588a01\n      size: 2\n";
        assert!(is_dvc_file("pipeline/dvc.lock") && is_dvc_file("dvc.lock"));
        assert!(!is_dvc_file("notdvc.lock"));
        let outs = outs("pipeline/dvc.lock", text, None).unwrap();
        let paths: Vec<&str> = outs.iter().map(|o| o.path.as_str()).collect();
        assert_eq!(
            paths,
            ["pipeline/out", "pipeline/n.txt"],
            "outs only, not deps"
        );
        assert_eq!((outs[0].bytes, outs[0].files), (21, 3));
        assert!(!outs[1].oid.is_dir());
        let old = b"prepare:\n  cmd: x\n  outs:\n  - path: out\n    md5: 2c673be473351c2377be4e610f588a00\n";
        assert_eq!(
            super::outs("dvc.lock", old, None).unwrap_err().code,
            Code::DatasetInvalid
        );
        let unrun = b"schema: '2.0'\nstages:\n  a:\n    cmd: x\n    outs:\n    - path: out\n      hash: md5\n";
        assert!(super::outs("dvc.lock", unrun, None).is_err());
    }

    #[test]
    fn a_lock_file_s_outputs_are_below_their_stage_s_wdir() {
        // As `dvc repro` wrote it for these stages: paths relative to each stage's wdir.
        let lock = b"schema: '2.0'\nstages:\n  make:\n    cmd: echo hi > out.txt\n    outs:\n    - path: out.txt\n      hash: md5\n      md5: 764efa883dda1e11db47671c4a3bbd9e\n      size: 3\n  each@a:\n    cmd: x\n    outs:\n    - path: a.txt\n      hash: md5\n      md5: 764efa883dda1e11db47671c4a3bbd9f\n  here:\n    cmd: x\n    outs:\n    - path: h.txt\n      hash: md5\n      md5: 764efa883dda1e11db47671c4a3bbd90\n";
        let pipeline = b"stages:\n  make:\n    wdir: sub\n    cmd: echo hi > out.txt\n    outs: [out.txt]\n  each:\n    foreach: [a]\n    do:\n      wdir: ./by-key/\n      cmd: x\n      outs:\n      - ${item}.txt\n  here:\n    wdir: .\n    cmd: x\n    outs: [h.txt]\n";
        let found = outs("p/dvc.lock", lock, Some(pipeline)).unwrap();
        let paths: Vec<&str> = found.iter().map(|o| o.path.as_str()).collect();
        assert_eq!(paths, ["p/by-key/a.txt", "p/h.txt", "p/sub/out.txt"]);
        assert_eq!(pipeline_of("p/dvc.lock").as_deref(), Some("p/dvc.yaml"));
        assert_eq!(pipeline_of("dvc.lock").as_deref(), Some("dvc.yaml"));
        assert_eq!(pipeline_of("a.dvc"), None);
        let templated = b"stages:\n  make:\n    wdir: ${dir}\n    cmd: x\n";
        assert_eq!(
            outs("dvc.lock", lock, Some(templated)).unwrap_err().code,
            Code::DatasetInvalid
        );
    }

    #[test]
    fn manifests_are_written_as_dvc_writes_them() {
        let mut files = vec![
            ("b/é.txt".to_string(), "1".repeat(32)),
            ("a.txt".to_string(), "0".repeat(32)),
        ];
        let text = String::from_utf8(manifest(&mut files)).unwrap();
        assert_eq!(
            text,
            format!(
                "[{{\"md5\": \"{}\", \"relpath\": \"a.txt\"}}, {{\"md5\": \"{}\", \"relpath\": \"b/\\u00e9.txt\"}}]",
                "0".repeat(32),
                "1".repeat(32)
            )
        );
        let read = entries(text.as_bytes()).unwrap();
        assert_eq!(read[1], ("b/é.txt".to_string(), "1".repeat(32)));
    }
}
