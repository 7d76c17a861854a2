//! arena's authoritative game server.
//!
//! # Layout
//! Listed from the outside in; each module uses only modules listed after
//! it (a test in `tests/tests/structure.rs` fails on an import cycle).
//! - [`config`]: `ServerConfig`, parsed from CLI flags with `ARENA_*` env
//!   fallbacks; the binary and the tests build the same struct.
//! - [`accept`]: the accept loop and each connection's HTTP/1.1 life:
//!   request-head deadlines, connection caps (503), `accept` errors survived.
//! - [`tls`]: `--tls-cert`/`--tls-key` into a rustls acceptor, and the
//!   handshake thread that keeps handshakes off the tick.
//! - [`http`]: `app(state) -> Router`: `/ws` (upgrade with bounded
//!   buffers), `/healthz` and `/metrics` (totals for the public, per room
//!   for operators), `/api/rooms`, `/api/replays`; `operator_app` for
//!   `--metrics-bind`.
//! - [`origin`]: which pages may open `/ws`, and the player's address
//!   behind a trusted proxy.
//! - [`admin`]: the operators' page's data and orders (every node and room,
//!   the last minute; drain a node, close a room, kick a player), across
//!   the cluster through Redis.
//! - [`web`] and [`embedded`] (feature `embed-client`): the built client's
//!   files, from `--web-dir` or from inside the binary (brotli only), with
//!   one cache policy.
//! - [`compress`]: the gzip and raw forms the server makes itself, once.
//! - [`state`]: `AppState`, what every request and connection shares.
//! - [`connection`]: one upgraded socket: handshake, then reading and
//!   writing, and the close frame that ends it.
//! - [`rooms`]: many rooms in one process: the answer to a `Hello`'s room
//!   request (quick-join, private, by code), and opening rooms.
//! - [`directory`]: where rooms are found by code (a trait, in memory here;
//!   in cluster mode, rooms elsewhere are found through their leases).
//! - [`steward`]: beside each leased room (cluster mode): renews its lease,
//!   saves it every `--checkpoint-ms`, lists it for quick-joins elsewhere,
//!   and takes it back after a Redis outage.
//! - [`room`]: one room: [`room::Room`] (its world and its players'
//!   links, and how news and frames reach them) and the task that owns it,
//!   runs the fixed-rate tick, takes joins and leaves over channels, and
//!   closes when idle; seats are freed by a guard. No lock around game state.
//! - [`links`]: the room's ends of its players' connections: one bounded
//!   inbound queue each (inputs, `Resync`) and the outbox.
//! - [`interest`]: what each player is sent: the others in its view, as
//!   changes since the last frame its writer took, within a byte budget.
//! - [`outbox`]: a player's bounded outgoing queue: events in order, and only
//!   the newest frame, so a slow reader never holds up the tick.
//! - [`replays`]: the rounds rooms recorded, kept to a byte cap and
//!   served at `/api/replays`.
//! - [`world`]: the game state only (players, the match, the news) and what
//!   one tick does to it, free of sockets, channels, timers and metrics.
//! - [`fence`]: a room's right to run, by its own clock: its lease's
//!   renewals push it back; past it the room pauses.
//! - [`limits`]: what one address may hold (sockets, held seats, private
//!   rooms, handshakes in flight) and try (room codes, handshakes), counted
//!   by IPv4 address or IPv6 prefix; the per-connection message-rate budget.
//! - [`metrics`]: counters served at `/metrics` and logged.
//! - [`history`]: this node's last minute, a sample a second, for the
//!   operators' page.
//! - [`cluster`]: this node in the cluster's registry (`--redis-url`), and
//!   the node list of `/api/cluster`.
//! - [`lease`]: room leases, saved rooms, listings, the node registry and
//!   operators' reports and orders in Redis, the ground floor of cluster
//!   mode.
//!
//! [`run`] ties them together and returns soon after the shutdown future
//! fires, once every client has been sent its close frame.

pub mod accept;
pub mod admin;
pub mod cluster;
pub mod compress;
pub mod config;
pub mod connection;
pub mod directory;
#[cfg(feature = "embed-client")]
pub mod embedded;
pub mod fence;
pub mod history;
pub mod http;
pub mod interest;
pub mod lease;
pub mod limits;
pub mod links;
pub mod metrics;
pub mod origin;
pub mod outbox;
pub mod replays;
pub mod room;
pub mod rooms;
pub mod state;
pub mod steward;
pub mod tls;
pub mod web;
pub mod world;

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::ServerConfig;
pub use http::app;
pub use origin::OriginPolicy;
pub use state::AppState;

/// How long shutdown waits for connections to deliver their close frames
/// (and hear the replies) before it returns anyway.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(1500);

/// Serves arena on `listener` until `shutdown` completes, then closes every
/// connection (WebSockets with a close frame, 1001 going away) and returns
/// within [`SHUTDOWN_GRACE`], whatever the clients do.
pub async fn run(
    listener: TcpListener,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    run_with_operator(listener, None, config, shutdown).await
}

/// [`run`], with the operators' listener (`--metrics-bind`) bound by the
/// caller (a test on port 0); `None` binds `config.metrics_bind`, if set.
pub async fn run_with_operator(
    listener: TcpListener,
    operator: Option<TcpListener>,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let operator = match (operator, config.metrics_bind) {
        (Some(listener), _) => Some(listener),
        (None, Some(addr)) => Some(TcpListener::bind(addr).await.map_err(|e| {
            std::io::Error::new(e.kind(), format!("cannot listen on --metrics-bind {addr}: {e}"))
        })?),
        (None, None) => None,
    };
    let config = fit_open_files(config);
    let tls = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => {
            let acceptor = tls::acceptor(cert, key)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
            Some(tls::Handshaker::start(acceptor, config.counting())?)
        }
        _ => None,
    };
    let config = Arc::new(config);
    let cancel = CancellationToken::new();
    let connections = TaskTracker::new();
    let state = shared_state(&config, listener.local_addr()?, &cancel, &connections);
    let (rooms, metrics) = (state.rooms.clone(), state.metrics.clone());
    let figures = {
        let rooms = rooms.clone();
        Box::new(move || rooms.figures())
    };
    let registered = tokio::spawn(state.cluster.clone().run(figures, cancel.clone()));
    tokio::spawn(rooms.clone().adopt_orphans(cancel.clone()));
    tokio::spawn(admin::run(state.clone(), cancel.clone()));
    let cluster = state.cluster.clone();
    if let Some(listener) = operator {
        serve_operators(listener, state.clone(), cancel.clone())?;
    }
    let acceptor = accept::Acceptor {
        router: app(state),
        limits: limits::ConnectionLimits::new(
            config.max_connections as usize,
            config.max_connections_per_ip as usize,
            config.counting(),
        ),
        metrics,
        header_timeout: config.header_timeout(),
        send_buffer: config.send_buffer_bytes,
        cancel: cancel.clone(),
        tracker: connections.clone(),
        tls,
    };
    let accepting = tokio::spawn(acceptor.run(listener));

    shutdown.await;
    if cluster.is_on() {
        rooms.drain().await;
    }
    tracing::info!("shutting down: closing every connection");
    cancel.cancel();
    let _ = accepting.await;
    connections.close();
    if tokio::time::timeout(SHUTDOWN_GRACE, connections.wait()).await.is_err() {
        tracing::warn!(left = connections.len(), "some connections did not close within {SHUTDOWN_GRACE:?}");
    }
    if tokio::time::timeout(Duration::from_millis(200), rooms.stopped()).await.is_err() {
        tracing::warn!("some room tasks did not stop in time");
    }
    // Out of the cluster's registry (bounded by its Redis timeout).
    let _ = registered.await;
    Ok(())
}

/// What every request and connection shares, for a server listening on
/// `bound`.
fn shared_state(
    config: &Arc<ServerConfig>,
    bound: SocketAddr,
    cancel: &CancellationToken,
    connections: &TaskTracker,
) -> AppState {
    let addresses = local_addresses(bound);
    let metrics = Arc::new(metrics::Metrics::default());
    let cluster = cluster::Cluster::new(config, cluster::default_url(config, &addresses, bound.port()));
    if cluster.is_on() {
        let _ = metrics.node.set(cluster.node.clone());
    }
    AppState {
        config: config.clone(),
        origins: Arc::new(OriginPolicy::new(config, &addresses)),
        rooms: Arc::new(rooms::Rooms::new(config.clone(), metrics.clone(), cluster.clone(), cancel.clone())),
        metrics,
        cancel: cancel.clone(),
        connections: connections.clone(),
        held_seats: limits::AddressCaps::new(
            usize::MAX,
            config.max_held_seats_per_ip as usize,
            config.counting(),
        ),
        cluster,
        history: Arc::default(),
    }
}

/// `--max-connections` lowered, with a warning, to what the open-files
/// limit allows (raised as far as it goes first).
fn fit_open_files(mut config: ServerConfig) -> ServerConfig {
    if let Some(fit) = accept::raise_fd_limit()
        && u64::from(config.max_connections) > fit
    {
        tracing::warn!(
            requested = config.max_connections,
            allowed = fit,
            "--max-connections lowered to fit the open-files limit"
        );
        config.max_connections = u32::try_from(fit).unwrap_or(u32::MAX).max(1);
    }
    config
}

/// Serves `--metrics-bind`'s per-room `/metrics` and `/healthz` on
/// `listener` until `cancel` fires.
fn serve_operators(listener: TcpListener, state: AppState, cancel: CancellationToken) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "serving /metrics and /healthz with per-room detail for operators");
    let operator_app = http::operator_app(state);
    tokio::spawn(async move {
        let stop = cancel.cancelled_owned();
        if let Err(e) = axum::serve(listener, operator_app).with_graceful_shutdown(stop).await {
            tracing::warn!("the operators' listener stopped: {e}");
        }
    });
    Ok(())
}

/// Whether this server serves the browser client: from `--web-dir`, or
/// built in (`embed-client`).
pub fn serves_client(config: &ServerConfig) -> bool {
    #[cfg(feature = "embed-client")]
    let embedded = embedded::has_client();
    #[cfg(not(feature = "embed-client"))]
    let embedded = false;
    config.web_dir.is_some() || embedded
}

/// The addresses a server bound to `addr` answers on: that one, or, bound to
/// all interfaces, loopback and every interface's address.
pub fn local_addresses(addr: SocketAddr) -> Vec<IpAddr> {
    if !addr.ip().is_unspecified() {
        return vec![addr.ip()];
    }
    let mut addresses = vec![IpAddr::V4(Ipv4Addr::LOCALHOST), IpAddr::V6(Ipv6Addr::LOCALHOST)];
    let interfaces = if_addrs::get_if_addrs().unwrap_or_default();
    addresses.extend(interfaces.iter().filter(|i| !i.is_loopback()).map(|i| i.ip()));
    addresses
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!("cannot listen for Ctrl-C: {e}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!("cannot listen for SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
