//! `git http-backend`, git's own smart HTTP server, run as a CGI program for each request:
//! the request body streams into it and its answer streams back, a chunk at a time (memory
//! does not grow with the repository or the push). Weft has authenticated the caller and
//! taken the project's lock (for a push) before it runs.

use crate::error::{Code, Error, Result};
use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use futures::StreamExt;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// Bytes of CGI headers read at most before the body.
const MAX_HEADERS: usize = 16 << 10;

/// What git's stderr keeps for the log, at most.
const MAX_STDERR: usize = 8 << 10;

/// Whether `binary` can serve smart HTTP: `Ok` or what is missing, for the log and the 503.
pub(super) fn check(binary: &Path) -> std::result::Result<String, String> {
    let run = |arg: &str| {
        std::process::Command::new(binary)
            .arg(arg)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let version = run("--version").ok_or_else(|| {
        format!(
            "'{}' does not run: install git (Debian: apt-get install git) or set [git] binary",
            binary.display()
        )
    })?;
    let exec_path = run("--exec-path").unwrap_or_default();
    if !Path::new(&exec_path).join("git-http-backend").exists() {
        return Err(format!(
            "{version} has no http-backend in '{exec_path}': install the full git package"
        ));
    }
    Ok(version)
}

/// One request for `git http-backend`.
pub(super) struct Cgi<'a> {
    pub(super) binary: &'a Path,
    pub(super) root: &'a Path,
    pub(super) hooks: PathBuf,
    /// `/<project id>.git/<service path>`.
    pub(super) path_info: String,
    pub(super) method: &'a str,
    pub(super) query: &'a str,
    pub(super) headers: &'a HeaderMap,
    pub(super) user: &'a str,
    pub(super) remote_addr: Option<String>,
    /// Extra variables (for the pre-receive hook).
    pub(super) env: Vec<(&'static str, String)>,
    /// The request body is cut off past this many bytes.
    pub(super) max_body: u64,
}

impl Cgi<'_> {
    fn command(&self) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(self.binary);
        command
            .arg("http-backend")
            .env_clear()
            .env(
                "PATH",
                std::env::var_os("PATH").unwrap_or_else(|| OsString::from("/usr/bin:/bin")),
            )
            .env("HOME", self.root)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_COUNT", "1")
            .env("GIT_CONFIG_KEY_0", "core.hooksPath")
            .env("GIT_CONFIG_VALUE_0", &self.hooks)
            .env("GIT_PROJECT_ROOT", self.root)
            .env("GIT_HTTP_EXPORT_ALL", "1")
            .env("PATH_INFO", &self.path_info)
            .env("REQUEST_METHOD", self.method)
            .env("QUERY_STRING", self.query)
            .env("REMOTE_USER", self.user)
            .env(
                "REMOTE_ADDR",
                self.remote_addr.as_deref().unwrap_or("127.0.0.1"),
            )
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        for (variable, header) in [
            ("CONTENT_TYPE", "content-type"),
            ("CONTENT_LENGTH", "content-length"),
            ("HTTP_CONTENT_ENCODING", "content-encoding"),
            ("HTTP_GIT_PROTOCOL", "git-protocol"),
        ] {
            if let Some(value) = self.headers.get(header).and_then(|v| v.to_str().ok()) {
                command.env(variable, value);
            }
        }
        for (name, value) in &self.env {
            command.env(name, value);
        }
        command
    }

    /// Runs the program on `body`; the answer streams back, and `after` (the work a push
    /// leaves, such as moving the files) runs once the program has ended, before the answer's
    /// end reaches the client. `after` runs even if the client goes away.
    pub(super) async fn run(
        self,
        body: Body,
        after: impl Future<Output = ()> + Send + 'static,
    ) -> Result<Response> {
        let mut child = self.command().spawn().map_err(|e| {
            Error::new(
                Code::GitUnavailable,
                format!("cannot run git http-backend: {e}"),
            )
            .hint("install git on Weft's host (apt-get install git)")
        })?;
        let (Some(mut stdin), Some(stdout), Some(mut stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(Error::internal("git http-backend has no pipes"));
        };
        let max = self.max_body;
        let feed = tokio::spawn(async move {
            let mut body = body.into_data_stream();
            let mut total = 0u64;
            while let Some(chunk) = body.next().await {
                let Ok(chunk) = chunk else { return };
                total += chunk.len() as u64;
                if total > max {
                    tracing::warn!(max, "a push body went past [git] max_push_bytes: cut off");
                    return;
                }
                if stdin.write_all(&chunk).await.is_err() {
                    return;
                }
            }
        });
        let log = tokio::spawn(async move {
            let mut kept = Vec::new();
            let mut buffer = [0u8; 4096];
            while let Ok(n) = stderr.read(&mut buffer).await {
                if n == 0 {
                    break;
                }
                let room = MAX_STDERR.saturating_sub(kept.len());
                kept.extend_from_slice(&buffer[..n.min(room)]);
            }
            kept
        });
        let mut reader = BufReader::new(stdout);
        let (status, headers) = read_headers(&mut reader).await?;
        let finish = tokio::spawn(async move {
            let exit = child.wait().await;
            feed.abort();
            let stderr = log.await.unwrap_or_default();
            match exit {
                Ok(code) if code.success() => {}
                other => {
                    tracing::warn!(exit = ?other, stderr = %String::from_utf8_lossy(&stderr), "git http-backend failed")
                }
            }
            after.await;
        });
        let tail = futures::stream::once(async move {
            let _ = finish.await;
        })
        .filter_map(|()| async { None::<std::io::Result<bytes::Bytes>> });
        let stream = tokio_util::io::ReaderStream::new(reader).chain(tail);
        let mut response = Response::new(Body::from_stream(stream));
        *response.status_mut() = status;
        *response.headers_mut() = headers;
        Ok(response)
    }
}

/// The CGI header lines before the body: `Status:` and the answer's headers.
async fn read_headers(
    reader: &mut BufReader<tokio::process::ChildStdout>,
) -> Result<(StatusCode, HeaderMap)> {
    let bad = |why: &str| Error::internal(format!("git http-backend answered badly: {why}"));
    let mut status = StatusCode::OK;
    let mut headers = HeaderMap::new();
    let mut read = 0;
    loop {
        let mut line = String::new();
        let n = reader
            .read_line(&mut line)
            .await
            .map_err(|e| bad(&e.to_string()))?;
        read += n;
        if n == 0 || read > MAX_HEADERS {
            return Err(bad("no end of its headers"));
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            return Ok((status, headers));
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(bad("a header without ':'"));
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            status = value
                .split_whitespace()
                .next()
                .and_then(|code| code.parse().ok())
                .and_then(|code| StatusCode::from_u16(code).ok())
                .ok_or_else(|| bad("an unreadable status"))?;
        } else if let (Ok(name), Ok(value)) =
            (HeaderName::try_from(name), HeaderValue::try_from(value))
        {
            headers.append(name, value);
        }
    }
}
