//! Example strategy `least-loaded`: sends each task to the healthy instance with the fewest
//! queued tasks; ties go to the instance that has been chosen least often so far (state kept
//! between calls), then to the smaller id.
//!
//! Predictions use the SDK's [`ExecutionTimes`], which learns each instance's execution time
//! from [`Strategy::observe`].
//!
//! Build: `cargo build --release --target wasm32-wasip2`, then load
//! `target/wasm32-wasip2/release/least_loaded.wasm` into Weft (see `examples/README.md`).

use std::collections::BTreeMap;

use weft_sdk::strategy::prelude::*;

/// The strategy's state: one value lives as long as the host keeps the strategy loaded.
#[derive(Debug, Default)]
pub struct LeastLoaded {
    chosen: BTreeMap<String, u64>,
    times: ExecutionTimes,
}

impl Strategy for LeastLoaded {
    fn describe() -> StrategyDescription {
        StrategyDescription::new(
            "least-loaded",
            "0.1.0",
            "The healthy instance with the fewest queued tasks",
        )
    }

    fn new() -> Self {
        Self::default()
    }

    fn select(&mut self, _task: &Task, instances: &[Instance]) -> Result<String, String> {
        // `healthy_instances` returns the error message the host expects when none is healthy.
        let healthy = healthy_instances(instances)?;
        let chosen = |i: &Instance| self.chosen.get(&i.id).copied().unwrap_or(0);
        let best = healthy
            .into_iter()
            .min_by(|a, b| {
                (a.queue_length, chosen(a), &a.id).cmp(&(b.queue_length, chosen(b), &b.id))
            })
            .expect("healthy_instances is never empty");
        *self.chosen.entry(best.id.clone()).or_default() += 1;
        Ok(best.id.clone())
    }

    fn predict(&mut self, instance: &Instance) -> Prediction {
        self.times.predict(instance)
    }

    fn observe(&mut self, completion: &Completion) {
        self.times.observe(completion);
    }
}

weft_sdk::export_strategy!(LeastLoaded);

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(id: &str, queue: u32, healthy: bool) -> Instance {
        Instance {
            queue_length: queue,
            healthy,
            ..Instance::new(id, "m")
        }
    }

    fn task() -> Task {
        Task::new("t", "m")
    }

    #[test]
    fn picks_the_shortest_healthy_queue() {
        let mut s = LeastLoaded::new();
        let all = [
            instance("a", 4, true),
            instance("b", 1, true),
            instance("c", 0, false),
        ];
        assert_eq!(s.select(&task(), &all).unwrap(), "b");
    }

    #[test]
    fn spreads_ties_using_its_state() {
        let mut s = LeastLoaded::new();
        let all = [instance("a", 0, true), instance("b", 0, true)];
        let picks: Vec<_> = (0..4).map(|_| s.select(&task(), &all).unwrap()).collect();
        assert_eq!(picks, ["a", "b", "a", "b"]);
    }

    #[test]
    fn refuses_when_nothing_is_healthy() {
        let mut s = LeastLoaded::new();
        assert!(s.select(&task(), &[instance("a", 0, false)]).is_err());
    }
}
