//! Where a run keeps its nodes' values. A value up to `[workflows] inline_value_bytes` stays
//! inline: in the executor's memory and in the node's row. A larger one is written once to
//! storage (opendal, `<values_dir>/<run id>/<node id>/<port>`); memory and rows keep only a
//! reference ([`Stored`]), and the value is read back while a node takes it as an input or a
//! client downloads it. So a run holds in memory its small values and the values of the nodes
//! running, never every large output until it ends.
//!
//! In a row's JSON the references sit under the key `$stored`, next to the inline ports: port
//! names never start with `$`, so that key is never a port.
//!
//! Not here: the caps on outputs (see the executor).

use crate::error::{Error, Result};
use bytes::Bytes;
use futures::StreamExt as _;
use futures::stream::BoxStream;
use opendal::Operator;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use utoipa::ToSchema;
use weft_runtime::Value;

/// The key holding the references of a row's values kept out of line.
const STORED_KEY: &str = "$stored";

/// A value kept out of line: output `port` of node `node` in the same run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Stored {
    pub kind: StoredKind,
    /// Bytes of its JSON text or of its bytes.
    pub size: u64,
    /// The node that produced it; download it from
    /// `GET /api/v1/runs/{run_id}/nodes/{node}/outputs/{port}`.
    pub node: String,
    pub port: String,
}

/// Whether a stored value is JSON text or bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StoredKind {
    Json,
    Bytes,
}

/// A port's value as a run holds it.
#[derive(Debug, Clone)]
pub enum Held {
    Inline(Value),
    Stored(Stored),
}

impl Held {
    /// The value's size in bytes, wherever it is.
    pub fn size(&self) -> u64 {
        match self {
            Held::Inline(value) => value.len() as u64,
            Held::Stored(stored) => stored.size,
        }
    }
}

/// Values by port in the JSON form a node's row keeps: the inline ones by port, the others'
/// references under `$stored`.
pub struct Ports<'a>(pub Vec<(&'a str, &'a Held)>);

impl Serialize for Ports<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let mut stored = BTreeMap::new();
        let mut map = s.serialize_map(None)?;
        for (port, held) in &self.0 {
            match held {
                Held::Inline(value) => map.serialize_entry(port, value)?,
                Held::Stored(reference) => {
                    stored.insert(*port, reference);
                }
            }
        }
        if !stored.is_empty() {
            map.serialize_entry(STORED_KEY, &stored)?;
        }
        map.end()
    }
}

/// A row's inline values by port, each kept as its JSON text: reading a run back builds no
/// tree of its values.
pub type Row = BTreeMap<String, Box<RawValue>>;

/// Splits a row into its inline values and the references of the values kept out of line.
pub fn split(row: Option<Row>) -> Result<(Option<Row>, BTreeMap<String, Stored>)> {
    let Some(mut row) = row else {
        return Ok((None, BTreeMap::new()));
    };
    let stored = match row.remove(STORED_KEY) {
        Some(refs) => serde_json::from_str(refs.get())
            .map_err(|e| Error::internal(format!("stored value references are unreadable: {e}")))?,
        None => BTreeMap::new(),
    };
    Ok((Some(row), stored))
}

/// The values by port of a row split by [`split`]; an unreadable inline value is left out.
pub fn held(inline: Option<&Row>, stored: &BTreeMap<String, Stored>) -> HashMap<String, Held> {
    let inline = inline.into_iter().flatten().filter_map(|(port, raw)| {
        let value = serde_json::from_str(raw.get()).ok()?;
        Some((port.clone(), Held::Inline(value)))
    });
    let stored = stored
        .iter()
        .map(|(port, reference)| (port.clone(), Held::Stored(reference.clone())));
    inline.chain(stored).collect()
}

/// The storage of a run's large values.
#[derive(Clone)]
pub struct RunValues {
    storage: Operator,
    inline_bytes: u64,
}

/// A download's content.
pub type Chunks = BoxStream<'static, std::io::Result<Bytes>>;

fn kind_of(value: &Value) -> StoredKind {
    match value {
        Value::Json(_) => StoredKind::Json,
        Value::Bytes(_) => StoredKind::Bytes,
    }
}

fn key(run: &str, node: &str, port: &str) -> String {
    format!("{run}/{node}/{port}")
}

fn storage_error(err: opendal::Error) -> Error {
    tracing::error!(error = %err, "the storage of run values failed");
    Error::internal(format!("the storage of run values failed: {}", err.kind()))
        .hint("check the folder set by [workflows] values_dir (free space, permissions)")
}

impl RunValues {
    /// Values larger than `inline_bytes` go to the folder `dir`.
    pub fn open(dir: &Path, inline_bytes: u64) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
        let storage = Operator::new(opendal::services::Fs::default().root(&dir.to_string_lossy()))?;
        Ok(Self {
            storage,
            inline_bytes,
        })
    }

    /// Keeps `value`, output `port` of node `node`: inline when small, else written to storage.
    pub async fn keep(&self, run: &str, node: &str, port: &str, value: Value) -> Result<Held> {
        if value.len() as u64 <= self.inline_bytes {
            return Ok(Held::Inline(value));
        }
        let kind = kind_of(&value);
        let size = value.len() as u64;
        self.storage
            .write(&key(run, node, port), value.to_bytes())
            .await
            .map_err(storage_error)?;
        Ok(Held::Stored(Stored {
            kind,
            size,
            node: node.into(),
            port: port.into(),
        }))
    }

    /// The value itself, read back from storage if it was stored.
    pub async fn load(&self, run: &str, held: &Held) -> Result<Value> {
        let stored = match held {
            Held::Inline(value) => return Ok(value.clone()),
            Held::Stored(stored) => stored,
        };
        // Into one buffer of the final size: the value is in memory once, not once per chunk
        // and again whole.
        let mut bytes = Vec::with_capacity(stored.size as usize);
        self.storage
            .reader(&key(run, &stored.node, &stored.port))
            .await
            .map_err(storage_error)?
            .read_into(&mut bytes, 0..stored.size)
            .await
            .map_err(storage_error)?;
        match stored.kind {
            StoredKind::Bytes => Ok(Value::Bytes(bytes.into())),
            StoredKind::Json => String::from_utf8(bytes)
                .map_err(|e| e.to_string())
                .and_then(|text| Value::json_text(text).map_err(|e| e.to_string()))
                .map_err(|e| Error::internal(format!("a stored value is unreadable: {e}"))),
        }
    }

    /// A value as a download: its kind, its size and its content in chunks (a stored value is
    /// streamed, never read whole).
    pub async fn read(&self, run: &str, held: &Held) -> Result<(StoredKind, u64, Chunks)> {
        let stored = match held {
            Held::Inline(value) => {
                let chunk = value.to_bytes();
                let size = chunk.len() as u64;
                let chunks = futures::stream::once(async move { Ok(chunk) }).boxed();
                return Ok((kind_of(value), size, chunks));
            }
            Held::Stored(stored) => stored,
        };
        let reader = self
            .storage
            .reader(&key(run, &stored.node, &stored.port))
            .await
            .map_err(storage_error)?;
        let chunks = reader
            .into_bytes_stream(0..stored.size)
            .await
            .map_err(storage_error)?;
        Ok((stored.kind, stored.size, chunks.boxed()))
    }

    /// Removes every stored value of `run`.
    pub async fn remove_run(&self, run: &str) -> Result<()> {
        self.storage
            .delete_with(&format!("{run}/"))
            .recursive(true)
            .await
            .map_err(storage_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rows_keep_inline_values_by_port_and_references_apart() {
        let small = Held::Inline(Value::from_json(&json!({"$stored": 1})));
        let big = Held::Stored(Stored {
            kind: StoredKind::Json,
            size: 9,
            node: "a".into(),
            port: "out".into(),
        });
        let text = serde_json::to_string(&Ports(vec![("x", &small), ("out", &big)])).unwrap();
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&text).unwrap(),
            json!({"x": {"$stored": 1},
                   "$stored": {"out": {"kind": "json", "size": 9, "node": "a", "port": "out"}}})
        );
        let (inline, stored) = split(Some(serde_json::from_str(&text).unwrap())).unwrap();
        assert_eq!(
            serde_json::to_value(&inline).unwrap(),
            json!({"x": {"$stored": 1}})
        );
        let held = held(inline.as_ref(), &stored);
        assert!(matches!(&held["x"], Held::Inline(v) if v.len() == 13));
        assert!(matches!(&held["out"], Held::Stored(s) if s.size == 9));
    }

    #[tokio::test]
    async fn large_values_go_to_storage_and_come_back() {
        let dir = tempfile::tempdir().unwrap();
        let values = RunValues::open(dir.path(), 4).unwrap();
        let small = values
            .keep("r", "n", "a", Value::from_json(&json!(12)))
            .await
            .unwrap();
        assert!(matches!(small, Held::Inline(_)));
        let text = Value::json_text("[0,0,0]".into()).unwrap();
        let big = values.keep("r", "n", "b", text.clone()).await.unwrap();
        assert!(matches!(&big, Held::Stored(s) if s.size == 7 && s.kind == StoredKind::Json));
        assert_eq!(std::fs::read(dir.path().join("r/n/b")).unwrap(), b"[0,0,0]");
        assert_eq!(values.load("r", &big).await.unwrap(), text);
        let bytes = Value::Bytes(vec![1, 2, 3, 4, 5].into());
        let big = values.keep("r", "n", "c", bytes.clone()).await.unwrap();
        assert_eq!(values.load("r", &big).await.unwrap(), bytes);
        values.remove_run("r").await.unwrap();
        assert!(!dir.path().join("r").exists());
    }
}
