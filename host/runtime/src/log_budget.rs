//! A call's allowance of log output: a plugin that logs in a loop (through `host.log` or its
//! stderr) must not fill the host's disk through the server log or the run's events. Past the
//! allowance messages are dropped and counted; the count is logged once when the call ends.

use crate::limits::Limits;

pub(crate) struct LogBudget {
    messages_left: u32,
    bytes_left: u64,
    dropped: u64,
    limits: (u32, u64),
}

impl LogBudget {
    pub(crate) fn new(limits: &Limits) -> Self {
        Self {
            messages_left: limits.log_messages,
            bytes_left: limits.log_bytes,
            dropped: 0,
            limits: (limits.log_messages, limits.log_bytes),
        }
    }

    /// Whether a message of `len` bytes may go out; one that may not is counted as dropped.
    pub(crate) fn take(&mut self, len: usize) -> bool {
        let len = len as u64;
        if self.messages_left == 0 || self.bytes_left < len {
            self.dropped += 1;
            return false;
        }
        self.messages_left -= 1;
        self.bytes_left -= len;
        true
    }

    /// The note to log once the call ended, if messages were dropped; the count restarts.
    pub(crate) fn dropped_note(&mut self) -> Option<String> {
        let dropped = std::mem::take(&mut self.dropped);
        (dropped > 0).then(|| {
            format!(
                "{dropped} log messages of this call dropped: over its allowance of {} messages \
                 or {} bytes (limits log_messages / log_bytes)",
                self.limits.0, self.limits.1
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_what_is_over_the_allowance_by_messages_or_bytes() {
        let mut budget = LogBudget::new(&Limits {
            log_messages: 3,
            log_bytes: 10,
            ..Limits::default()
        });
        assert!(budget.take(4));
        assert!(budget.take(6));
        assert!(!budget.take(1), "bytes spent");
        assert!(budget.dropped_note().unwrap().starts_with("1 log messages"));
        assert_eq!(budget.dropped_note(), None, "reported once");
        let mut few = LogBudget::new(&Limits {
            log_messages: 1,
            ..Limits::default()
        });
        assert!(few.take(1));
        assert!(!few.take(1) && !few.take(1));
        assert!(few.dropped_note().unwrap().starts_with("2 log messages"));
    }
}
