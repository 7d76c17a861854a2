//! The room's ends of its players' connections: for each connected player,
//! the outbox its writer drains and the one bounded inbound queue its
//! reader feeds (inputs and requests for a full view). The room task owns
//! them next to its world, which takes inputs through [`InputSource`] and
//! never sees a channel. A link's connection ending is a [`Departure`].

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use arena_shared::codec::encode_server;
use arena_shared::protocol::{HostCommand, PlayerId, ServerMsg, close};
use bytes::Bytes;

use crate::limits::Slot;
use crate::room::input::{InputSource, QueuedInput};
use crate::room::interest::{ClientView, FrameScratch, Scene};
use crate::room::outbox::{CloseReason, FramePush, Outbox};

/// A seat's connection ended.
#[derive(Debug)]
pub struct Departure {
    pub id: PlayerId,
    /// The connection's epoch: a replaced connection's end is ignored.
    pub epoch: u32,
    /// Without a goodbye (the socket dropped, or the task died): the seat is
    /// held for a resume. A goodbye or a kick frees it at once.
    pub abrupt: bool,
    /// The connection's address's place under `--max-held-seats-per-ip`,
    /// kept by the room for as long as it holds the seat.
    pub hold: Option<Slot>,
    /// A watcher left (`id` is its watcher id): there is no seat.
    pub watcher: bool,
}

/// What a connection's reader may have waiting for the room before more is
/// dropped: half a second of inputs at 60 Hz.
pub const INBOUND_QUEUE: usize = 32;

/// What a client asks of the room, in the order it asked.
#[derive(Debug, Clone, Copy)]
pub enum Inbound {
    /// One input sample, numbered by the client.
    Input(QueuedInput),
    /// The client lacks a baseline: send it a full view next.
    Resync,
    /// A watcher's camera follows this player (0: the leader).
    Follow(PlayerId),
    /// The player runs its room (if it hosts it).
    Host(HostCommand),
}

/// A connection's bounded queue of what its client asks of the room: its
/// reader pushes, the room's tick takes. Neither end ever waits on it, so a
/// lock around a small deque is all it needs (tokio's channel, with the
/// wake-ups nobody here waits for, was 1.1 KB per connection).
#[derive(Debug, Default)]
pub struct InboundQueue {
    inner: Mutex<InboundInner>,
}

#[derive(Debug, Default)]
struct InboundInner {
    queue: VecDeque<Inbound>,
    /// The room let go of this player: nothing more is taken.
    closed: bool,
}

/// Why [`InboundQueue::push`] did not queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotQueued {
    /// [`INBOUND_QUEUE`] are waiting already: this one is dropped.
    Full,
    /// The room let go of this player.
    Closed,
}

impl InboundQueue {
    pub fn push(&self, inbound: Inbound) -> Result<(), NotQueued> {
        let mut inner = self.lock();
        if inner.closed {
            return Err(NotQueued::Closed);
        }
        if inner.queue.len() >= INBOUND_QUEUE {
            return Err(NotQueued::Full);
        }
        inner.queue.push_back(inbound);
        Ok(())
    }

    fn pop(&self) -> Option<Inbound> {
        self.lock().queue.pop_front()
    }

    fn close(&self) {
        let mut inner = self.lock();
        inner.closed = true;
        inner.queue = VecDeque::new();
    }

    /// Nothing panics while holding the lock; were it poisoned, the queue
    /// is still a queue.
    fn lock(&self) -> std::sync::MutexGuard<'_, InboundInner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

struct Link {
    outbox: Arc<Outbox>,
    inbound: Arc<InboundQueue>,
    /// Consecutive ticks whose frame replaced one the writer had not taken.
    stale_ticks: u32,
    /// What this connection's client knows of the others.
    view: ClientView,
}

/// The reader finds the queue closed once the room let go of the link.
impl Drop for Link {
    fn drop(&mut self) {
        self.inbound.close();
    }
}

/// A new connection's ends: what its reader and writer hold.
#[derive(Debug)]
pub struct LinkEnds {
    pub outbox: Arc<Outbox>,
    pub inbound: Arc<InboundQueue>,
}

/// A watcher's link: no seat in the world; its frames are the view of the
/// player it follows.
struct Watcher {
    link: Link,
    /// Who it asked to follow (0: whoever leads).
    follow: PlayerId,
}

pub struct Links {
    links: BTreeMap<PlayerId, Link>,
    /// Watchers, by an id of their own (not a player's).
    watchers: BTreeMap<PlayerId, Watcher>,
    /// What every link's frame is built in, one after the other.
    scratch: FrameScratch,
    /// Ticks of stale frames before a client is too slow.
    slow_client_ticks: u32,
    /// Host commands met among the inputs, in order, for the room.
    host_commands: Vec<(PlayerId, HostCommand)>,
}

/// What one round of frames did.
#[derive(Debug, Default)]
pub struct Pushed {
    /// Frames that replaced one the writer had not taken.
    pub replaced: u64,
    /// Players that left frames unread for too long.
    pub too_slow: Vec<PlayerId>,
    /// Watchers that did (already closed).
    pub watchers_too_slow: u64,
}

impl Links {
    pub fn new(slow_client_ticks: u32) -> Self {
        Links {
            links: BTreeMap::new(),
            watchers: BTreeMap::new(),
            scratch: FrameScratch::default(),
            slow_client_ticks,
            host_commands: Vec::new(),
        }
    }

    /// Opens player `id`'s link; one it still had (the player resumed
    /// elsewhere) is closed with 4008.
    pub fn open(&mut self, id: PlayerId) -> LinkEnds {
        let (link, ends) = Link::new();
        if let Some(old) = self.links.insert(id, link) {
            old.outbox
                .close(CloseReason::new(close::RESUMED_ELSEWHERE, "this player connected again elsewhere"));
        }
        ends
    }

    /// Opens a watcher's link under a watcher id not in use (watchers are
    /// few: at most `--max-watchers`, far below the ids there are).
    pub fn open_watcher(&mut self) -> (PlayerId, LinkEnds) {
        let id = (1..=PlayerId::MAX).find(|id| !self.watchers.contains_key(id)).unwrap_or(PlayerId::MAX);
        let (link, ends) = Link::new();
        self.watchers.insert(id, Watcher { link, follow: 0 });
        (id, ends)
    }

    /// Closes and forgets watcher `id`'s link; `false` if it had none.
    pub fn close_watcher(&mut self, id: PlayerId, reason: CloseReason) -> bool {
        let Some(watcher) = self.watchers.remove(&id) else { return false };
        watcher.link.outbox.close(reason);
        true
    }

    /// The host commands the last tick met, in the order they came.
    pub fn take_host_commands(&mut self) -> Vec<(PlayerId, HostCommand)> {
        std::mem::take(&mut self.host_commands)
    }

    /// How many watch.
    pub fn watchers(&self) -> usize {
        self.watchers.len()
    }

    /// Closes and forgets player `id`'s link, if it has one.
    pub fn close(&mut self, id: PlayerId, reason: CloseReason) {
        if let Some(link) = self.links.remove(&id) {
            link.outbox.close(reason);
        }
    }

    /// Closes every link; used when the room stops.
    pub fn close_all(&mut self, reason: &CloseReason) {
        for (_, link) in std::mem::take(&mut self.links) {
            link.outbox.close(reason.clone());
        }
        for (_, watcher) in std::mem::take(&mut self.watchers) {
            watcher.link.outbox.close(reason.clone());
        }
    }

    /// Queues one message for player `id`.
    pub fn send(&self, id: PlayerId, bytes: Bytes) -> bool {
        self.links.get(&id).is_none_or(|link| link.outbox.push_event(bytes))
    }

    /// Queues one message for everyone, watchers too; returns the players
    /// whose event queue is full (stuck: the room drops them; a stuck
    /// watcher is closed here). `wake`: whether the writers should send it
    /// now, or with the frame that follows.
    pub fn broadcast(&mut self, bytes: &Bytes, wake: bool) -> Vec<PlayerId> {
        let push = |outbox: &Outbox| {
            if wake { outbox.push_event_to_writer(bytes.clone()) } else { outbox.queue_event(bytes.clone()) }
        };
        self.watchers.retain(|_, watcher| {
            let pushed = push(&watcher.link.outbox);
            if !pushed {
                watcher.link.outbox.close(too_slow());
            }
            pushed
        });
        self.links.iter().filter(|(_, link)| !push(&link.outbox)).map(|(&id, _)| id).collect()
    }

    /// Hands every connected player its frame (see [`crate::room::interest`]).
    pub fn push_frames(&mut self, tick: u32, acks: &[(PlayerId, u32)], scene: &Scene) -> Pushed {
        let mut pushed = Pushed::default();
        for &(id, ack) in acks {
            let Some(link) = self.links.get_mut(&id) else { continue };
            // Lock-free: a frame taken meanwhile only makes this baseline older.
            let taken = !link.outbox.has_frame();
            let Some(frame) = link.view.frame(&mut self.scratch, scene, id, (tick, ack), taken) else {
                continue;
            };
            if link.push(frame, &mut pushed, self.slow_client_ticks) {
                pushed.too_slow.push(id);
            }
            link.settle_if_written(&mut self.scratch);
        }
        pushed
    }

    /// Hands every watcher its frame: the view of the player it follows if
    /// that one is in the scene, else of `leader`. Watchers that stopped
    /// reading are closed.
    pub fn push_watcher_frames(&mut self, tick: u32, scene: &Scene, leader: Option<PlayerId>) -> Pushed {
        let mut pushed = Pushed::default();
        let slow_client_ticks = self.slow_client_ticks;
        self.watchers.retain(|_, watcher| {
            while let Some(inbound) = watcher.link.inbound.pop() {
                match inbound {
                    Inbound::Follow(id) => watcher.follow = id,
                    Inbound::Resync => watcher.link.view.resync(),
                    // The reader lets no input or command of a watcher through.
                    Inbound::Input(_) | Inbound::Host(_) => {}
                }
            }
            let followed = Some(watcher.follow).filter(|&id| scene.contains(id)).or(leader);
            let link = &mut watcher.link;
            let taken = !link.outbox.has_frame();
            let Some(mut frame) =
                followed.and_then(|id| link.view.frame(&mut self.scratch, scene, id, (tick, 0), taken))
            else {
                return true;
            };
            // A watcher predicts nobody.
            frame.near.clear();
            if link.push(frame, &mut pushed, slow_client_ticks) {
                link.outbox.close(too_slow());
                pushed.watchers_too_slow += 1;
                return false;
            }
            link.settle_if_written(&mut self.scratch);
            true
        });
        pushed
    }
}

fn too_slow() -> CloseReason {
    CloseReason::new(close::TOO_SLOW, "too slow: frames were not being read")
}

impl Link {
    fn new() -> (Link, LinkEnds) {
        let outbox = Arc::new(Outbox::default());
        let inbound = Arc::new(InboundQueue::default());
        let link = Link {
            outbox: outbox.clone(),
            inbound: inbound.clone(),
            stale_ticks: 0,
            view: ClientView::default(),
        };
        (link, LinkEnds { outbox, inbound })
    }

    /// A frame the tick wrote to the socket itself (as it does on plain TCP
    /// when the socket takes it) is the client's baseline at once: the view
    /// is settled now rather than at the next frame, so the client keeps one
    /// view between ticks instead of two, and the older one's memory serves
    /// the next player's frame (in a room of 500, 1.7 MB less to read back
    /// from beyond the core's cache every tick).
    fn settle_if_written(&mut self, scratch: &mut FrameScratch) {
        if !self.outbox.has_frame() {
            self.view.settle(scratch);
        }
    }

    /// Queues `frame`, replacing one the writer has not taken; `true` when
    /// this link has now left frames unread for `slow_client_ticks`.
    fn push(
        &mut self,
        frame: arena_shared::protocol::Frame,
        pushed: &mut Pushed,
        slow_client_ticks: u32,
    ) -> bool {
        let frame = Bytes::from(encode_server(&ServerMsg::Frame(frame)));
        match self.outbox.push_frame(frame) {
            FramePush::Fresh => {
                self.stale_ticks = 0;
                false
            }
            FramePush::Replaced => {
                pushed.replaced += 1;
                self.stale_ticks += 1;
                self.stale_ticks >= slow_client_ticks
            }
        }
    }
}

/// The world takes each player's inputs straight from its inbound queue; a
/// `Resync` met on the way marks that player's next frame as a full view.
impl InputSource for Links {
    fn next_input(&mut self, id: PlayerId) -> Option<QueuedInput> {
        let link = self.links.get_mut(&id)?;
        loop {
            match link.inbound.pop()? {
                Inbound::Input(input) => return Some(input),
                Inbound::Resync => link.view.resync(),
                Inbound::Host(command) => self.host_commands.push((id, command)),
                // The reader lets no `Follow` of a player through.
                Inbound::Follow(_) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arena_shared::protocol::{Life, PlayerState};
    use arena_shared::sim::{Body, Vec2q};

    use super::*;
    use crate::room::wire::{SentCounters, Wire};

    #[tokio::test]
    async fn a_frame_the_tick_wrote_is_the_baseline_at_once_and_one_left_waiting_is_not() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let _peer =
            tokio::net::TcpStream::connect(listener.local_addr().expect("bound")).await.expect("connects");
        let (server, _) = listener.accept().await.expect("accepts");
        let (_read, write) = server.into_split();
        let mut links = Links::new(100);
        let wired = links.open(1);
        let _attached = wired.outbox.attach(Arc::new(Wire::new(write, SentCounters::default())));
        let _unwired = links.open(2);
        let states = (1..=3u16)
            .map(|id| PlayerState {
                id,
                body: Body::at(Vec2q::from_units(i32::from(id) * 100, 0)),
                life: Life::Alive,
            })
            .collect();
        let scene = Scene::new(states, Vec::new());
        links.push_frames(1, &[(1, 0), (2, 0)], &scene);
        let kept = |links: &Links, id: PlayerId| links.links[&id].view.views_kept();
        assert!(!wired.outbox.has_frame(), "the tick wrote the wired player's frame");
        assert_eq!(kept(&links, 1), 1, "written: its view is the baseline, the older one is let go");
        assert_eq!(kept(&links, 2), 2, "waiting for a writer: the baseline and the waiting view");
    }
}
