//! Code versions: every project is a git repository, kept in the data folder beside the
//! project's files (which stay in their storage, a local folder or S3). The API under
//! `/api/v1/git` commits the files, lists history, branches, diffs, reads old versions, checks
//! them out, merges and reverts (libgit2, in memory, on a blocking thread); `/git/...` serves
//! the real `git` client over smart HTTP through `git http-backend` itself.
//!
//! Not here: the project's files and sessions (the workspace domain, whose projects face this
//! module uses, never the other way round but for the two hooks it offers).

mod archive;
mod backend;
mod browse;
mod changes;
pub(crate) mod config;
mod files;
mod gitignore;
mod history;
mod hook;
pub(crate) mod http;
mod limits;
mod merge;
mod pushed;
mod records;
mod refs;
mod repo;
pub(crate) mod routes;
mod service;

pub(crate) use pushed::{PushHook, Pushed};
pub(crate) use service::Git;
