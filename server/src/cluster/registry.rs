//! This node in the cluster (`--redis-url`): it keeps itself registered in
//! the shared Redis (its URL, rooms and players, whether it is draining;
//! renewed three times per `--lease-ms`), keeps the list of live nodes it
//! last read (for `GET /api/cluster`, the origin policy, and where to send
//! a room or a player), and holds the connection to the cluster's Redis
//! ([`crate::cluster::redis`]) that every gateway goes through. Without
//! `--redis-url` the cluster is this node alone and nothing touches Redis.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::cluster::fresh::Fresh;
use crate::cluster::lease::Leases;
use crate::cluster::listing::Listings;
use crate::cluster::orders::Orders;
use crate::cluster::redis::{Redis, RedisError, keys};
use crate::config::{ClusterConfig, NetworkConfig, RedisSource};

/// What a node shows the cluster (no room codes: private ones stay private).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    pub node: String,
    pub url: String,
    pub rooms: u64,
    pub players: u64,
    /// Handing its rooms over before it stops: it takes no new ones.
    #[serde(default)]
    pub draining: bool,
}

/// This node, and the registry it shares (once connected).
pub struct Cluster {
    pub node: String,
    pub url: String,
    source: Option<RedisSource>,
    /// Replicas each lease write must reach (`--redis-wait-replicas`).
    wait_replicas: u8,
    lease: Duration,
    redis: RwLock<Option<Redis>>,
    /// The live nodes as last read from the registry (this one included).
    known: RwLock<Vec<NodeInfo>>,
    /// Every node URL seen in the registry lately, with when it was last
    /// seen: a page served by a node that died may still play elsewhere.
    remembered: RwLock<HashMap<String, Instant>>,
    /// The registry as `/api/cluster` reads it, at most four times a second.
    listed: Fresh<Vec<NodeInfo>>,
    draining: AtomicBool,
}

/// How long a node's URL stays a trusted page origin after the node was
/// last seen alive: pages it served come back through other nodes.
pub const ORIGIN_MEMORY: Duration = Duration::from_secs(600);

/// At most this many node URLs are remembered (the oldest go first).
const MAX_REMEMBERED: usize = 256;

/// This node's figures for the registry: open rooms and players.
pub type NodeLoad = Box<dyn Fn() -> (u64, u64) + Send + Sync>;

impl Cluster {
    /// This node as `url`, with a fresh random id (a restarted node is a
    /// new node).
    pub fn new(config: &ClusterConfig, url: String) -> Arc<Self> {
        let id = getrandom::u64().unwrap_or_else(|_| u64::from(std::process::id()));
        Arc::new(Cluster {
            node: format!("{id:016x}"),
            url,
            source: config.redis(),
            wait_replicas: config.wait_replicas(),
            lease: config.lease(),
            redis: RwLock::new(None),
            known: RwLock::new(Vec::new()),
            remembered: RwLock::default(),
            listed: Fresh::default(),
            draining: AtomicBool::new(false),
        })
    }

    pub fn is_on(&self) -> bool {
        self.source.is_some()
    }

    /// How long a lease lives without renewal.
    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// The connection to the cluster's Redis, once made.
    pub fn redis(&self) -> Option<Redis> {
        self.redis.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// The room leases, once connected.
    pub fn leases(&self) -> Option<Leases> {
        self.redis().map(Leases)
    }

    /// The public rooms' listing, once connected.
    pub fn listings(&self) -> Option<Listings> {
        self.redis().map(Listings)
    }

    /// The operators' reports and orders, once connected.
    pub fn orders(&self) -> Option<Orders> {
        self.redis().map(Orders)
    }

    /// The cluster's Redis, connecting first if need be: `None` outside
    /// cluster mode.
    pub async fn connected(&self) -> Option<Result<Redis, RedisError>> {
        let source = self.source.as_ref()?;
        if let Some(redis) = self.redis() {
            return Some(Ok(redis));
        }
        Some(Redis::connect(source, self.lease / 3, self.wait_replicas).await.inspect(|redis| {
            *self.redis.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(redis.clone());
            tracing::info!(node = %self.node, url = %self.url, "joined the cluster");
        }))
    }

    /// Stops taking rooms: they go to other nodes from now on.
    pub fn start_draining(&self) {
        self.draining.store(true, Relaxed);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Relaxed)
    }

    /// The live nodes as last read (this one alone outside cluster mode,
    /// or before the first heartbeat).
    pub fn known(&self) -> Vec<NodeInfo> {
        self.known.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// Sets the live nodes as if just read from the registry (the
    /// steward's tests, which have no registry).
    #[cfg(test)]
    pub fn know(&self, nodes: Vec<NodeInfo>) {
        self.set_known(nodes);
    }

    /// Node `node`'s URL, if it is alive as far as this node knows.
    pub fn url_of(&self, node: &str) -> Option<String> {
        if node == self.node {
            return Some(self.url.clone());
        }
        self.known().into_iter().find(|info| info.node == node).map(|info| info.url)
    }

    /// Whether `origin` (a page's `Origin`) is a node of the cluster, alive
    /// or seen alive within [`ORIGIN_MEMORY`]: a page served by one node may
    /// play on any other, also after its own node died.
    pub fn serves_origin(&self, origin: &str) -> bool {
        let origin = origin_key(origin);
        self.is_on()
            && (self.known().iter().any(|info| origin_key(&info.url) == origin)
                || self
                    .remembered
                    .read()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .contains_key(&origin))
    }

    /// Sets the live nodes as just read, remembering their URLs.
    fn set_known(&self, nodes: Vec<NodeInfo>) {
        self.set_known_at(nodes, Instant::now());
    }

    /// [`Cluster::set_known`] at `now`.
    fn set_known_at(&self, nodes: Vec<NodeInfo>, now: Instant) {
        {
            let mut remembered = self.remembered.write().unwrap_or_else(|poisoned| poisoned.into_inner());
            for info in &nodes {
                remembered.insert(origin_key(&info.url), now);
            }
            remembered.retain(|_, seen| now.saturating_duration_since(*seen) < ORIGIN_MEMORY);
            while remembered.len() > MAX_REMEMBERED {
                let Some(oldest) =
                    remembered.iter().min_by_key(|(_, seen)| **seen).map(|(url, _)| url.clone())
                else {
                    break;
                };
                remembered.remove(&oldest);
            }
        }
        *self.known.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = nodes;
    }

    /// Where rooms this node gives up may go: the live nodes, not this one
    /// and not draining.
    pub fn successors(&self) -> Vec<NodeInfo> {
        self.known().into_iter().filter(|info| info.node != self.node && !info.draining).collect()
    }

    /// Of those, the one with the fewest players.
    pub fn successor(&self) -> Option<NodeInfo> {
        self.successors().into_iter().min_by_key(|info| (info.players, info.rooms, info.node.clone()))
    }

    /// Every live node for a public request (`/api/cluster`): the registry
    /// as read within the last [`crate::cluster::fresh::FRESH`], with this
    /// node's own figures as they are now; this one alone outside cluster
    /// mode. `Err` says why Redis did not answer.
    pub async fn nodes_now(&self, figures: (u64, u64)) -> Result<Vec<NodeInfo>, String> {
        if !self.is_on() {
            return Ok(vec![self.me(figures)]);
        }
        let listed = self.listed.get(|| self.nodes(figures)).await?;
        let me = self.me(figures);
        Ok(listed.iter().map(|info| if info.node == me.node { me.clone() } else { info.clone() }).collect())
    }

    /// Every live node, fresh from the registry: this one alone outside
    /// cluster mode.
    pub async fn nodes(&self, figures: (u64, u64)) -> Result<Vec<NodeInfo>, RedisError> {
        if !self.is_on() {
            return Ok(vec![self.me(figures)]);
        }
        let Some(redis) = self.redis() else {
            return Err(RedisError::Timeout(self.lease));
        };
        Nodes(redis).read().await
    }

    fn me(&self, (rooms, players): (u64, u64)) -> NodeInfo {
        NodeInfo {
            node: self.node.clone(),
            url: self.url.clone(),
            rooms,
            players,
            draining: self.is_draining(),
        }
    }

    /// Keeps this node registered until `cancel` fires, then leaves the
    /// registry. An unreachable Redis is logged once and retried each
    /// period; the node keeps serving meanwhile (each room until its lease
    /// runs out).
    pub async fn run(self: Arc<Self>, figures: NodeLoad, cancel: CancellationToken) {
        if !self.is_on() {
            return;
        }
        let mut ticks = tokio::time::interval(self.lease / 3);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut healthy = true;
        loop {
            tokio::select! {
                () = cancel.cancelled() => break,
                _ = ticks.tick() => {}
            }
            let beat = self.beat(figures()).await;
            match (&beat, healthy) {
                (Err(e), true) => {
                    tracing::warn!(node = %self.node, "the cluster's Redis is unreachable: {e}; retrying")
                }
                (Ok(()), false) => tracing::info!(node = %self.node, "the cluster's Redis answers again"),
                _ => {}
            }
            healthy = beat.is_ok();
        }
        if let Some(redis) = self.redis() {
            let _ = Nodes(redis).leave(&self.node).await;
        }
    }

    /// One heartbeat (connecting first if need be), then the node list.
    async fn beat(&self, figures: (u64, u64)) -> Result<(), RedisError> {
        let Some(redis) = self.connected().await else { return Ok(()) };
        Nodes(redis?).register(&self.me(figures), self.lease).await?;
        let nodes = self.nodes(figures).await?;
        self.set_known(nodes);
        Ok(())
    }
}

/// The node registry in Redis: `arena:node:<id>` holding what the node
/// shows the cluster, with a TTL, in the index [`keys::NODES`], so a dead
/// node disappears by itself within one lease.
pub struct Nodes(pub Redis);

impl Nodes {
    /// Registers (or keeps alive) `node` for `ttl`.
    pub async fn register(&self, node: &NodeInfo, ttl: Duration) -> Result<(), RedisError> {
        let info = serde_json::to_string(node).unwrap_or_default();
        self.0.put(&keys::NODES, &node.node, &info, ttl).await
    }

    /// Takes `node` out of the registry at once (a clean shutdown).
    pub async fn leave(&self, node: &str) -> Result<(), RedisError> {
        self.0.remove(&keys::NODES, node).await
    }

    /// Every live node, by id (what does not parse is left out).
    pub async fn read(&self) -> Result<Vec<NodeInfo>, RedisError> {
        let registered = self.0.entries(&keys::NODES).await?;
        Ok(registered.into_iter().filter_map(|(_, info)| serde_json::from_str(&info).ok()).collect())
    }
}

/// A URL or an `Origin` as compared: no trailing slash, lower case.
fn origin_key(url: &str) -> String {
    url.trim_end_matches('/').to_ascii_lowercase()
}

/// The URL players reach this node at, when `--node-url` does not say:
/// the first `--public-host`, else the first address it listens on that is
/// not loopback (the LAN address it prints), else loopback.
pub fn default_url(
    (cluster, net): (&ClusterConfig, &NetworkConfig),
    addresses: &[std::net::IpAddr],
    port: u16,
) -> String {
    if let Some(url) = &cluster.node_url {
        return url.clone();
    }
    let scheme = if net.tls_cert.is_some() { "https" } else { "http" };
    let host = net.public_hosts.first().cloned().unwrap_or_else(|| {
        let ip = addresses.iter().find(|ip| !ip.is_loopback()).or(addresses.first());
        match ip {
            Some(std::net::IpAddr::V6(v6)) => format!("[{v6}]"),
            Some(ip) => ip.to_string(),
            None => "127.0.0.1".to_owned(),
        }
    });
    format!("{scheme}://{host}:{port}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ServerConfig;

    #[test]
    fn the_default_url_is_the_public_name_else_the_lan_address() {
        let lan: Vec<std::net::IpAddr> =
            vec!["127.0.0.1".parse().expect("ip"), "192.168.1.20".parse().expect("ip")];
        let ServerConfig { cluster, net, .. } = ServerConfig::default();
        assert_eq!(default_url((&cluster, &net), &lan, 7777), "http://192.168.1.20:7777");
        let named = NetworkConfig { public_hosts: vec!["game.example.com".into()], ..net.clone() };
        assert_eq!(default_url((&cluster, &named), &lan, 7777), "http://game.example.com:7777");
        let given = ClusterConfig { node_url: Some("https://eu1.example.com".into()), ..cluster.clone() };
        assert_eq!(default_url((&given, &net), &lan, 7777), "https://eu1.example.com");
        assert_eq!(default_url((&cluster, &net), &lan[..1], 9), "http://127.0.0.1:9");
    }

    #[test]
    fn a_node_that_vanished_stays_a_trusted_origin_for_a_while() {
        let config =
            ClusterConfig { redis_url: Some("redis://unused".into()), ..ServerConfig::default().cluster };
        let cluster = Cluster::new(&config, "http://a:1".into());
        let node = |name: &str| NodeInfo {
            node: name.into(),
            url: format!("http://{name}:1"),
            rooms: 0,
            players: 0,
            draining: false,
        };
        cluster.know(vec![node("a"), node("b")]);
        assert!(cluster.serves_origin("http://B:1/"), "a live node, however spelt");
        cluster.know(vec![node("a")]);
        assert!(cluster.serves_origin("http://b:1"), "b died a moment ago: its pages still play");
        assert!(!cluster.serves_origin("http://c:1"), "a node never seen is not");
        cluster.set_known_at(vec![node("a")], Instant::now() + ORIGIN_MEMORY + Duration::from_secs(1));
        assert!(!cluster.serves_origin("http://b:1"), "forgotten after ORIGIN_MEMORY");
    }
}
