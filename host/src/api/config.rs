//! `[api]`: the HTTP API's limits.

use serde::{Deserialize, Serialize};

/// HTTP API limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// Whether `/metrics` can be read without a token (for a scraper on a trusted network).
    pub public_metrics: bool,
    /// Failed sign-ins (a presented token that does not authenticate) one client address may
    /// make within `sign_in_window_secs`; then it is answered 429 with `Retry-After` until the
    /// oldest failure leaves the window. 0 turns the limit off. Behind a reverse proxy every
    /// client has the proxy's address.
    pub sign_in_max_failures: u32,
    pub sign_in_window_secs: u64,
    /// Client addresses whose failures are remembered at once (memory stays bounded).
    pub sign_in_tracked_addresses: usize,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 2 * 1024 * 1024,
            public_metrics: false,
            sign_in_max_failures: 10,
            sign_in_window_secs: 60,
            sign_in_tracked_addresses: 10_000,
        }
    }
}
