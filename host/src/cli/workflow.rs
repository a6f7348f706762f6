//! `weft workflow` and `weft run`: validate and run workflows on a running server, with live
//! progress, and show runs.

use super::client::{ApiError, Client, Remote};
use anyhow::Context as _;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

#[derive(Debug, clap::Args)]
pub(super) struct WorkflowArgs {
    #[command(flatten)]
    remote: Remote,
    #[command(subcommand)]
    command: WorkflowCommand,
}

#[derive(Debug, clap::Subcommand)]
enum WorkflowCommand {
    /// Check a workflow file against the server's plugins; every fault is listed.
    Validate {
        /// The workflow definition (JSON).
        file: PathBuf,
    },
    /// Run a workflow: a definition FILE (stored first) or the ID of a stored one.
    Run {
        /// A workflow file or a workflow id.
        workflow: String,
        /// A run input, NODE.PORT=JSON (repeatable), e.g. --input rows.in='"a,b\n1,2"'.
        #[arg(long = "input", value_name = "NODE.PORT=JSON")]
        inputs: Vec<String>,
        /// Print the finished run as JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, clap::Args)]
pub(super) struct RunArgs {
    #[command(flatten)]
    remote: Remote,
    #[command(subcommand)]
    command: RunCommand,
}

#[derive(Debug, clap::Subcommand)]
enum RunCommand {
    /// Show a run: per-node state, attempts, times and errors.
    Show {
        /// The run id.
        id: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

impl WorkflowArgs {
    pub(super) async fn run(self) -> anyhow::Result<()> {
        let client = Client::new(&self.remote)?;
        match self.command {
            WorkflowCommand::Validate { file } => validate(&client, &file).await,
            WorkflowCommand::Run {
                workflow,
                inputs,
                json,
            } => {
                let inputs = parse_inputs(&inputs)?;
                let run = run(&client, &self.remote, &workflow, inputs).await?;
                print_run(&run, json)?;
                match run["status"].as_str() {
                    Some("succeeded") => Ok(()),
                    other => anyhow::bail!(
                        "the run {}: {}",
                        other.unwrap_or("ended"),
                        run["error"].as_str().unwrap_or("see the table above")
                    ),
                }
            }
        }
    }
}

impl RunArgs {
    pub(super) async fn run(self) -> anyhow::Result<()> {
        let client = Client::new(&self.remote)?;
        match self.command {
            RunCommand::Show { id, json } => {
                let run = client
                    .send(client.request(Method::GET, &format!("/runs/{id}")))
                    .await?;
                print_run(&run, json)
            }
        }
    }
}

fn read_definition(file: &Path) -> anyhow::Result<Value> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not JSON", file.display()))
}

async fn validate(client: &Client, file: &Path) -> anyhow::Result<()> {
    let definition = read_definition(file)?;
    let request = client
        .request(Method::POST, "/workflows/validate")
        .json(&definition);
    match client.send(request).await {
        Ok(ok) => {
            println!(
                "{} is valid: {} nodes, {} edges",
                file.display(),
                ok["nodes"],
                ok["edges"]
            );
            Ok(())
        }
        Err(err) => {
            if let Some(api) = err.downcast_ref::<ApiError>()
                && let Some(faults) = api.body["details"]["errors"].as_array()
            {
                for fault in faults {
                    println!(
                        "{}: {} [{}]",
                        fault["path"].as_str().unwrap_or_default(),
                        fault["message"].as_str().unwrap_or_default(),
                        fault["kind"].as_str().unwrap_or_default()
                    );
                }
                anyhow::bail!("{} has {} problem(s)", file.display(), faults.len());
            }
            Err(err)
        }
    }
}

/// `NODE.PORT=JSON` pairs as the run's `inputs` object. A value that is not JSON is taken as text.
fn parse_inputs(pairs: &[String]) -> anyhow::Result<Value> {
    let mut inputs = serde_json::Map::new();
    for pair in pairs {
        let (target, value) = pair
            .split_once('=')
            .with_context(|| format!("--input {pair}: expected NODE.PORT=JSON"))?;
        let (node, port) = target
            .split_once('.')
            .with_context(|| format!("--input {pair}: expected NODE.PORT before '='"))?;
        let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.into()));
        inputs
            .entry(node.to_string())
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .expect("inputs of a node are an object")
            .insert(port.to_string(), value);
    }
    Ok(Value::Object(inputs))
}

/// Stores the workflow if `workflow` is a file, starts a run, follows it and returns it.
async fn run(
    client: &Client,
    remote: &Remote,
    workflow: &str,
    inputs: Value,
) -> anyhow::Result<Value> {
    let id = if Path::new(workflow).is_file() {
        let definition = read_definition(Path::new(workflow))?;
        let created = client
            .send(client.request(Method::POST, "/workflows").json(&definition))
            .await?;
        let id = created["id"].as_str().unwrap_or_default().to_string();
        eprintln!("stored workflow {id}");
        id
    } else {
        workflow.to_string()
    };
    let run = client
        .send(
            client
                .request(Method::POST, &format!("/workflows/{id}/execute"))
                .json(&json!({ "inputs": inputs })),
        )
        .await?;
    let run_id = run["id"].as_str().unwrap_or_default().to_string();
    eprintln!("run {run_id}");
    follow(client, remote, &run_id).await?;
    client
        .send(client.request(Method::GET, &format!("/runs/{run_id}")))
        .await
}

/// Shows a progress bar of finished nodes until the run ends: live over the run's WebSocket,
/// or by polling when the socket cannot be opened.
async fn follow(client: &Client, remote: &Remote, run_id: &str) -> anyhow::Result<()> {
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} nodes {msg}",
        )
        .expect("a valid template"),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    let url = format!(
        "{}/api/v1/runs/{run_id}/events",
        remote.url.trim_end_matches('/').replacen("http", "ws", 1)
    );
    let mut request = url.into_client_request()?;
    if let Some(token) = &remote.token {
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {token}").parse()?);
    }
    let mut running: BTreeSet<String> = BTreeSet::new();
    match tokio_tungstenite::connect_async(request).await {
        Ok((mut socket, _)) => {
            while let Some(Ok(message)) = socket.next().await {
                let Ok(text) = message.to_text() else {
                    continue;
                };
                let Ok(event) = serde_json::from_str::<Value>(text) else {
                    continue;
                };
                let node = event["node"].as_str().unwrap_or_default().to_string();
                match event["type"].as_str().unwrap_or_default() {
                    "snapshot" => {
                        let nodes = event["run"]["nodes"]
                            .as_array()
                            .cloned()
                            .unwrap_or_default();
                        bar.set_length(nodes.len() as u64);
                        bar.set_position(nodes.iter().filter(|n| finished(n)).count() as u64);
                        running.extend(
                            nodes
                                .iter()
                                .filter(|n| n["status"] == "running")
                                .filter_map(|n| n["id"].as_str().map(String::from)),
                        );
                    }
                    "node_started" => {
                        running.insert(node);
                    }
                    "node_succeeded" | "node_failed" | "node_skipped" => {
                        running.remove(&node);
                        bar.inc(1);
                    }
                    "node_retried" => {
                        bar.println(format!(
                            "node {node} failed attempt {}: {}; retrying",
                            event["attempt"],
                            event["error"]["message"].as_str().unwrap_or_default()
                        ));
                    }
                    "run_finished" => break,
                    _ => {}
                }
                bar.set_message(running_message(&running));
            }
        }
        Err(err) => {
            tracing::debug!(%err, "no event stream; polling");
            loop {
                let run = client
                    .send(client.request(Method::GET, &format!("/runs/{run_id}")))
                    .await?;
                let nodes = run["nodes"].as_array().cloned().unwrap_or_default();
                bar.set_length(nodes.len() as u64);
                bar.set_position(nodes.iter().filter(|n| finished(n)).count() as u64);
                if matches!(
                    run["status"].as_str(),
                    Some("succeeded" | "failed" | "cancelled")
                ) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    bar.finish_and_clear();
    Ok(())
}

fn finished(node: &Value) -> bool {
    matches!(
        node["status"].as_str(),
        Some("succeeded" | "failed" | "skipped" | "cancelled")
    )
}

fn running_message(running: &BTreeSet<String>) -> String {
    if running.is_empty() {
        return String::new();
    }
    let names: Vec<&str> = running.iter().map(String::as_str).take(4).collect();
    let more = running.len().saturating_sub(names.len());
    let mut message = format!("running: {}", names.join(", "));
    if more > 0 {
        message.push_str(&format!(" (+{more})"));
    }
    message
}

/// Prints a run as a per-node table (or JSON).
fn print_run(run: &Value, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(run)?);
        return Ok(());
    }
    println!(
        "run {}  workflow {} v{}  {}",
        run["id"].as_str().unwrap_or_default(),
        run["workflow_id"].as_str().unwrap_or_default(),
        run["workflow_version"],
        run["status"].as_str().unwrap_or_default()
    );
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_header(["node", "plugin", "status", "attempts", "time", "result"]);
    for node in run["nodes"].as_array().into_iter().flatten() {
        let time = match (node["started_at"].as_str(), node["finished_at"].as_str()) {
            (Some(start), Some(end)) => duration(start, end),
            _ => String::new(),
        };
        let result = match &node["error"] {
            Value::Null => {
                // Large outputs are kept out of line: say where, not what.
                let mut result = node["outputs"].to_string();
                for (port, stored) in node["stored_outputs"].as_object().into_iter().flatten() {
                    result.push_str(&format!(" {port}: {} bytes stored", stored["size"]));
                }
                abbreviate(&result)
            }
            error => abbreviate(error["message"].as_str().unwrap_or_default()),
        };
        table.add_row([
            node["id"].as_str().unwrap_or_default().to_string(),
            node["plugin"].as_str().unwrap_or_default().to_string(),
            node["status"].as_str().unwrap_or_default().to_string(),
            node["attempts"].to_string(),
            time,
            result,
        ]);
    }
    println!("{table}");
    if let Some(error) = run["error"].as_str() {
        println!("error: {error}");
    }
    Ok(())
}

fn duration(start: &str, end: &str) -> String {
    let parse = |t: &str| chrono::DateTime::parse_from_rfc3339(t).ok();
    match (parse(start), parse(end)) {
        (Some(s), Some(e)) => format!("{} ms", (e - s).num_milliseconds()),
        _ => String::new(),
    }
}

fn abbreviate(text: &str) -> String {
    const MAX: usize = 60;
    if text == "null" {
        return String::new();
    }
    if text.chars().count() <= MAX {
        return text.to_string();
    }
    let cut: String = text.chars().take(MAX - 1).collect();
    format!("{cut}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_from_flags() {
        let inputs = parse_inputs(&[
            "rows.in=a,b".into(),
            "rows.extra={\"k\":1}".into(),
            "m.a=3".into(),
        ])
        .unwrap();
        assert_eq!(
            inputs,
            json!({"rows": {"in": "a,b", "extra": {"k": 1}}, "m": {"a": 3}})
        );
        assert!(parse_inputs(&["nodot=1".into()]).is_err());
        assert!(parse_inputs(&["a.b".into()]).is_err());
    }

    #[test]
    fn long_results_are_cut() {
        assert_eq!(abbreviate("null"), "");
        assert_eq!(abbreviate("short"), "short");
        assert_eq!(abbreviate(&"x".repeat(100)).chars().count(), 60);
    }
}
