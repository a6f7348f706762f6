//! What Weft tells its operator: structured logs ([`logs`]) and the Prometheus metrics
//! ([`Metrics`]) served at `/metrics`.
//!
//! This module owns the metric registry. Domains record through small typed methods of the
//! meter groups ([`http`], [`sessions`], [`workload`], [`host`]) and never touch prometheus
//! types or pick label names themselves; every label takes its values from a bounded set (kinds,
//! statuses, admin-registered model names capped in number), never an id. Nothing here names
//! a domain: labels arrive as the domains' own words.

pub(crate) mod host;
pub(crate) mod http;
mod logs;
mod registry;
pub(crate) mod sessions;
pub(crate) mod workload;

pub(crate) use logs::init;
pub(crate) use registry::Metrics;
