//! `weft plugin`: manage plugins on a running server.

use super::client::{Client, Remote};
use reqwest::Method;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub(super) struct PluginArgs {
    #[command(flatten)]
    remote: Remote,
    #[command(subcommand)]
    command: PluginCommand,
}

#[derive(Debug, clap::Subcommand)]
enum PluginCommand {
    /// Upload a component (.wasm built for wasm32-wasip2 against weft-sdk).
    Add {
        /// The component file.
        file: PathBuf,
    },
    /// List registered plugins.
    List {
        /// Only `node` or `strategy` plugins.
        #[arg(long)]
        kind: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show a plugin: description, versions, hash, grants and limits (JSON).
    Show {
        /// Plugin name.
        name: String,
    },
    /// Remove a plugin: NAME removes every version, NAME@VERSION one.
    Rm {
        /// NAME or NAME@VERSION.
        name: String,
    },
}

impl PluginArgs {
    pub(super) async fn run(self) -> anyhow::Result<()> {
        let client = Client::new(&self.remote)?;
        match self.command {
            PluginCommand::Add { file } => {
                let bytes = tokio::fs::read(&file)
                    .await
                    .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
                eprintln!(
                    "uploading {} ({} KiB)...",
                    file.display(),
                    bytes.len() / 1024
                );
                let added = client
                    .send(
                        client
                            .request(Method::POST, "/plugins")
                            .header("content-type", "application/wasm")
                            .body(bytes),
                    )
                    .await?;
                let p = &added["plugin"];
                println!(
                    "{} {}@{} ({}, sha256 {})",
                    if added["created"] == true {
                        "added"
                    } else {
                        "already registered:"
                    },
                    p["name"].as_str().unwrap_or_default(),
                    p["version"].as_str().unwrap_or_default(),
                    p["kind"].as_str().unwrap_or_default(),
                    &p["hash"]
                        .as_str()
                        .unwrap_or_default()
                        .chars()
                        .take(12)
                        .collect::<String>(),
                );
            }
            PluginCommand::List { kind, json } => {
                let mut request = client.request(Method::GET, "/plugins");
                if let Some(kind) = kind {
                    request = request.query(&[("kind", kind)]);
                }
                let list = client.send(request).await?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&list)?);
                    return Ok(());
                }
                println!(
                    "{:<26} {:<10} {:<9} {:<8} SUMMARY",
                    "NAME", "VERSION", "KIND", "BUILTIN"
                );
                for p in list.as_array().into_iter().flatten() {
                    println!(
                        "{:<26} {:<10} {:<9} {:<8} {}",
                        p["name"].as_str().unwrap_or_default(),
                        p["version"].as_str().unwrap_or_default(),
                        p["kind"].as_str().unwrap_or_default(),
                        if p["builtin"] == true { "yes" } else { "no" },
                        p["description"]["summary"].as_str().unwrap_or_default(),
                    );
                }
            }
            PluginCommand::Show { name } => {
                let detail = client
                    .send(client.request(Method::GET, &format!("/plugins/{name}")))
                    .await?;
                println!("{}", serde_json::to_string_pretty(&detail)?);
            }
            PluginCommand::Rm { name } => {
                let (name, version) = match name.split_once('@') {
                    Some((n, v)) => (n.to_string(), Some(v.to_string())),
                    None => (name, None),
                };
                let mut request = client.request(Method::DELETE, &format!("/plugins/{name}"));
                if let Some(version) = version {
                    request = request.query(&[("version", version)]);
                }
                let removed = client.send(request).await?;
                for v in removed["removed"].as_array().into_iter().flatten() {
                    println!("removed {name}@{}", v.as_str().unwrap_or_default());
                }
            }
        }
        Ok(())
    }
}
