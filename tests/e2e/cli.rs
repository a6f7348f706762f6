//! The real `weft` binary: version, help, bootstrap, serve and graceful shutdown.

use crate::on_both_backends;
use crate::support::{Backend, WeftProcess, bootstrap, weft};
use std::time::Duration;

on_both_backends!(bootstrap_then_serve_then_stop_on_sigterm);

#[test]
fn version_and_help() {
    let out = weft().arg("--version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("weft {}", env!("CARGO_PKG_VERSION"))
    );

    for args in [
        &["--help"][..],
        &["serve", "--help"],
        &["admin", "--help"],
        &["admin", "bootstrap", "--help"],
    ] {
        let out = weft().args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(help.contains("Usage: weft"), "{args:?}: {help}");
        assert!(
            help.contains("--config"),
            "{args:?} lacks the global --config: {help}"
        );
    }
    let serve = weft().args(["serve", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&serve.stdout);
    for flag in [
        "--listen",
        "--data-dir",
        "--database-url",
        "--log-format",
        "WEFT_",
    ] {
        assert!(help.contains(flag), "serve --help lacks {flag}: {help}");
    }
}

#[test]
fn bad_configuration_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = weft()
        .current_dir(dir.path())
        .args(["serve", "--config", "missing.toml"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("missing.toml") && err.contains("does not exist"),
        "{err}"
    );

    std::fs::write(
        dir.path().join("weft.toml"),
        "listen = \"not an address\"\n",
    )
    .unwrap();
    let out = weft()
        .current_dir(dir.path())
        .arg("serve")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("listen"), "{err}");
}

async fn bootstrap_then_serve_then_stop_on_sigterm(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let db = backend.fresh_database(dir.path()).await;
    let common = [
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--database-url",
        &db,
    ];

    let token = bootstrap(&["--name", "root"], &common);
    assert!(token.starts_with("weft_"), "{token}");

    // A second bootstrap is refused: the first admin already exists.
    let out = weft()
        .args(["admin", "bootstrap"])
        .args(common)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already has an admin"));
    assert!(out.stdout.is_empty(), "no token may be printed on refusal");

    // The configuration also comes from the environment; flags would win over it.
    let mut server = WeftProcess::serve_args(&common);
    let base = server.base_url();
    let client = reqwest::Client::new();
    let me: serde_json::Value = client
        .get(format!("{base}/api/v1/users/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["name"], "root");
    assert_eq!(me["role"], "admin");
    let docs = client.get(format!("{base}/docs/")).send().await.unwrap();
    assert!(docs.status().is_success());

    let status = server.terminate(Duration::from_secs(15));
    assert!(status.success(), "weft exited with {status}");
    assert!(server.stderr_contains("SIGTERM received"));
    assert!(server.stderr_contains("weft stopped"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_commands_manage_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let common = ["--data-dir", data.to_str().unwrap()];
    let token = bootstrap(&[], &common);
    let server = WeftProcess::serve_args(&common);
    let cli = |args: &[&str]| {
        weft()
            .env("WEFT_URL", server.base_url())
            .env("WEFT_TOKEN", &token)
            .args(["plugin"])
            .args(args)
            .output()
            .unwrap()
    };

    let out = cli(&["list"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("fibo ") && l.contains("node")),
        "{table}"
    );

    let file = dir.path().join("echo_node.wasm");
    std::fs::write(&file, crate::support::fixtures::fixture("echo-node")).unwrap();
    let out = cli(&["add", file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("added echo-node@1.0.0"));

    let out = cli(&["show", "echo-node"]);
    let detail: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(detail["latest"], "1.0.0");

    let out = cli(&["rm", "fibo"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("60203") && err.contains("built in"), "{err}");

    let out = cli(&["rm", "echo-node"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("removed echo-node@1.0.0"));

    let out = weft()
        .env("WEFT_URL", server.base_url())
        .env_remove("WEFT_TOKEN")
        .args(["plugin", "list"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--token"));
}
