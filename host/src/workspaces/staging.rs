//! Files written where no reader looks, then moved into a project in one step: an upload cut
//! short or a sync that fails half way leaves the project as it was, not with half a file.
//!
//! Staged files live under `.staging/<batch>/` in the projects' storage (project ids never
//! start with a dot), named by number so that no user path ever names a staging file.

use super::projects::storage_error;
use crate::error::Result;
use bytes::Bytes;
use opendal::Operator;
use sha2::{Digest, Sha256};

/// Where batches are staged, below the storage's root.
const ROOT: &str = ".staging/";

/// One batch of staged files; [`Staging::discard`] removes what was not committed.
#[derive(Clone)]
pub struct Staging {
    op: Operator,
    root: String,
}

/// A file being staged: its content goes through [`StagedWriter::write`].
pub struct StagedWriter {
    pub path: String,
    writer: opendal::Writer,
    digest: Sha256,
    pub size: u64,
}

/// A staged file, written whole.
pub struct Staged {
    pub path: String,
    pub size: u64,
    pub sha256: [u8; 32],
}

impl Staging {
    pub fn new(op: &Operator) -> Self {
        Self {
            op: op.clone(),
            root: format!("{ROOT}{}/", uuid::Uuid::new_v4()),
        }
    }

    /// Starts staged file number `n` of the batch.
    pub async fn writer(&self, n: u64) -> Result<StagedWriter> {
        let path = format!("{}{n}", self.root);
        let writer = self.op.writer(&path).await.map_err(storage_error)?;
        Ok(StagedWriter {
            path,
            writer,
            digest: Sha256::new(),
            size: 0,
        })
    }

    /// Stages `content` whole as file number `n`.
    pub async fn put(&self, n: u64, content: Bytes) -> Result<Staged> {
        let mut writer = self.writer(n).await?;
        writer.write(content).await?;
        writer.finish().await
    }

    /// Moves a staged file to `target`, replacing what was there.
    pub async fn commit(&self, staged: &str, target: &str) -> Result<()> {
        if self.op.info().capability().rename {
            self.op.rename(staged, target).await.map_err(storage_error)
        } else {
            self.op.copy(staged, target).await.map_err(storage_error)?;
            self.op.delete(staged).await.map_err(storage_error)
        }
    }

    /// Removes whatever of the batch is left (best effort: a leftover is only wasted space).
    pub async fn discard(&self) {
        if let Err(e) = self.op.delete_with(&self.root).recursive(true).await {
            tracing::warn!(batch = %self.root, error = %e, "cannot remove staged files");
        }
    }
}

impl StagedWriter {
    pub async fn write(&mut self, chunk: Bytes) -> Result<()> {
        self.digest.update(&chunk);
        self.size += chunk.len() as u64;
        self.writer.write(chunk).await.map_err(storage_error)
    }

    /// Closes the file: it is staged whole.
    pub async fn finish(mut self) -> Result<Staged> {
        self.writer.close().await.map_err(storage_error)?;
        Ok(Staged {
            path: self.path,
            size: self.size,
            sha256: self.digest.finalize().into(),
        })
    }

    /// Drops the file (best effort).
    pub async fn abort(mut self) {
        if self.writer.abort().await.is_err() {
            // Writers that cannot abort (a local folder) leave a partial file behind; it goes
            // with the batch.
            let _ = self.writer.close().await;
        }
    }
}

/// The SHA-256 of the stored file at `path`, of `size` bytes, read as a stream.
pub async fn sha256_of(op: &Operator, path: &str, size: u64) -> Result<[u8; 32]> {
    use futures::TryStreamExt;
    let reader = op.reader(path).await.map_err(storage_error)?;
    let mut stream = reader
        .into_bytes_stream(0..size)
        .await
        .map_err(storage_error)?;
    let mut digest = Sha256::new();
    while let Some(chunk) = stream.try_next().await.map_err(|e| {
        storage_error(opendal::Error::new(
            opendal::ErrorKind::Unexpected,
            e.to_string(),
        ))
    })? {
        digest.update(&chunk);
    }
    Ok(digest.finalize().into())
}
