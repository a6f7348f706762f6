//! What a student or data scientist touches: projects with their files, opened in workspace
//! sessions (code-server or Jupyter in a container).

pub(crate) mod config;
pub(crate) mod images;
pub(crate) mod keys;
pub(crate) mod origin;
pub(crate) mod paths;
pub(crate) mod pool;
pub(crate) mod projects;
pub mod proxy;
mod proxy_client;
mod pump;
pub(crate) mod quota;
pub(crate) mod reaper;
mod records;
pub(crate) mod routes;
pub mod sessions;
pub(crate) mod staging;
pub(crate) mod sync;
pub mod upstream;

pub(crate) use projects::{FileEntry, Limits, Project, ProjectEvent, ProjectHook, Projects};
pub(crate) use sessions::Sessions;
