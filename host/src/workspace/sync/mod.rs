//! Moving a project's files into a workspace and changes back, as tar streams through the
//! engine, with memory that does not grow with the workspace. Nothing escapes: entries with
//! absolute paths, `..` or links are refused and reported; ignored folders (`__pycache__`,
//! `.venv`, ...) are left out both ways; a project holds at most `project_max_files` files and
//! `project_max_bytes` bytes, each at most `max_file_bytes`. What cannot be synced is reported
//! and skipped, so a workspace's content never makes every sync (and so every stop) fail.

mod apply;
mod pack;
mod source;
mod tar_reader;

use super::projects::Projects;
use crate::container::driver::ContainerDriver;
use crate::error::Result;
use crate::workspace::config::WorkspacesConfig;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;

pub(crate) use pack::pack;

/// Paths listed per kind in a report, at most (the counts are exact).
const LISTED: usize = 100;

/// What a sync back did. Each list names at most 100 paths; the counts are exact.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct SyncReport {
    /// Files added or changed in the project.
    pub written: Vec<String>,
    pub written_count: u64,
    /// Files deleted from the project because they were deleted in the workspace.
    pub deleted: Vec<String>,
    pub deleted_count: u64,
    pub unchanged: usize,
    /// Entries not synced, with why (the project keeps what it had for them).
    pub refused: Vec<Refused>,
    pub refused_count: u64,
    /// Set when the workspace could not be read to its end: what was read is synced, and
    /// nothing is deleted.
    pub incomplete: Option<String>,
}

/// An entry of the workspace that was not synced.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Refused {
    pub path: String,
    pub reason: String,
}

impl SyncReport {
    fn write(&mut self, path: String) {
        self.written_count += 1;
        if self.written.len() < LISTED {
            self.written.push(path);
        }
    }

    fn delete(&mut self, path: String) {
        self.deleted_count += 1;
        if self.deleted.len() < LISTED {
            self.deleted.push(path);
        }
    }

    fn refuse(&mut self, path: &str, reason: String) {
        self.refused_count += 1;
        if self.refused.len() < LISTED {
            self.refused.push(Refused {
                path: path.into(),
                reason,
            });
        }
    }

    /// One line on what was not synced, if anything was not.
    pub fn summary(&self) -> Option<String> {
        let mut parts = Vec::new();
        if self.refused_count > 0 {
            let named: Vec<String> = self
                .refused
                .iter()
                .take(3)
                .map(|r| format!("'{}' ({})", r.path, r.reason))
                .collect();
            parts.push(format!(
                "{} entries not synced: {}{}",
                self.refused_count,
                named.join(", "),
                if self.refused_count > 3 { ", ..." } else { "" }
            ));
        }
        if let Some(why) = &self.incomplete {
            parts.push(format!("nothing was deleted: {why}"));
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }
}

fn ignored(path: &str, ignore: &[String]) -> bool {
    path.split('/').any(|part| ignore.iter().any(|i| i == part))
}

/// Brings project `id` in line with the workspace of engine container `engine_id` (running
/// or stopped). Fails only when the engine or the storage does; the workspace's content is
/// reported, never a failure.
pub(crate) async fn pull(
    projects: &Projects,
    driver: &Arc<dyn ContainerDriver>,
    engine_id: &str,
    id: &str,
    config: &WorkspacesConfig,
) -> Result<SyncReport> {
    let ignore = &config.sync_ignore;
    let source = source::Source::open(driver, engine_id, ignore, config.max_file_bytes).await;
    apply::apply(projects, id, source, ignore, projects.limits()).await
}
