//! What every request and connection shares: the settings, the rooms,
//! the metrics, the limits, and the shutdown signal. Built once by
//! [`crate::run_with_operator`]; cheap to clone.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::cluster::placement::Placement;
use crate::cluster::registry::Cluster;
use crate::config::ServerConfig;
use crate::edge::origin::{OriginPolicy, local_addresses};
use crate::limits::{AddressCaps, PerAddressBudget};
use crate::lobby::Lobby;
use crate::rooms::Rooms;
use crate::telemetry::history::History;
use crate::telemetry::metrics::Metrics;

/// Everything a request handler needs: one pointer, cheap to clone. (Each
/// connection's future holds one for as long as it plays; the thirteen
/// handles inline were 96 bytes more a connection.)
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

/// What [`AppState`] points to.
pub struct Shared {
    pub config: Arc<ServerConfig>,
    pub origins: Arc<OriginPolicy>,
    /// Answers `Hello`s.
    pub lobby: Arc<Lobby>,
    /// This node's rooms.
    pub rooms: Arc<Rooms>,
    /// Where rooms open and are found across the cluster (this node alone
    /// without `--redis-url`).
    pub placement: Arc<Placement>,
    pub metrics: Arc<Metrics>,
    /// Fires at shutdown; every connection watches it.
    pub cancel: CancellationToken,
    /// Every connection task, so shutdown can wait for their close frames.
    pub connections: TaskTracker,
    /// Seats held for a resume, per address (`--max-held-seats-per-ip`).
    pub held_seats: Arc<AddressCaps>,
    /// This node, and the cluster it is in (itself alone without `--redis-url`).
    pub cluster: Arc<Cluster>,
    /// This node's last minute, for the operators' page.
    pub history: Arc<History>,
    /// How often one address may read the public API (`/api/*`).
    pub public_reads: Arc<PerAddressBudget>,
}

/// Public API reads (`/api/rooms`, `/api/cluster`, `/api/replays`) one
/// address may make a second, and at once: a page reads a few a minute,
/// and 64 bots (the connections one address may hold) asking for the
/// cluster every 2 s make 32 a second.
pub const PUBLIC_READS_PER_SEC: f64 = 50.0;
pub const PUBLIC_READ_BURST: f64 = 100.0;

impl AppState {
    /// What every request and connection shares, for a server listening on
    /// `bound`: its rooms, the lobby that seats players in them, and where
    /// rooms are placed (this node alone without `--redis-url`).
    pub fn new(
        config: &Arc<ServerConfig>,
        bound: SocketAddr,
        cancel: &CancellationToken,
        connections: &TaskTracker,
    ) -> Self {
        let addresses = local_addresses(bound);
        let metrics = Arc::new(Metrics::default());
        let url =
            crate::cluster::registry::default_url((&config.cluster, &config.net), &addresses, bound.port());
        let cluster = Cluster::new(&config.cluster, url);
        if cluster.is_on() {
            let _ = metrics.node.set(cluster.node.clone());
        }
        let rooms = Arc::new(Rooms::new(
            config.game.clone(),
            config.slow_client_ticks(),
            metrics.clone(),
            cancel.clone(),
        ));
        let placement = Arc::new(Placement::new(
            rooms.clone(),
            cluster.clone(),
            (config.cluster.clone(), config.game.max_players, config.game.tick_rate),
            metrics.clone(),
            cancel.clone(),
        ));
        let lobby = Lobby::new(
            rooms.clone(),
            placement.clone(),
            (&config.game, &config.limits),
            metrics.clone(),
            cancel.clone(),
        );
        AppState(Arc::new(Shared {
            config: config.clone(),
            origins: Arc::new(OriginPolicy::new(&config.net, &addresses)),
            lobby: Arc::new(lobby),
            placement,
            rooms,
            metrics,
            cancel: cancel.clone(),
            connections: connections.clone(),
            held_seats: AddressCaps::new(
                usize::MAX,
                config.limits.max_held_seats_per_ip as usize,
                config.limits.counting(),
            ),
            cluster,
            history: Arc::default(),
            public_reads: Arc::new(PerAddressBudget::new(
                PUBLIC_READS_PER_SEC,
                PUBLIC_READ_BURST,
                config.limits.counting(),
            )),
        }))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}
