//! The built `weft` binary as a child process, with its log captured.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
    /// Disconnected once the log reader saw the end of the process's stderr.
    log_ended: Receiver<()>,
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
        let (end_of_log, log_ended) = std::sync::mpsc::channel::<()>();
        std::thread::spawn(move || {
            let _end_of_log = end_of_log;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addr) = line.split("weft listening on http://").nth(1) {
                    // Up to the end of the word, or of the JSON string in a JSON log.
                    let addr: String = addr
                        .chars()
                        .take_while(|c| !c.is_whitespace() && *c != '"')
                        .collect();
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
        Self {
            child,
            log,
            log_ended,
            addr,
        }
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
    #[track_caller]
    pub fn terminate(&mut self, within: Duration) -> ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(sent.success());
        self.wait_exit(within)
    }

    /// Waits up to `within` for the process to end by itself and returns its exit status,
    /// once its log is complete.
    #[track_caller]
    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let child = &mut self.child;
        let status = super::wait::until_blocking("weft to exit", within, || {
            child.try_wait().expect("wait").ok_or("running")
        });
        // The log is complete once the reader reached the end of stderr.
        let ended = self.log_ended.recv_timeout(Duration::from_secs(10));
        assert!(
            matches!(ended, Err(RecvTimeoutError::Disconnected)),
            "weft's stderr stayed open after it exited"
        );
        status
    }

    /// Kills the process with SIGKILL, as a crash or an OOM killer would, and reaps it.
    pub fn kill(&mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap");
    }

    /// The `http://ADDR` a log line before the "listening" one gave after `prefix` (e.g.
    /// "scheduler listening on "), for a listener on port 0.
    #[track_caller]
    pub fn logged_url(&self, prefix: &str) -> String {
        let log = self.log.lock().unwrap();
        let at = log
            .iter()
            .find_map(|l| l.split(prefix).nth(1))
            .unwrap_or_else(|| panic!("no '{prefix}' in the log:\n{}", log.join("\n")));
        at.chars()
            .take_while(|c| !c.is_whitespace() && *c != '"')
            .collect()
    }

    /// The log lines captured so far.
    pub fn log_lines(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
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
