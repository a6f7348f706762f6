//! Brings a project in line with its workspace while the workspace's archive streams in: each
//! entry is checked (its name, its kind, its size, the project's quotas) and each file staged
//! as it comes, so memory does not grow with the workspace; changes are committed once the
//! archive has been read, so a sync that breaks off leaves the project as it was.
//!
//! What cannot be synced is reported and skipped, never a reason to fail the whole sync: names
//! that are not UTF-8 or not a valid project path (`..`, a part over 255 bytes), links, files
//! over the size limit or past the project's quotas, a file where the project keeps a folder
//! of the same name (or the other way round). A workspace that could not be read to its end
//! (malformed, cut short, too many entries) has what was read synced and nothing deleted.

use super::source::Source;
use super::tar_reader::Kind;
use super::{SyncReport, ignored};
use crate::error::{Error, Result};
use crate::workspace::paths;
use crate::workspace::projects::{Limits, Projects, storage_error};
use crate::workspace::staging::{Staging, sha256_of};
use bytes::{Bytes, BytesMut};
use futures::{StreamExt, TryStreamExt};
use opendal::Operator;
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use tokio::task::JoinSet;

/// Entries of a workspace looked at in one sync: twenty per file the project may hold (at
/// least a million), so that an endless archive ends its sync in bounded time.
fn max_entries(limits: &Limits) -> u64 {
    limits.max_files.saturating_mul(20).max(1_000_000)
}

/// Files staged at once in the background (a local folder syncs each to disk: together they
/// cost a fraction of one after the other).
const PARALLEL: usize = 8;

/// Files up to this size are read whole, then staged in the background; larger ones stream.
const SMALL: u64 = 256 * 1024;

/// Chunks of a streamed file.
const CHUNK: usize = 64 * 1024;

/// A stored file as the sync sees it.
struct Stored {
    size: u64,
    /// The workspace holds an entry of this name that is not a folder: never deleted.
    seen: bool,
}

/// A file the workspace holds, staged (`None`: unchanged, nothing to do).
type Staged = (String, Option<String>);

/// Why reading the archive stopped: the engine failed (the sync fails) or the workspace's
/// archive is not readable to its end (what was read is synced).
fn broken(source: &Source, e: io::Error) -> Result<String> {
    match source.engine_error() {
        Some(engine) => Err(engine),
        None => Ok(format!(
            "the workspace's archive could not be read to its end: {e}"
        )),
    }
}

/// Reads the current entry's content whole (`size` is small).
async fn read_small(source: &mut Source, size: u64) -> io::Result<Bytes> {
    let mut content = BytesMut::zeroed(size as usize);
    let mut filled = 0;
    while filled < content.len() {
        let n = source.reader.read(&mut content[filled..]).await?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    content.truncate(filled);
    Ok(content.freeze())
}

/// Whether `path` and a path already in `present` are a file and a folder of the same name.
fn conflicts(present: &BTreeSet<String>, path: &str) -> Option<String> {
    let below = format!("{path}/");
    if let Some(inside) = present.range(below.clone()..).next()
        && inside.starts_with(&below)
    {
        return Some(format!(
            "the project has a folder of this name ('{inside}' is in it); rename one of them"
        ));
    }
    let mut ancestor = path;
    while let Some((parent, _)) = ancestor.rsplit_once('/') {
        if present.contains(parent) {
            return Some(format!(
                "the project has a file '{parent}' where this needs a folder; rename one of them"
            ));
        }
        ancestor = parent;
    }
    None
}

/// One sync: read, stage, commit.
struct Run<'a> {
    projects: &'a Projects,
    op: Operator,
    prefix: String,
    ignore: &'a [String],
    limits: Limits,
    staging: Staging,
    stored: BTreeMap<String, Stored>,
    report: SyncReport,
    staged: Vec<(String, String)>,
    tasks: JoinSet<Result<Staged>>,
    next: u64,
}

/// Stages `content` as file `n` unless the project holds the same at `target` already.
async fn stage_small(
    op: Operator,
    staging: Staging,
    n: u64,
    path: String,
    target: String,
    content: Bytes,
    stored_size: Option<u64>,
) -> Result<Staged> {
    if stored_size == Some(content.len() as u64) {
        if content.is_empty() {
            return Ok((path, None));
        }
        // A bounded range: an open one makes the storage read in 2 MiB buffers.
        let existing = op
            .read_with(&target)
            .range(0..content.len() as u64)
            .await
            .map_err(storage_error)?;
        if existing.to_bytes() == content {
            return Ok((path, None));
        }
    }
    let staged = staging.put(n, content).await?;
    Ok((path, Some(staged.path)))
}

impl Run<'_> {
    fn keep(&mut self, path: &str) {
        if let Some(stored) = self.stored.get_mut(path) {
            stored.seen = true;
        }
    }

    fn refuse(&mut self, path: &str, reason: String) {
        self.keep(path);
        self.report.refuse(path, reason);
    }

    async fn settle(
        &mut self,
        result: std::result::Result<Result<Staged>, tokio::task::JoinError>,
    ) -> Result<()> {
        let (path, staged) =
            result.map_err(|e| Error::internal(format!("a sync task failed: {e}")))??;
        match staged {
            Some(staged) => self.staged.push((path, staged)),
            None => self.report.unchanged += 1,
        }
        Ok(())
    }

    /// Reads the archive to its end, staging files; `Some(why)` when it could not be read
    /// whole (then nothing may be deleted).
    async fn read(&mut self, source: &mut Source) -> Result<Option<String>> {
        let limits = self.limits;
        for (raw, size) in std::mem::take(&mut source.oversize) {
            let name = String::from_utf8_lossy(&raw).into_owned();
            self.refuse(
                &name,
                format!(
                    "{size} bytes, over the file size limit of {} bytes",
                    limits.max_file_bytes
                ),
            );
        }
        if source.oversize_unlisted > 0 {
            self.report.refused_count += source.oversize_unlisted;
            return Ok(Some(format!(
                "more files are over the size limit than can be listed ({} not named)",
                source.oversize_unlisted
            )));
        }
        let (mut files, mut bytes, mut scanned) = (0u64, 0u64, 0u64);
        loop {
            let entry = match source.reader.next().await {
                Ok(Some(entry)) => entry,
                Ok(None) => return Ok(None),
                Err(e) => return broken(source, e).map(Some),
            };
            scanned += 1;
            if scanned > max_entries(&limits) {
                return Ok(Some(format!(
                    "the workspace holds more than {} entries; those past them were not looked at",
                    max_entries(&limits)
                )));
            }
            let Some(raw) = source.layout.relative(&entry.path) else {
                continue;
            };
            let Ok(name) = std::str::from_utf8(raw) else {
                let lossy = String::from_utf8_lossy(raw).into_owned();
                if !ignored(&lossy, self.ignore) {
                    self.refuse(&lossy, "the name is not valid UTF-8; rename it".into());
                }
                continue;
            };
            if ignored(name, self.ignore) {
                continue;
            }
            let path = match paths::check(name) {
                Ok(path) => path,
                Err(reason) => {
                    self.refuse(name, reason);
                    continue;
                }
            };
            match entry.kind {
                Kind::Directory => continue,
                Kind::File => {}
                Kind::Symlink | Kind::HardLink => {
                    let target = String::from_utf8_lossy(&entry.link).into_owned();
                    let outside = target.starts_with('/') || target.split('/').any(|p| p == "..");
                    let reason = if outside {
                        format!("a link pointing outside the workspace ({target})")
                    } else {
                        format!("a link ({target}); links are not synced")
                    };
                    self.refuse(&path, reason);
                    continue;
                }
                Kind::Other(flag) => {
                    self.refuse(
                        &path,
                        format!("not a regular file (tar type '{}')", flag as char),
                    );
                    continue;
                }
            }
            self.keep(&path);
            if entry.size > limits.max_file_bytes {
                self.refuse(
                    &path,
                    format!(
                        "{} bytes, over the file size limit of {} bytes",
                        entry.size, limits.max_file_bytes
                    ),
                );
                if !source.unfiltered() {
                    // The workspace's own tar was told to leave such files out.
                    return Ok(Some(
                        "the workspace's tar sent a file over the size limit".into(),
                    ));
                }
                continue;
            }
            if files >= limits.max_files {
                self.refuse(
                    &path,
                    format!("over the project's limit of {} files", limits.max_files),
                );
                continue;
            }
            if bytes + entry.size > limits.max_bytes {
                self.refuse(
                    &path,
                    format!(
                        "{} bytes, over the project's size limit of {} bytes ({bytes} used)",
                        entry.size, limits.max_bytes
                    ),
                );
                continue;
            }
            files += 1;
            bytes += entry.size;
            self.next += 1;
            let target = format!("{}{path}", self.prefix);
            let stored_size = self.stored.get(&path).map(|s| s.size);
            if entry.size <= SMALL {
                let content = match read_small(source, entry.size).await {
                    Ok(content) => content,
                    Err(e) => return broken(source, e).map(Some),
                };
                while self.tasks.len() >= PARALLEL {
                    let done = self.tasks.join_next().await.expect("tasks are running");
                    self.settle(done).await?;
                }
                let (op, staging, n) = (self.op.clone(), self.staging.clone(), self.next);
                self.tasks.spawn(stage_small(
                    op,
                    staging,
                    n,
                    path,
                    target,
                    content,
                    stored_size,
                ));
            } else if let Some(why) = self.stage_large(source, path, target, stored_size).await? {
                return Ok(Some(why));
            }
        }
    }

    /// Streams the current (large) entry into staging; `Some(why)` if the archive broke off.
    async fn stage_large(
        &mut self,
        source: &mut Source,
        path: String,
        target: String,
        stored_size: Option<u64>,
    ) -> Result<Option<String>> {
        use sha2::Digest as _;
        let mut writer = self.staging.writer(self.next).await?;
        let mut digest = sha2::Sha256::new();
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = match source.reader.read(&mut buf).await {
                Ok(n) => n,
                Err(e) => {
                    writer.abort().await;
                    return broken(source, e).map(Some);
                }
            };
            if n == 0 {
                break;
            }
            digest.update(&buf[..n]);
            writer.write(Bytes::copy_from_slice(&buf[..n])).await?;
        }
        let staged = writer.finish().await?;
        let same = stored_size == Some(staged.size)
            && sha256_of(&self.op, &target, staged.size).await?
                == <[u8; 32]>::from(digest.finalize());
        if same {
            self.report.unchanged += 1;
        } else {
            self.staged.push((path, staged.path));
        }
        Ok(None)
    }

    /// Deletes what the workspace no longer holds (only after a complete read), then moves the
    /// staged files in.
    async fn commit(&mut self, complete: bool) -> Result<()> {
        let mut deleted = Vec::new();
        if complete {
            for (path, stored) in &self.stored {
                if !stored.seen
                    && !ignored(path, self.ignore)
                    && paths::check(path).as_deref() == Ok(path.as_str())
                {
                    deleted.push(path.clone());
                }
            }
        }
        let prefix = &self.prefix;
        let projects = self.projects;
        // Futures made as they are run (a list of them all would weigh thousands of times one).
        let deletions = deleted
            .clone()
            .into_iter()
            .map(move |path| projects.remove_file_at(format!("{prefix}{path}")));
        futures::stream::iter(deletions)
            .buffer_unordered(PARALLEL)
            .try_collect::<Vec<()>>()
            .await?;
        let mut present: BTreeSet<String> = self.stored.keys().cloned().collect();
        for path in &deleted {
            present.remove(path);
        }
        // Folders the deletions emptied: a local folder keeps them, and a file of the same
        // name could not take their place.
        let staged_paths: BTreeSet<&str> = self.staged.iter().map(|(p, _)| p.as_str()).collect();
        let mut emptied: BTreeSet<&str> = BTreeSet::new();
        for path in &deleted {
            let mut folder = path.as_str();
            while let Some((parent, _)) = folder.rsplit_once('/') {
                emptied.insert(parent);
                folder = parent;
            }
        }
        let mut emptied: Vec<&str> = emptied.into_iter().collect();
        emptied.sort_by_key(|f| std::cmp::Reverse(f.len()));
        for folder in emptied {
            let below = format!("{folder}/");
            let used = present
                .range(below.clone()..)
                .next()
                .is_some_and(|p| p.starts_with(&below))
                || staged_paths
                    .range(below.as_str()..)
                    .next()
                    .is_some_and(|p| p.starts_with(&below));
            if !used {
                self.op
                    .delete(&format!("{prefix}{below}"))
                    .await
                    .map_err(storage_error)?;
            }
        }
        let mut staged = std::mem::take(&mut self.staged);
        staged.sort();
        let mut moves = Vec::new();
        for (path, staged_path) in staged {
            if let Some(why) = conflicts(&present, &path) {
                self.report.refuse(&path, why);
                continue;
            }
            present.insert(path.clone());
            moves.push((path, staged_path));
        }
        for path in deleted {
            self.report.delete(path);
        }
        for (path, _) in &moves {
            self.report.write(path.clone());
        }
        let staging = self.staging.clone();
        let commits = moves.into_iter().map(move |(path, staged)| {
            let (staging, target) = (staging.clone(), format!("{prefix}{path}"));
            async move { staging.commit(&staged, &target).await }
        });
        futures::stream::iter(commits)
            .buffer_unordered(PARALLEL)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(())
    }
}

/// Brings project `id` in line with the workspace archive of `source`.
pub(super) async fn apply(
    projects: &Projects,
    id: &str,
    mut source: Source,
    ignore: &[String],
    limits: Limits,
) -> Result<SyncReport> {
    let op = projects.storage().clone();
    let stored = projects
        .list_files(id)
        .await?
        .into_iter()
        .map(|f| {
            (
                f.path,
                Stored {
                    size: f.size,
                    seen: false,
                },
            )
        })
        .collect();
    let mut run = Run {
        projects,
        staging: Staging::new(&op),
        op,
        prefix: format!("{id}/"),
        ignore,
        limits,
        stored,
        report: SyncReport::default(),
        staged: Vec::new(),
        tasks: JoinSet::new(),
        next: 0,
    };
    let outcome = run.read(&mut source).await;
    // Whatever happened, the staging tasks end before their batch is committed or dropped.
    let mut settled = Ok(());
    while let Some(done) = run.tasks.join_next().await {
        if let Err(e) = run.settle(done).await {
            settled = Err(e);
        }
    }
    let result = async {
        let mut incomplete = outcome?;
        settled?;
        if incomplete.is_none() {
            incomplete = source.finish().await?;
        }
        run.commit(incomplete.is_none()).await?;
        run.report.incomplete = incomplete;
        Ok::<_, Error>(())
    }
    .await;
    run.staging.discard().await;
    result?;
    if run.report.written_count + run.report.deleted_count > 0 {
        projects.touch(id).await?;
    }
    Ok(run.report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use crate::workspace::config::WorkspacesConfig;

    /// A tar of the engine's layout (`workspace/...`) with raw names.
    fn archive(entries: &[(&[u8], tar::EntryType, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, kind, content) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(*kind);
            header.set_size(content.len() as u64);
            header.set_mode(0o644);
            let path = [b"workspace/", *name].concat();
            header.as_old_mut().name[..path.len()].copy_from_slice(&path);
            if *kind == tar::EntryType::Symlink {
                header.set_link_name("/etc/passwd").unwrap();
            }
            header.set_cksum();
            builder.append(&header, *content).unwrap();
        }
        builder.into_inner().unwrap()
    }

    struct Fixture {
        _dir: tempfile::TempDir,
        root: std::path::PathBuf,
        projects: Projects,
    }

    async fn fixture(stored: &[(&str, &str)]) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/weft.db?mode=rwc", dir.path().display());
        let store = Store::open(&url).await.unwrap();
        let projects = Projects::open(store, &WorkspacesConfig::default(), dir.path()).unwrap();
        let root = dir.path().join("projects").join("p");
        for (path, content) in stored {
            let file = root.join(path);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(file, content).unwrap();
        }
        Fixture {
            root,
            projects,
            _dir: dir,
        }
    }

    fn limits(max_files: u64) -> Limits {
        Limits {
            max_file_bytes: 64,
            max_bytes: 1 << 20,
            max_files,
        }
    }

    fn ignore() -> Vec<String> {
        vec!["__pycache__".into()]
    }

    #[tokio::test]
    async fn a_sync_writes_deletes_and_reports_what_it_skips() {
        use tar::EntryType::{Directory, Regular, Symlink};
        let f = fixture(&[
            ("keep.txt", "same"),
            ("old.txt", "deleted in the workspace"),
            ("d/x", "a folder the workspace replaced by a file"),
            ("__pycache__/a.pyc", "ignored, kept"),
            ("link", "kept: the workspace has a link here"),
        ])
        .await;
        let tar = archive(&[
            (b"", Directory, b""),
            (b"keep.txt", Regular, b"same"),
            (b"new.txt", Regular, b"new"),
            (b"d", Regular, b"now a file"),
            (b"caf\xe9.txt", Regular, b"not UTF-8"),
            (b"big", Regular, &[7u8; 100]),
            (b"link", Symlink, b""),
            (b"sub/", Directory, b""),
            (b"sub/one", Regular, b"1"),
            (b"sub/two", Regular, b"2"),
        ]);
        let report = apply(&f.projects, "p", Source::engine(tar), &ignore(), limits(4))
            .await
            .unwrap();
        assert_eq!(report.incomplete, None);
        assert_eq!(report.unchanged, 1);
        let mut written = report.written.clone();
        written.sort();
        assert_eq!(written, ["d", "new.txt", "sub/one"]);
        let mut deleted = report.deleted.clone();
        deleted.sort();
        assert_eq!(deleted, ["d/x", "old.txt"]);
        let why: Vec<(&str, &str)> = report
            .refused
            .iter()
            .map(|r| (r.path.as_str(), r.reason.as_str()))
            .collect();
        assert_eq!(why.len(), 4, "{why:?}");
        assert!(why[0].0.starts_with("caf") && why[0].1.contains("UTF-8"));
        assert!(why[1].0 == "big" && why[1].1.contains("file size limit"));
        assert!(why[2].0 == "link" && why[2].1.contains("outside"));
        assert!(why[3].0 == "sub/two" && why[3].1.contains("limit of 4 files"));
        assert_eq!(
            std::fs::read_to_string(f.root.join("d")).unwrap(),
            "now a file"
        );
        assert!(f.root.join("__pycache__/a.pyc").exists());
        assert!(f.root.join("link").exists());
        assert!(!f.root.join("old.txt").exists());
        assert!(
            !f.root
                .parent()
                .unwrap()
                .join(".staging")
                .read_dir()
                .unwrap()
                .any(|_| true),
            "nothing is left staged"
        );
    }

    #[tokio::test]
    async fn a_broken_archive_syncs_what_came_and_deletes_nothing() {
        use tar::EntryType::Regular;
        let f = fixture(&[("old.txt", "kept"), ("d/x", "kept")]).await;
        let mut tar = archive(&[
            (b"first.txt", Regular, b"came"),
            (b"d", Regular, b"conflicts with the kept folder"),
            (b"last.txt", Regular, &[1u8; 60]),
        ]);
        tar.truncate(tar.len() - 1024 - 500);
        let report = apply(
            &f.projects,
            "p",
            Source::engine(tar),
            &ignore(),
            limits(100),
        )
        .await
        .unwrap();
        assert!(
            report.incomplete.as_deref().unwrap().contains("to its end"),
            "{report:?}"
        );
        assert_eq!(report.written, ["first.txt"]);
        assert!(report.deleted.is_empty());
        assert_eq!(report.refused.len(), 1, "{report:?}");
        assert_eq!(report.refused[0].path, "d");
        assert!(report.refused[0].reason.contains("folder"));
        assert!(f.root.join("old.txt").exists() && f.root.join("d/x").exists());
        assert!(report.summary().unwrap().contains("nothing was deleted"));
    }

    #[test]
    fn a_file_and_a_folder_of_the_same_name_conflict() {
        let present: BTreeSet<String> = ["a/b.txt", "c", "d/e/f"].map(String::from).into();
        assert!(conflicts(&present, "a").is_some());
        assert!(conflicts(&present, "c/x").is_some());
        assert!(conflicts(&present, "d/e").is_some());
        assert!(conflicts(&present, "d/e/f/g").is_some());
        assert!(conflicts(&present, "a/c.txt").is_none());
        assert!(conflicts(&present, "ab").is_none());
        assert!(conflicts(&present, "d/e/g").is_none());
    }
}
