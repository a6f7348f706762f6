//! The settings every container Weft creates runs with, whatever its spec asks for.
//!
//! Not privileged; every capability dropped but a small configured set (by default what an
//! entrypoint needs to own its home folder and drop to an unprivileged user: CHOWN,
//! DAC_OVERRIDE, FOWNER, SETGID, SETUID); `no-new-privileges`; a pids limit; CPU and memory
//! limits always set, swap included in the memory limit; an init process as PID 1 so stops are
//! prompt; bounded logs; no host path and never the engine's socket mounted (only named
//! volumes); user namespaces when the engine remaps users (reported in `GET /resources`).

use super::driver::ContainerSpec;
use bollard::models::{DeviceRequest, HostConfig, HostConfigLogConfig, Mount, MountType};
use std::collections::HashMap;

/// The parts of hardening an admin may tune.
#[derive(Debug, Clone)]
pub struct Policy {
    pub capabilities: Vec<String>,
    pub pids_limit: i64,
}

/// The engine's host configuration for `spec` under `policy`.
pub fn host_config(spec: &ContainerSpec, policy: &Policy) -> HostConfig {
    let memory = i64::try_from(spec.limits.memory_bytes).unwrap_or(i64::MAX);
    let mounts = spec
        .volumes
        .iter()
        .map(|v| Mount {
            typ: Some(MountType::VOLUME),
            source: Some(v.volume.clone()),
            target: Some(v.target.clone()),
            read_only: Some(v.read_only),
            ..Default::default()
        })
        .collect();
    let device_requests = (spec.limits.gpus > 0).then(|| {
        vec![DeviceRequest {
            driver: Some("nvidia".into()),
            count: Some(i64::from(spec.limits.gpus)),
            capabilities: Some(vec![vec!["gpu".into()]]),
            ..Default::default()
        }]
    });
    HostConfig {
        privileged: Some(false),
        cap_drop: Some(vec!["ALL".into()]),
        cap_add: Some(policy.capabilities.clone()),
        security_opt: Some(vec!["no-new-privileges".into()]),
        pids_limit: Some(policy.pids_limit),
        memory: Some(memory),
        memory_swap: Some(memory),
        nano_cpus: Some(
            i64::try_from(spec.limits.cpu_millis.saturating_mul(1_000_000)).unwrap_or(i64::MAX),
        ),
        init: Some(true),
        mounts: Some(mounts),
        binds: Some(Vec::new()),
        device_requests,
        log_config: Some(HostConfigLogConfig {
            typ: Some("json-file".into()),
            config: Some(HashMap::from([
                ("max-size".into(), "10m".into()),
                ("max-file".into(), "3".into()),
            ])),
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::containers::driver::{Limits, VolumeMount};

    #[test]
    fn every_spec_gets_the_hardening() {
        let spec = ContainerSpec {
            volumes: vec![VolumeMount {
                volume: "weft-data-1".into(),
                target: "/home/weft".into(),
                read_only: false,
            }],
            limits: Limits {
                cpu_millis: 1500,
                memory_bytes: 1 << 30,
                gpus: 0,
            },
            ..Default::default()
        };
        let policy = Policy {
            capabilities: vec!["CHOWN".into()],
            pids_limit: 256,
        };
        let host = host_config(&spec, &policy);
        assert_eq!(host.privileged, Some(false));
        assert_eq!(host.cap_drop, Some(vec!["ALL".to_string()]));
        assert_eq!(host.cap_add, Some(vec!["CHOWN".to_string()]));
        assert_eq!(host.nano_cpus, Some(1_500_000_000));
        assert_eq!(host.memory, Some(1 << 30));
        assert_eq!(host.memory_swap, Some(1 << 30));
        assert_eq!(host.pids_limit, Some(256));
        assert_eq!(host.binds, Some(vec![]));
        assert!(host.device_requests.is_none());
        let mounts = host.mounts.unwrap();
        assert_eq!(mounts[0].typ, Some(MountType::VOLUME));
    }
}
