//! A Jupyter kernel as Weft drives it: a notebook's Jupyter session and one WebSocket on the
//! kernel's message channels (the Jupyter messaging protocol, JSON over the server's
//! `/api/kernels/<id>/channels`). Runs one execution at a time, turning the kernel's messages
//! into nbformat outputs as they come, and notices a kernel that dies or stops answering.

use super::execution::{ExecutionStatus, Outcome};
use super::jupyter::Jupyter;
use super::outputs::{self, Outputs};
use super::quickack::QuickAck;
use crate::error::{Code, Error, Result};
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use serde::Serialize;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use utoipa::ToSchema;

type Socket = WebSocketStream<QuickAck>;

/// Where a notebook's kernel is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum KernelState {
    /// No kernel attached: the next execution starts or attaches one.
    Detached,
    /// Jupyter is starting it.
    Starting,
    /// Waiting for code.
    Idle,
    /// Running code.
    Busy,
    /// It died and Jupyter is starting a new one.
    Restarting,
    /// It died and could not be restarted.
    Dead,
    /// The connection to it was lost (its session's container went away).
    Disconnected,
    /// Shut down with its session.
    Shutdown,
}

impl KernelState {
    fn from_jupyter(state: &str) -> Option<Self> {
        Some(match state {
            "starting" => Self::Starting,
            "idle" => Self::Idle,
            "busy" => Self::Busy,
            "restarting" | "autorestarting" => Self::Restarting,
            "dead" => Self::Dead,
            _ => return None,
        })
    }

    /// Whether the kernel can take an execution (now or once it has started).
    pub fn usable(self) -> bool {
        matches!(
            self,
            Self::Starting | Self::Idle | Self::Busy | Self::Restarting
        )
    }
}

/// How long an execution may run, how long an interrupted one has to stop, and how much of
/// its output is kept.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// How long an execution may run before it is interrupted.
    pub timeout: Duration,
    /// How long an interrupted execution has to stop before the kernel is restarted.
    pub interrupt_grace: Duration,
    /// Bytes of output one execution keeps (the tail).
    pub max_output_bytes: usize,
}

/// Kernel messages waiting for the execution that asked; past it the kernel's connection is
/// not read (the kernel waits) until the execution catches up. With [`MAX_MESSAGE`], what an
/// execution holds at worst.
const REPLIES: usize = 4;

/// Largest kernel message read (a larger one closes the connection): far above any output an
/// execution keeps, and what bounds the memory of a reply in flight.
const MAX_MESSAGE: usize = 32 * 1024 * 1024;

/// How long a kernel-info request of [`Kernel::nudge`] waits before it is sent again.
const NUDGE_INTERVAL: Duration = Duration::from_millis(500);

/// Called on every change of the kernel's state.
pub type StateHook = Arc<dyn Fn(KernelState) + Send + Sync>;

/// The request whose replies the reader hands over.
struct Waiter {
    msg_id: String,
    replies: mpsc::Sender<Value>,
}

/// A notebook's kernel and the connection to its channels.
pub struct Kernel {
    /// Jupyter's id of the kernel.
    pub kernel_id: String,
    /// Jupyter's session that holds the kernel.
    pub jupyter_session: String,
    /// The client of the Jupyter server the kernel runs in.
    pub jupyter: Jupyter,
    client_session: String,
    /// How long a (re)started kernel has to answer.
    start_timeout: Duration,
    /// Set when Weft restarted the kernel: the next execution first waits for it to answer, as
    /// after a restart of Jupyter's own (the state says `restarting` then).
    restarted: AtomicBool,
    sink: tokio::sync::Mutex<SplitSink<Socket, Message>>,
    waiter: Arc<Mutex<Option<Waiter>>>,
    state: watch::Receiver<KernelState>,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for Kernel {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

fn lost(why: impl std::fmt::Display) -> Error {
    Error::new(
        Code::KernelUnavailable,
        format!("cannot reach the kernel: {why}"),
    )
    .hint("the session may be restarting; retry")
}

impl Kernel {
    /// Binds the notebook at `path` to a kernel (the one Jupyter already has for it, or a new
    /// one), connects to its channels and waits until it answers.
    pub async fn connect(
        jupyter: Jupyter,
        path: &str,
        kernel_name: &str,
        start_timeout: Duration,
        on_state: StateHook,
    ) -> Result<Self> {
        let (jupyter_session, kernel_id) = jupyter.open_session(path, kernel_name).await?;
        let client_session = uuid::Uuid::new_v4().to_string();
        let request = jupyter.channels(&kernel_id, &client_session)?;
        let (host, port) = match (request.uri().host(), request.uri().port_u16()) {
            (Some(host), port) => (host.to_string(), port.unwrap_or(80)),
            _ => return Err(lost("the kernel's address has no host")),
        };
        let stream = QuickAck::connect(&host, port).await.map_err(lost)?;
        let config = WebSocketConfig::default().max_message_size(Some(MAX_MESSAGE));
        let (socket, _) =
            tokio_tungstenite::client_async_with_config(request, stream, Some(config))
                .await
                .map_err(lost)?;
        let (sink, stream) = socket.split();
        let (state_tx, state) = watch::channel(KernelState::Starting);
        let waiter = Arc::new(Mutex::new(None));
        let reader = tokio::spawn(read(stream, waiter.clone(), state_tx, on_state));
        let kernel = Self {
            kernel_id,
            jupyter_session,
            jupyter,
            client_session,
            start_timeout,
            restarted: AtomicBool::new(false),
            sink: tokio::sync::Mutex::new(sink),
            waiter,
            state,
            reader,
        };
        kernel.nudge().await?;
        Ok(kernel)
    }

    /// Waits until the kernel answers on its shell and on its iopub channel. After a (re)start
    /// the server's iopub subscription joins late and drops what the kernel published before
    /// (an execution sent then would never see its closing idle status), so, as Jupyter's own
    /// server does, this asks for the kernel's info until one request is answered on both.
    async fn nudge(&self) -> Result<()> {
        let deadline = tokio::time::Instant::now() + self.start_timeout;
        loop {
            let mut replies = self
                .request("shell", "kernel_info_request", json!({}))
                .await?;
            let round = (tokio::time::Instant::now() + NUDGE_INTERVAL).min(deadline);
            let answered = answered_on_both(&mut replies, round).await;
            self.clear_waiter();
            if answered? {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::new(
                    Code::KernelUnavailable,
                    format!("the kernel did not answer within {} s", self.start_timeout.as_secs()),
                )
                .hint("the kernel may be out of memory; retry, or raise [notebooks] kernel_start_timeout_secs"));
            }
        }
    }

    /// The kernel's state now.
    pub fn state(&self) -> KernelState {
        *self.state.borrow()
    }

    /// Whether it can take an execution.
    pub fn usable(&self) -> bool {
        !self.reader.is_finished() && self.state().usable()
    }

    /// Sends a request; its replies (and a dying kernel's status) come on the receiver.
    async fn request(
        &self,
        channel: &str,
        msg_type: &str,
        content: Value,
    ) -> Result<mpsc::Receiver<Value>> {
        let msg_id = uuid::Uuid::new_v4().to_string();
        let message = json!({
            "header": {
                "msg_id": msg_id, "msg_type": msg_type, "username": "weft",
                "session": self.client_session, "version": "5.3",
                "date": chrono::Utc::now().to_rfc3339(),
            },
            "parent_header": {}, "metadata": {}, "content": content,
            "channel": channel, "buffers": [],
        });
        let (replies, receiver) = mpsc::channel(REPLIES);
        *self.waiter.lock().expect("waiter poisoned") = Some(Waiter { msg_id, replies });
        self.sink
            .lock()
            .await
            .send(Message::Text(message.to_string().into()))
            .await
            .map_err(lost)?;
        Ok(receiver)
    }

    fn clear_waiter(&self) {
        self.waiter.lock().expect("waiter poisoned").take();
    }

    /// Runs `code`, handing each output to `on_output` as it comes. Past `limits.timeout` the
    /// kernel is interrupted; if it does not stop within the grace, it is restarted.
    pub async fn execute(
        &self,
        code: &str,
        limits: Limits,
        on_output: &mut (dyn FnMut(&Value) + Send),
    ) -> Outcome {
        let content = json!({
            "code": code, "silent": false, "store_history": true,
            "user_expressions": {}, "allow_stdin": false, "stop_on_error": true,
        });
        let mut collected = Collected::new(limits.max_output_bytes);
        if (self.restarted.swap(false, Ordering::SeqCst) || self.state() == KernelState::Restarting)
            && let Err(e) = self.nudge().await
        {
            self.restarted.store(true, Ordering::SeqCst);
            return collected.end(ExecutionStatus::Failed, Some(e.message));
        }
        let mut replies = match self.request("shell", "execute_request", content).await {
            Ok(replies) => replies,
            Err(e) => return collected.end(ExecutionStatus::Failed, Some(e.message)),
        };
        let outcome = self
            .collect(&mut replies, &mut collected, limits, on_output)
            .await;
        self.clear_waiter();
        outcome
    }

    async fn collect(
        &self,
        replies: &mut mpsc::Receiver<Value>,
        collected: &mut Collected,
        limits: Limits,
        on_output: &mut (dyn FnMut(&Value) + Send),
    ) -> Outcome {
        let mut deadline = tokio::time::Instant::now() + limits.timeout;
        let mut interrupted = false;
        loop {
            match tokio::time::timeout_at(deadline, replies.recv()).await {
                Ok(Some(message)) => {
                    if let Some(died) = collected.take(&message, on_output) {
                        let message = match died {
                            KernelState::Dead => {
                                "the kernel died while running this code (it exited or ran out of memory) and could not be restarted; the next execution starts a new one"
                            }
                            _ => {
                                "the kernel died while running this code (it exited or ran out of memory); Jupyter restarted it, so its variables are gone"
                            }
                        };
                        return collected.end(ExecutionStatus::KernelDied, Some(message.into()));
                    }
                    if collected.finished() {
                        return if interrupted {
                            let message = format!(
                                "interrupted after running for {} s, its timeout",
                                limits.timeout.as_secs_f64()
                            );
                            collected.end(ExecutionStatus::Timeout, Some(message))
                        } else if collected.raised {
                            collected.end(ExecutionStatus::Error, None)
                        } else {
                            collected.end(ExecutionStatus::Ok, None)
                        };
                    }
                }
                Ok(None) => {
                    return collected.end(
                        ExecutionStatus::Failed,
                        Some("the connection to the kernel was lost while it ran this code".into()),
                    );
                }
                Err(_) if !interrupted => {
                    tracing::info!(kernel = %self.kernel_id, "execution timed out; interrupting the kernel");
                    interrupted = true;
                    deadline = tokio::time::Instant::now() + limits.interrupt_grace;
                    if let Err(e) = self.jupyter.interrupt(&self.kernel_id).await {
                        tracing::warn!(kernel = %self.kernel_id, error = %e, "cannot interrupt the kernel");
                    }
                }
                Err(_) => {
                    tracing::warn!(kernel = %self.kernel_id, "the kernel ignored the interrupt; restarting it");
                    let restarted = self.jupyter.restart(&self.kernel_id).await;
                    self.restarted.store(true, Ordering::SeqCst);
                    let message = format!(
                        "ran past its timeout of {} s and did not stop when interrupted; {}",
                        limits.timeout.as_secs_f64(),
                        match restarted {
                            Ok(()) =>
                                "the kernel was restarted, so its variables are gone".to_string(),
                            Err(e) => format!("restarting the kernel failed too: {}", e.message),
                        }
                    );
                    return collected.end(ExecutionStatus::Timeout, Some(message));
                }
            }
        }
    }

    /// Shuts the kernel down (ending its Jupyter session) and closes the connection.
    pub async fn shutdown(&self) {
        if let Err(e) = self.jupyter.close_session(&self.jupyter_session).await {
            tracing::warn!(kernel = %self.kernel_id, error = %e, "cannot shut the kernel down");
        }
        self.reader.abort();
    }
}

/// Whether a kernel-info request whose replies come on `replies` is answered on the shell
/// (its reply) and on iopub (its `busy` or `idle` status) before `until`.
async fn answered_on_both(
    replies: &mut mpsc::Receiver<Value>,
    until: tokio::time::Instant,
) -> Result<bool> {
    let (mut shell, mut iopub) = (false, false);
    while !(shell && iopub) {
        let reply = match tokio::time::timeout_at(until, replies.recv()).await {
            Ok(Some(reply)) => reply,
            Ok(None) => return Err(lost("the connection closed while the kernel started")),
            Err(_) => return Ok(false),
        };
        // Only this request's statuses come here, besides a dying kernel's.
        let state = reply["content"]["execution_state"].as_str();
        match reply["header"]["msg_type"].as_str() {
            Some("kernel_info_reply") => shell = true,
            Some("status") if matches!(state, Some("busy" | "idle")) => iopub = true,
            _ => {}
        }
    }
    Ok(true)
}

/// Reads the kernel's messages: tracks its state and hands the current request's replies over.
async fn read(
    mut stream: SplitStream<Socket>,
    waiter: Arc<Mutex<Option<Waiter>>>,
    state: watch::Sender<KernelState>,
    on_state: StateHook,
) {
    while let Some(Ok(message)) = stream.next().await {
        let Message::Text(text) = message else {
            continue;
        };
        let Ok(message) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        let mut dying = false;
        if message["header"]["msg_type"] == "status"
            && let Some(now) = message["content"]["execution_state"]
                .as_str()
                .and_then(KernelState::from_jupyter)
        {
            dying = matches!(now, KernelState::Restarting | KernelState::Dead);
            if state.send_replace(now) != now {
                on_state(now);
            }
        }
        let replies = waiter
            .lock()
            .expect("waiter poisoned")
            .as_ref()
            .filter(|w| dying || message["parent_header"]["msg_id"] == w.msg_id.as_str())
            .map(|w| w.replies.clone());
        if let Some(replies) = replies {
            // Waits while the execution is behind: the kernel's output is not read faster
            // than it is handled. An execution that ended dropped its receiver.
            let _ = replies.send(message).await;
        }
    }
    state.send_replace(KernelState::Disconnected);
    on_state(KernelState::Disconnected);
    // Dropping the sender ends whatever waits for replies.
    waiter.lock().expect("waiter poisoned").take();
}

/// An execution's outputs and replies so far.
struct Collected {
    outputs: Outputs,
    execution_count: Option<i64>,
    raised: bool,
    replied: bool,
    idle: bool,
    clear_on_next: bool,
    /// Output bytes announced live; past the budget they are not, once a note said so.
    announced: usize,
    max_output_bytes: usize,
    muted: bool,
}

impl Collected {
    fn new(max_output_bytes: usize) -> Self {
        Self {
            outputs: Outputs::new(max_output_bytes),
            execution_count: None,
            raised: false,
            replied: false,
            idle: false,
            clear_on_next: false,
            announced: 0,
            max_output_bytes,
            muted: false,
        }
    }

    /// Announces `output` live while the execution's budget allows.
    fn announce(&mut self, output: &Value, on_output: &mut (dyn FnMut(&Value) + Send)) {
        let weight = outputs::size(output);
        if !self.muted && self.announced + weight <= self.max_output_bytes {
            self.announced += weight;
            on_output(output);
        } else if !std::mem::replace(&mut self.muted, true) {
            on_output(&json!({
                "output_type": "display_data",
                "data": {"text/plain": format!(
                    "[live output stopped after {} bytes; the execution's result keeps its last {} bytes]",
                    self.announced, self.max_output_bytes
                )},
                "metadata": {"weft": {"truncated": true}},
            }));
        }
    }

    /// Takes one message; returns the kernel's state if it died.
    fn take(
        &mut self,
        message: &Value,
        on_output: &mut (dyn FnMut(&Value) + Send),
    ) -> Option<KernelState> {
        let content = &message["content"];
        let output = match message["header"]["msg_type"].as_str().unwrap_or_default() {
            "status" => {
                match content["execution_state"]
                    .as_str()
                    .and_then(KernelState::from_jupyter)
                {
                    Some(KernelState::Idle) => self.idle = true,
                    Some(died @ (KernelState::Restarting | KernelState::Dead)) => {
                        return Some(died);
                    }
                    _ => {}
                }
                None
            }
            "execute_input" => {
                self.execution_count = content["execution_count"].as_i64();
                None
            }
            "execute_reply" => {
                self.replied = true;
                self.execution_count = content["execution_count"].as_i64().or(self.execution_count);
                None
            }
            "stream" => Some(json!({
                "output_type": "stream", "name": content["name"], "text": content["text"],
            })),
            "display_data" => Some(json!({
                "output_type": "display_data", "data": content["data"], "metadata": content["metadata"],
            })),
            "execute_result" => Some(json!({
                "output_type": "execute_result", "execution_count": content["execution_count"],
                "data": content["data"], "metadata": content["metadata"],
            })),
            "error" => {
                self.raised = true;
                Some(json!({
                    "output_type": "error", "ename": content["ename"],
                    "evalue": content["evalue"], "traceback": content["traceback"],
                }))
            }
            "clear_output" => {
                if content["wait"].as_bool().unwrap_or(false) {
                    self.clear_on_next = true;
                } else {
                    self.outputs.clear();
                }
                None
            }
            _ => None,
        };
        if let Some(output) = output {
            if std::mem::take(&mut self.clear_on_next) {
                self.outputs.clear();
            }
            self.announce(&output, on_output);
            self.outputs.push(output);
        }
        None
    }

    /// Both the reply and the kernel's return to idle have come: every output is in.
    fn finished(&self) -> bool {
        self.replied && self.idle
    }

    fn end(&mut self, status: ExecutionStatus, message: Option<String>) -> Outcome {
        Outcome {
            status,
            execution_count: self.execution_count,
            truncated: self.outputs.truncated(),
            outputs: self.outputs.take(),
            message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(msg_type: &str, content: Value) -> Value {
        json!({"header": {"msg_type": msg_type}, "parent_header": {"msg_id": "m"}, "content": content})
    }

    #[test]
    fn kernel_messages_become_nbformat_outputs_and_end_on_reply_and_idle() {
        let mut collected = Collected::new(1 << 20);
        let mut seen = Vec::new();
        let mut on_output = |o: &Value| seen.push(o["output_type"].as_str().unwrap().to_string());
        for m in [
            message("status", json!({"execution_state": "busy"})),
            message("execute_input", json!({"execution_count": 3, "code": "x"})),
            message("stream", json!({"name": "stdout", "text": "hi\n"})),
            message(
                "display_data",
                json!({"data": {"image/png": "iVBO"}, "metadata": {}, "transient": {}}),
            ),
            message("clear_output", json!({"wait": true})),
            message(
                "execute_result",
                json!({"execution_count": 3, "data": {"text/plain": "2"}, "metadata": {}}),
            ),
            message(
                "error",
                json!({"ename": "ValueError", "evalue": "bad", "traceback": ["tb"]}),
            ),
            message(
                "execute_reply",
                json!({"status": "error", "execution_count": 3}),
            ),
        ] {
            assert!(collected.take(&m, &mut on_output).is_none());
            assert!(!collected.finished(), "not before idle");
        }
        collected.take(
            &message("status", json!({"execution_state": "idle"})),
            &mut on_output,
        );
        assert!(collected.finished());
        assert_eq!(seen, ["stream", "display_data", "execute_result", "error"]);
        let outcome = collected.end(ExecutionStatus::Error, None);
        assert_eq!(outcome.execution_count, Some(3));
        let kinds: Vec<&str> = outcome
            .outputs
            .iter()
            .map(|o| o["output_type"].as_str().unwrap())
            .collect();
        assert_eq!(
            kinds,
            ["execute_result", "error"],
            "clear_output(wait) cleared on the next output"
        );
        assert_eq!(outcome.outputs[1]["traceback"], json!(["tb"]));
        assert!(collected.raised);
    }

    #[test]
    fn a_restarting_or_dead_status_is_a_dead_kernel() {
        let mut collected = Collected::new(1 << 20);
        let mut ignore = |_: &Value| {};
        for (state, want) in [
            ("restarting", KernelState::Restarting),
            ("dead", KernelState::Dead),
        ] {
            let status = json!({"header": {"msg_type": "status"}, "parent_header": {}, "content": {"execution_state": state}});
            assert_eq!(collected.take(&status, &mut ignore), Some(want));
        }
    }
}
