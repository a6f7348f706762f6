//! The example plugins in `examples/`, built once per test run as their README says.

use super::fixtures::root;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// The bytes of the example plugin `name` (its crate name) from `examples/`, built as
/// `examples/README.md` tells a plugin author (`cargo build --release --target wasm32-wasip2`),
/// once per test run, beside the built-in plugins (`host/builtins/build.rs`, same settings), whose
/// compiled dependencies they share.
pub fn component(name: &str) -> Vec<u8> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let dir = BUILT
        .get_or_init(build_examples)
        .as_ref()
        .unwrap_or_else(|e| panic!("{e}"));
    let file = dir.join(format!("{}.wasm", name.replace('-', "_")));
    std::fs::read(&file).unwrap_or_else(|e| panic!("example {}: {e}", file.display()))
}

fn build_examples() -> Result<PathBuf, String> {
    let target = root().join("target").join("plugins");
    let status = Command::new(env!("CARGO"))
        .current_dir(root())
        .args(["build", "--release", "--target", "wasm32-wasip2"])
        .args(["-p", "text-stats", "-p", "least-loaded", "--target-dir"])
        .arg(&target)
        .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
        .env("CARGO_PROFILE_RELEASE_STRIP", "debuginfo")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .status()
        .map_err(|e| format!("cannot run cargo to build the examples: {e}"))?;
    if !status.success() {
        return Err("building examples/ failed (see the output above)".into());
    }
    Ok(target.join("wasm32-wasip2").join("release"))
}
