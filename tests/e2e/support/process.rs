//! The built `weft` binary as a child process, with its log captured.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A `weft` command for the binary cargo built for these tests.
pub fn weft() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_weft"));
    command
        .env_remove("RUST_LOG")
        .env_remove("WEFT_CONFIG")
        // Tests run side by side: no fixed port for the sessions listener.
        .env("WEFT_WORKSPACES__SESSIONS_LISTEN", "127.0.0.1:0");
    command
}

/// Runs `command` to completion, asserts it succeeded (showing its stderr) and returns its
/// standard output.
#[track_caller]
pub fn succeed(command: &mut Command) -> String {
    let out = command.output().expect("run weft");
    assert!(
        out.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// Runs `weft admin bootstrap ARGS COMMON` and returns the printed token.
pub fn bootstrap(args: &[&str], common: &[&str]) -> String {
    succeed(weft().args(["admin", "bootstrap"]).args(args).args(common))
        .trim()
        .to_string()
}

/// A running `weft serve`, killed if the test ends without stopping it.
pub struct WeftProcess {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
    addr: String,
}

impl WeftProcess {
    /// Spawns `command` (a `weft serve`) and waits until it logs its listening address.
    pub fn serve(command: &mut Command) -> Self {
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn weft");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().expect("stderr");
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addr) = line.split("weft listening on http://").nth(1) {
                    let addr: String = addr.chars().take_while(|c| !c.is_whitespace()).collect();
                    let _ = tx.send(addr);
                }
                sink.lock().unwrap().push(line);
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(180)) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "weft did not start; log:\n{}",
                    log.lock().unwrap().join("\n")
                );
            }
        };
        Self { child, log, addr }
    }

    /// `weft serve COMMON` on an ephemeral port (set through the environment), sharing the
    /// tests' compiled-component cache.
    pub fn serve_args(common: &[&str]) -> Self {
        Self::serve_with(common, &[])
    }

    /// [`Self::serve_args`] with extra environment variables.
    pub fn serve_with(common: &[&str], env: &[(&str, &str)]) -> Self {
        Self::serve(
            weft()
                .env("WEFT_LISTEN", "127.0.0.1:0")
                .env(
                    "WEFT_PLUGINS__CACHE_DIR",
                    super::fixtures::shared_cache_dir(),
                )
                .envs(env.iter().copied())
                .args(["serve"])
                .args(common),
        )
    }

    /// The process id (to read its memory use from `/proc`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `http://ADDR` of the running server.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Sends SIGTERM and waits up to `within` for the exit status.
    pub fn terminate(&mut self, within: Duration) -> ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(sent.success());
        self.wait_exit(within)
    }

    /// Waits up to `within` for the process to end by itself and returns its exit status.
    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                // Let the reader thread drain the last lines.
                std::thread::sleep(Duration::from_millis(50));
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "weft did not stop within {within:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the process with SIGKILL, as a crash or an OOM killer would, and reaps it.
    pub fn kill(&mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap");
    }

    /// Whether any captured log line contains `needle`.
    pub fn stderr_contains(&self, needle: &str) -> bool {
        self.log.lock().unwrap().iter().any(|l| l.contains(needle))
    }
}

impl Drop for WeftProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
