//! SIP over WebSocket (RFC 7118), what browsers use: the handshake must offer the
//! `sip` subprotocol and gets it echoed; each WebSocket message (text or binary)
//! is exactly one SIP message. Requests for the client go back down the same
//! connection (its Via and Contact hosts are `.invalid`). The handshake has a
//! deadline; the server pings every connection (browsers answer by themselves)
//! and closes one that says nothing at all for two pings, so a browser that went
//! away without closing is noticed within a minute and its calls end. Buffers
//! are small (a few KiB per idle connection; SIP messages are small).

use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use futures_util::{SinkExt as _, StreamExt as _};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use super::accept::accept_loop;
use super::{Flow, TransportKind, Transports};

/// Read buffer per connection (tungstenite's default is 128 KiB).
const BUFFER: usize = 4 * 1024;

/// Accepts plain WebSocket connections.
pub async fn serve_ws(listener: TcpListener, transports: Transports) -> std::io::Result<()> {
    accept_loop(listener, None, transports, |stream, local, remote, transports| {
        serve_ws_connection(stream, TransportKind::Ws, local, remote, transports)
    })
    .await
}

/// Accepts WebSocket connections over TLS.
pub async fn serve_wss(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    transports: Transports,
) -> std::io::Result<()> {
    accept_loop(
        listener,
        Some(acceptor),
        transports,
        |stream, local, remote, transports| {
            serve_ws_connection(stream, TransportKind::Wss, local, remote, transports)
        },
    )
    .await
}

/// Accepts the handshake only with the `sip` subprotocol, and echoes it.
#[allow(clippy::result_large_err)] // the signature is tungstenite's callback type
fn require_sip_subprotocol(request: &Request, mut response: Response) -> Result<Response, ErrorResponse> {
    let offers_sip = request
        .headers()
        .get_all("Sec-WebSocket-Protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim().eq_ignore_ascii_case("sip"));
    if !offers_sip {
        let mut refusal = ErrorResponse::new(Some(
            "the 'sip' WebSocket subprotocol is required (RFC 7118)".into(),
        ));
        *refusal.status_mut() = StatusCode::BAD_REQUEST;
        return Err(refusal);
    }
    response
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", HeaderValue::from_static("sip"));
    Ok(response)
}

async fn serve_ws_connection<S>(
    stream: S,
    kind: TransportKind,
    local: SocketAddr,
    remote: SocketAddr,
    transports: Transports,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let limits = *transports.limits();
    let config = WebSocketConfig::default()
        .read_buffer_size(BUFFER)
        .write_buffer_size(0)
        .max_write_buffer_size(transports.max_message() * 4)
        .max_message_size(Some(transports.max_message()))
        .max_frame_size(Some(transports.max_message()));
    let handshake =
        tokio_tungstenite::accept_hdr_async_with_config(stream, require_sip_subprotocol, Some(config));
    let socket = match tokio::time::timeout(limits.handshake, handshake).await {
        Ok(Ok(socket)) => socket,
        Ok(Err(err)) => {
            tracing::debug!(%remote, %err, "WebSocket handshake refused");
            return;
        }
        Err(_) => {
            transports.stats().timed_out.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%remote, "WebSocket handshake timed out");
            return;
        }
    };
    let (mut sink, mut source) = socket.split();
    let write = move |mut outgoing: tokio::sync::mpsc::Receiver<Vec<u8>>| async move {
        let mut ping = tokio::time::interval(limits.ping);
        ping.tick().await;
        loop {
            let message = tokio::select! {
                bytes = outgoing.recv() => match bytes {
                    // SIP is text; a message that is not UTF-8 (binary body) goes as binary.
                    Some(bytes) => match String::from_utf8(bytes) {
                        Ok(text) => Message::text(text),
                        Err(err) => Message::binary(err.into_bytes()),
                    },
                    None => break,
                },
                _ = ping.tick() => Message::Ping(Default::default()),
            };
            if sink.send(message).await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    };
    let table = transports.clone();
    let read = |flow: Flow| async move {
        let mut spoke = false;
        loop {
            // Any frame (a pong too) shows the peer is there.
            let wait = if spoke {
                limits.ping * 2
            } else {
                limits.first_message
            };
            let message = match tokio::time::timeout(wait, source.next()).await {
                Ok(Some(Ok(message))) => message,
                Ok(_) => break,
                Err(_) => {
                    transports.stats().timed_out.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(%remote, "closing WebSocket connection: silent");
                    break;
                }
            };
            let bytes = match message {
                Message::Text(text) => text.as_bytes().to_vec(),
                Message::Binary(bytes) => bytes.to_vec(),
                Message::Close(_) => break,
                _ => continue,
            };
            spoke = true;
            if !transports.deliver(flow, bytes).await {
                break;
            }
        }
    };
    table.run_connection(kind, local, remote, write, read).await;
}
