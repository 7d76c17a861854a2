//! What every request and connection shares: the settings, the rooms,
//! the metrics, the limits, and the shutdown signal. Built once by
//! [`crate::run_with_operator`]; cheap to clone.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::cluster::Cluster;
use crate::config::ServerConfig;
use crate::history::History;
use crate::limits::AddressCaps;
use crate::metrics::Metrics;
use crate::origin::OriginPolicy;
use crate::rooms::Rooms;

/// Everything a request handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<ServerConfig>,
    pub origins: Arc<OriginPolicy>,
    pub rooms: Arc<Rooms>,
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
}
