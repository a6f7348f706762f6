//! Builds the web app in `ui/` (`npm ci` when its lock file changed, then `tsc` and `vite
//! build`) into `OUT_DIR/ui`, and writes `ui_assets.rs`: every built file with its bytes and,
//! for text, a gzipped copy, for `host/src/ui.rs` to serve.
//!
//! Not for: serving; the app's dependencies are npm's (pinned by `ui/package-lock.json`).

use flate2::Compression;
use flate2::write::GzEncoder;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The oldest Node.js that Vite 8 runs on.
const MIN_NODE: (u32, u32) = (20, 19);

/// What `ui/` holds that the build reads (node_modules and outputs are not watched). Each must
/// exist: cargo reruns a build script that watches a missing path on every build, and this one
/// would rebuild the app and relink every binary each time (`ui/vite.config.ts` therefore turns
/// Vite's `public/` folder off).
const SOURCES: &[&str] = &[
    "src",
    "index.html",
    "package.json",
    "package-lock.json",
    "tsconfig.json",
    "vite.config.ts",
];

pub(crate) fn build(root: &Path) {
    let ui = root.join("ui");
    for source in SOURCES {
        println!("cargo:rerun-if-changed={}", ui.join(source).display());
    }
    require_node();
    install(&ui);
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("out dir")).join("ui");
    run(
        Command::new("npm")
            .current_dir(&ui)
            .args([
                "run",
                "--silent",
                "build",
                "--",
                "--logLevel",
                "warn",
                "--outDir",
            ])
            .arg(&out),
        "building the web app (npm run build in ui/: tsc and vite)",
    );
    embed(&out);
}

/// Fails the build with what to install when node or npm is missing or too old.
fn require_node() {
    let version = Command::new("node").arg("--version").output();
    let Ok(version) = version.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()) else {
        panic!(
            "building Weft's web app (ui/) needs Node.js {}.{}+ and npm, and `node` was not found \
             on PATH: install them (Debian: `apt-get install nodejs npm`; or from nodejs.org)",
            MIN_NODE.0, MIN_NODE.1
        );
    };
    let mut parts = version.trim_start_matches('v').split('.');
    let major: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let minor: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    assert!(
        (major, minor) >= MIN_NODE,
        "building Weft's web app (ui/) needs Node.js {}.{}+; `node --version` says {version}",
        MIN_NODE.0,
        MIN_NODE.1
    );
    assert!(
        Command::new("npm").arg("--version").output().is_ok(),
        "building Weft's web app (ui/) needs npm, and `npm` was not found on PATH: install it \
         (Debian: `apt-get install npm`)"
    );
}

/// `npm ci` unless node_modules was installed from this very lock file (a stamp records it):
/// a clean install takes seconds and needs the registry, so it runs only when the lock changed.
fn install(ui: &Path) {
    let lock = std::fs::read(ui.join("package-lock.json")).expect("read ui/package-lock.json");
    let stamp = ui.join("node_modules").join(".weft-installed-lock");
    if std::fs::read(&stamp).is_ok_and(|installed| installed == lock) {
        return;
    }
    run(
        Command::new("npm").current_dir(ui).args([
            "ci",
            "--no-audit",
            "--no-fund",
            "--loglevel",
            "error",
        ]),
        "installing the web app's packages (npm ci in ui/; it needs the npm registry)",
    );
    std::fs::write(&stamp, lock).expect("write the install stamp");
}

fn run(command: &mut Command, what: &str) {
    let status = command
        .status()
        .unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
    assert!(
        status.success(),
        "{what} failed ({status}); see its output above"
    );
}

/// Writes `ui_assets.rs`: `UI_ASSETS`, each built file's URL path, bytes and gzipped bytes.
fn embed(out: &Path) {
    let mut files = Vec::new();
    collect(out, out, &mut files);
    files.sort();
    let mut code = String::from(
        "/// The built web app: (URL path, bytes, gzipped bytes for text), sorted by path.\n\
         pub(crate) const UI_ASSETS: &[Asset] = &[\n",
    );
    for (url, file) in &files {
        let gzip = compressible(url).then(|| {
            let gz = file.with_extension(format!(
                "{}.gz",
                file.extension()
                    .and_then(|e| e.to_str())
                    .unwrap_or_default()
            ));
            let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
            encoder
                .write_all(&std::fs::read(file).expect("read a built file"))
                .expect("gzip");
            std::fs::write(&gz, encoder.finish().expect("gzip")).expect("write a gzipped file");
            gz
        });
        code.push_str(&format!(
            "    ({url:?}, include_bytes!({:?}), {}),\n",
            file.display().to_string(),
            match gzip {
                Some(gz) => format!("Some(include_bytes!({:?}))", gz.display().to_string()),
                None => "None".into(),
            }
        ));
    }
    code.push_str("];\n");
    let dest = out.parent().expect("OUT_DIR").join("ui_assets.rs");
    std::fs::write(dest, code).expect("write ui_assets.rs");
}

fn collect(base: &Path, dir: &Path, files: &mut Vec<(String, PathBuf)>) {
    for entry in std::fs::read_dir(dir)
        .expect("read the built app")
        .flatten()
    {
        let path = entry.path();
        if path.is_dir() {
            collect(base, &path, files);
        } else if path.extension().is_none_or(|e| e != "gz") {
            let rel = path.strip_prefix(base).expect("under the output");
            let url = format!("/{}", rel.to_string_lossy().replace('\\', "/"));
            files.push((url, path));
        }
    }
}

fn compressible(url: &str) -> bool {
    [".js", ".css", ".html", ".svg", ".json", ".map", ".txt"]
        .iter()
        .any(|ext| url.ends_with(ext))
}
