//! Named crash points between a domain's writes (the workflow executor's, versioning's), so
//! tests can stop the host exactly where a crash would hurt most and check that the restarted
//! host still tells the truth.
//!
//! In debug builds (the ones `cargo test` runs), `WEFT_CRASH_AT=<point>` aborts the process
//! (SIGABRT: no destructor, no flush, like a `kill -9`) the first time the host passes that
//! point. Release builds compile every point to nothing, so no variable and no configuration can
//! crash a shipped host; a debug build without the variable only compares a string.
//!
//! Not here: the writes themselves or resuming (see each domain).
//!
//! The executor's points, each right after the write it names is stored:
//! - `run-started`: the run is stored as running, no node has started yet;
//! - `node-started:<node>`: an attempt of the node is stored as started;
//! - `node-retrying:<node>`: a failed attempt is stored, the next one is not;
//! - `node-succeeded:<node>`: the node's outputs are stored, its dependents have not started;
//! - `node-failed:<node>`: the node's failure is stored (with what it means for the run);
//! - `node-skipped:<node>`: the node is stored as skipped.
//!
//! Versioning's (see `git/service.rs`):
//! - `git-commit-objects`: a commit's objects are written, no ref names it yet;
//! - `git-files-half`: half of a change of a project's files is written (a checkout, a merge
//!   or a push to the current branch), `refs/weft/files` is not moved yet;
//! - `git-push-received`: a push has updated the repository, the files have not followed.

/// Aborts the process if `WEFT_CRASH_AT` names `point` (`point:node` when `node` is given).
#[cfg(debug_assertions)]
pub(crate) fn point(point: &str, node: Option<&str>) {
    static TARGET: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    let Some(target) = TARGET.get_or_init(|| std::env::var("WEFT_CRASH_AT").ok()) else {
        return;
    };
    let reached = match node {
        Some(node) => target.strip_prefix(point).and_then(|t| t.strip_prefix(':')) == Some(node),
        None => target == point,
    };
    if reached {
        eprintln!("weft: crash point {target} reached; aborting");
        std::process::abort();
    }
}

#[cfg(not(debug_assertions))]
#[inline(always)]
pub(crate) fn point(_point: &str, _node: Option<&str>) {}
