//! What a student or data scientist touches: projects with their files, opened in workspace
//! sessions (code-server or Jupyter in a container).

pub mod images;
pub mod paths;
pub mod projects;
pub mod routes;

pub use projects::{FileEntry, Project, Projects};
