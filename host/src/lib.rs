//! Weft's host: the `weft` binary's library.
//!
//! Data flows one way: HTTP -> [`api`] -> a domain service ([`auth`], [`plugins`], [`workflow`], [`scheduler`], [`containers`], [`workspaces`], [`notebook`], ...) -> [`store`].

pub mod api;
pub mod auth;
pub mod cli;
pub mod config;
pub mod containers;
pub mod error;
pub mod notebook;
pub mod plugins;
pub mod scheduler;
pub mod server;
pub mod simulation;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod ui;
pub mod workflow;
pub mod workspaces;

/// jemalloc: under the scheduler's load (thousands of small requests a second on every
/// thread) glibc's allocator spent a seventh of the CPU time in malloc and free.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
