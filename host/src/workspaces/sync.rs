//! Moving a project's files into a workspace and changes back, as tar streams through the
//! engine. Nothing escapes: entries with absolute paths, `..` or links are refused and reported;
//! ignored folders (`__pycache__`, `.venv`, ...) are left out both ways.

use super::paths;
use super::projects::Projects;
use crate::error::{Code, Error, Result};
use bytes::Bytes;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Read;
use utoipa::ToSchema;

/// The uid and gid that own `/workspace` in the workspace images.
const WORKSPACE_UID: u64 = 1000;

/// What a sync back did.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct SyncReport {
    /// Files added or changed in the project.
    pub written: Vec<String>,
    /// Files deleted from the project because they were deleted in the workspace.
    pub deleted: Vec<String>,
    pub unchanged: usize,
    /// Entries not synced, with why.
    pub refused: Vec<Refused>,
}

/// An entry of the workspace that was not synced.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Refused {
    pub path: String,
    pub reason: String,
}

fn ignored(path: &str, ignore: &[String]) -> bool {
    path.split('/').any(|part| ignore.iter().any(|i| i == part))
}

/// A tar of project `id`'s files (owned by the workspace user), to unpack in `/workspace`.
pub async fn pack(projects: &Projects, id: &str, ignore: &[String]) -> Result<Bytes> {
    let mut files = Vec::new();
    for entry in projects.list_files(id).await? {
        if ignored(&entry.path, ignore) {
            continue;
        }
        let content = projects.read_file(id, &entry.path).await?;
        files.push((entry.path, content));
    }
    let mut archive = tar::Builder::new(Vec::new());
    // Folders first, owned by the workspace user like the files (the engine would make
    // missing ones owned by root).
    let mut folders = std::collections::BTreeSet::new();
    for (path, _) in &files {
        let mut parent = std::path::Path::new(path).parent();
        while let Some(folder) = parent.filter(|p| !p.as_os_str().is_empty()) {
            folders.insert(folder.to_string_lossy().into_owned());
            parent = folder.parent();
        }
    }
    for folder in folders {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Directory);
        header.set_size(0);
        header.set_mode(0o755);
        header.set_uid(WORKSPACE_UID);
        header.set_gid(WORKSPACE_UID);
        header.set_mtime(chrono::Utc::now().timestamp().max(0) as u64);
        archive
            .append_data(&mut header, format!("{folder}/"), std::io::empty())
            .map_err(|e| Error::internal(format!("cannot pack '{folder}': {e}")))?;
    }
    for (path, content) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_uid(WORKSPACE_UID);
        header.set_gid(WORKSPACE_UID);
        header.set_mtime(chrono::Utc::now().timestamp().max(0) as u64);
        archive
            .append_data(&mut header, &path, &content[..])
            .map_err(|e| Error::internal(format!("cannot pack '{path}': {e}")))?;
    }
    let bytes = archive
        .into_inner()
        .map_err(|e| Error::internal(format!("cannot pack the project: {e}")))?;
    Ok(bytes.into())
}

/// A workspace's files by path, read from its archive.
type Files = BTreeMap<String, Vec<u8>>;

/// The files of a tar of the workspace folder (entries start with `<folder>/`), and refusals.
fn unpack(tar: &[u8], ignore: &[String], max_file_bytes: u64) -> Result<(Files, Vec<Refused>)> {
    let malformed = |e: std::io::Error| {
        Error::new(
            Code::SessionSyncFailed,
            format!("the workspace archive is malformed: {e}"),
        )
        .hint("the container is kept; retry the sync, or download the files yourself")
    };
    let mut files = BTreeMap::new();
    let mut refused = Vec::new();
    let mut archive = tar::Archive::new(tar);
    for entry in archive.entries().map_err(malformed)? {
        let mut entry = entry.map_err(malformed)?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        // Drop the folder's own name: `workspace/a/b` is `a/b`.
        let Some((_, relative)) = raw.split_once('/') else {
            continue;
        };
        let relative = relative.trim_end_matches('/');
        if relative.is_empty() || ignored(relative, ignore) {
            continue;
        }
        let path = match paths::check(relative) {
            Ok(path) => path,
            Err(reason) => {
                refused.push(Refused {
                    path: relative.into(),
                    reason,
                });
                continue;
            }
        };
        match entry.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                if entry.size() > max_file_bytes {
                    refused.push(Refused {
                        path,
                        reason: format!("over the file size limit of {max_file_bytes} bytes"),
                    });
                    continue;
                }
                let mut content = Vec::with_capacity(entry.size() as usize);
                entry.read_to_end(&mut content).map_err(malformed)?;
                files.insert(path, content);
            }
            tar::EntryType::Directory => {}
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .map(|t| String::from_utf8_lossy(&t).into_owned())
                    .unwrap_or_default();
                let outside = target.starts_with('/') || target.split('/').any(|p| p == "..");
                let reason = if outside {
                    format!("a link pointing outside the workspace ({target})")
                } else {
                    format!("a link ({target}); links are not synced")
                };
                refused.push(Refused { path, reason });
            }
            other => refused.push(Refused {
                path,
                reason: format!("not a regular file ({other:?})"),
            }),
        }
    }
    Ok((files, refused))
}

/// Brings project `id` in line with a tar of the workspace: changed files written, deleted ones
/// deleted, ignored and refused paths untouched. The archive is read whole first, so a
/// malformed one changes nothing.
pub async fn apply(
    projects: &Projects,
    id: &str,
    tar: Bytes,
    ignore: &[String],
    max_file_bytes: u64,
) -> Result<SyncReport> {
    let ignore_owned = ignore.to_vec();
    let (files, refused) =
        tokio::task::spawn_blocking(move || unpack(&tar, &ignore_owned, max_file_bytes))
            .await
            .map_err(|e| Error::internal(format!("the sync task failed: {e}")))??;
    let mut report = SyncReport {
        refused,
        ..SyncReport::default()
    };
    let kept: std::collections::HashSet<&str> =
        report.refused.iter().map(|r| r.path.as_str()).collect();
    for stored in projects.list_files(id).await? {
        if !files.contains_key(&stored.path)
            && !ignored(&stored.path, ignore)
            && !kept.contains(stored.path.as_str())
        {
            projects.remove_file(id, &stored.path).await?;
            report.deleted.push(stored.path);
        }
    }
    for (path, content) in files {
        let same = match projects.read_file(id, &path).await {
            Ok(existing) => existing.as_ref() == content.as_slice(),
            Err(e) if e.code == Code::ProjectFileNotFound => false,
            Err(e) => return Err(e),
        };
        if same {
            report.unchanged += 1;
        } else {
            projects.write_file(id, &path, content.into()).await?;
            report.written.push(path);
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive(entries: &[(&str, tar::EntryType, &[u8], Option<&str>)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, kind, content, link) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(*kind);
            header.set_size(content.len() as u64);
            header.set_mode(0o644);
            // Raw names: the tar crate refuses to write `..` through its checked setters.
            let name = header.as_old_mut().name.as_mut();
            name[..path.len()].copy_from_slice(path.as_bytes());
            if let Some(link) = link {
                header.set_link_name(link).unwrap();
            }
            header.set_cksum();
            builder.append(&header, *content).unwrap();
        }
        builder.into_inner().unwrap()
    }

    #[test]
    fn unpack_keeps_files_and_reports_escapes() {
        let ignore = vec!["__pycache__".to_string()];
        let tar = archive(&[
            ("workspace/", tar::EntryType::Directory, b"", None),
            ("workspace/a.py", tar::EntryType::Regular, b"print(1)", None),
            ("workspace/sub/b.txt", tar::EntryType::Regular, b"b", None),
            (
                "workspace/__pycache__/a.pyc",
                tar::EntryType::Regular,
                b"x",
                None,
            ),
            ("workspace/../evil", tar::EntryType::Regular, b"x", None),
            (
                "workspace/out",
                tar::EntryType::Symlink,
                b"",
                Some("/etc/passwd"),
            ),
            ("workspace/big", tar::EntryType::Regular, &[0u8; 100], None),
        ]);
        let (files, refused) = unpack(&tar, &ignore, 64).unwrap();
        assert_eq!(files.keys().collect::<Vec<_>>(), ["a.py", "sub/b.txt"]);
        let why: Vec<(&str, &str)> = refused
            .iter()
            .map(|r| (r.path.as_str(), r.reason.as_str()))
            .collect();
        assert_eq!(why.len(), 3, "{why:?}");
        assert!(why[0].1.contains(".."));
        assert!(why[1].1.contains("outside"));
        assert!(why[2].1.contains("size limit"));
    }

    #[test]
    fn a_malformed_archive_is_an_error() {
        let mut tar = archive(&[("workspace/a", tar::EntryType::Regular, b"hello", None)]);
        tar[148] ^= 0xff; // break the header checksum
        let e = unpack(&tar, &[], 1024).unwrap_err();
        assert_eq!(e.code, Code::SessionSyncFailed);
    }
}
