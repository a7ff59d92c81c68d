//! TLS for SIP over TCP (`sips:`, port 5061) and for secure WebSocket, with rustls
//! (ring provider: it builds with a C compiler only), configured from PEM files.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::accept::accept_loop;
use super::stream::serve_connection;
use super::{TransportKind, Transports};

/// Builds an acceptor from a PEM certificate chain and a PEM private key.
pub fn load_tls_acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|iter| iter.collect())
        .map_err(|e| format!("certificate {}: {e}", cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("private key {}: {e}", key.display()))?;
    let config =
        rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key))
            .map_err(|e| format!("TLS configuration: {e}"))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Accepts TLS connections carrying SIP (framed like TCP).
pub async fn serve_tls(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    transports: Transports,
) -> std::io::Result<()> {
    accept_loop(
        listener,
        Some(acceptor),
        transports,
        |stream, local, remote, transports| {
            serve_connection(stream, TransportKind::Tls, local, remote, transports)
        },
    )
    .await
}
