//! Strategy `power-of-two-choices`: picks two different healthy instances at random and
//! sends the task to the one with the smaller predicted wait (then the shorter queue).
//!
//! Almost as good as checking every instance, at the cost of two predictions, and it avoids
//! herding every task onto the one instance that looks best. The random generator is seeded
//! with a fixed value and mixed with each task's id, so runs are reproducible.
//! Predictions come from [`ExecutionTimes`].

use weft_sdk::strategy::prelude::*;

/// The `power-of-two-choices` strategy.
#[derive(Debug)]
pub struct PowerOfTwoChoices {
    rng: Rng,
    times: ExecutionTimes,
}

/// FNV-1a, to mix a task id into the random stream.
fn hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl PowerOfTwoChoices {
    /// A strategy whose random choices start from `seed`.
    pub fn with_seed(seed: u64) -> Self {
        Self {
            rng: Rng::new(seed),
            times: ExecutionTimes::new(),
        }
    }

    fn better<'a>(&self, a: &'a Instance, b: &'a Instance) -> &'a Instance {
        let (pa, pb) = (self.times.predict(a), self.times.predict(b));
        let order = pa
            .expected_ms
            .total_cmp(&pb.expected_ms)
            .then(a.queue_length.cmp(&b.queue_length));
        if order.is_le() { a } else { b }
    }
}

impl Strategy for PowerOfTwoChoices {
    fn describe() -> StrategyDescription {
        StrategyDescription::new(
            "power-of-two-choices",
            "0.1.0",
            "The better (shorter predicted wait, then queue) of two random healthy instances",
        )
    }

    fn new() -> Self {
        Self::with_seed(0x5EED_0F2C_401C_E5AB)
    }

    fn select(&mut self, task: &Task, instances: &[Instance]) -> Result<String, String> {
        let healthy = healthy_instances(instances)?;
        if healthy.len() == 1 {
            return Ok(healthy[0].id.clone());
        }
        let mut rng = Rng::new(self.rng.next_u64() ^ hash(&task.id));
        let first = rng.below(healthy.len());
        let mut second = rng.below(healthy.len() - 1);
        if second >= first {
            second += 1;
        }
        Ok(self.better(healthy[first], healthy[second]).id.clone())
    }

    fn predict(&mut self, instance: &Instance) -> Prediction {
        self.times.predict(instance)
    }

    fn observe(&mut self, completion: &Completion) {
        self.times.observe(completion);
    }
}

weft_sdk::export_strategy!(PowerOfTwoChoices);

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

    fn task(id: usize) -> Task {
        Task::new(&format!("t{id}"), "m")
    }

    #[test]
    fn only_healthy_instances_and_never_the_worst() {
        let mut s = PowerOfTwoChoices::new();
        let all = [
            instance("a", 0, true),
            instance("b", 5, true),
            instance("c", 9, true),
            instance("d", 0, false),
        ];
        let mut seen = std::collections::BTreeSet::new();
        for i in 0..200 {
            let pick = s.select(&task(i), &all).unwrap();
            assert_ne!(pick, "d", "picked an unhealthy instance");
            // The instance with the longest queue loses every comparison.
            assert_ne!(pick, "c");
            seen.insert(pick);
        }
        assert_eq!(seen.into_iter().collect::<Vec<_>>(), ["a", "b"]);
    }

    #[test]
    fn single_healthy_instance_and_none() {
        let mut s = PowerOfTwoChoices::new();
        let all = [instance("a", 3, false), instance("b", 7, true)];
        assert_eq!(s.select(&task(0), &all).unwrap(), "b");
        assert!(s.select(&task(0), &all[..1]).is_err());
    }

    #[test]
    fn reproducible_for_a_seed() {
        let all: Vec<_> = (0..10)
            .map(|i| instance(&format!("i{i}"), i, true))
            .collect();
        let picks = |seed| {
            let mut s = PowerOfTwoChoices::with_seed(seed);
            (0..20)
                .map(|i| s.select(&task(i), &all).unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(picks(1), picks(1));
    }

    #[test]
    fn learned_times_beat_queue_length() {
        let mut s = PowerOfTwoChoices::new();
        for _ in 0..3 {
            for (id, ms) in [("slow", 500.0), ("fast", 5.0)] {
                s.observe(&Completion {
                    task_id: "x".into(),
                    instance_id: id.into(),
                    execution_ms: ms,
                    success: true,
                });
            }
        }
        let all = [instance("slow", 0, true), instance("fast", 4, true)];
        for i in 0..20 {
            assert_eq!(s.select(&task(i), &all).unwrap(), "fast");
        }
    }
}
