//! `/ws/result_submit`: SwarmPilot's WebSocket on which a task instance reports results
//! without an HTTP request per task.
//!
//! The protocol is SwarmPilot's scheduler's: the instance first sends `{"type": "register",
//! "instance_id"}` (within 10 s) and is answered `{"type": "registered", ...}`; then
//! `{"type": "result", "task_id", "execution_time", "result", ...}` (or `{"type": "batch",
//! "messages": [...]}` of them) is answered per task with `{"type": "ack", "task_id",
//! "success", "message"}`, `ping` with `pong`; `task_ack` is noted. Who may report is decided
//! as on the HTTP paths, at registration and again for every result. Weft sends tasks over
//! HTTP (`/queue/submit`), never over this socket.

use super::Completion;
use super::Scheduler;
use super::access::SpAccess;
use super::raw::RawJson;
use super::routes::record;
use crate::auth::Auth;
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::response::Response;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use std::time::Duration;

/// How long a new connection may take to register.
const REGISTER_WITHIN: Duration = Duration::from_secs(10);
/// Largest message read: a batch of results.
const MAX_MESSAGE: usize = 16 << 20;

pub(super) async fn serve(
    State(scheduler): State<Scheduler>,
    State(auth): State<Auth>,
    access: SpAccess,
    upgrade: WebSocketUpgrade,
) -> Response {
    upgrade
        .max_message_size(MAX_MESSAGE)
        .on_upgrade(move |socket| session(Reporting { scheduler, auth }, access, socket))
}

/// The services a result socket reports to.
struct Reporting {
    scheduler: Scheduler,
    auth: Auth,
}

/// What every message has. Each kind is then read on its own: results are kept as raw JSON,
/// which serde cannot buffer inside an internally tagged enum.
#[derive(Deserialize)]
struct Kind {
    #[serde(rename = "type", default)]
    kind: String,
}

#[derive(Deserialize)]
struct Register {
    #[serde(default)]
    instance_id: Option<String>,
}

#[derive(Deserialize)]
struct Batch {
    #[serde(default)]
    messages: Vec<Box<RawValue>>,
}

#[derive(Deserialize)]
struct TaskAck {
    #[serde(default)]
    task_id: Option<String>,
    #[serde(default)]
    success: bool,
    #[serde(default)]
    message: Option<String>,
}

#[derive(Deserialize)]
struct ResultMessage {
    #[serde(default)]
    task_id: Option<String>,
    #[serde(default)]
    execution_time: Option<f64>,
    #[serde(default)]
    result: Option<RawJson>,
    #[serde(default)]
    error: Option<String>,
}

async fn session(state: Reporting, access: SpAccess, mut socket: WebSocket) {
    let Some(instance_id) = register(&state, &access, &mut socket).await else {
        return;
    };
    tracing::info!(instance = %instance_id, "task instance connected for results");
    while let Some(Ok(message)) = socket.recv().await {
        let text = match message {
            Message::Text(text) => text,
            Message::Close(_) => break,
            _ => continue,
        };
        let answers = match kind(&text).as_str() {
            "ping" => vec![json!({"type": "pong"})],
            "result" => vec![take(&state, &access, &instance_id, &text).await],
            "batch" => match serde_json::from_str::<Batch>(&text) {
                Ok(batch) => {
                    let mut acks = Vec::with_capacity(batch.messages.len());
                    for message in batch.messages {
                        acks.push(take(&state, &access, &instance_id, message.get()).await);
                    }
                    acks
                }
                Err(err) => {
                    vec![json!({"type": "error", "message": format!("not a batch: {err}")})]
                }
            },
            "task_ack" => {
                if let Ok(ack) = serde_json::from_str::<TaskAck>(&text) {
                    tracing::debug!(instance = %instance_id, task = ?ack.task_id, success = ack.success, message = ?ack.message, "task acknowledged");
                }
                Vec::new()
            }
            "register" => vec![json!({"type": "error", "message": "already registered"})],
            other => {
                vec![json!({"type": "error", "message": format!("Unknown message type: {other}")})]
            }
        };
        for answer in answers {
            if socket
                .send(Message::Text(answer.to_string().into()))
                .await
                .is_err()
            {
                return;
            }
        }
    }
}

/// Waits for the registration; answers it, or closes the socket with the reason (1008, as
/// SwarmPilot does) and returns `None`.
async fn register(state: &Reporting, access: &SpAccess, socket: &mut WebSocket) -> Option<String> {
    let first = tokio::time::timeout(REGISTER_WITHIN, socket.recv()).await;
    let refusal = match first {
        Err(_) => "Registration timeout".to_string(),
        Ok(Some(Ok(Message::Text(text)))) if kind(&text) == "register" => {
            let id = serde_json::from_str::<Register>(&text)
                .ok()
                .and_then(|r| r.instance_id)
                .filter(|id| !id.trim().is_empty());
            match id {
                None => "instance_id required".to_string(),
                Some(id) => match state.scheduler.reporting_instance(&id, access.reporter()) {
                    Ok(_) => {
                        let registered = json!({
                            "type": "registered",
                            "instance_id": id,
                            "message": "Registration successful",
                        });
                        let sent = socket
                            .send(Message::Text(registered.to_string().into()))
                            .await;
                        return sent.is_ok().then_some(id);
                    }
                    Err(err) => err.message,
                },
            }
        }
        Ok(Some(Ok(Message::Text(_)))) => "First message must be registration".to_string(),
        Ok(_) => return None,
    };
    let frame = CloseFrame {
        code: close_code::POLICY,
        // A close reason is at most 123 bytes.
        reason: refusal.chars().take(120).collect::<String>().into(),
    };
    let _ = socket.send(Message::Close(Some(frame))).await;
    None
}

/// The `type` of a message; empty when it has none or is not a JSON object.
fn kind(text: &str) -> String {
    serde_json::from_str::<Kind>(text)
        .map(|k| k.kind)
        .unwrap_or_default()
}

/// Records one result message and builds its acknowledgement.
async fn take(state: &Reporting, access: &SpAccess, instance_id: &str, text: &str) -> Value {
    let Ok(ResultMessage {
        task_id: Some(task_id),
        execution_time: Some(execution_time),
        result: Some(output),
        error,
    }) = serde_json::from_str::<ResultMessage>(text)
    else {
        return ack(None, false, "Missing required fields");
    };
    let report = Completion {
        task_id: task_id.clone(),
        instance_id: instance_id.to_string(),
        execution_time,
        result: Some(output),
        error,
    };
    match record(&state.scheduler, &state.auth, access, report).await {
        Ok(_) => ack(Some(&task_id), true, "Result received"),
        Err(err) => ack(Some(&task_id), false, &err.message),
    }
}

fn ack(task_id: Option<&str>, success: bool, message: &str) -> Value {
    json!({
        "type": "ack",
        "task_id": task_id.unwrap_or("unknown"),
        "success": success,
        "message": message,
    })
}
