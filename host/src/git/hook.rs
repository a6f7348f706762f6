//! The `pre-receive` hook every push runs (through `core.hooksPath`): it refuses a push that
//! moves or deletes the project's current branch while the project's files have uncommitted
//! changes, or that would make the files break the project's limits, and says why in the
//! pusher's terminal (`remote: ...`). Weft tells it the current branch, the changes and the
//! limits in the environment (`WEFT_CURRENT_REF`, `WEFT_UNCOMMITTED`, those of
//! `limits::hook_env`), read under the project's lock just before the push.

use std::path::{Path, PathBuf};

const SCRIPT: &str = r#"#!/bin/sh
# Written by Weft at start: refuses pushes that would overwrite the project's uncommitted files.
zero=0000000000000000000000000000000000000000
status=0
# Counts the files commit $1 would make the project hold (blobs under no ignored name, as Weft
# writes them) with those it keeps, and names the first limit they break.
within_limits() {
    git ls-tree -r -l -z "$1" | awk -v RS='\0' -v max_file="$WEFT_MAX_FILE_BYTES" \
        -v max_bytes="$WEFT_MAX_BYTES" -v max_files="$WEFT_MAX_FILES" \
        -v bytes="$WEFT_KEPT_BYTES" -v files="$WEFT_KEPT_FILES" -v ignore="$WEFT_IGNORE" '
    BEGIN { n = split(ignore, names, "/"); for (i = 1; i <= n; i++) skip[names[i]] = 1 }
    {
        tab = index($0, "\t"); split(substr($0, 1, tab - 1), meta, " +"); path = substr($0, tab + 1)
        if (meta[2] != "blob") next
        n = split(path, parts, "/"); for (i = 1; i <= n; i++) if (parts[i] in skip) next
        if (meta[4] + 0 > max_file + 0) {
            print "error: " path " is " meta[4] " bytes, over the file size limit of the project (" max_file " bytes)"
            broken = 1; exit
        }
        bytes += meta[4]; files++
    }
    END {
        if (!broken && files + 0 > max_files + 0) {
            print "error: the project would hold " files " files, over its limit of " max_files " files"; broken = 1
        }
        if (!broken && bytes + 0 > max_bytes + 0) {
            print "error: the project would hold " bytes " bytes, over its limit of " max_bytes " bytes"; broken = 1
        }
        exit broken
    }' >&2
}
while read -r old new ref; do
    [ -n "$WEFT_CURRENT_REF" ] && [ "$ref" = "$WEFT_CURRENT_REF" ] || continue
    if [ "$new" = "$zero" ]; then
        echo "error: ${ref#refs/heads/} is the project's current branch: it cannot be deleted" >&2
        status=1
    elif [ -n "$WEFT_UNCOMMITTED" ]; then
        echo "error: the project's files have uncommitted changes: $WEFT_UNCOMMITTED" >&2
        echo "hint: commit them in Weft (POST /api/v1/git/commit), pull, and push again" >&2
        status=1
    elif [ -n "$WEFT_MAX_BYTES" ] && ! within_limits "$new"; then
        echo "hint: make the files smaller in a new commit; an admin sets the limits ([workspaces] max_file_bytes, project_max_bytes, project_max_files)" >&2
        status=1
    fi
done
exit $status
"#;

/// The folder of the hooks, under the repositories' folder.
pub(super) fn dir(root: &Path) -> PathBuf {
    root.join(".hooks")
}

/// Writes the hook (again at every start, so a newer Weft's replaces an older one's).
pub(super) fn install(root: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = dir(root);
    std::fs::create_dir_all(&dir)?;
    let aside = dir.join("pre-receive.new");
    std::fs::write(&aside, SCRIPT)?;
    std::fs::set_permissions(&aside, std::fs::Permissions::from_mode(0o755))?;
    std::fs::rename(&aside, dir.join("pre-receive"))?;
    Ok(())
}
