//! Where rooms open and are found, across the cluster: [`Placement`]
//! opens this node's rooms (leased first in cluster mode, with a steward
//! beside each), and finds the rooms it does not run. A room runs on the
//! node that holds its lease; this node runs only what is in its
//! [`Rooms`], and finds the rest through Redis:
//!
//! - a code it does not run: the lease names the node that does (the player
//!   is sent there with a `Moved`), or this node itself (a draining node
//!   handed the room here: it is adopted from its saved state), or nobody
//!   while a saved state exists (its node crashed: claimed and restored);
//! - a quick-join: the fullest public room with space across the cluster,
//!   its seat reserved in Redis before the player is sent there;
//! - orphans: every lease period, saved rooms that nobody holds are
//!   claimed and restored, players or not;
//! - a drain: each room is paused, saved and handed to the least-loaded
//!   other node in one step, and its players are sent there.
//!
//! Outside cluster mode every room opens here, unleased, and nothing is
//! elsewhere.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use arena_shared::codec::MAX_STATE_BYTES;
use arena_shared::protocol::{Moved, RejectReason, Rejection};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::cluster::fresh::Fresh;
use crate::cluster::inputlog;
use crate::cluster::lease::{Lease, LeaseStore, Leases};
use crate::cluster::listing::Listing;
use crate::cluster::ownership::{self, Node, Ownership};
use crate::cluster::redis::RedisError;
use crate::cluster::registry::Cluster;
use crate::cluster::steward::{Steward, StewardHandle};
use crate::config::ClusterConfig;
use crate::limits::Slot;
use crate::room::fence::Fence;
use crate::room::log::{LogSink, RoomLog};
use crate::room::task::Restore;
use crate::room::world::WorldSnapshot;
use crate::room::world::journal::Record;
use crate::rooms::directory::RoomEntry;
use crate::rooms::{NewRoom, NoSeat, PublicRoom, Rooms};
use crate::telemetry::metrics::Metrics;

/// How long a quick-joiner's reserved seat waits for it: the room's own
/// count includes the player within one renewal.
const SEAT_HOLD: Duration = Duration::from_secs(3);

/// How a saved room came to this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arrival {
    /// A draining node handed it here.
    HandedOver,
    /// Its node stopped renewing (a crash, a freeze, a partition).
    Restored,
}

/// The cluster is on but cannot answer now: a player should retry soon.
fn unavailable(e: &RedisError) -> Rejection {
    tracing::warn!("the cluster's Redis cannot answer: {e}");
    retry_soon()
}

/// Where a room is cannot be known for a moment (Redis is away, or its
/// node just vanished and the room comes back elsewhere within a lease).
fn retry_soon() -> Rejection {
    Rejection::new(RejectReason::Unavailable { retry_after_secs: 5 })
}

/// Opens and finds rooms across the cluster.
pub struct Placement {
    rooms: Arc<Rooms>,
    /// This node and the cluster it is in (itself alone without `--redis-url`).
    cluster: Arc<Cluster>,
    config: ClusterConfig,
    /// A room's seats, listed with public rooms.
    room_size: u16,
    tick_rate: u16,
    /// The node's input-log writer, started with the first leased room
    /// (`--input-log`).
    log_writer: std::sync::OnceLock<LogSink>,
    metrics: Arc<Metrics>,
    cancel: CancellationToken,
    /// The stewards, so shutdown can wait for them.
    tasks: TaskTracker,
    /// The steward of each leased room this node runs, by code, while it
    /// looks after the room.
    leased: Arc<Mutex<HashMap<String, StewardHandle>>>,
    /// The cluster's listing, read at most four times a second.
    listed: Fresh<Vec<Listing>>,
    /// One look-up at a time per room code (two players of a handed-over
    /// room arriving together adopt it once); look-ups of different codes
    /// do not wait for each other, nor for rooms being opened.
    locating: CodeLocks,
}

impl Placement {
    pub fn new(
        rooms: Arc<Rooms>,
        cluster: Arc<Cluster>,
        (config, room_size, tick_rate): (ClusterConfig, u16, u16),
        metrics: Arc<Metrics>,
        cancel: CancellationToken,
    ) -> Self {
        Placement {
            rooms,
            cluster,
            config,
            room_size,
            tick_rate,
            log_writer: std::sync::OnceLock::new(),
            metrics,
            cancel,
            tasks: TaskTracker::new(),
            leased: Arc::default(),
            listed: Fresh::default(),
            locating: CodeLocks::default(),
        }
    }

    /// A leased room's input log, unless `--input-log=false`.
    fn room_log(&self, code: &str) -> Option<RoomLog> {
        if !self.config.input_log || !self.cluster.is_on() {
            return None;
        }
        let bounds = inputlog::Bounds::new(self.config.checkpoint_every(), self.tick_rate);
        let sink = self.log_writer.get_or_init(|| {
            inputlog::spawn(self.cluster.clone(), bounds, self.metrics.clone(), self.cancel.clone())
        });
        Some(RoomLog::new(sink.clone(), code, bounds.save_after(), self.metrics.clone()))
    }

    /// Where new rooms go while this node drains: the node that takes them.
    pub fn draining_to(&self) -> Option<Moved> {
        let successor = self.cluster.successor().filter(|_| self.cluster.is_draining())?;
        Some(Moved { url: successor.url, room: String::new() })
    }

    /// Opens a room here under a fresh code: private if it has an `owner`
    /// (its address's place under `--max-rooms-per-ip`, held until the
    /// room closes). In cluster mode the code is leased first, so no other
    /// node has it; the lease is taken without holding the opening lock
    /// (a fresh random code is nobody else's), which covers only the caps
    /// and the start.
    pub async fn open(&self, owner: Option<Slot>) -> Result<RoomEntry, Rejection> {
        self.open_or_share(owner, false).await
    }

    /// A public room with space, opening one if there is none. Two
    /// quick-joiners arriving together share the room the first opens: each
    /// leases a code without waiting for the other, and the second, finding
    /// the first's room at its start, gives its lease back and joins that.
    pub async fn open_public(&self) -> Result<RoomEntry, Rejection> {
        match self.rooms.fullest_public_with_space() {
            Some(entry) => Ok(entry),
            None => self.open_or_share(None, true).await,
        }
    }

    /// [`Placement::open`]; with `share`, a public room with space found at
    /// the start is taken instead of a new one.
    async fn open_or_share(&self, owner: Option<Slot>, share: bool) -> Result<RoomEntry, Rejection> {
        let private = owner.is_some();
        if !share {
            // Refused early, before a lease (a sharer may find a room yet).
            self.rooms.has_space_for(private)?;
        }
        let (code, claim) = loop {
            let code = self.rooms.fresh_code()?;
            if let Some(claim) = self.lease_new(&code).await? {
                break (code, claim);
            }
        };
        let fence = claim
            .as_ref()
            .map_or_else(|| Arc::new(Fence::always()), |claim| claim.fence(self.cluster.lease()));
        let log = claim.as_ref().and_then(|_| self.room_log(&code));
        let log_save = log.as_ref().map(RoomLog::save_flag);
        let started = {
            let _one_at_a_time = self.rooms.opening().await;
            match self.rooms.fullest_public_with_space().filter(|_| share) {
                Some(theirs) => Err(Ok(theirs)),
                None => self.start(code.clone(), owner, fence.clone(), log).map_err(Err),
            }
        };
        match (started, claim) {
            (Ok(entry), Some(claim)) => {
                self.steward(&code, &entry, claim, (fence, log_save));
                Ok(entry)
            }
            (Ok(entry), None) => Ok(entry),
            (Err(instead), claim) => {
                // Another's room to share, or full meanwhile: the lease goes back.
                if let (Some(claim), Some(leases)) = (claim, self.cluster.leases()) {
                    let _ = leases.release(&code, &claim.lease).await;
                }
                instead
            }
        }
    }

    /// Starts room `code` if the caps still allow it (under the opening lock).
    fn start(
        &self,
        code: String,
        owner: Option<Slot>,
        fence: Arc<Fence>,
        log: Option<RoomLog>,
    ) -> Result<RoomEntry, Rejection> {
        let private = owner.is_some();
        self.rooms.has_space_for(private)?;
        self.rooms.spawn(NewRoom { code, private, owner, fence, restore: None, log })
    }

    /// Stewards still looking after rooms.
    pub async fn stopped(&self) {
        self.tasks.close();
        self.tasks.wait().await;
    }

    /// The cluster's Redis, when cluster mode is on: `Err` while it does
    /// not answer.
    async fn redis(&self) -> Option<Result<Leases, Rejection>> {
        let connected = self.cluster.connected().await?;
        Some(connected.map(Leases).map_err(|e| unavailable(&e)))
    }

    /// Takes the lease on a fresh `code` for this node: `Ok(None)` if the
    /// code is held elsewhere; no lease outside cluster mode.
    async fn lease_new(&self, code: &str) -> Result<Option<Option<Claim>>, Rejection> {
        let Some(leases) = self.redis().await else { return Ok(Some(None)) };
        let leases = leases?;
        let sent = Instant::now();
        let claimed = leases
            .claim(code, &self.cluster.node, self.cluster.lease())
            .await
            .map_err(|e| unavailable(&e))?;
        Ok(claimed.map(|epoch| Some(Claim { lease: Lease { epoch, node: self.cluster.node.clone() }, sent })))
    }

    /// Starts the steward of a leased room, whose `fence` it moves (and
    /// asks its input log for checkpoints through `log_save`); the lease is
    /// this node's to hand over until the steward ends.
    fn steward(
        &self,
        code: &str,
        entry: &RoomEntry,
        claim: Claim,
        (fence, log_save): (Arc<Fence>, Option<Arc<AtomicBool>>),
    ) {
        let Some(leases) = self.cluster.leases() else { return };
        let code = code.to_owned();
        let checkpoint_every = self.config.checkpoint_every();
        let ownership = Ownership::new(
            self.cluster.node.clone(),
            claim.lease,
            claim.sent,
            self.cluster.lease(),
            checkpoint_every,
        );
        let steward = Steward {
            cluster: self.cluster.clone(),
            leases,
            code: code.clone(),
            ownership,
            fence,
            handle: entry.handle.clone(),
            listing: (!entry.private).then(|| (entry.stats.clone(), self.room_size)),
            checkpoint_every,
            log_save,
            metrics: self.metrics.clone(),
            cancel: self.cancel.clone(),
        };
        let (handle, steward) = steward.with_handle();
        lock(&self.leased).insert(code.clone(), handle);
        let leased = self.leased.clone();
        self.tasks.spawn(async move {
            steward.run().await;
            lock(&leased).remove(&code);
        });
    }

    /// Where room `code`, which this node does not run, is: `Ok(None)` if
    /// nowhere; a `Moved` if on another node; its entry if it was waiting
    /// for this node (handed over, or orphaned by a crash) and now runs here.
    pub async fn locate(&self, code: &str) -> Result<Option<RoomEntry>, NoSeat> {
        let Some(leases) = self.redis().await else { return Ok(None) };
        let leases = leases?;
        let _one_at_a_time = self.locating.lock(code).await;
        if let Some(entry) = self.rooms.get(code) {
            return Ok(Some(entry));
        }
        let owner = leases.owner(code).await.map_err(|e| unavailable(&e))?;
        match owner {
            Some(lease) if lease.node == self.cluster.node => {
                Ok(self.adopt(&leases, code, lease, Arrival::HandedOver).await?)
            }
            Some(lease) => match self.cluster.url_of(&lease.node) {
                Some(url) => Err(NoSeat::Moved(Moved { url, room: code.to_owned() })),
                // Its node is gone from the registry: the room comes back
                // elsewhere within a lease. Retry then.
                None => Err(retry_soon().into()),
            },
            None => Ok(self.restore(&leases, code).await?),
        }
    }

    /// Claims and restores saved room `code` if nobody holds it.
    async fn restore(&self, leases: &Leases, code: &str) -> Result<Option<RoomEntry>, Rejection> {
        if self.cluster.is_draining() {
            return Ok(None);
        }
        // Only whether there is one: the state is read once claimed.
        if !leases.is_saved(code).await.map_err(|e| unavailable(&e))? {
            return Ok(None);
        }
        let node = &self.cluster.node;
        let Some(epoch) =
            leases.claim(code, node, self.cluster.lease()).await.map_err(|e| unavailable(&e))?
        else {
            return Ok(None);
        };
        self.adopt(leases, code, Lease { epoch, node: node.clone() }, Arrival::Restored).await
    }

    /// Starts room `code` from its saved state under `lease`, which this
    /// node holds (under the code's look-up lock).
    async fn adopt(
        &self,
        leases: &Leases,
        code: &str,
        lease: Lease,
        arrival: Arrival,
    ) -> Result<Option<RoomEntry>, Rejection> {
        let sent = Instant::now();
        let ttl = self.cluster.lease();
        // Renewed first: the lease may have been handed over a while ago.
        if !leases.renew(code, &lease, ttl).await.map_err(|e| unavailable(&e))? {
            return Ok(None);
        }
        let Some((bytes, log)) = leases.load_with_log(code).await.map_err(|e| unavailable(&e))? else {
            tracing::warn!(room = %code, "leased here without a saved state: letting it go");
            let _ = leases.release(code, &lease).await;
            return Ok(None);
        };
        let snapshot = match WorldSnapshot::decode(&bytes, MAX_STATE_BYTES) {
            Ok(snapshot) => snapshot,
            Err(e) => {
                tracing::error!(room = %code, "its saved state does not decode ({e}): forgetting it");
                let _ = leases.forget(code, &lease).await;
                return Ok(None);
            }
        };
        let (players, tick, epoch) = (snapshot.players(), snapshot.tick(), lease.epoch);
        // Up to the first record that does not decode: the re-run stops at
        // the hole it leaves anyway.
        let log: Vec<Record> =
            log.iter().map_while(|bytes| Record::decode(bytes, inputlog::MAX_RECORD_BYTES).ok()).collect();
        let logged = log.len();
        let claim = Claim { lease, sent };
        let fence = claim.fence(ttl);
        let room_log = self.room_log(code);
        let log_save = room_log.as_ref().map(RoomLog::save_flag);
        let new = NewRoom {
            code: code.to_owned(),
            private: snapshot.private,
            owner: None,
            fence: fence.clone(),
            restore: Some(Restore { snapshot, log }),
            log: room_log,
        };
        let entry = self.rooms.spawn(new)?;
        self.steward(code, &entry, claim, (fence, log_save));
        let counter = match arrival {
            Arrival::HandedOver => &self.metrics.handovers_in_total,
            Arrival::Restored => &self.metrics.restores_total,
        };
        counter.inc();
        tracing::info!(room = %code, players, tick, logged, epoch, ?arrival, "room carried on here");
        Ok(Some(entry))
    }

    /// A quick-joiner's better room on another node: the fullest listed
    /// public room with space and more than `here` players, its seat
    /// reserved. `None` outside cluster mode, or if none is fuller.
    pub async fn fuller_elsewhere(&self, here: u64) -> Option<Moved> {
        let listings = self.cluster.listings()?;
        let listed = self.listed.get(|| listings.read()).await.ok()?;
        let mut rooms: Vec<&Listing> = listed
            .iter()
            .filter(|room| room.node != self.cluster.node && room.players > here)
            .filter(|room| room.players < u64::from(room.room_size))
            .collect();
        rooms.sort_by(|a, b| b.players.cmp(&a.players).then_with(|| a.code.cmp(&b.code)));
        for room in rooms {
            if let Ok(Some(true)) = listings.reserve(&room.code, SEAT_HOLD).await {
                return Some(Moved { url: room.url.clone(), room: room.code.clone() });
            }
        }
        None
    }

    /// Public rooms on every node, fullest first, for `GET /api/rooms`:
    /// the cluster's listing (each entry lives a lease and is renewed three
    /// times per lease, so one late renewal drops nothing, and a dead
    /// node's rooms are gone within a lease), with this node's own rooms
    /// as they are now. This node's alone outside cluster mode or while
    /// Redis does not answer.
    pub async fn public_everywhere(&self) -> Vec<PublicRoom> {
        let mut rooms = self.rooms.public();
        let Some(listings) = self.cluster.listings() else { return rooms };
        let Ok(listed) = self.listed.get(|| listings.read()).await else { return rooms };
        let elsewhere: Vec<PublicRoom> = listed
            .iter()
            .filter(|room| room.node != self.cluster.node && !rooms.iter().any(|here| here.code == room.code))
            .map(|room| PublicRoom {
                code: room.code.clone(),
                players: room.players,
                watchers: room.watchers,
                room_size: room.room_size,
            })
            .collect();
        rooms.extend(elsewhere);
        rooms.sort_by(|a, b| b.players.cmp(&a.players).then_with(|| a.code.cmp(&b.code)));
        rooms
    }

    /// Where a quick-joiner's new room should open instead of here: the
    /// live node with the fewest players, if it carries at least a room's
    /// worth fewer than this one (so the node it is sent to never sends it
    /// back). `None` outside cluster mode.
    pub fn quieter_node(&self) -> Option<Moved> {
        let node = self.cluster.successor()?;
        let room = u64::from(self.room_size);
        (node.players + room <= self.rooms.players()).then(|| Moved { url: node.url, room: String::new() })
    }

    /// Every lease period until `cancel`: restores saved rooms that nobody
    /// holds (their node crashed) and adopts rooms handed to this node that
    /// no player has come for yet.
    pub async fn adopt_orphans(self: Arc<Self>, cancel: CancellationToken) {
        if !self.cluster.is_on() {
            return;
        }
        let mut ticks = tokio::time::interval(self.cluster.lease() / 3);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                _ = ticks.tick() => {}
            }
            if self.cluster.is_draining() {
                continue;
            }
            let Some(leases) = self.cluster.leases() else { continue };
            let Ok(saved) = leases.saved().await else { continue };
            for code in saved {
                if self.rooms.get(&code).is_some() {
                    continue;
                }
                if let Err(e) = self.locate(&code).await
                    && let NoSeat::Rejected(rejection) = e
                {
                    tracing::debug!(room = %code, "not adopted now: {}", rejection.message);
                }
            }
        }
    }

    /// Drains this node (SIGTERM, or an operator's order): hands every
    /// room to other nodes within `--drain-secs`, then waits, within the
    /// same bound, for the moved players' connections to close. The node
    /// takes no new rooms from then on.
    pub async fn drain(&self) {
        let (open, players) = self.rooms.figures();
        tracing::info!(rooms = open, players, "draining: handing every room to another node");
        let started = Instant::now();
        let limit = self.config.drain_limit();
        match tokio::time::timeout(limit, self.hand_over_all()).await {
            Ok(handed) => tracing::info!(handed, of = open, took = ?started.elapsed(), "drained"),
            Err(_) => tracing::warn!("the drain did not finish within --drain-secs; going on anyway"),
        }
        // The moved players' sockets close as their rooms send them away.
        while self.rooms.players() > 0 && started.elapsed() < limit {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Hands every room this node runs to other nodes: each steward
    /// retires its room, transfers the lease with the room's state in one
    /// step and sends the players to the new node. With no other node to
    /// take them, the rooms are saved and their leases released, for
    /// whichever node starts next. Returns how many rooms were handed over.
    async fn hand_over_all(&self) -> usize {
        if !self.cluster.is_on() {
            return 0;
        }
        self.cluster.start_draining();
        let leased = lock(&self.leased).clone();
        let mut rooms: Vec<_> = self
            .rooms
            .list()
            .into_iter()
            .filter_map(|(code, entry)| Some((leased.get(&code)?.clone(), entry)))
            .collect();
        // Biggest rooms first, each to the node with the fewest players
        // counting what this drain already sent it: the rooms spread out.
        rooms.sort_by_key(|(_, entry)| std::cmp::Reverse(entry.stats.players.load(Relaxed)));
        let mut successors = self.cluster.successors();
        let moves = rooms.into_iter().map(|(steward, entry)| {
            let to = successors.iter_mut().min_by_key(|node| (node.players, node.rooms, node.node.clone()));
            let to = to.map(|node| {
                node.players += entry.stats.players.load(Relaxed);
                node.rooms += 1;
                Node { id: node.node.clone(), url: node.url.clone() }
            });
            async move { steward.drain(to).await }
        });
        let handed = futures_util::future::join_all(moves).await;
        handed.into_iter().filter(|&handed| handed).count()
    }
}

/// A lease this node just took, and when the call that took it was sent.
struct Claim {
    lease: Lease,
    sent: Instant,
}

impl Claim {
    /// The room's fence under this lease, for `ttl`.
    fn fence(&self, ttl: Duration) -> Arc<Fence> {
        Arc::new(Fence::until(ownership::valid_until(self.sent, ttl), self.lease.epoch))
    }
}

/// A lock per key, held across awaits; an entry lives while someone holds
/// or waits for its lock.
#[derive(Default)]
struct CodeLocks(Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>);

impl CodeLocks {
    async fn lock(&self, code: &str) -> CodeGuard<'_> {
        let shared = lock(&self.0).entry(code.to_owned()).or_default().clone();
        let held = Some(shared.clone().lock_owned().await);
        CodeGuard { locks: self, code: code.to_owned(), shared, held }
    }
}

/// One code's lock, held.
struct CodeGuard<'a> {
    locks: &'a CodeLocks,
    code: String,
    shared: Arc<tokio::sync::Mutex<()>>,
    held: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Drop for CodeGuard<'_> {
    fn drop(&mut self) {
        self.held = None;
        let mut locks = lock(&self.locks.0);
        // Nobody else holds or waits (the map's and this guard's are the
        // only references left): the entry goes.
        if Arc::strong_count(&self.shared) == 2 {
            locks.remove(&self.code);
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Plain map operations: nothing panics while the lock is held.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt;

    use super::*;

    #[tokio::test]
    async fn a_code_lock_waits_only_for_the_same_code_and_leaves_nothing_behind() {
        let locks = CodeLocks::default();
        let first = locks.lock("abc").await;
        assert!(locks.lock("xyz").now_or_never().is_some(), "another code does not wait");
        let mut second = Box::pin(locks.lock("abc"));
        assert!((&mut second).now_or_never().is_none(), "the same code waits");
        drop(first);
        let second = second.await;
        assert_eq!(lock(&locks.0).len(), 1, "held: kept");
        drop(second);
        assert!(lock(&locks.0).is_empty(), "nobody holds or waits: gone");
    }
}
