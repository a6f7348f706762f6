//! The settings every container Weft creates runs with, whatever its spec asks for.
//!
//! Not privileged; every capability dropped but a small configured set (by default what an
//! entrypoint needs to own its home folder and drop to an unprivileged user: CHOWN,
//! DAC_OVERRIDE, FOWNER, SETGID, SETUID); `no-new-privileges`; a pids limit; CPU and memory
//! limits always set, swap included in the memory limit; an init process as PID 1 so stops are
//! prompt; bounded logs; no host path and never the engine's socket mounted (only named
//! volumes); user namespaces when the engine remaps users (reported in `GET /resources`);
//! `nofile` and `fsize` ulimits; the owner's network and, where the engine can enforce it, a
//! writable-layer size limit.
//!
//! Which images may run, and as whom, is `Images`: an allow-list, and nobody (`65534`) for
//! images that would run as root unless an admin listed them.

use super::driver::ContainerSpec;
use crate::error::{Code, Error, Result};
use bollard::models::{
    DeviceRequest, HostConfig, HostConfigLogConfig, Mount, MountType, ResourcesUlimits,
};
use std::collections::HashMap;

/// The parts of hardening an admin may tune.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Capabilities kept after dropping all (`[containers] capabilities`).
    pub capabilities: Vec<String>,
    /// Most processes in one container.
    pub pids_limit: i64,
    /// Open files per process.
    pub nofile: u64,
    /// Largest file a process may write, in bytes; 0 for no limit.
    pub max_file_bytes: u64,
}

/// The user an image that would run as root runs as instead: nobody.
pub(crate) const NOBODY: &str = "65534:65534";

/// Which images may run, and which may run as root.
#[derive(Debug, Clone, Default)]
pub(crate) struct Images {
    /// Patterns (`*` matches anything) of images users may run, the workspace images included.
    pub(crate) allowed: Vec<String>,
    /// Patterns of images that keep a root user.
    pub(crate) root: Vec<String>,
}

impl Images {
    /// Refuses `image` unless a pattern allows it.
    pub(crate) fn check(&self, image: &str) -> Result<()> {
        if self.allowed.iter().any(|p| matches(p, image)) {
            return Ok(());
        }
        Err(Error::new(
            Code::ContainerImageNotAllowed,
            format!("the image '{image}' is not on this installation's list of allowed images"),
        )
        .details(serde_json::json!({ "image": image }))
        .hint(
            "ask an admin to add it (or a pattern such as 'team/*') to [containers] allowed_images",
        ))
    }

    /// The user to run `image` as, given the user its image names (`None`: keep that one).
    pub(crate) fn user(&self, image: &str, image_user: &str) -> Option<String> {
        let root = matches!(image_user.split(':').next(), Some("" | "root" | "0"));
        (root && !self.root.iter().any(|p| matches(p, image))).then(|| NOBODY.to_string())
    }
}

/// Whether `text` matches `pattern`, where `*` stands for any run of characters.
fn matches(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        // No `*`: the whole text must be the pattern.
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// The engine's host configuration for `spec` under `policy`.
pub(crate) fn host_config(spec: &ContainerSpec, policy: &Policy) -> HostConfig {
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
    let ulimit = |name: &str, limit: u64| ResourcesUlimits {
        name: Some(name.into()),
        soft: Some(i64::try_from(limit).unwrap_or(i64::MAX)),
        hard: Some(i64::try_from(limit).unwrap_or(i64::MAX)),
    };
    let mut ulimits = vec![ulimit("nofile", policy.nofile)];
    if policy.max_file_bytes > 0 {
        ulimits.push(ulimit("fsize", policy.max_file_bytes));
    }
    HostConfig {
        privileged: Some(false),
        ulimits: Some(ulimits),
        network_mode: spec.network.clone(),
        storage_opt: spec
            .disk_bytes
            .map(|bytes| HashMap::from([("size".to_string(), bytes.to_string())])),
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
    use crate::container::driver::{Limits, VolumeMount};

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
            nofile: 1024,
            max_file_bytes: 1 << 20,
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
        let ulimits = host.ulimits.unwrap();
        assert_eq!(ulimits[0].name.as_deref(), Some("nofile"));
        assert_eq!((ulimits[0].soft, ulimits[0].hard), (Some(1024), Some(1024)));
        assert_eq!(ulimits[1].name.as_deref(), Some("fsize"));
        assert_eq!(ulimits[1].hard, Some(1 << 20));
        assert!(host.storage_opt.is_none());
    }

    #[test]
    fn the_network_and_the_disk_limit_are_the_specs() {
        let spec = ContainerSpec {
            network: Some("weft-u-1".into()),
            disk_bytes: Some(5 << 30),
            ..Default::default()
        };
        let policy = Policy {
            capabilities: vec![],
            pids_limit: 1,
            nofile: 1,
            max_file_bytes: 0,
        };
        let host = host_config(&spec, &policy);
        assert_eq!(host.network_mode.as_deref(), Some("weft-u-1"));
        assert_eq!(host.storage_opt.unwrap()["size"], (5u64 << 30).to_string());
        assert_eq!(host.ulimits.unwrap().len(), 1, "no fsize limit when 0");
    }

    #[test]
    fn patterns() {
        assert!(matches("weft-test/*", "weft-test/busybox:1"));
        assert!(matches("*", "anything/at:all"));
        assert!(matches("python:3.12*", "python:3.12-slim"));
        assert!(matches("a*b*c", "axxbyyc"));
        assert!(matches("weft/jupyter:2", "weft/jupyter:2"));
        assert!(!matches("weft/jupyter:2", "weft/jupyter:20"));
        assert!(!matches("weft-test/*", "evil/weft-test/x"));
        assert!(!matches("a*bc", "abc-bc-x"));
        assert!(!matches("ab*ba", "aba"));
        assert!(!matches("", "x"));
    }

    #[test]
    fn images_allowed_and_their_users() {
        let images = Images {
            allowed: vec!["weft-test/*".into(), "weft/jupyter:2".into()],
            root: vec!["weft-test/root*".into()],
        };
        assert!(images.check("weft-test/busybox:1").is_ok());
        assert!(images.check("weft/jupyter:2").is_ok());
        let refused = images.check("debian:12").unwrap_err();
        assert_eq!(refused.code, Code::ContainerImageNotAllowed);
        for root in ["", "root", "0", "0:0", "root:root"] {
            assert_eq!(
                images.user("weft-test/busybox:1", root).as_deref(),
                Some(NOBODY)
            );
            assert_eq!(images.user("weft-test/root-ok:1", root), None);
        }
        assert_eq!(images.user("weft/jupyter:2", "1000"), None);
        assert_eq!(images.user("x", "weft"), None);
    }
}
