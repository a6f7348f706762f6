//! A client of one Jupyter Server's REST API, reached at a session's container address with
//! the secret Weft gave it: contents (the `.ipynb` files), Jupyter sessions (a notebook bound to
//! a kernel), and kernel interrupt and restart. The kernel's message channels are in
//! [`super::kernel`].

use crate::error::{Code, Error, Result};
use crate::workspace::sessions::Upstream;
use crate::workspace::upstream::{EXCERPT_CHARS, excerpt, read_limited, read_prefix};
use reqwest::{Method, StatusCode, Url};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Request;

/// Longest answer read from Jupyter but for a notebook's content.
const MAX_ANSWER: u64 = 1024 * 1024;

/// One Jupyter Server: the user's, so its answers are read with a bound, its redirects are not
/// followed (the client is [`crate::workspace::upstream::client`]) and its words reach callers
/// only as short excerpts.
#[derive(Clone)]
pub struct Jupyter {
    http: reqwest::Client,
    base: Url,
    secret: String,
    /// Longest notebook read (its JSON model holds the file's text, escaped).
    max_notebook_answer: u64,
    /// The Weft session whose container runs it.
    pub session_id: String,
}

fn unavailable(what: &str, why: impl std::fmt::Display) -> Error {
    Error::new(
        Code::KernelUnavailable,
        format!("Jupyter did not {what}: {why}"),
    )
    .hint("the session may be restarting; retry, or look at the session's status")
}

impl Jupyter {
    /// The server behind a Jupyter session's upstream, for notebooks of at most
    /// `max_file_bytes`.
    pub fn new(http: reqwest::Client, upstream: &Upstream, max_file_bytes: u64) -> Result<Self> {
        let base = Url::parse(&format!("{}/", upstream.base))
            .map_err(|e| Error::internal(format!("bad Jupyter address: {e}")))?;
        Ok(Self {
            http,
            base,
            secret: upstream.secret.clone(),
            max_notebook_answer: max_file_bytes.saturating_mul(2).saturating_add(MAX_ANSWER),
            session_id: upstream.session_id.clone(),
        })
    }

    /// `api/<parts...>/<path segments>`, each segment escaped.
    fn url(&self, parts: &[&str], path: Option<&str>) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().push("api").extend(parts);
            if let Some(path) = path {
                segments.extend(path.split('/'));
            }
        }
        url
    }

    async fn call(
        &self,
        what: &str,
        method: Method,
        url: Url,
        body: Option<Value>,
    ) -> Result<reqwest::Response> {
        let mut request = self
            .http
            .request(method, url)
            .header("authorization", format!("token {}", self.secret));
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.map_err(|e| unavailable(what, e))
    }

    /// The JSON of a successful answer of at most `limit` bytes; anything else is an error
    /// quoting at most a short, cleaned excerpt of what the server said.
    async fn expect_within(
        &self,
        what: &str,
        response: reqwest::Response,
        limit: u64,
    ) -> Result<Value> {
        let status = response.status();
        if status.is_redirection() {
            let to = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .map(excerpt)
                .unwrap_or_default();
            return Err(unavailable(
                what,
                format!("it answered {status} to '{to}'; redirects are not followed"),
            ));
        }
        if !status.is_success() {
            let said = read_prefix(response, 4 * EXCERPT_CHARS).await;
            let said = excerpt(&String::from_utf8_lossy(&said));
            return Err(unavailable(what, format!("{status} {said}")));
        }
        let body = read_limited(response, limit)
            .await
            .map_err(|e| unavailable(what, e))?;
        Ok(serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    async fn expect(&self, what: &str, response: reqwest::Response) -> Result<Value> {
        self.expect_within(what, response, MAX_ANSWER).await
    }

    /// The text of the file at `path`, or `None` when the server has no such file.
    pub async fn read(&self, path: &str) -> Result<Option<String>> {
        let mut url = self.url(&["contents"], Some(path));
        url.query_pairs_mut()
            .append_pair("type", "file")
            .append_pair("format", "text")
            .append_pair("content", "1");
        let response = self
            .call("read the notebook", Method::GET, url, None)
            .await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let model = self
            .expect_within("read the notebook", response, self.max_notebook_answer)
            .await?;
        Ok(model["content"].as_str().map(String::from))
    }

    /// Writes `text` to `path` as it is (Jupyter's own editor sees the change).
    pub async fn write(&self, path: &str, text: &str) -> Result<()> {
        let url = self.url(&["contents"], Some(path));
        let body = json!({"type": "file", "format": "text", "content": text});
        let response = self
            .call("save the notebook", Method::PUT, url, Some(body))
            .await?;
        self.expect("save the notebook", response).await.map(drop)
    }

    /// Deletes the file at `path`; a missing file is no error.
    pub async fn delete(&self, path: &str) -> Result<()> {
        let url = self.url(&["contents"], Some(path));
        let response = self
            .call("delete the notebook", Method::DELETE, url, None)
            .await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(());
        }
        self.expect("delete the notebook", response).await.map(drop)
    }

    /// Binds the notebook at `path` to a kernel of `kernel_name` (the one already bound, if
    /// any): returns the Jupyter session's id and the kernel's.
    pub async fn open_session(&self, path: &str, kernel_name: &str) -> Result<(String, String)> {
        let body = json!({
            "path": path, "name": path, "type": "notebook",
            "kernel": {"name": kernel_name},
        });
        let url = self.url(&["sessions"], None);
        let response = self
            .call("start a kernel", Method::POST, url, Some(body))
            .await?;
        let model = self.expect("start a kernel", response).await?;
        match (model["id"].as_str(), model["kernel"]["id"].as_str()) {
            (Some(session), Some(kernel)) => Ok((session.into(), kernel.into())),
            _ => Err(unavailable(
                "start a kernel",
                format!("answered {}", excerpt(&model.to_string())),
            )),
        }
    }

    /// Ends a Jupyter session, shutting its kernel down.
    pub async fn close_session(&self, id: &str) -> Result<()> {
        let url = self.url(&["sessions", id], None);
        let response = self
            .call("shut the kernel down", Method::DELETE, url, None)
            .await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(());
        }
        self.expect("shut the kernel down", response)
            .await
            .map(drop)
    }

    /// Sends the kernel SIGINT (Python raises KeyboardInterrupt).
    pub async fn interrupt(&self, kernel_id: &str) -> Result<()> {
        self.kernel_action(kernel_id, "interrupt").await
    }

    /// Restarts the kernel: a new process, its variables gone.
    pub async fn restart(&self, kernel_id: &str) -> Result<()> {
        self.kernel_action(kernel_id, "restart").await
    }

    async fn kernel_action(&self, kernel_id: &str, action: &str) -> Result<()> {
        let what = format!("{action} the kernel");
        let url = self.url(&["kernels", kernel_id, action], None);
        let response = self.call(&what, Method::POST, url, None).await?;
        self.expect(&what, response).await.map(drop)
    }

    /// The WebSocket request for the kernel's message channels, as client `client_session`.
    pub fn channels(&self, kernel_id: &str, client_session: &str) -> Result<Request> {
        let mut url = self.url(&["kernels", kernel_id, "channels"], None);
        url.query_pairs_mut()
            .append_pair("session_id", client_session);
        let scheme = if url.scheme() == "https" { "wss" } else { "ws" };
        url.set_scheme(scheme)
            .map_err(|()| Error::internal("cannot make a WebSocket address"))?;
        let mut request = url
            .as_str()
            .into_client_request()
            .map_err(|e| Error::internal(format!("bad kernel address: {e}")))?;
        request.headers_mut().insert(
            "authorization",
            format!("token {}", self.secret)
                .parse()
                .map_err(|_| Error::internal("bad Jupyter secret"))?,
        );
        Ok(request)
    }
}
