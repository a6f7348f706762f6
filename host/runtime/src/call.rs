//! One guarded call: a fresh store under limits, a wall-clock timeout, and failures sorted into
//! [`CallError`]s.

use crate::capabilities::Grants;
use crate::engine::{EPOCH_TICK, Runtime};
use crate::error::{CallError, LoadError, chain};
use crate::limits::{LimitHit, Limits};
use crate::services::{HostServices, NoServices};
use crate::state::PluginState;
use std::sync::Arc;
use wasmtime::component::{Component, types::ComponentItem};
use wasmtime::{Store, UpdateDeadline};

/// `describe` only returns constants: an upload whose `describe` takes longer is refused.
const DESCRIBE_LIMITS: Limits = Limits {
    memory_bytes: 64 << 20,
    cpu_ms: 2_000,
    timeout_ms: 5_000,
    log_messages: 100,
    log_bytes: 64 << 10,
};

/// A store for one call (or one strategy instance) under `limits` and `grants`.
pub(crate) fn new_store(
    rt: &Runtime,
    limits: &Limits,
    grants: Grants,
    services: Arc<dyn HostServices>,
) -> Store<PluginState> {
    let ticks = limits.cpu_ms.div_ceil(EPOCH_TICK.as_millis() as u64).max(1);
    let state = PluginState::new(Arc::new(grants), services, limits, ticks);
    let mut store = Store::new(&rt.engine, state);
    store.limiter(|s| &mut s.limiter);
    // Every epoch tick the guest spends running costs one tick of its CPU budget. From the
    // second tick on the call yields there, so the wall-clock timeout fires even in a tight
    // loop; short calls never yield, which would put them behind every other ready task.
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|mut ctx| {
        let state = ctx.data_mut();
        state.cpu_ticks += 1;
        if state.cpu_ticks > state.cpu_budget_ticks {
            return Err(LimitHit::Cpu.into());
        }
        Ok(if state.cpu_ticks < 2 {
            UpdateDeadline::Continue(1)
        } else {
            UpdateDeadline::Yield(1)
        })
    });
    store
}

/// Calls a freshly loaded component's `describe`, nothing granted, within [`DESCRIBE_LIMITS`].
pub(crate) async fn describe<T>(
    rt: &Runtime,
    call: impl AsyncFnOnce(&mut Store<PluginState>) -> wasmtime::Result<T>,
) -> Result<T, LoadError> {
    let limits = DESCRIBE_LIMITS;
    let services = Arc::new(NoServices {
        plugin: "describe".into(),
    });
    let mut store = new_store(rt, &limits, Grants::default(), services);
    guarded(&mut store, &limits, call)
        .await
        .map_err(|e| LoadError::Describe(Box::new(e)))
}

/// A failure to link or type-check a component against `world`.
pub(crate) fn wrong_world(world: &'static str) -> impl Fn(wasmtime::Error) -> LoadError {
    move |e| LoadError::WrongWorld {
        world,
        reason: chain(&e),
    }
}

/// Exports under the contract's interface name that do not type-check against `world`. Names
/// the functions the component has, since wasmtime's reason ("expected 2-tuple, found
/// 1-tuple") names none.
pub(crate) fn wrong_signature(
    world: &'static str,
    rt: &Runtime,
    component: &Component,
    interface: &str,
    err: wasmtime::Error,
) -> LoadError {
    let functions: Vec<String> = component
        .component_type()
        .exports(&rt.engine)
        .filter(|(name, _)| name.split('@').next() == Some(interface))
        .flat_map(|(_, export)| match export.ty {
            ComponentItem::ComponentInstance(api) => api
                .exports(&rt.engine)
                .filter_map(|(name, item)| match item.ty {
                    ComponentItem::ComponentFunc(func) => {
                        let params: Vec<&str> = func.params().map(|(p, _)| p).collect();
                        Some(format!("{name}({})", params.join(", ")))
                    }
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        })
        .collect();
    LoadError::WrongWorld {
        world,
        reason: format!(
            "{}; its {interface} exports {}",
            chain(&err),
            functions.join(", ")
        ),
    }
}

/// Runs `call` on `store` within the limits' wall-clock timeout and classifies a failure.
pub(crate) async fn guarded<T>(
    store: &mut Store<PluginState>,
    limits: &Limits,
    call: impl AsyncFnOnce(&mut Store<PluginState>) -> wasmtime::Result<T>,
) -> Result<T, CallError> {
    store.data_mut().cpu_ticks = 0;
    let outcome = tokio::time::timeout(limits.timeout(), call(store)).await;
    store.data().finish_logs();
    match outcome {
        Err(_) => Err(CallError::Timeout {
            limit_ms: limits.timeout_ms,
        }),
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) => Err(classify(&err, store.data(), limits)),
    }
}

fn classify(err: &wasmtime::Error, state: &PluginState, limits: &Limits) -> CallError {
    for cause in err.chain() {
        match cause.downcast_ref::<LimitHit>() {
            Some(LimitHit::Memory) => {
                return CallError::MemoryLimit {
                    limit_bytes: limits.memory_bytes,
                };
            }
            Some(LimitHit::Cpu) => {
                return CallError::CpuLimit {
                    limit_ms: limits.cpu_ms,
                };
            }
            None => {}
        }
    }
    if state.limiter.hit {
        return CallError::MemoryLimit {
            limit_bytes: limits.memory_bytes,
        };
    }
    let text = chain(err);
    if text.contains("maximum concurrent") || text.contains("pooling allocator") {
        return CallError::Capacity(text);
    }
    if let Some(exit) = err
        .chain()
        .find_map(|c| c.downcast_ref::<wasmtime_wasi::I32Exit>())
    {
        return CallError::Trap {
            message: format!("the plugin exited (status {}) instead of returning", exit.0),
        };
    }
    let stderr = state.stderr();
    if let Some(at) = stderr.find("panicked at") {
        let message = stderr[at..]
            .trim()
            .lines()
            .take(4)
            .collect::<Vec<_>>()
            .join(" ");
        return CallError::Panic { message };
    }
    let trap = err
        .chain()
        .find_map(|c| c.downcast_ref::<wasmtime::Trap>())
        .map(|t| t.to_string());
    let message = match (trap, stderr.trim()) {
        (Some(trap), "") => trap,
        (Some(trap), stderr) => format!("{trap} (stderr: {})", tail(stderr, 512)),
        (None, "") => text,
        (None, stderr) => format!("{text} (stderr: {})", tail(stderr, 512)),
    };
    CallError::Trap { message }
}

fn tail(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}
