//! The accept loop every stream transport shares: accept TCP (a connection over
//! a cap is closed at once), complete a TLS handshake within its deadline when
//! there is one, and hand the stream to the transport's connection handler in a
//! task of its own, which holds the connection's slot until it ends. An
//! `accept()` failure (out of file descriptors, say) pauses the loop, longer
//! each time in a row, and never ends it: the listener serves again once
//! descriptors are free.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::Transports;

/// A byte stream, plain or TLS.
pub(crate) trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// An accepted connection, plain or TLS.
pub(crate) type IoStream = Box<dyn Stream>;

/// The pause after an `accept()` failure: 10 ms, doubling to 1 s.
fn pause(failures: u32) -> Duration {
    Duration::from_millis(10 * 2u64.pow(failures.min(7))).min(Duration::from_secs(1))
}

/// Accepts connections for as long as the task runs; `serve` runs each one.
pub(crate) async fn accept_loop<F, Fut>(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    transports: Transports,
    serve: F,
) -> std::io::Result<()>
where
    F: Fn(IoStream, SocketAddr, SocketAddr, Transports) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let local = listener.local_addr()?;
    let mut failures = 0;
    loop {
        let (socket, remote) = match listener.accept().await {
            Ok(accepted) => {
                failures = 0;
                accepted
            }
            Err(err) => {
                transports.stats().accept_errors.fetch_add(1, Ordering::Relaxed);
                if failures == 0 {
                    tracing::warn!(%err, %local, "accept failed; pausing");
                }
                tokio::time::sleep(pause(failures)).await;
                failures += 1;
                continue;
            }
        };
        let Some(permit) = transports.admit(remote.ip()) else {
            tracing::debug!(%remote, "connection refused: too many");
            continue;
        };
        let _ = socket.set_nodelay(true);
        let (tls, transports, serve) = (tls.clone(), transports.clone(), serve.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let stream: IoStream = match tls {
                Some(acceptor) => {
                    let handshake = transports.limits().handshake;
                    match tokio::time::timeout(handshake, acceptor.accept(socket)).await {
                        Ok(Ok(stream)) => Box::new(stream),
                        Ok(Err(err)) => {
                            tracing::debug!(%remote, %err, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            transports.stats().timed_out.fetch_add(1, Ordering::Relaxed);
                            tracing::debug!(%remote, "TLS handshake timed out");
                            return;
                        }
                    }
                }
                None => Box::new(socket),
            };
            serve(stream, local, remote, transports).await;
        });
    }
}
