//! Strategy `shortest-expected-wait`: the healthy instance with the smallest predicted wait.
//!
//! The prediction for each instance is its own report when it sends one, else the mean
//! execution time learned from completions on that instance × (queue length + 1) (see
//! [`ExecutionTimes`]). Ties go to the shorter queue, then to the smaller id, so the choice
//! is deterministic.

use std::cmp::Ordering;

use weft_sdk::strategy::prelude::*;

/// The `shortest-expected-wait` strategy.
#[derive(Debug, Default)]
pub struct ShortestExpectedWait {
    times: ExecutionTimes,
}

impl ShortestExpectedWait {
    fn rank(&self, a: &Instance, b: &Instance) -> Ordering {
        let (pa, pb) = (self.times.predict(a), self.times.predict(b));
        pa.expected_ms
            .total_cmp(&pb.expected_ms)
            .then(a.queue_length.cmp(&b.queue_length))
            .then_with(|| a.id.cmp(&b.id))
    }
}

impl Strategy for ShortestExpectedWait {
    fn describe() -> StrategyDescription {
        StrategyDescription::new(
            "shortest-expected-wait",
            "0.1.0",
            "The healthy instance with the least predicted wait (reported, else learned mean \
             execution time x (queue + 1))",
        )
    }

    fn new() -> Self {
        Self::default()
    }

    fn select(&mut self, _task: &Task, instances: &[Instance]) -> Result<String, String> {
        let healthy = healthy_instances(instances)?;
        let best = healthy
            .into_iter()
            .min_by(|a, b| self.rank(a, b))
            .expect("healthy_instances is never empty");
        Ok(best.id.clone())
    }

    fn predict(&mut self, instance: &Instance) -> Prediction {
        self.times.predict(instance)
    }

    fn observe(&mut self, completion: &Completion) {
        self.times.observe(completion);
    }
}

weft_sdk::export_strategy!(ShortestExpectedWait);

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(id: &str, queue: u32, reported: Option<f64>) -> Instance {
        Instance {
            queue_length: queue,
            reported_expected_ms: reported,
            ..Instance::new(id, "m")
        }
    }

    fn task() -> Task {
        Task::new("t", "m")
    }

    fn done(s: &mut ShortestExpectedWait, instance: &str, ms: f64) {
        s.observe(&Completion {
            task_id: "t".into(),
            instance_id: instance.into(),
            execution_ms: ms,
            success: true,
        });
    }

    #[test]
    fn prefers_fast_instances_even_with_longer_queues() {
        let mut s = ShortestExpectedWait::new();
        for _ in 0..3 {
            done(&mut s, "slow", 100.0);
            done(&mut s, "fast", 10.0);
        }
        // slow: 100 x 1 = 100; fast: 10 x 4 = 40.
        let all = [instance("slow", 0, None), instance("fast", 3, None)];
        assert_eq!(s.select(&task(), &all).unwrap(), "fast");
        // fast: 10 x 12 = 120 > 100.
        let all = [instance("slow", 0, None), instance("fast", 11, None)];
        assert_eq!(s.select(&task(), &all).unwrap(), "slow");
    }

    #[test]
    fn reported_predictions_win_and_ties_go_to_shorter_queues() {
        let mut s = ShortestExpectedWait::new();
        let all = [instance("a", 5, Some(50.0)), instance("b", 0, Some(80.0))];
        assert_eq!(s.select(&task(), &all).unwrap(), "a");
        // Nothing known: every wait is 0, so the shortest queue wins.
        let all = [
            instance("a", 2, None),
            instance("b", 1, None),
            instance("c", 1, None),
        ];
        assert_eq!(s.select(&task(), &all).unwrap(), "b");
    }

    #[test]
    fn never_picks_an_unhealthy_instance_and_refuses_when_none() {
        let mut s = ShortestExpectedWait::new();
        let mut sick = instance("sick", 0, Some(1.0));
        sick.healthy = false;
        let all = [sick.clone(), instance("ok", 9, Some(1000.0))];
        assert_eq!(s.select(&task(), &all).unwrap(), "ok");
        assert!(
            s.select(&task(), &[sick])
                .unwrap_err()
                .contains("no healthy instance")
        );
    }

    #[test]
    fn predict_uses_learned_means() {
        let mut s = ShortestExpectedWait::new();
        done(&mut s, "a", 30.0);
        done(&mut s, "a", 50.0);
        let p = s.predict(&instance("a", 1, None));
        assert_eq!(p.expected_ms, 80.0);
        assert!(p.error_ms > 0.0);
    }
}
