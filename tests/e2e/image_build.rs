//! `weft image build` itself, the real binary on the real engine: a tag already there is kept,
//! a tool missing from PATH is named, and a build that fails says why with the end of its log,
//! keeps the log and leaves neither its root folder nor an image; without a terminal each step
//! is a line of its own. (Whole builds of the workspace images run in the test command,
//! tests/images/workspaces.sh, from the same recipes.)

use crate::support::{docker, weft};
use std::path::{Path, PathBuf};
use std::process::Output;

/// A tag no image has.
fn fresh_tag() -> String {
    format!(
        "weft-test/image-build:{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// `weft image build jupyter --tag TAG --work-dir WORK` (the default tag without `tag`) with
/// `env`, run to its end.
fn build(tag: Option<&str>, work: &Path, env: &[(&str, &str)]) -> Output {
    let tag = tag.map(|tag| ["--tag", tag]);
    weft()
        .args(["image", "build", "jupyter"])
        .args(tag.iter().flatten())
        .arg("--work-dir")
        .arg(work)
        .envs(env.iter().copied())
        .output()
        .expect("run weft image build")
}

/// Standard output and error, as text.
fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Fails the test with what to do when it does not run as root (debootstrap and chroot need
/// it).
fn require_root() {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let effective = status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1));
    assert_eq!(
        effective,
        Some("0"),
        "image builds run as root (debootstrap, chroot): run the tests as root"
    );
}

/// A real build whose debootstrap fails: the Debian mirror (`WEFT_MIRROR`, read by the
/// recipes) is a closed port on the loopback. Its output, its temporary folder, the work
/// folder in it and the tag it was to build.
fn failed_build() -> (Output, tempfile::TempDir, PathBuf, String) {
    docker::require();
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    let tag = fresh_tag();
    let out = build(
        Some(&tag),
        &work,
        &[("WEFT_MIRROR", "http://127.0.0.1:1/debian")],
    );
    (out, dir, work, tag)
}

/// The default tag is the image sessions run, and one the engine already has is kept: the
/// command says so and succeeds, building nothing (not even its work folder is made), and the
/// image stays.
#[test]
fn a_tag_already_on_the_engine_is_kept_and_nothing_is_built() {
    docker::require();
    let image = weft::config::WorkspacesConfig::default().jupyter.image;
    assert!(
        docker::docker(&["image", "inspect", &image]).0,
        "{image} is missing: run tests/run.sh (it builds it)"
    );
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    let out = build(None, &work, &[]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        stdout,
        format!("{image} is already on this host's engine (--force to build it again)\n")
    );
    assert!(!work.exists(), "a work folder was made");
    let (kept, _, err) = docker::docker(&["image", "inspect", &image]);
    assert!(kept, "{err}");
}

/// With no debootstrap on PATH the build stops before it starts, naming the tool and how to
/// get it, and fails.
#[test]
fn a_build_without_debootstrap_on_path_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("bin");
    std::fs::create_dir(&empty).unwrap();
    let work = dir.path().join("work");
    let out = build(
        Some(&fresh_tag()),
        &work,
        &[("PATH", empty.to_str().unwrap())],
    );
    let (_, stderr) = text(&out);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("`debootstrap` is not on PATH")
            && stderr.contains("apt-get install debootstrap"),
        "{stderr}"
    );
    assert!(!work.join("build.log").exists(), "the build began");
}

/// A build that fails (at debootstrap) fails the command with the end of its log, which stays
/// in the work folder; its root folder is removed and no image has the tag.
#[test]
fn a_failed_build_reports_the_end_of_its_log_and_leaves_no_root_nor_image() {
    let (out, _dir, work, tag) = failed_build();
    let (_, stderr) = text(&out);
    assert!(!out.status.success(), "{stderr}");
    let log = work.join("build.log");
    let logged = std::fs::read_to_string(&log).expect("the build log is kept");
    assert!(
        logged.contains("Failed getting release file http://127.0.0.1:1/debian/"),
        "{logged}"
    );
    assert!(
        stderr.contains(&format!("building {tag} failed"))
            && stderr.contains(&format!("the last lines of {}", log.display())),
        "{stderr}"
    );
    let last = logged.lines().last().expect("a logged line");
    assert!(stderr.contains(last), "{last:?} is not in {stderr}");
    assert!(!work.join("root").exists(), "the root folder is left");
    assert!(
        !docker::docker(&["image", "inspect", &tag]).0,
        "an image {tag} exists"
    );
}

/// Without a terminal (no progress bar to draw) each step the build reaches is a line of its
/// own, numbered.
#[test]
fn a_build_without_a_terminal_prints_each_step_on_a_line() {
    let (out, _dir, _, _) = failed_build();
    let (_, stderr) = text(&out);
    assert!(
        stderr
            .lines()
            .any(|line| line == "[1/4] debootstrap Debian bookworm (minbase)"),
        "{stderr}"
    );
}
