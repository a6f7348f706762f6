//! Files written where no reader looks, then moved into a project in one step: an upload cut
//! short or a sync that fails half way leaves the project as it was, not with half a file.
//!
//! Staged files live under `.staging/<batch>/` in the projects' storage (project ids never
//! start with a dot), named by number so that no user path ever names a staging file. A batch
//! is named by a time-ordered id, so that what a crash left behind is recognised and swept.
//! A batch of one file may be that file itself, `.staging/<id>` ([`Staging::single`]).

use super::projects::storage_error;
use crate::error::Result;
use bytes::Bytes;
use opendal::Operator;
use sha2::{Digest, Sha256};
use std::path::Path;

/// Where batches are staged, below the storage's root.
const ROOT: &str = ".staging/";

/// One batch of staged files; [`Staging::discard`] removes what was not committed.
#[derive(Clone)]
pub(crate) struct Staging {
    op: Operator,
    /// The batch's folder (ending in `/`), or its one file.
    root: String,
}

/// A file being staged: its content goes through [`StagedWriter::write`].
pub(crate) struct StagedWriter {
    pub path: String,
    sink: Sink,
    pub size: u64,
}

/// Where a staged file's bytes go.
enum Sink {
    /// The storage's writer (a local folder's flushes the file to disk as it closes).
    Storage(opendal::Writer),
    /// A file of the local folder, written without that flush (see
    /// [`Staging::local_writer`]), and the chunks held for it: an upload arrives in chunks of
    /// a few KiB, and each write of the file is a hand-off to a blocking thread. The file is
    /// written once more than [`LOCAL_BUFFER`] is held; a smaller one is only ever held, as its
    /// chunks arrived (copied into one growing buffer, its reallocations and fresh pages
    /// showed in the profile of a push).
    Local(LocalFile, Held),
}

/// A staged file of the local folder, created on a blocking thread as soon as its writer
/// starts, while its content arrives: creating a file took 50-700 us on a busy machine's
/// ext4, as long as a 200 KB upload's body took to arrive, and it used to come after it.
type Creating = tokio::task::JoinHandle<std::io::Result<std::fs::File>>;

/// The local file of a [`Sink::Local`].
enum LocalFile {
    Creating(Creating),
    Open(tokio::fs::File),
}

/// A small local staged file's content, held, and the file being created for it.
pub(crate) struct Pending {
    content: Held,
    file: Creating,
}

/// What a local staged file holds back before it is written.
const LOCAL_BUFFER: usize = 1 << 20;

/// Chunks of a file held rather than written yet, and their bytes together.
#[derive(Default)]
pub(crate) struct Held {
    chunks: Vec<Bytes>,
    len: usize,
}

impl Held {
    fn push(&mut self, chunk: Bytes) {
        self.len += chunk.len();
        self.chunks.push(chunk);
    }

    /// Writes the chunks to `file` in order, on this thread.
    fn write_to(&self, file: &mut std::fs::File) -> std::io::Result<()> {
        use std::io::Write as _;
        self.chunks
            .iter()
            .try_for_each(|chunk| file.write_all(chunk))
    }
}

impl From<Bytes> for Held {
    fn from(content: Bytes) -> Self {
        Self {
            len: content.len(),
            chunks: vec![content],
        }
    }
}

/// A staged file, written whole.
pub(crate) struct Staged {
    pub path: String,
    pub size: u64,
    /// The content of a small file of the local folder, held rather than written: see
    /// [`Staging::commit_local`].
    pub held: Option<Pending>,
}

impl Staged {
    /// Waits until a held file's creation is done (or failed), so that a discard that follows
    /// finds the file: to be called before dropping a staged file that is not committed.
    pub(crate) async fn settle(self) {
        if let Some(pending) = self.held {
            let _ = pending.file.await;
        }
    }
}

impl Staging {
    pub(crate) fn new(op: &Operator) -> Self {
        Self {
            op: op.clone(),
            root: format!("{ROOT}{}/", crate::store::new_id()),
        }
    }

    /// A batch of one file (number 0), staged as `.staging/<id>` with no folder of its own:
    /// for uploads of one file each (the DVC remote's objects), where making and removing a
    /// folder per upload cost more than writing a small file.
    pub(crate) fn single(op: &Operator) -> Self {
        Self {
            op: op.clone(),
            root: format!("{ROOT}{}", crate::store::new_id()),
        }
    }

    /// The path of staged file number `n`.
    fn path(&self, n: u64) -> String {
        if self.root.ends_with('/') {
            format!("{}{n}", self.root)
        } else {
            self.root.clone()
        }
    }

    /// Starts staged file number `n` of the batch.
    pub(crate) async fn writer(&self, n: u64) -> Result<StagedWriter> {
        let path = self.path(n);
        let writer = self.op.writer(&path).await.map_err(storage_error)?;
        Ok(StagedWriter {
            path,
            sink: Sink::Storage(writer),
            size: 0,
        })
    }

    /// Starts staged file number `n` of the batch in the local folder `root` (the storage's),
    /// not flushed to disk as it closes: for content whose reader checks it against its hash
    /// (what a crash of the machine leaves unflushed is then found and dropped, see
    /// `dataset::objects`), where one flush per file would cost a disk round trip each. A
    /// file of at most [`LOCAL_BUFFER`] bytes is held until [`Self::commit_local`] writes and
    /// moves it in one go.
    pub(crate) fn local_writer(&self, root: &Path, n: u64) -> StagedWriter {
        let path = self.path(n);
        let full = root.join(&path);
        let file = tokio::task::spawn_blocking(move || {
            with_folder(&full, || std::fs::File::create(&full))
        });
        StagedWriter {
            sink: Sink::Local(LocalFile::Creating(file), Held::default()),
            path,
            size: 0,
        }
    }

    /// Moves `staged`, staged by [`Self::local_writer`] in the local folder `root`, to
    /// `target`: a file still held is written and moved on one blocking thread.
    pub(crate) async fn commit_local(
        &self,
        root: &Path,
        staged: Staged,
        target: &str,
    ) -> Result<()> {
        match staged.held {
            Some(Pending { content, file }) => {
                let file = file.await.map_err(failed_task)?;
                self.put_local(root, &staged.path, content, Some(file), target)
                    .await
            }
            None => self.commit(&staged.path, target).await,
        }
    }

    /// Stages `content` whole as file number `n`.
    pub(super) async fn put(&self, n: u64, content: Bytes) -> Result<Staged> {
        let mut writer = self.writer(n).await?;
        writer.write(content).await?;
        writer.finish().await
    }

    /// Stages `content` as file number `n` and moves it to `target` in the local folder
    /// `root` (the storage's), on one blocking thread and without flushing it to disk: for
    /// files a repository holds too (see `Projects::store_files`).
    pub(super) async fn put_local_n(
        &self,
        root: &Path,
        n: u64,
        content: Bytes,
        target: &str,
    ) -> Result<()> {
        self.put_local(root, &self.path(n), content.into(), None, target)
            .await
    }

    /// Writes `content` at `staged` (into `file`, the file there if it was created already)
    /// and moves it to `target`, as [`Self::put_local_n`].
    async fn put_local(
        &self,
        root: &Path,
        staged: &str,
        content: Held,
        file: Option<std::io::Result<std::fs::File>>,
        target: &str,
    ) -> Result<()> {
        let staged = root.join(staged);
        let target = root.join(target);
        let moved = tokio::task::spawn_blocking(move || {
            let mut file = match file {
                Some(file) => file?,
                None => with_folder(&staged, || std::fs::File::create(&staged))?,
            };
            content.write_to(&mut file)?;
            with_folder(&target, || std::fs::rename(&staged, &target))
        })
        .await
        .map_err(failed_task)?;
        moved.map_err(local_error)
    }

    /// Moves a staged file to `target`, replacing what was there.
    pub(crate) async fn commit(&self, staged: &str, target: &str) -> Result<()> {
        if self.op.info().capability().rename {
            self.op.rename(staged, target).await.map_err(storage_error)
        } else {
            self.op.copy(staged, target).await.map_err(storage_error)?;
            self.op.delete(staged).await.map_err(storage_error)
        }
    }

    /// Removes whatever of the batch is left (best effort: a leftover is only wasted space).
    pub(crate) async fn discard(&self) {
        let recursive = self.root.ends_with('/');
        if let Err(e) = self.op.delete_with(&self.root).recursive(recursive).await {
            tracing::warn!(batch = %self.root, error = %e, "cannot remove staged files");
        }
    }
}

impl StagedWriter {
    pub(crate) async fn write(&mut self, chunk: Bytes) -> Result<()> {
        use tokio::io::AsyncWriteExt as _;
        self.size += chunk.len() as u64;
        match &mut self.sink {
            Sink::Storage(writer) => writer.write(chunk).await.map_err(storage_error),
            Sink::Local(file, held) => {
                held.push(chunk);
                if held.len >= LOCAL_BUFFER {
                    let buffer = std::mem::take(held).chunks.concat();
                    file.open()
                        .await?
                        .write_all(&buffer)
                        .await
                        .map_err(local_error)?;
                }
                Ok(())
            }
        }
    }

    /// Writes the chunks of an upload's `body` and closes the file, calling `each` on every
    /// chunk: refused (the file dropped) with `10213` and `hint` when the body breaks off, and
    /// with `over()` before the file would pass `limit` bytes.
    pub(crate) async fn write_all<E: std::fmt::Display>(
        mut self,
        mut body: impl futures::Stream<Item = std::result::Result<Bytes, E>> + Unpin,
        limit: u64,
        over: impl FnOnce() -> crate::error::Error,
        hint: &str,
        mut each: impl FnMut(&Bytes),
    ) -> Result<Staged> {
        use futures::StreamExt as _;
        while let Some(chunk) = body.next().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(e) => {
                    self.abort().await;
                    return Err(crate::error::Error::new(
                        crate::error::Code::UploadIncomplete,
                        format!("the upload broke off: {e}"),
                    )
                    .hint(hint));
                }
            };
            if self.size + chunk.len() as u64 > limit {
                self.abort().await;
                return Err(over());
            }
            each(&chunk);
            self.write(chunk).await?;
        }
        self.finish().await
    }

    /// Closes the file: it is staged whole.
    pub(crate) async fn finish(self) -> Result<Staged> {
        use tokio::io::AsyncWriteExt as _;
        match self.sink {
            Sink::Storage(mut writer) => {
                writer.close().await.map_err(storage_error)?;
            }
            Sink::Local(LocalFile::Creating(file), content) => {
                return Ok(Staged {
                    path: self.path,
                    size: self.size,
                    held: Some(Pending { content, file }),
                });
            }
            // Waits for the last write to reach the file (not the disk).
            Sink::Local(LocalFile::Open(mut file), held) => {
                file.write_all(&held.chunks.concat())
                    .await
                    .map_err(local_error)?;
                file.flush().await.map_err(local_error)?;
            }
        }
        Ok(Staged {
            path: self.path,
            size: self.size,
            held: None,
        })
    }

    /// Drops the file (best effort).
    pub(crate) async fn abort(self) {
        // Writers that cannot abort (a local folder) leave a partial file behind; it goes
        // with the batch, once it is created.
        match self.sink {
            Sink::Storage(mut writer) => {
                if writer.abort().await.is_err() {
                    let _ = writer.close().await;
                }
            }
            Sink::Local(LocalFile::Creating(file), _) => {
                let _ = file.await;
            }
            Sink::Local(LocalFile::Open(_), _) => {}
        }
    }
}

/// Runs `make`, which makes the file `path`; if its folder is missing, creates that and runs it
/// again. Trying first spares the two system calls of creating a folder that exists, for each
/// file, and the lock they take on the folder's parent (which serialises the uploads of a push
/// that share it).
fn with_folder<T>(path: &Path, mut make: impl FnMut() -> std::io::Result<T>) -> std::io::Result<T> {
    match make() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(folder) = path.parent() {
                std::fs::create_dir_all(folder)?;
            }
            make()
        }
        done => done,
    }
}

impl LocalFile {
    /// The file, once it is created.
    async fn open(&mut self) -> Result<&mut tokio::fs::File> {
        if let Self::Creating(creating) = self {
            let file = creating.await.map_err(failed_task)?.map_err(local_error)?;
            *self = Self::Open(tokio::fs::File::from_std(file));
        }
        let Self::Open(file) = self else {
            return Err(crate::error::Error::internal(
                "a staged file was not opened",
            ));
        };
        Ok(file)
    }
}

fn failed_task(e: tokio::task::JoinError) -> crate::error::Error {
    crate::error::Error::internal(format!("a storage task failed: {e}"))
}

fn local_error(e: std::io::Error) -> crate::error::Error {
    storage_error(opendal::Error::new(
        opendal::ErrorKind::Unexpected,
        e.to_string(),
    ))
}

/// A batch this old was left by a crash (syncs and uploads take minutes, not hours).
const STALE: std::time::Duration = std::time::Duration::from_secs(3600);

/// Removes the batches a crash left behind (best effort).
pub(super) async fn sweep(op: &Operator) {
    let batches = match op.list(ROOT).await {
        Ok(batches) => batches,
        Err(e) if e.kind() == opendal::ErrorKind::NotFound => return,
        Err(e) => {
            tracing::warn!(error = %e, "cannot list staged files");
            return;
        }
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    for batch in batches {
        let started = uuid::Uuid::parse_str(batch.name().trim_end_matches('/'))
            .ok()
            .and_then(|id| id.get_timestamp())
            .map(|t| std::time::Duration::from_secs(t.to_unix().0));
        if started.is_some_and(|started| now.saturating_sub(started) > STALE) {
            tracing::info!(batch = %batch.path(), "removing files staged before a crash");
            let folder = batch.metadata().mode() == opendal::EntryMode::DIR;
            if let Err(e) = op.delete_with(batch.path()).recursive(folder).await {
                tracing::warn!(batch = %batch.path(), error = %e, "cannot remove staged files");
            }
        }
    }
}

/// The SHA-256 of the stored file at `path`, of `size` bytes, read as a stream.
pub(super) async fn sha256_of(op: &Operator, path: &str, size: u64) -> Result<[u8; 32]> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn batches_left_by_a_crash_are_swept_fresh_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let op =
            Operator::new(opendal::services::Fs::default().root(&dir.path().to_string_lossy()))
                .unwrap();
        let two_hours_ago = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            - 7200;
        let old = uuid::Uuid::new_v7(uuid::Timestamp::from_unix(
            uuid::NoContext,
            two_hours_ago,
            0,
        ));
        let old_single = uuid::Uuid::new_v7(uuid::Timestamp::from_unix(
            uuid::NoContext,
            two_hours_ago,
            1,
        ));
        op.write(&format!("{ROOT}{old}/0"), "left by a crash")
            .await
            .unwrap();
        op.write(&format!("{ROOT}{old_single}"), "left by a crash too")
            .await
            .unwrap();
        let fresh = Staging::new(&op);
        fresh
            .put(0, Bytes::from_static(b"in progress"))
            .await
            .unwrap();
        let single = Staging::single(&op);
        single
            .put(0, Bytes::from_static(b"in progress too"))
            .await
            .unwrap();
        sweep(&op).await;
        assert!(!op.exists(&format!("{ROOT}{old}/0")).await.unwrap());
        assert!(!op.exists(&format!("{ROOT}{old_single}")).await.unwrap());
        assert!(op.exists(&format!("{}0", fresh.root)).await.unwrap());
        assert!(op.exists(&single.path(0)).await.unwrap());
        fresh.discard().await;
        single.discard().await;
        assert!(!op.exists(&format!("{}0", fresh.root)).await.unwrap());
        assert!(!op.exists(&single.path(0)).await.unwrap());
        assert!(
            op.exists(ROOT).await.unwrap(),
            "the staging folder itself stays"
        );
    }
}
