//! The registry: every metric Weft serves, registered once, and the names a query may use.

use super::host::HostMeters;
use super::http::HttpMeters;
use super::sessions::SessionMeters;
use super::workload::WorkloadMeters;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Metric, Registry};
use std::sync::Arc;

/// The prefix of every metric's name.
const PREFIX: &str = "weft";

/// The server's metric registry and the meter groups the domains record into.
pub struct Metrics {
    registry: Registry,
    /// The series names the registered metrics produce (`weft_x_total`, `weft_y_bucket`, ...):
    /// what a dashboard may query, known even before a metric has its first value.
    #[cfg_attr(
        not(test),
        expect(dead_code, reason = "the dashboard's test reads it")
    )]
    series: Vec<String>,
    pub(crate) http: HttpMeters,
    pub(crate) sessions: SessionMeters,
    pub(crate) workload: WorkloadMeters,
    pub(crate) host: HostMeters,
}

/// Registers metrics and notes the series names each produces.
pub(crate) struct Names<'a> {
    registry: &'a mut Registry,
    series: &'a mut Vec<String>,
}

impl Names<'_> {
    pub(crate) fn register(&mut self, name: &str, help: &str, metric: impl Metric) {
        let full = format!("{PREFIX}_{name}");
        match metric.metric_type() {
            MetricType::Counter => self.series.push(format!("{full}_total")),
            MetricType::Histogram => {
                for suffix in ["bucket", "sum", "count"] {
                    self.series.push(format!("{full}_{suffix}"));
                }
            }
            _ => self.series.push(full),
        }
        self.registry.register(name, help, metric);
    }
}

impl Metrics {
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::with_prefix(PREFIX);
        let mut series = Vec::new();
        let mut names = Names {
            registry: &mut registry,
            series: &mut series,
        };
        let http = HttpMeters::register(&mut names);
        let sessions = SessionMeters::register(&mut names);
        let workload = WorkloadMeters::register(&mut names);
        let host = HostMeters::register(&mut names);
        Arc::new(Self {
            registry,
            series,
            http,
            sessions,
            workload,
            host,
        })
    }

    /// The series names the registered metrics produce.
    #[cfg(test)]
    pub(crate) fn series(&self) -> &[String] {
        &self.series
    }

    /// The registry in Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            tracing::error!("cannot encode metrics");
        }
        out
    }
}
