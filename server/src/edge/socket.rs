//! The WebSocket upgrade, done here instead of by axum's extractor so the
//! connection keeps its TCP socket: on plain TCP the socket is split, its
//! reading half goes to tungstenite and its writing half becomes the
//! player's [`Wire`], which the room's tick writes frames to directly. On
//! TLS (or any other transport) tungstenite has the stream whole, and the
//! connection's writer sends everything, as before.
//!
//! The connection speaks axum's `Message`s either way (the adapters at the
//! bottom), so it reads the same whatever is under it.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Response};
use futures_util::{FutureExt, Sink, SinkExt, Stream, StreamExt, TryFutureExt, future};
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedReadHalf;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::{self, handshake::derive_accept_key, protocol::Role};

use crate::room::wire::{Sent, SentCounters, Wire};

pub use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// Where a connection writes: the socket's sending half, or a test's channel.
pub trait MessageSink: Sink<Message, Error = axum::Error> + Unpin {}
impl<T: Sink<Message, Error = axum::Error> + Unpin> MessageSink for T {}

/// What a connection reads: the socket's receiving half, or a test's channel.
pub trait MessageStream: Stream<Item = Result<Message, axum::Error>> + Unpin {}
impl<T: Stream<Item = Result<Message, axum::Error>> + Unpin> MessageStream for T {}

/// A request that asks for a WebSocket, checked (RFC 6455 §4.2.1): what
/// answers it, and the upgrade to wait for once the answer is sent.
pub struct Upgrade {
    accept: HeaderValue,
    on_upgrade: OnUpgrade,
}

impl Upgrade {
    /// Checks `parts` as a WebSocket request; a readable refusal otherwise.
    pub fn from_parts(parts: &mut Parts) -> Result<Upgrade, Box<Response>> {
        let refuse =
            |status: StatusCode, why: &str| Err(Box::new((status, format!("{why}\n")).into_response()));
        if parts.method != Method::GET {
            return refuse(StatusCode::METHOD_NOT_ALLOWED, "a WebSocket upgrade is a GET");
        }
        if !header_has_token(&parts.headers, &header::CONNECTION, "upgrade") {
            return refuse(StatusCode::BAD_REQUEST, "Connection header did not include 'upgrade'");
        }
        if !header_is(&parts.headers, &header::UPGRADE, "websocket") {
            return refuse(StatusCode::BAD_REQUEST, "Upgrade header is not 'websocket'");
        }
        if !header_is(&parts.headers, &header::SEC_WEBSOCKET_VERSION, "13") {
            return refuse(StatusCode::BAD_REQUEST, "Sec-WebSocket-Version is not 13");
        }
        let Some(key) = parts.headers.get(header::SEC_WEBSOCKET_KEY) else {
            return refuse(StatusCode::BAD_REQUEST, "no Sec-WebSocket-Key");
        };
        let Some(on_upgrade) = parts.extensions.remove::<OnUpgrade>() else {
            return refuse(StatusCode::UPGRADE_REQUIRED, "this connection cannot be upgraded");
        };
        let accept = HeaderValue::from_str(&derive_accept_key(key.as_bytes()))
            .expect("base64 is a valid header value");
        Ok(Upgrade { accept, on_upgrade })
    }

    /// The `101 Switching Protocols` answer; `then` runs on the socket once
    /// it is sent (the upgrade failing is logged and ends there).
    pub fn answer<F, Fut>(self, config: WebSocketConfig, counters: SentCounters, then: F) -> Response
    where
        F: FnOnce(Socket) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let Upgrade { accept, on_upgrade } = self;
        // Combinators, not an `async` block, so the task holds the
        // connection's future once (a block keeps `then` beside what it
        // returns); opening is boxed, being over in a moment.
        let open = on_upgrade.map_err(|e| tracing::debug!(error = %e, "a WebSocket upgrade failed"));
        let open = open.and_then(move |upgraded| Box::pin(Socket::open(upgraded, config, counters)).map(Ok));
        spawn_connection(open.and_then(move |socket| then(socket).map(Ok)).map(|_: Result<(), ()>| ()));
        let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
        response
    }
}

fn header_is(headers: &HeaderMap, name: &HeaderName, value: &str) -> bool {
    headers.get(name).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(value.as_bytes()))
}

/// Whether a comma-separated header lists `token` (`Connection: keep-alive, Upgrade`).
fn header_has_token(headers: &HeaderMap, name: &HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .any(|v| v.to_str().is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token))))
}

/// The most a connection's task may hold, in bytes: tokio adds 104 (its
/// header, trailer and bookkeeping in tokio 1.54, read with
/// `-Zprint-type-sizes`) and allocates it aligned to 128, so up to this a
/// task is one of jemalloc's 2 KiB blocks; a byte more and it is a 2.5 KiB
/// one, 512 bytes more for every connection. Checked as the server is
/// built (optimised: a debug build's futures are laid out larger).
#[cfg(not(debug_assertions))]
const MAX_TASK_BYTES: usize = 1_944;

/// Spawns a connection's task, checked to stay within `MAX_TASK_BYTES`.
fn spawn_connection<T: Future<Output = ()> + Send + 'static>(task: T) {
    #[cfg(not(debug_assertions))]
    const {
        assert!(
            std::mem::size_of::<T>() <= MAX_TASK_BYTES,
            "a connection's task outgrew jemalloc's 2 KiB block: see MAX_TASK_BYTES"
        );
    }
    tokio::spawn(task);
}

/// An upgraded WebSocket: over plain TCP with its wire, or over anything else.
pub enum Socket {
    Tcp { ws: WebSocketStream<WireIo>, wire: Arc<Wire> },
    Other(WebSocketStream<TokioIo<Upgraded>>),
}

impl Socket {
    async fn open(upgraded: Upgraded, config: WebSocketConfig, counters: SentCounters) -> Socket {
        match upgraded.downcast::<TokioIo<TcpStream>>() {
            Ok(parts) => {
                let (read, write) = parts.io.into_inner().into_split();
                let wire = Arc::new(Wire::new(write, counters));
                let io = WireIo { read, wire: wire.clone() };
                // Bytes the client sent right after its request are already read.
                let ws = WebSocketStream::from_partially_read(
                    io,
                    parts.read_buf.to_vec(),
                    Role::Server,
                    Some(config),
                )
                .await;
                Socket::Tcp { ws, wire }
            }
            Err(upgraded) => Socket::Other(
                WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config)).await,
            ),
        }
    }
}

/// What tungstenite reads and writes on plain TCP: the socket's reading
/// half, and the wire for its writes (pongs, pings, close frames), so they
/// go whole and in order with the frames the room writes.
pub struct WireIo {
    read: OwnedReadHalf,
    wire: Arc<Wire>,
}

impl AsyncRead for WireIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.read).poll_read(cx, buf)
    }
}

impl AsyncWrite for WireIo {
    /// Takes all of `buf` (tungstenite writes whole frames), or fails.
    fn poll_write(self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Poll::Ready(match self.wire.send_raw(buf) {
            Sent::Broken => Err(io::ErrorKind::BrokenPipe.into()),
            Sent::Out | Sent::Waiting => Ok(buf.len()),
        })
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.wire.poll_flush(cx)
    }

    /// The socket closes when the connection drops both halves.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.wire.poll_flush(cx)
    }
}

/// `ws` as the connection's sink and stream of axum messages.
pub fn split<S>(ws: WebSocketStream<S>) -> (impl MessageSink, impl MessageStream)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (sink, stream) = ws.split();
    let sink = sink
        .sink_map_err(axum::Error::new)
        .with(|message: Message| future::ready(Ok::<_, axum::Error>(to_tungstenite(message))));
    let stream = stream.filter_map(|read| {
        future::ready(match read {
            Ok(message) => from_tungstenite(message).map(Ok),
            Err(e) => Some(Err(axum::Error::new(e))),
        })
    });
    (sink, stream)
}

fn to_tungstenite(message: Message) -> tungstenite::Message {
    match message {
        Message::Binary(bytes) => tungstenite::Message::Binary(bytes),
        Message::Text(text) => tungstenite::Message::text(text.as_str()),
        Message::Ping(bytes) => tungstenite::Message::Ping(bytes),
        Message::Pong(bytes) => tungstenite::Message::Pong(bytes),
        Message::Close(frame) => tungstenite::Message::Close(frame.map(|f| {
            tungstenite::protocol::CloseFrame { code: f.code.into(), reason: f.reason.as_str().into() }
        })),
    }
}

/// `None` for a raw frame, which tungstenite never hands a reader.
fn from_tungstenite(message: tungstenite::Message) -> Option<Message> {
    Some(match message {
        tungstenite::Message::Binary(bytes) => Message::Binary(bytes),
        tungstenite::Message::Text(text) => Message::Text(Utf8Bytes::from(text.as_str())),
        tungstenite::Message::Ping(bytes) => Message::Ping(bytes),
        tungstenite::Message::Pong(bytes) => Message::Pong(bytes),
        tungstenite::Message::Close(frame) => Message::Close(
            frame.map(|f| CloseFrame { code: f.code.into(), reason: Utf8Bytes::from(f.reason.as_str()) }),
        ),
        tungstenite::Message::Frame(_) => return None,
    })
}
