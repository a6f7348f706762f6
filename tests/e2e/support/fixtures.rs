//! Test components: the hostile and helper plugins in `tests/fixtures`, built once per test
//! run with the real toolchain, and the shared compiled-component cache.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

pub(crate) fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// One compiled-component cache for all test servers of this run.
pub fn shared_cache_dir() -> PathBuf {
    root().join("target").join("test-component-cache")
}

/// The bytes of fixture component `name` (its crate name), building the fixtures on first use.
pub fn fixture(name: &str) -> Vec<u8> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let dir = BUILT
        .get_or_init(build)
        .as_ref()
        .unwrap_or_else(|e| panic!("{e}"));
    let file = dir.join(format!("{}.wasm", name.replace('-', "_")));
    std::fs::read(&file).unwrap_or_else(|e| panic!("fixture {}: {e}", file.display()))
}

fn build() -> Result<PathBuf, String> {
    let target = root().join("target").join("fixtures");
    let status = Command::new(env!("CARGO"))
        .current_dir(root().join("tests").join("fixtures"))
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--target-dir",
        ])
        .arg(&target)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .status()
        .map_err(|e| format!("cannot run cargo to build the fixtures: {e}"))?;
    if !status.success() {
        return Err("building tests/fixtures failed (see the output above)".into());
    }
    Ok(target.join("wasm32-wasip2").join("release"))
}
