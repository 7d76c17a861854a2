//! arena's authoritative game server.
//!
//! # Layout
//! - [`config`]: `ServerConfig`, parsed from CLI flags with `ARENA_*` env
//!   fallbacks; the binary and the tests build the same struct.
//! - [`http`]: `app(state) -> Router`: `/ws` (origin check, upgrade),
//!   `/healthz`, `/metrics`, and the built client's static files.
//! - [`connection`]: one upgraded socket: handshake, then a read task and a
//!   write task, and the close frame that ends it.
//! - [`room`]: the room task: owns the [`world::World`], runs the fixed-rate
//!   tick, takes joins and leaves over a channel. No lock around game state.
//! - [`world`]: the game state and what one tick does to it, free of sockets
//!   and timers so benches and tests drive it directly.
//! - [`outbox`]: a player's bounded outgoing queue: events in order, and only
//!   the newest frame, so a slow reader never holds up the tick.
//! - [`metrics`]: counters served at `/metrics` and logged.
//!
//! [`run`] ties them together and returns when the shutdown future fires and
//! every client has been sent its close frame.

pub mod config;
pub mod connection;
pub mod http;
pub mod metrics;
pub mod outbox;
pub mod room;
pub mod world;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::ServerConfig;
pub use http::{AppState, app};

/// How long shutdown waits for connections to deliver their close frames.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Serves arena on `listener` until `shutdown` completes, then closes every
/// connection with a close frame (1001, going away) and returns.
pub async fn run(
    listener: TcpListener,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let config = Arc::new(config);
    let cancel = CancellationToken::new();
    let connections = TaskTracker::new();
    let metrics = Arc::new(metrics::Metrics::default());
    let room = room::spawn(config.clone(), metrics.clone(), cancel.clone());
    let state = AppState {
        config: config.clone(),
        room: room.handle,
        metrics,
        cancel: cancel.clone(),
        connections: connections.clone(),
    };

    let send_buffer = config.send_buffer_bytes;
    let listener = listener.tap_io(move |tcp| {
        // Frames are small and latency-bound: never wait to coalesce them.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!("cannot set TCP_NODELAY: {e}");
        }
        // A bounded kernel buffer makes a stalled reader show up as a stale
        // outbox within seconds instead of after megabytes.
        if send_buffer > 0
            && let Err(e) = socket2::SockRef::from(&*tcp).set_send_buffer_size(send_buffer)
        {
            tracing::debug!("cannot set SO_SNDBUF: {e}");
        }
    });

    let stop = cancel.clone();
    axum::serve(listener, app(state))
        .with_graceful_shutdown(async move {
            shutdown.await;
            tracing::info!("shutting down: closing every connection");
            stop.cancel();
        })
        .await?;

    // Upgraded sockets outlive axum's graceful shutdown; wait for their close frames.
    cancel.cancel();
    connections.close();
    if tokio::time::timeout(SHUTDOWN_GRACE, connections.wait()).await.is_err() {
        tracing::warn!("some connections did not close within {SHUTDOWN_GRACE:?}");
    }
    if tokio::time::timeout(SHUTDOWN_GRACE, room.task).await.is_err() {
        tracing::warn!("room task did not stop within {SHUTDOWN_GRACE:?}");
    }
    Ok(())
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
