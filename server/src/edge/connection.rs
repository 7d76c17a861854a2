//! One upgraded client connection: the handshake, then reading and writing
//! until one side ends it, then the close frame.
//!
//! The reader decodes every message (bounded, typed errors, never a panic),
//! spends one unit of the connection's [`RateBudget`] per frame, control
//! frames included, and hands inputs to the room. The writer drains the
//! player's outbox to the socket and pings; a ping left unanswered past the
//! idle timeout means a client that stopped reading. Both run as branches of
//! one task; whichever ends first ends the other, and the seat is freed when
//! the [`Membership`] drops, on every way out.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use arena_shared::codec::{DecodeError, decode_client, encode_server, hello_version};
use arena_shared::protocol::{
    ClientMsg, MAX_CLIENT_MSG_BYTES, MAX_REASON_BYTES, PROTOCOL_VERSION, RejectReason, Rejection, ServerMsg,
    close, validate_name,
};
use arena_shared::sim::Input;
use std::sync::Arc;

use axum::extract::ws::{CloseFrame, Message};
use bytes::Bytes;
use futures_util::future::Either;
use futures_util::{SinkExt, StreamExt};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite;

use crate::edge::socket::{self, Socket};
pub use crate::edge::socket::{MessageSink, MessageStream};
use crate::edge::state::AppState;
use crate::limits::RateBudget;
use crate::room::handle::Membership;
use crate::room::input::QueuedInput;
use crate::room::links::{Inbound, InboundQueue, NotQueued};
use crate::room::outbox::{CloseReason, Outbox};
use crate::room::wire::{Broken, Wire};
use crate::room::world::Newcomer;
use crate::rooms::NoSeat;
use crate::telemetry::metrics::{Kick, Metrics};

/// Time allowed to deliver a close frame and hear the peer's reply before
/// the socket is just dropped.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// How a phase of the connection ended, and so what the client is told.
#[derive(Debug)]
enum Ending {
    /// The peer sent its close frame: echo it (RFC 6455 §5.5.1). Only a
    /// `goodbye` (code 1000) frees the seat at once; any other close (a page
    /// being left or reloaded sends none or 1001) holds it for a resume, as
    /// for a dropped socket.
    PeerClosed { goodbye: bool },
    /// The socket failed or reached EOF: nobody is listening.
    Gone,
    /// Our close frame already went out (the room closed the outbox) and the
    /// peer had its moment to reply: nothing is left to do.
    Closed,
    /// We close, with this code and reason.
    Close(CloseReason),
    /// The handshake is refused: the typed rejection, then its close frame.
    Reject(Rejection),
}

/// What a connection needs: the server's shared state (settings, rooms,
/// metrics, limits, shutdown) and who it is. (The HTTP side builds it;
/// this module does not know the router.)
#[derive(Clone)]
pub struct Context {
    pub app: AppState,
    /// The peer's address, for the per-address budgets.
    pub peer: IpAddr,
}

/// Runs one upgraded connection to its end.
///
/// Not an `async fn`, nor the two below: an `async fn` keeps its arguments
/// and the locals they are moved into side by side in its state, and a
/// connection's future lives as long as it plays, so the socket's halves
/// and the context would be held twice at every level.
pub fn serve(socket: Socket, state: Context) -> impl Future<Output = ()> {
    match socket {
        Socket::Tcp { ws, wire } => {
            let (sink, stream) = socket::split(ws);
            Either::Left(serve_over(sink, stream, Some(wire), state))
        }
        Socket::Other(ws) => {
            let (sink, stream) = socket::split(ws);
            Either::Right(serve_over(sink, stream, None, state))
        }
    }
}

/// Runs a connection over any sink and stream of WebSocket messages (the
/// socket's halves, or channels in the tests below); with a `wire`, the
/// room writes the player's messages to the socket itself.
#[expect(clippy::manual_async_fn, reason = "an async fn would hold its arguments twice: see `serve`")]
pub fn serve_over(
    mut sink: impl MessageSink,
    mut stream: impl MessageStream,
    wire: Option<Arc<Wire>>,
    state: Context,
) -> impl Future<Output = ()> {
    async move {
        let mut budget = RateBudget::new(state.app.config.limits.max_message_rate);
        // Boxed: the handshake's state (joining a room, perhaps through the
        // cluster) is the biggest this future has, and it is over in a moment;
        // inline, every connection would carry its 2 KB for as long as it plays.
        let joined = tokio::select! {
            joined = Box::pin(handshake(&mut stream, &mut budget, &state)) => joined,
            () = state.app.cancel.cancelled() => Err(going_away()),
        };
        // The membership moves into the game's future within this block, so
        // no copy of it stays beside that future while it plays.
        let playing = match joined {
            Ok(membership) => play(&mut sink, &mut stream, wire, &mut budget, membership, &state),
            // Boxed too: a refusal's goodbye is brief, and inline its state
            // would be part of every connection that plays.
            Err(ending) => return Box::pin(finish(&mut sink, &mut stream, ending)).await,
        };
        playing.await
    }
}

fn going_away() -> Ending {
    Ending::Close(CloseReason::new(close::GOING_AWAY, "server shutting down"))
}

/// Reads `Hello`, checks it, and asks the room for a seat.
async fn handshake(
    stream: &mut impl MessageStream,
    budget: &mut RateBudget,
    state: &Context,
) -> Result<Membership, Ending> {
    let metrics = &state.app.metrics;
    let deadline = Instant::now() + state.app.config.limits.handshake_timeout();
    let bytes = loop {
        let Ok(next) = tokio::time::timeout_at(deadline, stream.next()).await else {
            metrics.kick(Kick::BadHandshake);
            let reason =
                format!("no Hello within {:.1}s", state.app.config.limits.handshake_timeout().as_secs_f64());
            return Err(Ending::Close(CloseReason::new(close::TIMEOUT, reason)));
        };
        let message = match next {
            None => return Err(Ending::Gone),
            Some(Err(e)) => return Err(read_error_ending(e, metrics)),
            Some(Ok(message)) => message,
        };
        if !budget.spend() {
            return Err(rate_limited(state));
        }
        match message {
            Message::Binary(bytes) => break bytes,
            // Control frames before Hello are allowed, and paid for.
            Message::Ping(_) | Message::Pong(_) => {}
            Message::Close(_) => return Err(Ending::PeerClosed { goodbye: true }),
            Message::Text(_) => {
                metrics.kick(Kick::BadHandshake);
                return Err(Ending::Close(text_close()));
            }
        }
    };
    metrics.bytes_in_total.inc_by(bytes.len() as u64);

    // The version first, whatever shape the rest has: a page from another
    // release is told to reload, not that its bytes are wrong.
    let announced = hello_version(&bytes);
    if let Some(client) = announced
        && client != PROTOCOL_VERSION
    {
        return Err(refuse(
            Rejection::new(RejectReason::VersionMismatch { server: PROTOCOL_VERSION, client }),
            metrics,
        ));
    }
    let (name, color, room, resume) = match decode_client(&bytes) {
        Ok(ClientMsg::Hello { name, color, room, resume, .. }) => (name, color, room, resume),
        Ok(other) => {
            metrics.kick(Kick::BadHandshake);
            let reason = format!("expected Hello first, got {}", <&str>::from(&other));
            return Err(Ending::Close(CloseReason::new(close::PROTOCOL_ERROR, reason)));
        }
        // A Hello too long for its name is a bad name, told as one.
        Err(DecodeError::NameTooLong | DecodeError::TooLarge { .. }) if announced.is_some() => {
            return Err(refuse(Rejection::new(RejectReason::BadName), metrics));
        }
        Err(e) => {
            metrics.kick(Kick::BadHandshake);
            return Err(Ending::Close(decode_error_close(&e)));
        }
    };
    let result = match validate_name(&name) {
        Some(name) => {
            state.app.lobby.join(&room, Newcomer { name, color, from: None }, resume, state.peer).await
        }
        None => Err(Rejection::new(RejectReason::BadName).into()),
    };
    result.map_err(|refusal| match refusal {
        NoSeat::Rejected(rejection) => {
            tracing::debug!(%name, reason = %rejection.message, "handshake refused");
            refuse(rejection, metrics)
        }
        NoSeat::Moved(moved) => {
            tracing::debug!(%name, to = %moved.url, room = %moved.room, "sent to another node");
            let note = Bytes::from(encode_server(&ServerMsg::Moved(moved)));
            Ending::Close(CloseReason::new(close::MOVED, "the room is on another node").after(note))
        }
    })
}

/// A refused handshake: counted, then the typed rejection and its close.
fn refuse(rejection: Rejection, metrics: &Metrics) -> Ending {
    metrics.rejected_total.inc();
    Ending::Reject(rejection)
}

/// The game: reader and writer until one ends, then the close frame.
#[expect(clippy::manual_async_fn, reason = "an async fn would hold its arguments twice: see `serve`")]
fn play(
    sink: &mut impl MessageSink,
    stream: &mut impl MessageStream,
    wire: Option<Arc<Wire>>,
    budget: &mut RateBudget,
    mut membership: Membership,
    state: &Context,
) -> impl Future<Output = ()> {
    async move {
        let Membership { id, outbox, .. } = &membership;
        // From here the room writes this player's frames to the socket itself.
        let attached = wire.clone().map(|wire| outbox.attach(wire));
        // The payload of the ping the writer waits on (0: none); the reader
        // clears it when the matching pong comes.
        let ping = AtomicU64::new(NO_PING);
        let liveness = Liveness {
            ping_every: state.app.config.limits.ping_interval(),
            pong_timeout: state.app.config.limits.pong_timeout(),
        };
        // `abrupt`: the socket dropped without a goodbye, so the seat is held.
        let (peer_closed, abrupt) = {
            let mut writer = std::pin::pin!(write_loop(
                sink,
                outbox,
                wire.as_deref(),
                liveness,
                &ping,
                &state.app.metrics
            ));
            let ended = tokio::select! {
                ending = read_loop(stream, &membership, budget, &ping, state) => ending,
                // The writer ends once the outbox closes (the room kicked the
                // player, or it resumed elsewhere) or the socket fails; it is not
                // polled again after this arm.
                close_sent = &mut writer => {
                    if close_sent {
                        // Boxed, like every way out: rare, and inline their
                        // state would be part of every connection that plays.
                        Box::pin(linger(stream)).await;
                        Ending::Closed
                    } else {
                        Ending::Gone
                    }
                }
                () = state.app.cancel.cancelled() => going_away(),
            };
            match ended {
                Ending::Closed => (false, false),
                Ending::Gone => (false, true),
                Ending::PeerClosed { goodbye } => (true, !goodbye),
                Ending::Close(reason) => {
                    tracing::debug!(player = id, code = reason.code, reason = %reason.reason, "closing a client");
                    outbox.close(reason);
                    Box::pin(async {
                        if tokio::time::timeout(CLOSE_TIMEOUT, &mut writer).await.unwrap_or(false) {
                            linger(stream).await;
                        }
                    })
                    .await;
                    (false, false)
                }
                // Only the handshake rejects.
                Ending::Reject(_) => (false, false),
            }
            // The writer is dropped here, which frees the sink for the echo.
        };
        drop(attached);
        if peer_closed {
            Box::pin(echo_close(sink)).await;
        }
        if !abrupt || membership.watching {
            membership.leave_for_good();
        } else {
            match state.app.held_seats.try_acquire(state.peer) {
                // The room keeps the place for as long as it holds the seat.
                Ok(place) => membership.hold(place),
                Err(_) => {
                    state.app.metrics.holds_refused_total.inc();
                    tracing::debug!(player = id, "this address holds its limit of seats; freeing the seat");
                    membership.leave_for_good();
                }
            }
        }
        // `membership` drops here, after the writer that borrowed it: the seat is
        // freed, as it is on a panic or a cancellation.
    }
}

/// Decodes messages until the client leaves or breaks the rules; says how
/// the connection ends.
async fn read_loop(
    stream: &mut impl MessageStream,
    membership: &Membership,
    budget: &mut RateBudget,
    ping: &AtomicU64,
    state: &Context,
) -> Ending {
    let idle = state.app.config.limits.idle_timeout();
    let metrics = &state.app.metrics;
    let Membership { id, outbox, .. } = membership;
    // One timer for the whole connection, pushed back by every message
    // (pushing a deadline later costs no timer-wheel work).
    let silence = tokio::time::sleep(idle);
    let mut silence = std::pin::pin!(silence);
    loop {
        let next = tokio::select! {
            next = stream.next() => next,
            () = &mut silence => {
                // A writer already closing it (pings unanswered) counted the kick.
                if !outbox.is_closed() {
                    metrics.kick(Kick::Idle);
                }
                tracing::debug!(player = id, "dropping silent client");
                let reason = format!("nothing heard for {}s", idle.as_secs());
                return Ending::Close(CloseReason::new(close::TIMEOUT, reason));
            }
        };
        let message = match next {
            None => return Ending::Gone,
            Some(Err(e)) => return read_error_ending(e, metrics),
            Some(Ok(message)) => message,
        };
        silence.as_mut().reset(Instant::now() + idle);
        if !budget.spend() {
            return rate_limited(state);
        }
        let bytes = match message {
            Message::Binary(bytes) => bytes,
            Message::Pong(payload) => {
                answer_ping(&payload, ping);
                continue;
            }
            // tungstenite queues the reply itself (one at a time, bounded).
            Message::Ping(_) => continue,
            Message::Close(frame) => {
                let goodbye = frame.is_some_and(|f| f.code == close::NORMAL);
                return Ending::PeerClosed { goodbye };
            }
            Message::Text(_) => {
                metrics.kick(Kick::Protocol);
                return Ending::Close(text_close());
            }
        };
        metrics.bytes_in_total.inc_by(bytes.len() as u64);
        if let Err(ending) = on_client_msg(&bytes, membership, metrics) {
            return ending;
        }
    }
}

/// Only the answer to the ping outstanding counts: a pong made up in
/// advance (or replayed) answers nothing.
fn answer_ping(payload: &[u8], ping: &AtomicU64) {
    if let Ok(n) = <[u8; 8]>::try_from(payload) {
        let n = u64::from_be_bytes(n);
        if n != NO_PING {
            let _ = ping.compare_exchange(n, NO_PING, Relaxed, Relaxed);
        }
    }
}

/// Handles one message of a seated client (or a watcher): inputs,
/// `Resync` and a watcher's `Follow` to the room, a pong straight back;
/// `Err` says how the connection ends.
fn on_client_msg(bytes: &[u8], membership: &Membership, metrics: &Metrics) -> Result<(), Ending> {
    let Membership { inbound, outbox, watching, .. } = membership;
    let watching = *watching;
    let msg = decode_client(bytes);
    // A watcher moves nobody, and only a watcher has a camera to point.
    let misplaced = match &msg {
        Ok(ClientMsg::Input { .. } | ClientMsg::Inputs { .. }) if watching => {
            Some("a watcher sends no inputs")
        }
        Ok(ClientMsg::Follow { .. }) if !watching => Some("only a watcher follows a player"),
        Ok(ClientMsg::Host(_)) if watching => Some("a watcher hosts nothing"),
        _ => None,
    };
    if let Some(reason) = misplaced {
        metrics.kick(Kick::Protocol);
        return Err(Ending::Close(CloseReason::new(close::PROTOCOL_ERROR, reason)));
    }
    match msg {
        Ok(ClientMsg::Input { seq, input }) => queue_inputs(inbound, seq, [input], metrics),
        Ok(ClientMsg::Inputs { seq, inputs: batch }) => queue_inputs(inbound, seq, batch, metrics),
        // Dropped when the queue is full: the watcher may say it again.
        Ok(ClientMsg::Follow { id }) => match inbound.push(Inbound::Follow(id)) {
            Err(NotQueued::Closed) => Err(Ending::Gone),
            _ => Ok(()),
        },
        // In order with the inputs; with the queue full it is dropped,
        // which only a client flooding its own queue meets.
        Ok(ClientMsg::Host(command)) => match inbound.push(Inbound::Host(command)) {
            Err(NotQueued::Closed) => Err(Ending::Gone),
            _ => Ok(()),
        },
        Ok(ClientMsg::Ping { client_time_us }) => {
            let pong = Bytes::from(encode_server(&ServerMsg::Pong { client_time_us }));
            if outbox.push_event(pong) {
                return Ok(());
            }
            metrics.kick(Kick::TooSlow);
            Err(Ending::Close(CloseReason::new(close::TOO_SLOW, "too slow: replies were not being read")))
        }
        // The next frame is a full view (rate-limited like everything else;
        // with the queue full it is dropped, and the client, still lacking
        // its baseline, asks again).
        Ok(ClientMsg::Resync) => match inbound.push(Inbound::Resync) {
            Err(NotQueued::Closed) => Err(Ending::Gone),
            _ => Ok(()),
        },
        Ok(ClientMsg::Hello { .. }) => {
            metrics.kick(Kick::Protocol);
            Err(Ending::Close(CloseReason::new(close::PROTOCOL_ERROR, "Hello sent twice")))
        }
        Err(e) => {
            metrics.kick(Kick::Protocol);
            Err(Ending::Close(decode_error_close(&e)))
        }
    }
}

/// Hands inputs numbered from `seq` to the room; one it has no space for is
/// dropped and counted. `Err`: the room let go of this player (kicked), and
/// the writer is closing.
fn queue_inputs(
    inbound: &InboundQueue,
    seq: u32,
    batch: impl IntoIterator<Item = Input>,
    metrics: &Metrics,
) -> Result<(), Ending> {
    // The client chose `seq`: count on from it wrapping, never overflowing.
    for (offset, input) in (0u32..).zip(batch) {
        match inbound.push(Inbound::Input(QueuedInput { seq: seq.wrapping_add(offset), input })) {
            Ok(()) => {}
            Err(NotQueued::Full) => {
                metrics.inputs_dropped_total.inc();
            }
            Err(NotQueued::Closed) => return Err(Ending::Gone),
        }
    }
    Ok(())
}

/// The ping payload that means "no ping outstanding"; real ones are never 0.
const NO_PING: u64 = 0;

/// How the writer checks that the peer still reads.
#[derive(Debug, Clone, Copy)]
struct Liveness {
    ping_every: Duration,
    /// A ping unanswered this long means the peer stopped reading.
    pong_timeout: Duration,
}

/// An unpredictable ping payload, so no pong can be sent ahead of its ping.
fn ping_payload() -> u64 {
    // Without the OS's randomness, the clock's nanoseconds are still not
    // something a client can know in advance to the nanosecond.
    let random = getrandom::u64().unwrap_or_else(|_| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64)
    });
    if random == NO_PING { 1 } else { random }
}

/// Drains the outbox to the socket and pings, until the outbox closes (then
/// sends the close frame and returns `true`) or the socket fails (`false`).
///
/// One ping is outstanding at a time, with a fresh random payload that the
/// reader clears from `ping` when the matching pong arrives. At each ping
/// tick, an answered ping is followed by a new one, and one unanswered for
/// `pong_timeout` closes the connection (4004). A peer that stops reading
/// at `t` is therefore closed by `t + ping_every + pong_timeout` rounded up
/// to the next tick, whatever its socket buffers hold (a full socket is
/// caught sooner, by the room's stale frames).
#[expect(clippy::manual_async_fn, reason = "an async fn would hold its arguments twice: see `serve`")]
fn write_loop(
    sink: &mut impl MessageSink,
    outbox: &Outbox,
    wire: Option<&Wire>,
    liveness: Liveness,
    ping: &AtomicU64,
    metrics: &Metrics,
) -> impl Future<Output = bool> {
    async move {
        let mut ticks = tokio::time::interval_at(Instant::now() + liveness.ping_every, liveness.ping_every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // When the outstanding ping went out.
        let mut ping_sent: Option<Instant> = None;
        loop {
            let next = tokio::select! {
                next = take_next(outbox, wire) => next,
                _ = ticks.tick() => {
                    // Closing already (a kick, a resume elsewhere): the close goes out next.
                    if outbox.is_closed() {
                        continue;
                    }
                    let answered = ping.load(Relaxed) == NO_PING;
                    match ping_sent {
                        Some(sent) if !answered && sent.elapsed() >= liveness.pong_timeout => {
                            metrics.kick(Kick::TooSlow);
                            outbox.close(CloseReason::new(close::TOO_SLOW, "too slow: pings went unanswered"));
                            continue;
                        }
                        // Still waiting, within the timeout.
                        Some(_) if !answered => continue,
                        _ => {}
                    }
                    let payload = ping_payload();
                    ping.store(payload, Relaxed);
                    ping_sent = Some(Instant::now());
                    let message = Message::Ping(Bytes::copy_from_slice(&payload.to_be_bytes()));
                    let sent = tokio::select! {
                        sent = sink.send(message) => sent,
                        reason = outbox.closed() => return send_close(sink, reason).await,
                    };
                    if sent.is_err() {
                        return false;
                    }
                    continue;
                }
            };
            let messages = match next {
                Next::Send(messages) => messages,
                Next::Close(reason) => return send_close(sink, reason).await,
                Next::Broken => return false,
            };
            let count = messages.len();
            let bytes: usize = messages.iter().map(Bytes::len).sum();
            let write = async {
                for message in messages {
                    sink.feed(Message::Binary(message)).await?;
                }
                sink.flush().await
            };
            // A socket that stops draining must not keep the close from going out.
            let sent = tokio::select! {
                sent = write => sent,
                reason = outbox.closed() => return send_close(sink, reason).await,
            };
            if sent.is_err() {
                return false;
            }
            metrics.messages_out_total.inc_by(count as u64);
            metrics.bytes_out_total.inc_by(bytes as u64);
            metrics.writes_by_writer_total.inc();
        }
    }
}

/// What the writer does next.
enum Next {
    /// Sends these (a connection without a wire).
    Send(Vec<Bytes>),
    /// Sends the close frame and stops.
    Close(CloseReason),
    /// The wire broke: nobody is listening.
    Broken,
}

/// Waits for what the writer must do: with a wire, the outbox delivers by
/// itself and only a close (or a broken wire) comes back; without one, the
/// next batch to send.
async fn take_next(outbox: &Outbox, wire: Option<&Wire>) -> Next {
    let Some(wire) = wire else {
        let batch = outbox.next().await;
        return match batch.close {
            Some(reason) => Next::Close(reason),
            None => Next::Send(batch.messages),
        };
    };
    match outbox.deliver(wire).await {
        Ok(reason) => Next::Close(reason),
        Err(Broken) => Next::Broken,
    }
}

/// Ends a connection that never joined: the rejection, the close frame, and
/// a moment to hear the reply.
async fn finish(sink: &mut impl MessageSink, stream: &mut impl MessageStream, ending: Ending) {
    let reason = match ending {
        Ending::Gone | Ending::Closed => return,
        Ending::PeerClosed { .. } => return echo_close(sink).await,
        Ending::Close(reason) => reason,
        Ending::Reject(rejection) => {
            let reason = CloseReason::new(rejection.reason.close_code(), rejection.message.clone());
            let bytes = Bytes::from(encode_server(&ServerMsg::Rejected(rejection)));
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, sink.send(Message::Binary(bytes))).await;
            reason
        }
    };
    if send_close(sink, reason).await {
        linger(stream).await;
    }
}

/// Waits briefly for the peer's close reply, so that dropping the socket
/// cannot reset the connection before the peer has read our frame (the
/// reason would be lost). Messages meanwhile are read and dropped.
async fn linger(stream: &mut impl MessageStream) {
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
        while let Some(Ok(message)) = stream.next().await {
            if matches!(message, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}

/// Sends our close frame; `true` if it went out.
async fn send_close(sink: &mut impl MessageSink, reason: CloseReason) -> bool {
    if let Some(last_word) = reason.last_word.clone() {
        let sent = tokio::time::timeout(CLOSE_TIMEOUT, sink.send(Message::Binary(last_word))).await;
        if !matches!(sent, Ok(Ok(()))) {
            return false;
        }
    }
    let reason_text = &reason.reason[..reason.reason.floor_char_boundary(MAX_REASON_BYTES)];
    let frame = CloseFrame { code: reason.code, reason: reason_text.into() };
    matches!(tokio::time::timeout(CLOSE_TIMEOUT, sink.send(Message::Close(Some(frame)))).await, Ok(Ok(())))
}

/// Answers the peer's close frame (RFC 6455 §5.5.1). tungstenite queued the
/// echo when it read the peer's frame and refuses a frame of ours after it;
/// closing the sink flushes the echo.
async fn echo_close(sink: &mut impl MessageSink) {
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, sink.close()).await;
}

fn rate_limited(state: &Context) -> Ending {
    state.app.metrics.kick(Kick::RateLimit);
    let rate = state.app.config.limits.max_message_rate;
    Ending::Close(CloseReason::new(
        close::RATE_LIMITED,
        format!("rate limited: over {rate} messages a second"),
    ))
}

/// What to tell a client whose socket read failed, if it can still hear us.
fn read_error_ending(error: axum::Error, metrics: &Metrics) -> Ending {
    match error.into_inner().downcast::<tungstenite::Error>() {
        Ok(e) if matches!(*e, tungstenite::Error::Capacity(_)) => {
            metrics.kick(Kick::Protocol);
            Ending::Close(CloseReason::new(
                close::MESSAGE_TOO_BIG,
                format!("message too big: the limit is {MAX_CLIENT_MSG_BYTES} bytes"),
            ))
        }
        // A socket that simply ended is a dropped connection, not bad bytes.
        Ok(e)
            if matches!(
                *e,
                tungstenite::Error::Protocol(tungstenite::error::ProtocolError::ResetWithoutClosingHandshake)
            ) =>
        {
            Ending::Gone
        }
        Ok(e) if matches!(*e, tungstenite::Error::Protocol(_)) => {
            metrics.kick(Kick::Protocol);
            Ending::Close(CloseReason::new(close::PROTOCOL_ERROR, format!("websocket protocol error: {e}")))
        }
        _ => Ending::Gone,
    }
}

fn decode_error_close(error: &DecodeError) -> CloseReason {
    let code = match error {
        DecodeError::TooLarge { .. } => close::MESSAGE_TOO_BIG,
        _ => close::PROTOCOL_ERROR,
    };
    CloseReason::new(code, error.to_string())
}

fn text_close() -> CloseReason {
    CloseReason::new(close::UNSUPPORTED_DATA, "arena speaks binary messages only")
}

#[cfg(test)]
mod tests {
    //! The connection's state machine over channels instead of a socket, on
    //! tokio's paused clock: deadlines are exact and take no wall time.

    use std::net::Ipv4Addr;
    use std::sync::Arc;

    use arena_shared::codec::{decode_server, encode_client};
    use arena_shared::protocol::{ResumeToken, RoomRequest, Welcome};
    use tokio::sync::mpsc;
    use tokio::time::Duration;
    use tokio_util::sync::CancellationToken;
    use tokio_util::task::TaskTracker;

    use super::*;
    use crate::config::ServerConfig;

    #[test]
    fn oversized_messages_close_with_1009_and_garbage_with_4000() {
        assert_eq!(
            decode_error_close(&DecodeError::TooLarge { len: 999, max: 256 }).code,
            close::MESSAGE_TOO_BIG
        );
        assert_eq!(decode_error_close(&DecodeError::Malformed("x".into())).code, close::PROTOCOL_ERROR);
    }

    fn app(config: ServerConfig) -> AppState {
        let bound = std::net::SocketAddr::from(([127, 0, 0, 1], 7777));
        AppState::new(&Arc::new(config), bound, &CancellationToken::new(), &TaskTracker::new())
    }

    /// A client at the other end of two channels.
    struct Peer {
        to_server: mpsc::UnboundedSender<Result<Message, axum::Error>>,
        from_server: mpsc::UnboundedReceiver<Message>,
    }

    fn connect(app: &AppState) -> Peer {
        let (to_server, server_in) = mpsc::unbounded_channel();
        let (server_out, from_server) = mpsc::unbounded_channel();
        let stream = Box::pin(futures_util::stream::unfold(server_in, |mut rx| async move {
            rx.recv().await.map(|message| (message, rx))
        }));
        let sink = Box::pin(futures_util::sink::unfold(server_out, |tx, message: Message| async move {
            tx.send(message).map_err(axum::Error::new)?;
            Ok::<_, axum::Error>(tx)
        }));
        let context = Context { app: app.clone(), peer: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)) };
        tokio::spawn(serve_over(sink, stream, None, context));
        Peer { to_server, from_server }
    }

    impl Peer {
        fn send(&self, msg: &ClientMsg) {
            self.send_raw(Message::Binary(encode_client(msg).into()));
        }

        fn send_raw(&self, message: Message) {
            let _ = self.to_server.send(Ok(message));
        }

        /// The next message from the server (a minute of paused time at most).
        async fn next(&mut self) -> Message {
            let next = tokio::time::timeout(Duration::from_secs(60), self.from_server.recv()).await;
            next.expect("the server says something within a minute").expect("the connection is open")
        }

        /// The next protocol message, answering pings on the way.
        async fn next_msg(&mut self) -> ServerMsg {
            loop {
                match self.next().await {
                    Message::Binary(bytes) => return decode_server(&bytes).expect("server bytes decode"),
                    Message::Ping(payload) => self.send_raw(Message::Pong(payload)),
                    Message::Close(frame) => panic!("closed early: {frame:?}"),
                    _ => {}
                }
            }
        }

        /// Hello for `room`, then the Welcome.
        async fn join(&mut self, name: &str, room: RoomRequest, resume: Option<ResumeToken>) -> Welcome {
            let hello =
                ClientMsg::Hello { version: PROTOCOL_VERSION, name: name.into(), color: 0, room, resume };
            self.send(&hello);
            match self.next_msg().await {
                ServerMsg::Welcome(welcome) => welcome,
                other => panic!("expected Welcome, got {other:?}"),
            }
        }

        /// Reads (without answering pings) until the close frame: its code.
        async fn close_code(&mut self) -> u16 {
            loop {
                if let Message::Close(frame) = self.next().await {
                    return frame.map_or(close::ABNORMAL, |f| f.code);
                }
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_sends_but_never_answers_pings_is_closed_at_the_pong_deadline() {
        let config = ServerConfig::default().with(|c| c.limits.idle_timeout_secs = 30);
        let (ping_every, pong_timeout) = (config.limits.ping_interval(), config.limits.pong_timeout());
        let app = app(config);
        let mut peer = connect(&app);
        peer.join("deaf", RoomRequest::Quick, None).await;
        let started = Instant::now();
        // Inputs every second, so silence never ends it; pings go unanswered.
        let mut seq = 0;
        let mut every_second = tokio::time::interval(Duration::from_secs(1));
        let code = loop {
            tokio::select! {
                message = peer.from_server.recv() => match message {
                    Some(Message::Close(frame)) => break frame.map_or(close::ABNORMAL, |f| f.code),
                    Some(_) => {}
                    None => break close::ABNORMAL,
                },
                _ = every_second.tick() => {
                    seq += 2;
                    peer.send(&ClientMsg::Inputs { seq: seq - 1, inputs: vec![Input::default(); 2] });
                }
            }
        };
        let after = started.elapsed();
        assert_eq!(code, close::TOO_SLOW);
        assert!(
            after >= ping_every + pong_timeout && after <= 2 * ping_every + pong_timeout,
            "closed {after:?} in: the first ping at {ping_every:?}, unanswered for {pong_timeout:?}"
        );
        assert_eq!(app.metrics.kicks(Kick::TooSlow), 1, "one kick, counted once");
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_answers_pings_stays_and_a_silent_one_times_out() {
        let config = ServerConfig::default().with(|c| c.limits.idle_timeout_secs = 30);
        let app = app(config);
        let mut alive = connect(&app);
        let mut silent = connect(&app);
        alive.join("alive", RoomRequest::Quick, None).await;
        silent.join("silent", RoomRequest::Quick, None).await;
        let started = Instant::now();
        let mut alive_frames = 0;
        // The silent one reads (and so answers nothing); the live one answers.
        let silent_code = async {
            let code = silent.close_code().await;
            (code, started.elapsed())
        };
        let reading = async {
            while started.elapsed() < Duration::from_secs(100) {
                if let ServerMsg::Frame(_) = alive.next_msg().await {
                    alive_frames += 1;
                }
            }
        };
        let ((code, after), ()) = tokio::join!(silent_code, reading);
        // Silent from the start, it misses both deadlines at once: the idle
        // timeout (30 s) and the first ping (10 s) unanswered for 20 s.
        // Either close may win; the kick is counted once.
        assert!(matches!(code, close::TIMEOUT | close::TOO_SLOW), "closed with {code}");
        assert!(after >= Duration::from_secs(30) && after < Duration::from_secs(31), "{after:?}");
        assert_eq!(app.metrics.kicks(Kick::Idle) + app.metrics.kicks(Kick::TooSlow), 1, "one kick");
        assert!(alive_frames > 2_500, "100 s at 30 Hz, still served: {alive_frames}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_past_the_rate_budget_is_closed_with_4006() {
        let app = app(ServerConfig::default().with(|c| c.limits.max_message_rate = 50));
        let mut peer = connect(&app);
        peer.join("flood", RoomRequest::Quick, None).await;
        for _ in 0..200 {
            peer.send(&ClientMsg::Ping { client_time_us: 1 });
        }
        assert_eq!(peer.close_code().await, close::RATE_LIMITED);
        assert_eq!(app.metrics.kicks(Kick::RateLimit), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn resync_makes_the_next_frame_a_full_view() {
        let app = app(ServerConfig::default());
        let mut peer = connect(&app);
        peer.join("lost", RoomRequest::Quick, None).await;
        let mut baselines = Vec::new();
        while baselines.len() < 5 {
            if let ServerMsg::Frame(frame) = peer.next_msg().await {
                baselines.push(frame.baseline_age);
            }
        }
        assert_eq!(baselines[0], 0, "the first frame is a full view");
        assert!(baselines[1..].iter().all(|&b| b > 0), "then deltas: {baselines:?}");
        peer.send(&ClientMsg::Resync);
        let mut next = Vec::new();
        while next.len() < 3 {
            if let ServerMsg::Frame(frame) = peer.next_msg().await {
                next.push(frame.baseline_age);
            }
        }
        assert!(next.contains(&0), "a full view follows the Resync: {next:?}");
        assert!(next.last().is_some_and(|&b| b > 0), "and deltas again: {next:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_watcher_sees_frames_and_is_closed_for_inputs_and_a_player_for_follow() {
        let app = app(ServerConfig::default());
        let mut ada = connect(&app);
        let seated = ada.join("ada", RoomRequest::Quick, None).await;
        let mut eve = connect(&app);
        let watch = RoomRequest::Watch { code: seated.room.clone() };
        let welcome = eve.join("eve", watch.clone(), None).await;
        assert!(welcome.watching && welcome.players.iter().any(|p| p.id == seated.you));
        loop {
            if let ServerMsg::Frame(frame) = eve.next_msg().await {
                assert_eq!(frame.you.id, seated.you, "the watcher follows the only player");
                break;
            }
        }
        eve.send(&ClientMsg::Follow { id: seated.you });
        eve.send(&ClientMsg::Inputs { seq: 1, inputs: vec![Input::stick(1, 0)] });
        assert_eq!(eve.close_code().await, close::PROTOCOL_ERROR);
        ada.send(&ClientMsg::Follow { id: seated.you });
        assert_eq!(ada.close_code().await, close::PROTOCOL_ERROR);
        // A room nobody plays in is still not found by a watcher.
        let mut mallory = connect(&app);
        mallory.send(&ClientMsg::Hello {
            version: PROTOCOL_VERSION,
            name: "m".into(),
            color: 0,
            room: RoomRequest::Watch { code: "nosuchroom".into() },
            resume: None,
        });
        assert!(matches!(
            mallory.next_msg().await,
            ServerMsg::Rejected(Rejection { reason: RejectReason::RoomNotFound, .. })
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn a_goodbye_is_echoed_and_frees_the_seat_for_everyone_to_see() {
        let app = app(ServerConfig::default());
        let (mut ada, mut bob) = (connect(&app), connect(&app));
        let welcome = ada.join("ada", RoomRequest::Quick, None).await;
        bob.join("bob", RoomRequest::Quick, None).await;
        ada.send_raw(Message::Close(Some(CloseFrame { code: close::NORMAL, reason: "bye".into() })));
        // The socket layer (tungstenite) queues the echo when it reads the
        // peer's frame; the connection only flushes and closes its sink,
        // sending no close frame of its own after the peer's.
        while let Some(message) = ada.from_server.recv().await {
            assert!(!matches!(message, Message::Close(_)), "no second close frame");
        }
        loop {
            match bob.next_msg().await {
                ServerMsg::Left { id } if id == welcome.you => break,
                ServerMsg::Away { id } if id == welcome.you => panic!("a goodbye holds no seat"),
                _ => {}
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_resume_takes_the_seat_and_closes_the_old_connection_with_4008() {
        let app = app(ServerConfig::default());
        let mut first = connect(&app);
        let welcome = first.join("ada", RoomRequest::Quick, None).await;
        let mut second = connect(&app);
        let room = RoomRequest::Join { code: welcome.room.clone() };
        let again = second.join("whoever", room, Some(welcome.resume)).await;
        assert_eq!((again.you, again.resumed), (welcome.you, true), "the same player, resumed");
        assert_eq!(first.close_code().await, close::RESUMED_ELSEWHERE);
        // The new connection plays on.
        assert!(matches!(second.next_msg().await, ServerMsg::Frame(_) | ServerMsg::Back { .. }));
    }

    #[tokio::test(start_paused = true)]
    async fn no_hello_within_the_handshake_deadline_closes_with_4005() {
        let config = ServerConfig::default();
        let deadline = config.limits.handshake_timeout();
        let mut peer = connect(&app(config));
        let started = Instant::now();
        assert_eq!(peer.close_code().await, close::TIMEOUT);
        assert_eq!(started.elapsed(), deadline);
    }
}
