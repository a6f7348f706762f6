//! What the host can give, what Weft's containers hold, and whether one more fits.

use super::driver::Limits;
use super::quantity::{format_cpu, format_memory};
use super::records::Container;
use crate::error::{Code, Error, Result};
use serde::Serialize;
use utoipa::ToSchema;

/// Resources held by a set of containers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Containers that exist, in any status.
    pub containers: u32,
    pub cpu_millis: u64,
    pub memory_bytes: u64,
    pub gpus: u32,
}

impl Usage {
    /// What `containers` hold: created and running ones hold their limits.
    pub fn of<'a>(containers: impl IntoIterator<Item = &'a Container>) -> Self {
        let mut usage = Usage::default();
        for c in containers {
            usage.containers += 1;
            if c.status.holds_resources() {
                usage.cpu_millis += c.limits.cpu_millis;
                usage.memory_bytes += c.limits.memory_bytes;
                usage.gpus += c.limits.gpus;
            }
        }
        usage
    }
}

/// What one user may hold.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Quota {
    pub max_containers: u32,
    pub max_cpu_millis: u64,
    pub max_memory_bytes: u64,
}

impl Quota {
    /// No limit but the host's.
    pub(crate) fn unlimited() -> Self {
        Self {
            max_containers: u32::MAX - 1,
            max_cpu_millis: u64::MAX,
            max_memory_bytes: u64::MAX,
        }
    }
}

/// What Weft may hand out on this host.
#[derive(Debug, Clone, Copy, Default)]
pub struct Capacity {
    pub cpu_millis: u64,
    pub memory_bytes: u64,
    pub gpus: u32,
}

/// One resource: capacity, allocated, free.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ResourceLine {
    /// `millicores`, `bytes` or `devices`.
    pub unit: &'static str,
    pub capacity: u64,
    pub allocated: u64,
    pub free: u64,
    /// The same three as quantities (`"2"`, `"4Gi"`), for people.
    pub capacity_quantity: String,
    pub allocated_quantity: String,
    pub free_quantity: String,
}

fn line(
    unit: &'static str,
    capacity: u64,
    allocated: u64,
    format: fn(u64) -> String,
) -> ResourceLine {
    let free = capacity.saturating_sub(allocated);
    ResourceLine {
        unit,
        capacity,
        allocated,
        free,
        capacity_quantity: format(capacity),
        allocated_quantity: format(allocated),
        free_quantity: format(free),
    }
}

/// Capacity, allocation and what is free, per resource.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ResourceTable {
    pub cpu: ResourceLine,
    pub memory: ResourceLine,
    pub gpu: ResourceLine,
}

impl ResourceTable {
    pub fn new(capacity: Capacity, allocated: Usage) -> Self {
        Self {
            cpu: line(
                "millicores",
                capacity.cpu_millis,
                allocated.cpu_millis,
                format_cpu,
            ),
            memory: line(
                "bytes",
                capacity.memory_bytes,
                allocated.memory_bytes,
                format_memory,
            ),
            gpu: line(
                "devices",
                u64::from(capacity.gpus),
                u64::from(allocated.gpus),
                |n| n.to_string(),
            ),
        }
    }
}

fn refusal(
    code: Code,
    resource: &str,
    required: String,
    available: String,
    message: String,
    hint: &str,
) -> Error {
    Error::new(code, message)
        .details(serde_json::json!({
            "resource_type": resource,
            "required": required,
            "available": available,
        }))
        .hint(hint)
}

/// Whether `request` fits the user's quota (given what they hold) and the host (given what
/// every container holds); the refusal names the resource, what was required and what is left.
pub(crate) fn admit(
    request: Limits,
    user: Usage,
    quota: Quota,
    host: Usage,
    capacity: Capacity,
) -> Result<()> {
    if user.containers + 1 > quota.max_containers {
        return Err(refusal(
            Code::ContainerQuota,
            "containers",
            "1".into(),
            quota
                .max_containers
                .saturating_sub(user.containers)
                .to_string(),
            format!(
                "you already have {} of your {} containers",
                user.containers, quota.max_containers
            ),
            "delete a container you no longer need",
        ));
    }
    let checks = [
        (
            "cpu",
            request.cpu_millis,
            quota.max_cpu_millis,
            user.cpu_millis,
            capacity.cpu_millis,
            host.cpu_millis,
            format_cpu as fn(u64) -> String,
        ),
        (
            "memory",
            request.memory_bytes,
            quota.max_memory_bytes,
            user.memory_bytes,
            capacity.memory_bytes,
            host.memory_bytes,
            format_memory,
        ),
    ];
    for (resource, wanted, limit, held, cap, allocated, format) in checks {
        let left = limit.saturating_sub(held);
        if wanted > left {
            return Err(refusal(
                Code::ContainerQuota,
                resource,
                format(wanted),
                format(left),
                format!(
                    "{resource} {} is over your limit: {} of {} left",
                    format(wanted),
                    format(left),
                    format(limit)
                ),
                "stop a running container or ask for less",
            ));
        }
        let free = cap.saturating_sub(allocated);
        if wanted > free {
            return Err(refusal(
                Code::ContainerNoResources,
                resource,
                format(wanted),
                format(free),
                format!(
                    "not enough {resource} on this host: {} required, {} available",
                    format(wanted),
                    format(free)
                ),
                "ask for less, or retry once other containers have stopped",
            ));
        }
    }
    if request.gpus > 0 {
        let free = capacity.gpus.saturating_sub(host.gpus);
        if capacity.gpus == 0 {
            return Err(refusal(
                Code::ContainerNoResources,
                "gpu",
                request.gpus.to_string(),
                "0".into(),
                "this host has no GPUs for containers".into(),
                "ask for \"gpu\": \"0\"; an admin declares a host's GPUs with [containers] gpus",
            ));
        }
        if request.gpus > free {
            return Err(refusal(
                Code::ContainerNoResources,
                "gpu",
                request.gpus.to_string(),
                free.to_string(),
                format!(
                    "not enough GPUs: {} required, {free} available",
                    request.gpus
                ),
                "retry once other containers have stopped",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUOTA: Quota = Quota {
        max_containers: 3,
        max_cpu_millis: 4000,
        max_memory_bytes: 8 << 30,
    };
    const HOST: Capacity = Capacity {
        cpu_millis: 8000,
        memory_bytes: 16 << 30,
        gpus: 0,
    };

    fn ask(cpu: u64, memory: u64, gpus: u32) -> Limits {
        Limits {
            cpu_millis: cpu,
            memory_bytes: memory,
            gpus,
        }
    }

    fn details(e: &Error) -> (Code, String, String, String) {
        let d = e.details.clone().unwrap();
        let s = |k: &str| d[k].as_str().unwrap().to_string();
        (e.code, s("resource_type"), s("required"), s("available"))
    }

    #[test]
    fn fits_within_quota_and_host() {
        assert!(
            admit(
                ask(2000, 4 << 30, 0),
                Usage::default(),
                QUOTA,
                Usage::default(),
                HOST
            )
            .is_ok()
        );
    }

    #[test]
    fn host_shortage_names_the_resource() {
        let host_busy = Usage {
            containers: 5,
            cpu_millis: 7000,
            memory_bytes: 1 << 30,
            gpus: 0,
        };
        let e = admit(
            ask(2000, 1 << 30, 0),
            Usage::default(),
            QUOTA,
            host_busy,
            HOST,
        )
        .unwrap_err();
        assert_eq!(
            details(&e),
            (
                Code::ContainerNoResources,
                "cpu".into(),
                "2".into(),
                "1".into()
            )
        );
    }

    #[test]
    fn user_limits_come_before_the_host() {
        let mine = Usage {
            containers: 1,
            cpu_millis: 1000,
            memory_bytes: 7 << 30,
            gpus: 0,
        };
        let e = admit(ask(1000, 2 << 30, 0), mine, QUOTA, mine, HOST).unwrap_err();
        assert_eq!(
            details(&e),
            (
                Code::ContainerQuota,
                "memory".into(),
                "2Gi".into(),
                "1Gi".into()
            )
        );
        let full = Usage {
            containers: 3,
            ..Usage::default()
        };
        let e = admit(ask(1000, 1 << 30, 0), full, QUOTA, full, HOST).unwrap_err();
        assert_eq!(details(&e).1, "containers");
    }

    #[test]
    fn gpus_are_refused_where_there_are_none() {
        let e = admit(
            ask(1000, 1 << 30, 1),
            Usage::default(),
            QUOTA,
            Usage::default(),
            HOST,
        )
        .unwrap_err();
        assert_eq!(
            details(&e),
            (
                Code::ContainerNoResources,
                "gpu".into(),
                "1".into(),
                "0".into()
            )
        );
        let two = Capacity { gpus: 2, ..HOST };
        assert!(
            admit(
                ask(1000, 1 << 30, 2),
                Usage::default(),
                QUOTA,
                Usage::default(),
                two
            )
            .is_ok()
        );
    }
}
