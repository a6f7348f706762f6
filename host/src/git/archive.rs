//! A commit's files as a tar stream, written on a blocking thread while the engine reads it: what
//! a container job gets of a project, as of the commit its run pinned rather than the live files.

use super::repo::{self, failed};
use crate::error::{Error, Result};
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use git2::{ObjectType, Oid, TreeWalkMode, TreeWalkResult};
use std::io::{self, Write};
use std::path::PathBuf;
use tokio::sync::mpsc;

/// The uid and gid that own the files, as in the workspace images.
const FILES_UID: u64 = 1000;
/// Bytes gathered before a chunk goes to the reader.
const CHUNK: usize = 256 << 10;
/// Chunks in flight between the repository and the reader.
const IN_FLIGHT: usize = 4;

/// The files and folders of `commit` in the repository at `path`. Links and submodules are left
/// out: a project's files (its storage) hold neither, and a link could point anywhere.
pub(super) fn stream(path: PathBuf, commit: Oid) -> BoxStream<'static, Result<Bytes>> {
    let (tx, mut rx) = mpsc::channel::<Result<Bytes>>(IN_FLIGHT);
    tokio::task::spawn_blocking(move || {
        let sink = Sink {
            tx: tx.clone(),
            buf: Vec::with_capacity(CHUNK),
        };
        if let Err(e) = write(&path, commit, sink) {
            let _ = tx.blocking_send(Err(e));
        }
    });
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx)).boxed()
}

fn write(path: &std::path::Path, commit: Oid, sink: Sink) -> Result<()> {
    let repo = repo::open(path)?;
    let tree = repo
        .find_commit(commit)
        .and_then(|c| c.tree())
        .map_err(failed)?;
    let now = chrono::Utc::now().timestamp().max(0) as u64;
    let mut builder = tar::Builder::new(sink);
    let mut failure: Option<Error> = None;
    tree.walk(TreeWalkMode::PreOrder, |root, entry| {
        let Some(name) = entry.name() else {
            return TreeWalkResult::Skip;
        };
        let full = format!("{root}{name}");
        let mut header = tar::Header::new_gnu();
        header.set_uid(FILES_UID);
        header.set_gid(FILES_UID);
        header.set_mtime(now);
        let added = match (entry.kind(), entry.filemode()) {
            (Some(ObjectType::Tree), _) => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                header.set_size(0);
                builder.append_data(&mut header, format!("{full}/"), io::empty())
            }
            (Some(ObjectType::Blob), mode @ (0o100644 | 0o100755)) => {
                let blob = match repo.find_blob(entry.id()) {
                    Ok(blob) => blob,
                    Err(e) => {
                        failure = Some(failed(e));
                        return TreeWalkResult::Abort;
                    }
                };
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(if mode == 0o100755 { 0o755 } else { 0o644 });
                header.set_size(blob.content().len() as u64);
                builder.append_data(&mut header, &full, blob.content())
            }
            _ => return TreeWalkResult::Skip,
        };
        match added {
            Ok(()) => TreeWalkResult::Ok,
            Err(e) => {
                failure = Some(Error::internal(format!("cannot pack '{full}': {e}")));
                TreeWalkResult::Abort
            }
        }
    })
    .map_err(|e| failure.take().unwrap_or_else(|| failed(e)))?;
    if let Some(e) = failure {
        return Err(e);
    }
    builder
        .into_inner()
        .and_then(|mut sink| sink.flush())
        .map_err(|e| Error::internal(format!("cannot pack the commit's files: {e}")))
}

/// Hands the tar to the reader a chunk at a time.
struct Sink {
    tx: mpsc::Sender<Result<Bytes>>,
    buf: Vec<u8>,
}

impl Write for Sink {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the reader went away"))
    }
}
