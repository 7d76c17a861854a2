//! A leased room's ownership as a state machine with no I/O, in the
//! manner of the client's `ClientSession`: [`Ownership::handle`] takes an
//! [`Event`] (a timer tick, the answer to a call it asked for, a drain
//! order, the room's end) at a given instant and returns the [`Action`]s
//! to carry out; the steward (`cluster::steward`) carries them out against
//! Redis and the room and feeds the answers back. Every decision about a
//! room's lease is here, and is tested here on made-up instants.
//!
//! The promises it keeps:
//! - the room runs (its fence holds) only until a tenth short of the lease
//!   that was last renewed, counted from when the renewal was sent; a room
//!   whose fence does not hold admits nobody and tells nobody anything
//!   (the room task's side of it);
//! - one call at a time: an event that answers a call is the only way to
//!   the next call, and a tick while a call is out asks nothing;
//! - every path ends in a known [`End`]: the players moved to the room's
//!   new node, or the room closed (saved for the next owner, or forgotten
//!   when it emptied). A room whose lease went to a node this one does not
//!   know, or whose hand-over failed, does not wait for ever.

use std::time::{Duration, Instant};

use crate::cluster::lease::Lease;

/// How long a room whose lease another node holds waits to learn that
/// node's address (a node that just started is in the registry within a
/// heartbeat) before it closes and lets its players find the room again.
pub const UNKNOWN_OWNER_WAIT: Duration = Duration::from_secs(3);

/// Another node, as the steward resolves it from the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub id: String,
    pub url: String,
}

/// What happened: a tick of the steward's timer, or the answer to the
/// last [`Action`] that asked Redis something.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The timer: time to renew or to save, if either is due.
    Tick,
    /// [`Action::Renew`] went through; it was sent at `sent`.
    Renewed { sent: Instant },
    /// [`Action::Renew`] found the lease held by somebody else, or by
    /// nobody.
    NotRenewed,
    /// Who holds the lease now ([`Action::AskOwner`]): `None` if nobody;
    /// `url` is `None` when the registry does not know that node.
    Owner(Option<(Lease, Option<String>)>),
    /// [`Action::Reclaim`] took the lease back under `epoch`, sent at `sent`.
    Reclaimed { epoch: u64, sent: Instant },
    /// [`Action::Reclaim`] found the lease taken in between.
    ReclaimRefused,
    /// [`Action::Transfer`] gave the lease to the target under `epoch`.
    HandedOver { epoch: u64 },
    /// [`Action::Transfer`] found the lease no longer held as ours.
    NotHandedOver,
    /// [`Action::SaveAndRelease`] saved the room and let its lease go.
    Released,
    /// The call under way did not get an answer (Redis is away or slow).
    Failed,
    /// The node drains: the room goes to `to`, or, with no other node,
    /// is saved for whichever node starts next.
    Drain { to: Option<Node> },
    /// The room task ended by itself (it emptied, or an operator closed it).
    RoomEnded,
}

/// What the steward must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Extend the lease (answer: `Renewed`, `NotRenewed` or `Failed`).
    Renew(Lease),
    /// Let the room run until this instant.
    Fence(Instant),
    /// Stop the room at once; a later [`Action::Fence`] may start it again.
    ShutFence,
    /// Stop the room for good: no renewal under way may start it again.
    RetireFence,
    /// List the public room for quick-joins elsewhere, under `lease`.
    List(Lease),
    /// Save the room's state if `lease` still holds it (no answer awaited:
    /// a failed save is retried at the next checkpoint).
    Checkpoint(Lease),
    /// Ask who holds the lease (answer: `Owner` or `Failed`).
    AskOwner,
    /// Take the free lease again with an epoch above `floor` (answer:
    /// `Reclaimed`, `ReclaimRefused` or `Failed`).
    Reclaim { floor: u64 },
    /// Hand the lease and the room's state to `to` in one step (answer:
    /// `HandedOver`, `NotHandedOver` or `Failed`).
    Transfer { lease: Lease, to: Node },
    /// Save the room's state and give the lease back (answer: `Released`,
    /// `NotHandedOver` or `Failed`).
    SaveAndRelease(Lease),
    /// Send every player and watcher to this node's address.
    MovePlayers(String),
    /// Close every connection, saying why; they come back through any node.
    CloseRoom(Closing),
    /// The room emptied: delete its state, listing and lease if `lease`
    /// still holds them (no answer awaited).
    Forget(Lease),
}

/// Why the room closes its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closing {
    /// Saved for the next node (no other node took it in a drain).
    Saved,
    /// Where the room is now cannot be said from here: the players ask a
    /// node again and find it (restored from its last save by whoever
    /// holds the lease).
    Elsewhere,
}

/// How a room's ownership ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// Its players were sent to the node that holds it now.
    Moved { url: String },
    /// It closed its connections: see [`Closing`].
    Closed(Closing),
    /// It emptied here and was forgotten.
    Forgotten,
}

/// Where the machine is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    /// This node holds the lease (while the fence holds, the room runs).
    Held,
    /// A renewal found the lease gone: finding out who has it.
    Lost,
    /// Draining to `to` (or saving for the next node): the room is retired.
    Leaving {
        to: Option<Node>,
    },
    /// A hand-over failed: finding out where the room is, to end there.
    Stranded {
        to: Option<Node>,
    },
    Ended(End),
}

/// The call whose answer is awaited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    Renew,
    AskOwner,
    Reclaim,
    HandOver,
}

/// One leased room's ownership.
#[derive(Debug, Clone)]
pub struct Ownership {
    node: String,
    lease: Lease,
    ttl: Duration,
    checkpoint_every: Duration,
    phase: Phase,
    /// When the last renewal that went through was sent.
    renewed: Instant,
    /// Until when the room may run.
    valid_until: Instant,
    /// When the last checkpoint was asked for (none yet: one is due).
    saved: Option<Instant>,
    /// The call under way, if any.
    waiting: Option<Call>,
    /// Since when the lease's holder is a node the registry does not know.
    unknown_owner_since: Option<Instant>,
    /// Whether the last call got an answer (for the steward's log).
    healthy: bool,
}

impl Ownership {
    /// `lease`, which this node (`node`) took with a call sent at `sent`,
    /// for `ttl`; checkpoints every `checkpoint_every`.
    pub fn new(node: String, lease: Lease, sent: Instant, ttl: Duration, checkpoint_every: Duration) -> Self {
        Ownership {
            node,
            lease,
            ttl,
            checkpoint_every,
            phase: Phase::Held,
            renewed: sent,
            valid_until: valid_until(sent, ttl),
            saved: None,
            waiting: None,
            unknown_owner_since: None,
            healthy: true,
        }
    }

    /// The lease as this node holds it (or last held it).
    pub fn lease(&self) -> &Lease {
        &self.lease
    }

    /// Until when the room may run.
    pub fn valid_until(&self) -> Instant {
        self.valid_until
    }

    /// How it ended, once it has.
    pub fn end(&self) -> Option<&End> {
        match &self.phase {
            Phase::Ended(end) => Some(end),
            _ => None,
        }
    }

    /// Whether the last call got an answer.
    pub fn healthy(&self) -> bool {
        self.healthy
    }

    /// Takes `event`, which happened at `now`; returns what to do, in order.
    pub fn handle(&mut self, event: Event, now: Instant) -> Vec<Action> {
        if matches!(self.phase, Phase::Ended(_)) {
            return Vec::new();
        }
        let answered = self.answered(&event);
        if answered.is_none() && !matches!(event, Event::Tick | Event::Drain { .. } | Event::RoomEnded) {
            // An answer to nothing asked (a late one): nothing to do.
            return Vec::new();
        }
        match event {
            Event::Tick => self.tick(now),
            Event::Drain { to } => self.drain(to),
            Event::RoomEnded => self.room_ended(),
            Event::Failed => self.failed(answered),
            Event::Renewed { sent } => self.renewed(sent, now),
            Event::NotRenewed => {
                self.phase = Phase::Lost;
                self.call(Call::AskOwner, vec![Action::ShutFence, Action::AskOwner])
            }
            Event::Owner(owner) => self.owner(owner, now),
            Event::Reclaimed { epoch, sent } => self.reclaimed(epoch, sent),
            // Somebody took it in between: ask who at the next tick.
            Event::ReclaimRefused => Vec::new(),
            Event::HandedOver { .. } => match &self.phase {
                Phase::Leaving { to: Some(to) } => self.finish(End::Moved { url: to.url.clone() }),
                // A transfer is only asked for with a target.
                _ => self.finish(End::Closed(Closing::Elsewhere)),
            },
            Event::Released => self.finish(End::Closed(Closing::Saved)),
            Event::NotHandedOver => self.strand(),
        }
    }

    /// Which call `event` answers, if it answers the one under way (and
    /// clears it).
    fn answered(&mut self, event: &Event) -> Option<Call> {
        let call = match event {
            Event::Renewed { .. } | Event::NotRenewed => Call::Renew,
            Event::Owner(_) => Call::AskOwner,
            Event::Reclaimed { .. } | Event::ReclaimRefused => Call::Reclaim,
            Event::HandedOver { .. } | Event::NotHandedOver | Event::Released => Call::HandOver,
            Event::Failed => return self.waiting.take(),
            Event::Tick | Event::Drain { .. } | Event::RoomEnded => return None,
        };
        if self.waiting != Some(call) {
            return None;
        }
        self.healthy = true;
        self.waiting.take()
    }

    fn call(&mut self, call: Call, actions: Vec<Action>) -> Vec<Action> {
        self.waiting = Some(call);
        actions
    }

    fn finish(&mut self, end: End) -> Vec<Action> {
        let action = match &end {
            End::Moved { url } => Action::MovePlayers(url.clone()),
            End::Closed(closing) => Action::CloseRoom(*closing),
            End::Forgotten => Action::Forget(self.lease.clone()),
        };
        self.phase = Phase::Ended(end);
        self.waiting = None;
        vec![action]
    }

    fn tick(&mut self, now: Instant) -> Vec<Action> {
        if self.waiting.is_some() {
            return Vec::new();
        }
        match &self.phase {
            Phase::Held => {
                // A quarter, not a third: a tick a little early must not skip a renewal.
                let due = now.saturating_duration_since(self.renewed) >= self.ttl / 4;
                if due || now >= self.valid_until {
                    return self.call(Call::Renew, vec![Action::Renew(self.lease.clone())]);
                }
                self.checkpoint_if_due(now).into_iter().collect()
            }
            Phase::Lost | Phase::Stranded { .. } => self.call(Call::AskOwner, vec![Action::AskOwner]),
            // The hand-over's answer is awaited (`waiting` is set).
            Phase::Leaving { .. } | Phase::Ended(_) => Vec::new(),
        }
    }

    /// A checkpoint, if one is due and the room may run (a saved state is
    /// never one that another node could have overtaken).
    fn checkpoint_if_due(&mut self, now: Instant) -> Option<Action> {
        let due =
            self.saved.is_none_or(|saved| now.saturating_duration_since(saved) >= self.checkpoint_every);
        if !due || now >= self.valid_until {
            return None;
        }
        self.saved = Some(now);
        Some(Action::Checkpoint(self.lease.clone()))
    }

    fn renewed(&mut self, sent: Instant, now: Instant) -> Vec<Action> {
        self.renewed = sent;
        self.valid_until = valid_until(sent, self.ttl);
        let mut actions = vec![Action::Fence(self.valid_until), Action::List(self.lease.clone())];
        actions.extend(self.checkpoint_if_due(now));
        actions
    }

    fn failed(&mut self, call: Option<Call>) -> Vec<Action> {
        self.healthy = false;
        match (call, &self.phase) {
            // A transfer or a save whose answer was lost: where did the lease go?
            (Some(Call::HandOver), _) => self.strand(),
            // Stranded and Redis does not answer: the room cannot be
            // placed from here; its players find it through another node.
            (_, Phase::Stranded { .. }) => self.finish(End::Closed(Closing::Elsewhere)),
            // Renewals and questions are asked again at the next tick; the
            // fence runs out by itself meanwhile.
            _ => Vec::new(),
        }
    }

    fn owner(&mut self, owner: Option<(Lease, Option<String>)>, now: Instant) -> Vec<Action> {
        let stranded = match &self.phase {
            Phase::Stranded { to } => Some(to.clone()),
            _ => None,
        };
        match owner {
            Some((lease, _)) if lease == self.lease => match stranded {
                // The transfer never happened: save it for whoever comes next.
                Some(_) => self.call(Call::HandOver, vec![Action::SaveAndRelease(self.lease.clone())]),
                // Ours after all (the renewal raced its own expiry): renew at the next tick.
                None => {
                    self.phase = Phase::Held;
                    Vec::new()
                }
            },
            Some((lease, _)) if lease.node == self.node => {
                // This node holds it under another epoch: only another
                // room of this node could, and this one must give way.
                self.finish(End::Closed(Closing::Elsewhere))
            }
            Some((_, Some(url))) => self.finish(End::Moved { url }),
            Some((_, None)) => {
                let since = *self.unknown_owner_since.get_or_insert(now);
                if stranded.is_some() || now.saturating_duration_since(since) >= UNKNOWN_OWNER_WAIT {
                    return self.finish(End::Closed(Closing::Elsewhere));
                }
                Vec::new()
            }
            None if stranded.is_some() => self.finish(End::Closed(Closing::Elsewhere)),
            None => self.call(Call::Reclaim, vec![Action::Reclaim { floor: self.lease.epoch }]),
        }
    }

    fn reclaimed(&mut self, epoch: u64, sent: Instant) -> Vec<Action> {
        self.lease = Lease { epoch, node: self.node.clone() };
        self.phase = Phase::Held;
        self.unknown_owner_since = None;
        self.renewed = sent;
        self.valid_until = valid_until(sent, self.ttl);
        // Saved at once: Redis may have lost the last save.
        self.saved = Some(sent);
        vec![
            Action::Fence(self.valid_until),
            Action::Checkpoint(self.lease.clone()),
            Action::List(self.lease.clone()),
        ]
    }

    fn drain(&mut self, to: Option<Node>) -> Vec<Action> {
        let lease = self.lease.clone();
        match &self.phase {
            Phase::Held | Phase::Lost => {}
            // Already leaving or ended: one drain is enough.
            _ => return Vec::new(),
        }
        self.phase = Phase::Leaving { to: to.clone() };
        let hand_over = match to {
            Some(to) => Action::Transfer { lease, to },
            None => Action::SaveAndRelease(lease),
        };
        // Whatever was under way, its answer no longer matters.
        self.call(Call::HandOver, vec![Action::RetireFence, hand_over])
    }

    /// A hand-over did not go through: find out where the room is.
    fn strand(&mut self) -> Vec<Action> {
        let to = match &self.phase {
            Phase::Leaving { to } | Phase::Stranded { to } => to.clone(),
            _ => None,
        };
        if matches!(self.phase, Phase::Stranded { .. }) {
            // A second failure: end it.
            return self.finish(End::Closed(Closing::Elsewhere));
        }
        self.phase = Phase::Stranded { to };
        self.call(Call::AskOwner, vec![Action::AskOwner])
    }

    fn room_ended(&mut self) -> Vec<Action> {
        match self.phase {
            // It emptied here: nobody needs its state.
            Phase::Held | Phase::Lost => self.finish(End::Forgotten),
            // Its state goes on elsewhere; the hand-over's answer ends it.
            _ => Vec::new(),
        }
    }
}

/// Until when a lease renewed at `sent` for `ttl` covers the room: a tenth
/// short of Redis's own expiry, which counts from when Redis got the call.
pub fn valid_until(sent: Instant, ttl: Duration) -> Instant {
    sent + ttl - ttl / 10
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(3);
    const CHECKPOINT: Duration = Duration::from_secs(2);

    fn ms(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    fn ours(epoch: u64) -> Lease {
        Lease { epoch, node: "a".into() }
    }

    fn theirs(epoch: u64) -> Lease {
        Lease { epoch, node: "b".into() }
    }

    fn node_b() -> Node {
        Node { id: "b".into(), url: "ws://b/ws".into() }
    }

    /// A room leased at `t0` under epoch 1, its first checkpoint taken.
    fn held(t0: Instant) -> Ownership {
        let mut own = Ownership::new("a".into(), ours(1), t0, TTL, CHECKPOINT);
        assert_eq!(
            own.handle(Event::Tick, t0),
            [Action::Checkpoint(ours(1))],
            "the first save is due at once"
        );
        own
    }

    #[test]
    fn a_held_lease_is_renewed_each_quarter_and_the_fence_follows_the_renewal_sent() {
        let t0 = Instant::now();
        let mut own = held(t0);
        assert_eq!(own.valid_until(), ms(t0, 2_700), "a tenth short of the lease");
        assert_eq!(own.handle(Event::Tick, ms(t0, 500)), [], "nothing due yet");
        assert_eq!(own.handle(Event::Tick, ms(t0, 750)), [Action::Renew(ours(1))]);
        assert_eq!(own.handle(Event::Tick, ms(t0, 800)), [], "one call at a time");
        let acts = own.handle(Event::Renewed { sent: ms(t0, 750) }, ms(t0, 900));
        assert_eq!(acts, [Action::Fence(ms(t0, 3_450)), Action::List(ours(1))], "from when it was sent");
        assert_eq!(own.handle(Event::Tick, ms(t0, 1_500)), [Action::Renew(ours(1))]);
        let acts = own.handle(Event::Renewed { sent: ms(t0, 1_500) }, ms(t0, 2_100));
        assert_eq!(acts, [Action::Fence(ms(t0, 4_200)), Action::List(ours(1)), Action::Checkpoint(ours(1))]);
        assert_eq!(own.end(), None);
    }

    #[test]
    fn a_room_past_its_fence_saves_nothing_and_keeps_asking_for_its_lease() {
        let t0 = Instant::now();
        let mut own = held(t0);
        assert_eq!(own.handle(Event::Tick, ms(t0, 750)), [Action::Renew(ours(1))]);
        assert_eq!(own.handle(Event::Failed, ms(t0, 1_750)), []);
        assert!(!own.healthy());
        // Redis is away past the fence and the checkpoint: renew, never save.
        for at in [2_000, 2_700, 3_000, 6_000] {
            assert_eq!(own.handle(Event::Tick, ms(t0, at)), [Action::Renew(ours(1))], "at {at} ms");
            assert_eq!(own.handle(Event::Failed, ms(t0, at + 100)), []);
        }
        // Back, and the lease still ours: the room runs on and saves.
        assert_eq!(own.handle(Event::Tick, ms(t0, 7_000)), [Action::Renew(ours(1))]);
        let acts = own.handle(Event::Renewed { sent: ms(t0, 7_000) }, ms(t0, 7_010));
        assert_eq!(acts, [Action::Fence(ms(t0, 9_700)), Action::List(ours(1)), Action::Checkpoint(ours(1))]);
        assert!(own.healthy());
    }

    #[test]
    fn a_lease_lost_to_a_known_node_moves_the_players_there_and_forgets_nothing() {
        let t0 = Instant::now();
        let mut own = held(t0);
        own.handle(Event::Tick, ms(t0, 750));
        assert_eq!(own.handle(Event::NotRenewed, ms(t0, 760)), [Action::ShutFence, Action::AskOwner]);
        let acts = own.handle(Event::Owner(Some((theirs(2), Some("ws://b/ws".into())))), ms(t0, 770));
        assert_eq!(acts, [Action::MovePlayers("ws://b/ws".into())]);
        assert_eq!(own.end(), Some(&End::Moved { url: "ws://b/ws".into() }));
        assert_eq!(own.handle(Event::RoomEnded, ms(t0, 780)), [], "its state is the new node's now");
        assert_eq!(own.handle(Event::Tick, ms(t0, 5_000)), []);
    }

    #[test]
    fn a_lease_lost_to_a_node_nobody_knows_closes_the_room_instead_of_freezing_it() {
        let t0 = Instant::now();
        let mut own = held(t0);
        own.handle(Event::Tick, ms(t0, 750));
        own.handle(Event::NotRenewed, ms(t0, 760));
        let unknown = || Event::Owner(Some((theirs(2), None)));
        assert_eq!(own.handle(unknown(), ms(t0, 770)), [], "the registry may learn it within a heartbeat");
        assert_eq!(own.handle(Event::Tick, ms(t0, 1_770)), [Action::AskOwner]);
        let acts = own.handle(Event::Owner(Some((theirs(2), Some("ws://b/ws".into())))), ms(t0, 1_780));
        assert_eq!(acts, [Action::MovePlayers("ws://b/ws".into())], "known a second later: moved");

        let mut own = held(t0);
        own.handle(Event::Tick, ms(t0, 750));
        own.handle(Event::NotRenewed, ms(t0, 760));
        assert_eq!(own.handle(unknown(), ms(t0, 770)), []);
        for at in [1_770, 2_770] {
            assert_eq!(own.handle(Event::Tick, ms(t0, at)), [Action::AskOwner]);
            assert_eq!(own.handle(unknown(), ms(t0, at + 10)), []);
        }
        assert_eq!(own.handle(Event::Tick, ms(t0, 3_770)), [Action::AskOwner]);
        assert_eq!(own.handle(unknown(), ms(t0, 3_780)), [Action::CloseRoom(Closing::Elsewhere)]);
        assert_eq!(own.end(), Some(&End::Closed(Closing::Elsewhere)));
        assert_eq!(own.handle(Event::RoomEnded, ms(t0, 3_790)), [], "not forgotten: another node holds it");
    }

    #[test]
    fn a_lease_nobody_holds_is_taken_back_above_the_old_epoch_and_saved_at_once() {
        let t0 = Instant::now();
        let mut own = held(t0);
        own.handle(Event::Tick, ms(t0, 750));
        own.handle(Event::NotRenewed, ms(t0, 760));
        assert_eq!(own.handle(Event::Owner(None), ms(t0, 770)), [Action::Reclaim { floor: 1 }]);
        assert_eq!(own.handle(Event::ReclaimRefused, ms(t0, 780)), [], "taken in between");
        assert_eq!(own.handle(Event::Tick, ms(t0, 1_000)), [Action::AskOwner], "so: by whom?");
        assert_eq!(own.handle(Event::Owner(None), ms(t0, 1_010)), [Action::Reclaim { floor: 1 }]);
        let acts = own.handle(Event::Reclaimed { epoch: 7, sent: ms(t0, 1_010) }, ms(t0, 1_020));
        assert_eq!(acts, [Action::Fence(ms(t0, 3_710)), Action::Checkpoint(ours(7)), Action::List(ours(7))]);
        assert_eq!(own.lease(), &ours(7));
        assert_eq!(
            own.handle(Event::Tick, ms(t0, 1_760)),
            [Action::Renew(ours(7))],
            "renewed under the new epoch"
        );
    }

    #[test]
    fn a_drain_retires_the_room_hands_it_over_and_moves_its_players() {
        let t0 = Instant::now();
        let mut own = held(t0);
        let acts = own.handle(Event::Drain { to: Some(node_b()) }, ms(t0, 100));
        assert_eq!(acts, [Action::RetireFence, Action::Transfer { lease: ours(1), to: node_b() }]);
        assert_eq!(own.handle(Event::Tick, ms(t0, 800)), [], "no renewal of a lease being handed over");
        assert_eq!(own.handle(Event::Drain { to: Some(node_b()) }, ms(t0, 810)), [], "one drain is enough");
        assert_eq!(own.handle(Event::RoomEnded, ms(t0, 820)), [], "the room's end is not the hand-over's");
        let acts = own.handle(Event::HandedOver { epoch: 2 }, ms(t0, 900));
        assert_eq!(acts, [Action::MovePlayers("ws://b/ws".into())]);
    }

    #[test]
    fn a_drain_with_no_other_node_saves_the_room_for_the_next_one() {
        let t0 = Instant::now();
        let mut own = held(t0);
        let acts = own.handle(Event::Drain { to: None }, ms(t0, 100));
        assert_eq!(acts, [Action::RetireFence, Action::SaveAndRelease(ours(1))]);
        assert_eq!(own.handle(Event::Released, ms(t0, 200)), [Action::CloseRoom(Closing::Saved)]);
    }

    #[test]
    fn a_hand_over_that_fails_ends_moved_or_closed_never_frozen() {
        let t0 = Instant::now();
        let drained = || {
            let mut own = held(t0);
            own.handle(Event::Drain { to: Some(node_b()) }, ms(t0, 100));
            own
        };
        // The transfer went through but its answer was lost.
        let mut own = drained();
        assert_eq!(own.handle(Event::Failed, ms(t0, 1_100)), [Action::AskOwner]);
        let acts = own.handle(Event::Owner(Some((theirs(2), Some("ws://b/ws".into())))), ms(t0, 1_110));
        assert_eq!(acts, [Action::MovePlayers("ws://b/ws".into())]);
        // It never happened: the lease is still ours; saved and let go.
        let mut own = drained();
        assert_eq!(own.handle(Event::Failed, ms(t0, 1_100)), [Action::AskOwner]);
        assert_eq!(
            own.handle(Event::Owner(Some((ours(1), None))), ms(t0, 1_110)),
            [Action::SaveAndRelease(ours(1))]
        );
        assert_eq!(own.handle(Event::Released, ms(t0, 1_120)), [Action::CloseRoom(Closing::Saved)]);
        // The lease ran out meanwhile (nobody has it), or Redis stays away.
        let mut own = drained();
        own.handle(Event::NotHandedOver, ms(t0, 1_100));
        assert_eq!(own.handle(Event::Owner(None), ms(t0, 1_110)), [Action::CloseRoom(Closing::Elsewhere)]);
        let mut own = drained();
        own.handle(Event::Failed, ms(t0, 1_100));
        assert_eq!(own.handle(Event::Failed, ms(t0, 2_100)), [Action::CloseRoom(Closing::Elsewhere)]);
        // The save after a failed transfer fails too.
        let mut own = drained();
        own.handle(Event::Failed, ms(t0, 1_100));
        own.handle(Event::Owner(Some((ours(1), None))), ms(t0, 1_110));
        assert_eq!(own.handle(Event::Failed, ms(t0, 2_110)), [Action::CloseRoom(Closing::Elsewhere)]);
    }

    #[test]
    fn an_emptied_room_is_forgotten_only_while_its_lease_is_ours() {
        let t0 = Instant::now();
        let mut own = held(t0);
        assert_eq!(own.handle(Event::RoomEnded, ms(t0, 100)), [Action::Forget(ours(1))]);
        assert_eq!(own.end(), Some(&End::Forgotten));
        let mut own = held(t0);
        own.handle(Event::Drain { to: None }, ms(t0, 100));
        assert_eq!(own.handle(Event::RoomEnded, ms(t0, 200)), []);
    }

    #[test]
    fn answers_to_nothing_asked_change_nothing() {
        let t0 = Instant::now();
        let mut own = held(t0);
        for event in [
            Event::Renewed { sent: ms(t0, 5_000) },
            Event::NotRenewed,
            Event::Owner(None),
            Event::Reclaimed { epoch: 9, sent: ms(t0, 5_000) },
            Event::HandedOver { epoch: 9 },
            Event::Released,
            Event::Failed,
        ] {
            assert_eq!(own.handle(event.clone(), ms(t0, 100)), [], "{event:?}");
        }
        assert_eq!(own.valid_until(), ms(t0, 2_700));
        assert_eq!(own.lease(), &ours(1));
        assert!(own.healthy());
    }

    mod any_order {
        use proptest::prelude::*;

        use super::*;

        /// An event, at a few milliseconds after the one before.
        fn event() -> impl Strategy<Value = (u8, u64, u64)> {
            (0u8..13, 0u64..2_000, 1u64..5)
        }

        fn make(kind: u8, at: Instant, epoch: u64) -> Event {
            match kind {
                0 | 1 => Event::Tick,
                2 => Event::Renewed { sent: at },
                3 => Event::NotRenewed,
                4 => Event::Owner(None),
                5 => Event::Owner(Some((theirs(epoch), Some("ws://b/ws".into())))),
                6 => Event::Owner(Some((theirs(epoch), None))),
                7 => Event::Owner(Some((ours(1), None))),
                8 if epoch.is_multiple_of(2) => Event::ReclaimRefused,
                8 => Event::Reclaimed { epoch: epoch + 1, sent: at },
                9 => Event::Failed,
                10 => Event::Drain { to: epoch.is_multiple_of(2).then(node_b) },
                11 => [Event::HandedOver { epoch }, Event::NotHandedOver, Event::Released]
                    [epoch as usize % 3]
                    .clone(),
                _ => Event::RoomEnded,
            }
        }

        fn asks(action: &Action) -> bool {
            matches!(
                action,
                Action::Renew(_)
                    | Action::AskOwner
                    | Action::Reclaim { .. }
                    | Action::Transfer { .. }
                    | Action::SaveAndRelease(_)
            )
        }

        /// Whether `event` is an answer to `call`.
        fn answers(event: &Event, call: &Action) -> bool {
            match call {
                Action::Renew(_) => {
                    matches!(event, Event::Renewed { .. } | Event::NotRenewed | Event::Failed)
                }
                Action::AskOwner => matches!(event, Event::Owner(_) | Event::Failed),
                Action::Reclaim { .. } => {
                    matches!(event, Event::Reclaimed { .. } | Event::ReclaimRefused | Event::Failed)
                }
                _ => matches!(
                    event,
                    Event::HandedOver { .. } | Event::NotHandedOver | Event::Released | Event::Failed
                ),
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 512, rng_seed: proptest::test_runner::RngSeed::Fixed(31), ..ProptestConfig::default() })]

            /// Whatever happens in whatever order: at most one call out; no
            /// save past the fence; nothing runs the room again once it is
            /// retired; nothing at all after the end; and once a drain is
            /// ordered, the machine ends within four answers.
            #[test]
            fn every_order_of_events_keeps_the_promises(events in proptest::collection::vec(event(), 1..60)) {
                let t0 = Instant::now();
                let mut own = Ownership::new("a".into(), ours(1), t0, TTL, CHECKPOINT);
                let (mut at, mut retired, mut answers_since_drain) = (t0, false, None::<u32>);
                let mut out: Option<Action> = None;
                for (kind, gap, epoch) in events {
                    at += Duration::from_millis(gap);
                    let event = make(kind, at, epoch);
                    let ended_before = own.end().is_some();
                    let answer = out.as_ref().is_some_and(|call| answers(&event, call));
                    let acts = own.handle(event.clone(), at);
                    if ended_before {
                        prop_assert!(acts.is_empty(), "{event:?} after the end gave {acts:?}");
                    }
                    if answer {
                        out = None;
                    }
                    let calls: Vec<&Action> = acts.iter().filter(|a| asks(a)).collect();
                    prop_assert!(calls.len() <= 1, "{acts:?}");
                    if let Some(call) = calls.first() {
                        let drain = matches!(event, Event::Drain { .. });
                        prop_assert!(out.is_none() || drain, "{call:?} while {out:?} was out");
                        out = Some((*call).clone());
                    }
                    for act in &acts {
                        match act {
                            Action::Checkpoint(_) => prop_assert!(at < own.valid_until(), "a save past the fence"),
                            Action::RetireFence => retired = true,
                            Action::Fence(_) => prop_assert!(!retired, "a retired room started again"),
                            _ => {}
                        }
                    }
                    if retired && answer {
                        answers_since_drain = Some(answers_since_drain.unwrap_or(0) + 1);
                    }
                    if answers_since_drain.unwrap_or(0) >= 4 {
                        prop_assert!(own.end().is_some(), "a drained room still going after four answers");
                    }
                }
            }
        }
    }
}
