//! Cluster mode, as far as it goes today (`--redis-url`): this node keeps
//! itself registered in the shared Redis (its URL, rooms and players,
//! renewed three times per `--lease-ms`), and `GET /api/cluster` lists every
//! live node. Rooms stay on the node that opened them; leases for rooms
//! ([`crate::lease`]) come next. Without `--redis-url` the cluster is this
//! node alone and nothing touches Redis.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::config::ServerConfig;
use crate::lease::{LeaseError, Leases};
use crate::rooms::Rooms;

/// What a node shows the cluster (no room codes: private ones stay private).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    pub node: String,
    pub url: String,
    pub rooms: u64,
    pub players: u64,
}

/// This node, and the registry it shares (once connected).
pub struct Cluster {
    pub node: String,
    pub url: String,
    redis_url: Option<String>,
    lease: Duration,
    leases: RwLock<Option<Leases>>,
}

impl Cluster {
    /// This node as `url`, with a fresh random id (a restarted node is a
    /// new node).
    pub fn new(config: &ServerConfig, url: String) -> Arc<Self> {
        let id = getrandom::u64().unwrap_or_else(|_| u64::from(std::process::id()));
        Arc::new(Cluster {
            node: format!("{id:016x}"),
            url,
            redis_url: config.redis_url.clone(),
            lease: config.lease(),
            leases: RwLock::new(None),
        })
    }

    pub fn is_on(&self) -> bool {
        self.redis_url.is_some()
    }

    fn leases(&self) -> Option<Leases> {
        self.leases.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// This node's line.
    pub fn me(&self, rooms: &Rooms) -> NodeInfo {
        let list = rooms.list();
        let players = list.iter().map(|(_, room)| room.stats.players.load(Relaxed)).sum();
        NodeInfo { node: self.node.clone(), url: self.url.clone(), rooms: list.len() as u64, players }
    }

    /// Every live node, by id: this one alone outside cluster mode.
    pub async fn nodes(&self, rooms: &Rooms) -> Result<Vec<NodeInfo>, LeaseError> {
        if !self.is_on() {
            return Ok(vec![self.me(rooms)]);
        }
        let Some(leases) = self.leases() else {
            return Err(LeaseError::Timeout(self.lease));
        };
        let registered = leases.nodes().await?;
        Ok(registered.into_iter().filter_map(|(_, info)| serde_json::from_str(&info).ok()).collect())
    }

    /// Keeps this node registered until `cancel` fires, then leaves the
    /// registry. An unreachable Redis is logged once and retried each
    /// period; the node keeps serving its own rooms meanwhile.
    pub async fn run(self: Arc<Self>, rooms: Arc<Rooms>, cancel: CancellationToken) {
        let Some(url) = self.redis_url.clone() else { return };
        let period = self.lease / 3;
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut healthy = true;
        loop {
            tokio::select! {
                () = cancel.cancelled() => break,
                _ = ticks.tick() => {}
            }
            let beat = self.beat(&url, &rooms, period).await;
            match (&beat, healthy) {
                (Err(e), true) => {
                    tracing::warn!(node = %self.node, "the cluster's Redis is unreachable: {e}; retrying")
                }
                (Ok(()), false) => tracing::info!(node = %self.node, "the cluster's Redis answers again"),
                _ => {}
            }
            healthy = beat.is_ok();
        }
        if let Some(leases) = self.leases() {
            let _ = leases.leave(&self.node).await;
        }
    }

    /// One heartbeat, connecting first if need be.
    async fn beat(&self, url: &str, rooms: &Rooms, timeout: Duration) -> Result<(), LeaseError> {
        let leases = match self.leases() {
            Some(leases) => leases,
            None => {
                let leases = Leases::connect(url, timeout).await?;
                *self.leases.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(leases.clone());
                tracing::info!(node = %self.node, url = %self.url, "joined the cluster");
                leases
            }
        };
        let info = serde_json::to_string(&self.me(rooms)).unwrap_or_default();
        leases.heartbeat(&self.node, &info, self.lease).await
    }
}

/// The URL players reach this node at, when `--node-url` does not say:
/// the first `--public-host`, else the first address it listens on that is
/// not loopback (the LAN address it prints), else loopback.
pub fn default_url(config: &ServerConfig, addresses: &[std::net::IpAddr], port: u16) -> String {
    if let Some(url) = &config.node_url {
        return url.clone();
    }
    let scheme = if config.tls_cert.is_some() { "https" } else { "http" };
    let host = config.public_hosts.first().cloned().unwrap_or_else(|| {
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

    #[test]
    fn the_default_url_is_the_public_name_else_the_lan_address() {
        let lan: Vec<std::net::IpAddr> =
            vec!["127.0.0.1".parse().expect("ip"), "192.168.1.20".parse().expect("ip")];
        let config = ServerConfig::default();
        assert_eq!(default_url(&config, &lan, 7777), "http://192.168.1.20:7777");
        let named = ServerConfig { public_hosts: vec!["game.example.com".into()], ..ServerConfig::default() };
        assert_eq!(default_url(&named, &lan, 7777), "http://game.example.com:7777");
        let given =
            ServerConfig { node_url: Some("https://eu1.example.com".into()), ..ServerConfig::default() };
        assert_eq!(default_url(&given, &lan, 7777), "https://eu1.example.com");
        assert_eq!(default_url(&config, &lan[..1], 9), "http://127.0.0.1:9");
    }
}
