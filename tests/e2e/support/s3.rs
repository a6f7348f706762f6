//! An S3-compatible server for storage tests: moto's server (from PyPI; the test command
//! installs it and sets `WEFT_TEST_MOTO_SERVER`), on a free port, with one bucket. Moto is a
//! stand-in for S3 (an emulator of its API, not Amazon's service): what passes here is what
//! moto accepts.

use super::wait;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct S3Server {
    child: Child,
    pub endpoint: String,
    pub bucket: String,
}

impl S3Server {
    /// Makes `config` keep the project files in this bucket, under `root`.
    pub fn store_projects(&self, config: &mut weft::config::Config, root: &str) {
        config.workspaces.storage = weft::config::StorageKind::S3;
        config.workspaces.s3 = weft::config::S3Config {
            bucket: self.bucket.clone(),
            endpoint: self.endpoint.clone(),
            region: "us-east-1".into(),
            root: root.into(),
            access_key_id: "test".into(),
            secret_access_key: "test".into(),
        };
    }

    pub async fn start() -> Self {
        let program = std::env::var("WEFT_TEST_MOTO_SERVER").unwrap_or_else(|_| {
            panic!("WEFT_TEST_MOTO_SERVER is not set: run the tests with tests/run.sh, which installs moto's S3 server")
        });
        // Port 0: moto picks a free port and prints it, so no other process can take it
        // between a choice and the bind.
        let mut child = Command::new(program)
            .args(["-H", "127.0.0.1", "-p", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start moto_server");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        // Read to the end: a full pipe would stop moto at its next log line.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(at) = line.split("Running on http://").nth(1) {
                    let at: String = at
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || ".:".contains(*c))
                        .collect();
                    let _ = tx.send(at);
                }
            }
        });
        let address = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("moto_server printed its address");
        let endpoint = format!("http://{address}");
        let bucket = format!("weft-test-{}", uuid::Uuid::new_v4().simple());
        let client = reqwest::Client::new();
        wait::until(
            "moto_server to create the bucket",
            Duration::from_secs(30),
            || async {
                match client.put(format!("{endpoint}/{bucket}")).send().await {
                    Ok(r) if r.status().is_success() => Ok(()),
                    Ok(r) => Err(r.status().to_string()),
                    Err(e) => Err(e.to_string()),
                }
            },
        )
        .await;
        Self {
            child,
            endpoint,
            bucket,
        }
    }

    /// The keys stored in the bucket (from its listing).
    pub async fn keys(&self) -> Vec<String> {
        let listing = reqwest::get(format!("{}/{}?list-type=2", self.endpoint, self.bucket))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        listing
            .split("<Key>")
            .skip(1)
            .filter_map(|part| part.split("</Key>").next())
            .map(str::to_string)
            .collect()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
