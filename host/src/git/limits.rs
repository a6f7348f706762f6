//! The project's limits (`[workspaces] max_file_bytes`, `project_max_bytes`,
//! `project_max_files`) on what versioning brings into its files: a checkout, a merge or a
//! revert on the current branch, or a push to it, whose files would break them is refused
//! before anything changes, as an upload or a sync past them would be.
//!
//! A push is refused by the `pre-receive` hook (see `hook.rs`), which counts the pushed
//! commit's files with the same rules from what [`hook_env`] tells it.

use super::files::{Flat, versioned};
use super::repo::failed;
use crate::error::{Code, Error, Result};
use crate::workspace::Limits;
use git2::Repository;

/// The stored files versioning leaves as they are (not versioned, or ignored and not
/// tracked): they stay beside a commit's files and count against the project's limits.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Kept {
    pub(super) bytes: u64,
    pub(super) files: u64,
}

fn over(message: String, details: serde_json::Value) -> Error {
    Error::new(Code::GitOverLimits, message)
        .details(details)
        .hint("an admin sets the limits with [workspaces] max_file_bytes, project_max_bytes and project_max_files; or make the files smaller in a new commit")
}

/// Refuses the commit entries `flat` as the project's files if, with the `kept` files, they
/// break `limits`.
pub(super) fn check(
    repo: &Repository,
    flat: &Flat,
    ignore: &[String],
    limits: Limits,
    kept: Kept,
) -> Result<()> {
    let odb = repo.odb().map_err(failed)?;
    let (mut bytes, mut files) = (kept.bytes, kept.files);
    for (path, (id, mode)) in flat {
        if *mode == 0o160000 || !versioned(path, ignore) {
            continue;
        }
        let (size, _) = odb.read_header(*id).map_err(failed)?;
        let size = size as u64;
        if size > limits.max_file_bytes {
            return Err(over(
                format!(
                    "'{path}' is {size} bytes, over the project's file size limit of {} bytes",
                    limits.max_file_bytes
                ),
                serde_json::json!({ "path": path, "size": size, "max_file_bytes": limits.max_file_bytes }),
            ));
        }
        bytes += size;
        files += 1;
    }
    for (count, max, unit) in [
        (files, limits.max_files, "files"),
        (bytes, limits.max_bytes, "bytes"),
    ] {
        if count > max {
            return Err(over(
                format!("the project would hold {count} {unit}, over its limit of {max} {unit}"),
                serde_json::json!({ (unit): count, (format!("max_{unit}")): max }),
            ));
        }
    }
    Ok(())
}

/// What the `pre-receive` hook needs to apply the same rules to a pushed commit.
pub(super) fn hook_env(
    limits: Limits,
    kept: Kept,
    ignore: &[String],
) -> Vec<(&'static str, String)> {
    vec![
        ("WEFT_MAX_FILE_BYTES", limits.max_file_bytes.to_string()),
        ("WEFT_MAX_BYTES", limits.max_bytes.to_string()),
        ("WEFT_MAX_FILES", limits.max_files.to_string()),
        ("WEFT_KEPT_BYTES", kept.bytes.to_string()),
        ("WEFT_KEPT_FILES", kept.files.to_string()),
        // Names cannot hold '/': it separates them.
        ("WEFT_IGNORE", ignore.join("/")),
    ]
}
