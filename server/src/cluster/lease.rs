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

use super::redis::keys;
use super::redis::{Redis, RedisError, millis};

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
/// KEYS = lease, epoch counter, state, saved rooms' index; ARGV = held
/// value, new node, ttl ms, epoch keep ms, state, the room's code. Returns
/// the new epoch, or 0 if not held.
static TRANSFER: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local epoch = redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
redis.call('SET', KEYS[3], ARGV[5], 'PX', ARGV[4])
redis.call('ZADD', KEYS[4], now + tonumber(ARGV[4]), ARGV[6])
redis.call('SET', KEYS[1], epoch .. ' ' .. ARGV[2], 'PX', ARGV[3])
return epoch
",
    )
});

/// Saves a room's state if the caller holds its lease: KEYS = lease,
/// state, saved rooms' index; ARGV = held value, keep ms, state, the
/// room's code. Returns 1, or 0 if not held.
static SAVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[2])
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[2]), ARGV[4])
return 1
",
    )
});

/// Forgets a closed room: its state, listing, epoch counter, index
/// entries and lease, if the caller holds the lease: KEYS = lease, state,
/// listing, epoch counter, saved rooms' index, listings' index; ARGV =
/// held value, the room's code.
static FORGET: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])
redis.call('ZREM', KEYS[5], ARGV[2])
redis.call('ZREM', KEYS[6], ARGV[2])
return redis.call('DEL', KEYS[1])
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

    /// [`Leases::claim`] with an epoch above `floor` (the last one this
    /// node held, in case Redis lost its count).
    pub async fn claim_above(
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

    /// Hands `lease` on `code` to `node` for `ttl` with the room's `state`
    /// (a drain): the new holder's epoch, or `None` if `lease` was no
    /// longer held.
    pub async fn transfer(
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
                    .key(keys::SAVED.set);
                call.arg(value(lease)).arg(node).arg(millis(ttl)).arg(EPOCH_KEEP_MS).arg(state).arg(code);
            })
            .await?;
        Ok((epoch > 0).then_some(epoch))
    }

    /// Saves room `code`'s `state` (a checkpoint), kept for `keep`, if
    /// `lease` still holds it: `false` if not (nothing was written).
    pub async fn save(
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
                call.arg(value(lease)).arg(millis(keep)).arg(state).arg(code);
            })
            .await?;
        Ok(saved == 1)
    }

    /// Room `code`'s last saved state, if any.
    pub async fn load(&self, code: &str) -> Result<Option<Vec<u8>>, RedisError> {
        self.0.get(&keys::state(code)).await
    }

    /// A room closed for good: its state, listing and lease go, if `lease`
    /// still holds it.
    pub async fn forget(&self, code: &str, lease: &Lease) -> Result<bool, RedisError> {
        let forgot: i64 = self
            .0
            .run(&FORGET, |call| {
                call.key(keys::lease(code))
                    .key(keys::state(code))
                    .key(keys::listing(code))
                    .key(keys::epoch(code));
                call.key(keys::SAVED.set).key(keys::LISTED.set).arg(value(lease)).arg(code);
            })
            .await?;
        Ok(forgot == 1)
    }

    /// Codes of every saved room (held or not).
    pub async fn saved(&self) -> Result<Vec<String>, RedisError> {
        self.0.members(&keys::SAVED).await
    }

    /// Extends `lease` on `code` by `ttl` from now; `false` if it is no
    /// longer held as `lease` (it expired, and perhaps another took it).
    pub async fn renew(&self, code: &str, lease: &Lease, ttl: Duration) -> Result<bool, RedisError> {
        let renewed: i64 = self
            .0
            .run_replicated(&RENEW, |call| {
                call.key(keys::lease(code)).key(keys::epoch(code));
                call.arg(value(lease)).arg(millis(ttl)).arg(EPOCH_KEEP_MS);
            })
            .await?;
        Ok(renewed == 1)
    }

    /// Gives `lease` on `code` back; `false` if it was no longer held so.
    pub async fn release(&self, code: &str, lease: &Lease) -> Result<bool, RedisError> {
        let released: i64 = self
            .0
            .run(&RELEASE, |call| {
                call.key(keys::lease(code)).arg(value(lease));
            })
            .await?;
        Ok(released == 1)
    }

    /// Who holds `code`'s lease now, if anyone.
    pub async fn owner(&self, code: &str) -> Result<Option<Lease>, RedisError> {
        let held: Option<String> = self.0.get(&keys::lease(code)).await?;
        Ok(held.as_deref().and_then(parse))
    }
}

fn value(lease: &Lease) -> String {
    format!("{} {}", lease.epoch, lease.node)
}

fn parse(value: &str) -> Option<Lease> {
    let (epoch, node) = value.split_once(' ')?;
    Some(Lease { epoch: epoch.parse().ok()?, node: node.to_owned() })
}

/// The key of `code`'s lease and its value when `lease` holds it: a
/// listing is written only by the lease's holder.
pub(super) fn held(code: &str, lease: &Lease) -> (String, String) {
    (keys::lease(code), value(lease))
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
