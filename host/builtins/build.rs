//! Builds the built-in plugins in `plugins/` to wasm32-wasip2 components for `lib.rs` to embed.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("manifest dir"));
    let root = manifest
        .ancestors()
        .nth(2)
        .expect("workspace root")
        .to_path_buf();
    for watched in ["plugins", "sdk", "wit"] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    let plugins = plugin_crates(&root.join("plugins"));
    let target_dir = root.join("target").join("plugins");
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command
        .current_dir(&root)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--target-dir",
        ])
        .arg(&target_dir);
    for name in &plugins {
        command.args(["-p", name]);
    }
    // Line tables make the components ~15x larger; the embedded ones need none.
    command
        .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
        .env("CARGO_PROFILE_RELEASE_STRIP", "debuginfo");
    // The outer build's settings (clippy's wrapper, host flags) must not leak into the guests.
    for var in [
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTC_WRAPPER",
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "CARGO_MAKEFLAGS",
        "MAKEFLAGS",
        "MFLAGS",
    ] {
        command.env_remove(var);
    }
    let status = command
        .status()
        .expect("run cargo for the built-in plugins");
    assert!(
        status.success(),
        "building the built-in plugins failed; is the target installed? run `rustup target add wasm32-wasip2`"
    );

    let out = target_dir.join("wasm32-wasip2").join("release");
    let mut code = String::from(
        "/// The built-in plugins: (crate name, component bytes).\npub const BUILTIN: &[(&str, &[u8])] = &[\n",
    );
    for name in &plugins {
        let file = out.join(format!("{}.wasm", name.replace('-', "_")));
        assert!(file.is_file(), "{} was not built", file.display());
        code.push_str(&format!(
            "    ({name:?}, include_bytes!({:?})),\n",
            file.display().to_string()
        ));
    }
    code.push_str("];\n");
    let dest = PathBuf::from(std::env::var("OUT_DIR").expect("out dir")).join("builtin_plugins.rs");
    std::fs::write(dest, code).expect("write builtin_plugins.rs");
}

/// Package names of the cdylib crates under `plugins/` (libraries shared by plugins are skipped).
fn plugin_crates(dir: &Path) -> Vec<String> {
    let mut names = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return names;
    };
    for entry in entries.flatten() {
        let Ok(manifest) = std::fs::read_to_string(entry.path().join("Cargo.toml")) else {
            continue;
        };
        if !manifest.contains("cdylib") {
            continue;
        }
        let name = manifest
            .lines()
            .find_map(|l| l.trim().strip_prefix("name = "))
            .map(|n| n.trim_matches('"').to_string());
        if let Some(name) = name {
            names.push(name);
        }
    }
    names.sort();
    names
}
