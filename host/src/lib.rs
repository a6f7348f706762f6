//! Weft's host: the `weft` binary's library.
//!
//! Data flows one way: HTTP -> [`app`] (the router every domain's routes are assembled into, and
//! [`state::AppState`]) -> a domain's routes and service (`auth`, [`registry`], [`workflow`],
//! [`scheduler`], [`container`], [`workspace`], [`notebook`], [`git`], `mlflow`, `dataset`, `lineage`) -> [`store`]. The domains use the
//! HTTP kit [`api`] and own their config sections, which [`config`] composes; no domain imports
//! `app`, `state` or `config`.
//!
//! Only what the binary, the benchmarks and the end-to-end tests name is public; the rest is
//! `pub(crate)` (`unreachable_pub` and `missing_docs` hold in CI).
//!
//! Folders are named in the singular, after the concern they own (`workflow`, `container`,
//! `workspace`, `registry`): a module is one concern, not a collection. The host's plugin
//! registry is `registry`, apart from the top-level `plugins/` folder of built-in guests.

pub mod api;
pub mod app;
mod auth;
pub mod cli;
pub mod config;
pub mod container;
mod crash;
mod dataset;
mod error;
pub mod git;
mod job;
#[cfg(test)]
mod layers;
mod lineage;
mod mlflow;
pub mod notebook;
pub mod registry;
pub mod scheduler;
mod server;
mod simulation;
pub mod state;
pub mod store;
mod telemetry;
mod ui;
pub mod workflow;
pub mod workspace;

/// mimalloc: under the scheduler's load (thousands of small requests a second on every
/// thread) glibc's allocator spent a seventh of the CPU time in malloc and free. jemalloc did
/// as well, but building it (a configure script, then make) took minutes of every fresh build.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
