//! Which servers a `wss://` client trusts: the public web's certificate
//! authorities, or the one certificate a host made for their own server.

use std::sync::Arc;

use rustls::ClientConfig;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

fn builder() -> rustls::ConfigBuilder<ClientConfig, rustls::WantsVerifier> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring's defaults include TLS 1.2 and 1.3")
}

/// Trusts the certificate authorities browsers trust.
pub fn public_roots() -> Arc<ClientConfig> {
    let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    Arc::new(builder().with_root_certificates(roots).with_no_client_auth())
}

/// Trusts only the certificates in `pem` (a self-signed one, or a private CA).
pub fn trusting(pem: &[u8]) -> Result<Arc<ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| format!("not a PEM certificate: {e}"))?;
        roots.add(cert).map_err(|e| format!("unusable certificate: {e}"))?;
    }
    if roots.is_empty() {
        return Err("no certificate found (expected -----BEGIN CERTIFICATE-----)".into());
    }
    Ok(Arc::new(builder().with_root_certificates(roots).with_no_client_auth()))
}
