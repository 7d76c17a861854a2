//! The cluster's Redis, the ground floor of cluster mode: one
//! self-healing connection with a deadline on every call, and one way to
//! run a Lua script ([`Redis::run`]). The small gateways above it say what
//! the keys mean: [`super::lease::Leases`] (who runs which room, and its
//! saved state), [`super::listing::Listings`] (public rooms for
//! quick-joins elsewhere), [`super::registry::Nodes`] (which nodes are
//! alive) and [`super::orders::Orders`] (the operators' reports and
//! orders).

use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};
use redis::{
    AsyncCommands, Client, FromRedisValue, RedisConnectionInfo, Script, ScriptInvocation, TlsCertificates,
};

use crate::config::RedisSource;

/// The cluster's Redis did not answer, or not as it must.
#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
    #[error("only {acked} of the {wanted} replicas asked for have the write")]
    NotReplicated { acked: i64, wanted: u8 },
    #[error("the Redis CA file: {0}")]
    Ca(#[from] std::io::Error),
}

/// How often a node asks the Sentinels where the primary is.
const FOLLOW_EVERY: Duration = Duration::from_millis(250);

/// One connection to the cluster's Redis; cheap to clone. Behind Sentinels
/// it is replaced when a failover names another primary.
#[derive(Clone)]
pub struct Redis {
    conn: Arc<RwLock<ConnectionManager>>,
    /// Every call gives up after this long (a partitioned Redis must not
    /// hold a room's renewal past its lease).
    timeout: Duration,
    /// Replicas a lease write must reach before it counts (`WAIT`).
    wait_replicas: u8,
}

impl Redis {
    /// Connects to the Redis `source` names; calls time out after
    /// `timeout`; lease writes wait for `wait_replicas` replicas.
    pub async fn connect(
        source: &RedisSource,
        timeout: Duration,
        wait_replicas: u8,
    ) -> Result<Self, RedisError> {
        let (client, sentinel) = match source {
            RedisSource::Url { url, ca: None } => (Client::open(url.as_str())?, None),
            RedisSource::Url { url, ca: Some(ca) } => {
                let root_cert = Some(std::fs::read(ca)?);
                (Client::build_with_tls(url.as_str(), TlsCertificates { client_tls: None, root_cert })?, None)
            }
            RedisSource::Sentinel { sentinels, master, user, password } => {
                let mut sentinel = sentinel_client(sentinels, master, user.as_deref(), password.as_deref())?;
                let client = within(timeout, sentinel.async_get_client()).await?;
                (client, Some(sentinel))
            }
        };
        let addr = client.get_connection_info().addr().to_string();
        let conn = manager(client, timeout).await?;
        let redis = Redis { conn: Arc::new(RwLock::new(conn)), timeout, wait_replicas };
        if let Some(sentinel) = sentinel {
            tokio::spawn(follow(Arc::downgrade(&redis.conn), sentinel, addr, timeout));
        }
        Ok(redis)
    }

    /// The connection now.
    fn conn(&self) -> ConnectionManager {
        self.conn.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Runs `script` with the keys and arguments `call` adds.
    pub async fn run<T: FromRedisValue>(
        &self,
        script: &Script,
        call: impl FnOnce(&mut ScriptInvocation<'_>),
    ) -> Result<T, RedisError> {
        self.invoke(&mut self.conn(), script, call).await
    }

    /// [`Redis::run`] for a write that a room's right to run rests on (a
    /// lease taken, renewed or handed over): it counts only once
    /// `--redis-wait-replicas` replicas have it, so a failover cannot lose
    /// it. Otherwise `NotReplicated` (the write may be on the primary alone).
    pub async fn run_replicated<T: FromRedisValue>(
        &self,
        script: &Script,
        call: impl FnOnce(&mut ScriptInvocation<'_>),
    ) -> Result<T, RedisError> {
        // One connection for both: WAIT covers the writes made through it.
        let mut conn = self.conn();
        let answer = self.invoke(&mut conn, script, call).await?;
        if self.wait_replicas > 0 {
            let mut command = redis::cmd("WAIT");
            command.arg(self.wait_replicas).arg(millis(self.timeout * 3 / 4));
            let acked: i64 = within(self.timeout, command.query_async(&mut conn)).await?;
            if acked < i64::from(self.wait_replicas) {
                return Err(RedisError::NotReplicated { acked, wanted: self.wait_replicas });
            }
        }
        Ok(answer)
    }

    async fn invoke<T: FromRedisValue>(
        &self,
        conn: &mut ConnectionManager,
        script: &Script,
        call: impl FnOnce(&mut ScriptInvocation<'_>),
    ) -> Result<T, RedisError> {
        let mut invocation = script.prepare_invoke();
        call(&mut invocation);
        within(self.timeout, invocation.invoke_async(conn)).await
    }

    /// Runs a pipeline (atomic where it says so).
    pub async fn pipe<T: FromRedisValue>(&self, pipe: &redis::Pipeline) -> Result<T, RedisError> {
        let mut conn = self.conn();
        within(self.timeout, pipe.query_async(&mut conn)).await
    }

    /// `GET key`.
    pub async fn get<T: FromRedisValue>(&self, key: &str) -> Result<T, RedisError> {
        let mut conn = self.conn();
        within(self.timeout, conn.get(key)).await
    }

    /// `EXISTS key`.
    pub async fn exists(&self, key: &str) -> Result<bool, RedisError> {
        let mut conn = self.conn();
        within(self.timeout, conn.exists(key)).await
    }

    /// How long one round trip takes now (a `PING`).
    pub async fn ping(&self) -> Result<Duration, RedisError> {
        let mut conn = self.conn();
        let started = std::time::Instant::now();
        within(self.timeout, redis::cmd("PING").query_async::<()>(&mut conn)).await?;
        Ok(started.elapsed())
    }

    /// Sets `index`'s `member` to `value` for `ttl`, in the index too.
    pub async fn put(
        &self,
        index: &Index,
        member: &str,
        value: &str,
        ttl: Duration,
    ) -> Result<(), RedisError> {
        self.run(&PUT, |call| {
            call.key(index.key(member)).key(index.set).arg(member).arg(value).arg(millis(ttl));
        })
        .await
    }

    /// Takes `member` out of `index` at once, its value too.
    pub async fn remove(&self, index: &Index, member: &str) -> Result<(), RedisError> {
        let mut pipe = redis::pipe();
        pipe.atomic().del(index.key(member)).ignore().zrem(index.set, member).ignore();
        self.pipe(&pipe).await
    }

    /// `index`'s live members (the lapsed ones are dropped on the way).
    pub async fn members(&self, index: &Index) -> Result<Vec<String>, RedisError> {
        self.run(&MEMBERS, |call| {
            call.key(index.set).arg(MAX_INDEX_READ);
        })
        .await
    }

    /// `index`'s live members with their values, by member (a member whose
    /// value is gone is left out).
    pub async fn entries(&self, index: &Index) -> Result<Vec<(String, String)>, RedisError> {
        let flat: Vec<String> = self
            .run(&ENTRIES, |call| {
                call.key(index.set).arg(MAX_INDEX_READ).arg(index.prefix);
            })
            .await?;
        let mut pairs: Vec<(String, String)> =
            flat.chunks_exact(2).map(|pair| (pair[0].clone(), pair[1].clone())).collect();
        pairs.sort();
        Ok(pairs)
    }
}

/// A set of live names in Redis, read without `SCAN`: a sorted set whose
/// scores say when each member lapses (Redis's own clock, in ms), beside
/// one value key per member (`<prefix><member>`, with the same lifetime).
/// Writers add to it in the same step as the value; readers drop the lapsed
/// members as they read. Its size is what is live, not what ever was.
#[derive(Debug, Clone, Copy)]
pub struct Index {
    pub set: &'static str,
    pub prefix: &'static str,
}

impl Index {
    /// The value key of `member`.
    pub fn key(&self, member: &str) -> String {
        format!("{}{member}", self.prefix)
    }
}

/// At most this many members are read from an index at once (far above
/// any cluster's rooms: `--max-rooms` is per node).
const MAX_INDEX_READ: usize = 10_000;

/// Lua that every script keeping time starts with: `now_ms()`, Redis's
/// own clock in milliseconds; `index(set, member, ttl_ms)`, `member` kept
/// in the sorted set `set` until `ttl_ms` from now (an [`Index`] entry, or
/// a seat reservation); `prune(set)`, the members of `set` that lapsed
/// dropped.
const CLOCK_LUA: &str = r"
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function index(set, member, ttl_ms)
  redis.call('ZADD', set, now_ms() + tonumber(ttl_ms), member)
end
local function prune(set)
  redis.call('ZREMRANGEBYSCORE', set, '-inf', now_ms())
end
";

/// A script whose Lua may call `now_ms`, `index` and `prune`, defined
/// before its own lines.
pub fn clocked_script(body: &str) -> Script {
    Script::new(&format!("{CLOCK_LUA}{body}"))
}

/// Sets a value and its index entry: KEYS = value key, index; ARGV =
/// member, value, ttl ms.
static PUT: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
    clocked_script(
        r"
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
index(KEYS[2], ARGV[1], ARGV[3])
",
    )
});

/// Drops an index's lapsed members and returns the first ARGV[1] live
/// ones: KEYS = index.
static MEMBERS: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
    clocked_script(
        r"
prune(KEYS[1])
return redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
",
    )
});

/// [`MEMBERS`] with each member's value (ARGV[2] is the value keys'
/// prefix), flat: member, value, member, value...
static ENTRIES: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
    clocked_script(
        r"
prune(KEYS[1])
local members = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
local out = {}
for _, member in ipairs(members) do
  local value = redis.call('GET', ARGV[2] .. member)
  if value then
    out[#out + 1] = member
    out[#out + 1] = value
  end
end
return out
",
    )
});

/// A room's keys, in one place (the gateways above share them: forgetting
/// a room deletes its listing too).
pub mod keys {
    use super::Index;

    /// Saved rooms: `arena:state:<code>`, indexed by code.
    pub const SAVED: Index = Index { set: "arena:index:saved", prefix: "arena:state:" };
    /// Listed public rooms: `arena:public:<code>`, indexed by code.
    pub const LISTED: Index = Index { set: "arena:index:public", prefix: "arena:public:" };
    /// Live nodes: `arena:node:<id>`, indexed by id.
    pub const NODES: Index = Index { set: "arena:index:nodes", prefix: "arena:node:" };
    /// Nodes' reports for the operators' page: `arena:report:<id>`.
    pub const REPORTS: Index = Index { set: "arena:index:reports", prefix: "arena:report:" };

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
        SAVED.key(code)
    }

    /// A public room's line in the listing.
    pub fn listing(code: &str) -> String {
        LISTED.key(code)
    }

    /// The room's input log since its last save: one record a tick.
    pub fn log(code: &str) -> String {
        format!("arena:log:{code}")
    }

    /// The tick the room's input log reaches.
    pub fn log_tip(code: &str) -> String {
        format!("arena:logtip:{code}")
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

/// A connection that reconnects by itself to the address of `client`.
async fn manager(client: Client, timeout: Duration) -> Result<ConnectionManager, RedisError> {
    // One plain attempt first: a certificate or a password Redis refuses is
    // said as it is, not hidden behind the manager's retries and a timeout.
    drop(within(timeout, client.get_multiplexed_async_connection()).await?);
    let config = redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout))
        .set_max_delay(Duration::from_secs(2));
    within(timeout, ConnectionManager::new_with_config(client, config)).await
}

/// Asks `sentinels` for the primary named `master`.
fn sentinel_client(
    sentinels: &[String],
    master: &str,
    user: Option<&str>,
    password: Option<&str>,
) -> Result<SentinelClient, RedisError> {
    let urls: Vec<String> = sentinels.iter().map(|address| format!("redis://{address}")).collect();
    let mut settings = RedisConnectionInfo::default();
    if let Some(password) = password {
        settings = settings.set_password(password);
    }
    if let Some(user) = user {
        settings = settings.set_username(user);
    }
    let node = SentinelNodeConnectionInfo::default().set_redis_connection_info(settings);
    Ok(SentinelClient::build(urls, master, Some(node), SentinelServerType::Master)?)
}

/// Follows the primary the Sentinels name: every [`FOLLOW_EVERY`] it asks
/// them, and when they name another address (a failover) the connection is
/// replaced. Ends with the last [`Redis`] that used it.
async fn follow(
    conn: Weak<RwLock<ConnectionManager>>,
    mut sentinel: SentinelClient,
    mut addr: String,
    timeout: Duration,
) {
    let mut ticks = tokio::time::interval(FOLLOW_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if conn.strong_count() == 0 {
            return;
        }
        let Ok(client) = within(timeout, sentinel.async_get_client()).await else { continue };
        let named = client.get_connection_info().addr().to_string();
        if named == addr {
            continue;
        }
        match manager(client, timeout).await {
            Ok(manager) => {
                let Some(shared) = conn.upgrade() else { return };
                *shared.write().unwrap_or_else(std::sync::PoisonError::into_inner) = manager;
                tracing::warn!(from = %addr, to = %named, "the Sentinels name a new Redis primary: following it");
                addr = named;
            }
            Err(e) => tracing::debug!(primary = %named, "cannot reach the new Redis primary yet: {e}"),
        }
    }
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
