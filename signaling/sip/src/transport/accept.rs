//! The accept loop every stream transport shares: accept TCP, optionally complete
//! a TLS handshake, and hand the stream to the transport's connection handler in a
//! task of its own (TCP and TLS framing, WebSocket and secure WebSocket).

use std::future::Future;
use std::net::SocketAddr;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::Transports;

/// A byte stream, plain or TLS.
pub(crate) trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// An accepted connection, plain or TLS.
pub(crate) type IoStream = Box<dyn Stream>;

/// Accepts connections until the listener fails; `serve` runs each one.
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
    loop {
        let (socket, remote) = listener.accept().await?;
        let _ = socket.set_nodelay(true);
        let (tls, transports, serve) = (tls.clone(), transports.clone(), serve.clone());
        tokio::spawn(async move {
            let stream: IoStream = match tls {
                Some(acceptor) => match acceptor.accept(socket).await {
                    Ok(stream) => Box::new(stream),
                    Err(err) => {
                        tracing::debug!(%remote, %err, "TLS handshake failed");
                        return;
                    }
                },
                None => Box::new(socket),
            };
            serve(stream, local, remote, transports).await;
        });
    }
}
