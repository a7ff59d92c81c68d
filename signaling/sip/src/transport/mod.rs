//! The transport layer's tokio edge (RFC 3261 s18, RFC 7118): UDP sockets, TCP and
//! TLS streams framed by Content-Length, and WebSocket connections (subprotocol
//! `sip`). Every transport turns what arrives into [`Inbound`] items on one channel
//! and sends bytes out by [`Flow`]; the sans-IO cores above never see a socket.
//! Stream connections are kept in a table by [`ConnId`], so that requests for a
//! client behind NAT or on a WebSocket go back down the connection it opened.

mod accept;
mod limits;
mod stream;
mod tls;
mod udp;
mod ws;

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::UdpSocket;
use tokio::sync::mpsc;

pub use limits::ConnectionLimits;
pub use stream::serve_tcp;
pub use tls::{load_tls_acceptor, serve_tls};
pub use udp::serve_udp;
pub use ws::{serve_ws, serve_wss};

/// Which SIP transport a flow uses (the Via transport token).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransportKind {
    /// UDP datagrams.
    Udp,
    /// TCP stream.
    Tcp,
    /// TLS over TCP.
    Tls,
    /// WebSocket (RFC 7118).
    Ws,
    /// Secure WebSocket.
    Wss,
}

impl TransportKind {
    /// The Via transport token (`UDP`, `TCP`, `TLS`, `WS`, `WSS`).
    pub fn via_token(self) -> &'static str {
        match self {
            Self::Udp => "UDP",
            Self::Tcp => "TCP",
            Self::Tls => "TLS",
            Self::Ws => "WS",
            Self::Wss => "WSS",
        }
    }

    /// Lowercase name, as stored with registrations and used in `transport=` params.
    pub fn name(self) -> &'static str {
        match self {
            Self::Udp => "udp",
            Self::Tcp => "tcp",
            Self::Tls => "tls",
            Self::Ws => "ws",
            Self::Wss => "wss",
        }
    }

    /// Parses a Via token or `transport=` value, any case.
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Udp, Self::Tcp, Self::Tls, Self::Ws, Self::Wss]
            .into_iter()
            .find(|kind| kind.name().eq_ignore_ascii_case(text))
    }

    /// Reliable transports have no retransmission timers (RFC 3261 s17).
    pub fn is_reliable(self) -> bool {
        self != Self::Udp
    }
}

/// Identifies one live stream connection on this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "c{}", self.0)
    }
}

/// Where a message came from or goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Flow {
    /// Transport.
    pub kind: TransportKind,
    /// Our address.
    pub local: SocketAddr,
    /// The peer's address (as seen on the wire, i.e. after NAT).
    pub remote: SocketAddr,
    /// The stream connection, for stream transports.
    pub conn: Option<ConnId>,
}

/// What a transport delivers to the core.
#[derive(Debug)]
pub enum Inbound {
    /// One message's bytes as they arrived (a datagram, a framed stream
    /// message, or a WebSocket message).
    Message {
        /// Where it came from.
        flow: Flow,
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// A stream connection closed (the peer left, a framing error, a timeout).
    Closed {
        /// The connection's flow.
        flow: Flow,
    },
}

/// Why a send failed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The stream connection is gone.
    #[error("connection {0} is closed")]
    ConnectionClosed(ConnId),
    /// No socket of that transport to send from.
    #[error("no {0} socket to send from")]
    NoSocket(&'static str),
    /// The socket refused the datagram.
    #[error("send failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Counters of what the transports refused or dropped.
#[derive(Debug, Default)]
pub struct TransportStats {
    /// Messages over the size limit.
    pub oversize: AtomicU64,
    /// Stream connections closed for a framing error.
    pub framing_errors: AtomicU64,
    /// Connections refused at accept: a cap was reached.
    pub refused_connections: AtomicU64,
    /// Connections closed by a deadline (handshake, first message, message, silence).
    pub timed_out: AtomicU64,
    /// `accept()` failures (out of file descriptors, ...), each followed by a pause.
    pub accept_errors: AtomicU64,
}

/// The live sockets and connections; cheap to clone.
#[derive(Debug, Clone)]
pub struct Transports {
    inner: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    udp: Mutex<Option<Arc<UdpSocket>>>,
    conns: Mutex<HashMap<ConnId, mpsc::Sender<Vec<u8>>>>,
    next_conn: AtomicU64,
    inbound: mpsc::Sender<Inbound>,
    max_message: usize,
    admission: limits::Admission,
    stats: TransportStats,
}

/// Outgoing queue per stream connection; a peer that stops reading is dropped.
const CONNECTION_QUEUE: usize = 256;

impl Transports {
    /// A hub whose transports deliver into `inbound`, refusing messages larger
    /// than `max_message` bytes, holding stream connections within `limits`.
    pub fn new(inbound: mpsc::Sender<Inbound>, max_message: usize, limits: ConnectionLimits) -> Self {
        Self {
            inner: Arc::new(Shared {
                udp: Mutex::new(None),
                conns: Mutex::new(HashMap::new()),
                next_conn: AtomicU64::new(1),
                inbound,
                max_message,
                admission: limits::Admission::new(limits),
                stats: TransportStats::default(),
            }),
        }
    }

    /// The size limit of one message.
    pub fn max_message(&self) -> usize {
        self.inner.max_message
    }

    /// What was refused so far.
    pub fn stats(&self) -> &TransportStats {
        &self.inner.stats
    }

    /// The caps and timeouts of stream connections.
    pub fn limits(&self) -> &ConnectionLimits {
        self.inner.admission.limits()
    }

    /// A slot for a new stream connection from `source`, if the caps allow.
    pub(crate) fn admit(&self, source: std::net::IpAddr) -> Option<limits::Permit> {
        self.inner.admission.admit(source, &self.inner.stats)
    }

    /// Stream connections held now.
    pub fn connections(&self) -> usize {
        self.inner.admission.held()
    }

    /// Delivers an arrived message to the core; false when the core is gone.
    pub(crate) async fn deliver(&self, flow: Flow, bytes: Vec<u8>) -> bool {
        if bytes.len() > self.inner.max_message {
            self.inner.stats.oversize.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(remote = %flow.remote, len = bytes.len(), "oversize message dropped");
            return true;
        }
        self.inner
            .inbound
            .send(Inbound::Message { flow, bytes })
            .await
            .is_ok()
    }

    /// Registers a new stream connection; its writer drains the returned receiver.
    pub(crate) fn add_connection(&self) -> (ConnId, mpsc::Receiver<Vec<u8>>) {
        let id = ConnId(self.inner.next_conn.fetch_add(1, Ordering::Relaxed));
        let (tx, rx) = mpsc::channel(CONNECTION_QUEUE);
        self.lock_conns().insert(id, tx);
        (id, rx)
    }

    /// Forgets a closed connection.
    pub(crate) fn remove_connection(&self, id: ConnId) {
        self.lock_conns().remove(&id);
    }

    /// Runs one stream connection (TCP, TLS, WS, WSS) in the connection table:
    /// `write` gets what the core sends down it (in a task of its own), `read`
    /// gets the connection's flow and delivers what arrives; when `read` ends the
    /// connection leaves the table and the writer stops.
    pub(crate) async fn run_connection<W, R>(
        &self,
        kind: TransportKind,
        local: SocketAddr,
        remote: SocketAddr,
        write: impl FnOnce(mpsc::Receiver<Vec<u8>>) -> W,
        read: impl FnOnce(Flow) -> R,
    ) where
        W: std::future::Future<Output = ()> + Send + 'static,
        R: std::future::Future<Output = ()>,
    {
        let (id, outgoing) = self.add_connection();
        let flow = Flow {
            kind,
            local,
            remote,
            conn: Some(id),
        };
        let writing = tokio::spawn(write(outgoing));
        read(flow).await;
        self.remove_connection(id);
        writing.abort();
        let _ = self.inner.inbound.send(Inbound::Closed { flow }).await;
    }

    pub(crate) fn set_udp(&self, socket: Arc<UdpSocket>) {
        // A poisoned lock only means another thread panicked while swapping an Arc.
        *self.inner.udp.lock().unwrap_or_else(|p| p.into_inner()) = Some(socket);
    }

    fn lock_conns(&self) -> std::sync::MutexGuard<'_, HashMap<ConnId, mpsc::Sender<Vec<u8>>>> {
        self.inner.conns.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a stream connection is still open.
    pub fn is_connected(&self, id: ConnId) -> bool {
        self.lock_conns().contains_key(&id)
    }

    /// Sends bytes along a flow: down its connection for streams, from our UDP
    /// socket for datagrams. Never waits on a slow peer: a full queue drops the
    /// connection.
    pub async fn send(&self, flow: &Flow, bytes: Vec<u8>) -> Result<(), SendError> {
        match flow.conn {
            Some(id) => {
                let tx = self.lock_conns().get(&id).cloned();
                let tx = tx.ok_or(SendError::ConnectionClosed(id))?;
                tx.try_send(bytes).map_err(|_| {
                    self.remove_connection(id);
                    SendError::ConnectionClosed(id)
                })
            }
            None => {
                let socket = self.inner.udp.lock().unwrap_or_else(|p| p.into_inner()).clone();
                let socket = socket.ok_or(SendError::NoSocket("UDP"))?;
                socket.send_to(&bytes, flow.remote).await?;
                Ok(())
            }
        }
    }
}
