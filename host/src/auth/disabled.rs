//! Tells connections that outlive the request that opened them (proxied WebSockets) when their
//! user is disabled, so a terminal or kernel channel does not stay open for a user an admin
//! just stopped.

use super::Auth;
use tokio::sync::broadcast;

/// Users being disabled, in this process.
#[derive(Clone)]
pub(super) struct Disabled(broadcast::Sender<String>);

impl Disabled {
    pub(super) fn new() -> Self {
        Self(broadcast::channel(64).0)
    }

    /// Says `user_id` was disabled; nobody listening is no error.
    pub(super) fn announce(&self, user_id: &str) {
        let _ = self.0.send(user_id.to_string());
    }
}

/// A watch for users being disabled: taken before the user is checked, so a disable in
/// between is not missed. In-process only: a user disabled through another Weft host sharing
/// the database loses their connections here at their next request, not at once.
pub struct DisabledWatch {
    auth: Auth,
    events: broadcast::Receiver<String>,
}

impl DisabledWatch {
    pub(super) fn new(auth: Auth, disabled: &Disabled) -> Self {
        Self {
            auth,
            events: disabled.0.subscribe(),
        }
    }

    /// Resolves once `user_id` is disabled.
    pub async fn until(mut self, user_id: &str) {
        loop {
            match self.events.recv().await {
                Ok(id) if id == user_id => return,
                Ok(_) => {}
                // Missed some: ask the store.
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    if self.auth.require_enabled(user_id).await.is_err() {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
            }
        }
    }
}
