//! Per-call limits: memory, CPU and wall time, with safe defaults.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Limits for one call (or one strategy instance). Missing fields take the defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Linear memory the plugin may grow to, in bytes (default 64 MiB).
    pub memory_bytes: u64,
    /// CPU time the plugin may spend in one call, in milliseconds (default 5 s).
    pub cpu_ms: u64,
    /// Wall-clock time one call may take, in milliseconds, waits included (default 30 s).
    pub timeout_ms: u64,
    /// Log messages (`host.log` and stderr lines) one call may write (default 1,000); more
    /// are dropped and counted.
    pub log_messages: u32,
    /// Bytes of log messages one call may write (default 1 MiB); more are dropped and counted.
    pub log_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_bytes: 64 << 20,
            cpu_ms: 5_000,
            timeout_ms: 30_000,
            log_messages: 1_000,
            log_bytes: 1 << 20,
        }
    }
}

impl Limits {
    /// Checks the limits against the runtime's ceilings.
    pub fn validate(&self, max_memory_bytes: u64) -> Result<(), String> {
        if self.memory_bytes < (1 << 20) || self.memory_bytes > max_memory_bytes {
            return Err(format!(
                "memory_bytes must be between 1 MiB and {max_memory_bytes} bytes"
            ));
        }
        if self.cpu_ms == 0 || self.timeout_ms == 0 {
            return Err("cpu_ms and timeout_ms must be positive".into());
        }
        if self.timeout_ms > 24 * 3_600_000 {
            return Err("timeout_ms must be at most 24 hours".into());
        }
        Ok(())
    }

    pub(crate) fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
}

/// The store's resource limiter: refuses growth past the limit with a typed error, so the
/// host can tell a memory limit from any other trap.
pub(crate) struct MemoryLimiter {
    pub limit_bytes: u64,
    pub hit: bool,
}

/// Marker error carried by a trap caused by a limit.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LimitHit {
    #[error("memory limit reached")]
    Memory,
    #[error("CPU limit reached")]
    Cpu,
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired as u64 > self.limit_bytes {
            self.hit = true;
            return Err(LimitHit::Memory.into());
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }
}
