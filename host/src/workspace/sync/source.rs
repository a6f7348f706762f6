//! Where a sync reads the workspace from, as a tar stream read while it comes.
//!
//! A running container makes the archive itself (`find | tar` run in `/workspace` through the
//! engine's exec): files over the size limit and ignored folders are left out before anything
//! reads them, so a sparse 50 GiB file costs nothing, and the files over the limit are listed
//! apart (by `find`, never opened). Without a shell, `find` and GNU `tar` in the image, or when the
//! container has stopped, the engine's own archive of `/workspace` is read instead: it holds
//! every file, and those over the limit are read past without being kept.
//!
//! Either way the archive comes from a container the user controls and is read as hostile
//! ([`super::tar_reader`]); a workspace that sends nothing for [`IDLE`] is given up on.

use super::tar_reader::Reader;
use crate::container::driver::{ContainerDriver, ExecEvent};
use crate::error::{Error, Result};
use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt};
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::io::StreamReader;

/// A workspace whose archive stalls this long is given up on (what came is kept).
const IDLE: Duration = Duration::from_secs(60);

/// `find` listing the files over the limit prints nothing while it walks: it may stay silent
/// longer than a stalled archive (past it, the engine's archive is read instead).
const LIST_IDLE: Duration = Duration::from_secs(600);

/// Files over the size limit listed by name, at most.
const LISTED: usize = 1000;

/// The workspace's own complaints kept, at most.
const STDERR: usize = 4096;

/// How entry names start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Layout {
    /// `./a/b`: the workspace's own `tar`, run in `/workspace`.
    Dot,
    /// `workspace/a/b`: the engine's archive of the folder.
    Folder,
}

impl Layout {
    /// An entry's name relative to the workspace; `None` for the workspace folder itself.
    pub(super) fn relative(self, raw: &[u8]) -> Option<&[u8]> {
        let rest = match self {
            Layout::Dot if raw == b"." => return None,
            Layout::Dot => raw.strip_prefix(b"./").unwrap_or(raw),
            Layout::Folder => &raw[raw.iter().position(|b| *b == b'/')?..],
        };
        let rest = rest.strip_prefix(b"/").unwrap_or(rest);
        let rest = rest.strip_suffix(b"/").unwrap_or(rest);
        (!rest.is_empty()).then_some(rest)
    }
}

/// What happened around the archive, learnt as it is read.
#[derive(Default)]
struct State {
    /// The engine failed (not the workspace): the sync fails and is retried.
    engine: Option<Error>,
    stderr: Vec<u8>,
    exit: Option<i64>,
}

type Bytestream = StreamReader<BoxStream<'static, io::Result<Bytes>>, Bytes>;

/// The workspace's archive, and what is known about it besides.
pub(super) struct Source {
    pub reader: Reader<Bytestream>,
    pub layout: Layout,
    /// Files over the size limit, by raw name and size; they are not in the archive.
    pub oversize: Vec<(Vec<u8>, u64)>,
    /// How many more there were than listed.
    pub oversize_unlisted: u64,
    state: Arc<Mutex<State>>,
}

fn quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// `find` arguments that leave out ignored names (pruned: never descended into).
fn pruned(ignore: &[String]) -> Vec<String> {
    if ignore.is_empty() {
        return Vec::new();
    }
    let mut args = vec!["(".to_string()];
    for (i, name) in ignore.iter().enumerate() {
        if i > 0 {
            args.push("-o".into());
        }
        args.extend(["-name".to_string(), name.clone()]);
    }
    args.extend([")".into(), "-prune".into(), "-o".into()]);
    args
}

/// Runs in `/workspace`: every entry but ignored ones and files over `max` bytes, as a tar.
fn tar_command(ignore: &[String], max: u64) -> Vec<String> {
    let find: Vec<String> = ["find", ".", "-xdev"]
        .into_iter()
        .map(String::from)
        .chain(pruned(ignore))
        .chain(
            [
                "!",
                "(",
                "-type",
                "f",
                "-size",
                &format!("+{max}c"),
                ")",
                "-print0",
            ]
            .into_iter()
            .map(String::from),
        )
        .collect();
    let find: Vec<String> = find.iter().map(|w| quote(w)).collect();
    let script = format!(
        "cd /workspace && {} | tar --null --no-recursion --files-from=- --create --file=- --format=gnu",
        find.join(" ")
    );
    vec!["sh".into(), "-c".into(), script]
}

/// Lists the files over `max` bytes (size and name relative to `/workspace`, NUL-ended).
fn oversize_command(ignore: &[String], max: u64) -> Vec<String> {
    ["find", "/workspace", "-xdev"]
        .into_iter()
        .map(String::from)
        .chain(pruned(ignore))
        .chain(
            [
                "-type",
                "f",
                "-size",
                &format!("+{max}c"),
                "-printf",
                "%s %P\\0",
            ]
            .into_iter()
            .map(String::from),
        )
        .collect()
}

/// The files over the limit as `find` lists them; `None` when it could not run (no GNU
/// `find` in the image, or the container is not running).
async fn list_oversize(
    driver: &Arc<dyn ContainerDriver>,
    engine_id: &str,
    ignore: &[String],
    max: u64,
) -> Option<(Vec<(Vec<u8>, u64)>, u64)> {
    let mut events = driver.exec_stream(engine_id, &oversize_command(ignore, max));
    let (mut listed, mut unlisted, mut partial) = (Vec::new(), 0u64, Vec::new());
    let mut exit = None;
    while let Some(event) = tokio::time::timeout(LIST_IDLE, events.next()).await.ok()? {
        match event.ok()? {
            ExecEvent::Stdout(chunk) => {
                partial.extend_from_slice(&chunk);
                while let Some(end) = partial.iter().position(|b| *b == 0) {
                    let record: Vec<u8> = partial.drain(..=end).collect();
                    let record = &record[..record.len() - 1];
                    let Some(space) = record.iter().position(|b| *b == b' ') else {
                        continue;
                    };
                    let size = std::str::from_utf8(&record[..space])
                        .ok()
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0);
                    if listed.len() < LISTED {
                        listed.push((record[space + 1..].to_vec(), size));
                    } else {
                        unlisted += 1;
                    }
                }
                // A name is at most a few KiB: a longer record is not one.
                if partial.len() > 64 * 1024 {
                    return None;
                }
            }
            ExecEvent::Stderr(_) => {}
            ExecEvent::Exited(code) => exit = Some(code),
        }
    }
    // Anything but a clean run (a folder it could not read, a `find` without -printf): the
    // engine's archive, which misses nothing, is read instead.
    (exit == Some(0)).then_some((listed, unlisted))
}

/// The archive of a stream of exec events: stdout is the archive, stderr and the exit code
/// are kept aside.
fn exec_archive(
    events: BoxStream<'static, Result<ExecEvent>>,
    state: Arc<Mutex<State>>,
) -> BoxStream<'static, io::Result<Bytes>> {
    futures::stream::unfold((events, state), |(mut events, state)| async move {
        loop {
            let event = match tokio::time::timeout(IDLE, events.next()).await {
                Err(_) => {
                    let stalled = io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("the workspace sent nothing for {} s", IDLE.as_secs()),
                    );
                    return Some((Err(stalled), (events, state)));
                }
                Ok(None) => return None,
                Ok(Some(event)) => event,
            };
            match event {
                Ok(ExecEvent::Stdout(chunk)) => return Some((Ok(chunk), (events, state))),
                Ok(ExecEvent::Stderr(chunk)) => {
                    let mut s = state.lock().expect("sync state poisoned");
                    let room = STDERR.saturating_sub(s.stderr.len());
                    s.stderr.extend_from_slice(&chunk[..chunk.len().min(room)]);
                }
                Ok(ExecEvent::Exited(code)) => {
                    state.lock().expect("sync state poisoned").exit = Some(code)
                }
                Err(e) => return Some((Err(engine_failed(&state, e)), (events, state))),
            }
        }
    })
    .boxed()
}

fn engine_failed(state: &Mutex<State>, e: Error) -> io::Error {
    let error = io::Error::other(e.message.clone());
    state.lock().expect("sync state poisoned").engine = Some(e);
    error
}

/// The engine's archive of `/workspace` (a stopped container's too).
fn engine_archive(
    driver: &Arc<dyn ContainerDriver>,
    engine_id: &str,
    state: Arc<Mutex<State>>,
) -> BoxStream<'static, io::Result<Bytes>> {
    let chunks = driver.copy_out(engine_id, "/workspace");
    futures::stream::unfold((chunks, state), |(mut chunks, state)| async move {
        let item = match tokio::time::timeout(IDLE, chunks.next()).await {
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the engine sent nothing for {} s", IDLE.as_secs()),
            )),
            Ok(None) => return None,
            Ok(Some(Ok(chunk))) => Ok(chunk),
            Ok(Some(Err(e))) => Err(engine_failed(&state, e)),
        };
        Some((item, (chunks, state)))
    })
    .boxed()
}

impl Source {
    /// The archive of the workspace of container `engine_id`, without ignored names and (when
    /// the workspace can make it) without files over `max_file_bytes`.
    pub(super) async fn open(
        driver: &Arc<dyn ContainerDriver>,
        engine_id: &str,
        ignore: &[String],
        max_file_bytes: u64,
    ) -> Self {
        let state = Arc::new(Mutex::new(State::default()));
        let (stream, layout, oversize, oversize_unlisted) = match list_oversize(
            driver,
            engine_id,
            ignore,
            max_file_bytes,
        )
        .await
        {
            Some((oversize, unlisted)) => {
                let events = driver.exec_stream(engine_id, &tar_command(ignore, max_file_bytes));
                let stream = exec_archive(events, state.clone());
                (stream, Layout::Dot, oversize, unlisted)
            }
            None => {
                tracing::info!(container = %engine_id, "the workspace cannot archive itself; reading the engine's archive");
                let stream = engine_archive(driver, engine_id, state.clone());
                (stream, Layout::Folder, Vec::new(), 0)
            }
        };
        Self::new(stream, layout, oversize, oversize_unlisted, state)
    }

    fn new(
        stream: BoxStream<'static, io::Result<Bytes>>,
        layout: Layout,
        oversize: Vec<(Vec<u8>, u64)>,
        oversize_unlisted: u64,
        state: Arc<Mutex<State>>,
    ) -> Self {
        Self {
            reader: Reader::new(StreamReader::new(stream)),
            layout,
            oversize,
            oversize_unlisted,
            state,
        }
    }

    /// An archive as the engine's (for tests of what reads it).
    #[cfg(test)]
    pub(crate) fn engine(archive: Vec<u8>) -> Self {
        let stream = futures::stream::iter(
            archive
                .chunks(700)
                .map(|c| Ok(Bytes::copy_from_slice(c)))
                .collect::<Vec<_>>(),
        )
        .boxed();
        Self::new(stream, Layout::Folder, Vec::new(), 0, Arc::default())
    }

    /// Whether entries over the size limit may be in the archive (to be read past).
    pub(super) fn unfiltered(&self) -> bool {
        self.layout == Layout::Folder
    }

    /// The engine's failure behind a read error, if it was the engine's.
    pub(super) fn engine_error(&self) -> Option<Error> {
        self.state
            .lock()
            .expect("sync state poisoned")
            .engine
            .take()
    }

    /// After the archive's end: reads what is left of the stream (the exit code comes last)
    /// and says why the archive may miss entries (`tar` or `find` complained), if it may.
    pub(super) async fn finish(self) -> Result<Option<String>> {
        let mut rest = self.reader.into_inner();
        let mut buf = vec![0u8; 64 * 1024];
        let mut drained = 0usize;
        loop {
            match tokio::io::AsyncReadExt::read(&mut rest, &mut buf).await {
                Ok(0) => break,
                Ok(n) => {
                    drained += n;
                    if drained > 1024 * 1024 {
                        return Ok(Some(
                            "the workspace sent more after the end of its archive".into(),
                        ));
                    }
                }
                Err(e) => {
                    if let Some(engine) = self
                        .state
                        .lock()
                        .expect("sync state poisoned")
                        .engine
                        .take()
                    {
                        return Err(engine);
                    }
                    return Ok(Some(format!("the workspace's archive broke off: {e}")));
                }
            }
        }
        let state = self.state.lock().expect("sync state poisoned");
        if self.layout == Layout::Folder {
            return Ok(None);
        }
        let said = crate::workspace::upstream::excerpt(&String::from_utf8_lossy(&state.stderr));
        Ok(match state.exit {
            Some(0) if said.is_empty() => None,
            Some(code) => Some(format!(
                "the workspace's tar exited with {code}{}",
                if said.is_empty() {
                    String::new()
                } else {
                    format!(": {said}")
                }
            )),
            None => Some("the workspace's tar did not say how it ended".into()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_relative_to_the_workspace() {
        assert_eq!(Layout::Dot.relative(b"./a/b"), Some(&b"a/b"[..]));
        assert_eq!(Layout::Dot.relative(b"./"), None);
        assert_eq!(Layout::Dot.relative(b"."), None);
        assert_eq!(Layout::Dot.relative(b"./d/"), Some(&b"d"[..]));
        assert_eq!(Layout::Dot.relative(b"./.bashrc"), Some(&b".bashrc"[..]));
        assert_eq!(Layout::Folder.relative(b"workspace/a/b"), Some(&b"a/b"[..]));
        assert_eq!(Layout::Folder.relative(b"workspace/"), None);
        assert_eq!(Layout::Folder.relative(b"workspace"), None);
    }

    #[test]
    fn the_tar_command_quotes_what_it_is_given() {
        let command = tar_command(&["it's".to_string()], 100);
        assert_eq!(command[..2], ["sh", "-c"]);
        assert!(command[2].contains(r"'-name' 'it'\''s'"), "{}", command[2]);
        assert!(command[2].contains("'+100c'"), "{}", command[2]);
    }
}
