//! Strategy plugins: one warm, stateful instance per activation, called under limits. A trap
//! discards the instance (its state is lost); the next call starts a fresh one.

use crate::bindings::strategy::exports::weft::plugin::strategy_api;
use crate::bindings::strategy::{Strategy, StrategyPre};
use crate::call::{describe, guarded, new_store, wrong_signature, wrong_world};
use crate::capabilities::Grants;
use crate::engine::Runtime;
use crate::error::{CallError, LoadError};
use crate::limits::Limits;
use crate::node::{valid_name, valid_version};
use crate::services::HostServices;
use crate::state::PluginState;
use crate::text::{MAX_MESSAGE, MAX_SUMMARY, cap, truncate};
use std::sync::Arc;
use tokio::sync::Mutex;
use wasmtime::Store;
use wasmtime::component::Component;

pub use strategy_api::{Completion, Instance, Prediction, Task};

/// A strategy's choice, and how long the call took (waiting for the instance not counted).
#[derive(Debug, Clone)]
pub struct Decision {
    /// The chosen instance.
    pub instance_id: String,
    /// How long the strategy took to choose.
    pub took: std::time::Duration,
}

/// Name, version and summary of a strategy.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StrategyDescription {
    /// The strategy's name.
    pub name: String,
    /// Its semantic version.
    pub version: String,
    /// One line saying how it chooses.
    pub summary: String,
}

/// A loaded, pre-instantiated strategy component.
#[derive(Clone)]
pub struct StrategyPlugin {
    pre: StrategyPre<PluginState>,
    description: Arc<StrategyDescription>,
}

impl StrategyPlugin {
    /// The strategy in `component`, described by `known` (its description stored when it
    /// was added) or else by calling its `describe`.
    pub(crate) async fn new(
        rt: &Arc<Runtime>,
        component: &Component,
        known: Option<StrategyDescription>,
    ) -> Result<Self, LoadError> {
        let wrong = wrong_world("strategy");
        let pre = StrategyPre::new(
            rt.strategy_linker
                .instantiate_pre(component)
                .map_err(&wrong)?,
        )
        .map_err(&wrong)?;
        if let Some(description) = known {
            return Ok(Self {
                pre,
                description: Arc::new(description),
            });
        }
        let d = describe(rt, async |store| {
            let instance = pre.instance_pre().instantiate_async(&mut *store).await?;
            // Exports are type-checked here, not by `StrategyPre::new` (see the node's).
            let strategy = match Strategy::new(&mut *store, &instance) {
                Ok(strategy) => strategy,
                Err(err) => {
                    return Ok(Err(wrong_signature(
                        "strategy",
                        rt,
                        component,
                        "weft:plugin/strategy-api",
                        err,
                    )));
                }
            };
            strategy
                .weft_plugin_strategy_api()
                .call_describe(&mut *store)
                .await
                .map(Ok)
        })
        .await??;
        if !valid_name(&d.name) || !valid_version(&d.version) {
            return Err(LoadError::BadDescription(format!(
                "name '{}' must be 1-64 characters of a-z, 0-9, '-', '_' and version '{}' must look like 1.2.3",
                d.name, d.version
            )));
        }
        Ok(Self {
            pre,
            description: Arc::new(StrategyDescription {
                name: d.name,
                version: d.version,
                summary: cap(d.summary, MAX_SUMMARY),
            }),
        })
    }

    /// The strategy's self-description.
    pub fn description(&self) -> &StrategyDescription {
        &self.description
    }

    /// Starts a warm instance. Limits apply to each call; memory to the instance's lifetime.
    pub async fn instantiate(
        &self,
        rt: &Arc<Runtime>,
        limits: Limits,
        services: Arc<dyn HostServices>,
    ) -> Result<StrategyInstance, CallError> {
        let instance = StrategyInstance {
            plugin: self.clone(),
            rt: rt.clone(),
            limits,
            services,
            live: Mutex::new(None),
        };
        drop(instance.live().await?);
        Ok(instance)
    }
}

struct Live {
    store: Store<PluginState>,
    strategy: Strategy,
}

/// A running strategy. Calls are serialised: the strategy's state is single-threaded.
pub struct StrategyInstance {
    plugin: StrategyPlugin,
    rt: Arc<Runtime>,
    limits: Limits,
    services: Arc<dyn HostServices>,
    live: Mutex<Option<Live>>,
}

impl StrategyInstance {
    /// The strategy's self-description.
    pub fn description(&self) -> &StrategyDescription {
        self.plugin.description()
    }

    /// Chooses an instance id for `task`; `Refused` when the strategy declines.
    pub async fn select(&self, task: &Task, instances: &[Instance]) -> Result<Decision, CallError> {
        let (choice, took) = self
            .call(async |s, store| {
                s.weft_plugin_strategy_api()
                    .call_select(store, task, instances)
                    .await
            })
            .await?;
        let choice = choice.map_err(|reason| CallError::Refused(cap(reason, MAX_MESSAGE)))?;
        if !instances.iter().any(|i| i.id == choice && i.healthy) {
            return Err(CallError::BadOutputs(format!(
                "the strategy chose '{}', which is not one of the healthy instances offered",
                truncate(&choice, 200)
            )));
        }
        Ok(Decision {
            instance_id: choice,
            took,
        })
    }

    /// Predicts the wait on `instance`.
    pub async fn predict(&self, instance: &Instance) -> Result<Prediction, CallError> {
        let (p, _) = self
            .call(async |s, store| {
                s.weft_plugin_strategy_api()
                    .call_predict(store, instance)
                    .await
            })
            .await?;
        if !p.expected_ms.is_finite()
            || !p.error_ms.is_finite()
            || p.expected_ms < 0.0
            || p.error_ms < 0.0
        {
            return Err(CallError::BadOutputs(format!(
                "the strategy predicted expected={} error={}; both must be finite and non-negative",
                p.expected_ms, p.error_ms
            )));
        }
        Ok(p)
    }

    /// Tells the strategy a task finished.
    pub async fn observe(&self, completion: &Completion) -> Result<(), CallError> {
        self.call(async |s, store| {
            s.weft_plugin_strategy_api()
                .call_observe(store, completion)
                .await
        })
        .await
        .map(|((), _)| ())
    }

    async fn live(&self) -> Result<tokio::sync::MutexGuard<'_, Option<Live>>, CallError> {
        let mut live = self.live.lock().await;
        if live.is_none() {
            let mut store = new_store(
                &self.rt,
                &self.limits,
                Grants::default(),
                self.services.clone(),
            );
            let pre = &self.plugin.pre;
            let strategy = guarded(&mut store, &self.limits, async |store| {
                pre.instantiate_async(&mut *store).await
            })
            .await?;
            *live = Some(Live { store, strategy });
        }
        Ok(live)
    }

    /// Calls the warm instance; the duration counts from when the instance was free.
    async fn call<T>(
        &self,
        f: impl AsyncFnOnce(&Strategy, &mut Store<PluginState>) -> wasmtime::Result<T>,
    ) -> Result<(T, std::time::Duration), CallError> {
        let mut guard = self.live().await?;
        let started = std::time::Instant::now();
        let Live { store, strategy } = guard.as_mut().expect("instantiated above");
        let strategy = &*strategy;
        let result = guarded(store, &self.limits, async |store| f(strategy, store).await).await;
        if let Err(err) = &result {
            tracing::warn!(
                strategy = %self.plugin.description.name,
                %err,
                "strategy call failed; its instance is discarded and the next call starts a fresh one"
            );
            *guard = None;
        }
        result.map(|value| (value, started.elapsed()))
    }
}
