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
/// epoch keep ms. Returns the new epoch, or nil if the lease is held.
const CLAIM: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local epoch = redis.call('INCR', KEYS[2])
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
        let mut redis = self.redis.clone();
        let script = Script::new(CLAIM);
        let mut call = script.key(lease_key(code));
        call.key(epoch_key(code)).arg(node).arg(millis(ttl)).arg(EPOCH_KEEP_MS);
        within(self.timeout, call.invoke_async(&mut redis)).await
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

    /// The live nodes and what each registered, by id.
    pub async fn nodes(&self) -> Result<Vec<(String, String)>, LeaseError> {
        let mut redis = self.redis.clone();
        let keys: Vec<String> = within(self.timeout, async {
            let mut keys = Vec::new();
            let mut scan = redis.scan_match::<_, String>(format!("{NODE_PREFIX}*")).await?;
            while let Some(key) = futures_util::StreamExt::next(&mut scan).await {
                keys.push(key?);
            }
            Ok::<_, redis::RedisError>(keys)
        })
        .await?;
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
