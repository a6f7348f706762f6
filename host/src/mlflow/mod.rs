//! Model versions: an MLflow-compatible tracking server inside Weft. The official `mlflow`
//! client logs to it unchanged (`MLFLOW_TRACKING_URI=http://HOST:8080/mlflow`,
//! `MLFLOW_TRACKING_TOKEN=<Weft token>`): experiments, runs with params, metrics and tags,
//! MLflow 3's logged models, the model registry, and artifacts through MLflow's proxy paths.
//! Records live in Weft's database, artifacts in the projects' storage (a local folder or S3)
//! below `.mlflow/`, streamed both ways.
//!
//! The seed's `/api/v1/models` (`models_routes`) is a view of the same records.
//!
//! Not here: the projects and their files (the workspace domain, whose storage this module
//! borrows).

mod artifacts;
mod compare;
mod experiments;
mod filter;
mod logged_models;
mod models;
pub(crate) mod models_routes;
mod registry;
mod registry_routes;
pub(crate) mod routes;
mod run_view;
mod runs;
mod search;
mod service;
mod wire;

pub(crate) use service::Tracking;
