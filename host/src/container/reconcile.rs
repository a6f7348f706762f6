//! Keeping the store true to the engine: the engine's events as they come, and a full
//! reconciliation at start and every `reconcile_interval_secs`.
//!
//! Reconciliation lists the engine's containers labelled with this installation's id: a stored
//! container found running is adopted; one gone from the engine is marked stopped (its running
//! time accounted up to now); a labelled container the store does not know is removed once it
//! is older than `orphan_grace_secs`; a user network no container of its owner needs any more
//! is removed.

use super::{Containers, LABEL_CONTAINER, LABEL_INSTALL, LABEL_OWNER, records};
use crate::error::Result;
use crate::store::now_ms;
use futures::StreamExt;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

/// What one reconciliation did.
#[derive(Debug, Default, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct Report {
    /// Stored as running and running on the engine.
    pub adopted: usize,
    /// Stored state changed to match the engine (stopped, exited, started, health).
    pub updated: usize,
    /// Stored as holding resources, gone from the engine.
    pub vanished: usize,
    /// Labelled containers unknown to the store, removed.
    pub orphans_removed: usize,
    /// User networks whose owner has no container left, removed.
    pub networks_removed: usize,
}

/// Starts the event watcher and the periodic reconciliation.
pub(crate) fn spawn(containers: Containers) {
    tokio::spawn(watch_events(containers.clone()));
    tokio::spawn(async move {
        let mut engine_was_down = false;
        loop {
            match containers.reconcile().await {
                Ok(report) => {
                    engine_was_down = false;
                    if report != Report::default() {
                        tracing::info!(?report, "containers reconciled with the engine");
                    }
                }
                Err(e) if !engine_was_down => {
                    engine_was_down = true;
                    tracing::warn!(error = %e, "cannot reconcile containers; will retry");
                }
                Err(_) => {}
            }
            tokio::time::sleep(containers.inner.reconcile_every).await;
        }
    });
}

/// Follows the engine's events for this installation's containers and refreshes each one an
/// event names; reconnects after the engine goes away.
async fn watch_events(containers: Containers) {
    let labels = BTreeMap::from([(
        LABEL_INSTALL.to_string(),
        containers.inner.install_id.clone(),
    )]);
    loop {
        let mut events = containers.inner.driver.events(&labels);
        while let Some(event) = events.next().await {
            let Ok(event) = event else { break };
            let Some(id) = event.labels.get(LABEL_CONTAINER).cloned() else {
                continue;
            };
            let containers = containers.clone();
            // One task per event: a refresh waits for the container's lock, and a slow stop
            // of one container must not hold up the events of the others.
            tokio::spawn(async move {
                if let Err(e) = containers.refresh(&id).await {
                    tracing::warn!(container = %id, action = %event.action, error = %e, "cannot refresh a container after an engine event");
                }
            });
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

impl Containers {
    /// Brings the store in line with the engine once.
    pub async fn reconcile(&self) -> Result<Report> {
        let labels = BTreeMap::from([(LABEL_INSTALL.to_string(), self.inner.install_id.clone())]);
        // The engine first: a container it lists was stored before it was created, so the
        // store read next knows it.
        let engine = self.inner.driver.list(&labels).await?;
        let by_id: HashMap<&str, _> = engine.iter().map(|e| (e.id.as_str(), e)).collect();
        let stored = records::list(&self.inner.store, None).await?;
        let mut report = Report::default();
        for id in stored.iter().map(|c| c.id.clone()) {
            let _lock = self.lock(&id).await;
            let Some(mut record) = records::get(&self.inner.store, &id).await? else {
                continue;
            };
            let Some(engine_id) = record.engine_id.clone() else {
                continue;
            };
            let found = by_id.get(engine_id.as_str()).copied();
            let was_running = record.status == super::ContainerStatus::Running;
            if self.apply(&mut record, found) {
                self.save(&record).await?;
                if found.is_none() {
                    report.vanished += 1;
                } else {
                    report.updated += 1;
                }
            } else if was_running && found.is_some_and(|e| e.is_running()) {
                report.adopted += 1;
            }
        }
        let known: HashSet<&str> = stored.iter().map(|c| c.id.as_str()).collect();
        let grace_ms = self.inner.orphan_grace.as_millis() as i64;
        for orphan in engine.iter().filter(|e| {
            !e.labels
                .get(LABEL_CONTAINER)
                .is_some_and(|id| known.contains(id.as_str()))
        }) {
            let age = now_ms() - orphan.created_at.unwrap_or(0);
            if age >= grace_ms {
                tracing::info!(engine_id = %orphan.id, "removing a labelled container the store does not know");
                self.inner.driver.remove(&orphan.id).await?;
                report.orphans_removed += 1;
            }
        }
        let needed: HashSet<String> = engine
            .iter()
            .filter_map(|e| e.labels.get(LABEL_OWNER).cloned())
            .chain(stored.iter().map(|c| c.owner_id.clone()))
            .collect();
        report.networks_removed = self
            .inner
            .networks
            .prune(&needed, |owner| self.owner_has_containers(owner))
            .await?;
        Ok(report)
    }

    /// Whether `owner` has a container in the store or, labelled by this installation, on the
    /// engine.
    async fn owner_has_containers(&self, owner: String) -> Result<bool> {
        if !records::list(&self.inner.store, Some(&owner))
            .await?
            .is_empty()
        {
            return Ok(true);
        }
        let labels = BTreeMap::from([
            (LABEL_INSTALL.to_string(), self.inner.install_id.clone()),
            (LABEL_OWNER.to_string(), owner),
        ]);
        Ok(!self.inner.driver.list(&labels).await?.is_empty())
    }
}
