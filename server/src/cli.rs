//! The binary's face: parse the flags, set up logging and the runtime,
//! bind, print where to connect, and run until Ctrl-C or SIGTERM.
//! `arena-server`'s `main` is this, and so is the tests' node binary.

use std::net::{IpAddr, SocketAddr};

use crate::ServerConfig;
use anyhow::Context;
use clap::Parser;
use tokio::net::{TcpListener, TcpSocket};
use tracing_subscriber::EnvFilter;

/// Listen backlog: a burst of connections waits in the kernel instead of
/// being dropped before the server can accept (and bound) it. Linux caps
/// it at `net.core.somaxconn`.
const LISTEN_BACKLOG: u32 = 4096;

/// Runs `arena-server` with the process's flags until it is told to stop.
pub fn main() -> anyhow::Result<()> {
    let config = ServerConfig::parse();
    let runtime = match config.net.threads {
        1 => tokio::runtime::Builder::new_current_thread().enable_all().build(),
        0 => tokio::runtime::Builder::new_multi_thread().enable_all().build(),
        n => tokio::runtime::Builder::new_multi_thread().worker_threads(usize::from(n)).enable_all().build(),
    }
    .context("cannot start the async runtime")?;
    runtime.block_on(serve(config))
}

async fn serve(config: ServerConfig) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .init();
    #[cfg(unix)]
    if let Err(e) = tikv_jemalloc_ctl::background_thread::write(true) {
        tracing::warn!("cannot start jemalloc's background thread (memory is returned more slowly): {e}");
    }

    let listener = listen(config.net.bind).with_context(|| {
        format!("cannot listen on {} (is another server using it? try --bind)", config.net.bind)
    })?;
    let addr = listener.local_addr().context("listener has no local address")?;
    print_urls(addr, crate::serves_client(&config), config.net.tls_cert.is_some());
    crate::run(listener, config, crate::shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Tells the host what to share: the loopback URL and, when listening on all
/// interfaces, one per LAN address.
fn print_urls(addr: SocketAddr, serving_client: bool, tls: bool) {
    let (http, ws) = if tls { ("https", "wss") } else { ("http", "ws") };
    let port = addr.port();
    // IPv4 only: what people type and share.
    let hosts: Vec<IpAddr> = crate::local_addresses(addr).into_iter().filter(IpAddr::is_ipv4).collect();
    let hosts = if hosts.is_empty() { vec![addr.ip()] } else { hosts };
    println!("arena-server listening on {http}://{}", SocketAddr::new(hosts[0], port));
    for host in &hosts {
        let address = SocketAddr::new(*host, port);
        if serving_client {
            println!("  play:      {http}://{address}/");
        }
        println!("  websocket: {ws}://{address}/ws");
    }
    if !serving_client {
        println!("  (no --web-dir and no built-in client: serving the websocket only; bots can connect)");
    }
}
