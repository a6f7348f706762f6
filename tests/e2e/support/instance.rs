//! A simulated SwarmPilot task instance: the real `weft task-instance` binary as a process.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::Duration;

/// A running `weft task-instance`, killed when dropped.
pub struct TaskInstance {
    child: Child,
    pub port: u16,
    /// The id the scheduler gave it, when it registered itself.
    pub ti_uuid: Option<String>,
}

impl TaskInstance {
    /// Starts an instance serving `model` on 127.0.0.1:`port` (0 for any) with
    /// `service_time`, reporting to `scheduler`; `register` is an admin token it registers
    /// itself with.
    pub fn start(
        model: &str,
        port: u16,
        service_time: &str,
        scheduler: &str,
        register: Option<&str>,
    ) -> Self {
        let listen = format!("127.0.0.1:{port}");
        Self::start_with(model, &listen, service_time, scheduler, register, &[])
    }

    /// [`TaskInstance::start`] on `listen` (`IP:PORT`) with more `weft task-instance`
    /// arguments.
    pub fn start_with(
        model: &str,
        listen: &str,
        service_time: &str,
        scheduler: &str,
        register: Option<&str>,
        extra: &[&str],
    ) -> Self {
        let mut command = super::weft();
        command
            .args([
                "task-instance",
                "--model",
                model,
                "--service-time",
                service_time,
            ])
            .args(["--listen", listen, "--scheduler", scheduler])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if let Some(token) = register {
            command.args(["--register", "--token", token]);
        }
        let mut child = command.spawn().expect("spawn weft task-instance");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let first = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the task instance printed its address");
        let port = first
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in '{first}'"));
        let ti_uuid = register.map(|_| {
            let line = rx
                .recv_timeout(Duration::from_secs(30))
                .expect("the task instance registered");
            line.strip_prefix("registered as ")
                .unwrap_or_else(|| panic!("unexpected line '{line}'"))
                .to_string()
        });
        Self {
            child,
            port,
            ti_uuid,
        }
    }

    /// Kills it with SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for TaskInstance {
    fn drop(&mut self) {
        self.kill();
    }
}
