//! Weft's WebAssembly runtime: loads node and strategy components and calls them under limits.
//!
//! One [`Runtime`] per process owns the wasmtime engine (pooling allocator, epoch interruption),
//! the linkers for the `node` and `strategy` worlds and the on-disk cache of compiled
//! components. It knows nothing of HTTP or the database: the host hands it bytes, limits,
//! grants and a [`HostServices`] implementation, and gets typed results and errors back.

mod bindings;
mod cache;
mod call;
mod capabilities;
mod destinations;
mod engine;
mod error;
mod jobs;
mod limits;
mod log_budget;
mod node;
mod outgoing;
mod services;
mod state;
mod stderr;
mod strategy;
mod text;
mod value;

pub use cache::CacheOutcome;
pub use capabilities::{Capability, Grants};
pub use engine::{Runtime, RuntimeConfig};
pub use error::{CallError, LoadError};
pub use jobs::{JobExit, JobSpec};
pub use limits::Limits;
pub use node::{NodeDescription, NodePlugin, Port, port_names};
pub use services::{BoxFuture, HostServices, LogLevel, NoServices};
pub use strategy::{
    Completion, Decision, Instance, Prediction, StrategyDescription, StrategyInstance,
    StrategyPlugin, Task,
};
pub use value::{Value, ValueKind};

/// A loaded component of either world.
pub enum Plugin {
    /// A component of the `node` world.
    Node(NodePlugin),
    /// A component of the `strategy` world.
    Strategy(StrategyPlugin),
}

impl Plugin {
    /// `node` or `strategy`.
    pub fn kind(&self) -> &'static str {
        match self {
            Plugin::Node(_) => "node",
            Plugin::Strategy(_) => "strategy",
        }
    }
}

/// The SHA-256 of a component's bytes, hex: its identity in caches and storage.
pub fn content_hash(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}
