//! The shared state every request handler sees.

use crate::auth::Auth;
use crate::config::Config;
use crate::container::Containers;
use crate::dataset::Datasets;
use crate::git::Git;
use crate::lineage::Lineage;
use crate::mlflow::Tracking;
use crate::notebook::Notebooks;
use crate::registry::{Plugins, Setup};
use crate::scheduler::Scheduler;
use crate::store::Store;
use crate::telemetry::Metrics;
use crate::workflow::{RunValues, Workflows};
use crate::workspace::{Projects, Sessions};
use axum::extract::FromRef;
use std::sync::Arc;

/// Handles to Weft's services, shared by every request: one pointer to clone (each layer and
/// extractor of a request takes its own copy).
#[derive(Clone)]
pub struct AppState(Arc<Services>);

/// Weft's services.
pub struct Services {
    /// The configuration Weft started with.
    pub config: Arc<Config>,
    /// The database.
    pub store: Store,
    /// Users, tokens and sign-ins.
    pub auth: Auth,
    /// The metrics served at `/metrics`.
    pub metrics: Arc<Metrics>,
    /// The plugin registry.
    pub plugins: Plugins,
    /// Workflows and their runs.
    pub workflows: Workflows,
    /// The task scheduler.
    pub scheduler: Scheduler,
    /// Containers on the engine.
    pub containers: Containers,
    /// Projects and their files.
    pub projects: Projects,
    /// Workspace sessions.
    pub sessions: Sessions,
    /// Notebooks and their kernels.
    pub notebooks: Notebooks,
    /// Code versions: the projects' repositories.
    pub git: Git,
    /// Model versions: the MLflow tracking server.
    pub(crate) tracking: Tracking,
    /// Data versions: the DVC remote and datasets.
    pub(crate) datasets: Datasets,
    /// What runs used and produced.
    pub(crate) lineage: Lineage,
}

impl AppState {
    /// Opens the store and builds every service for `config`.
    pub async fn open(config: Config) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&config.data_dir).map_err(|e| {
            anyhow::anyhow!(
                "cannot create the data folder {}: {e}",
                config.data_dir.display()
            )
        })?;
        let store = Store::open(&config.database_url()).await?;
        let metrics = Metrics::new();
        let setup = Setup {
            plugins: &config.plugins,
            data_dir: &config.data_dir,
            api: &config.api,
            secrets: &config.secrets,
            max_running_nodes_per_user: config.workflows.max_running_nodes_per_user,
        };
        let plugins = Plugins::start(store.clone(), setup).await?;
        let workspace_images = [
            config.workspaces.jupyter.image.clone(),
            config.workspaces.code_server.image.clone(),
        ];
        let containers = Containers::start(store.clone(), &config.containers, &workspace_images)
            .await
            .map_err(|e| anyhow::anyhow!("cannot start the container service: {e}"))?;
        let projects = Projects::open(store.clone(), &config.workspaces, &config.data_dir)?;
        tokio::spawn({
            let projects = projects.clone();
            async move { projects.sweep_staging().await }
        });
        let sessions = Sessions::new(
            store.clone(),
            projects.clone(),
            containers.clone(),
            &config.workspaces,
            &config.data_dir,
            metrics.clone(),
        )
        .map_err(|e| anyhow::anyhow!("cannot start the session service: {e:#}"))?;
        let git = Git::open(
            &config.git,
            &config.data_dir,
            store.clone(),
            projects.clone(),
            sessions.clone(),
        )
        .map_err(|e| anyhow::anyhow!("cannot start code versioning: {e:#}"))?;
        // Jobs copy a project's files at a commit: code versioning comes first.
        let jobs = crate::job::Jobs::new(
            store.clone(),
            containers.clone(),
            projects.clone(),
            git.clone(),
        );
        plugins.set_jobs(jobs.clone());
        let scheduler = Scheduler::start(
            store.clone(),
            plugins.clone(),
            config.scheduler.clone(),
            metrics.clone(),
        )
        .await
        .map_err(|e| anyhow::anyhow!("cannot start the scheduler: {e}"))?;
        let notebooks = Notebooks::start(
            store.clone(),
            projects.clone(),
            sessions.clone(),
            &config.notebooks,
            &config.workspaces,
            metrics.clone(),
        )
        .await
        .map_err(|e| anyhow::anyhow!("cannot start the notebook service: {e}"))?;
        projects.on_change(git.project_hook());
        let tracking = Tracking::new(store.clone(), projects.storage().clone());
        let datasets = Datasets::new(store.clone(), &projects, git.clone(), &config.datasets);
        let converted = datasets
            .convert_file_rows()
            .await
            .map_err(|e| anyhow::anyhow!("cannot convert the file lists of data versions: {e}"))?;
        if converted > 0 {
            tracing::info!(
                versions = converted,
                "converted the file lists of data versions"
            );
        }
        projects.on_change(datasets.project_hook());
        git.on_push(datasets.push_hook());
        let lineage = Lineage::new(
            store.clone(),
            projects.clone(),
            git.clone(),
            datasets.clone(),
            tracking.clone(),
        );
        plugins.set_lineage(lineage.clone());
        let values_dir = config
            .workflows
            .values_dir
            .clone()
            .unwrap_or_else(|| config.data_dir.join("run-values"));
        let values = RunValues::open(&values_dir, config.workflows.inline_value_bytes)?;
        let workflows = Workflows::start(
            store.clone(),
            plugins.clone(),
            lineage.clone(),
            values,
            config.workflows.clone(),
            metrics.clone(),
        )
        .await
        .map_err(|e| anyhow::anyhow!("cannot start the workflow engine: {e}"))?;
        // After the runs resumed: jobs of runs that go on wait for their nodes to adopt them.
        if let Err(e) = jobs.sweep().await {
            tracing::warn!(err = %e.message, "cannot sweep the container jobs left by a previous host");
        }
        crate::workspace::reaper::spawn(sessions.clone());
        // Before serving: a session opened now finds the pooled containers a previous Weft left.
        sessions.adopt_pool().await;
        sessions.spawn_pool();
        Ok(Self(Arc::new(Services {
            lineage,
            datasets,
            tracking,
            git,
            notebooks,
            sessions,
            projects,
            containers,
            scheduler,
            workflows,
            plugins,
            auth: Auth::new(store.clone(), &config.api),
            metrics,
            config: Arc::new(config),
            store,
        })))
    }
}

/// The substates domain routers take (axum's [`FromRef`]): each domain's router and handlers
/// name only the services they use, never `AppState`. Written out rather than derived:
/// `#[derive(FromRef)]` wants the services as fields of `AppState` itself, which would make
/// every clone of the state (one per layer and extractor of a request) clone each service.
macro_rules! substates {
    ($($field:ident: $ty:ty),* $(,)?) => {
        $(impl FromRef<AppState> for $ty {
            fn from_ref(state: &AppState) -> Self {
                state.$field.clone()
            }
        })*
    };
}

substates! {
    auth: Auth,
    plugins: Plugins,
    workflows: Workflows,
    scheduler: Scheduler,
    containers: Containers,
    projects: Projects,
    sessions: Sessions,
    notebooks: Notebooks,
    git: Git,
    tracking: Tracking,
    datasets: Datasets,
    lineage: Lineage,
}

impl std::ops::Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}
