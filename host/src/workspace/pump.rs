//! A proxied WebSocket once both sides switched protocols: its bytes moved both ways until
//! either side ends it, and counted as they reach each side, so a connection ending in an
//! error (a reset, a dropped container) still counts what it moved.
//!
//! The container's side is moved on its raw socket when hyper lets go of it: each message
//! then costs a read and a write, without hyper's upgrade wrappers in between.

use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::net::TcpStream;

/// The bytes a WebSocket moved.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Moved {
    /// Written to the session's server.
    pub to_server: u64,
    /// Written to the browser.
    pub to_client: u64,
}

/// How a WebSocket ended.
#[derive(Debug)]
pub(super) enum Ended {
    /// Both sides closed.
    Closed,
    /// A side failed (a reset, a broken pipe).
    Failed(io::Error),
    /// `stop` came first.
    Stopped,
}

/// Moves bytes between the browser's upgraded connection and the server's until both close,
/// one fails, or `stop` resolves.
pub(super) async fn websocket(
    client: Upgraded,
    server: Upgraded,
    stop: impl Future<Output = ()>,
) -> (Moved, Ended) {
    let client = TokioIo::new(client);
    match server.downcast::<TokioIo<TcpStream>>() {
        Ok(parts) => pump(client, parts.io.into_inner(), &parts.read_buf, stop).await,
        Err(server) => pump(client, TokioIo::new(server), &[], stop).await,
    }
}

/// Moves bytes between `client` and `server` (which had already sent `early`) until both
/// close, one fails, or `stop` resolves.
async fn pump<C, S>(
    client: C,
    server: S,
    early: &[u8],
    stop: impl Future<Output = ()>,
) -> (Moved, Ended)
where
    C: AsyncRead + AsyncWrite + Unpin,
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut client = Counted::new(client);
    let mut server = Counted::new(server);
    let copied = async {
        client.write_all(early).await?;
        tokio::io::copy_bidirectional(&mut client, &mut server).await
    };
    let ended = tokio::select! {
        copied = copied => match copied {
            Ok(_) => Ended::Closed,
            Err(e) => Ended::Failed(e),
        },
        () = stop => Ended::Stopped,
    };
    let moved = Moved {
        to_server: server.written,
        to_client: client.written,
    };
    (moved, ended)
}

/// A stream counting the bytes written to it.
struct Counted<T> {
    inner: T,
    written: u64,
}

impl<T> Counted<T> {
    fn new(inner: T) -> Self {
        Self { inner, written: 0 }
    }

    fn count(&mut self, written: Poll<io::Result<usize>>) -> Poll<io::Result<usize>> {
        if let Poll::Ready(Ok(n)) = written {
            self.written += n as u64;
        }
        written
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Counted<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Counted<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.count(written)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.count(written)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt as _;
    use tokio::net::TcpListener;

    /// Two ends of a loopback TCP connection.
    async fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let near = TcpStream::connect(listener.local_addr().unwrap());
        let (near, far) = tokio::join!(near, listener.accept());
        (near.unwrap(), far.unwrap().0)
    }

    async fn read_exactly(stream: &mut TcpStream, n: usize) -> Vec<u8> {
        let mut buf = vec![0; n];
        stream.read_exact(&mut buf).await.unwrap();
        buf
    }

    #[tokio::test]
    async fn a_reset_connection_counts_what_it_moved() {
        let (mut browser, client) = pair().await;
        let (server, mut container) = pair().await;
        let pumped = tokio::spawn(pump(client, server, b"early", std::future::pending()));
        assert_eq!(read_exactly(&mut browser, 5).await, b"early");
        browser.write_all(b"hello").await.unwrap();
        assert_eq!(read_exactly(&mut container, 5).await, b"hello");
        container.write_all(b"world!").await.unwrap();
        assert_eq!(read_exactly(&mut browser, 6).await, b"world!");
        // The browser goes away with a reset rather than a close.
        browser.set_zero_linger().unwrap();
        drop(browser);
        let (moved, ended) = pumped.await.unwrap();
        assert!(matches!(ended, Ended::Failed(_)), "{ended:?}");
        assert_eq!(
            moved,
            Moved {
                to_server: 5,
                to_client: 11
            }
        );
    }

    #[tokio::test]
    async fn a_stopped_connection_counts_what_it_moved() {
        let (mut browser, client) = pair().await;
        let (server, mut container) = pair().await;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let pumped = tokio::spawn(pump(client, server, &[], async move {
            let _ = stopped.await;
        }));
        browser.write_all(b"hello").await.unwrap();
        assert_eq!(read_exactly(&mut container, 5).await, b"hello");
        stop.send(()).unwrap();
        let (moved, ended) = pumped.await.unwrap();
        assert!(matches!(ended, Ended::Stopped), "{ended:?}");
        assert_eq!(moved.to_server, 5);
        // The pump let go of both connections.
        assert_eq!(container.read(&mut [0; 8]).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn the_containers_side_is_moved_on_its_raw_socket() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            while !head.ends_with(b"\r\n\r\n") {
                head.push(stream.read_u8().await.unwrap());
            }
            stream
                .write_all(b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\nearly")
                .await
                .unwrap();
        });
        let client = super::super::proxy_client::client(super::super::proxy_client::POOL_IDLE);
        let request = hyper::Request::builder()
            .uri(format!("http://{addr}/ws"))
            .header("upgrade", "websocket")
            .header("connection", "upgrade")
            .body(axum::body::Body::empty())
            .unwrap();
        let response = client.request(request).await.unwrap();
        assert_eq!(response.status(), 101);
        let upgraded = hyper::upgrade::on(response).await.unwrap();
        let parts = upgraded
            .downcast::<TokioIo<TcpStream>>()
            .expect("the connector's socket");
        // What the server sent past its answer's head is handed over with the socket.
        let mut early = parts.read_buf.to_vec();
        let mut socket = parts.io.into_inner();
        while early.len() < 5 {
            let mut more = [0; 5];
            let n = socket.read(&mut more).await.unwrap();
            early.extend_from_slice(&more[..n]);
        }
        assert_eq!(early, b"early");
    }
}
