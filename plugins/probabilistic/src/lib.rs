//! Strategy `probabilistic`: draws a wait for every healthy instance from the normal
//! distribution N(expected, error²) of its prediction and picks the smallest draw.
//!
//! An instance that is usually slower still gets a task now and then when its prediction is
//! uncertain, which keeps the learned figures of every instance fresh; an instance with a
//! confident, short prediction wins most of the time. Draws are clamped at 0. Predictions
//! (expected wait and error) come from [`ExecutionTimes`]: reported figures, else learned
//! mean and standard deviation. The generator has a fixed seed, so runs are reproducible.

use weft_sdk::strategy::prelude::*;

/// The `probabilistic` strategy.
#[derive(Debug)]
pub struct Probabilistic {
    rng: Rng,
    times: ExecutionTimes,
}

impl Probabilistic {
    /// A strategy whose draws start from `seed`.
    pub fn with_seed(seed: u64) -> Self {
        Self {
            rng: Rng::new(seed),
            times: ExecutionTimes::new(),
        }
    }
}

impl Strategy for Probabilistic {
    fn describe() -> StrategyDescription {
        StrategyDescription::new(
            "probabilistic",
            "0.1.0",
            "The smallest wait drawn from each healthy instance's N(expected, error) prediction",
        )
    }

    fn new() -> Self {
        Self::with_seed(0x0BAD_5EED_1234_5678)
    }

    fn select(&mut self, _task: &Task, instances: &[Instance]) -> Result<String, String> {
        let healthy = healthy_instances(instances)?;
        let mut best: Option<(f64, u32, &Instance)> = None;
        for instance in healthy {
            let p = self.times.predict(instance);
            let draw = self.rng.normal(p.expected_ms, p.error_ms).max(0.0);
            let key = (draw, instance.queue_length);
            if best.is_none_or(|(d, q, _)| key < (d, q)) {
                best = Some((draw, instance.queue_length, instance));
            }
        }
        Ok(best.expect("healthy_instances is never empty").2.id.clone())
    }

    fn predict(&mut self, instance: &Instance) -> Prediction {
        self.times.predict(instance)
    }

    fn observe(&mut self, completion: &Completion) {
        self.times.observe(completion);
    }
}

weft_sdk::export_strategy!(Probabilistic);

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(id: &str, expected: f64, error: f64) -> Instance {
        Instance {
            reported_expected_ms: Some(expected),
            reported_error_ms: Some(error),
            ..Instance::new(id, "m")
        }
    }

    fn task() -> Task {
        Task::new("t", "m")
    }

    fn share_of_a(a: Instance, b: Instance) -> f64 {
        let mut s = Probabilistic::new();
        let all = [a, b];
        let wins = (0..2000)
            .filter(|_| s.select(&task(), &all).unwrap() == "a")
            .count();
        wins as f64 / 2000.0
    }

    #[test]
    fn certain_predictions_behave_like_shortest_wait() {
        assert_eq!(
            share_of_a(instance("a", 10.0, 0.0), instance("b", 20.0, 0.0)),
            1.0
        );
    }

    #[test]
    fn uncertainty_spreads_the_choice() {
        // a ~ N(100, 30), b ~ N(120, 30): P(a < b) = Phi(20 / (30 * sqrt 2)) ~ 0.68.
        let share = share_of_a(instance("a", 100.0, 30.0), instance("b", 120.0, 30.0));
        assert!((0.63..0.73).contains(&share), "{share}");
    }

    #[test]
    fn refuses_without_healthy_instances_and_skips_unhealthy() {
        let mut s = Probabilistic::new();
        let mut sick = instance("sick", 0.0, 0.0);
        sick.healthy = false;
        assert!(s.select(&task(), &[sick.clone()]).is_err());
        let all = [sick, instance("ok", 1e6, 1.0)];
        assert_eq!(s.select(&task(), &all).unwrap(), "ok");
    }

    #[test]
    fn predict_returns_expected_and_error() {
        let mut s = Probabilistic::new();
        let p = s.predict(&instance("a", 40.0, 4.0));
        assert_eq!((p.expected_ms, p.error_ms), (40.0, 4.0));
    }
}
