//! Data versions: every project has a DVC remote inside Weft (`/dvc/<owner>/<project>`, served
//! to the real `dvc` client over its http remote and over WebDAV), its objects stored once per content in the
//! projects' storage (a local folder or S3) and verified on upload; datasets and their
//! versions under `/api/v1/datasets`, recorded from `.dvc` files (by hand, or on each push that
//! adds or changes one) or from a project's files, with diffs and storage accounting.
//!
//! Not here: the repositories (the git domain, whose push hook and reads this module uses) and
//! the projects' files (the workspace domain).

pub(crate) mod config;
mod file_list;
mod manifest;
mod object_rows;
mod objects;
mod records;
pub(crate) mod remote;
pub(crate) mod routes;
mod service;
mod webdav;

pub(crate) use service::Datasets;
