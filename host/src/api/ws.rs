//! Sending a stream of JSON messages over a WebSocket until the stream ends or the client leaves.

use axum::extract::ws::{Message, WebSocket};
use futures::{Stream, StreamExt};
use serde::Serialize;
use tokio::sync::broadcast;

/// Sends each item of `items` as a JSON text message; closes when `items` ends, returns when
/// the client closes or goes away.
pub(crate) async fn forward<T: Serialize>(mut socket: WebSocket, items: impl Stream<Item = T>) {
    let mut items = std::pin::pin!(items);
    loop {
        tokio::select! {
            item = items.next() => {
                let Some(item) = item else { break };
                let text = serde_json::to_string(&item).expect("messages serialise");
                if socket.send(Message::Text(text.into())).await.is_err() {
                    return;
                }
            }
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
        }
    }
    let _ = socket.send(Message::Close(None)).await;
}

/// The `wanted` items of a broadcast receiver as JSON; a receiver that fell behind gets a
/// `{"type":"lagged","missed":N}` note in place of what it missed.
pub(crate) fn broadcast_stream<T: Clone + Serialize + Send + 'static>(
    receiver: broadcast::Receiver<T>,
    wanted: impl Fn(&T) -> bool + Send + 'static,
) -> impl Stream<Item = serde_json::Value> {
    futures::stream::unfold((receiver, wanted), |(mut receiver, wanted)| async move {
        loop {
            let value = match receiver.recv().await {
                Ok(item) if wanted(&item) => {
                    serde_json::to_value(&item).expect("messages serialise")
                }
                Ok(_) => continue,
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    serde_json::json!({ "type": "lagged", "missed": missed })
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            };
            return Some((value, (receiver, wanted)));
        }
    })
}
