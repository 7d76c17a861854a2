//! One client connection: the handshake, then a read task and a write task.
//!
//! The read task decodes every message (bounded, typed errors, never a panic)
//! and hands inputs to the room; the write task drains the player's outbox
//! to the socket and pings. Whichever ends first ends the other, the room is
//! told, and the client gets a close frame with a code and a reason.

use std::sync::Arc;
use std::time::Duration;

use arena_shared::codec::{DecodeError, decode_client, encode_server};
use arena_shared::protocol::{
    ClientMsg, MAX_CLIENT_MSG_BYTES, MAX_REASON_BYTES, PROTOCOL_VERSION, PlayerId, RejectReason, Rejection,
    ServerMsg, close, validate_name,
};
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc::error::TrySendError;
use tokio_tungstenite::tungstenite;

use crate::http::AppState;
use crate::metrics::Metrics;
use crate::outbox::{CloseReason, Outbox};
use crate::world::{QueuedInput, Seat};

/// Time a new connection has to send `Hello`.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Time allowed to deliver a close frame before the socket is just dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

type Sink = SplitSink<WebSocket, Message>;
type Stream = SplitStream<WebSocket>;

/// Runs one upgraded connection to its end.
pub async fn serve(socket: WebSocket, state: AppState) {
    let (mut sink, mut stream) = socket.split();
    let Some(seat) = handshake(&mut sink, &mut stream, &state).await else {
        return;
    };
    let Seat { id, outbox, inputs } = seat;
    let mut writer =
        tokio::spawn(write_loop(sink, outbox.clone(), state.config.ping_interval(), state.metrics.clone()));

    let mut peer_closed = false;
    let ended_by = tokio::select! {
        reason = read_loop(&mut stream, id, &inputs, &outbox, &state) => {
            peer_closed = reason.is_none();
            reason
        }
        _ = &mut writer => None,
        () = state.cancel.cancelled() => Some(CloseReason::new(close::GOING_AWAY, "server shutting down")),
    };
    if let Some(reason) = ended_by {
        if reason.code >= close::PROTOCOL_ERROR
            || reason.code == close::UNSUPPORTED_DATA
            || reason.code == close::MESSAGE_TOO_BIG
        {
            tracing::debug!(player = id, code = reason.code, reason = %reason.reason, "closing misbehaving client");
        }
        outbox.close(reason);
    } else {
        outbox.close(CloseReason::new(close::NORMAL, "goodbye"));
    }
    if tokio::time::timeout(CLOSE_TIMEOUT, &mut writer).await.is_err() {
        writer.abort();
    }
    state.room.leave(id).await;
    if !peer_closed {
        linger(&mut stream).await;
    }
}

/// Reads `Hello`, checks it, and asks the room for a seat. On refusal the
/// client gets the typed rejection and a close frame, and `None` comes back.
async fn handshake(sink: &mut Sink, stream: &mut Stream, state: &AppState) -> Option<Seat> {
    let first = tokio::time::timeout(HANDSHAKE_TIMEOUT, stream.next()).await;
    let bytes = match first {
        Err(_) => {
            Metrics::inc(&state.metrics.timeouts_total);
            let reason = format!("no Hello within {}s", HANDSHAKE_TIMEOUT.as_secs());
            close_and_linger(sink, stream, CloseReason::new(close::TIMEOUT, reason)).await;
            return None;
        }
        Ok(None | Some(Ok(Message::Close(_)))) => return None,
        Ok(Some(Err(e))) => {
            if let Some(reason) = read_error_close(e) {
                close_and_linger(sink, stream, reason).await;
            }
            return None;
        }
        Ok(Some(Ok(Message::Binary(bytes)))) => bytes,
        Ok(Some(Ok(other))) => {
            let reason = unexpected_message_close(&other);
            Metrics::inc(&state.metrics.protocol_errors_total);
            close_and_linger(sink, stream, reason).await;
            return None;
        }
    };
    Metrics::inc_by(&state.metrics.bytes_in_total, bytes.len());

    let (version, name) = match decode_client(&bytes) {
        Ok(ClientMsg::Hello { version, name }) => (version, name),
        Ok(other) => {
            Metrics::inc(&state.metrics.protocol_errors_total);
            let reason = format!("expected Hello first, got {}", message_kind(&other));
            close_and_linger(sink, stream, CloseReason::new(close::PROTOCOL_ERROR, reason)).await;
            return None;
        }
        Err(e) => {
            Metrics::inc(&state.metrics.protocol_errors_total);
            close_and_linger(sink, stream, decode_error_close(&e)).await;
            return None;
        }
    };
    let result = if version != PROTOCOL_VERSION {
        Err(Rejection::new(RejectReason::VersionMismatch { server: PROTOCOL_VERSION, client: version }))
    } else if let Some(name) = validate_name(&name) {
        state.room.join(name.to_owned()).await
    } else {
        Err(Rejection::new(RejectReason::BadName))
    };
    match result {
        Ok(seat) => Some(seat),
        Err(rejection) => {
            Metrics::inc(&state.metrics.rejected_total);
            tracing::debug!(%name, reason = %rejection.message, "handshake refused");
            let close_reason = CloseReason::new(rejection.reason.close_code(), rejection.message.clone());
            let bytes = Bytes::from(encode_server(&ServerMsg::Rejected(rejection)));
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, sink.send(Message::Binary(bytes))).await;
            close_and_linger(sink, stream, close_reason).await;
            None
        }
    }
}

/// Decodes messages until the client leaves or breaks the protocol; returns
/// the close frame to send, or `None` when the peer is simply gone.
async fn read_loop(
    stream: &mut Stream,
    id: PlayerId,
    inputs: &tokio::sync::mpsc::Sender<QueuedInput>,
    outbox: &Outbox,
    state: &AppState,
) -> Option<CloseReason> {
    let idle = state.config.idle_timeout();
    let metrics = &state.metrics;
    loop {
        let message = match tokio::time::timeout(idle, stream.next()).await {
            Err(_) => {
                Metrics::inc(&metrics.timeouts_total);
                tracing::debug!(player = id, "dropping silent client");
                return Some(CloseReason::new(
                    close::TIMEOUT,
                    format!("nothing heard for {}s", idle.as_secs()),
                ));
            }
            Ok(None) => return None,
            Ok(Some(Err(e))) => return read_error_close(e),
            Ok(Some(Ok(message))) => message,
        };
        let bytes = match message {
            Message::Binary(bytes) => bytes,
            Message::Ping(_) | Message::Pong(_) => continue,
            Message::Close(_) => return None,
            other @ Message::Text(_) => {
                Metrics::inc(&metrics.protocol_errors_total);
                return Some(unexpected_message_close(&other));
            }
        };
        Metrics::inc_by(&metrics.bytes_in_total, bytes.len());
        match decode_client(&bytes) {
            Ok(ClientMsg::Input { seq, input }) => {
                match inputs.try_send(QueuedInput { seq, input }) {
                    Ok(()) => {}
                    Err(TrySendError::Full(_)) => Metrics::inc(&metrics.inputs_dropped_total),
                    // The room let go of this player (kicked); the writer is closing.
                    Err(TrySendError::Closed(_)) => return None,
                }
            }
            Ok(ClientMsg::Ping { client_time_us }) => {
                let pong = Bytes::from(encode_server(&ServerMsg::Pong { client_time_us }));
                if !outbox.push_event(pong) {
                    return Some(CloseReason::new(close::TOO_SLOW, "too slow: replies were not being read"));
                }
            }
            Ok(ClientMsg::Hello { .. }) => {
                Metrics::inc(&metrics.protocol_errors_total);
                return Some(CloseReason::new(close::PROTOCOL_ERROR, "Hello sent twice"));
            }
            Err(e) => {
                Metrics::inc(&metrics.protocol_errors_total);
                return Some(decode_error_close(&e));
            }
        }
    }
}

/// Drains the outbox to the socket and pings, until the outbox closes (then
/// sends the close frame) or the socket fails.
async fn write_loop(mut sink: Sink, outbox: Arc<Outbox>, ping_every: Duration, metrics: Arc<Metrics>) {
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + ping_every, ping_every);
    loop {
        let batch = tokio::select! {
            batch = outbox.next() => batch,
            _ = ping.tick() => {
                let sent = tokio::select! {
                    sent = sink.send(Message::Ping(Bytes::new())) => sent,
                    reason = outbox.closed() => return send_close(&mut sink, reason).await,
                };
                if sent.is_err() {
                    return;
                }
                continue;
            }
        };
        if let Some(reason) = batch.close {
            return send_close(&mut sink, reason).await;
        }
        let count = batch.messages.len();
        let bytes: usize = batch.messages.iter().map(Bytes::len).sum();
        let write = async {
            for message in batch.messages {
                sink.feed(Message::Binary(message)).await?;
            }
            sink.flush().await
        };
        // A socket that stops draining must not keep the close from going out.
        let sent = tokio::select! {
            sent = write => sent,
            reason = outbox.closed() => return send_close(&mut sink, reason).await,
        };
        if sent.is_err() {
            return;
        }
        Metrics::inc_by(&metrics.messages_out_total, count);
        Metrics::inc_by(&metrics.bytes_out_total, bytes);
    }
}

/// Sends our close frame, then waits briefly for the peer's reply so that
/// dropping the socket cannot reset the connection before the peer has read
/// the frame (the reason would be lost).
async fn close_and_linger(sink: &mut Sink, stream: &mut Stream, reason: CloseReason) {
    send_close(sink, reason).await;
    linger(stream).await;
}

async fn linger(stream: &mut Stream) {
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
        while let Some(Ok(message)) = stream.next().await {
            if matches!(message, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}

async fn send_close(sink: &mut Sink, reason: CloseReason) {
    let frame = CloseFrame { code: reason.code, reason: truncate(&reason.reason, MAX_REASON_BYTES).into() };
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, sink.send(Message::Close(Some(frame)))).await;
}

/// What to tell a client whose socket read failed, if it can still hear us.
fn read_error_close(error: axum::Error) -> Option<CloseReason> {
    match error.into_inner().downcast::<tungstenite::Error>() {
        Ok(e) if matches!(*e, tungstenite::Error::Capacity(_)) => Some(CloseReason::new(
            close::MESSAGE_TOO_BIG,
            format!("message too big: the limit is {MAX_CLIENT_MSG_BYTES} bytes"),
        )),
        Ok(e) if matches!(*e, tungstenite::Error::Protocol(_)) => {
            Some(CloseReason::new(close::PROTOCOL_ERROR, format!("websocket protocol error: {e}")))
        }
        _ => None,
    }
}

fn decode_error_close(error: &DecodeError) -> CloseReason {
    let code = match error {
        DecodeError::TooLarge { .. } => close::MESSAGE_TOO_BIG,
        _ => close::PROTOCOL_ERROR,
    };
    CloseReason::new(code, error.to_string())
}

fn unexpected_message_close(message: &Message) -> CloseReason {
    match message {
        Message::Text(_) => CloseReason::new(close::UNSUPPORTED_DATA, "arena speaks binary messages only"),
        _ => CloseReason::new(close::PROTOCOL_ERROR, "expected a binary Hello"),
    }
}

fn message_kind(msg: &ClientMsg) -> &'static str {
    match msg {
        ClientMsg::Hello { .. } => "Hello",
        ClientMsg::Input { .. } => "Input",
        ClientMsg::Ping { .. } => "Ping",
    }
}

/// Cuts `text` to at most `max` bytes on a char boundary.
fn truncate(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncate_respects_char_boundaries() {
        assert_eq!(truncate("héllo", 2), "h", "should not split é");
        assert_eq!(truncate("abc", 10), "abc");
    }

    #[test]
    fn oversized_messages_close_with_1009_and_garbage_with_4000() {
        assert_eq!(
            decode_error_close(&DecodeError::TooLarge { len: 999, max: 256 }).code,
            close::MESSAGE_TOO_BIG
        );
        assert_eq!(decode_error_close(&DecodeError::Malformed("x".into())).code, close::PROTOCOL_ERROR);
    }
}
