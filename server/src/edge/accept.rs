//! The accept loop and each TCP connection's HTTP life, with the bounds
//! `axum::serve` does not offer: a deadline for every request head, caps on
//! connections in all and per address (HTTP 503 past them), `accept` errors
//! logged and survived, TLS when configured, and a hard stop at shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::edge::tls::HandshakeError;
use crate::limits::{CapExceeded, ConnectionLimits, ConnectionSlot};
use crate::telemetry::metrics::{Kick, Metrics};

/// Largest request head hyper buffers (its default is ~400 KiB per socket).
const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Time an HTTP connection gets, at shutdown, to finish the response it is writing.
const HTTP_SHUTDOWN_GRACE: Duration = Duration::from_millis(500);
/// Time a refused connection gets to read its 503.
const REFUSE_TIMEOUT: Duration = Duration::from_millis(500);
/// Refusals being written at once; past this a refused socket is just closed,
/// so a connection flood cannot hold descriptors through its own 503s.
const MAX_REFUSING: usize = 64;
/// Pause after an `accept` error such as "too many open files", so the loop
/// does not spin while descriptors are short.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);
/// Descriptors kept for everything that is not a client socket: an eighth
/// of the limit, at least 16 and at most 256.
fn spare_fds(limit: u64) -> u64 {
    (limit / 8).clamp(16, 256)
}

/// What the accept loop needs besides the listener.
pub struct Acceptor {
    pub router: Router,
    pub limits: Arc<ConnectionLimits>,
    pub metrics: Arc<Metrics>,
    pub header_timeout: Duration,
    /// Kernel send buffer per socket (0: the OS default).
    pub send_buffer: usize,
    pub cancel: CancellationToken,
    /// HTTP connections; upgraded sockets are tracked by the `/ws` handler.
    pub tracker: TaskTracker,
    /// With `--tls-cert`: every connection speaks TLS first, its handshake
    /// on the handshake thread.
    pub tls: Option<crate::edge::tls::Handshaker>,
}

/// Raises the soft open-files limit to the hard one, logs the result, and
/// returns how many client sockets fit (`None` where there is no such limit).
pub fn raise_fd_limit() -> Option<u64> {
    let before = rlimit::getrlimit(rlimit::Resource::NOFILE).ok()?.0;
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(now) => {
            if now != before {
                tracing::info!(from = before, to = now, "raised the open-files limit to its hard limit");
            } else {
                tracing::info!(limit = now, "open-files limit");
            }
            Some(now.saturating_sub(spare_fds(now)))
        }
        Err(e) => {
            tracing::warn!(limit = before, "cannot raise the open-files limit: {e}");
            Some(before.saturating_sub(spare_fds(before)))
        }
    }
}

impl Acceptor {
    /// Accepts until `cancel` fires. Every connection runs on `tracker`.
    pub async fn run(self, listener: TcpListener) {
        let this = Arc::new(self);
        let refusing = Arc::new(AtomicUsize::new(0));
        let mut last_error_log: Option<Instant> = None;
        loop {
            let accepted = tokio::select! {
                biased;
                () = this.cancel.cancelled() => break,
                accepted = listener.accept() => accepted,
            };
            let (tcp, peer) = match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    this.metrics.accept_errors_total.inc();
                    // One line per second at most: a descriptor shortage fails every accept.
                    if last_error_log.is_none_or(|at| at.elapsed() >= Duration::from_secs(1)) {
                        tracing::warn!("accept failed (still serving): {e}");
                        last_error_log = Some(Instant::now());
                    }
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            };
            tune(&tcp, this.send_buffer);
            match this.limits.try_acquire(peer.ip()) {
                Ok(slot) => {
                    this.tracker.spawn(this.clone().serve_http(tcp, peer, Arc::new(slot)));
                }
                Err(cap) => {
                    this.metrics.kick(Kick::ConnectionCap);
                    tracing::debug!(%peer, ?cap, "refusing a connection over the cap");
                    if refusing.fetch_add(1, Relaxed) < MAX_REFUSING {
                        let refusing = refusing.clone();
                        tokio::spawn(async move {
                            refuse(tcp, cap).await;
                            refusing.fetch_sub(1, Relaxed);
                        });
                    } else {
                        refusing.fetch_sub(1, Relaxed);
                    }
                }
            }
        }
    }

    /// One connection: TLS first if configured (within the head deadline),
    /// then HTTP/1.1.
    async fn serve_http(self: Arc<Self>, tcp: TcpStream, peer: SocketAddr, slot: Arc<ConnectionSlot>) {
        let _open = OpenGauge::new(&self.metrics);
        let started = Instant::now();
        let Some(tls) = &self.tls else {
            return self.serve_io(tcp, peer, slot, started).await;
        };
        match tls.handshake(tcp, peer.ip(), self.header_timeout, &self.cancel).await {
            Ok(stream) => self.serve_io(stream, peer, slot, started).await,
            Err(HandshakeError::Refused) => {
                self.metrics.tls_refused_total.inc();
                tracing::debug!(%peer, "refused a TLS handshake over the budget");
            }
            Err(HandshakeError::TimedOut) => self.kick_slow_head(peer),
            Err(HandshakeError::Failed(e)) => tracing::debug!(%peer, "TLS handshake failed: {e}"),
            Err(HandshakeError::Cancelled) => {}
        }
    }

    /// HTTP/1.1 over `io`: requests with a deadline on every head, upgrades
    /// handed to the router's `/ws` handler.
    async fn serve_io<I>(&self, io: I, peer: SocketAddr, slot: Arc<ConnectionSlot>, started: Instant)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let router = self.router.clone();
        // hyper ends a connection that never sent a byte quietly when its head
        // deadline passes; this tells that case apart from a served one.
        let requested = Arc::new(AtomicBool::new(false));
        let requested_in_service = requested.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            requested_in_service.store(true, Relaxed);
            request.extensions_mut().insert(ConnectInfo(peer));
            // The `/ws` handler moves a clone into the upgraded socket's task.
            request.extensions_mut().insert(slot.clone());
            router.clone().oneshot(request)
        });
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(self.header_timeout)
            .max_buf_size(MAX_HEAD_BYTES);
        let connection = builder.serve_connection(TokioIo::new(io), service).with_upgrades();
        tokio::pin!(connection);
        let result = tokio::select! {
            result = connection.as_mut() => result,
            () = self.cancel.cancelled() => {
                connection.as_mut().graceful_shutdown();
                match tokio::time::timeout(HTTP_SHUTDOWN_GRACE, connection.as_mut()).await {
                    Ok(result) => result,
                    Err(_) => return,
                }
            }
        };
        let silent = !requested.load(Relaxed) && started.elapsed() >= self.header_timeout;
        match result {
            Err(e) if e.is_timeout() => self.kick_slow_head(peer),
            Ok(()) if silent => self.kick_slow_head(peer),
            Err(e) => tracing::debug!(%peer, "http connection ended: {e}"),
            Ok(()) => {}
        }
    }

    fn kick_slow_head(&self, peer: SocketAddr) {
        self.metrics.kick(Kick::HeaderTimeout);
        tracing::debug!(%peer, "closed a connection that sent no complete request head in time");
    }
}

/// Counts a connection in `arena_connections_open` while it lives.
struct OpenGauge<'a>(&'a Metrics);

impl<'a> OpenGauge<'a> {
    fn new(metrics: &'a Metrics) -> Self {
        metrics.connections_open.inc();
        OpenGauge(metrics)
    }
}

impl Drop for OpenGauge<'_> {
    fn drop(&mut self) {
        self.0.connections_open.dec();
    }
}

fn tune(tcp: &TcpStream, send_buffer: usize) {
    // Frames are small and latency-bound: never wait to coalesce them.
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!("cannot set TCP_NODELAY: {e}");
    }
    // A bounded kernel buffer makes a stalled reader show up as a stale
    // outbox within seconds instead of after megabytes.
    if send_buffer > 0
        && let Err(e) = socket2::SockRef::from(tcp).set_send_buffer_size(send_buffer)
    {
        tracing::debug!("cannot set SO_SNDBUF: {e}");
    }
}

/// Answers 503 with the reason, then reads (and drops) what the client sent
/// so closing does not reset the connection before it reads the answer.
async fn refuse(mut tcp: TcpStream, cap: CapExceeded) {
    let body = format!("{}\n", cap.message());
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\nretry-after: 5\r\n\
         connection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(REFUSE_TIMEOUT, async {
        tcp.write_all(response.as_bytes()).await?;
        tcp.shutdown().await?;
        let mut sink = [0u8; 1024];
        while tcp.read(&mut sink).await? > 0 {}
        Ok::<_, std::io::Error>(())
    })
    .await;
}
