//! The data each wasmtime store carries: WASI with nothing granted, wasi:http behind the grants,
//! the memory limiter, captured stderr, and the host services of the call.

use crate::bindings::node::weft::plugin::{artifacts, host, jobs, secrets};
use crate::capabilities::Grants;
use crate::destinations::HostPattern;
use crate::limits::{Limits, MemoryLimiter};
use crate::log_budget::LogBudget;
use crate::outgoing::{self, SendError, Sent};
use crate::services::{HostServices, LogLevel};
use crate::stderr::Stderr;
use crate::text::truncate;
use std::sync::{Arc, Mutex};
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

pub(crate) struct PluginState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    policy: HttpPolicy,
    grants: Arc<Grants>,
    services: Arc<dyn HostServices>,
    stderr: Stderr,
    log_budget: Arc<Mutex<LogBudget>>,
    pub limiter: MemoryLimiter,
    pub cpu_ticks: u64,
    pub cpu_budget_ticks: u64,
}

impl PluginState {
    pub(crate) fn new(
        grants: Arc<Grants>,
        services: Arc<dyn HostServices>,
        limits: &Limits,
        cpu_budget_ticks: u64,
    ) -> Self {
        let log_budget = Arc::new(Mutex::new(LogBudget::new(limits)));
        let stderr = Stderr::new(services.clone(), log_budget.clone());
        // No environment, arguments, preopened directories or sockets: computation only.
        let wasi = WasiCtx::builder()
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        Self {
            wasi,
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            policy: HttpPolicy {
                patterns: grants.http_patterns(),
                services: services.clone(),
            },
            grants,
            services,
            stderr,
            log_budget,
            limiter: MemoryLimiter {
                limit_bytes: limits.memory_bytes,
                hit: false,
            },
            cpu_ticks: 0,
            cpu_budget_ticks,
        }
    }

    /// The last of what the plugin wrote to stderr, lossily decoded.
    pub(crate) fn stderr(&self) -> String {
        self.stderr.tail()
    }

    /// Ends a call's logging: logs an unfinished stderr line and how many messages were over
    /// the call's allowance.
    pub(crate) fn finish_logs(&self) {
        self.stderr.finish();
        let note = self.log_budget.lock().expect("budget lock").dropped_note();
        if let Some(note) = note {
            self.services.log(LogLevel::Warn, &note);
        }
    }
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for PluginState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.policy,
        }
    }
}

/// Sends outgoing requests only to granted hosts and addresses (see `outgoing`).
struct HttpPolicy {
    patterns: Arc<[HostPattern]>,
    services: Arc<dyn HostServices>,
}

type ResponseFuture = Box<dyn Future<Output = Result<Sent, wasmtime_wasi_http::Error>> + Send>;

impl WasiHttpHooks for HttpPolicy {
    fn send_request(
        &mut self,
        request: http::Request<wasmtime_wasi_http::WasiBody>,
        options: Option<wasmtime_wasi_http::RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> ResponseFuture {
        let patterns = self.patterns.clone();
        let services = self.services.clone();
        Box::new(async move {
            match outgoing::send(request, options, patterns).await {
                Ok(sent) => Ok(sent),
                Err(SendError::Failed(error)) => Err(error),
                Err(SendError::Denied(why)) => {
                    services.log(LogLevel::Warn, &format!("denied: {why}"));
                    tracing::warn!(%why, "plugin HTTP request denied");
                    Err(wasmtime_wasi_http::Error::HttpRequestDenied)
                }
            }
        })
    }
}

impl host::Host for PluginState {
    async fn log(&mut self, level: host::LogLevel, message: String) {
        let level = match level {
            host::LogLevel::Trace => LogLevel::Trace,
            host::LogLevel::Debug => LogLevel::Debug,
            host::LogLevel::Info => LogLevel::Info,
            host::LogLevel::Warn => LogLevel::Warn,
            host::LogLevel::Error => LogLevel::Error,
        };
        let message = truncate(&message, 8 * 1024);
        if self
            .log_budget
            .lock()
            .expect("budget lock")
            .take(message.len())
        {
            self.services.log(level, message);
        }
    }

    async fn progress(&mut self, fraction: f32, message: String) {
        let fraction = if fraction.is_nan() {
            0.0
        } else {
            fraction.clamp(0.0, 1.0)
        };
        self.services.progress(fraction, truncate(&message, 1024));
    }
}

impl secrets::Host for PluginState {
    async fn get(&mut self, name: String) -> Result<String, String> {
        if !self.grants.allows_secret(&name) {
            return Err(format!(
                "denied: secret '{name}' is not granted to this plugin"
            ));
        }
        self.services.secret(&name).await
    }
}

impl artifacts::Host for PluginState {
    async fn put(&mut self, name: String, data: Vec<u8>) -> Result<String, String> {
        if !self.grants.artifacts {
            return Err("denied: artifacts are not granted to this plugin".into());
        }
        self.services.put_artifact(&name, data).await
    }

    async fn get(&mut self, key: String) -> Result<Vec<u8>, String> {
        if !self.grants.artifacts {
            return Err("denied: artifacts are not granted to this plugin".into());
        }
        self.services.get_artifact(&key).await
    }

    async fn dataset(&mut self, dataset: String, version: Option<u32>) -> Result<String, String> {
        if !self.grants.artifacts {
            return Err("denied: artifacts are not granted to this plugin".into());
        }
        self.services.dataset(&dataset, version).await
    }

    async fn read_dataset_file(
        &mut self,
        dataset: String,
        version: u32,
        path: String,
    ) -> Result<Vec<u8>, String> {
        if !self.grants.artifacts {
            return Err("denied: artifacts are not granted to this plugin".into());
        }
        self.services
            .read_dataset_file(&dataset, version, &path)
            .await
    }

    async fn record_model(&mut self, name: String, key: String) -> Result<(String, u64), String> {
        if !self.grants.artifacts {
            return Err("denied: artifacts are not granted to this plugin".into());
        }
        self.services.record_model(&name, &key).await
    }

    async fn record_dataset(
        &mut self,
        name: String,
        files: Vec<(String, String)>,
    ) -> Result<(String, u32), String> {
        if !self.grants.artifacts {
            return Err("denied: artifacts are not granted to this plugin".into());
        }
        self.services.record_dataset(&name, files).await
    }
}

impl jobs::Host for PluginState {
    async fn submit(&mut self, mut spec: jobs::JobSpec) -> Result<u32, String> {
        if !self.grants.jobs {
            return Err("denied: jobs are not granted to this plugin".into());
        }
        let mut inputs = Vec::with_capacity(spec.inputs.len());
        for input in std::mem::take(&mut spec.inputs) {
            let data = match input.source {
                jobs::InputSource::Data(data) => data,
                jobs::InputSource::Artifact(key) => {
                    if !self.grants.artifacts {
                        return Err(format!(
                            "denied: artifacts are not granted to this plugin (job input '{}')",
                            input.path
                        ));
                    }
                    self.services
                        .get_artifact(&key)
                        .await
                        .map_err(|e| format!("job input '{}': {e}", input.path))?
                }
            };
            inputs.push((input.path, data));
        }
        let spec = crate::jobs::JobSpec::from_guest(spec, inputs);
        self.services.submit_job(spec).await
    }

    async fn logs(&mut self, job: u32) -> Option<Vec<String>> {
        if !self.grants.jobs {
            return None;
        }
        self.services.job_logs(job).await
    }

    async fn wait(&mut self, job: u32) -> Result<jobs::JobExit, String> {
        if !self.grants.jobs {
            return Err("denied: jobs are not granted to this plugin".into());
        }
        self.services.wait_job(job).await.map(Into::into)
    }
}

impl crate::bindings::node::weft::plugin::types::Host for PluginState {}
