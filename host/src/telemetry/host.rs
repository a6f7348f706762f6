//! The container host: Weft's containers by purpose, and what admission may hand out against
//! what it handed out.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use std::sync::atomic::AtomicU64;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Purpose {
    purpose: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Resource {
    resource: &'static str,
}

/// One resource of the host in the units the metrics use: cpu in cores, memory in bytes, gpu
/// in devices.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Resources {
    pub cpu_cores: f64,
    pub memory_bytes: f64,
    pub gpus: f64,
}

/// The host's meters.
pub(crate) struct HostMeters {
    containers: Family<Purpose, Gauge>,
    capacity: Family<Resource, Gauge<f64, AtomicU64>>,
    allocated: Family<Resource, Gauge<f64, AtomicU64>>,
}

impl HostMeters {
    pub(super) fn register(names: &mut super::registry::Names<'_>) -> Self {
        let meters = Self {
            containers: Family::default(),
            capacity: Family::default(),
            allocated: Family::default(),
        };
        names.register(
            "containers",
            "Weft's containers holding resources (created or running), by purpose",
            meters.containers.clone(),
        );
        names.register(
            "host_capacity",
            "What admission may hand out on the container host (cpu in cores, memory in bytes, gpu in devices)",
            meters.capacity.clone(),
        );
        names.register(
            "host_allocated",
            "What Weft's containers hold of the host's capacity (cpu in cores, memory in bytes, gpu in devices)",
            meters.allocated.clone(),
        );
        meters
    }

    /// Containers holding resources now, for every purpose (zeros included).
    pub(crate) fn set_containers(&self, counts: &[(&'static str, i64)]) {
        for &(purpose, n) in counts {
            self.containers.get_or_create(&Purpose { purpose }).set(n);
        }
    }

    /// The host's capacity (absent while the engine does not answer) and what is allocated.
    pub(crate) fn set_resources(&self, capacity: Option<Resources>, allocated: Resources) {
        let set = |family: &Family<Resource, Gauge<f64, AtomicU64>>, r: Resources| {
            for (resource, value) in [
                ("cpu", r.cpu_cores),
                ("memory", r.memory_bytes),
                ("gpu", r.gpus),
            ] {
                family.get_or_create(&Resource { resource }).set(value);
            }
        };
        match capacity {
            Some(capacity) => set(&self.capacity, capacity),
            None => self.capacity.clear(),
        }
        set(&self.allocated, allocated);
    }
}
