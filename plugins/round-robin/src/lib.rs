//! Strategy `round-robin`: each healthy instance in turn.
//!
//! Instances are taken in order of their ids, continuing after the one chosen last, so the
//! rotation stays fair when instances join, leave or turn unhealthy between calls.
//! Predictions come from [`ExecutionTimes`] (reported figures, else learned execution times).

use weft_sdk::strategy::prelude::*;

/// The `round-robin` strategy.
#[derive(Debug, Default)]
pub struct RoundRobin {
    last: Option<String>,
    times: ExecutionTimes,
}

impl Strategy for RoundRobin {
    fn describe() -> StrategyDescription {
        StrategyDescription::new(
            "round-robin",
            "0.1.0",
            "Each healthy instance in turn (by id, continuing after the last one chosen)",
        )
    }

    fn new() -> Self {
        Self::default()
    }

    fn select(&mut self, _task: &Task, instances: &[Instance]) -> Result<String, String> {
        let mut healthy = healthy_instances(instances)?;
        healthy.sort_by(|a, b| a.id.cmp(&b.id));
        let next = match &self.last {
            Some(last) => healthy.iter().find(|i| i.id > *last).unwrap_or(&healthy[0]),
            None => &healthy[0],
        };
        self.last = Some(next.id.clone());
        Ok(next.id.clone())
    }

    fn predict(&mut self, instance: &Instance) -> Prediction {
        self.times.predict(instance)
    }

    fn observe(&mut self, completion: &Completion) {
        self.times.observe(completion);
    }
}

weft_sdk::export_strategy!(RoundRobin);

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(id: &str, healthy: bool) -> Instance {
        Instance {
            healthy,
            ..Instance::new(id, "m")
        }
    }

    fn task() -> Task {
        Task::new("t", "m")
    }

    #[test]
    fn cycles_over_healthy_instances_in_id_order() {
        let mut rr = RoundRobin::new();
        let all = [
            instance("c", true),
            instance("a", true),
            instance("b", false),
        ];
        let picks: Vec<_> = (0..4).map(|_| rr.select(&task(), &all).unwrap()).collect();
        assert_eq!(picks, ["a", "c", "a", "c"]);
    }

    #[test]
    fn keeps_rotating_when_the_set_changes() {
        let mut rr = RoundRobin::new();
        assert_eq!(
            rr.select(&task(), &[instance("a", true), instance("b", true)])
                .unwrap(),
            "a"
        );
        // `b` left, `c` joined: continue after `a`.
        let now = [instance("a", true), instance("c", true)];
        assert_eq!(rr.select(&task(), &now).unwrap(), "c");
        assert_eq!(rr.select(&task(), &now).unwrap(), "a");
    }

    #[test]
    fn refuses_without_healthy_instances() {
        let mut rr = RoundRobin::new();
        let err = rr.select(&task(), &[instance("a", false)]).unwrap_err();
        assert!(err.contains("no healthy instance"), "{err}");
        assert!(rr.select(&task(), &[]).is_err());
    }

    #[test]
    fn predicts_from_learned_times() {
        let mut rr = RoundRobin::new();
        rr.observe(&Completion {
            task_id: "t".into(),
            instance_id: "a".into(),
            execution_ms: 20.0,
            success: true,
        });
        let mut a = instance("a", true);
        a.queue_length = 1;
        assert_eq!(rr.predict(&a).expected_ms, 40.0);
    }
}
