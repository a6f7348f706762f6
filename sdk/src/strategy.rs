//! Scheduling strategies: implement [`Strategy`] on a type and export it with
//! [`export_strategy!`](crate::export_strategy).
//!
//! The host keeps one instance warm, so the value built by [`Strategy::new`] lives across
//! calls and can learn from [`Strategy::observe`].

pub use crate::__private::strategy::exports::weft::plugin::strategy_api::{
    Completion, Instance, Prediction, StrategyDescription, Task,
};

/// Everything a strategy author usually needs, for `use weft_sdk::strategy::prelude::*;`.
pub mod prelude {
    pub use super::{
        Completion, ExecutionTimes, Instance, Prediction, Rng, RunningStats, Strategy,
        StrategyDescription, Task, healthy_instances,
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
    /// A task for `model` without metadata (handy in tests).
    pub fn new(id: &str, model: &str) -> Self {
        Self {
            id: id.into(),
            model: model.into(),
            metadata: String::new(),
        }
    }

    /// The task metadata parsed as JSON (`null` when empty or not JSON).
    pub fn metadata_json(&self) -> serde_json::Value {
        serde_json::from_str(&self.metadata).unwrap_or_default()
    }
}

impl Instance {
    /// A healthy, idle instance of `model` that reports no prediction (handy in tests; adjust
    /// fields with struct update syntax).
    pub fn new(id: &str, model: &str) -> Self {
        Self {
            id: id.into(),
            model: model.into(),
            host: "localhost".into(),
            queue_length: 0,
            healthy: true,
            reported_expected_ms: None,
            reported_error_ms: None,
        }
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

/// Mean and standard deviation of a stream of samples (Welford's algorithm), for learning
/// execution times from [`Strategy::observe`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RunningStats {
    count: u64,
    mean: f64,
    m2: f64,
}

impl RunningStats {
    /// No samples yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one sample; non-finite samples are ignored.
    pub fn add(&mut self, sample: f64) {
        if !sample.is_finite() {
            return;
        }
        self.count += 1;
        let delta = sample - self.mean;
        self.mean += delta / self.count as f64;
        self.m2 += delta * (sample - self.mean);
    }

    /// How many samples were added.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The mean, or `None` before the first sample.
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then_some(self.mean)
    }

    /// The sample standard deviation, or `None` before the second sample.
    pub fn std_dev(&self) -> Option<f64> {
        (self.count > 1).then(|| (self.m2 / (self.count - 1) as f64).sqrt())
    }
}

/// Execution times learned per instance from completions, and the wait predictions built
/// on them; the usual way to implement [`Strategy::predict`] and [`Strategy::observe`].
///
/// The prediction for a task queued on an instance is:
/// - the instance's own report (`reported-expected-ms`, `reported-error-ms`) when it sent one;
/// - otherwise the learned mean execution time × (`queue-length` + 1), with an error of the
///   learned standard deviation × √(`queue-length` + 1) (independent tasks add variances).
///
/// An instance without samples yet uses the figures learned over all instances; before any
/// sample at all the expected wait is 0. When no standard deviation is known (fewer than two
/// samples, or a report without error) the error is half the expected wait.
#[derive(Debug, Clone, Default)]
pub struct ExecutionTimes {
    per_instance: std::collections::BTreeMap<String, RunningStats>,
    all: RunningStats,
}

impl ExecutionTimes {
    /// Nothing learned yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Learns from a completion; failed tasks are ignored (a fast failure says little about
    /// how long real work takes).
    pub fn observe(&mut self, completion: &Completion) {
        if !completion.success
            || !completion.execution_ms.is_finite()
            || completion.execution_ms < 0.0
        {
            return;
        }
        self.per_instance
            .entry(completion.instance_id.clone())
            .or_default()
            .add(completion.execution_ms);
        self.all.add(completion.execution_ms);
    }

    /// What was learned about instance `id` (its own samples only).
    pub fn stats(&self, id: &str) -> Option<&RunningStats> {
        self.per_instance.get(id)
    }

    /// The mean execution time of one task on instance `id`: its own mean, else the mean over
    /// all instances, else `None`.
    pub fn mean_ms(&self, id: &str) -> Option<f64> {
        self.stats(id)
            .and_then(RunningStats::mean)
            .or_else(|| self.all.mean())
    }

    /// The predicted wait for a task queued on `instance` now (see the type's documentation).
    pub fn predict(&self, instance: &Instance) -> Prediction {
        if let Some(expected) = instance.reported_expected_ms.filter(|e| e.is_finite()) {
            let expected = expected.max(0.0);
            let error = instance
                .reported_error_ms
                .filter(|e| e.is_finite() && *e >= 0.0)
                .unwrap_or(expected * 0.5);
            return Prediction {
                expected_ms: expected,
                error_ms: error,
            };
        }
        let tasks = f64::from(instance.queue_length) + 1.0;
        let own = self.stats(&instance.id);
        let mean = own
            .and_then(RunningStats::mean)
            .or_else(|| self.all.mean())
            .unwrap_or(0.0);
        let expected = mean * tasks;
        let error = match own
            .and_then(RunningStats::std_dev)
            .or_else(|| self.all.std_dev())
        {
            Some(std_dev) => std_dev * tasks.sqrt(),
            None => expected * 0.5,
        };
        Prediction {
            expected_ms: expected,
            error_ms: error,
        }
    }
}

/// A small, fast pseudo-random generator (SplitMix64) for randomised strategies.
///
/// Deterministic for a given seed, which keeps strategies reproducible and testable; it is
/// not suitable for anything security-related.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform float in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A uniform index in `0..n` (`n` must be positive).
    pub fn below(&mut self, n: usize) -> usize {
        assert!(n > 0, "Rng::below(0)");
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }

    /// A sample of the normal distribution N(`mean`, `std_dev`²) (Box-Muller).
    pub fn normal(&mut self, mean: f64, std_dev: f64) -> f64 {
        let u1 = 1.0 - self.next_f64(); // in (0, 1], so ln is finite
        let u2 = self.next_f64();
        let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        mean + std_dev * z
    }
}

/// Exports a type implementing [`Strategy`] as the component's `weft:plugin/strategy-api`
/// interface (making the crate a component of the `weft:plugin/strategy` world), keeping one
/// value of it alive between calls.
///
/// Call it once, at the crate root of a `cdylib`.
#[macro_export]
macro_rules! export_strategy {
    ($strategy:ty) => {
        const _: () = {
            // Only wasm32 gets the component exports: their symbol names (`weft:plugin/...`)
            // cannot be linked into a native `cdylib`, and `cargo test` needs none of them.
            #[allow(dead_code)]
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

            // Natively, mark the type as used, so a private plugin type is no dead code.
            #[cfg(not(target_arch = "wasm32"))]
            const _: fn() -> $crate::strategy::StrategyDescription =
                <$strategy as $crate::strategy::Strategy>::describe;

            #[cfg(target_arch = "wasm32")]
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
            healthy,
            ..Instance::new(id, "m")
        }
    }

    fn completion(instance: &str, ms: f64, success: bool) -> Completion {
        Completion {
            task_id: "t".into(),
            instance_id: instance.into(),
            execution_ms: ms,
            success,
        }
    }

    #[test]
    fn execution_times_predict_from_reports_then_learning() {
        let mut times = ExecutionTimes::new();
        let mut a = instance("a", true);
        a.queue_length = 3;
        // Nothing learned: zero.
        assert_eq!(
            times.predict(&a),
            Prediction {
                expected_ms: 0.0,
                error_ms: 0.0
            }
        );
        for ms in [90.0, 110.0] {
            times.observe(&completion("a", ms, true));
        }
        times.observe(&completion("a", 5000.0, false));
        let p = times.predict(&a);
        assert_eq!(p.expected_ms, 400.0);
        assert!((p.error_ms - 14.142_135 * 2.0).abs() < 1e-3, "{p:?}");
        // Another instance borrows the global figures.
        let b = instance("b", true);
        assert_eq!(times.predict(&b).expected_ms, 100.0);
        // A report wins.
        a.reported_expected_ms = Some(42.0);
        assert_eq!(
            times.predict(&a),
            Prediction {
                expected_ms: 42.0,
                error_ms: 21.0
            }
        );
        a.reported_error_ms = Some(3.0);
        assert_eq!(times.predict(&a).error_ms, 3.0);
    }

    #[test]
    fn running_stats_match_the_textbook() {
        let mut stats = RunningStats::new();
        assert_eq!((stats.mean(), stats.std_dev()), (None, None));
        for x in [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0] {
            stats.add(x);
        }
        stats.add(f64::NAN);
        assert_eq!(stats.count(), 8);
        assert_eq!(stats.mean(), Some(5.0));
        assert!((stats.std_dev().unwrap() - 2.138_089_935).abs() < 1e-6);
    }

    #[test]
    fn rng_is_deterministic_and_roughly_uniform() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        assert_eq!(a.next_u64(), b.next_u64());
        let mut counts = [0u32; 4];
        for _ in 0..4000 {
            counts[a.below(4)] += 1;
        }
        assert!(
            counts.iter().all(|&c| (800..1200).contains(&c)),
            "{counts:?}"
        );
        let mean = (0..4000).map(|_| a.normal(10.0, 2.0)).sum::<f64>() / 4000.0;
        assert!((mean - 10.0).abs() < 0.2, "{mean}");
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
