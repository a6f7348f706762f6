//! A job's input files (artifacts of the run's owner, or bytes a node passes on, such as a
//! previous node's output) as one tar for the engine to unpack in the working folder.

use crate::error::{Error, Result};
use crate::workspace::paths;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use std::collections::BTreeSet;

/// The uid and gid that own the files, as in the workspace images.
const FILES_UID: u64 = 1000;
/// The most bytes a job's inputs may hold together (they travel in the node's call).
const MAX_INPUT_BYTES: usize = 64 << 20;

/// The tar of `inputs`, their folders made first; a path that is not a clean relative one, a
/// path named twice or inputs over 64 MiB are refused before any container is made.
pub(super) fn tar(inputs: &[(String, Vec<u8>)]) -> Result<BoxStream<'static, Result<Bytes>>> {
    let total: usize = inputs.iter().map(|(_, data)| data.len()).sum();
    if total > MAX_INPUT_BYTES {
        return Err(Error::invalid_field(
            "inputs",
            format!("the job's inputs hold {total} bytes, over the {MAX_INPUT_BYTES} allowed"),
        )
        .hint("put large data in the project (it is copied in at the run's commit)"));
    }
    let mut folders = BTreeSet::new();
    let mut seen = BTreeSet::new();
    for (path, _) in inputs {
        let clean = paths::check(path).map_err(|why| {
            Error::invalid_field("inputs", format!("'{path}': {why}")).hint(
                "name input files by paths relative to the working folder, such as data/train.csv",
            )
        })?;
        if clean != *path || !seen.insert(path.as_str()) {
            return Err(Error::invalid_field(
                "inputs",
                format!("'{path}' is not a clean relative path named once"),
            ));
        }
        let mut parent = path.as_str();
        while let Some((folder, _)) = parent.rsplit_once('/') {
            folders.insert(folder.to_string());
            parent = folder;
        }
    }
    let now = chrono::Utc::now().timestamp().max(0) as u64;
    let mut builder = tar::Builder::new(Vec::with_capacity(total + 1024 * (inputs.len() + 2)));
    let header = |kind: tar::EntryType, mode: u32, size: u64| {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_size(size);
        header.set_uid(FILES_UID);
        header.set_gid(FILES_UID);
        header.set_mtime(now);
        header
    };
    let failed = |e: std::io::Error| Error::internal(format!("cannot pack the job's inputs: {e}"));
    for folder in &folders {
        let mut dir = header(tar::EntryType::Directory, 0o755, 0);
        builder
            .append_data(&mut dir, format!("{folder}/"), std::io::empty())
            .map_err(failed)?;
    }
    for (path, data) in inputs {
        let mut file = header(tar::EntryType::Regular, 0o644, data.len() as u64);
        builder
            .append_data(&mut file, path, data.as_slice())
            .map_err(failed)?;
    }
    let bytes = Bytes::from(builder.into_inner().map_err(failed)?);
    Ok(futures::stream::once(async move { Ok(bytes) }).boxed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_that_leave_the_folder_or_repeat_are_refused() {
        for bad in ["../x", "/etc/passwd", "a/../../b", ""] {
            assert!(tar(&[(bad.into(), vec![1])]).is_err(), "{bad}");
        }
        let twice = [("a.txt".to_string(), vec![]), ("a.txt".to_string(), vec![])];
        assert!(tar(&twice).is_err());
        assert!(tar(&[("data/in.csv".into(), b"x,y".to_vec())]).is_ok());
    }
}
