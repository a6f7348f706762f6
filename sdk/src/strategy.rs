//! Scheduling strategies: implement [`Strategy`] on a type and export it with
//! [`export_strategy!`](crate::export_strategy).
//!
//! The host keeps one instance warm, so the value built by [`Strategy::new`] lives across
//! calls and can learn from [`Strategy::observe`].

pub use crate::__private::strategy::exports::weft::plugin::strategy::{
    Completion, Instance, Prediction, StrategyDescription, Task,
};

/// Everything a strategy author usually needs, for `use weft_sdk::strategy::prelude::*;`.
pub mod prelude {
    pub use super::{
        Completion, Instance, Prediction, Strategy, StrategyDescription, Task, healthy_instances,
    };
}

/// A scheduling strategy with state kept between calls.
pub trait Strategy: 'static {
    /// Name, version and summary.
    fn describe() -> StrategyDescription;

    /// The initial state, built before the first call.
    fn new() -> Self;

    /// Chooses the instance (by id) that should run `task`. Must only pick a healthy
    /// instance, and return an error message when there is none.
    fn select(&mut self, task: &Task, instances: &[Instance]) -> Result<String, String>;

    /// Predicts the wait for a new task queued on `instance`.
    fn predict(&mut self, instance: &Instance) -> Prediction;

    /// Learns from a finished task.
    fn observe(&mut self, completion: &Completion);
}

impl StrategyDescription {
    /// A description from its three parts.
    pub fn new(name: &str, version: &str, summary: &str) -> Self {
        Self {
            name: name.into(),
            version: version.into(),
            summary: summary.into(),
        }
    }
}

impl Task {
    /// The task metadata parsed as JSON (`null` when empty or not JSON).
    pub fn metadata_json(&self) -> serde_json::Value {
        serde_json::from_str(&self.metadata).unwrap_or_default()
    }
}

/// The healthy instances among `instances`, or the error message `select` should return
/// when there is none.
pub fn healthy_instances(instances: &[Instance]) -> Result<Vec<&Instance>, String> {
    let healthy: Vec<&Instance> = instances.iter().filter(|i| i.healthy).collect();
    if healthy.is_empty() {
        Err(format!(
            "no healthy instance among the {} offered",
            instances.len()
        ))
    } else {
        Ok(healthy)
    }
}

/// Exports a type implementing [`Strategy`] as the component's `weft:plugin/strategy`
/// interface, keeping one value of it alive between calls.
///
/// Call it once, at the crate root of a `cdylib`.
#[macro_export]
macro_rules! export_strategy {
    ($strategy:ty) => {
        const _: () = {
            struct WeftStrategyExport;

            ::std::thread_local! {
                static STATE: ::std::cell::RefCell<::std::option::Option<$strategy>> =
                    const { ::std::cell::RefCell::new(::std::option::Option::None) };
            }

            fn with_state<R>(f: impl FnOnce(&mut $strategy) -> R) -> R {
                STATE.with_borrow_mut(|state| {
                    f(state.get_or_insert_with(<$strategy as $crate::strategy::Strategy>::new))
                })
            }

            impl $crate::__private::StrategyGuest for WeftStrategyExport {
                fn describe() -> $crate::strategy::StrategyDescription {
                    <$strategy as $crate::strategy::Strategy>::describe()
                }

                fn select(
                    task: $crate::strategy::Task,
                    instances: ::std::vec::Vec<$crate::strategy::Instance>,
                ) -> ::std::result::Result<::std::string::String, ::std::string::String> {
                    with_state(|s| $crate::strategy::Strategy::select(s, &task, &instances))
                }

                fn predict(instance: $crate::strategy::Instance) -> $crate::strategy::Prediction {
                    with_state(|s| $crate::strategy::Strategy::predict(s, &instance))
                }

                fn observe(completion: $crate::strategy::Completion) {
                    with_state(|s| $crate::strategy::Strategy::observe(s, &completion))
                }
            }

            $crate::__private::export_strategy_world!(
                WeftStrategyExport with_types_in $crate::__private::strategy
            );
        };
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(id: &str, healthy: bool) -> Instance {
        Instance {
            id: id.into(),
            model: "m".into(),
            host: "h".into(),
            queue_length: 0,
            healthy,
            reported_expected_ms: None,
            reported_error_ms: None,
        }
    }

    #[test]
    fn healthy_instances_filters_and_reports_none() {
        let all = [instance("a", false), instance("b", true)];
        let ids: Vec<_> = healthy_instances(&all)
            .unwrap()
            .iter()
            .map(|i| i.id.as_str())
            .collect();
        assert_eq!(ids, ["b"]);
        let err = healthy_instances(&all[..1]).unwrap_err();
        assert!(err.contains("no healthy instance"), "{err}");
    }
}
