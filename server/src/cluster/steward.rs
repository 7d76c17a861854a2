//! Each leased room's steward (cluster mode): a task beside the room that
//! renews the room's lease three times per `--lease-ms`, pushing back the
//! room's [`Fence`] each time; saves the room to Redis every
//! `--checkpoint-ms` (only while it holds the lease: a saved state is never
//! older than one that another node wrote); lists a public room for
//! quick-joins on other nodes; and, when the room closes for good, forgets
//! it in Redis.
//!
//! When a renewal finds the lease gone, the steward asks who holds it now:
//! another node (it restored the room meanwhile) → the room sends its
//! players there and stops; nobody (Redis came back empty, or the lease ran
//! out during an outage that nobody used) → it claims the room again with
//! a higher epoch and the room plays on where it paused.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arena_shared::codec::encode_state;
use arena_shared::protocol::Moved;

use crate::cluster::lease::{Lease, Leases};
use crate::cluster::listing::{Listing, Listings};
use crate::cluster::redis::RedisError;
use crate::cluster::registry::Cluster;
use crate::room::fence::Fence;
use crate::room::handle::RoomHandle;
use crate::telemetry::metrics::{Metrics, RoomStats};

/// How long a saved room is kept in Redis after its last save: long
/// enough for a restarted cluster to bring it back.
pub const STATE_KEEP: Duration = Duration::from_secs(600);

/// A room's lease as its node holds it.
#[derive(Debug)]
pub struct RoomLease {
    pub code: String,
    lease: Mutex<Lease>,
    /// Until when the room may run by this node's clock.
    pub fence: Arc<Fence>,
    /// The room left this node with its state (handed over, or parked at
    /// the last node's stop): its end must not forget it in Redis.
    departed: AtomicBool,
}

impl RoomLease {
    /// `lease` on `code`, taken when `sent` went out, valid for `ttl`.
    pub fn new(code: String, lease: Lease, sent: Instant, ttl: Duration) -> Arc<Self> {
        let fence = Arc::new(Fence::until(valid_until(sent, ttl)));
        Arc::new(RoomLease { code, lease: Mutex::new(lease), fence, departed: AtomicBool::new(false) })
    }

    pub fn lease(&self) -> Lease {
        self.lease.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    fn set(&self, lease: Lease) {
        *self.lease.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = lease;
    }

    /// The room goes with its state: its close must not forget it.
    pub fn depart(&self) {
        self.departed.store(true, Relaxed);
    }
}

/// Until when a lease renewed at `sent` for `ttl` covers the room: a tenth
/// short of Redis's own expiry, which counts from when Redis got the call.
pub fn valid_until(sent: Instant, ttl: Duration) -> Instant {
    sent + ttl - ttl / 10
}

/// What a steward looks after.
pub struct Steward {
    pub cluster: Arc<Cluster>,
    pub leases: Leases,
    pub room: Arc<RoomLease>,
    pub handle: RoomHandle,
    /// A public room's figures and size, listed for quick-joins.
    pub listing: Option<(Arc<RoomStats>, u16)>,
    pub checkpoint_every: Duration,
    pub metrics: Arc<Metrics>,
    /// The server stops: the steward stops too, leaving the lease to run
    /// out and the last save for another node (as after a crash).
    pub cancel: tokio_util::sync::CancellationToken,
}

impl Steward {
    /// Looks after the room until it stops.
    pub async fn run(self) {
        let ttl = self.cluster.lease();
        let mut ticks = tokio::time::interval(self.checkpoint_every.min(ttl / 3));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        self.metrics.leases_held.inc();
        tokio::select! {
            () = self.look_after(&mut ticks, ttl) => {}
            () = self.cancel.cancelled() => {}
        }
        self.metrics.leases_held.dec();
    }

    async fn look_after(&self, ticks: &mut tokio::time::Interval, ttl: Duration) {
        let (mut renewed, mut saved) = (Instant::now(), Instant::now() - self.checkpoint_every);
        let mut healthy = true;
        loop {
            ticks.tick().await;
            if self.handle.is_closed() {
                return self.closed().await;
            }
            // A quarter, not a third: a tick a little early must not skip a renewal.
            if renewed.elapsed() >= ttl / 4 || !self.room.fence.holds(Instant::now()) {
                let kept = self.renew().await;
                match (&kept, healthy) {
                    (Err(e), true) => {
                        tracing::warn!(room = %self.room.code, "cannot renew the room's lease: {e}")
                    }
                    (Ok(_), false) => {
                        tracing::info!(room = %self.room.code, "the room's lease is renewed again")
                    }
                    _ => {}
                }
                healthy = kept.is_ok();
                match kept {
                    Ok(true) => renewed = Instant::now(),
                    Ok(false) => return,
                    Err(_) => continue,
                }
            }
            if saved.elapsed() >= self.checkpoint_every && self.room.fence.holds(Instant::now()) {
                saved = Instant::now();
                if let Err(e) = self.checkpoint().await {
                    tracing::debug!(room = %self.room.code, "checkpoint failed: {e}");
                }
            }
        }
    }

    /// Renews the lease (or takes it back, or gives the room up): `false`
    /// when the room is played elsewhere now and this steward is done.
    async fn renew(&self) -> Result<bool, RedisError> {
        let ttl = self.cluster.lease();
        let lease = self.room.lease();
        let sent = Instant::now();
        let renewed = self.leases.renew(&self.room.code, &lease, ttl).await?;
        self.metrics.redis_seconds.observe(sent.elapsed().as_secs_f64());
        if renewed {
            self.metrics.lease_renewals_total.inc();
            self.room.fence.extend_to(valid_until(sent, ttl));
            self.list(&lease, ttl).await?;
            return Ok(true);
        }
        self.room.fence.revoke();
        // Handed over or saved by a drain: nothing left to look after.
        if self.room.departed.load(Relaxed) {
            return Ok(false);
        }
        self.metrics.leases_lost_total.inc();
        match self.leases.owner(&self.room.code).await? {
            Some(owner) if owner.node != self.cluster.node => {
                self.room.depart();
                let Some(url) = self.cluster.url_of(&owner.node) else {
                    tracing::warn!(room = %self.room.code, "the room is played on a node this one does not know yet");
                    return Ok(true);
                };
                tracing::warn!(room = %self.room.code, %url, epoch = owner.epoch, "another node runs this room now: sending its players there");
                self.handle.move_to(Moved { url, room: self.room.code.clone() }).await;
                Ok(false)
            }
            _ => self.reclaim(&lease).await,
        }
    }

    /// Takes the lease back after it ran out with nobody else taking it;
    /// the room saves itself at once (Redis may have lost the last save).
    async fn reclaim(&self, old: &Lease) -> Result<bool, RedisError> {
        let ttl = self.cluster.lease();
        let sent = Instant::now();
        let node = &self.cluster.node;
        let Some(epoch) = self.leases.claim_above(&self.room.code, node, ttl, old.epoch).await? else {
            // Somebody took it in between: the next renewal sends the players there.
            return Ok(true);
        };
        let lease = Lease { epoch, node: node.clone() };
        tracing::info!(room = %self.room.code, epoch, "took the room's lease back: playing on");
        self.room.set(lease.clone());
        self.room.fence.extend_to(valid_until(sent, ttl));
        self.checkpoint().await?;
        self.list(&lease, ttl).await?;
        Ok(true)
    }

    /// Saves the room as it is now, if this node still holds it.
    async fn checkpoint(&self) -> Result<(), RedisError> {
        let Some(snapshot) = self.handle.snapshot().await else { return Ok(()) };
        let bytes = encode_state(&snapshot);
        if self.leases.save(&self.room.code, &self.room.lease(), &bytes, STATE_KEEP).await? {
            self.metrics.checkpoints_total.inc();
        }
        Ok(())
    }

    /// Lists a public room, with its players now, for as long as the lease.
    async fn list(&self, lease: &Lease, ttl: Duration) -> Result<(), RedisError> {
        let Some((stats, room_size)) = &self.listing else { return Ok(()) };
        let listing = Listing {
            code: self.room.code.clone(),
            node: self.cluster.node.clone(),
            url: self.cluster.url.clone(),
            players: stats.players.load(Relaxed),
            watchers: stats.watchers.load(Relaxed),
            room_size: *room_size,
        };
        Listings(self.leases.0.clone()).publish(&listing, lease, ttl).await?;
        Ok(())
    }

    /// The room stopped: a room that closed here (it emptied) is forgotten
    /// in Redis; one that left with its state is not.
    async fn closed(&self) {
        if self.room.departed.load(Relaxed) {
            return;
        }
        if let Err(e) = self.leases.forget(&self.room.code, &self.room.lease()).await {
            tracing::debug!(room = %self.room.code, "cannot forget the closed room in Redis: {e}");
        }
    }
}
