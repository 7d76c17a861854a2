//! A plain-TCP WebSocket's sending side, shared by the room and the
//! connection: the tick writes a player's news and frame to the socket
//! there and then, already framed, in one non-blocking `write`; the
//! connection's writer wakes only for what the socket would not take, and
//! its pings, pongs and close frame go through here too, so every frame is
//! written whole and in order, whoever sends it.
//!
//! What the socket does not take waits here (`pending`), in order, and
//! nothing new is written past it: the next frame stays in the outbox,
//! where a newer one replaces it, so a slow reader costs one batch of
//! bytes, not a queue.

use std::io;
use std::sync::Mutex;
use std::task::{Context, Poll};

use prometheus_client::metrics::counter::Counter;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::Notify;

/// Most bytes that may wait for the socket: the events a player may have
/// queued and the largest frame fit many times over; only a peer that
/// stops reading while our control frames pile up reaches it, and is
/// dropped.
pub const MAX_PENDING_BYTES: usize = 512 * 1024;

/// The thread's framing scratch keeps its memory up to this size.
const SCRATCH_KEEP_BYTES: usize = 64 * 1024;

thread_local! {
    /// Where a batch is framed before its one write: one per thread (the
    /// tick's), not one per connection.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// What a connection counts as sent: messages and their payload bytes,
/// and who wrote them.
#[derive(Debug, Clone, Default)]
pub struct SentCounters {
    pub messages: Counter,
    pub bytes: Counter,
    /// Batches written straight from the tick (or the reader's pong).
    pub direct: Counter,
    /// Batches the connection's writer task wrote.
    pub by_writer: Counter,
}

#[derive(Debug)]
pub struct Wire {
    socket: OwnedWriteHalf,
    pending: Mutex<Pending>,
    /// Wakes the connection's writer when bytes are left waiting.
    backlog: Notify,
    counters: SentCounters,
}

#[derive(Debug, Default)]
struct Pending {
    /// Framed bytes not yet written, from `written` on.
    bytes: Vec<u8>,
    written: usize,
    /// The socket failed (or the peer let too much pile up): nothing more is
    /// written, and the connection ends.
    broken: bool,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.written == self.bytes.len()
    }

    fn waiting(&self) -> usize {
        self.bytes.len() - self.written
    }
}

/// Where a write left the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// All of it is with the kernel.
    Out,
    /// Some waits for the socket; the writer was woken to see it out.
    Waiting,
    /// The socket failed, or too much waits: the connection is over.
    Broken,
}

impl Wire {
    pub fn new(socket: OwnedWriteHalf, counters: SentCounters) -> Self {
        Wire { socket, pending: Mutex::default(), backlog: Notify::new(), counters }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        // Plain bytes and offsets; nothing panics while holding the lock.
        self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether nothing waits, so a write now goes straight out.
    pub fn is_idle(&self) -> bool {
        let pending = self.lock();
        pending.is_empty() && !pending.broken
    }

    /// Frames each payload as a binary message and writes them all, after
    /// whatever already waits, in one write; counts them as sent, by whom
    /// (`direct`: not the connection's writer task).
    pub fn send_binary<'a>(&self, payloads: impl IntoIterator<Item = &'a [u8]>, direct: bool) -> Sent {
        let (mut messages, mut bytes) = (0, 0);
        let sent = SCRATCH.with_borrow_mut(|framed| {
            framed.clear();
            for payload in payloads {
                frame_binary(framed, payload);
                messages += 1;
                bytes += payload.len() as u64;
            }
            let sent = self.send_raw(framed);
            // The scratch serves every connection of the thread; a burst's
            // memory is not kept.
            if framed.capacity() > SCRATCH_KEEP_BYTES {
                *framed = Vec::new();
            }
            sent
        });
        if sent != Sent::Broken {
            self.counters.messages.inc_by(messages);
            self.counters.bytes.inc_by(bytes);
            if direct { &self.counters.direct } else { &self.counters.by_writer }.inc();
        }
        sent
    }

    /// Writes bytes already framed (whole frames), after whatever waits;
    /// what the socket does not take is kept, so a connection at rest holds
    /// no buffer.
    pub fn send_raw(&self, framed: &[u8]) -> Sent {
        let mut pending = self.lock();
        if pending.broken {
            return Sent::Broken;
        }
        if !pending.is_empty() {
            if pending.waiting() + framed.len() > MAX_PENDING_BYTES {
                return self.break_wire(&mut pending);
            }
            pending.bytes.extend_from_slice(framed);
            return Sent::Waiting;
        }
        let Some(written) = self.try_write(framed) else {
            return self.break_wire(&mut pending);
        };
        if written == framed.len() {
            return Sent::Out;
        }
        pending.bytes = framed[written..].to_vec();
        pending.written = 0;
        self.backlog.notify_one();
        Sent::Waiting
    }

    /// One non-blocking write: how much the socket took (0 when it would
    /// block), or `None` when it failed.
    fn try_write(&self, bytes: &[u8]) -> Option<usize> {
        match self.socket.try_write(bytes) {
            Ok(n) => Some(n),
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => Some(0),
            Err(_) => None,
        }
    }

    /// Nothing more is written; the writer is woken to end the connection.
    fn break_wire(&self, pending: &mut Pending) -> Sent {
        pending.broken = true;
        self.backlog.notify_one();
        Sent::Broken
    }

    /// Writes what waits, as far as the socket takes it now: `Ok(true)` once
    /// nothing waits.
    fn flush_now(&self) -> Result<bool, Broken> {
        let mut pending = self.lock();
        if pending.broken {
            return Err(Broken);
        }
        if !pending.is_empty() {
            let Some(n) = self.try_write(&pending.bytes[pending.written..]) else {
                self.break_wire(&mut pending);
                return Err(Broken);
            };
            pending.written += n;
            if !pending.is_empty() {
                return Ok(false);
            }
        }
        // Freed: a player at rest keeps no buffer.
        *pending = Pending::default();
        Ok(true)
    }

    /// Waits until everything waiting is written; `Err` once the wire is broken.
    pub async fn drain(&self) -> Result<(), Broken> {
        while !self.flush_now()? {
            if self.socket.writable().await.is_err() {
                self.break_wire(&mut self.lock());
                return Err(Broken);
            }
        }
        Ok(())
    }

    /// Writes what waits, as far as the socket takes it; `Pending` (and a
    /// wake-up when the socket drains) while some still waits. For a writer
    /// that polls (tungstenite's flush of its control frames).
    pub fn poll_flush(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            match self.flush_now() {
                Ok(true) => return Poll::Ready(Ok(())),
                Ok(false) => std::task::ready!(self.socket.as_ref().poll_write_ready(cx))?,
                Err(Broken) => return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
            }
        }
    }

    /// Resolves when bytes were left waiting (or the wire broke) since the
    /// last call.
    pub async fn backlogged(&self) {
        self.backlog.notified().await;
    }
}

/// The socket failed, or its peer let too much pile up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the connection's socket is broken")]
pub struct Broken;

/// Appends `payload` as one unmasked binary WebSocket frame (RFC 6455 §5.2:
/// FIN and opcode 2, then the length in 1, 3 or 9 bytes).
pub fn frame_binary(buffer: &mut Vec<u8>, payload: &[u8]) {
    const FIN_BINARY: u8 = 0x82;
    let len = payload.len();
    buffer.reserve(len + 10);
    buffer.push(FIN_BINARY);
    match len {
        0..=125 => buffer.push(len as u8),
        126..=0xFFFF => {
            buffer.push(126);
            buffer.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            buffer.push(127);
            buffer.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    buffer.extend_from_slice(payload);
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt;
    use tokio::net::{TcpListener, TcpStream};
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;

    use super::*;

    /// A connected pair: the wire on one end, the raw peer on the other.
    async fn pair() -> (Wire, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let peer = TcpStream::connect(listener.local_addr().expect("bound")).await.expect("connects");
        let (server, _) = listener.accept().await.expect("accepts");
        let (_read, write) = server.into_split();
        (Wire::new(write, SentCounters::default()), peer)
    }

    #[test]
    fn frames_match_tungstenites_for_every_length_form() {
        for len in [0, 1, 125, 126, 127, 65_535, 65_536, 70_000] {
            let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let mut ours = Vec::new();
            frame_binary(&mut ours, &payload);
            let mut theirs = Vec::new();
            Frame::message(
                payload.clone(),
                tokio_tungstenite::tungstenite::protocol::frame::coding::OpCode::Data(
                    tokio_tungstenite::tungstenite::protocol::frame::coding::Data::Binary,
                ),
                true,
            )
            .format(&mut theirs)
            .expect("formats");
            assert_eq!(ours, theirs, "should frame {len} bytes as tungstenite does");
        }
    }

    #[tokio::test]
    async fn a_batch_goes_out_in_order_in_one_write_and_is_counted() {
        let (wire, mut peer) = pair().await;
        assert_eq!(wire.send_binary([&b"news"[..], b"frame"], true), Sent::Out);
        assert_eq!(wire.send_raw(&[0x89, 0]), Sent::Out, "a ping after them");
        let mut got = vec![0; 2 + 4 + 2 + 5 + 2];
        peer.read_exact(&mut got).await.expect("reads");
        assert_eq!(got, b"\x82\x04news\x82\x05frame\x89\x00");
        assert_eq!((wire.counters.messages.get(), wire.counters.bytes.get()), (2, 9));
        assert!(wire.is_idle());
    }

    #[tokio::test]
    async fn what_the_socket_refuses_waits_whole_and_in_order_until_drained() {
        let (wire, mut peer) = pair().await;
        let big = vec![7u8; 60_000];
        // Fill the socket until a write leaves bytes waiting.
        let mut written = 0;
        while wire.send_binary([&big[..]], true) == Sent::Out {
            written += 1;
            assert!(written < 1000, "a peer that reads nothing fills the socket");
        }
        assert!(!wire.is_idle());
        assert_eq!(wire.send_raw(b"\x89\x00"), Sent::Waiting, "queued behind, never written past");
        let reader = tokio::spawn(async move {
            let mut all = Vec::new();
            let mut buffer = vec![0; 65_536];
            let expected = (written + 1) * (60_000 + 4) + 2;
            while all.len() < expected {
                let n = peer.read(&mut buffer).await.expect("reads");
                assert!(n > 0, "the wire stays open");
                all.extend_from_slice(&buffer[..n]);
            }
            all
        });
        wire.drain().await.expect("drains once the peer reads");
        assert!(wire.is_idle());
        let all = reader.await.expect("reader");
        for frame in all[..all.len() - 2].chunks(60_004) {
            assert_eq!(&frame[..4], &[0x82, 126, 0xEA, 0x60], "every frame whole");
        }
        assert_eq!(&all[all.len() - 2..], b"\x89\x00", "the ping last");
    }

    #[tokio::test]
    async fn a_peer_that_lets_too_much_pile_up_breaks_the_wire() {
        let (wire, _peer) = pair().await;
        let big = vec![0u8; 64 * 1024];
        let mut sent = Sent::Out;
        for _ in 0..200 {
            sent = wire.send_binary([&big[..]], true);
            if sent == Sent::Broken {
                break;
            }
        }
        assert_eq!(sent, Sent::Broken, "should stop past {MAX_PENDING_BYTES} bytes waiting");
        assert_eq!(wire.drain().await, Err(Broken));
    }
}
