//! The session records the proxy read lately, with their secrets' hashes. Every proxied
//! request is authorized, and one page of Jupyter or code-server makes dozens at once: reading
//! the record from the store for each made the store the proxy's bottleneck on small requests.
//!
//! A record is kept for at most [`FRESH`] and forgotten whenever this process has changed it (a
//! status, a new access token, a spent one: [`Seen::forget`] comes after the write); a read
//! that raced such a change is not kept, so neither a stopped session nor a spent token is
//! served from here. Another Weft host sharing the store may stop a
//! session unseen for up to [`FRESH`]: its container is going anyway.

use super::sessions::Session;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a record read from the store answers for it.
const FRESH: Duration = Duration::from_secs(1);

/// Past this many records, expired ones are dropped when one is kept.
const PRUNE_AT: usize = 1024;

/// A session with the hashes of its one-time access token and of its cookie secret.
pub(super) type Secrets = (Session, Option<String>, Option<String>);

#[derive(Default)]
pub(super) struct Seen {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    records: HashMap<String, (Instant, Arc<Secrets>)>,
    /// Counts the changes forgotten: a read started before one is stale.
    generation: u64,
}

impl Seen {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("seen sessions poisoned")
    }

    /// Taken before reading a record from the store, handed to [`Self::keep`] with it.
    pub(super) fn generation(&self) -> u64 {
        self.state().generation
    }

    /// Session `id`'s record if read within [`FRESH`] and unchanged since.
    pub(super) fn get(&self, id: &str) -> Option<Arc<Secrets>> {
        let state = self.state();
        let (at, secrets) = state.records.get(id)?;
        (at.elapsed() < FRESH).then(|| secrets.clone())
    }

    /// Keeps a record read from the store after [`Self::generation`] gave `generation`,
    /// unless something was forgotten since.
    pub(super) fn keep(&self, id: &str, generation: u64, secrets: Arc<Secrets>) {
        let mut state = self.state();
        if state.generation != generation {
            return;
        }
        if state.records.len() >= PRUNE_AT {
            state.records.retain(|_, (at, _)| at.elapsed() < FRESH);
        }
        state
            .records
            .insert(id.to_owned(), (Instant::now(), secrets));
    }

    /// Session `id` was changed in the store (called after the write).
    pub(super) fn forget(&self, id: &str) {
        let mut state = self.state();
        state.generation += 1;
        state.records.remove(id);
    }
}
