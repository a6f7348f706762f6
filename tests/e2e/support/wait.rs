//! Waiting for a state nothing announces: poll a probe until it says the state holds, with a
//! deadline. One helper for every such wait, so a timeout always names what was awaited, the
//! test line that awaited it and the last state seen.

use std::fmt::Debug;
use std::future::Future;
use std::panic::Location;
use std::time::{Duration, Instant};

/// The longest pause between two probes (the first ones come quicker).
const MAX_PAUSE: Duration = Duration::from_millis(250);

/// Calls `probe` until it returns `Ok(value)` and returns the value; `Err(state)` means "not
/// yet, this is what I saw". Panics after `within` with `what`, the caller's line and the last
/// state seen. The probe may panic itself for a state that can never turn into the awaited one
/// (e.g. a session that failed).
#[track_caller]
pub fn until<T, S, F, Fut>(what: &str, within: Duration, probe: F) -> impl Future<Output = T>
where
    S: Debug,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, S>>,
{
    until_at(Location::caller(), what, within, probe)
}

/// [`until`] naming `caller` (for a helper that was itself given its caller's line).
pub async fn until_at<T, S, F, Fut>(
    caller: &'static Location<'static>,
    what: &str,
    within: Duration,
    mut probe: F,
) -> T
where
    S: Debug,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, S>>,
{
    {
        let deadline = Instant::now() + within;
        let mut pause = Duration::from_millis(10);
        loop {
            let last = match probe().await {
                Ok(value) => return value,
                Err(last) => last,
            };
            if Instant::now() >= deadline {
                gave_up(caller, what, within, &last);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(MAX_PAUSE);
        }
    }
}

/// [`until`] for a probe that blocks (a thread, not a task).
#[track_caller]
pub fn until_blocking<T, S: Debug>(
    what: &str,
    within: Duration,
    mut probe: impl FnMut() -> Result<T, S>,
) -> T {
    let caller = Location::caller();
    let deadline = Instant::now() + within;
    let mut pause = Duration::from_millis(10);
    loop {
        let last = match probe() {
            Ok(value) => return value,
            Err(last) => last,
        };
        if Instant::now() >= deadline {
            gave_up(caller, what, within, &last);
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(MAX_PAUSE);
    }
}

fn gave_up(caller: &Location<'_>, what: &str, within: Duration, last: &dyn Debug) -> ! {
    panic!("{caller}: waited {within:?} for {what}; last seen: {last:?}")
}
