//! A player's outgoing queue between the room's tick and the write task:
//! it only goes out (what comes in goes through the room's inbound queue,
//! [`crate::room::links::Inbound`]).
//!
//! Events (welcome, joins, leaves, pongs) are kept in order up to a cap;
//! frames are not queued at all: a new frame replaces one the writer has not
//! taken yet, because a newer world state makes an older one worthless. The
//! room counts those replacements to find clients that stay behind. Pushing
//! never waits, so the tick never waits on a socket.
//!
//! A plain-TCP connection attaches its [`Wire`]: then what is pushed goes
//! to the socket at once, from the pusher's thread, whenever nothing waits
//! before it (no bytes the socket refused, no held `Welcome`); the writer
//! task wakes only to see a backlog out ([`Outbox::deliver`]).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::Notify;

use crate::room::wire::{Broken, Sent, Wire};

/// Events a player may have waiting before it counts as stuck.
pub const MAX_QUEUED_EVENTS: usize = 256;

/// Why the server ends a connection: sent as the close frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseReason {
    pub code: u16,
    pub reason: String,
    /// A message sent just before the close frame (a `Moved` that names
    /// where to go), whatever else was still waiting.
    pub last_word: Option<Bytes>,
}

impl CloseReason {
    pub fn new(code: u16, reason: impl Into<String>) -> Self {
        CloseReason { code, reason: reason.into(), last_word: None }
    }

    /// This close, with `message` sent just before its frame.
    pub fn after(mut self, message: Bytes) -> Self {
        self.last_word = Some(message);
        self
    }
}

/// What the writer takes in one go.
#[derive(Debug, Default)]
pub struct Batch {
    /// Events first, then the newest frame, in send order.
    pub messages: Vec<Bytes>,
    /// Set once the connection is to be closed; nothing follows it.
    pub close: Option<CloseReason>,
}

#[derive(Debug)]
pub struct Outbox {
    inner: Mutex<Inner>,
    /// Wakes the writer when something is pushed or the outbox closes.
    ready: Notify,
    /// Whether a frame waits untaken: the room reads it every tick without
    /// the lock (set under the lock by a push, cleared by the writer's take).
    frame_waiting: AtomicBool,
}

#[derive(Debug, Default)]
struct Inner {
    events: VecDeque<Bytes>,
    frame: Option<Bytes>,
    close: Option<CloseReason>,
    /// The writer takes nothing yet (a close still goes): see [`Outbox::hold`].
    held: bool,
    /// The socket to write to directly, while the connection lasts.
    wire: Option<Arc<Wire>>,
}

impl Inner {
    /// Queues an event (dropped once closing: nothing follows the close);
    /// `false` when the queue is full.
    fn enqueue(&mut self, bytes: Bytes) -> bool {
        if self.close.is_some() {
            return true;
        }
        if self.events.len() >= MAX_QUEUED_EVENTS {
            return false;
        }
        self.events.push_back(bytes);
        true
    }

    /// Whether what is pushed can go straight out: a wire attached, nothing
    /// held, nothing waiting for the socket.
    fn wire_open(&self) -> bool {
        !self.held && self.wire.as_ref().is_some_and(|wire| wire.is_idle())
    }

    /// Writes the events and the frame waiting to the wire, in one write
    /// (`direct`: by the pusher, not the writer task).
    fn write_out(&mut self, direct: bool) -> Sent {
        let Some(wire) = self.wire.take() else { return Sent::Out };
        let frame = self.frame.take();
        let sent = wire.send_binary(self.events.iter().chain(frame.as_ref()).map(|b| &b[..]), direct);
        // Events are rare next to frames: their memory leaves with them, and
        // a player at rest keeps none (kept, it was 0.3 KB a player).
        self.events = VecDeque::new();
        self.wire = Some(wire);
        sent
    }
}

/// While it lives, the outbox writes to its connection's wire.
#[derive(Debug)]
pub struct Attached(Arc<Outbox>);

impl Drop for Attached {
    fn drop(&mut self) {
        self.0.lock().wire = None;
    }
}

/// Result of pushing a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FramePush {
    /// The writer had taken the previous frame.
    Fresh,
    /// The previous frame was still waiting and was replaced.
    Replaced,
}

impl Default for Outbox {
    fn default() -> Self {
        Outbox {
            inner: Mutex::new(Inner::default()),
            ready: Notify::new(),
            frame_waiting: AtomicBool::new(false),
        }
    }
}

impl Outbox {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // The lock guards plain data and no code panics while holding it, so a
        // poisoned lock still holds consistent data.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn push_frame(&self, bytes: Bytes) -> FramePush {
        let replaced = {
            let mut inner = self.lock();
            if inner.close.is_some() {
                return FramePush::Fresh;
            }
            let replaced = inner.frame.replace(bytes).is_some();
            if inner.wire_open() {
                // Nothing waits before it: out now, after the news queued this tick.
                self.frame_waiting.store(false, Ordering::Release);
                inner.write_out(true);
                return if replaced { FramePush::Replaced } else { FramePush::Fresh };
            }
            self.frame_waiting.store(true, Ordering::Release);
            replaced
        };
        self.ready.notify_one();
        if replaced { FramePush::Replaced } else { FramePush::Fresh }
    }

    /// Queues an event; `false` means the queue is full and the client stuck.
    /// With a wire open it goes out at once (a pong, a welcome).
    pub fn push_event(&self, bytes: Bytes) -> bool {
        let mut inner = self.lock();
        let queued = inner.enqueue(bytes);
        if queued && inner.close.is_none() && inner.wire_open() {
            inner.write_out(true);
        } else if queued {
            drop(inner);
            self.ready.notify_one();
        }
        queued
    }

    /// Queues an event for the writer task to send, waking it: news for
    /// everyone between ticks (a join, a leave). Written by the writer, not
    /// here, so a burst of them (a room filling) goes out a batch per
    /// player, not a write per event per player from the room's task.
    pub fn push_event_to_writer(&self, bytes: Bytes) -> bool {
        let queued = self.queue_event(bytes);
        if queued {
            self.ready.notify_one();
        }
        queued
    }

    /// Queues an event without waking the writer: the tick pushes its news
    /// this way and its frame right after, so the writer takes (and sends)
    /// both in one write instead of two.
    pub fn queue_event(&self, bytes: Bytes) -> bool {
        self.lock().enqueue(bytes)
    }

    /// Asks the writer to send this close frame and stop. The first reason wins.
    pub fn close(&self, reason: CloseReason) {
        {
            let mut inner = self.lock();
            if inner.close.is_none() {
                inner.close = Some(reason);
            }
        }
        self.ready.notify_one();
    }

    pub fn is_closed(&self) -> bool {
        self.lock().close.is_some()
    }

    /// Whether a frame waits that the writer has not taken yet. Only the
    /// room pushes frames, so for the room a `false` stays true until its
    /// next push; a `true` may turn false at any moment (the writer took it).
    pub fn has_frame(&self) -> bool {
        self.frame_waiting.load(Ordering::Acquire)
    }

    /// Keeps what is pushed from the writer until [`Outbox::release`] (a
    /// close still goes at once): a new player's `Welcome` waits until the
    /// input log has its seat.
    pub fn hold(&self) {
        self.lock().held = true;
    }

    /// Lets the writer take what waits.
    pub fn release(&self) {
        self.lock().held = false;
        self.ready.notify_one();
    }

    /// Writes what is pushed straight to `wire` from now on (see [`Wire`]),
    /// until the guard drops: the connection's socket lives no longer than
    /// the connection.
    pub fn attach(self: &Arc<Self>, wire: Arc<Wire>) -> Attached {
        self.lock().wire = Some(wire);
        self.ready.notify_one();
        Attached(self.clone())
    }

    /// The writer's side with a wire attached: sees out what the socket did
    /// not take, then what was held or pushed meanwhile, until the outbox
    /// closes (its reason) or the wire breaks.
    pub async fn deliver(&self, wire: &Wire) -> Result<CloseReason, Broken> {
        loop {
            let notified = self.ready.notified();
            let backlogged = wire.backlogged();
            if let Some(close) = self.lock().close.clone() {
                return Ok(close);
            }
            if !wire.is_idle() {
                // A close meanwhile is seen at once; its frame then waits its turn.
                tokio::select! {
                    drained = wire.drain() => drained?,
                    () = notified => {}
                }
                continue;
            }
            {
                let mut inner = self.lock();
                if inner.close.is_none() && !inner.held && (!inner.events.is_empty() || inner.frame.is_some())
                {
                    self.frame_waiting.store(false, Ordering::Release);
                    if inner.write_out(false) == Sent::Broken {
                        return Err(Broken);
                    }
                    continue;
                }
            }
            tokio::select! {
                () = notified => {}
                () = backlogged => {}
            }
        }
    }

    /// Takes everything waiting (or the close), waiting until there is something.
    pub async fn next(&self) -> Batch {
        loop {
            // Register interest before looking, so a push in between still wakes us.
            let notified = self.ready.notified();
            {
                let mut inner = self.lock();
                if let Some(close) = inner.close.clone() {
                    return Batch { messages: Vec::new(), close: Some(close) };
                }
                if !inner.held && (!inner.events.is_empty() || inner.frame.is_some()) {
                    // The queue's memory leaves with the batch: a player at
                    // rest keeps none (events are rare next to frames).
                    let mut messages = Vec::from(std::mem::take(&mut inner.events));
                    messages.extend(inner.frame.take());
                    self.frame_waiting.store(false, Ordering::Release);
                    return Batch { messages, close: None };
                }
            }
            notified.await;
        }
    }

    /// Resolves once the outbox is closed.
    pub async fn closed(&self) -> CloseReason {
        loop {
            let notified = self.ready.notified();
            if let Some(close) = self.lock().close.clone() {
                // Pass the wake-up on: the writer may be waiting in `next` too.
                self.ready.notify_one();
                return close;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn newest_frame_replaces_an_untaken_one() {
        let outbox = Outbox::default();
        assert_eq!(outbox.push_frame(Bytes::from_static(b"f1")), FramePush::Fresh);
        assert_eq!(outbox.push_frame(Bytes::from_static(b"f2")), FramePush::Replaced);
        assert!(outbox.has_frame());
        let batch = outbox.next().await;
        assert_eq!(batch.messages, [Bytes::from_static(b"f2")], "should keep only the newest frame");
        assert!(!outbox.has_frame(), "the writer took it");
        assert_eq!(
            outbox.push_frame(Bytes::from_static(b"f3")),
            FramePush::Fresh,
            "taken frames are not replaced"
        );
    }

    #[tokio::test]
    async fn events_keep_their_order_and_come_before_the_frame() {
        let outbox = Outbox::default();
        outbox.push_frame(Bytes::from_static(b"frame"));
        assert!(outbox.push_event(Bytes::from_static(b"e1")));
        assert!(outbox.push_event(Bytes::from_static(b"e2")));
        let batch = outbox.next().await;
        assert_eq!(batch.messages, [&b"e1"[..], b"e2", b"frame"].map(Bytes::from_static));
    }

    #[test]
    fn a_full_event_queue_reports_a_stuck_client() {
        let outbox = Outbox::default();
        for _ in 0..MAX_QUEUED_EVENTS {
            assert!(outbox.push_event(Bytes::new()));
        }
        assert!(!outbox.push_event(Bytes::new()), "should refuse past the cap");
    }

    #[tokio::test]
    async fn close_wins_over_pending_messages_and_wakes_waiters() {
        let outbox = std::sync::Arc::new(Outbox::default());
        let waiter = tokio::spawn({
            let outbox = outbox.clone();
            async move { outbox.closed().await }
        });
        outbox.push_event(Bytes::from_static(b"e"));
        outbox.close(CloseReason::new(4004, "too slow"));
        outbox.close(CloseReason::new(1001, "later reasons lose"));
        let batch = outbox.next().await;
        assert!(batch.messages.is_empty());
        assert_eq!(batch.close, Some(CloseReason::new(4004, "too slow")));
        assert_eq!(waiter.await.expect("waiter task"), CloseReason::new(4004, "too slow"));
    }

    /// An outbox with a wire on one end of a loopback connection, and the
    /// raw peer on the other.
    async fn wired() -> (Arc<Outbox>, Arc<Wire>, tokio::net::TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let peer =
            tokio::net::TcpStream::connect(listener.local_addr().expect("bound")).await.expect("connects");
        let (server, _) = listener.accept().await.expect("accepts");
        let (_read, write) = server.into_split();
        let wire = Arc::new(Wire::new(write, crate::room::wire::SentCounters::default()));
        (Arc::new(Outbox::default()), wire, peer)
    }

    async fn read_exactly(peer: &mut tokio::net::TcpStream, n: usize) -> Vec<u8> {
        use tokio::io::AsyncReadExt;
        let mut bytes = vec![0; n];
        peer.read_exact(&mut bytes).await.expect("reads");
        bytes
    }

    #[tokio::test]
    async fn with_a_wire_the_push_itself_writes_news_then_frame_in_one_go() {
        let (outbox, wire, mut peer) = wired().await;
        let attached = outbox.attach(wire.clone());
        assert!(outbox.queue_event(Bytes::from_static(b"news")));
        assert_eq!(outbox.push_frame(Bytes::from_static(b"f1")), FramePush::Fresh);
        assert!(!outbox.has_frame(), "written, so taken: the next frame builds on it");
        // No writer task runs in this test: the push wrote it.
        assert_eq!(read_exactly(&mut peer, 6 + 4).await, b"\x82\x04news\x82\x02f1");
        assert!(outbox.push_event(Bytes::from_static(b"pong")));
        assert_eq!(read_exactly(&mut peer, 6).await, b"\x82\x04pong");
        drop(attached);
        assert_eq!(outbox.push_frame(Bytes::from_static(b"f2")), FramePush::Fresh);
        assert!(outbox.has_frame(), "detached: the frame waits for a writer");
    }

    #[tokio::test]
    async fn a_held_outbox_writes_nothing_until_released_and_then_in_order() {
        let (outbox, wire, mut peer) = wired().await;
        let _attached = outbox.attach(wire.clone());
        outbox.hold();
        assert!(outbox.push_event(Bytes::from_static(b"welcome")));
        assert_eq!(outbox.push_frame(Bytes::from_static(b"f1")), FramePush::Fresh);
        assert!(outbox.has_frame(), "held: nothing goes out");
        outbox.release();
        let writer = tokio::spawn({
            let (outbox, wire) = (outbox.clone(), wire.clone());
            async move { outbox.deliver(&wire).await }
        });
        assert_eq!(read_exactly(&mut peer, 9 + 4).await, b"\x82\x07welcome\x82\x02f1");
        outbox.close(CloseReason::new(1001, "bye"));
        assert_eq!(writer.await.expect("writer"), Ok(CloseReason::new(1001, "bye")));
    }

    #[tokio::test]
    async fn behind_a_backlog_only_the_newest_frame_goes_out_after_it() {
        let (outbox, wire, mut peer) = wired().await;
        let _attached = outbox.attach(wire.clone());
        // Fill the socket until a frame is left waiting on the wire.
        let big = Bytes::from(vec![1u8; 60_000]);
        let mut pushed = 0;
        while wire.is_idle() {
            assert_eq!(outbox.push_frame(big.clone()), FramePush::Fresh);
            pushed += 1;
            assert!(pushed < 1000, "a peer that reads nothing fills the socket");
        }
        assert_eq!(outbox.push_frame(Bytes::from_static(b"old")), FramePush::Fresh);
        assert_eq!(
            outbox.push_frame(Bytes::from_static(b"new")),
            FramePush::Replaced,
            "the stale one counts"
        );
        let writer = tokio::spawn({
            let (outbox, wire) = (outbox.clone(), wire.clone());
            async move { outbox.deliver(&wire).await }
        });
        let all = read_exactly(&mut peer, pushed * 60_004 + 5).await;
        assert_eq!(&all[all.len() - 5..], b"\x82\x03new", "the newest frame, after every byte before it");
        outbox.close(CloseReason::new(1001, "bye"));
        assert!(writer.await.expect("writer").is_ok());
    }
}
