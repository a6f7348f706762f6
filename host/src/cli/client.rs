//! A small client of Weft's HTTP API for the CLI commands that talk to a running server.

use anyhow::Context as _;
use reqwest::{Method, RequestBuilder};
use serde_json::Value;

/// Where the server is and who is calling.
#[derive(Debug, Clone, clap::Args)]
pub(super) struct Remote {
    /// Base URL of the Weft server.
    #[arg(
        long,
        env = "WEFT_URL",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub url: String,
    /// API token (as printed by `weft admin bootstrap` or issued by POST /api/v1/tokens).
    #[arg(long, env = "WEFT_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
}

/// An authenticated API client.
pub(super) struct Client {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Client {
    /// A client for `remote`; fails early without a token.
    pub(super) fn new(remote: &Remote) -> anyhow::Result<Self> {
        let token = remote
            .token
            .clone()
            .context("no API token: pass --token or set WEFT_TOKEN")?;
        Ok(Self {
            base: remote.url.trim_end_matches('/').to_string(),
            token,
            http: reqwest::Client::new(),
        })
    }

    /// A request to `/api/v1{path}`.
    pub(super) fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}/api/v1{path}", self.base))
            .bearer_auth(&self.token)
    }

    /// Sends `request` and returns the JSON answer, turning an API error into a readable one.
    pub(super) async fn send(&self, request: RequestBuilder) -> anyhow::Result<Value> {
        let response = request
            .send()
            .await
            .with_context(|| format!("cannot reach Weft at {}", self.base))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if status.is_success() {
            return Ok(body);
        }
        Err(ApiError {
            status: status.as_u16(),
            body,
        }
        .into())
    }
}

/// An error answer of the API, kept whole so commands can show its details.
#[derive(Debug)]
pub(super) struct ApiError {
    pub status: u16,
    pub body: Value,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} (error {}, HTTP {})",
            self.body["message"].as_str().unwrap_or("request failed"),
            self.body["code"].as_str().unwrap_or("?"),
            self.status
        )?;
        if let Some(hint) = self.body["hint"].as_str() {
            write!(f, "\nhint: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}
