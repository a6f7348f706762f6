//! DVC's own files, read and written: a `.dvc` file's outputs (YAML) and a folder's manifest
//! (the `.dir` object: JSON, `[{"md5": ..., "relpath": ...}, ...]` sorted by path).

use super::objects::Oid;
use crate::error::{Code, Error, Result};
use serde::Deserialize;

/// One output a `.dvc` file tracks.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Out {
    /// Relative to the project: the `.dvc` file's folder joined with the output's path.
    pub(super) path: String,
    pub(super) oid: Oid,
    /// Bytes and files as the `.dvc` file states them (until the manifest is known).
    pub(super) bytes: i64,
    pub(super) files: i64,
}

#[derive(Deserialize)]
struct DvcFile {
    #[serde(default)]
    outs: Vec<RawOut>,
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
        format!("'{file}' is not a usable .dvc file: {why}"),
    )
    .details(serde_json::json!({ "dvc_file": file }))
}

/// The outputs of the `.dvc` file at `file` (its path in the project), whose text is `text`.
pub(super) fn dvc_file(file: &str, text: &[u8]) -> Result<Vec<Out>> {
    let parsed: DvcFile = serde_norway::from_slice(text).map_err(|e| invalid(file, e))?;
    let folder = file.rsplit_once('/').map(|(folder, _)| folder);
    parsed
        .outs
        .into_iter()
        .map(|out| {
            if out.hash.as_deref() != Some("md5") {
                return Err(invalid(file, format!("'{}' was added by DVC 2", out.path))
                    .hint("Weft's remote keeps DVC 3's objects: `dvc cache migrate --dvc-files` with DVC 3, commit and push"));
            }
            let oid = out.md5.as_deref().and_then(Oid::parse).ok_or_else(|| {
                invalid(file, format!("'{}' has no md5", out.path))
                    .hint("`dvc add` or `dvc commit` it, then commit the .dvc file")
            })?;
            let path = match folder {
                Some(folder) => format!("{folder}/{}", out.path),
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
        })
        .collect()
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
