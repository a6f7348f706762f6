//! End-to-end tests: a real `weft` (in-process router or the built binary) against real SQLite
//! and PostgreSQL databases. One test binary so the host links once; one module per area.
//!
//! PostgreSQL tests need `WEFT_TEST_POSTGRES_URL` (the test command `tests/run.sh` starts a
//! throwaway cluster and sets it). Container tests need a Docker engine and the images of
//! tests/images/build.sh (the test command provides both). Browser tests need Debian's
//! `chromium` and `npm ci` in tests/browser (the test command does both).

// A test binary has no public face: its support modules are `pub` to each other.
#![allow(unreachable_pub)]

mod support;

mod api_errors;
mod attempts;
mod auth;
mod bounded;
mod browser;
mod capabilities;
mod cli;
mod containers;
// Crash points exist in debug builds only.
#[cfg(debug_assertions)]
mod crashes;
mod datasets;
mod dvc;
mod git_api;
#[cfg(debug_assertions)]
mod git_crash;
mod git_http;
mod git_rules;
mod git_session;
mod image_build;
mod isolation;
mod jobs;
mod lineage;
mod metrics;
mod mlflow;
mod models;
mod notebooks;
mod plugins;
mod pool;
mod projects;
mod proxy_threads;
mod rerun;
mod restarts;
mod scheduler;
mod sessions;
mod sign_in;
mod swarmpilot;
mod system;
mod user_limits;
mod web_app;
mod workflow_layout;
mod workflow_rules;
mod workflow_values;
mod workflows;
