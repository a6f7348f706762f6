//! The `weft` command line.

mod admin;
mod client;
mod image;
mod plugin;
mod scheduler;
mod workflow;

use crate::config::{Config, LogFormat, Overrides};
use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// Weft: containerized workspaces, WebAssembly workflows, a task scheduler and version tracking.
#[derive(Debug, Parser)]
#[command(name = "weft", version, about, propagate_version = true)]
pub struct Cli {
    /// Configuration file (TOML). Without it, ./weft.toml is read if present.
    #[arg(
        long,
        short = 'c',
        global = true,
        env = "WEFT_CONFIG",
        value_name = "FILE"
    )]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the Weft server (API, docs, metrics).
    ///
    /// Configuration comes from the TOML file, then WEFT_* environment variables
    /// (nested keys with a double underscore, e.g. WEFT_API__MAX_BODY_BYTES), then these flags.
    Serve {
        #[command(flatten)]
        overrides: Overrides,
    },
    /// Administration on the local data folder or database.
    #[command(subcommand)]
    Admin(admin::AdminCommand),
    /// Manage workflow-node and strategy plugins on a running server.
    Plugin(plugin::PluginArgs),
    /// Validate and run workflows on a running server.
    Workflow(workflow::WorkflowArgs),
    /// Inspect workflow runs on a running server.
    Run(workflow::RunArgs),
    /// Scheduling strategies and task instances on a running server; replay traces offline.
    Scheduler(scheduler::SchedulerArgs),
    /// Run a simulated SwarmPilot task instance serving one model (for tests and benchmarks).
    TaskInstance(scheduler::TaskInstanceArgs),
    /// Build workspace images (Jupyter, code-server) on this host; no registry needed.
    Image(image::ImageArgs),
}

impl Cli {
    /// Whether the command runs best on one thread.
    pub fn single_threaded(&self) -> bool {
        matches!(self.command, Command::TaskInstance(_))
    }

    /// Runs the parsed command.
    pub async fn run(self) -> anyhow::Result<()> {
        match self.command {
            Command::Serve { overrides } => {
                let config = Config::load(self.config.as_deref(), &overrides)?;
                crate::telemetry::init(config.log_format, "info");
                crate::server::serve(config).await
            }
            Command::Admin(command) => {
                crate::telemetry::init(LogFormat::Text, "warn");
                command.run(self.config.as_deref()).await
            }
            Command::Plugin(args) => {
                crate::telemetry::init(LogFormat::Text, "warn");
                args.run().await
            }
            Command::Workflow(args) => {
                crate::telemetry::init(LogFormat::Text, "warn");
                args.run().await
            }
            Command::Image(args) => {
                crate::telemetry::init(LogFormat::Text, "warn");
                args.run().await
            }
            Command::Run(args) => {
                crate::telemetry::init(LogFormat::Text, "warn");
                args.run().await
            }
            Command::Scheduler(args) => {
                crate::telemetry::init(LogFormat::Text, "warn");
                args.run().await
            }
            Command::TaskInstance(args) => {
                crate::telemetry::init(LogFormat::Text, "info");
                args.run().await
            }
        }
    }
}
