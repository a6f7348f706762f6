//! The objects of the projects' DVC remotes, in the projects' storage below `.dvc-objects/`
//! (project ids never start with a dot) in DVC 3's layout: `<project>/files/md5/<2>/<30>`,
//! `.dir` after a folder's manifest. An object is written once per project and content:
//! staged while its md5 is computed chunk by chunk, moved into place only when the md5 is the
//! one its name says, and visible only once its row is in the database, so a corrupted or cut
//! short upload leaves nothing anyone can read.
//!
//! In a local folder an object is not flushed to disk before its row says it exists (one
//! flush per object cost ten times the write of a 200 KB one). A crash of the machine may
//! then leave a listed object short or garbled; so every read checks the content against its
//! md5 as it streams: a mismatch breaks the answer off (the client sees it cut short, never
//! wrong bytes) and forgets the object, which the next `dvc push` sends again. A killed Weft
//! loses nothing: the written bytes are the kernel's.

use super::object_rows::ObjectRows;
use super::records::{self, NewObject, ObjectEntry};
use crate::auth::Caller;
use crate::error::{Code, Error, Result};
use crate::store::Store;
use crate::workspace::projects::stream_file;
use crate::workspace::staging::Staging;
use bytes::Bytes;
use futures::stream::BoxStream;
use md5::{Digest as _, Md5};
use opendal::{ErrorKind, Operator};
use std::path::PathBuf;
use std::sync::Arc;

/// Where the objects are, below the storage's root.
const ROOT: &str = ".dvc-objects/";

/// The name of an object: its md5 in lowercase hex, with `.dir` for a folder's manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Oid(String);

impl Oid {
    /// The oid `name` spells (`<md5>` or `<md5>.dir`), if it is one.
    pub(crate) fn parse(name: &str) -> Option<Self> {
        let md5 = name.strip_suffix(".dir").unwrap_or(name);
        let hex = md5.len() == 32
            && md5
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        hex.then(|| Self(name.to_string()))
    }

    /// The oid of the object at `path` in DVC 3's layout (`files/md5/ab/cdef...`).
    pub(crate) fn from_path(path: &str) -> Option<Self> {
        let rest = path.strip_prefix("files/md5/")?;
        let (prefix, tail) = rest.split_once('/')?;
        (prefix.len() == 2 && !tail.contains('/'))
            .then(|| Self::parse(&format!("{prefix}{tail}")))
            .flatten()
    }

    /// The md5 of the content.
    pub(crate) fn md5(&self) -> &str {
        self.0.strip_suffix(".dir").unwrap_or(&self.0)
    }

    /// Whether it is a folder's manifest.
    pub(crate) fn is_dir(&self) -> bool {
        self.0.ends_with(".dir")
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

/// Where the object `oid` of project `project` is stored.
fn key(project: &str, oid: &Oid) -> String {
    format!("{ROOT}{project}/files/md5/{}/{}", &oid.0[..2], &oid.0[2..])
}

/// A storage failure as an API error; the storage's own words stay in the log.
pub(super) fn storage_error(err: opendal::Error) -> Error {
    if err.kind() == ErrorKind::NotFound {
        return Error::new(Code::DataObjectNotFound, "no such object");
    }
    tracing::error!(error = %err, "data storage failed");
    Error::new(Code::DatasetStorage, "the data storage is unavailable")
        .hint("retry shortly; if it persists, check the storage configured in [workspaces]")
}

/// The objects of every project's remote.
#[derive(Clone)]
pub(crate) struct Objects {
    store: Store,
    files: Operator,
    /// The storage's local folder (`None` for a bucket), where objects are staged unflushed.
    local: Option<PathBuf>,
    max_bytes_per_user: u64,
    rows: Arc<ObjectRows>,
}

/// How an upload ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stored {
    /// The object is new.
    Created,
    /// The project had it already; what was sent matched it and was dropped.
    Existed,
}

impl Objects {
    pub(super) fn new(
        store: Store,
        files: Operator,
        local: Option<PathBuf>,
        max_bytes_per_user: u64,
    ) -> Self {
        Self {
            store,
            files,
            local,
            max_bytes_per_user,
            rows: Arc::default(),
        }
    }

    /// The size of object `oid` of `project`, if it has it.
    pub(crate) async fn size(&self, project: &str, oid: &Oid) -> Result<Option<u64>> {
        records::object_size(&self.store, project, oid.as_str()).await
    }

    /// Object `oid` of `project` as a listing shows it, if it has it.
    pub(super) async fn entry(&self, project: &str, oid: &Oid) -> Result<Option<ObjectEntry>> {
        records::object(&self.store, project, oid.as_str()).await
    }

    /// The objects of `project` in the layout's folder `prefix` (two hex digits).
    pub(super) async fn entries(&self, project: &str, prefix: &str) -> Result<Vec<ObjectEntry>> {
        records::objects_under(&self.store, project, prefix).await
    }

    /// The layout's folders below `files/md5/` that hold objects of `project`.
    pub(super) async fn prefixes(&self, project: &str) -> Result<Vec<String>> {
        records::object_prefixes(&self.store, project).await
    }

    /// Removes object `oid` from `project`'s remote (`dvc gc -c`). Its row goes first, so it
    /// is invisible before its content goes and a crash in between leaves only unreachable
    /// bytes (replaced if the object is pushed again). Versions that listed it keep their
    /// files: a version is history, as a git commit whose blobs were collected is.
    pub(super) async fn delete(&self, project: &str, oid: &Oid) -> Result<()> {
        if !records::delete_object(&self.store, project, oid.as_str()).await? {
            return Err(not_found(oid));
        }
        match self.files.delete(&key(project, oid)).await {
            Err(e) if e.kind() != ErrorKind::NotFound => Err(storage_error(e)),
            _ => Ok(()),
        }
    }

    /// Object `oid` of `project` as a stream of chunks, with its size; the stream breaks off
    /// with an error at its end if the content is not `oid`'s (see the module's doc).
    pub(crate) async fn read(
        &self,
        project: &str,
        oid: &Oid,
    ) -> Result<(u64, BoxStream<'static, std::io::Result<Bytes>>)> {
        let Some(listed) = self.size(project, oid).await? else {
            return Err(not_found(oid));
        };
        let (size, chunks) = stream_file(&self.files, &key(project, oid))
            .await
            .map_err(storage_error)?;
        if size != listed {
            self.forget_damaged(project, oid).await;
            return Err(not_found(oid));
        }
        Ok((size, self.verified(project, oid, chunks)))
    }

    /// `chunks` of object `oid` of `project`, their md5 checked at the end: each chunk is
    /// passed on once the next one is read, and the last one only if the md5 matches; else
    /// the object is forgotten and the stream ends with an error, short of its length.
    fn verified(
        &self,
        project: &str,
        oid: &Oid,
        chunks: BoxStream<'static, std::io::Result<Bytes>>,
    ) -> BoxStream<'static, std::io::Result<Bytes>> {
        use futures::StreamExt as _;
        struct Reading {
            chunks: BoxStream<'static, std::io::Result<Bytes>>,
            digest: Md5,
            held: Option<Bytes>,
            objects: Objects,
            project: String,
            oid: Oid,
        }
        let reading = Reading {
            chunks,
            digest: Md5::new(),
            held: None,
            objects: self.clone(),
            project: project.to_string(),
            oid: oid.clone(),
        };
        futures::stream::unfold(Some(reading), |reading| async move {
            let mut reading = reading?;
            loop {
                match reading.chunks.next().await {
                    Some(Ok(chunk)) => {
                        reading.digest.update(&chunk);
                        if let Some(held) = reading.held.replace(chunk) {
                            return Some((Ok(held), Some(reading)));
                        }
                    }
                    // A stream that fails on the way says so already.
                    Some(Err(e)) => return Some((Err(e), None)),
                    None => {
                        let Reading {
                            digest,
                            held,
                            objects,
                            project,
                            oid,
                            ..
                        } = reading;
                        if hex::encode(digest.finalize()) == oid.md5() {
                            return held.map(|last| (Ok(last), None));
                        }
                        objects.forget_damaged(&project, &oid).await;
                        let why = format!("object {} is damaged in storage", oid.as_str());
                        return Some((Err(std::io::Error::other(why)), None));
                    }
                }
            }
        })
        .boxed()
    }

    /// Forgets object `oid` of `project`, whose stored content is not what its name says
    /// (left unflushed by a crash of the machine): it reads as missing, and a push sends it
    /// again.
    async fn forget_damaged(&self, project: &str, oid: &Oid) {
        tracing::error!(%project, oid = oid.as_str(), "a stored object is damaged; it is forgotten until pushed again");
        if let Err(e) = records::delete_object(&self.store, project, oid.as_str()).await {
            tracing::warn!(%project, oid = oid.as_str(), error = %e.message, "cannot forget a damaged object");
        }
    }

    /// Object `oid` of `project` whole (manifests, which are small), checked against its md5.
    pub(crate) async fn read_whole(&self, project: &str, oid: &Oid) -> Result<Option<Bytes>> {
        if self.size(project, oid).await?.is_none() {
            return Ok(None);
        }
        let content = match self.files.read(&key(project, oid)).await {
            Ok(buffer) => buffer.to_bytes(),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(storage_error(e)),
        };
        if hex::encode(Md5::digest(&content)) != oid.md5() {
            self.forget_damaged(project, oid).await;
            return Ok(None);
        }
        Ok(Some(content))
    }

    /// Stores `body` as object `oid` of project `project` (owned by `owner`), uploaded by
    /// `caller`: refused, with nothing stored, when its md5 is not `oid`'s or it would take
    /// the owner past their quota.
    pub(crate) async fn write<E: std::fmt::Display>(
        &self,
        caller: &Caller,
        project: &str,
        owner: &str,
        oid: &Oid,
        body: impl futures::Stream<Item = std::result::Result<Bytes, E>> + Unpin,
    ) -> Result<Stored> {
        let (_, _, stored) = self.put(caller, project, owner, Some(oid), body).await?;
        Ok(stored)
    }

    /// Stores `body` as the object its md5 names (a file of the project, which DVC has not
    /// named yet); its oid and size.
    pub(crate) async fn add<E: std::fmt::Display>(
        &self,
        caller: &Caller,
        project: &str,
        owner: &str,
        body: impl futures::Stream<Item = std::result::Result<Bytes, E>> + Unpin,
    ) -> Result<(Oid, u64)> {
        let (oid, size, _) = self.put(caller, project, owner, None, body).await?;
        Ok((oid, size))
    }

    /// [`Self::write`], or [`Self::add`] when `expected` is absent.
    async fn put<E: std::fmt::Display>(
        &self,
        caller: &Caller,
        project: &str,
        owner: &str,
        expected: Option<&Oid>,
        body: impl futures::Stream<Item = std::result::Result<Bytes, E>> + Unpin,
    ) -> Result<(Oid, u64, Stored)> {
        let (used, had) =
            records::before_upload(&self.store, owner, project, expected.map(Oid::as_str)).await?;
        let room = self.max_bytes_per_user.saturating_sub(used);
        let staging = Staging::single(&self.files);
        let staged = async {
            let mut digest = Md5::new();
            let writer = match &self.local {
                Some(root) => staging.local_writer(root, 0),
                None => staging.writer(0).await?,
            };
            let staged = writer
                .write_all(
                    body,
                    room,
                    || self.over_quota(used),
                    "push again; nothing of this object was kept",
                    |chunk| digest.update(chunk),
                )
                .await?;
            let md5 = hex::encode(digest.finalize());
            match expected {
                None => Ok((Oid(md5), staged)),
                Some(oid) if oid.md5() == md5 => Ok((oid.clone(), staged)),
                Some(oid) => {
                    staged.settle().await;
                    Err(Error::new(
                        Code::DataObjectCorrupt,
                        format!("the content's md5 is {md5}, not the {} its path names", oid.md5()),
                    )
                    .details(serde_json::json!({ "oid": oid.as_str(), "md5": md5 }))
                    .hint("the object was changed on the way or in the local cache: `dvc status` or `dvc add` again, then push"))
                }
            }
        }
        .await;
        let outcome = async {
            let (oid, staged) = staged?;
            // Known before the upload when it was named; asked now when its md5 names it.
            let had = match expected {
                Some(_) => had,
                None => self.size(project, &oid).await?,
            };
            if had.is_some() {
                let size = staged.size;
                staged.settle().await;
                staging.discard().await;
                return Ok((oid, size, Stored::Existed));
            }
            let size = staged.size;
            match &self.local {
                Some(root) => {
                    staging
                        .commit_local(root, staged, &key(project, &oid))
                        .await?
                }
                None => staging.commit(&staged.path, &key(project, &oid)).await?,
            }
            let row = NewObject {
                project: project.to_string(),
                oid: oid.as_str().to_string(),
                size,
                by: caller.user_id.clone(),
            };
            let created = self.rows.insert(&self.store, row).await?;
            let stored = if created {
                Stored::Created
            } else {
                Stored::Existed
            };
            Ok((oid, size, stored))
        }
        .await;
        // What failed may have left its staged file; a committed one is gone already.
        if outcome.is_err() {
            staging.discard().await;
        }
        outcome
    }

    fn over_quota(&self, used: u64) -> Error {
        Error::new(
            Code::DatasetQuota,
            format!(
                "the object would take the project owner's data past their quota of {} bytes ({used} used)",
                self.max_bytes_per_user
            ),
        )
        .details(serde_json::json!({ "used_bytes": used, "quota_bytes": self.max_bytes_per_user }))
        .hint("remove unused objects (datasets' old versions) or ask an admin to raise [datasets] max_bytes_per_user")
    }

    /// Removes every object of project `project` (it is gone).
    pub(super) async fn remove_project(&self, project: &str) -> Result<()> {
        records::delete_objects(&self.store, project).await?;
        self.files
            .delete_with(&format!("{ROOT}{project}/"))
            .recursive(true)
            .await
            .map_err(storage_error)
    }
}

/// The answer for an object the project does not have.
pub(super) fn not_found(oid: &Oid) -> Error {
    Error::new(
        Code::DataObjectNotFound,
        format!("no object {}", oid.as_str()),
    )
    .details(serde_json::json!({ "oid": oid.as_str() }))
}

#[cfg(test)]
mod tests {
    use super::Oid;

    #[test]
    fn objects_are_named_as_dvc_3_lays_them_out() {
        let oid = Oid::from_path("files/md5/d4/1d8cd98f00b204e9800998ecf8427e").unwrap();
        assert_eq!(oid.as_str(), "d41d8cd98f00b204e9800998ecf8427e");
        assert!(!oid.is_dir());
        let dir = Oid::from_path("files/md5/d4/1d8cd98f00b204e9800998ecf8427e.dir").unwrap();
        assert!(dir.is_dir());
        assert_eq!(dir.md5(), "d41d8cd98f00b204e9800998ecf8427e");
        for bad in [
            "d4/1d8cd98f00b204e9800998ecf8427e",
            "files/md5/d41/d8cd98f00b204e9800998ecf8427e",
            "files/md5/d4/1D8CD98F00B204E9800998ECF8427E",
            "files/md5/d4/1d8cd98f00b204e9800998ecf8427e/x",
            "files/md5/../1d8cd98f00b204e9800998ecf8427e",
            "files/sha256/d4/1d8cd98f00b204e9800998ecf8427e",
        ] {
            assert_eq!(Oid::from_path(bad), None, "{bad}");
        }
    }
}
