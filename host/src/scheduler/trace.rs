//! The opt-in trace of submits and completions (JSON lines) that `weft scheduler replay`
//! plays back through other strategies.

use serde::{Deserialize, Serialize};
use std::io::{BufRead as _, Write as _};
use std::path::Path;
use std::sync::Mutex;

/// One line of a trace.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "event", rename_all = "snake_case")]
pub(crate) enum TraceEvent {
    /// A task arrived.
    Submit {
        /// Unix milliseconds.
        at_ms: f64,
        task_id: String,
        model_name: String,
    },
    /// A task finished on an instance after `execution_ms`.
    Complete {
        at_ms: f64,
        task_id: String,
        instance_id: String,
        execution_ms: f64,
    },
}

/// Appends events to a trace file.
pub(crate) struct TraceWriter {
    file: Mutex<std::io::BufWriter<std::fs::File>>,
}

impl TraceWriter {
    /// Opens `path` for appending (created when missing).
    pub(crate) fn open(path: &Path) -> anyhow::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| anyhow::anyhow!("cannot open the trace file {}: {e}", path.display()))?;
        Ok(Self {
            file: Mutex::new(std::io::BufWriter::new(file)),
        })
    }

    /// Records one event; a trace that cannot be written is logged, never fatal.
    pub(crate) fn record(&self, event: &TraceEvent) {
        let mut file = self.file.lock().expect("trace lock");
        let line = serde_json::to_string(event).expect("trace events serialise");
        if let Err(err) = writeln!(file, "{line}").and_then(|()| file.flush()) {
            tracing::warn!(%err, "cannot write the scheduler trace");
        }
    }
}

/// Reads a whole trace; a malformed line is an error naming its number.
pub(crate) fn read(path: &Path) -> anyhow::Result<Vec<TraceEvent>> {
    let file = std::fs::File::open(path)
        .map_err(|e| anyhow::anyhow!("cannot open the trace {}: {e}", path.display()))?;
    let mut events = Vec::new();
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        events.push(serde_json::from_str(&line).map_err(|e| {
            anyhow::anyhow!("{} line {}: not a trace event: {e}", path.display(), n + 1)
        })?);
    }
    Ok(events)
}

/// Unix milliseconds with a fraction.
pub(crate) fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
        * 1e3
}
