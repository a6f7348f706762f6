//! The strategies in effect: one warm instance for every model, optionally one per model.
//!
//! Activation swaps an `Arc`: calls already running finish on the old instance, new calls
//! get the new one, so a swap never fails or loses a submit. A strategy that traps, runs
//! out of its limits or answers nonsense is deactivated with its reason and replaced by
//! round-robin for its scope; the call that found out is answered by the replacement.

use crate::error::{Code, Error, Result};
use crate::registry::{PluginUsers, Plugins, call_error};
use crate::store::{Store, now_ms};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, RwLock};
use utoipa::ToSchema;
use weft_runtime::{CallError, Completion, Decision, Instance, Prediction, StrategyInstance, Task};

/// The strategy a failed one is replaced by.
pub(crate) const FALLBACK: &str = "round-robin";

/// A strategy instance serving one scope.
pub(crate) struct Active {
    view: ActiveView,
    instance: StrategyInstance,
}

/// What an admin sees of an active strategy.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ActiveView {
    /// `name@version`.
    pub strategy: String,
    /// The model it serves; absent for the global one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_name: Option<String>,
    pub activated_by: String,
    pub activated_at: chrono::DateTime<chrono::Utc>,
}

/// A strategy taken out of service, and why.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Deactivation {
    pub strategy: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_name: Option<String>,
    pub reason: String,
    pub at: chrono::DateTime<chrono::Utc>,
}

/// Everything in effect, for `GET /api/v1/scheduler/strategies`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct InEffect {
    pub global: ActiveView,
    /// Model name -> its own strategy.
    pub models: BTreeMap<String, ActiveView>,
    /// The most recent deactivations, newest last.
    pub deactivated: Vec<Deactivation>,
}

/// The strategy slots.
pub struct Strategies {
    plugins: Plugins,
    store: Store,
    global: RwLock<Arc<Active>>,
    models: RwLock<HashMap<String, Arc<Active>>>,
    deactivated: Mutex<VecDeque<Deactivation>>,
}

const KEEP_DEACTIVATIONS: usize = 50;

impl Strategies {
    /// Restores the stored activations; `default` serves every model otherwise.
    pub async fn start(plugins: Plugins, store: Store, default: &str) -> Result<Self> {
        let mut global = None;
        let mut models = HashMap::new();
        for row in super::records::activations(&store).await? {
            let scope = row.scope;
            let reference = format!("{}@{}", row.plugin, row.version);
            let model = (!scope.is_empty()).then(|| scope.clone());
            let by = row.activated_by;
            match load(&plugins, &reference, model.clone(), &by).await {
                Ok(mut active) => {
                    active.view.activated_at = crate::store::time(row.activated_at);
                    let active = Arc::new(active);
                    match model {
                        None => global = Some(active),
                        Some(m) => {
                            models.insert(m, active);
                        }
                    }
                }
                Err(err) => {
                    tracing::error!(%reference, scope, %err, "stored strategy activation cannot be restored; the default applies")
                }
            }
        }
        let global = match global {
            Some(g) => g,
            None => Arc::new(match load(&plugins, default, None, "config").await {
                Ok(active) => active,
                Err(err) => {
                    tracing::error!(strategy = default, %err, "default strategy unavailable; using {FALLBACK}");
                    load(&plugins, FALLBACK, None, "config").await?
                }
            }),
        };
        Ok(Self {
            plugins,
            store,
            global: RwLock::new(global),
            models: RwLock::new(models),
            deactivated: Mutex::default(),
        })
    }

    /// The strategy serving `model`.
    fn for_model(&self, model: &str) -> Arc<Active> {
        if let Some(active) = self.models.read().expect("strategies lock").get(model) {
            return active.clone();
        }
        self.global.read().expect("strategies lock").clone()
    }

    /// Activates `reference` for `model` (every model when `None`).
    pub async fn activate(
        &self,
        reference: &str,
        model: Option<&str>,
        by: &str,
    ) -> Result<ActiveView> {
        if let Some(m) = model
            && m.trim().is_empty()
        {
            return Err(Error::invalid_field("model_name", "must not be empty"));
        }
        let active = load(&self.plugins, reference, model.map(str::to_string), by).await?;
        let view = active.view.clone();
        self.persist(&view).await?;
        self.install(Arc::new(active));
        tracing::info!(strategy = %view.strategy, model = ?view.model_name, %by, "strategy activated");
        Ok(view)
    }

    /// Drops the strategy of `model`, so the global one serves it again.
    pub async fn clear(&self, model: &str) -> Result<()> {
        let removed = self.models.write().expect("strategies lock").remove(model);
        if removed.is_none() {
            return Err(Error::not_found("model strategy", model)
                .hint("GET /api/v1/scheduler/strategies lists what is active"));
        }
        super::records::delete_activation(&self.store, model).await
    }

    /// What is in effect now.
    pub fn in_effect(&self) -> InEffect {
        InEffect {
            global: self.global.read().expect("strategies lock").view.clone(),
            models: self
                .models
                .read()
                .expect("strategies lock")
                .iter()
                .map(|(m, a)| (m.clone(), a.view.clone()))
                .collect(),
            deactivated: self
                .deactivated
                .lock()
                .expect("deactivations lock")
                .iter()
                .cloned()
                .collect(),
        }
    }

    /// Chooses an instance for `task`, falling back when the strategy fails.
    pub async fn select(&self, task: &Task, instances: &[Instance]) -> Result<Decision> {
        let mut last = None;
        for _ in 0..3 {
            let active = self.for_model(&task.model);
            match active.instance.select(task, instances).await {
                Ok(decision) => return Ok(decision),
                Err(CallError::Refused(reason)) => {
                    return Err(Error::new(
                        Code::SchedulerNoInstance,
                        format!("the strategy found no instance for the task: {reason}"),
                    ));
                }
                Err(err) => {
                    let reason = err.to_string();
                    self.fail(&active, &reason).await;
                    last = Some(reason);
                }
            }
        }
        Err(Error::internal(format!(
            "no strategy could choose an instance: {}",
            last.unwrap_or_default()
        )))
    }

    /// The predicted wait on `instance`.
    pub async fn predict(&self, instance: &Instance) -> Result<Prediction> {
        let active = self.for_model(&instance.model);
        match active.instance.predict(instance).await {
            Ok(p) => Ok(p),
            Err(err) => {
                self.fail(&active, &err.to_string()).await;
                self.for_model(&instance.model)
                    .instance
                    .predict(instance)
                    .await
                    .map_err(|e| call_error(FALLBACK, e))
            }
        }
    }

    /// Tells the strategy serving `model` that a task finished.
    pub async fn observe(&self, model: &str, completion: &Completion) {
        let active = self.for_model(model);
        if let Err(err) = active.instance.observe(completion).await {
            self.fail(&active, &err.to_string()).await;
        }
    }

    /// Takes `active` out of service (unless a swap already did) and installs the fallback.
    async fn fail(&self, active: &Arc<Active>, reason: &str) {
        let still_active = {
            let current = match &active.view.model_name {
                None => Some(self.global.read().expect("strategies lock").clone()),
                Some(m) => self.models.read().expect("strategies lock").get(m).cloned(),
            };
            current.is_some_and(|c| Arc::ptr_eq(&c, active))
        };
        if !still_active {
            return;
        }
        tracing::warn!(strategy = %active.view.strategy, model = ?active.view.model_name, reason, "strategy deactivated; falling back to {FALLBACK}");
        {
            let mut log = self.deactivated.lock().expect("deactivations lock");
            if log.len() == KEEP_DEACTIVATIONS {
                log.pop_front();
            }
            log.push_back(Deactivation {
                strategy: active.view.strategy.clone(),
                model_name: active.view.model_name.clone(),
                reason: reason.to_string(),
                at: chrono::Utc::now(),
            });
        }
        match load(
            &self.plugins,
            FALLBACK,
            active.view.model_name.clone(),
            "fallback",
        )
        .await
        {
            Ok(fallback) => {
                let view = fallback.view.clone();
                self.install(Arc::new(fallback));
                if let Err(err) = self.persist(&view).await {
                    tracing::error!(%err, "cannot store the fallback strategy");
                }
            }
            Err(err) => tracing::error!(%err, "the fallback strategy cannot be started"),
        }
    }

    fn install(&self, active: Arc<Active>) {
        match active.view.model_name.clone() {
            None => *self.global.write().expect("strategies lock") = active,
            Some(m) => {
                self.models
                    .write()
                    .expect("strategies lock")
                    .insert(m, active);
            }
        }
    }

    async fn persist(&self, view: &ActiveView) -> Result<()> {
        let (plugin, version) = view
            .strategy
            .split_once('@')
            .expect("views name name@version");
        let row = super::records::Activation {
            scope: view.model_name.clone().unwrap_or_default(),
            plugin: plugin.to_string(),
            version: version.to_string(),
            activated_by: view.activated_by.clone(),
            activated_at: view.activated_at.timestamp_millis(),
        };
        super::records::save_activation(&self.store, &row).await
    }

    fn all(&self) -> Vec<Arc<Active>> {
        let mut all = vec![self.global.read().expect("strategies lock").clone()];
        all.extend(
            self.models
                .read()
                .expect("strategies lock")
                .values()
                .cloned(),
        );
        all
    }
}

/// Starts a warm instance of `reference` with the limits an admin set for it.
async fn load(
    plugins: &Plugins,
    reference: &str,
    model_name: Option<String>,
    by: &str,
) -> Result<Active> {
    let (name, version, plugin) = plugins.strategy(reference).await?;
    let settings = plugins.settings(&name).await?;
    let label = format!("{name}@{version}");
    // The strategy world imports no artifacts or secrets: the instance runs for no user.
    let services = plugins.services(&label, "", Arc::default(), None, None);
    let instance = plugin
        .instantiate(plugins.runtime(), settings.limits, services)
        .await
        .map_err(|e| call_error(&label, e))?;
    Ok(Active {
        view: ActiveView {
            strategy: label,
            model_name,
            activated_by: by.to_string(),
            activated_at: crate::store::time(now_ms()),
        },
        instance,
    })
}

impl PluginUsers for Strategies {
    fn user_of<'a>(
        &'a self,
        name: &'a str,
        version: &'a str,
        _last: bool,
    ) -> weft_runtime::BoxFuture<'a, Result<Option<String>>> {
        let used = self.all().into_iter().find_map(|active| {
            (active.view.strategy == format!("{name}@{version}")).then(|| {
                match &active.view.model_name {
                    None => "the scheduler's active strategy".to_string(),
                    Some(m) => format!("the scheduler's active strategy for model '{m}'"),
                }
            })
        });
        Box::pin(async move { Ok(used) })
    }
}
