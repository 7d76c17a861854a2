//! Room leases in Redis, the ground floor of cluster mode: which node runs
//! which room, fenced by epochs, and which nodes are alive.
//!
//! A room code's lease is the key `arena:lease:<code>` holding
//! `"<epoch> <node>"`, with a TTL. It is taken atomically with `SET NX PX`
//! inside a Lua script that also draws the epoch from `arena:epoch:<code>`
//! (`INCR`), so epochs only grow and of any number of racing claims exactly
//! one wins. Only the holder of that exact value (node and epoch) may renew
//! or release it: a node whose lease expired and was taken by another
//! cannot renew the other's, even with the same node id, because the epoch
//! differs. A node that cannot renew before its lease runs out must stop
//! running the room (fencing); the caller does that.
//!
//! Nodes register with `arena:node:<id>` holding their URL, also with a TTL,
//! so a dead node disappears by itself within one lease.

use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::{AsyncCommands, Script};

/// Why a lease operation did not get an answer.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
}

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
const CLAIM: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local epoch = redis.call('INCR', KEYS[2])
if epoch <= tonumber(ARGV[4]) then
  epoch = tonumber(ARGV[4]) + 1
  redis.call('SET', KEYS[2], epoch)
end
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('SET', KEYS[1], epoch .. ' ' .. ARGV[1], 'NX', 'PX', ARGV[2])
return epoch
";

/// Extends a lease its caller holds: KEYS = lease, epoch counter; ARGV =
/// held value, ttl ms, epoch keep ms. Returns 1, or 0 if not held.
const RENEW: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return redis.call('PEXPIRE', KEYS[1], ARGV[2])
";

/// Gives back a lease its caller holds: KEYS = lease; ARGV = held value.
/// Returns 1, or 0 if not held.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])
";

/// Hands a lease its caller holds to another node, with the room's state:
/// KEYS = lease, epoch counter, state; ARGV = held value, new node, ttl
/// ms, epoch keep ms, state. Returns the new epoch, or 0 if not held.
const TRANSFER: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local epoch = redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
redis.call('SET', KEYS[3], ARGV[5], 'PX', ARGV[4])
redis.call('SET', KEYS[1], epoch .. ' ' .. ARGV[2], 'PX', ARGV[3])
return epoch
";

/// Saves a room's state if the caller holds its lease: KEYS = lease,
/// state; ARGV = held value, keep ms, state. Returns 1, or 0 if not held.
const SAVE: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[2])
return 1
";

/// Forgets a closed room: its state, listing and lease, if the caller
/// holds the lease: KEYS = lease, state, listing; ARGV = held value.
const FORGET: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[2], KEYS[3])
return redis.call('DEL', KEYS[1])
";

/// Lists a public room for `ttl` if the caller holds its lease: KEYS =
/// lease, listing; ARGV = held value, ttl ms, the listing's JSON.
const LIST: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[2])
return 1
";

/// Reserves a seat in a listed room for a quick-joiner on its way there:
/// KEYS = listing, reservations; ARGV = a unique member, hold ms. The seat
/// counts against the room's size until the room's own count (renewed with
/// its lease) can include the player. Returns 1, 0 if full, -1 if unlisted.
const RESERVE: &str = r"
local listed = redis.call('GET', KEYS[1])
if not listed then return -1 end
local room = cjson.decode(listed)
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if room.players + redis.call('ZCARD', KEYS[2]) >= room.room_size then return 0 end
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return 1
";

/// The leases and the node registry, over one self-healing connection.
#[derive(Clone)]
pub struct Leases {
    redis: ConnectionManager,
    /// Every operation gives up after this long (a partitioned Redis must
    /// not hold a room's renewal past its lease).
    timeout: Duration,
}

impl Leases {
    /// Connects to `url` (`redis://host:port[/db]`); operations time out
    /// after `timeout`.
    pub async fn connect(url: &str, timeout: Duration) -> Result<Self, LeaseError> {
        let client = redis::Client::open(url)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_max_delay(Duration::from_secs(2));
        let redis = within(timeout, ConnectionManager::new_with_config(client, config)).await?;
        Ok(Leases { redis, timeout })
    }

    /// Claims room `code` for `node` for `ttl`: its epoch, or `None` when
    /// another holds it.
    pub async fn claim(&self, code: &str, node: &str, ttl: Duration) -> Result<Option<u64>, LeaseError> {
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
    ) -> Result<Option<u64>, LeaseError> {
        let mut redis = self.redis.clone();
        let script = Script::new(CLAIM);
        let mut call = script.key(lease_key(code));
        call.key(epoch_key(code)).arg(node).arg(millis(ttl)).arg(EPOCH_KEEP_MS).arg(floor);
        within(self.timeout, call.invoke_async(&mut redis)).await
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
    ) -> Result<Option<u64>, LeaseError> {
        let mut redis = self.redis.clone();
        let script = Script::new(TRANSFER);
        let mut call = script.key(lease_key(code));
        call.key(epoch_key(code)).key(state_key(code));
        call.arg(value(lease)).arg(node).arg(millis(ttl)).arg(EPOCH_KEEP_MS).arg(state);
        let epoch: u64 = within(self.timeout, call.invoke_async(&mut redis)).await?;
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
    ) -> Result<bool, LeaseError> {
        let mut redis = self.redis.clone();
        let script = Script::new(SAVE);
        let mut call = script.key(lease_key(code));
        call.key(state_key(code)).arg(value(lease)).arg(millis(keep)).arg(state);
        let saved: i64 = within(self.timeout, call.invoke_async(&mut redis)).await?;
        Ok(saved == 1)
    }

    /// Room `code`'s last saved state, if any.
    pub async fn load(&self, code: &str) -> Result<Option<Vec<u8>>, LeaseError> {
        let mut redis = self.redis.clone();
        within(self.timeout, redis.get(state_key(code))).await
    }

    /// A room closed for good: its state, listing and lease go, if `lease`
    /// still holds it.
    pub async fn forget(&self, code: &str, lease: &Lease) -> Result<bool, LeaseError> {
        let mut redis = self.redis.clone();
        let script = Script::new(FORGET);
        let mut call = script.key(lease_key(code));
        call.key(state_key(code)).key(listing_key(code)).arg(value(lease));
        let forgot: i64 = within(self.timeout, call.invoke_async(&mut redis)).await?;
        Ok(forgot == 1)
    }

    /// Lists public room `code` as `listing` (JSON with at least `players`
    /// and `room_size`) for `ttl`, if `lease` still holds it.
    pub async fn list(
        &self,
        code: &str,
        lease: &Lease,
        listing: &str,
        ttl: Duration,
    ) -> Result<bool, LeaseError> {
        let mut redis = self.redis.clone();
        let script = Script::new(LIST);
        let mut call = script.key(lease_key(code));
        call.key(listing_key(code)).arg(value(lease)).arg(millis(ttl)).arg(listing);
        let listed: i64 = within(self.timeout, call.invoke_async(&mut redis)).await?;
        Ok(listed == 1)
    }

    /// Every listed public room's JSON.
    pub async fn listings(&self) -> Result<Vec<String>, LeaseError> {
        self.values(LISTING_PREFIX).await
    }

    /// The value of every key under `prefix` (one that expired between the
    /// scan and the read is left out).
    async fn values(&self, prefix: &str) -> Result<Vec<String>, LeaseError> {
        let keys = self.keys(prefix).await?;
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut redis = self.redis.clone();
        let values: Vec<Option<String>> = within(self.timeout, redis.mget(&keys)).await?;
        Ok(values.into_iter().flatten().collect())
    }

    /// Reserves a seat in listed room `code` for `hold`; `Some(false)` if
    /// it is full, `None` if it is not listed.
    pub async fn reserve(&self, code: &str, hold: Duration) -> Result<Option<bool>, LeaseError> {
        let mut redis = self.redis.clone();
        let script = Script::new(RESERVE);
        let member = format!("{:016x}", getrandom::u64().unwrap_or_default());
        let mut call = script.key(listing_key(code));
        call.key(format!("arena:reserved:{code}")).arg(member).arg(millis(hold));
        let reserved: i64 = within(self.timeout, call.invoke_async(&mut redis)).await?;
        Ok(match reserved {
            1 => Some(true),
            0 => Some(false),
            _ => None,
        })
    }

    /// Codes of every saved room (held or not).
    pub async fn saved(&self) -> Result<Vec<String>, LeaseError> {
        let keys = self.keys(STATE_PREFIX).await?;
        Ok(keys.iter().filter_map(|key| key.strip_prefix(STATE_PREFIX)).map(str::to_owned).collect())
    }

    /// Every key under `prefix` (SCAN: Redis keeps serving others meanwhile).
    async fn keys(&self, prefix: &str) -> Result<Vec<String>, LeaseError> {
        let mut redis = self.redis.clone();
        within(self.timeout, async {
            let mut keys = Vec::new();
            let mut scan = redis.scan_match::<_, String>(format!("{prefix}*")).await?;
            while let Some(key) = futures_util::StreamExt::next(&mut scan).await {
                keys.push(key?);
            }
            Ok::<_, redis::RedisError>(keys)
        })
        .await
    }

    /// How long one round trip to Redis takes now (a `PING`).
    pub async fn ping(&self) -> Result<Duration, LeaseError> {
        let mut redis = self.redis.clone();
        let started = std::time::Instant::now();
        within(self.timeout, redis::cmd("PING").query_async::<()>(&mut redis)).await?;
        Ok(started.elapsed())
    }

    /// Extends `lease` on `code` by `ttl` from now; `false` if it is no
    /// longer held as `lease` (it expired, and perhaps another took it).
    pub async fn renew(&self, code: &str, lease: &Lease, ttl: Duration) -> Result<bool, LeaseError> {
        let mut redis = self.redis.clone();
        let script = Script::new(RENEW);
        let mut call = script.key(lease_key(code));
        call.key(epoch_key(code)).arg(value(lease)).arg(millis(ttl)).arg(EPOCH_KEEP_MS);
        let renewed: i64 = within(self.timeout, call.invoke_async(&mut redis)).await?;
        Ok(renewed == 1)
    }

    /// Gives `lease` on `code` back; `false` if it was no longer held so.
    pub async fn release(&self, code: &str, lease: &Lease) -> Result<bool, LeaseError> {
        let mut redis = self.redis.clone();
        let script = Script::new(RELEASE);
        let mut call = script.key(lease_key(code));
        call.arg(value(lease));
        let released: i64 = within(self.timeout, call.invoke_async(&mut redis)).await?;
        Ok(released == 1)
    }

    /// Who holds `code`'s lease now, if anyone.
    pub async fn owner(&self, code: &str) -> Result<Option<Lease>, LeaseError> {
        let mut redis = self.redis.clone();
        let held: Option<String> = within(self.timeout, redis.get(lease_key(code))).await?;
        Ok(held.as_deref().and_then(parse))
    }

    /// Registers (or keeps alive) `node`, described by `info` (its URL, or
    /// what the cluster shows of it), for `ttl`.
    pub async fn heartbeat(&self, node: &str, info: &str, ttl: Duration) -> Result<(), LeaseError> {
        let mut redis = self.redis.clone();
        within(self.timeout, redis.pset_ex::<_, _, ()>(node_key(node), info, millis(ttl))).await
    }

    /// Takes `node` out of the registry at once (a clean shutdown).
    pub async fn leave(&self, node: &str) -> Result<(), LeaseError> {
        let mut redis = self.redis.clone();
        within(self.timeout, redis.del::<_, ()>(node_key(node))).await
    }

    /// Publishes `node`'s report for the operators' page, for `ttl`.
    pub async fn report(&self, node: &str, report: &str, ttl: Duration) -> Result<(), LeaseError> {
        let mut redis = self.redis.clone();
        within(self.timeout, redis.pset_ex::<_, _, ()>(format!("{REPORT_PREFIX}{node}"), report, millis(ttl)))
            .await
    }

    /// Every live node's last report.
    pub async fn reports(&self) -> Result<Vec<String>, LeaseError> {
        self.values(REPORT_PREFIX).await
    }

    /// Queues an operator's order for `node` (it takes its orders on each
    /// heartbeat). At most 64 wait; an order nobody takes
    /// within a minute is dropped.
    pub async fn order(&self, node: &str, order: &str) -> Result<(), LeaseError> {
        let mut redis = self.redis.clone();
        let key = format!("{ORDERS_PREFIX}{node}");
        let mut pipe = redis::pipe();
        pipe.atomic().rpush(&key, order).ltrim(&key, -MAX_ORDERS, -1).pexpire(&key, 60_000);
        within(self.timeout, pipe.query_async::<()>(&mut redis)).await
    }

    /// Takes every order waiting for `node`, oldest first, and says
    /// whether the operators' page is open (so the node reports).
    pub async fn take_orders(&self, node: &str) -> Result<(Vec<String>, bool), LeaseError> {
        let mut redis = self.redis.clone();
        let key = format!("{ORDERS_PREFIX}{node}");
        let mut pipe = redis::pipe();
        pipe.atomic().lrange(&key, 0, -1).del(&key).ignore().exists(WATCHING_KEY);
        within(self.timeout, pipe.query_async(&mut redis)).await
    }

    /// Marks the operators' page open for `ttl`; whether it already was.
    pub async fn watch(&self, ttl: Duration) -> Result<bool, LeaseError> {
        let mut redis = self.redis.clone();
        let mut pipe = redis::pipe();
        pipe.atomic().exists(WATCHING_KEY).pset_ex(WATCHING_KEY, 1, millis(ttl)).ignore();
        let (was,): (bool,) = within(self.timeout, pipe.query_async(&mut redis)).await?;
        Ok(was)
    }

    /// The live nodes and what each registered, by id.
    pub async fn nodes(&self) -> Result<Vec<(String, String)>, LeaseError> {
        let keys = self.keys(NODE_PREFIX).await?;
        let mut redis = self.redis.clone();
        let mut nodes = Vec::with_capacity(keys.len());
        for key in keys {
            // A node that expired between the scan and the read is gone.
            let info: Option<String> = within(self.timeout, redis.get(&key)).await?;
            if let (Some(id), Some(info)) = (key.strip_prefix(NODE_PREFIX), info) {
                nodes.push((id.to_owned(), info));
            }
        }
        nodes.sort();
        Ok(nodes)
    }
}

const NODE_PREFIX: &str = "arena:node:";
const REPORT_PREFIX: &str = "arena:report:";
const ORDERS_PREFIX: &str = "arena:orders:";
/// Set while the operators' page is open somewhere.
const WATCHING_KEY: &str = "arena:admin:watching";
/// Most operator orders that wait for one node.
const MAX_ORDERS: isize = 64;
const STATE_PREFIX: &str = "arena:state:";
const LISTING_PREFIX: &str = "arena:public:";

fn state_key(code: &str) -> String {
    format!("{STATE_PREFIX}{code}")
}

fn listing_key(code: &str) -> String {
    format!("{LISTING_PREFIX}{code}")
}

fn lease_key(code: &str) -> String {
    format!("arena:lease:{code}")
}

fn epoch_key(code: &str) -> String {
    format!("arena:epoch:{code}")
}

fn node_key(node: &str) -> String {
    format!("{NODE_PREFIX}{node}")
}

fn value(lease: &Lease) -> String {
    format!("{} {}", lease.epoch, lease.node)
}

fn parse(value: &str) -> Option<Lease> {
    let (epoch, node) = value.split_once(' ')?;
    Some(Lease { epoch: epoch.parse().ok()?, node: node.to_owned() })
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX).max(1)
}

async fn within<T>(
    timeout: Duration,
    operation: impl Future<Output = Result<T, redis::RedisError>>,
) -> Result<T, LeaseError> {
    match tokio::time::timeout(timeout, operation).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(LeaseError::Timeout(timeout)),
    }
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
        assert_eq!(millis(Duration::from_micros(10)), 1, "never a zero TTL");
    }
}
