//! arena's authoritative game server.
//!
//! # Layout
//! The folders are its jobs, from the outside in; each uses only the
//! ones listed after it (`tests/tests/structure.rs` fails on an import
//! cycle between files).
//! - [`edge`]: where the network meets the game: the accept loop and
//!   each connection's HTTP life ([`edge::accept`]), TLS
//!   ([`edge::tls`]), the router ([`edge::http`]), which pages may
//!   connect and who is asking ([`edge::origin`]), the client's files
//!   ([`edge::web`], [`edge::compress`], and `edge::embedded` with the
//!   `embed-client` feature), and one upgraded socket's life
//!   ([`edge::connection`]), the operators' page, its reports and orders
//!   ([`edge::admin`]); [`edge::state`], what every request and
//!   connection shares.
//! - [`lobby`]: where a `Hello` is answered: a seat in a room here, or a
//!   `Moved` to the node that runs it; what one address may open and guess.
//! - [`rooms`]: the rooms of this process: the answer to a `Hello`'s room
//!   request (quick-join, private, by code), opening rooms, and the
//!   directory they are found in.
//! - [`cluster`]: the rooms of many processes (`--redis-url`): this node
//!   in the registry, each room's lease and steward, its fence, placing
//!   and finding rooms across nodes, and the Redis gateway under it all.
//! - [`room`]: one room: the task that owns it and ticks it, its players'
//!   links and outboxes, what each player is sent, the game state itself
//!   ([`room::world`], no I/O), and the recorded rounds' store.
//! - [`config`]: `ServerConfig`, parsed from CLI flags with `ARENA_*` env
//!   fallbacks; the binary and the tests build the same struct.
//! - [`limits`]: what one address may hold and try, counted by IPv4
//!   address or IPv6 prefix; the per-connection message-rate budget.
//! - [`telemetry`]: what the server measures of itself: the counters at
//!   `/metrics` ([`telemetry::metrics`]) and the last minute
//!   ([`telemetry::history`]).
//!
//! [`cli`] is the binary's face (flags, logging, runtime, the URLs it
//! prints); [`run`] ties them together and returns soon after the shutdown future
//! fires, once every client has been sent its close frame.

pub mod cli;
pub mod cluster;
pub mod config;
pub mod edge;
pub mod limits;
pub mod lobby;
pub mod room;
pub mod rooms;
pub mod telemetry;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::ServerConfig;
pub use edge::http::app;
pub use edge::origin::{OriginPolicy, local_addresses};
pub use edge::state::AppState;

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
/// caller (a test on port 0); `None` binds `config.ops.metrics_bind`, if set.
pub async fn run_with_operator(
    listener: TcpListener,
    operator: Option<TcpListener>,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let operator = match (operator, config.ops.metrics_bind) {
        (Some(listener), _) => Some(listener),
        (None, Some(addr)) => Some(TcpListener::bind(addr).await.map_err(|e| {
            std::io::Error::new(e.kind(), format!("cannot listen on --metrics-bind {addr}: {e}"))
        })?),
        (None, None) => None,
    };
    let config = fit_open_files(config);
    let tls = match (&config.net.tls_cert, &config.net.tls_key) {
        (Some(cert), Some(key)) => {
            let acceptor = edge::tls::acceptor(cert, key)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
            Some(edge::tls::Handshaker::start(acceptor, config.limits.counting())?)
        }
        _ => None,
    };
    let config = Arc::new(config);
    let cancel = CancellationToken::new();
    let connections = TaskTracker::new();
    let state = AppState::new(&config, listener.local_addr()?, &cancel, &connections);
    let (rooms, placement, metrics) = (state.rooms.clone(), state.placement.clone(), state.metrics.clone());
    let figures = {
        let rooms = rooms.clone();
        Box::new(move || rooms.figures())
    };
    let registered = tokio::spawn(state.cluster.clone().run(figures, cancel.clone()));
    tokio::spawn(placement.clone().adopt_orphans(cancel.clone()));
    tokio::spawn(edge::admin::run(state.clone(), cancel.clone()));
    let cluster = state.cluster.clone();
    if let Some(listener) = operator {
        serve_operators(listener, state.clone(), cancel.clone())?;
    }
    let acceptor = edge::accept::Acceptor {
        router: app(state),
        limits: limits::ConnectionLimits::new(
            config.limits.max_connections as usize,
            config.limits.max_connections_per_ip as usize,
            config.limits.counting(),
        ),
        metrics,
        header_timeout: config.limits.header_timeout(),
        send_buffer: config.net.send_buffer_bytes,
        cancel: cancel.clone(),
        tracker: connections.clone(),
        tls,
    };
    let accepting = tokio::spawn(acceptor.run(listener));

    shutdown.await;
    if cluster.is_on() {
        placement.drain().await;
    }
    tracing::info!("shutting down: closing every connection");
    cancel.cancel();
    let _ = accepting.await;
    connections.close();
    if tokio::time::timeout(SHUTDOWN_GRACE, connections.wait()).await.is_err() {
        tracing::warn!(left = connections.len(), "some connections did not close within {SHUTDOWN_GRACE:?}");
    }
    let stopped = async { tokio::join!(rooms.stopped(), placement.stopped()) };
    if tokio::time::timeout(Duration::from_millis(200), stopped).await.is_err() {
        tracing::warn!("some room tasks did not stop in time");
    }
    // Out of the cluster's registry (bounded by its Redis timeout).
    let _ = registered.await;
    Ok(())
}

/// `--max-connections` lowered, with a warning, to what the open-files
/// limit allows (raised as far as it goes first).
fn fit_open_files(mut config: ServerConfig) -> ServerConfig {
    if let Some(fit) = edge::accept::raise_fd_limit()
        && u64::from(config.limits.max_connections) > fit
    {
        tracing::warn!(
            requested = config.limits.max_connections,
            allowed = fit,
            "--max-connections lowered to fit the open-files limit"
        );
        config.limits.max_connections = u32::try_from(fit).unwrap_or(u32::MAX).max(1);
    }
    config
}

/// Serves `--metrics-bind`'s per-room `/metrics` and `/healthz` on
/// `listener` until `cancel` fires.
fn serve_operators(listener: TcpListener, state: AppState, cancel: CancellationToken) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "serving /metrics and /healthz with per-room detail for operators");
    let operator_app = edge::http::operator_app(state);
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
    let embedded = edge::embedded::has_client();
    #[cfg(not(feature = "embed-client"))]
    let embedded = false;
    config.net.web_dir.is_some() || embedded
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
