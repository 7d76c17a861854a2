//! Room leases and saved rooms in Redis: which node runs which room,
//! fenced by epochs, and each room's last saved state.
//!
//! A room code's lease is the key `arena:lease:<code>` holding
//! `"<epoch> <node>"`, with a TTL. It is taken atomically with `SET NX PX`
//! inside a Lua script that also draws the epoch from `arena:epoch:<code>`
//! (`INCR`), so epochs only grow and of any number of racing claims exactly
//! one wins. Only the holder of that exact value (node and epoch) may renew
//! or release it: a node whose lease expired and was taken by another
//! cannot renew the other's, even with the same node id, because the epoch
//! differs. A node that cannot renew before its lease runs out must stop
//! running the room (fencing); the caller does that. Taking, renewing and
//! handing over a lease wait for `--redis-wait-replicas` replicas
//! ([`Redis::run_replicated`]): a write a failover could lose never lets a
//! room run.

use std::sync::LazyLock;
use std::time::Duration;

use redis::Script;

use super::listing::Listing;
use super::redis::keys;
use super::redis::{Redis, RedisError, clocked_script, millis};

/// Who holds a room's lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub epoch: u64,
    pub node: String,
}

/// How long an epoch counter outlives its last claim or renewal: a code
/// reused within it continues the count.
const EPOCH_KEEP_MS: u64 = 24 * 3600 * 1000;

/// Takes a free lease: KEYS = lease, epoch counter; ARGV = node, ttl ms,
/// epoch keep ms, floor. Returns the new epoch (above `floor`, so a node
/// that held the room before an empty Redis came back still counts up),
/// or nil if the lease is held.
static CLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local epoch = redis.call('INCR', KEYS[2])
if epoch <= tonumber(ARGV[4]) then
  epoch = tonumber(ARGV[4]) + 1
  redis.call('SET', KEYS[2], epoch)
end
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('SET', KEYS[1], epoch .. ' ' .. ARGV[1], 'NX', 'PX', ARGV[2])
return epoch
",
    )
});

/// Extends a lease its caller holds: KEYS = lease, epoch counter; ARGV =
/// held value, ttl ms, epoch keep ms. Returns 1, or 0 if not held.
static RENEW: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return redis.call('PEXPIRE', KEYS[1], ARGV[2])
",
    )
});

/// Gives back a lease its caller holds: KEYS = lease; ARGV = held value.
/// Returns 1, or 0 if not held.
static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])
",
    )
});

/// Hands a lease its caller holds to another node, with the room's state:
/// KEYS = lease, epoch counter, state, saved rooms' index, input log, its
/// tip; ARGV = held value, new node, ttl ms, epoch keep ms, state, the
/// room's code. Returns the new epoch, or 0 if not held. The input log
/// goes: the state is the room as it is.
static TRANSFER: LazyLock<Script> = LazyLock::new(|| {
    clocked_script(
        r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[5], KEYS[6])
local epoch = redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
redis.call('SET', KEYS[3], ARGV[5], 'PX', ARGV[4])
index(KEYS[4], ARGV[6], ARGV[4])
redis.call('SET', KEYS[1], epoch .. ' ' .. ARGV[2], 'PX', ARGV[3])
return epoch
",
    )
});

/// Saves a room's state if the caller holds its lease: KEYS = lease,
/// state, saved rooms' index, input log, its tip; ARGV = held value, keep
/// ms, state, the room's code. Returns 1, or 0 if not held. The input log
/// goes: it followed an older state.
static SAVE: LazyLock<Script> = LazyLock::new(|| {
    clocked_script(
        r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[4], KEYS[5])
redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[2])
index(KEYS[3], ARGV[4], ARGV[2])
return 1
",
    )
});

/// Forgets a closed room: its state, listing, epoch counter, input log,
/// index entries and lease, if the caller holds the lease: KEYS = lease,
/// state, listing, epoch counter, saved rooms' index, listings' index,
/// input log, its tip; ARGV = held value, the room's code.
static FORGET: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4], KEYS[7], KEYS[8])
redis.call('ZREM', KEYS[5], ARGV[2])
redis.call('ZREM', KEYS[6], ARGV[2])
return redis.call('DEL', KEYS[1])
",
    )
});

/// Lists a public room for `ttl` if the caller holds its lease: KEYS =
/// lease, listing, the listing's index; ARGV = held value, ttl ms, the
/// listing's JSON, the room's code.
static PUBLISH: LazyLock<Script> = LazyLock::new(|| {
    clocked_script(
        r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[2])
index(KEYS[3], ARGV[4], ARGV[2])
return 1
",
    )
});

/// Room leases and saved rooms.
#[derive(Clone)]
pub struct Leases(pub Redis);

impl Leases {
    /// Claims room `code` for `node` for `ttl`: its epoch, or `None` when
    /// another holds it.
    pub async fn claim(&self, code: &str, node: &str, ttl: Duration) -> Result<Option<u64>, RedisError> {
        self.claim_above(code, node, ttl, 0).await
    }

    /// Whether room `code` has a saved state (without reading it).
    pub async fn is_saved(&self, code: &str) -> Result<bool, RedisError> {
        self.0.exists(&keys::state(code)).await
    }

    /// Room `code`'s last saved state and its input log since (each
    /// tick's record), read in one step.
    pub async fn load_with_log(&self, code: &str) -> Result<Option<(Vec<u8>, Vec<Vec<u8>>)>, RedisError> {
        let mut pipe = redis::pipe();
        pipe.atomic().get(keys::state(code)).lrange(keys::log(code), 0, -1);
        let (state, log): (Option<Vec<u8>>, Vec<Vec<u8>>) = self.0.pipe(&pipe).await?;
        Ok(state.map(|state| (state, log)))
    }

    /// Codes of every saved room (held or not).
    pub async fn saved(&self) -> Result<Vec<String>, RedisError> {
        self.0.members(&keys::SAVED).await
    }
}

/// What a lease holder asks of Redis: [`Leases`] is the real store; the
/// steward's tests run on an in-memory twin with the same rules
/// (`cluster::twin`).
pub trait LeaseStore: Send + Sync + 'static {
    /// Extends `lease` on `code` by `ttl` from now; `false` if it is no
    /// longer held as `lease` (it expired, and perhaps another took it).
    fn renew(
        &self,
        code: &str,
        lease: &Lease,
        ttl: Duration,
    ) -> impl Future<Output = Result<bool, RedisError>> + Send;

    /// Who holds `code`'s lease now, if anyone.
    fn owner(&self, code: &str) -> impl Future<Output = Result<Option<Lease>, RedisError>> + Send;

    /// [`Leases::claim`] with an epoch above `floor` (the last one this
    /// node held, in case Redis lost its count).
    fn claim_above(
        &self,
        code: &str,
        node: &str,
        ttl: Duration,
        floor: u64,
    ) -> impl Future<Output = Result<Option<u64>, RedisError>> + Send;

    /// Hands `lease` on `code` to `node` for `ttl` with the room's `state`
    /// (a drain): the new holder's epoch, or `None` if `lease` was no
    /// longer held.
    fn transfer(
        &self,
        code: &str,
        lease: &Lease,
        node: &str,
        ttl: Duration,
        state: &[u8],
    ) -> impl Future<Output = Result<Option<u64>, RedisError>> + Send;

    /// Saves room `code`'s `state` (a checkpoint), kept for `keep`, if
    /// `lease` still holds it: `false` if not (nothing was written).
    fn save(
        &self,
        code: &str,
        lease: &Lease,
        state: &[u8],
        keep: Duration,
    ) -> impl Future<Output = Result<bool, RedisError>> + Send;

    /// Gives `lease` on `code` back; `false` if it was no longer held so.
    fn release(&self, code: &str, lease: &Lease) -> impl Future<Output = Result<bool, RedisError>> + Send;

    /// A room closed for good: its state, listing and lease go, if `lease`
    /// still holds it.
    fn forget(&self, code: &str, lease: &Lease) -> impl Future<Output = Result<bool, RedisError>> + Send;

    /// Publishes `listing` for `ttl`, if `lease` still holds its room.
    fn publish(
        &self,
        listing: &Listing,
        lease: &Lease,
        ttl: Duration,
    ) -> impl Future<Output = Result<bool, RedisError>> + Send;
}

impl LeaseStore for Leases {
    async fn renew(&self, code: &str, lease: &Lease, ttl: Duration) -> Result<bool, RedisError> {
        let renewed: i64 = self
            .0
            .run_replicated(&RENEW, |call| {
                call.key(keys::lease(code)).key(keys::epoch(code));
                call.arg(value(lease)).arg(millis(ttl)).arg(EPOCH_KEEP_MS);
            })
            .await?;
        Ok(renewed == 1)
    }

    async fn owner(&self, code: &str) -> Result<Option<Lease>, RedisError> {
        let held: Option<String> = self.0.get(&keys::lease(code)).await?;
        Ok(held.as_deref().and_then(parse))
    }

    async fn claim_above(
        &self,
        code: &str,
        node: &str,
        ttl: Duration,
        floor: u64,
    ) -> Result<Option<u64>, RedisError> {
        self.0
            .run_replicated(&CLAIM, |call| {
                call.key(keys::lease(code)).key(keys::epoch(code));
                call.arg(node).arg(millis(ttl)).arg(EPOCH_KEEP_MS).arg(floor);
            })
            .await
    }

    async fn transfer(
        &self,
        code: &str,
        lease: &Lease,
        node: &str,
        ttl: Duration,
        state: &[u8],
    ) -> Result<Option<u64>, RedisError> {
        let epoch: u64 = self
            .0
            .run_replicated(&TRANSFER, |call| {
                call.key(keys::lease(code))
                    .key(keys::epoch(code))
                    .key(keys::state(code))
                    .key(keys::SAVED.set)
                    .key(keys::log(code))
                    .key(keys::log_tip(code));
                call.arg(value(lease)).arg(node).arg(millis(ttl)).arg(EPOCH_KEEP_MS).arg(state).arg(code);
            })
            .await?;
        Ok((epoch > 0).then_some(epoch))
    }

    async fn save(
        &self,
        code: &str,
        lease: &Lease,
        state: &[u8],
        keep: Duration,
    ) -> Result<bool, RedisError> {
        let saved: i64 = self
            .0
            .run(&SAVE, |call| {
                call.key(keys::lease(code)).key(keys::state(code)).key(keys::SAVED.set);
                call.key(keys::log(code)).key(keys::log_tip(code));
                call.arg(value(lease)).arg(millis(keep)).arg(state).arg(code);
            })
            .await?;
        Ok(saved == 1)
    }

    async fn release(&self, code: &str, lease: &Lease) -> Result<bool, RedisError> {
        let released: i64 = self
            .0
            .run(&RELEASE, |call| {
                call.key(keys::lease(code)).arg(value(lease));
            })
            .await?;
        Ok(released == 1)
    }

    async fn forget(&self, code: &str, lease: &Lease) -> Result<bool, RedisError> {
        let forgot: i64 = self
            .0
            .run(&FORGET, |call| {
                call.key(keys::lease(code))
                    .key(keys::state(code))
                    .key(keys::listing(code))
                    .key(keys::epoch(code));
                call.key(keys::SAVED.set).key(keys::LISTED.set).key(keys::log(code)).key(keys::log_tip(code));
                call.arg(value(lease)).arg(code);
            })
            .await?;
        Ok(forgot == 1)
    }

    async fn publish(&self, listing: &Listing, lease: &Lease, ttl: Duration) -> Result<bool, RedisError> {
        let json = serde_json::to_string(listing).unwrap_or_default();

        let published: i64 = self
            .0
            .run(&PUBLISH, |call| {
                call.key(keys::lease(&listing.code)).key(keys::listing(&listing.code)).key(keys::LISTED.set);
                call.arg(value(lease)).arg(millis(ttl)).arg(json).arg(&listing.code);
            })
            .await?;
        Ok(published == 1)
    }
}

fn value(lease: &Lease) -> String {
    held(lease.epoch, &lease.node)
}

/// The lease key's value while `node` holds it under `epoch`.
pub fn held(epoch: u64, node: &str) -> String {
    format!("{epoch} {node}")
}

fn parse(value: &str) -> Option<Lease> {
    let (epoch, node) = value.split_once(' ')?;
    Some(Lease { epoch: epoch.parse().ok()?, node: node.to_owned() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_value_is_its_epoch_then_its_node() {
        let lease = Lease { epoch: 42, node: "eu-1 b".into() };
        assert_eq!(value(&lease), "42 eu-1 b");
        assert_eq!(parse(&value(&lease)), Some(lease));
        assert_eq!(parse("x node"), None);
    }
}
