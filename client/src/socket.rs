//! One gloo-net WebSocket task per connection attempt, talking to the ECS
//! over channels. The [`Socket`] resource opens attempts, sends, and hands
//! over what arrived tagged with its attempt, so a stale task's events are
//! told apart.

use arena_shared::codec::{decode_server, encode_client};
use arena_shared::protocol::{ClientMsg, ServerMsg, close};
use bevy::prelude::*;
// Bevy's derives look for `bevy_ecs` when `bevy` is a target-specific dependency.
use bevy::ecs as bevy_ecs;
use futures_channel::mpsc::{UnboundedReceiver, UnboundedSender, unbounded};
use futures_util::{Sink, StreamExt};
use gloo_net::websocket::{Message, WebSocketError, futures::WebSocket};

/// What a socket task reports.
#[derive(Debug)]
pub enum SocketEvent {
    Msg(ServerMsg),
    /// The socket closed: the close frame's code and reason, or ours for a
    /// failure (1006, 4000 for bytes that did not decode).
    Closed {
        code: u16,
        reason: String,
    },
}

/// The page's connection: the current attempt and its channels.
#[derive(Resource)]
pub struct Socket {
    /// Connection attempts so far; events from older ones are stale.
    attempt: u32,
    /// Messages for the current task; `None` when not connected.
    outgoing: Option<UnboundedSender<ClientMsg>>,
    events_tx: UnboundedSender<(u32, SocketEvent)>,
    events_rx: UnboundedReceiver<(u32, SocketEvent)>,
}

impl Default for Socket {
    fn default() -> Self {
        let (events_tx, events_rx) = unbounded();
        Socket { attempt: 0, outgoing: None, events_tx, events_rx }
    }
}

impl Socket {
    /// Opens a new attempt at `url`; what the old one still reports is stale.
    pub fn open(&mut self, url: &str) {
        self.attempt += 1;
        let (tx, rx) = unbounded();
        self.outgoing = Some(tx);
        wasm_bindgen_futures::spawn_local(run_socket(
            self.attempt,
            url.to_owned(),
            self.events_tx.clone(),
            rx,
        ));
    }

    pub fn is_open(&self) -> bool {
        self.outgoing.is_some()
    }

    /// Queues a message for the server; dropped when not connected.
    pub fn send(&self, msg: ClientMsg) {
        if let Some(outgoing) = &self.outgoing {
            let _ = outgoing.unbounded_send(msg);
        }
    }

    /// Everything that arrived since the last call, each with its attempt.
    pub fn arrived(&mut self) -> Vec<(u32, SocketEvent)> {
        std::iter::from_fn(|| self.events_rx.try_recv().ok()).collect()
    }

    /// Whether an event of `attempt` is about the current connection.
    pub fn is_current(&self, attempt: u32) -> bool {
        attempt == self.attempt && self.outgoing.is_some()
    }

    /// The current connection is over (closed, or dropped for breaking the
    /// protocol): its task stops sending, and its later events are stale.
    pub fn forget(&mut self) {
        self.outgoing = None;
        self.attempt += 1;
    }
}

/// One connection attempt: open, then pump messages both ways until the
/// socket closes.
///
/// gloo-net delivers what arrives (messages and the close event, in order).
/// Sending goes through the same socket's web-sys handle as a `Uint8Array`:
/// gloo-net sends bytes as a `Blob`, which Chromium reads asynchronously and,
/// under load, so slowly that inputs sat in `bufferedAmount` for seconds.
async fn run_socket(
    attempt: u32,
    url: String,
    events: UnboundedSender<(u32, SocketEvent)>,
    mut outgoing: UnboundedReceiver<ClientMsg>,
) {
    let report = |event| {
        let _ = events.unbounded_send((attempt, event));
    };
    let closed = |code: u16, reason: String| SocketEvent::Closed { code, reason };
    let opened = web_sys::WebSocket::new(&url).map_err(|e| format!("{e:?}")).and_then(|raw| {
        let sender = raw.clone();
        WebSocket::try_from(raw).map(|socket| (sender, socket)).map_err(|e| e.to_string())
    });
    let (sender, socket) = match opened {
        Ok(opened) => opened,
        Err(e) => return report(closed(close::ABNORMAL, format!("cannot open {url}: {e}"))),
    };
    let mut socket = Box::pin(socket);
    // The sink side of gloo's socket is ready once the socket is open.
    if futures_util::future::poll_fn(|cx| socket.as_mut().poll_ready(cx)).await.is_err() {
        return report(closed(close::ABNORMAL, "the server did not answer".into()));
    }
    let reader = async {
        while let Some(message) = socket.next().await {
            match message {
                Ok(Message::Bytes(bytes)) => match decode_server(&bytes) {
                    Ok(msg) => report(SocketEvent::Msg(msg)),
                    Err(e) => return closed(close::PROTOCOL_ERROR, format!("the server sent bad data: {e}")),
                },
                Ok(Message::Text(_)) => return closed(close::PROTOCOL_ERROR, "the server sent text".into()),
                Err(WebSocketError::ConnectionClose(event)) => return closed(event.code, event.reason),
                Err(e) => return closed(close::ABNORMAL, e.to_string()),
            }
        }
        closed(close::ABNORMAL, "connection lost".into())
    };
    let writer = async {
        while let Some(msg) = outgoing.next().await {
            if sender.send_with_u8_array(&encode_client(&msg)).is_err() {
                break;
            }
        }
        closed(close::ABNORMAL, "connection lost while sending".into())
    };
    let ended = futures_util::future::select(Box::pin(reader), Box::pin(writer)).await.factor_first().0;
    report(ended);
}
