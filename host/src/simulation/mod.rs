//! Developer tools around the scheduler, kept out of the service: a simulated SwarmPilot task
//! instance (`weft task-instance`) and the replay of recorded traces through strategies
//! (`weft scheduler replay`).

pub(crate) mod replay;
pub(crate) mod task_instance;
