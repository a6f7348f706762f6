//! `weft scheduler` (strategies, instances, replay) and `weft task-instance` (the simulator).

use super::client::{Client, Remote};
use crate::scheduler::trace;
use crate::simulation::replay::{self, Workload};
use crate::simulation::task_instance::{self as simulator, ServiceTime, SimConfig};
use reqwest::Method;
use serde_json::json;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use weft_runtime::{Limits, NoServices, Plugin, Runtime, RuntimeConfig, StrategyPlugin};

#[derive(Debug, clap::Args)]
pub(super) struct SchedulerArgs {
    #[command(flatten)]
    remote: Remote,
    #[command(subcommand)]
    command: SchedulerCommand,
}

#[derive(Debug, clap::Subcommand)]
enum SchedulerCommand {
    /// List strategies: available, in effect globally and per model, recently deactivated.
    Strategies,
    /// Activate a strategy for every model, or for one with --model (admin).
    Activate {
        /// NAME or NAME@VERSION of a strategy plugin.
        strategy: String,
        /// Only for this model.
        #[arg(long)]
        model: Option<String>,
    },
    /// Drop a model's own strategy so the global one serves it again (admin).
    Deactivate {
        /// The model.
        #[arg(long)]
        model: String,
    },
    /// List registered task instances and their health.
    Instances,
    /// Replay a recorded trace through strategies on a simulated clock and compare them.
    ///
    /// Record a trace by setting `[scheduler] trace_path`. Strategies are built-in names
    /// (round-robin, shortest-expected-wait, power-of-two-choices, probabilistic) or .wasm files.
    Replay {
        /// The trace (JSON lines).
        trace: PathBuf,
        /// A strategy to compare; repeat for several.
        #[arg(long = "strategy", required = true)]
        strategies: Vec<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

impl SchedulerArgs {
    pub(super) async fn run(self) -> anyhow::Result<()> {
        match self.command {
            SchedulerCommand::Replay {
                trace,
                strategies,
                json,
            } => replay_command(&trace, &strategies, json).await,
            command => remote_command(&Client::new(&self.remote)?, command).await,
        }
    }
}

/// The subcommands that talk to a running server.
async fn remote_command(client: &Client, command: SchedulerCommand) -> anyhow::Result<()> {
    match command {
        SchedulerCommand::Strategies => {
            let s = client
                .send(client.request(Method::GET, "/scheduler/strategies"))
                .await?;
            let mut table = comfy_table::Table::new();
            table.set_header(["strategy", "builtin", "in effect", "summary"]);
            for a in s["available"].as_array().into_iter().flatten() {
                let label = format!(
                    "{}@{}",
                    a["name"].as_str().unwrap_or_default(),
                    a["version"].as_str().unwrap_or_default()
                );
                let mut scopes = Vec::new();
                if s["global"]["strategy"] == label.as_str() {
                    scopes.push("every model".to_string());
                }
                for (model, v) in s["models"].as_object().into_iter().flatten() {
                    if v["strategy"] == label.as_str() {
                        scopes.push(format!("model {model}"));
                    }
                }
                table.add_row([
                    label,
                    a["builtin"].to_string(),
                    scopes.join(", "),
                    a["description"]["summary"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                ]);
            }
            println!("{table}");
            for d in s["deactivated"].as_array().into_iter().flatten() {
                println!(
                    "deactivated {} at {}: {}",
                    d["strategy"].as_str().unwrap_or_default(),
                    d["at"].as_str().unwrap_or_default(),
                    d["reason"].as_str().unwrap_or_default()
                );
            }
        }
        SchedulerCommand::Activate { strategy, model } => {
            let v = client
                .send(
                    client
                        .request(Method::PUT, "/scheduler/strategies/active")
                        .json(&json!({"strategy": strategy, "model_name": model})),
                )
                .await?;
            println!(
                "{} now serves {}",
                v["strategy"].as_str().unwrap_or_default(),
                v["model_name"]
                    .as_str()
                    .map_or("every model".to_string(), |m| format!("model {m}"))
            );
        }
        SchedulerCommand::Deactivate { model } => {
            client
                .send(client.request(
                    Method::DELETE,
                    &format!("/scheduler/strategies/active?model_name={model}"),
                ))
                .await?;
            println!("model {model} now uses the global strategy");
        }
        SchedulerCommand::Instances => {
            let list = client
                .send(client.request(Method::GET, "/scheduler/instances"))
                .await?;
            let mut table = comfy_table::Table::new();
            table.set_header(["ti_uuid", "model", "address", "healthy", "in flight"]);
            for ti in list.as_array().into_iter().flatten() {
                table.add_row([
                    ti["ti_uuid"].as_str().unwrap_or_default().to_string(),
                    ti["model_name"].as_str().unwrap_or_default().to_string(),
                    format!("{}:{}", ti["host"].as_str().unwrap_or_default(), ti["port"]),
                    ti["healthy"].to_string(),
                    ti["in_flight"].to_string(),
                ]);
            }
            println!("{table}");
        }
        SchedulerCommand::Replay { .. } => anyhow::bail!("replay runs offline"),
    }
    Ok(())
}

async fn replay_command(
    path: &std::path::Path,
    specs: &[String],
    json: bool,
) -> anyhow::Result<()> {
    let workload = Workload::from_trace(&trace::read(path)?)?;
    eprintln!(
        "replaying {} tasks over {} instances from {}",
        workload.len(),
        workload.instance_count(),
        path.display()
    );
    let cache = std::env::temp_dir().join("weft-replay-cache");
    let runtime = Runtime::new(RuntimeConfig::new(cache))
        .map_err(|e| anyhow::anyhow!("cannot start the plugin runtime: {e:#}"))?;
    let mut outcomes = Vec::new();
    for spec in specs {
        let plugin = load_strategy(&runtime, spec).await?;
        let label = format!(
            "{}@{}",
            plugin.description().name,
            plugin.description().version
        );
        let instance = plugin
            .instantiate(
                &runtime,
                Limits::default(),
                Arc::new(NoServices {
                    plugin: label.clone(),
                }),
            )
            .await
            .map_err(|e| anyhow::anyhow!("{label}: {e}"))?;
        outcomes.push(replay::run(&workload, &label, &instance).await?);
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&outcomes)?);
        return Ok(());
    }
    let mut table = comfy_table::Table::new();
    table.set_header(["strategy", "tasks", "mean ms", "p50 ms", "p99 ms"]);
    for o in &outcomes {
        table.add_row([
            o.strategy.clone(),
            o.tasks.to_string(),
            format!("{:.1}", o.mean_ms),
            format!("{:.1}", o.p50_ms),
            format!("{:.1}", o.p99_ms),
        ]);
    }
    println!("{table}");
    Ok(())
}

/// A built-in strategy by name, or a component file.
async fn load_strategy(runtime: &Arc<Runtime>, spec: &str) -> anyhow::Result<StrategyPlugin> {
    let bytes = if spec.ends_with(".wasm") || std::path::Path::new(spec).is_file() {
        std::fs::read(spec).map_err(|e| anyhow::anyhow!("cannot read {spec}: {e}"))?
    } else {
        let name = spec.split('@').next().unwrap_or(spec);
        let crate_name = format!("weft-strategy-{name}");
        let known: Vec<&str> = weft_builtins::BUILTIN
            .iter()
            .filter_map(|(c, _)| c.strip_prefix("weft-strategy-"))
            .collect();
        weft_builtins::BUILTIN
            .iter()
            .find(|(c, _)| *c == crate_name)
            .map(|(_, b)| b.to_vec())
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "'{spec}' is neither a built-in strategy ({}) nor a .wasm file",
                    known.join(", ")
                )
            })?
    };
    match runtime.load(&bytes).await {
        Ok((Plugin::Strategy(s), _)) => Ok(s),
        Ok((Plugin::Node(_), _)) => anyhow::bail!("{spec} is a workflow node, not a strategy"),
        Err(e) => anyhow::bail!("{spec}: {e}"),
    }
}

/// `weft task-instance`: a simulated SwarmPilot task instance.
#[derive(Debug, clap::Args)]
pub(super) struct TaskInstanceArgs {
    /// The model it serves.
    #[arg(long)]
    model: String,
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:8100")]
    listen: SocketAddr,
    /// Instances to run in this process, on consecutive ports from --listen's (each its own
    /// instance with its own queue, registered on its own).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    instances: u16,
    /// Service time per task: 50ms, const:50ms, exp:50ms, normal:50ms,10ms or uniform:10ms,90ms.
    #[arg(long, default_value = "exp:50ms")]
    service_time: ServiceTime,
    /// Tasks run at once.
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// The scheduler to report completions to (and to register with, with --register).
    #[arg(long, env = "WEFT_SCHEDULER_URL")]
    scheduler: Option<String>,
    /// Register with the scheduler after starting.
    #[arg(long, requires = "scheduler")]
    register: bool,
    /// Token for a scheduler that does not trust this instance's network: an admin's to
    /// --register (completions then go with the secret the registration returns).
    #[arg(long, env = "WEFT_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Results kept for GET /results/{task_id}, per instance: the newest; older ones answer 404.
    #[arg(long, default_value_t = 100_000)]
    keep_results: usize,
    /// How it names itself when it reports a finished task: by `host:port` as SwarmPilot's
    /// instances do, or by the ti_uuid the scheduler gave it; `none` reports nothing.
    #[arg(long, value_enum, default_value = "address")]
    report_as: simulator::ReportAs,
}

impl TaskInstanceArgs {
    pub(super) async fn run(self) -> anyhow::Result<()> {
        let mut servers = Vec::new();
        for i in 0..self.instances {
            let mut listen = self.listen;
            if listen.port() != 0 {
                let port = listen.port().checked_add(i).ok_or_else(|| {
                    anyhow::anyhow!(
                        "{} instances from port {} pass 65535",
                        self.instances,
                        listen.port()
                    )
                })?;
                listen.set_port(port);
            }
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
            let addr = listener.local_addr()?;
            let config = SimConfig {
                model: self.model.clone(),
                service: self.service_time,
                workers: self.workers,
                scheduler: self.scheduler.clone(),
                token: self.token.clone(),
                keep_results: self.keep_results,
                report_as: self.report_as,
                address: addr.to_string(),
            };
            let id = simulator::InstanceId::default();
            let secret = std::sync::Arc::default();
            servers.push(tokio::spawn(simulator::serve(
                listener,
                config,
                id.clone(),
                std::sync::Arc::clone(&secret),
                crate::server::shutdown_signal(),
            )));
            println!(
                "task instance serving model {} on http://{addr}",
                self.model
            );
            if self.register {
                let scheduler = self.scheduler.as_deref().expect("clap requires it");
                let registered =
                    simulator::register(scheduler, self.token.as_deref(), addr).await?;
                id.set(&registered.ti_uuid);
                *secret.lock().expect("secret lock") = registered.secret;
                println!("registered as {}", registered.ti_uuid);
            }
        }
        for server in servers {
            server.await??;
        }
        Ok(())
    }
}
