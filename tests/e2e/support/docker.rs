//! The real Docker engine the container tests drive, through the `docker` CLI (a real client,
//! used to look at and change containers behind Weft's back).

use serde_json::Value;
use std::process::Command;

/// Fails the test with what to do when no engine answers.
pub fn require() {
    let answers = Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        answers,
        "no Docker engine answers: run the tests with tests/run.sh, which installs docker.io, starts \
         dockerd and builds the test images (tests/images/build.sh)"
    );
}

/// A test server on `backend` with a Docker engine required, and the cleanup of its
/// containers.
pub async fn server(
    backend: super::Backend,
    customize: impl FnOnce(&mut weft::config::Config),
) -> (super::TestServer, Cleanup) {
    require();
    let server = super::TestServer::start_with(backend, customize).await;
    let cleanup = Cleanup(server.state.containers.install_id().to_string());
    (server, cleanup)
}

/// Runs `docker ARGS`, returning (success, stdout, stderr).
pub fn docker(args: &[&str]) -> (bool, String, String) {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("run docker");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `docker inspect` of one container; `None` when the engine does not know it.
pub fn inspect(id: &str) -> Option<Value> {
    let (ok, out, _) = docker(&["inspect", id]);
    ok.then(|| serde_json::from_str::<Value>(&out).expect("inspect JSON")[0].clone())
}

/// Removes every container and network labelled with `weft.install=ID` when dropped, so a
/// failing test leaves nothing running.
pub struct Cleanup(pub String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let filter = format!("label=weft.install={}", self.0);
        for (list, remove) in [
            (vec!["ps", "-aq", "--filter", &filter], vec!["rm", "-f"]),
            (
                vec!["network", "ls", "-q", "--filter", &filter],
                vec!["network", "rm"],
            ),
        ] {
            let (_, ids, _) = docker(&list);
            let ids: Vec<&str> = ids.split_whitespace().collect();
            if !ids.is_empty() {
                docker(&[remove, ids].concat());
            }
        }
    }
}
