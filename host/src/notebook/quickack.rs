//! A TCP stream that acknowledges what it reads at once (`TCP_QUICKACK` on Linux).
//!
//! Jupyter Server writes a kernel's messages to its WebSocket without `TCP_NODELAY`, so when it
//! sends two small frames in a row (an execution's reply, then the kernel's idle status) the
//! second waits until the first is acknowledged, and a client delaying its ACK adds ~40 ms to
//! every execution. Acknowledging each read at once removes that wait, whatever image runs.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// A [`TcpStream`] that re-arms quick ACKs after every read.
pub(super) struct QuickAck(TcpStream);

impl QuickAck {
    /// Connects to `host:port` with Nagle's algorithm off on our side too.
    pub(super) async fn connect(host: &str, port: u16) -> io::Result<Self> {
        let stream = TcpStream::connect((host, port)).await?;
        stream.set_nodelay(true)?;
        Ok(Self(stream))
    }

    fn ack_now(&self) {
        // The flag is not permanent: the kernel falls back to delayed ACKs after a while.
        #[cfg(target_os = "linux")]
        let _ = socket2::SockRef::from(&self.0).set_tcp_quickack(true);
    }
}

impl AsyncRead for QuickAck {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let read = Pin::new(&mut this.0).poll_read(cx, buf);
        if read.is_ready() {
            this.ack_now();
        }
        read
    }
}

impl AsyncWrite for QuickAck {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}
