//! The room's ends of its players' connections: for each connected player,
//! the outbox its writer drains and the channel its reader feeds inputs
//! into. The room task owns them next to its [`World`]; the world never
//! sees a channel.

use std::collections::BTreeMap;
use std::sync::Arc;

use arena_shared::codec::encode_server;
use arena_shared::protocol::{PlayerId, ServerMsg, close};
use bytes::Bytes;
use tokio::sync::mpsc;

use crate::interest::{ClientView, Scene};
use crate::metrics::Metrics;
use crate::outbox::{CloseReason, FramePush, Outbox};
use crate::world::{INPUT_QUEUE, QueuedInput, World};

struct Link {
    outbox: Arc<Outbox>,
    inputs: mpsc::Receiver<QueuedInput>,
    /// Consecutive ticks whose frame replaced one the writer had not taken.
    stale_ticks: u32,
    /// What this connection's client knows of the others.
    view: ClientView,
}

/// A new connection's ends: what its reader and writer hold.
#[derive(Debug)]
pub struct Ends {
    pub outbox: Arc<Outbox>,
    pub inputs: mpsc::Sender<QueuedInput>,
}

pub struct Links {
    links: BTreeMap<PlayerId, Link>,
    /// Ticks of stale frames before a client is too slow.
    slow_client_ticks: u32,
    metrics: Arc<Metrics>,
}

impl Links {
    pub fn new(slow_client_ticks: u32, metrics: Arc<Metrics>) -> Self {
        Links { links: BTreeMap::new(), slow_client_ticks, metrics }
    }

    /// Opens player `id`'s link; one it still had (the player resumed
    /// elsewhere) is closed with 4008.
    pub fn open(&mut self, id: PlayerId) -> Ends {
        let outbox = Arc::new(Outbox::default());
        let (tx, rx) = mpsc::channel(INPUT_QUEUE);
        let link = Link { outbox: outbox.clone(), inputs: rx, stale_ticks: 0, view: ClientView::default() };
        if let Some(old) = self.links.insert(id, link) {
            old.outbox
                .close(CloseReason::new(close::RESUMED_ELSEWHERE, "this player connected again elsewhere"));
        }
        Ends { outbox, inputs: tx }
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
    }

    /// Queues one message for player `id`.
    pub fn send(&self, id: PlayerId, bytes: Bytes) -> bool {
        self.links.get(&id).is_none_or(|link| link.outbox.push_event(bytes))
    }

    /// Queues one message for everyone; returns the players whose event
    /// queue is full (stuck: the room drops them). `wake`: whether the
    /// writers should send it now, or with the frame that follows.
    pub fn broadcast(&self, bytes: &Bytes, wake: bool) -> Vec<PlayerId> {
        let push = |outbox: &Outbox| {
            if wake { outbox.push_event(bytes.clone()) } else { outbox.queue_event(bytes.clone()) }
        };
        self.links.iter().filter(|(_, link)| !push(&link.outbox)).map(|(&id, _)| id).collect()
    }

    /// Moves every connection's waiting inputs into the world, as far as
    /// each player's queue has room (the rest wait in the channel).
    pub fn feed(&mut self, world: &mut World) {
        for (&id, link) in &mut self.links {
            while world.has_room_for_input(id) {
                match link.inputs.try_recv() {
                    Ok(input) => {
                        world.queue_input(id, input);
                    }
                    Err(_) => break,
                }
            }
        }
    }

    /// Hands every connected player its frame (see [`crate::interest`]);
    /// returns the players that left frames unread for too long.
    pub fn push_frames(&mut self, tick: u32, acks: &[(PlayerId, u32)], scene: &Scene) -> Vec<PlayerId> {
        let mut too_slow = Vec::new();
        for &(id, ack) in acks {
            let Some(link) = self.links.get_mut(&id) else { continue };
            if link.outbox.take_resync() {
                link.view.resync();
            }
            let taken = !link.outbox.has_frame();
            let Some(frame) = link.view.frame(scene, id, (tick, ack), taken) else { continue };
            let frame = Bytes::from(encode_server(&ServerMsg::Frame(frame)));
            match link.outbox.push_frame(frame) {
                FramePush::Fresh => link.stale_ticks = 0,
                FramePush::Replaced => {
                    Metrics::inc(&self.metrics.frames_dropped_total);
                    link.stale_ticks += 1;
                    if link.stale_ticks >= self.slow_client_ticks {
                        too_slow.push(id);
                    }
                }
            }
        }
        too_slow
    }
}
