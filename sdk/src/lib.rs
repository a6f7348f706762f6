//! # weft-sdk
//!
//! Write [Weft](https://example.invalid/weft) workflow nodes and scheduling strategies in plain
//! Rust and build them as WebAssembly components with
//! `cargo build --release --target wasm32-wasip2`.
//!
//! A plugin is a `cdylib` crate with one type implementing [`node::Node`] (or
//! [`strategy::Strategy`]) and one macro call, [`export_node!`] (or [`export_strategy!`]).
//! The result is a component of the `weft:plugin/node` world (exporting the `node-api`
//! interface) or of the `weft:plugin/strategy` world (exporting `strategy-api`), and of that
//! world only. The WIT contract is the `wit/` folder of the Weft repository, next to `sdk/`.
//!
//! ```toml
//! [lib]
//! crate-type = ["cdylib"]
//!
//! [dependencies]
//! weft-sdk = { path = "../weft/sdk" }
//! serde = { version = "1", features = ["derive"] }
//! ```
//!
//! ## A node
//!
//! ```
//! use weft_sdk::node::prelude::*;
//!
//! /// Computes the n-th Fibonacci number.
//! struct Fibo;
//!
//! #[derive(Deserialize)]
//! struct Config {
//!     n: Option<u32>,
//! }
//!
//! impl Node for Fibo {
//!     type Config = Config;
//!
//!     fn describe() -> Description {
//!         Description::new("fibo", "0.1.0", "The n-th Fibonacci number")
//!             .input(Port::new("n", Kind::Integer).optional().summary("overrides config.n"))
//!             .output(Port::new("out", Kind::Integer))
//!             .config_schema(json!({
//!                 "type": "object",
//!                 "properties": { "n": { "type": "integer", "minimum": 0 } }
//!             }))
//!     }
//!
//!     fn run(config: Config, inputs: Inputs) -> Result<Outputs, NodeError> {
//!         let n = match inputs.opt::<u32>("n")? {
//!             Some(n) => n,
//!             None => config.n.ok_or_else(|| NodeError::invalid_config("`n` is required"))?,
//!         };
//!         if n > 93 {
//!             return Err(NodeError::invalid_input(format!("fib({n}) overflows a u64")));
//!         }
//!         weft_sdk::info!("computing fib({n})");
//!         let (mut a, mut b) = (0u64, 1u64);
//!         for _ in 0..n {
//!             (a, b) = (b, a.wrapping_add(b));
//!         }
//!         Ok(Outputs::new().json("out", a))
//!     }
//! }
//!
//! weft_sdk::export_node!(Fibo);
//!
//! // Natively, in unit tests, run it the way the host does:
//! let out = weft_sdk::node::call::<Fibo>(r#"{"n": 10}"#, Inputs::new()).unwrap();
//! assert_eq!(out.get_json("out"), Some(json!(55)));
//! let err = weft_sdk::node::call::<Fibo>(r#"{"n": "ten"}"#, Inputs::new()).unwrap_err();
//! assert_eq!(err.kind, ErrorKind::InvalidConfig);
//! ```
//!
//! ## A strategy
//!
//! ```
//! use weft_sdk::strategy::prelude::*;
//!
//! /// Cycles through the healthy instances.
//! #[derive(Default)]
//! struct RoundRobin {
//!     next: usize,
//! }
//!
//! impl Strategy for RoundRobin {
//!     fn describe() -> StrategyDescription {
//!         StrategyDescription::new("round-robin", "0.1.0", "Each healthy instance in turn")
//!     }
//!
//!     fn new() -> Self {
//!         Self::default()
//!     }
//!
//!     fn select(&mut self, _task: &Task, instances: &[Instance]) -> Result<String, String> {
//!         let healthy = healthy_instances(instances)?;
//!         let choice = healthy[self.next % healthy.len()];
//!         self.next = self.next.wrapping_add(1);
//!         Ok(choice.id.clone())
//!     }
//!
//!     fn predict(&mut self, instance: &Instance) -> Prediction {
//!         Prediction {
//!             expected_ms: instance.reported_expected_ms.unwrap_or(0.0),
//!             error_ms: instance.reported_error_ms.unwrap_or(0.0),
//!         }
//!     }
//!
//!     fn observe(&mut self, _completion: &Completion) {}
//! }
//!
//! weft_sdk::export_strategy!(RoundRobin);
//! ```
//!
//! ## Host services
//!
//! - [`log`] (and the [`info!`]-style macros) and [`progress`]: always available.
//! - [`secrets`], [`artifacts`], [`http`] and [`jobs`] (container jobs): nodes only, and only
//!   once an administrator granted the capability the node declares (`"secrets"`,
//!   `"artifacts"`, `"http"`, `"jobs"`); otherwise the host answers with a `denied` error.
//!
//! Everything compiles natively too, so `cargo test` works on a plugin crate: logging and
//! progress then go to standard error, and secrets, artifacts and HTTP return an error.
//! Keep the logic of a plugin in plain functions (or call [`node::call`]) and test those.

pub mod artifacts;
pub mod http;
pub mod jobs;
pub mod log;
pub mod node;
pub mod secrets;
pub mod strategy;

#[doc(hidden)]
pub mod __private;

pub use log::progress;
pub use serde;
pub use serde_json;

/// The error host services return when called outside a Weft host (in native tests).
fn not_in_host(what: &str) -> node::NodeError {
    node::NodeError::failed(format!(
        "{what}: host services are only available inside a Weft host (wasm32-wasip2)"
    ))
}
