//! # weft-sdk
//!
//! Write [Weft](https://example.invalid/weft) workflow nodes and scheduling strategies in plain
//! Rust and build them as WebAssembly components with
//! `cargo build --release --target wasm32-wasip2`.
//!
//! A plugin is a `cdylib` crate with one type implementing [`node::Node`] (or
//! [`strategy::Strategy`]) and one macro call, [`export_node!`] (or [`export_strategy!`]).
//!
//! ## A node
//!
//! ```
//! use weft_sdk::node::prelude::*;
//!
//! /// Computes the n-th Fibonacci number.
//! struct Fibo;
//!
//! #[derive(serde::Deserialize)]
//! struct Config {
//!     n: Option<u32>,
//! }
//!
//! impl Node for Fibo {
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
//!     fn run(ctx: &Context, _config: Value, inputs: Inputs) -> Result<Outputs, NodeError> {
//!         let config: Config = ctx.config()?;
//!         let n = match inputs.opt::<u32>("n")? {
//!             Some(n) => n,
//!             None => config.n.ok_or_else(|| NodeError::invalid_config("`n` is required"))?,
//!         };
//!         weft_sdk::info!("computing fib({n})");
//!         let (mut a, mut b) = (0u64, 1u64);
//!         for _ in 0..n {
//!             let next = a.checked_add(b).ok_or_else(|| NodeError::invalid_input("overflow"))?;
//!             (a, b) = (b, next);
//!         }
//!         Ok(Outputs::new().json("out", a))
//!     }
//! }
//!
//! weft_sdk::export_node!(Fibo);
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
//!         self.next = self.next.wrapping_add(1);
//!         Ok(healthy[self.next % healthy.len()].id.clone())
//!     }
//!
//!     fn predict(&mut self, instance: &Instance) -> Prediction {
//!         Prediction { expected_ms: instance.reported_expected_ms.unwrap_or(0.0), error_ms: 0.0 }
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
//! - [`secrets`], [`artifacts`] and [`http`]: nodes only, and only once an administrator granted
//!   the capability the node declares (`"secrets"`, `"artifacts"`, `"http"`); otherwise the
//!   host answers with a `denied` error.
//!
//! Natively (for `cargo test`) everything compiles, but calling a host service panics: keep
//! the logic of a plugin in plain functions and test those.

pub mod artifacts;
pub mod http;
pub mod log;
pub mod node;
pub mod secrets;
pub mod strategy;

#[doc(hidden)]
pub mod __private;

pub use serde_json;

/// Reports progress of the current call; `fraction` runs from 0.0 to 1.0.
pub fn progress(fraction: f32, message: &str) {
    __private::node::weft::plugin::host::progress(fraction, message);
}
