//! The HTTP client of deliveries: one POST to a webhook URL, with nothing an
//! outsider can steer inward. The host's addresses are resolved here and every
//! one is checked (no loopback, private, link-local … address unless the operator
//! allows internal targets), then the connection goes to a checked address, so a
//! name that resolves elsewhere later (DNS rebinding) cannot slip through.
//! Redirects are not followed; the whole exchange has a deadline; the answer's
//! body is not read. HTTPS with the Mozilla root store (webpki-roots), plus the
//! operator's own CA when configured.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use http_body_util::Full;
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

/// Why a POST did not get an answer.
#[derive(Debug, thiserror::Error)]
pub enum PostError {
    /// The URL cannot be posted to (checked when stored; kept for safety).
    #[error("bad URL: {0}")]
    BadUrl(String),
    /// The name resolves to an address of the server's own networks.
    #[error("{0} resolves to an internal address ({1}); not sent")]
    Internal(String, std::net::IpAddr),
    /// Name resolution, connection, TLS or HTTP failed.
    #[error("{0}")]
    Io(String),
    /// The receiver took longer than the deadline.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

/// A client for deliveries; cheap to clone.
#[derive(Clone)]
pub struct Client {
    tls: TlsConnector,
    allow_internal: bool,
    timeout: Duration,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("allow_internal", &self.allow_internal)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client trusting the Mozilla roots and the PEM certificates in `extra_ca`.
    pub fn new(allow_internal: bool, timeout: Duration, extra_ca: Option<&[u8]>) -> Result<Self, String> {
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(pem) = extra_ca {
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| format!("webhook CA file: {e}"))?;
                roots.add(cert).map_err(|e| format!("webhook CA file: {e}"))?;
            }
        }
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self {
            tls: TlsConnector::from(Arc::new(config)),
            allow_internal,
            timeout,
        })
    }

    /// POSTs `body` as JSON to `url` with `headers`; the answer's status.
    pub async fn post(&self, url: &str, headers: &[(&str, String)], body: Bytes) -> Result<u16, PostError> {
        tokio::time::timeout(self.timeout, self.exchange(url, headers, body))
            .await
            .map_err(|_| PostError::Timeout(self.timeout))?
    }

    async fn exchange(&self, url: &str, headers: &[(&str, String)], body: Bytes) -> Result<u16, PostError> {
        let url = url::Url::parse(url).map_err(|e| PostError::BadUrl(e.to_string()))?;
        let https = match url.scheme() {
            "https" => true,
            "http" => false,
            other => return Err(PostError::BadUrl(format!("scheme {other}"))),
        };
        let host = url
            .host_str()
            .ok_or_else(|| PostError::BadUrl("no host".to_owned()))?;
        let port = url
            .port_or_known_default()
            .unwrap_or(if https { 443 } else { 80 });
        let address = self.checked_address(host, port).await?;
        let tcp = TcpStream::connect(address)
            .await
            .map_err(|e| PostError::Io(format!("connect to {address}: {e}")))?;
        let mut path = url.path().to_owned();
        if let Some(query) = url.query() {
            path.push('?');
            path.push_str(query);
        }
        let host_header = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        let mut request = Request::post(path)
            .header(hyper::header::HOST, host_header)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header(
                hyper::header::USER_AGENT,
                concat!("offhook-webhooks/", env!("CARGO_PKG_VERSION")),
            );
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let request = request
            .body(Full::new(body))
            .map_err(|e| PostError::BadUrl(e.to_string()))?;
        if https {
            let name = ServerName::try_from(host.trim_start_matches('[').trim_end_matches(']').to_owned())
                .map_err(|e| PostError::BadUrl(e.to_string()))?;
            let tls = self
                .tls
                .connect(name, tcp)
                .await
                .map_err(|e| PostError::Io(format!("TLS with {host}: {e}")))?;
            send(tls, request).await
        } else {
            send(tcp, request).await
        }
    }

    /// The first address of `host` if none of them is internal (or internal
    /// targets are allowed).
    async fn checked_address(&self, host: &str, port: u16) -> Result<SocketAddr, PostError> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let addresses: Vec<SocketAddr> = tokio::net::lookup_host((bare, port))
            .await
            .map_err(|e| PostError::Io(format!("resolve {host}: {e}")))?
            .collect();
        if !self.allow_internal
            && let Some(inside) = addresses
                .iter()
                .map(SocketAddr::ip)
                .find(|ip| offhook_directory::is_internal_address(*ip))
        {
            return Err(PostError::Internal(host.to_owned(), inside));
        }
        addresses
            .first()
            .copied()
            .ok_or_else(|| PostError::Io(format!("{host} has no address")))
    }
}

async fn send<S>(stream: S, request: Request<Full<Bytes>>) -> Result<u16, PostError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| PostError::Io(format!("HTTP: {e}")))?;
    // The connection task ends when the exchange does (or the timeout drops us).
    let connection = tokio::spawn(connection);
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| PostError::Io(format!("HTTP: {e}")));
    connection.abort();
    Ok(response?.status().as_u16())
}
