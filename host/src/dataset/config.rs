//! `[datasets]`: what each user's data versions may take in storage.

use serde::{Deserialize, Serialize};

/// Data versions: the DVC remote and `/api/v1/datasets`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatasetsConfig {
    /// The bytes the objects of a user's projects' DVC remotes may take together, counted once
    /// per object (deduplicated); an upload past it is refused with `30223`.
    pub max_bytes_per_user: u64,
}

impl Default for DatasetsConfig {
    fn default() -> Self {
        Self {
            max_bytes_per_user: 50 << 30,
        }
    }
}
