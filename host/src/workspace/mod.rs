//! What a student or data scientist touches: projects with their files, opened in workspace
//! sessions (code-server or Jupyter in a container).

pub mod config;
pub mod images;
pub mod keys;
pub mod origin;
pub mod paths;
pub mod projects;
pub mod proxy;
mod proxy_client;
pub mod quota;
pub mod reaper;
mod records;
pub mod routes;
pub mod sessions;
mod staging;
pub mod sync;
pub mod upstream;

pub use projects::{FileEntry, Project, Projects};
pub use sessions::Sessions;
