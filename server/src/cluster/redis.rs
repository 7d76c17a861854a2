//! The cluster's Redis, the ground floor of cluster mode: one
//! self-healing connection with a deadline on every call, and one way to
//! run a Lua script ([`Redis::run`]). The small gateways above it say what
//! the keys mean: [`super::lease::Leases`] (who runs which room, and its
//! saved state), [`super::listing::Listings`] (public rooms for
//! quick-joins elsewhere), [`super::registry::Nodes`] (which nodes are
//! alive) and [`super::orders::Orders`] (the operators' reports and
//! orders).

use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::{AsyncCommands, FromRedisValue, Script, ScriptInvocation};

/// The cluster's Redis did not answer.
#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
}

/// One connection to the cluster's Redis; cheap to clone.
#[derive(Clone)]
pub struct Redis {
    conn: ConnectionManager,
    /// Every call gives up after this long (a partitioned Redis must not
    /// hold a room's renewal past its lease).
    timeout: Duration,
}

impl Redis {
    /// Connects to `url` (`redis://host:port[/db]`); calls time out after
    /// `timeout`.
    pub async fn connect(url: &str, timeout: Duration) -> Result<Self, RedisError> {
        let client = redis::Client::open(url)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_max_delay(Duration::from_secs(2));
        let conn = within(timeout, ConnectionManager::new_with_config(client, config)).await?;
        Ok(Redis { conn, timeout })
    }

    /// Runs `script` with the keys and arguments `call` adds.
    pub async fn run<T: FromRedisValue>(
        &self,
        script: &Script,
        call: impl FnOnce(&mut ScriptInvocation<'_>),
    ) -> Result<T, RedisError> {
        let mut invocation = script.prepare_invoke();
        call(&mut invocation);
        let mut conn = self.conn.clone();
        within(self.timeout, invocation.invoke_async(&mut conn)).await
    }

    /// Runs a pipeline (atomic where it says so).
    pub async fn pipe<T: FromRedisValue>(&self, pipe: &redis::Pipeline) -> Result<T, RedisError> {
        let mut conn = self.conn.clone();
        within(self.timeout, pipe.query_async(&mut conn)).await
    }

    /// `GET key`.
    pub async fn get<T: FromRedisValue>(&self, key: &str) -> Result<T, RedisError> {
        let mut conn = self.conn.clone();
        within(self.timeout, conn.get(key)).await
    }

    /// `SET key value PX ttl`.
    pub async fn set_for(&self, key: &str, value: &str, ttl: Duration) -> Result<(), RedisError> {
        let mut conn = self.conn.clone();
        within(self.timeout, conn.pset_ex::<_, _, ()>(key, value, millis(ttl))).await
    }

    /// `DEL key`.
    pub async fn del(&self, key: &str) -> Result<(), RedisError> {
        let mut conn = self.conn.clone();
        within(self.timeout, conn.del::<_, ()>(key)).await
    }

    /// How long one round trip takes now (a `PING`).
    pub async fn ping(&self) -> Result<Duration, RedisError> {
        let mut conn = self.conn.clone();
        let started = std::time::Instant::now();
        within(self.timeout, redis::cmd("PING").query_async::<()>(&mut conn)).await?;
        Ok(started.elapsed())
    }

    /// Every key under `prefix` (SCAN: Redis keeps serving others meanwhile).
    pub async fn keys(&self, prefix: &str) -> Result<Vec<String>, RedisError> {
        let mut conn = self.conn.clone();
        within(self.timeout, async {
            let mut keys = Vec::new();
            let mut scan = conn.scan_match::<_, String>(format!("{prefix}*")).await?;
            while let Some(key) = futures_util::StreamExt::next(&mut scan).await {
                keys.push(key?);
            }
            Ok::<_, redis::RedisError>(keys)
        })
        .await
    }

    /// The value of every key under `prefix` (one that expired between the
    /// scan and the read is left out).
    pub async fn values(&self, prefix: &str) -> Result<Vec<String>, RedisError> {
        Ok(self.keyed_values(prefix).await?.into_iter().map(|(_, value)| value).collect())
    }

    /// Every key under `prefix` with its value, by key.
    pub async fn keyed_values(&self, prefix: &str) -> Result<Vec<(String, String)>, RedisError> {
        let keys = self.keys(prefix).await?;
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.conn.clone();
        let values: Vec<Option<String>> = within(self.timeout, conn.mget(&keys)).await?;
        let mut pairs: Vec<(String, String)> =
            keys.into_iter().zip(values).filter_map(|(key, value)| Some((key, value?))).collect();
        pairs.sort();
        Ok(pairs)
    }
}

/// A room's keys, in one place (the gateways above share them: forgetting
/// a room deletes its listing too).
pub mod keys {
    pub const STATE_PREFIX: &str = "arena:state:";
    pub const LISTING_PREFIX: &str = "arena:public:";

    /// Who holds the room: `"<epoch> <node>"`, with a TTL.
    pub fn lease(code: &str) -> String {
        format!("arena:lease:{code}")
    }

    /// The room's epoch counter.
    pub fn epoch(code: &str) -> String {
        format!("arena:epoch:{code}")
    }

    /// The room's last saved state.
    pub fn state(code: &str) -> String {
        format!("{STATE_PREFIX}{code}")
    }

    /// A public room's line in the listing.
    pub fn listing(code: &str) -> String {
        format!("{LISTING_PREFIX}{code}")
    }

    /// Seats reserved in a listed room for quick-joiners on their way.
    pub fn reserved(code: &str) -> String {
        format!("arena:reserved:{code}")
    }
}

/// A duration as Redis's milliseconds, never 0 (a zero TTL is an error).
pub fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX).max(1)
}

async fn within<T>(
    timeout: Duration,
    operation: impl Future<Output = Result<T, redis::RedisError>>,
) -> Result<T, RedisError> {
    match tokio::time::timeout(timeout, operation).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(RedisError::Timeout(timeout)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_duration_is_never_a_zero_ttl() {
        assert_eq!(millis(Duration::from_micros(10)), 1);
        assert_eq!(millis(Duration::from_secs(3)), 3_000);
    }
}
