//! Shared test harness: servers on both database backends, an HTTP client, assertions on the
//! JSON error shape.

mod backend;
pub mod docker;
pub mod dvc;
pub mod examples;
pub mod fixtures;
pub mod git;
mod instance;
pub mod loopback;
mod process;
pub mod s3;
mod server;
mod site;
pub mod wait;

pub use backend::Backend;
pub use instance::TaskInstance;
pub use process::{WeftProcess, bootstrap, succeed, weft};
pub use server::{
    TestServer, call, execute_until_running, expect_status, millis, node, send, wait_for_run,
    wait_for_session,
};
pub use site::Site;

use serde_json::Value;

/// Asserts `body` is Weft's error shape with `code`, and returns it for further checks.
#[track_caller]
pub fn assert_error(status: reqwest::StatusCode, body: &Value, want_status: u16, code: &str) {
    assert_eq!(status.as_u16(), want_status, "status of {body}");
    assert_eq!(body["code"], code, "code of {body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "message of {body}"
    );
    let keys: Vec<&str> = body
        .as_object()
        .expect("error body is an object")
        .keys()
        .map(String::as_str)
        .collect();
    for key in &keys {
        assert!(
            ["code", "message", "details", "hint"].contains(key),
            "unexpected key {key} in {body}"
        );
    }
}

/// Generates, for each listed `async fn name(backend: Backend)`, one test per database backend:
/// `name::sqlite` and `name::postgres`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::support::Backend::Sqlite).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name($crate::support::Backend::Postgres).await;
                }
            }
        )+
    };
}
