//! Builds the web app in `ui/` and embeds it, so `cargo run` alone yields a `weft` that serves
//! the app at start (the built-in plugins are built by the `weft-builtins` crate).

#[path = "build/ui.rs"]
mod ui;

use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("manifest dir"));
    let root = manifest.parent().expect("workspace root").to_path_buf();
    ui::build(&root);
}
