//! The queue of jobs waiting for room on the host, fair between users: the order takes each
//! user's first waiting job, then each user's second, and so on (arrival breaks ties), so one
//! user's many jobs do not hold another's single job back. A job tries to get its container
//! when no job ahead of it waits for the host (a new job joins before its first try); jobs waiting on their own user's limits hold
//! nobody back.

use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

#[derive(Debug, Clone)]
struct Waiter {
    ticket: u64,
    owner: String,
    /// Waiting on the owner's own limits rather than on the host.
    own_limits: bool,
}

/// The waiting jobs; cheap to clone.
#[derive(Clone)]
pub(super) struct Queue {
    inner: Arc<Shared>,
}

struct Shared {
    waiters: Mutex<(u64, Vec<Waiter>)>,
    /// Bumped whenever room may have been freed or the order changed.
    changed: watch::Sender<u64>,
}

impl Queue {
    pub(super) fn new() -> Self {
        Self {
            inner: Arc::new(Shared {
                waiters: Mutex::new((0, Vec::new())),
                changed: watch::channel(0).0,
            }),
        }
    }

    /// Room may have been freed (a job ended): the waiting jobs look again.
    pub(super) fn wake(&self) {
        self.inner.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Puts a job of `owner` in the queue; it leaves when the ticket is dropped.
    pub(super) fn join(&self, owner: &str) -> Ticket {
        let mut guard = self.inner.waiters.lock().expect("queue lock");
        guard.0 += 1;
        let ticket = guard.0;
        guard.1.push(Waiter {
            ticket,
            owner: owner.to_string(),
            own_limits: false,
        });
        drop(guard);
        Ticket {
            queue: self.clone(),
            ticket,
            seen: self.inner.changed.subscribe(),
        }
    }
}

/// A job's place in the queue.
pub(super) struct Ticket {
    queue: Queue,
    ticket: u64,
    seen: watch::Receiver<u64>,
}

impl Ticket {
    /// How many jobs waiting for the host come before this one; 0: its turn to try.
    pub(super) fn position(&self) -> usize {
        let guard = self.queue.inner.waiters.lock().expect("queue lock");
        let order = fair_order(&guard.1);
        order
            .iter()
            .take_while(|w| w.ticket != self.ticket)
            .filter(|w| !w.own_limits)
            .count()
    }

    /// Notes what the last try ran into: the owner's own limits (`true`) or the host.
    pub(super) fn blocked(&self, own_limits: bool) {
        let mut guard = self.queue.inner.waiters.lock().expect("queue lock");
        if let Some(w) = guard.1.iter_mut().find(|w| w.ticket == self.ticket) {
            w.own_limits = own_limits;
        }
    }

    /// Waits until something changed, or a while (room may come from elsewhere: a container
    /// deleted through the API).
    pub(super) async fn changed(&mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(2), self.seen.changed()).await;
        self.seen.mark_unchanged();
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut guard = self.queue.inner.waiters.lock().expect("queue lock");
        guard.1.retain(|w| w.ticket != self.ticket);
        drop(guard);
        self.queue.wake();
    }
}

/// Round by round: every user's oldest waiting job, then every user's second, ...
fn fair_order(waiters: &[Waiter]) -> Vec<&Waiter> {
    let mut keyed: Vec<(usize, u64, &Waiter)> = waiters
        .iter()
        .map(|w| {
            let round = waiters
                .iter()
                .filter(|o| o.owner == w.owner && o.ticket < w.ticket)
                .count();
            (round, w.ticket, w)
        })
        .collect();
    keyed.sort_by_key(|(round, ticket, _)| (*round, *ticket));
    keyed.into_iter().map(|(_, _, w)| w).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_take_turns_and_own_limits_hold_nobody_back() {
        let queue = Queue::new();
        let a1 = queue.join("a");
        let a2 = queue.join("a");
        let b1 = queue.join("b");
        assert_eq!((a1.position(), b1.position(), a2.position()), (0, 1, 2));
        a1.blocked(true);
        assert_eq!((b1.position(), a2.position()), (0, 1));
        drop(b1);
        assert_eq!(a2.position(), 0);
        drop(a1);
        assert_eq!(queue.join("b").position(), 1);
    }
}
