//! The data versions service: the remotes' objects, datasets and their versions.

use super::config::DatasetsConfig;
use super::objects::Objects;
use crate::git::Git;
use crate::store::Store;
use crate::workspace::{ProjectEvent, ProjectHook, Projects};
use std::sync::Arc;

/// Data versions, cheap to clone.
#[derive(Clone)]
pub(crate) struct Datasets {
    inner: Arc<Inner>,
}

struct Inner {
    objects: Objects,
    #[allow(dead_code)]
    store: Store,
    #[allow(dead_code)]
    git: Git,
}

impl Datasets {
    pub(crate) fn new(
        store: Store,
        projects: &Projects,
        git: Git,
        config: &DatasetsConfig,
    ) -> Self {
        let objects = Objects::new(
            store.clone(),
            projects.storage().clone(),
            config.max_bytes_per_user,
        );
        Self {
            inner: Arc::new(Inner {
                objects,
                store,
                git,
            }),
        }
    }

    /// The remotes' objects.
    pub(super) fn objects(&self) -> &Objects {
        &self.inner.objects
    }

    /// The hook the projects service calls: a deleted project loses its objects.
    pub(crate) fn project_hook(&self) -> ProjectHook {
        let objects = self.inner.objects.clone();
        Arc::new(move |event| {
            let objects = objects.clone();
            Box::pin(async move {
                if let ProjectEvent::Deleted(id) = event
                    && let Err(e) = objects.remove_project(&id).await
                {
                    tracing::warn!(project = %id, error = %e, "cannot remove the data objects of a deleted project");
                }
            })
        })
    }
}
