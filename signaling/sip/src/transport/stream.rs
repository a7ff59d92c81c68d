//! TCP (and, through [`serve_connection`], TLS) connections: bytes are framed into
//! messages by Content-Length with a size limit; a framing error or an oversize
//! message closes the connection (RFC 3261 s18.3: the stream cannot be resynced),
//! and so do the deadlines of [`super::ConnectionLimits`]: no first message in
//! time, a message started and not finished in time (a slow drip of headers),
//! or a long silence.

use std::net::SocketAddr;

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::TcpListener;

use super::accept::accept_loop;
use super::{Flow, TransportKind, Transports};
use crate::message::StreamFramer;
use std::sync::atomic::Ordering;

/// Accepts TCP connections until the core goes away.
pub async fn serve_tcp(listener: TcpListener, transports: Transports) -> std::io::Result<()> {
    accept_loop(listener, None, transports, |stream, local, remote, transports| {
        serve_connection(stream, TransportKind::Tcp, local, remote, transports)
    })
    .await
}

/// Runs one stream connection: reads and frames, and writes what the core sends.
pub(crate) async fn serve_connection<S>(
    stream: S,
    kind: TransportKind,
    local: SocketAddr,
    remote: SocketAddr,
    transports: Transports,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut reader, mut writer) = tokio::io::split(stream);
    let write = |mut outgoing: tokio::sync::mpsc::Receiver<Vec<u8>>| async move {
        while let Some(bytes) = outgoing.recv().await {
            if writer.write_all(&bytes).await.is_err() {
                break;
            }
        }
        let _ = writer.shutdown().await;
    };
    let table = transports.clone();
    let read = |flow: Flow| async move {
        let limits = *transports.limits();
        let mut framer = StreamFramer::new(transports.max_message());
        let mut buf = vec![0u8; 16 * 1024];
        let mut spoke = false;
        // When the message being framed began to arrive.
        let mut started: Option<tokio::time::Instant> = None;
        'read: loop {
            let deadline = match started {
                Some(at) => at + limits.message,
                None if spoke => tokio::time::Instant::now() + limits.idle,
                None => tokio::time::Instant::now() + limits.first_message,
            };
            let len = match tokio::time::timeout_at(deadline, reader.read(&mut buf)).await {
                Ok(Ok(0) | Err(_)) => break,
                Ok(Ok(len)) => len,
                Err(_) => {
                    transports.stats().timed_out.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(%remote, "closing stream connection: deadline");
                    break;
                }
            };
            framer.push(&buf[..len]);
            loop {
                match framer.next_message() {
                    Ok(Some(message)) => {
                        spoke = true;
                        started = None;
                        if !transports.deliver(flow, message).await {
                            break 'read;
                        }
                    }
                    Ok(None) => {
                        started = match (framer.is_empty(), started) {
                            (true, _) => None,
                            (false, None) => Some(tokio::time::Instant::now()),
                            (false, at) => at,
                        };
                        break;
                    }
                    Err(err) => {
                        transports.stats().framing_errors.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(%remote, %err, "closing stream connection");
                        break 'read;
                    }
                }
            }
        }
    };
    table.run_connection(kind, local, remote, write, read).await;
}
