//! The limit on what a container writes to its writable layer (`[containers] disk_limit`).
//!
//! Where the engine can enforce it (overlay2 on xfs mounted with `pquota`), each container is
//! created with that size (`StorageOpt size`) and a write past it fails inside the container.
//! Elsewhere a watcher measures every running container's writable layer every
//! `disk_check_interval_secs` and stops one over the limit, saying why. Which of the two is at
//! work is reported in `GET /resources` (`engine.disk_quota`). A single file is bounded by the
//! `fsize` ulimit in both modes (see [`super::hardening`]).

use super::driver::{ContainerDriver, EngineInfo};
use super::{ContainerStatus, Containers, quantity, records};
use crate::error::{Error, Result};
use crate::store::now_ms;
use serde::Serialize;
use std::sync::Mutex;
use std::time::Duration;
use utoipa::ToSchema;

/// How the disk limit is enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// The engine's storage driver limits each writable layer.
    Engine,
    /// Weft measures writable layers and stops containers over the limit.
    Watcher,
    /// `disk_limit` is 0.
    Off,
}

/// `engine.disk_quota` in `GET /resources`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DiskQuotaReport {
    pub mode: Mode,
    /// The limit per container (`"20Gi"`).
    pub limit: String,
}

/// The limit and how it is enforced on this engine (found out on first need).
pub(crate) struct DiskQuota {
    limit_bytes: u64,
    mode: Mutex<Option<Mode>>,
}

/// What the engine can do with `info`.
fn mode_for(info: &EngineInfo) -> Mode {
    if info.storage_driver == "overlay2" && info.backing_filesystem == "xfs" {
        Mode::Engine
    } else {
        Mode::Watcher
    }
}

impl DiskQuota {
    pub(crate) fn new(limit_bytes: u64) -> Self {
        Self {
            limit_bytes,
            mode: Mutex::new((limit_bytes == 0).then_some(Mode::Off)),
        }
    }

    pub(crate) fn limit_bytes(&self) -> u64 {
        self.limit_bytes
    }

    fn known(&self) -> Option<Mode> {
        *self.mode.lock().expect("disk mode poisoned")
    }

    /// The mode on this engine, asking it once.
    pub(crate) async fn mode(&self, driver: &dyn ContainerDriver) -> Result<Mode> {
        if let Some(mode) = self.known() {
            return Ok(mode);
        }
        let mode = mode_for(&driver.info().await?);
        *self.mode.lock().expect("disk mode poisoned") = Some(mode);
        Ok(mode)
    }

    /// The engine refused a size limit (xfs without `pquota`): watch from now on.
    pub(crate) fn engine_refused(&self, error: &Error) -> bool {
        let refused = error.message.contains("storage-opt") || error.message.contains("pquota");
        if refused {
            tracing::warn!(error = %error.message, "the engine cannot limit writable layers; watching their size instead");
            *self.mode.lock().expect("disk mode poisoned") = Some(Mode::Watcher);
        }
        refused
    }

    pub(crate) fn report(&self, info: Option<&EngineInfo>) -> DiskQuotaReport {
        DiskQuotaReport {
            mode: self
                .known()
                .or_else(|| info.map(mode_for))
                .unwrap_or(Mode::Watcher),
            limit: quantity::format_memory(self.limit_bytes),
        }
    }
}

/// Starts the watcher: every `every`, when the engine cannot enforce the limit, stops the
/// running containers over it.
pub(crate) fn spawn(containers: Containers, every: Duration) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            if let Err(e) = containers.enforce_disk_limit().await {
                tracing::debug!(error = %e, "cannot check containers' disk use; will retry");
            }
        }
    });
}

impl Containers {
    /// Stops every running container whose writable layer is over the limit (watcher mode
    /// only); returns how many.
    pub async fn enforce_disk_limit(&self) -> Result<usize> {
        let disk = &self.inner.disk;
        if disk.mode(self.inner.driver.as_ref()).await? != Mode::Watcher {
            return Ok(0);
        }
        let mut stopped = 0;
        let running = records::list(&self.inner.store, None).await?;
        for record in running
            .iter()
            .filter(|c| c.status == ContainerStatus::Running)
        {
            let Some(engine_id) = &record.engine_id else {
                continue;
            };
            let Some(used) = self.inner.driver.disk_usage(engine_id).await? else {
                continue;
            };
            if used > disk.limit_bytes() && self.stop_over_disk(&record.id, used).await? {
                stopped += 1;
            }
        }
        Ok(stopped)
    }

    async fn stop_over_disk(&self, id: &str, used: u64) -> Result<bool> {
        let _lock = self.lock(id).await;
        let Some(mut record) = records::get(&self.inner.store, id).await? else {
            return Ok(false);
        };
        let Some(engine_id) = record.engine_id.clone() else {
            return Ok(false);
        };
        if record.status != ContainerStatus::Running {
            return Ok(false);
        }
        self.inner
            .driver
            .stop(&engine_id, self.inner.stop_grace)
            .await?;
        let engine = self.inner.driver.inspect(&engine_id).await?;
        record.exit_code = engine.as_ref().and_then(|e| e.exit_code);
        let reason = format!(
            "stopped: its writable layer held {}, over the disk limit of {}",
            quantity::format_memory(used),
            quantity::format_memory(self.inner.disk.limit_bytes())
        );
        tracing::warn!(container = %id, used, "{reason}");
        record.mark_ended(
            ContainerStatus::Failed,
            engine.and_then(|e| e.finished_at).unwrap_or_else(now_ms),
            Some(reason),
        );
        self.save(&record).await?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(driver: &str, fs: &str) -> EngineInfo {
        EngineInfo {
            version: String::new(),
            api_version: String::new(),
            cpu_millis: 0,
            memory_bytes: 0,
            user_namespaces: false,
            storage_driver: driver.into(),
            backing_filesystem: fs.into(),
        }
    }

    #[test]
    fn the_engine_limits_layers_only_on_overlay2_over_xfs() {
        assert_eq!(mode_for(&info("overlay2", "xfs")), Mode::Engine);
        assert_eq!(mode_for(&info("overlay2", "extfs")), Mode::Watcher);
        assert_eq!(mode_for(&info("vfs", "xfs")), Mode::Watcher);
        let off = DiskQuota::new(0);
        assert_eq!(off.report(Some(&info("overlay2", "xfs"))).mode, Mode::Off);
        let quota = DiskQuota::new(20 << 30);
        assert_eq!(
            quota.report(Some(&info("overlay2", "xfs"))).mode,
            Mode::Engine
        );
        assert!(quota.engine_refused(&Error::internal(
            "--storage-opt is supported only for overlay over xfs with 'pquota' mount option"
        )));
        assert_eq!(
            quota.report(Some(&info("overlay2", "xfs"))).mode,
            Mode::Watcher
        );
        assert_eq!(quota.report(None).limit, "20Gi");
    }
}
