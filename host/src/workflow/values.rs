//! Where a run keeps its nodes' values. A value up to `[workflows] inline_value_bytes` stays
//! inline: in the executor's memory and in the node's row. A larger one is written once to
//! storage (opendal, `<values_dir>/<run id>/<node id>/<port>`); memory and rows keep only a
//! reference ([`Stored`]), and the value is read back while a node takes it as an input or a
//! client downloads it. So a run holds in memory its small values and the values of the nodes
//! running, never every large output until it ends.
//!
//! Not here: how a row stores values and references (see `encoding`), the caps on outputs (see
//! the executor).

use crate::error::{Error, Result};
use bytes::Bytes;
use futures::StreamExt as _;
use futures::stream::BoxStream;
use opendal::Operator;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use utoipa::ToSchema;
use weft_runtime::Value;

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
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Held {
    Inline(Value),
    Stored(Stored),
}

impl Held {
    /// The value's size in bytes, wherever it is.
    pub(crate) fn size(&self) -> u64 {
        match self {
            Held::Inline(value) => value.len() as u64,
            Held::Stored(stored) => stored.size,
        }
    }
}

/// Splits a node's values into those kept inline and the references of those kept out of line,
/// as the API shows them.
pub(super) fn split(
    values: BTreeMap<String, Held>,
) -> (BTreeMap<String, Value>, BTreeMap<String, Stored>) {
    let mut inline = BTreeMap::new();
    let mut stored = BTreeMap::new();
    for (port, held) in values {
        match held {
            Held::Inline(value) => {
                inline.insert(port, value);
            }
            Held::Stored(reference) => {
                stored.insert(port, reference);
            }
        }
    }
    (inline, stored)
}

/// The values [`split`] parted, together again.
pub(super) fn join(
    inline: Option<&BTreeMap<String, Value>>,
    stored: &BTreeMap<String, Stored>,
) -> HashMap<String, Held> {
    let inline = inline
        .into_iter()
        .flatten()
        .map(|(port, value)| (port.clone(), Held::Inline(value.clone())));
    let stored = stored
        .iter()
        .map(|(port, reference)| (port.clone(), Held::Stored(reference.clone())));
    inline.chain(stored).collect()
}

/// The storage of a run's large values.
#[derive(Clone)]
pub(crate) struct RunValues {
    storage: Operator,
    inline_bytes: u64,
}

/// A download's content.
pub(super) type Chunks = BoxStream<'static, std::io::Result<Bytes>>;

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
    pub(crate) fn open(dir: &Path, inline_bytes: u64) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
        let storage = Operator::new(opendal::services::Fs::default().root(&dir.to_string_lossy()))?;
        Ok(Self {
            storage,
            inline_bytes,
        })
    }

    /// Keeps `value`, output `port` of node `node`: inline when small, else written to storage.
    pub(crate) async fn keep(
        &self,
        run: &str,
        node: &str,
        port: &str,
        value: Value,
    ) -> Result<Held> {
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
    pub(crate) async fn load(&self, run: &str, held: &Held) -> Result<Value> {
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
    pub(crate) async fn read(&self, run: &str, held: &Held) -> Result<(StoredKind, u64, Chunks)> {
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
    pub(crate) async fn remove_run(&self, run: &str) -> Result<()> {
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
    fn values_split_by_where_they_are_and_join_again() {
        let small = Held::Inline(Value::from_json(&json!({"a": 1})));
        let big = Held::Stored(Stored {
            kind: StoredKind::Json,
            size: 9,
            node: "a".into(),
            port: "out".into(),
        });
        let values: BTreeMap<String, Held> =
            [("x".into(), small.clone()), ("out".into(), big.clone())].into();
        let (inline, stored) = split(values);
        assert_eq!(inline.keys().collect::<Vec<_>>(), ["x"]);
        assert_eq!(stored.keys().collect::<Vec<_>>(), ["out"]);
        let joined = join(Some(&inline), &stored);
        assert_eq!((&joined["x"], &joined["out"]), (&small, &big));
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
