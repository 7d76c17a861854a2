//! Each leased room's steward (cluster mode): a task beside the room that
//! carries out what the room's [`Ownership`] decides, against Redis and the
//! room, and feeds the answers back. Its timer ticks twelve times per
//! `--lease-ms` (or every `--checkpoint-ms`, if shorter); a drain reaches
//! it as an order through its [`StewardHandle`], between two calls, so a
//! renewal and a hand-over never race. It ends when the ownership does
//! (the players moved, or the room closed), or when the server stops,
//! leaving the lease to run out and the last save for another node (as
//! after a crash).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

use arena_shared::codec::encode_state;
use arena_shared::protocol::{Moved, close};
use tokio::sync::{mpsc, oneshot};

use crate::cluster::lease::{Lease, LeaseStore, Leases};
use crate::cluster::listing::Listing;
use crate::cluster::ownership::{Action, Closing, End, Event, Node, Ownership};
use crate::cluster::redis::RedisError;
use crate::cluster::registry::Cluster;
use crate::room::fence::Fence;
use crate::room::handle::RoomHandle;
use crate::room::outbox::CloseReason;
use crate::telemetry::metrics::{Metrics, RoomStats};

/// How long a saved room is kept in Redis after its last save: long
/// enough for a restarted cluster to bring it back.
pub const STATE_KEEP: Duration = Duration::from_secs(600);

/// What a steward is told from outside.
enum Order {
    /// Hand the room to `to` (or save it for the next node): `done` hears
    /// whether another node has it now.
    Drain { to: Option<Node>, done: oneshot::Sender<bool> },
}

/// The way to a room's steward, kept by the placement while it runs.
#[derive(Clone)]
pub struct StewardHandle {
    orders: mpsc::Sender<Order>,
}

impl StewardHandle {
    /// Drains the room to `to`, or saves it for the next node: `true` if
    /// another node runs it now. `false` too if the steward already ended.
    pub async fn drain(&self, to: Option<Node>) -> bool {
        let (done, answer) = oneshot::channel();
        if self.orders.send(Order::Drain { to, done }).await.is_err() {
            return false;
        }
        answer.await.unwrap_or(false)
    }
}

/// What a steward looks after, through `S` (the cluster's Redis).
pub struct Steward<S: LeaseStore = Leases> {
    pub cluster: Arc<Cluster>,
    pub leases: S,
    pub code: String,
    pub ownership: Ownership,
    /// The room's fence, which the ownership's actions move.
    pub fence: Arc<Fence>,
    pub handle: RoomHandle,
    /// A public room's figures and size, listed for quick-joins.
    pub listing: Option<(Arc<RoomStats>, u16)>,
    pub checkpoint_every: Duration,
    /// With the input log, the room saves its checkpoints itself, in order
    /// with its log: the steward asks for one here instead of saving.
    pub log_save: Option<Arc<AtomicBool>>,
    pub metrics: Arc<Metrics>,
    /// The server stops: the steward stops too, leaving the lease to run
    /// out and the last save for another node (as after a crash).
    pub cancel: tokio_util::sync::CancellationToken,
}

impl<S: LeaseStore> Steward<S> {
    /// Its handle, and the steward to run.
    pub fn with_handle(self) -> (StewardHandle, Running<S>) {
        let (orders, inbox) = mpsc::channel(1);
        (StewardHandle { orders }, Running { steward: self, inbox, drained: None })
    }
}

/// A steward with its inbox.
pub struct Running<S: LeaseStore = Leases> {
    steward: Steward<S>,
    inbox: mpsc::Receiver<Order>,
    /// The drain under way waits for the ownership's end.
    drained: Option<oneshot::Sender<bool>>,
}

impl<S: LeaseStore> Running<S> {
    /// Looks after the room until its ownership ends or the server stops.
    pub async fn run(mut self) {
        let ttl = self.steward.cluster.lease();
        // Twelve times a lease: renewals still go each quarter lease and
        // saves each checkpoint, but a renewal that failed (Redis failing
        // over, say) is tried again within a twelfth, not a third.
        let mut ticks = tokio::time::interval(self.steward.checkpoint_every.min(ttl / 12));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        self.steward.metrics.leases_held.inc();
        let cancel = self.steward.cancel.clone();
        loop {
            let event = tokio::select! {
                () = cancel.cancelled() => break,
                _ = ticks.tick() => {
                    if self.steward.handle.is_closed() { Event::RoomEnded } else { Event::Tick }
                }
                Some(Order::Drain { to, done }) = self.inbox.recv() => {
                    self.drained = Some(done);
                    Event::Drain { to }
                }
            };
            if let Some(end) = self.steward.follow(event).await {
                if let Some(done) = self.drained.take() {
                    let _ = done.send(matches!(end, End::Moved { .. }));
                }
                break;
            }
        }
        self.steward.metrics.leases_held.dec();
    }
}

impl<S: LeaseStore> Steward<S> {
    /// Hands `event` to the ownership and carries out what it says, each
    /// call's answer fed back in turn; the end, once there is one.
    async fn follow(&mut self, event: Event) -> Option<End> {
        let mut todo: VecDeque<Action> = self.ownership.handle(event, Instant::now()).into();
        while let Some(action) = todo.pop_front() {
            let healthy = self.ownership.healthy();
            if let Some(answer) = self.carry_out(action).await {
                todo.extend(self.ownership.handle(answer, Instant::now()));
            }
            match (healthy, self.ownership.healthy()) {
                (true, false) => {
                    tracing::warn!(room = %self.code, "the cluster's Redis does not answer for this room")
                }
                (false, true) => {
                    tracing::info!(room = %self.code, "the cluster's Redis answers for this room again")
                }
                _ => {}
            }
        }
        self.ownership.end().cloned()
    }

    /// Carries out one action; the answer, for one that asked Redis.
    async fn carry_out(&self, action: Action) -> Option<Event> {
        let ttl = self.cluster.lease();
        match action {
            Action::Renew(lease) => Some(self.renew(&lease, ttl).await),
            Action::Fence(until) => {
                self.fence.set_epoch(self.ownership.lease().epoch);
                self.fence.extend_to(until);
                None
            }
            Action::ShutFence => {
                self.fence.revoke();
                None
            }
            Action::RetireFence => {
                self.fence.retire();
                None
            }
            Action::List(lease) => {
                if let Err(e) = self.list(&lease, ttl).await {
                    tracing::debug!(room = %self.code, "cannot list the room: {e}");
                }
                None
            }
            Action::Checkpoint(_) if let Some(save) = &self.log_save => {
                save.store(true, Relaxed);
                None
            }
            Action::Checkpoint(lease) => {
                if let Err(e) = self.checkpoint(&lease).await {
                    tracing::debug!(room = %self.code, "checkpoint failed: {e}");
                }
                None
            }
            Action::AskOwner => Some(self.owner().await),
            Action::Reclaim { floor } => Some(self.reclaim(floor, ttl).await),
            Action::Transfer { lease, to } => Some(self.transfer(&lease, &to, ttl).await),
            Action::SaveAndRelease(lease) => Some(self.save_and_release(&lease).await),
            Action::MovePlayers(url) => {
                tracing::warn!(room = %self.code, %url, "another node runs this room now: sending its players there");
                self.handle.move_to(Moved { url, room: self.code.clone() }).await;
                None
            }
            Action::CloseRoom(closing) => {
                self.close(closing).await;
                None
            }
            Action::Forget(lease) => {
                if let Err(e) = self.leases.forget(&self.code, &lease).await {
                    tracing::debug!(room = %self.code, "cannot forget the closed room in Redis: {e}");
                }
                None
            }
        }
    }

    async fn renew(&self, lease: &Lease, ttl: Duration) -> Event {
        let sent = Instant::now();
        let renewed = self.leases.renew(&self.code, lease, ttl).await;
        self.metrics.redis_seconds.observe(sent.elapsed().as_secs_f64());
        match renewed {
            Ok(true) => {
                self.metrics.lease_renewals_total.inc();
                Event::Renewed { sent }
            }
            Ok(false) => {
                self.metrics.leases_lost_total.inc();
                tracing::warn!(room = %self.code, epoch = lease.epoch, "the room's lease is not this node's any more");
                Event::NotRenewed
            }
            Err(e) => failed(&self.code, "renew the room's lease", &e),
        }
    }

    async fn owner(&self) -> Event {
        match self.leases.owner(&self.code).await {
            Ok(owner) => Event::Owner(owner.map(|lease| {
                let url = self.cluster.url_of(&lease.node);
                (lease, url)
            })),
            Err(e) => failed(&self.code, "ask who holds the room", &e),
        }
    }

    async fn reclaim(&self, floor: u64, ttl: Duration) -> Event {
        let sent = Instant::now();
        match self.leases.claim_above(&self.code, &self.cluster.node, ttl, floor).await {
            Ok(Some(epoch)) => {
                tracing::info!(room = %self.code, epoch, "took the room's lease back: playing on");
                Event::Reclaimed { epoch, sent }
            }
            Ok(None) => Event::ReclaimRefused,
            Err(e) => failed(&self.code, "take the room's lease back", &e),
        }
    }

    /// Hands the lease and the room's state (taken now: the room is
    /// retired) to `to` in one step.
    async fn transfer(&self, lease: &Lease, to: &Node, ttl: Duration) -> Event {
        let Some(snapshot) = self.handle.snapshot().await else { return Event::Failed };
        let bytes = encode_state(&snapshot);
        match self.leases.transfer(&self.code, lease, &to.id, ttl, &bytes).await {
            Ok(Some(epoch)) => {
                self.metrics.handovers_out_total.inc();
                tracing::info!(room = %self.code, to = %to.url, epoch, players = snapshot.players(), "room handed over");
                Event::HandedOver { epoch }
            }
            Ok(None) => Event::NotHandedOver,
            Err(e) => failed(&self.code, "hand the room over", &e),
        }
    }

    /// Saves the room for whichever node starts next and lets its lease go.
    async fn save_and_release(&self, lease: &Lease) -> Event {
        let Some(snapshot) = self.handle.snapshot().await else { return Event::Failed };
        let bytes = encode_state(&snapshot);
        match self.leases.save(&self.code, lease, &bytes, STATE_KEEP).await {
            Ok(true) => {
                tracing::warn!(room = %self.code, players = snapshot.players(), "no other node to take the room: saved for the next one");
                let _ = self.leases.release(&self.code, lease).await;
                Event::Released
            }
            Ok(false) => Event::NotHandedOver,
            Err(e) => failed(&self.code, "save the room", &e),
        }
    }

    /// Saves the room as it is now, if `lease` still holds it.
    async fn checkpoint(&self, lease: &Lease) -> Result<(), RedisError> {
        let Some(snapshot) = self.handle.snapshot().await else { return Ok(()) };
        let bytes = encode_state(&snapshot);
        if self.leases.save(&self.code, lease, &bytes, STATE_KEEP).await? {
            self.metrics.checkpoints_total.inc();
        }
        Ok(())
    }

    /// Lists a public room, with its players now, for as long as the lease.
    async fn list(&self, lease: &Lease, ttl: Duration) -> Result<(), RedisError> {
        let Some((stats, room_size)) = &self.listing else { return Ok(()) };
        let listing = Listing {
            code: self.code.clone(),
            node: self.cluster.node.clone(),
            url: self.cluster.url.clone(),
            players: stats.players.load(Relaxed),
            watchers: stats.watchers.load(Relaxed),
            room_size: *room_size,
        };
        self.leases.publish(&listing, lease, ttl).await?;
        Ok(())
    }

    /// Closes every connection; the players come back through any node.
    async fn close(&self, closing: Closing) {
        let reason = match closing {
            Closing::Saved => "server restarting: the room is saved",
            Closing::Elsewhere => "the room moves to another server: join again",
        };
        tracing::warn!(room = %self.code, ?closing, "closing the room here");
        self.handle.close(CloseReason::new(close::GOING_AWAY, reason)).await;
    }
}

/// A call that got no answer, logged quietly (the ownership's health
/// change is what gets a warning).
fn failed(code: &str, what: &str, e: &RedisError) -> Event {
    tracing::debug!(room = %code, "cannot {what}: {e}");
    Event::Failed
}

#[cfg(test)]
mod tests {
    //! The steward over the in-memory twin of Redis, with a real room task,
    //! on real time with a 1 s lease (margins a loaded machine keeps): each
    //! runs in a few seconds at most.

    use arena_shared::codec::{MAX_STATE_BYTES, decode_state};
    use tokio_util::sync::CancellationToken;
    use tokio_util::task::TaskTracker;

    use super::*;
    use crate::cluster::ownership::{UNKNOWN_OWNER_WAIT, valid_until};
    use crate::cluster::registry::NodeInfo;
    use crate::cluster::twin::Twin;
    use crate::config::{ClusterConfig, ServerConfig};
    use crate::room::handle::Membership;
    use crate::room::replays::ReplayStore;
    use crate::room::task::{RoomSpec, spawn};
    use crate::room::world::{Newcomer, WorldSnapshot};

    const CODE: &str = "stewarded";
    const TTL: Duration = Duration::from_millis(1_000);

    /// A leased room with a player, its steward running over `twin`.
    struct Stewarded {
        steward: StewardHandle,
        room: RoomHandle,
        fence: Arc<Fence>,
        player: Membership,
        cluster: Arc<Cluster>,
        done: tokio::task::JoinHandle<()>,
    }

    async fn stewarded(twin: &Twin) -> Stewarded {
        let ServerConfig { game, .. } = ServerConfig::default();
        let config = ClusterConfig {
            redis_url: Some("redis://twin".into()),
            lease_ms: 1_000,
            checkpoint_ms: 500,
            ..ServerConfig::default().cluster
        };
        let cluster = Cluster::new(&config, "ws://a/ws".into());
        let sent = Instant::now();
        let epoch = twin.claim_above(CODE, &cluster.node, TTL, 0).await.expect("up").expect("free");
        let lease = Lease { epoch, node: cluster.node.clone() };
        let fence = Arc::new(Fence::until(valid_until(sent, TTL), epoch));
        let metrics = Arc::new(Metrics::default());
        let stats = Arc::new(RoomStats::default());
        let spec = RoomSpec {
            code: CODE.into(),
            private: false,
            stats: stats.clone(),
            owner: None,
            on_close: Box::new(|| {}),
            fence: fence.clone(),
            restore: None,
            replays: Arc::new(ReplayStore::new(0, None)),
            log: None,
        };
        // Nobody reads the player's frames: it must not be dropped as too slow.
        let never_too_slow = 1_000_000;
        let room = spawn(
            spec,
            Arc::new(game),
            never_too_slow,
            metrics.clone(),
            CancellationToken::new(),
            &TaskTracker::new(),
        );
        let newcomer = Newcomer { name: "ada".into(), color: 0, from: None };
        let player = room.join(newcomer, None).await.expect("a fresh room seats");
        let steward = Steward {
            cluster: cluster.clone(),
            leases: twin.clone(),
            code: CODE.into(),
            ownership: Ownership::new(cluster.node.clone(), lease, sent, TTL, config.checkpoint_every()),
            fence: fence.clone(),
            handle: room.clone(),
            listing: Some((stats, 8)),
            checkpoint_every: config.checkpoint_every(),
            log_save: None,
            metrics,
            cancel: CancellationToken::new(),
        };
        let (steward, running) = steward.with_handle();
        let done = tokio::spawn(running.run());
        // Its first save is made.
        tokio::time::sleep(TTL / 4).await;
        assert!(twin.state(CODE).is_some(), "saved at once");
        Stewarded { steward, room, fence, player, cluster, done }
    }

    /// How the player's connection was closed, waiting up to `within`.
    async fn closed(player: &Membership, within: Duration) -> u16 {
        let ending = async {
            loop {
                if let Some(close) = player.outbox.next().await.close {
                    return close.code;
                }
            }
        };
        tokio::time::timeout(within, ending).await.expect("the player is closed in time")
    }

    fn node_b() -> NodeInfo {
        NodeInfo { node: "b".into(), url: "ws://b/ws".into(), rooms: 0, players: 0, draining: false }
    }

    #[tokio::test]
    async fn a_held_lease_is_renewed_saved_and_listed_and_the_room_runs() {
        let twin = Twin::default();
        let room = stewarded(&twin).await;
        tokio::time::sleep(TTL * 2).await;
        assert!(room.fence.holds(Instant::now()), "renewed past its first lease");
        assert_eq!(twin.lease(CODE).map(|lease| lease.node), Some(room.cluster.node.clone()));
        let saved: WorldSnapshot =
            decode_state(&twin.state(CODE).expect("saved"), MAX_STATE_BYTES).expect("decodes");
        assert_eq!(saved.players(), 1);
        assert!(twin.listed(CODE));
        assert!(!room.done.is_finished());
    }

    #[tokio::test]
    async fn a_lease_taken_by_a_known_node_sends_the_players_there_and_keeps_the_state() {
        let twin = Twin::default();
        let room = stewarded(&twin).await;
        room.cluster.know(vec![node_b()]);
        twin.take(CODE, "b", Duration::from_secs(60));
        assert_eq!(closed(&room.player, TTL * 2).await, close::MOVED);
        room.done.await.expect("the steward ends");
        assert!(twin.state(CODE).is_some(), "b's to carry on: not forgotten");
        assert_eq!(twin.lease(CODE).map(|lease| lease.node), Some("b".into()));
    }

    #[tokio::test]
    async fn a_lease_taken_by_a_node_nobody_knows_closes_the_room_instead_of_freezing_it() {
        let twin = Twin::default();
        let room = stewarded(&twin).await;
        twin.take(CODE, "restarted", Duration::from_secs(60));
        assert_eq!(closed(&room.player, UNKNOWN_OWNER_WAIT + TTL * 3).await, close::GOING_AWAY);
        room.done.await.expect("the steward ends");
        assert!(room.room.is_closed(), "no zombie room left taking joins");
        assert!(twin.state(CODE).is_some(), "not forgotten");
    }

    #[tokio::test]
    async fn a_drain_hands_the_room_over_with_its_state_and_moves_the_players() {
        let twin = Twin::default();
        let room = stewarded(&twin).await;
        let to = Node { id: "b".into(), url: "ws://b/ws".into() };
        assert!(room.steward.drain(Some(to)).await, "handed over");
        assert_eq!(closed(&room.player, TTL).await, close::MOVED);
        let lease = twin.lease(CODE).expect("held");
        assert_eq!((lease.node.as_str(), lease.epoch), ("b", 2));
        let saved: WorldSnapshot =
            decode_state(&twin.state(CODE).expect("saved"), MAX_STATE_BYTES).expect("decodes");
        assert_eq!(saved.players(), 1, "with its player");
        assert!(!room.fence.holds(Instant::now()), "retired here");
    }

    #[tokio::test]
    async fn a_drain_while_redis_is_away_closes_the_room_instead_of_freezing_it() {
        let twin = Twin::default();
        let room = stewarded(&twin).await;
        twin.set_away(true);
        let to = Node { id: "b".into(), url: "ws://b/ws".into() };
        assert!(!room.steward.drain(Some(to)).await, "not handed over");
        assert_eq!(closed(&room.player, TTL).await, close::GOING_AWAY);
        room.done.await.expect("the steward ends");
        assert!(room.room.is_closed());
    }

    #[tokio::test]
    async fn a_redis_away_past_the_fence_pauses_the_room_and_an_empty_one_back_is_reclaimed() {
        let twin = Twin::default();
        let room = stewarded(&twin).await;
        twin.set_away(true);
        tokio::time::sleep(TTL + TTL / 2).await;
        assert!(!room.fence.holds(Instant::now()), "paused past its lease");
        // Redis comes back with nothing in it (no persistence).
        twin.flush();
        twin.set_away(false);
        tokio::time::sleep(TTL).await;
        assert!(room.fence.holds(Instant::now()), "running again");
        let lease = twin.lease(CODE).expect("taken back");
        assert_eq!(lease.node, room.cluster.node);
        assert!(lease.epoch > 1, "above the epoch it held: {}", lease.epoch);
        assert!(twin.state(CODE).is_some(), "saved at once");
        assert!(!room.done.is_finished());
    }

    #[tokio::test]
    async fn a_room_that_closes_here_is_forgotten() {
        let twin = Twin::default();
        let room = stewarded(&twin).await;
        room.room.close(CloseReason::new(close::GOING_AWAY, "closed by the server's operator")).await;
        tokio::time::timeout(TTL * 2, room.done).await.expect("in time").expect("the steward ends");
        assert_eq!((twin.lease(CODE), twin.state(CODE), twin.listed(CODE)), (None, None, false));
    }
}
