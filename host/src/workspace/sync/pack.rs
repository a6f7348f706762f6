//! A project's files as a tar stream for `/workspace`, read from storage one chunk at a time
//! while the engine takes it: a project of gigabytes costs the memory of a few chunks.
//!
//! Stored files a workspace cannot hold are left out and reported: names that are not a valid
//! path (a part over 255 bytes, which object stores accept and file systems do not) and a file
//! where another file needs a folder of the same name.

use super::{Refused, ignored};
use crate::error::{Error, Result};
use crate::workspace::paths;
use crate::workspace::projects::{Projects, storage_error};
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use std::collections::BTreeSet;
use tokio::sync::mpsc;

/// The uid and gid that own `/workspace` in the workspace images.
const WORKSPACE_UID: u64 = 1000;

/// Chunks in flight between storage and the engine.
const IN_FLIGHT: usize = 4;

/// The header (and GNU long-name entry before it, for names over 100 bytes) of one entry.
fn header(name: &str, kind: tar::EntryType, size: u64) -> Vec<u8> {
    let now = chrono::Utc::now().timestamp().max(0) as u64;
    let mut out = Vec::with_capacity(1024);
    let make = |name: &[u8], kind: tar::EntryType, size: u64, mode: u32| {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_size(size);
        header.set_mode(mode);
        header.set_uid(WORKSPACE_UID);
        header.set_gid(WORKSPACE_UID);
        header.set_mtime(now);
        let field = &mut header.as_old_mut().name;
        let n = name.len().min(field.len());
        field[..n].copy_from_slice(&name[..n]);
        header.set_cksum();
        header
    };
    let bytes = name.as_bytes();
    if bytes.len() > 100 {
        let long = make(
            b"././@LongLink",
            tar::EntryType::GNULongName,
            bytes.len() as u64 + 1,
            0o644,
        );
        out.extend_from_slice(long.as_bytes());
        out.extend_from_slice(bytes);
        out.push(0);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    let mode = if kind == tar::EntryType::Directory {
        0o755
    } else {
        0o644
    };
    out.extend_from_slice(make(bytes, kind, size, mode).as_bytes());
    out
}

/// What of the stored files goes into the workspace, and what cannot.
fn plan(stored: Vec<(String, u64)>, ignore: &[String]) -> (Vec<(String, u64)>, Vec<Refused>) {
    let mut skipped = Vec::new();
    let mut files = Vec::new();
    for (path, size) in stored {
        if ignored(&path, ignore) {
            continue;
        }
        match paths::check(&path) {
            Ok(clean) if clean == path => files.push((path, size)),
            Ok(_) => skipped.push(Refused {
                path,
                reason: "not a clean relative path".into(),
            }),
            Err(reason) => skipped.push(Refused { path, reason }),
        }
    }
    let names: BTreeSet<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
    let mut folders = BTreeSet::new();
    for (path, _) in &files {
        let mut parent = path.as_str();
        while let Some((folder, _)) = parent.rsplit_once('/') {
            folders.insert(folder.to_string());
            parent = folder;
        }
    }
    let clash: BTreeSet<String> = folders
        .iter()
        .filter(|f| names.contains(f.as_str()))
        .cloned()
        .collect();
    files.retain(|(path, _)| {
        let keep = !clash.contains(path);
        if !keep {
            skipped.push(Refused {
                path: path.clone(),
                reason: "the project also has a folder of this name".into(),
            });
        }
        keep
    });
    let mut entries: Vec<(String, u64)> = folders.into_iter().map(|f| (f + "/", 0)).collect();
    entries.extend(files);
    (entries, skipped)
}

/// A tar of project `id`'s files (owned by the workspace user), to unpack in `/workspace`,
/// and the stored files left out of it; with `only`, of those files alone (and their folders).
pub(crate) async fn pack(
    projects: &Projects,
    id: &str,
    ignore: &[String],
    only: Option<&[String]>,
) -> Result<(BoxStream<'static, Result<Bytes>>, Vec<Refused>)> {
    let only: Option<BTreeSet<&str>> = only.map(|o| o.iter().map(String::as_str).collect());
    let stored = projects
        .list_files(id)
        .await?
        .into_iter()
        .filter(|f| only.as_ref().is_none_or(|o| o.contains(f.path.as_str())))
        .map(|f| (f.path, f.size))
        .collect();
    let (entries, skipped) = plan(stored, ignore);
    let op = projects.storage().clone();
    let prefix = format!("{id}/");
    let (tx, rx) = mpsc::channel::<Result<Bytes>>(IN_FLIGHT);
    tokio::spawn(async move {
        let send = |chunk: Result<Bytes>| tx.send(chunk);
        for (name, size) in entries {
            if let Some(folder) = name.strip_suffix('/') {
                let block = header(&format!("{folder}/"), tar::EntryType::Directory, 0);
                if send(Ok(block.into())).await.is_err() {
                    return;
                }
                continue;
            }
            if send(Ok(header(&name, tar::EntryType::Regular, size).into()))
                .await
                .is_err()
            {
                return;
            }
            if size == 0 {
                continue;
            }
            let path = format!("{prefix}{name}");
            let stream = match op.reader(&path).await {
                // A bounded range: an open one makes the storage read in 2 MiB buffers.
                Ok(reader) => reader.into_bytes_stream(0..size).await,
                Err(e) => Err(e),
            };
            let mut stream = match stream {
                Ok(stream) => stream,
                Err(e) => {
                    let _ = send(Err(storage_error(e))).await;
                    return;
                }
            };
            let mut sent = 0u64;
            while let Some(chunk) = stream.next().await {
                let chunk = match chunk {
                    Ok(chunk) => chunk,
                    Err(e) => {
                        let _ =
                            send(Err(Error::internal(format!("cannot read '{name}': {e}")))).await;
                        return;
                    }
                };
                sent += chunk.len() as u64;
                if sent > size || send(Ok(chunk)).await.is_err() {
                    break;
                }
            }
            if sent != size {
                let changed = Error::internal(format!(
                    "'{name}' changed while it was copied into the workspace"
                ));
                let _ = send(Err(changed)).await;
                return;
            }
            let padding = (512 - size % 512) % 512;
            if padding > 0
                && send(Ok(Bytes::from(vec![0u8; padding as usize])))
                    .await
                    .is_err()
            {
                return;
            }
        }
        let _ = send(Ok(Bytes::from(vec![0u8; 1024]))).await;
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    })
    .boxed();
    Ok((stream, skipped))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_names_get_a_gnu_long_name_entry() {
        let long = format!("{}/file.txt", "d".repeat(150));
        let blocks = header(&long, tar::EntryType::Regular, 3);
        assert_eq!(blocks.len(), 3 * 512, "long-name header, name, header");
        let mut archive = tar::Archive::new(
            [blocks.as_slice(), b"abc", &[0u8; 509], &[0u8; 1024]]
                .concat()
                .as_slice(),
        )
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect::<Vec<_>>();
        assert_eq!(archive.pop().unwrap(), long);
    }

    #[test]
    fn what_a_workspace_cannot_hold_is_left_out() {
        let long = "n".repeat(256);
        let stored = vec![
            ("a".to_string(), 1),
            ("a/b".to_string(), 1),
            (long.clone(), 1),
            ("x/y.txt".to_string(), 1),
            ("__pycache__/c.pyc".to_string(), 1),
        ];
        let (entries, skipped) = plan(stored, &["__pycache__".to_string()]);
        let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["a/", "x/", "a/b", "x/y.txt"]);
        let why: Vec<&str> = skipped.iter().map(|r| r.path.as_str()).collect();
        assert_eq!(why, [long.as_str(), "a"]);
    }
}
