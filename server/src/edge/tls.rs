//! HTTPS and WSS without a proxy: `--tls-cert` and `--tls-key` (PEM) load
//! into a rustls acceptor that the accept loop puts in front of HTTP. The
//! handshakes run on a thread of their own ([`Handshaker`]).

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;

use crate::limits::{AddressCaps, Counting, PerAddressBudget};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the certificate chain in {path}: {reason}")]
    Certificates { path: String, reason: String },
    #[error("{path} holds no certificate (expected PEM: -----BEGIN CERTIFICATE-----)")]
    NoCertificate { path: String },
    #[error("cannot read the private key in {path}: {reason} (expected PEM: PKCS#8, PKCS#1 or SEC1)")]
    Key { path: String, reason: String },
    #[error("the key does not fit the certificate, or is not usable: {0}")]
    Config(String),
}

/// Builds the acceptor from PEM files: the certificate chain (leaf first) and
/// its private key. HTTP/1.1 only: WebSockets upgrade over it.
pub fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsError> {
    let shown = |p: &Path| p.display().to_string();
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<_, _>>())
        .map_err(|e| TlsError::Certificates { path: shown(cert), reason: e.to_string() })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate { path: shown(cert) });
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| TlsError::Key { path: shown(key), reason: e.to_string() })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// TLS handshakes at once, in all.
const MAX_HANDSHAKES: usize = 64;
/// TLS handshakes at once from one address.
const MAX_HANDSHAKES_PER_ADDRESS: usize = 8;
/// Full handshakes one address may start at once (a page load opens a few
/// connections; a household or a LAN party shares one address)...
const HANDSHAKE_BURST: f64 = 40.0;
/// ...and then per second. An RSA-2048 signature takes about a millisecond,
/// so one address can cost the handshake thread about 2 % of a core.
const HANDSHAKES_PER_SEC: f64 = 20.0;

/// Runs TLS handshakes on a thread of their own, so that with `--threads 1`
/// a flood of them (an RSA signature each) costs that thread and not the
/// one that ticks the rooms; bounded in all, per address at once, and per
/// address per second. A connection over a bound waits for its turn within
/// the request-head deadline (its socket counts under the connection caps
/// meanwhile), and is closed unanswered if that would not be enough.
pub struct Handshaker {
    acceptor: TlsAcceptor,
    /// The handshake thread's runtime.
    runtime: tokio::runtime::Handle,
    in_flight: Arc<AddressCaps>,
    rate: PerAddressBudget,
    /// Stops the handshake thread when the handshaker goes.
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// Why a connection got no TLS session.
#[derive(Debug)]
pub enum HandshakeError {
    /// Over a handshake budget: closed without an answer.
    Refused,
    /// Not done within the request-head deadline.
    TimedOut,
    /// The peer's bytes were not a handshake we accept.
    Failed(std::io::Error),
    /// The server is stopping.
    Cancelled,
}

impl Handshaker {
    /// Starts the handshake thread.
    pub fn start(acceptor: TlsAcceptor, counting: Counting) -> std::io::Result<Self> {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready, runtime) = std::sync::mpsc::channel();
        std::thread::Builder::new().name("arena-tls".into()).spawn(move || {
            let built = tokio::runtime::Builder::new_current_thread().enable_all().build();
            match built {
                Ok(rt) => {
                    let _ = ready.send(Ok(rt.handle().clone()));
                    let _ = rt.block_on(stopped);
                }
                Err(e) => {
                    let _ = ready.send(Err(e));
                }
            }
        })?;
        let runtime =
            runtime.recv().map_err(|_| std::io::Error::other("the TLS handshake thread did not start"))??;
        Ok(Handshaker {
            acceptor,
            runtime,
            in_flight: AddressCaps::new(MAX_HANDSHAKES, MAX_HANDSHAKES_PER_ADDRESS, counting),
            rate: PerAddressBudget::new(HANDSHAKES_PER_SEC, HANDSHAKE_BURST, counting),
            _stop: stop,
        })
    }

    /// Runs `tcp`'s handshake on the handshake thread, its turn and the
    /// handshake itself within `deadline`.
    pub async fn handshake(
        &self,
        tcp: TcpStream,
        peer: IpAddr,
        deadline: Duration,
        cancel: &CancellationToken,
    ) -> Result<TlsStream<TcpStream>, HandshakeError> {
        let until = tokio::time::Instant::now() + deadline;
        let wait = |pause: Duration| async move {
            if tokio::time::Instant::now() + pause >= until {
                return Err(HandshakeError::Refused);
            }
            tokio::select! {
                () = tokio::time::sleep(pause) => Ok(()),
                () = cancel.cancelled() => Err(HandshakeError::Cancelled),
            }
        };
        let place = tokio::select! {
            place = self.in_flight.acquire_by(peer, until) => place.map_err(|_| HandshakeError::Refused)?,
            () = cancel.cancelled() => return Err(HandshakeError::Cancelled),
        };
        while let Err(over) = self.rate.spend(peer) {
            wait(over.retry_after).await?;
        }
        let accept = self.acceptor.accept(tcp);
        let mut handshake = self.runtime.spawn(async move {
            let shook = tokio::time::timeout_at(until, accept).await;
            drop(place);
            shook
        });
        tokio::select! {
            joined = &mut handshake => match joined {
                Ok(Ok(Ok(stream))) => Ok(stream),
                Ok(Ok(Err(e))) => Err(HandshakeError::Failed(e)),
                Ok(Err(_)) => Err(HandshakeError::TimedOut),
                Err(e) => Err(HandshakeError::Failed(std::io::Error::other(e))),
            },
            () = cancel.cancelled() => {
                handshake.abort();
                Err(HandshakeError::Cancelled)
            }
        }
    }
}
