//! Records read from the store lately, for paths that read the same record many times a
//! second: every proxied request of a workspace session checks the session's secrets and that
//! its owner is not disabled, and one page of Jupyter or code-server makes dozens of requests
//! at once. Reading both from the store for each made the store the proxy's bottleneck on
//! small requests.
//!
//! A record is kept for at most [`FRESH`] and forgotten whenever this process has changed it
//! ([`Recent::forget`] comes after the write); a read that raced such a change is not kept, so a
//! change made here is never hidden. Another Weft host sharing the store is seen within
//! [`FRESH`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a record read from the store answers for it.
const FRESH: Duration = Duration::from_secs(1);

/// Past this many records, expired ones are dropped when one is kept.
const PRUNE_AT: usize = 1024;

/// Records by id, each answering for [`FRESH`] after it was read.
pub(crate) struct Recent<V> {
    state: Mutex<State<V>>,
}

struct State<V> {
    records: HashMap<String, (Instant, Arc<V>)>,
    /// Counts the changes forgotten: a read started before one is stale.
    generation: u64,
}

impl<V> Default for Recent<V> {
    fn default() -> Self {
        Self {
            state: Mutex::new(State {
                records: HashMap::new(),
                generation: 0,
            }),
        }
    }
}

impl<V> Recent<V> {
    fn state(&self) -> std::sync::MutexGuard<'_, State<V>> {
        self.state.lock().expect("recent records poisoned")
    }

    /// Taken before reading a record from the store, handed to [`Self::keep`] with it.
    pub(crate) fn generation(&self) -> u64 {
        self.state().generation
    }

    /// Record `id` if read within [`FRESH`] and not changed here since.
    pub(crate) fn get(&self, id: &str) -> Option<Arc<V>> {
        let state = self.state();
        let (at, value) = state.records.get(id)?;
        (at.elapsed() < FRESH).then(|| value.clone())
    }

    /// Keeps a record read from the store after [`Self::generation`] gave `generation`,
    /// unless something was forgotten since.
    pub(crate) fn keep(&self, id: &str, generation: u64, value: Arc<V>) {
        let mut state = self.state();
        if state.generation != generation {
            return;
        }
        if state.records.len() >= PRUNE_AT {
            state.records.retain(|_, (at, _)| at.elapsed() < FRESH);
        }
        state.records.insert(id.to_owned(), (Instant::now(), value));
    }

    /// Record `id` was changed in the store (called after the write).
    pub(crate) fn forget(&self, id: &str) {
        let mut state = self.state();
        state.generation += 1;
        state.records.remove(id);
    }

    /// Records may have changed in ways not told by id (a revoked token's descendants):
    /// forgets them all.
    pub(crate) fn forget_all(&self) {
        let mut state = self.state();
        state.generation += 1;
        state.records.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_that_raced_a_change_is_not_kept() {
        let recent = Recent::default();
        let before = recent.generation();
        recent.forget("s");
        recent.keep("s", before, Arc::new("stale"));
        assert!(recent.get("s").is_none());
        let now = recent.generation();
        recent.keep("s", now, Arc::new("fresh"));
        assert_eq!(recent.get("s").as_deref(), Some(&"fresh"));
        recent.forget("s");
        assert!(recent.get("s").is_none());
        let now = recent.generation();
        recent.keep("s", now, Arc::new("again"));
        recent.forget_all();
        assert!(recent.get("s").is_none());
        recent.keep("s", now, Arc::new("stale"));
        assert!(recent.get("s").is_none());
    }
}
