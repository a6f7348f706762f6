//! A plugin's stderr: never full, never an error. Each line goes to the call's log (within its
//! [`LogBudget`]), and the last [`TAIL`] bytes are kept, where a panic's message lands, to
//! explain a trap. A fixed-capacity pipe would fail the plugin's write once full, and Rust's
//! `eprintln!` panics on a failed write: a plugin that wrote 16 KiB to stderr trapped.

use crate::log_budget::LogBudget;
use crate::services::{HostServices, LogLevel};
use bytes::Bytes;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// Bytes of stderr kept to explain a failure.
const TAIL: usize = 16 * 1024;
/// Longest line logged as it is; a longer one is logged in pieces of this size.
const LINE: usize = 8 * 1024;
/// What a write may hand over at once.
const WRITE_PERMIT: usize = 64 * 1024;

#[derive(Clone)]
pub(crate) struct Stderr(Arc<Mutex<Capture>>);

struct Capture {
    tail: Vec<u8>,
    line: Vec<u8>,
    services: Arc<dyn HostServices>,
    budget: Arc<Mutex<LogBudget>>,
}

impl Stderr {
    pub(crate) fn new(services: Arc<dyn HostServices>, budget: Arc<Mutex<LogBudget>>) -> Self {
        Self(Arc::new(Mutex::new(Capture {
            tail: Vec::new(),
            line: Vec::new(),
            services,
            budget,
        })))
    }

    /// The last bytes written, lossily decoded.
    pub(crate) fn tail(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("stderr lock").tail).into_owned()
    }

    /// Logs what is left of an unfinished last line.
    pub(crate) fn finish(&self) {
        let mut capture = self.0.lock().expect("stderr lock");
        let line = std::mem::take(&mut capture.line);
        capture.log(&line);
    }

    fn write(&self, bytes: &[u8]) {
        let mut capture = self.0.lock().expect("stderr lock");
        capture.tail.extend_from_slice(bytes);
        if capture.tail.len() > TAIL {
            let excess = capture.tail.len() - TAIL;
            capture.tail.drain(..excess);
        }
        for piece in bytes.split_inclusive(|&b| b == b'\n') {
            capture.line.extend_from_slice(piece);
            if piece.ends_with(b"\n") || capture.line.len() >= LINE {
                let line = std::mem::take(&mut capture.line);
                capture.log(&line);
            }
        }
    }
}

impl Capture {
    fn log(&self, line: &[u8]) {
        let text = String::from_utf8_lossy(line);
        let text = text.trim_end();
        if text.is_empty() || !self.budget.lock().expect("budget lock").take(text.len()) {
            return;
        }
        self.services
            .log(LogLevel::Warn, &format!("stderr: {text}"));
    }
}

impl IsTerminal for Stderr {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for Stderr {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl OutputStream for Stderr {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        Stderr::write(self, &bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(WRITE_PERMIT)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for Stderr {
    async fn ready(&mut self) {}
}

impl AsyncWrite for Stderr {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Stderr::write(&self, buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
