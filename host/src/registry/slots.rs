//! How many nodes one user may have running at once (`[workflows]
//! max_running_nodes_per_user`), across their workflow runs and direct runs, so one user cannot
//! take every node slot of the host.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Per-user node slots.
pub struct UserSlots {
    per_user: usize,
    users: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl UserSlots {
    pub fn new(per_user: usize) -> Self {
        Self {
            per_user: per_user.max(1),
            users: Mutex::default(),
        }
    }

    /// Slots each user has.
    pub fn per_user(&self) -> usize {
        self.per_user
    }

    fn of(&self, user_id: &str) -> Arc<Semaphore> {
        self.users
            .lock()
            .expect("user slots lock")
            .entry(user_id.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_user)))
            .clone()
    }

    /// Waits for one of `user_id`'s slots (a workflow node queues behind the user's others).
    pub async fn acquire(&self, user_id: &str) -> OwnedSemaphorePermit {
        self.of(user_id)
            .acquire_owned()
            .await
            .expect("user slots stay open")
    }

    /// One of `user_id`'s slots if one is free now (a direct run is refused rather than held).
    pub fn try_acquire(&self, user_id: &str) -> Option<OwnedSemaphorePermit> {
        self.of(user_id).try_acquire_owned().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn each_user_has_their_own_slots() {
        let slots = UserSlots::new(2);
        let a1 = slots.acquire("a").await;
        let _a2 = slots.try_acquire("a").expect("second slot");
        assert!(slots.try_acquire("a").is_none(), "a has no third slot");
        assert!(slots.try_acquire("b").is_some(), "b is not held up by a");
        drop(a1);
        assert!(slots.try_acquire("a").is_some());
    }
}
