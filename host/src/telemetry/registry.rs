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
    #[cfg_attr(not(test), expect(dead_code, reason = "the dashboard's test reads it"))]
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every query string in a Grafana dashboard (`expr` of each panel's targets).
    fn queries(value: &serde_json::Value, out: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, v) in map {
                    match (key.as_str(), v) {
                        ("expr", serde_json::Value::String(expr)) => out.push(expr.clone()),
                        _ => queries(v, out),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| queries(v, out)),
            _ => {}
        }
    }

    #[test]
    fn the_dashboard_queries_only_metrics_the_host_registers() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/grafana/weft.json");
        let text = std::fs::read_to_string(path).expect("the dashboard");
        let dashboard: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        let mut exprs = Vec::new();
        queries(&dashboard, &mut exprs);
        assert!(exprs.len() >= 10, "{exprs:?}");
        let metrics = Metrics::new();
        let registered = metrics.series();
        let mut queried = 0;
        for expr in &exprs {
            for at in expr.match_indices("weft_").map(|(i, _)| i) {
                let name: String = expr[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                assert!(
                    registered.contains(&name),
                    "the dashboard queries {name}, which the host does not register ({expr})"
                );
                queried += 1;
            }
        }
        assert!(queried >= exprs.len());
    }

    #[test]
    fn series_names_follow_the_metric_types() {
        let metrics = Metrics::new();
        let series = metrics.series();
        for name in [
            "weft_sessions",
            "weft_session_open_seconds_bucket",
            "weft_proxy_bytes_total",
            "weft_workflow_runs_total",
            "weft_quota_minutes_used_total",
        ] {
            assert!(series.iter().any(|s| s == name), "{name} in {series:?}");
        }
    }
}
