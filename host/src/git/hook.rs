//! The `pre-receive` hook every push runs (through `core.hooksPath`): it refuses a push that
//! moves or deletes the project's current branch while the project's files have uncommitted
//! changes, and says why in the pusher's terminal (`remote: ...`). Weft tells it the current
//! branch and the changes in the environment (`WEFT_CURRENT_REF`, `WEFT_UNCOMMITTED`), read
//! under the project's lock just before the push.

use std::path::{Path, PathBuf};

const SCRIPT: &str = r#"#!/bin/sh
# Written by Weft at start: refuses pushes that would overwrite the project's uncommitted files.
zero=0000000000000000000000000000000000000000
status=0
while read -r old new ref; do
    [ -n "$WEFT_CURRENT_REF" ] && [ "$ref" = "$WEFT_CURRENT_REF" ] || continue
    if [ "$new" = "$zero" ]; then
        echo "error: ${ref#refs/heads/} is the project's current branch: it cannot be deleted" >&2
        status=1
    elif [ -n "$WEFT_UNCOMMITTED" ]; then
        echo "error: the project's files have uncommitted changes: $WEFT_UNCOMMITTED" >&2
        echo "hint: commit them in Weft (POST /api/v1/git/commit), pull, and push again" >&2
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
