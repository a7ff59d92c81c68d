//! The tokio edge of an [`Endpoint`]: [`SipSockets`] binds the configured SIP
//! transports (UDP, TCP, WebSocket, TLS, secure WebSocket) into one
//! [`Transports`] hub, hands what arrives to the element's loop
//! ([`SipSockets::recv`] → [`SipSockets::feed`]) and sends what the endpoint
//! asks ([`SipSockets::flush`]), reporting failed sends back to it. Each
//! element (the proxy, the relay, a test UA) runs its own loop around these and
//! its own core; this module reads the clock for them ([`SipSockets::now`]).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Instant;

use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::endpoint::{Endpoint, SipIo};
use crate::transport::{self, ConnectionLimits, Inbound, TransportKind, Transports};

/// Where to listen; each transport is optional.
#[derive(Debug, Clone, Default)]
pub struct Listen {
    /// UDP.
    pub udp: Option<SocketAddr>,
    /// TCP (port 0: the same port as UDP when it is free, else any).
    pub tcp: Option<SocketAddr>,
    /// WebSocket.
    pub ws: Option<SocketAddr>,
    /// TLS.
    pub tls: Option<SocketAddr>,
    /// Secure WebSocket.
    pub wss: Option<SocketAddr>,
    /// Certificate and key (PEM) for TLS and WSS.
    pub tls_files: Option<(PathBuf, PathBuf)>,
    /// Largest message accepted.
    pub max_message: usize,
    /// Caps and deadlines of stream connections.
    pub limits: ConnectionLimits,
}

/// Why the sockets could not be bound.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    /// A listener could not bind.
    #[error("cannot listen on {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    /// TLS is configured but unusable.
    #[error("TLS: {0}")]
    Tls(String),
}

/// The bound transports of one element.
#[derive(Debug)]
pub struct SipSockets {
    transports: Transports,
    inbound: mpsc::Receiver<Inbound>,
    bound: Vec<(TransportKind, SocketAddr)>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for SipSockets {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

fn spawn_logged(
    name: &'static str,
    serve: impl std::future::Future<Output = std::io::Result<()>> + Send + 'static,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        if let Err(err) = serve.await {
            tracing::error!(%err, transport = name, "transport stopped");
        }
    })
}

async fn bind_tcp(addr: SocketAddr) -> Result<TcpListener, BindError> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| BindError::Bind(addr, e))
}

impl SipSockets {
    /// Binds every configured transport and starts serving it.
    pub async fn bind(listen: &Listen) -> Result<Self, BindError> {
        let (inbound_tx, inbound) = mpsc::channel(4096);
        let transports = Transports::new(inbound_tx, listen.max_message, listen.limits);
        let mut sockets = Self {
            transports: transports.clone(),
            inbound,
            bound: Vec::new(),
            tasks: Vec::new(),
        };
        let mut udp_bound = None;
        if let Some(addr) = listen.udp {
            let socket = UdpSocket::bind(addr)
                .await
                .map_err(|e| BindError::Bind(addr, e))?;
            let local = socket.local_addr().map_err(|e| BindError::Bind(addr, e))?;
            udp_bound = Some(local);
            sockets.bound.push((TransportKind::Udp, local));
            sockets.tasks.push(spawn_logged(
                "udp",
                transport::serve_udp(socket, transports.clone()),
            ));
        }
        if let Some(addr) = listen.tcp {
            // Port 0 means "next to UDP" (the same port), or any when that is taken.
            let listener = match udp_bound.filter(|_| addr.port() == 0) {
                Some(beside) => match TcpListener::bind(beside).await {
                    Ok(listener) => listener,
                    Err(_) => bind_tcp(addr).await?,
                },
                None => bind_tcp(addr).await?,
            };
            sockets.add(TransportKind::Tcp, &listener, addr)?;
            sockets.tasks.push(spawn_logged(
                "tcp",
                transport::serve_tcp(listener, transports.clone()),
            ));
        }
        if let Some(addr) = listen.ws {
            let listener = bind_tcp(addr).await?;
            sockets.add(TransportKind::Ws, &listener, addr)?;
            sockets.tasks.push(spawn_logged(
                "ws",
                transport::serve_ws(listener, transports.clone()),
            ));
        }
        if listen.tls.is_some() || listen.wss.is_some() {
            let Some((cert, key)) = &listen.tls_files else {
                return Err(BindError::Tls("tls/wss need tls_cert and tls_key".into()));
            };
            let acceptor = transport::load_tls_acceptor(cert, key).map_err(BindError::Tls)?;
            if let Some(addr) = listen.tls {
                let listener = bind_tcp(addr).await?;
                sockets.add(TransportKind::Tls, &listener, addr)?;
                let serve = transport::serve_tls(listener, acceptor.clone(), transports.clone());
                sockets.tasks.push(spawn_logged("tls", serve));
            }
            if let Some(addr) = listen.wss {
                let listener = bind_tcp(addr).await?;
                sockets.add(TransportKind::Wss, &listener, addr)?;
                let serve = transport::serve_wss(listener, acceptor, transports.clone());
                sockets.tasks.push(spawn_logged("wss", serve));
            }
        }
        Ok(sockets)
    }

    fn add(
        &mut self,
        kind: TransportKind,
        listener: &TcpListener,
        asked: SocketAddr,
    ) -> Result<(), BindError> {
        let local = listener.local_addr().map_err(|e| BindError::Bind(asked, e))?;
        self.bound.push((kind, local));
        Ok(())
    }

    /// What is bound, per transport.
    pub fn bound(&self) -> &[(TransportKind, SocketAddr)] {
        &self.bound
    }

    /// Where `kind` is bound.
    pub fn address(&self, kind: TransportKind) -> Option<SocketAddr> {
        self.bound.iter().find(|(k, _)| *k == kind).map(|(_, a)| *a)
    }

    /// Tells the endpoint where it is bound.
    pub fn bind_endpoint(&self, endpoint: &mut Endpoint) {
        for (kind, addr) in &self.bound {
            endpoint.set_bound(*kind, *addr);
        }
    }

    /// The transports hub (connection table, stats).
    pub fn transports(&self) -> &Transports {
        &self.transports
    }

    /// The next thing a transport delivered; `None` once every transport stopped.
    pub async fn recv(&mut self) -> Option<Inbound> {
        self.inbound.recv().await
    }

    /// The clock the element's core is driven by.
    #[allow(clippy::disallowed_methods)] // the edge reads the clock for its core
    pub fn now() -> Instant {
        Instant::now()
    }

    /// Hands what arrived to the endpoint (or the core that owns it).
    pub fn feed(core: &mut impl SipIo, now: Instant, inbound: Inbound) {
        match inbound {
            Inbound::Message { flow, bytes } => core.handle_datagram(now, flow, &bytes),
            Inbound::Closed { flow } => core.handle_closed(now, flow),
        }
    }

    /// Sends everything the endpoint (or the core that owns it) wants sent; a
    /// failed send is reported back to it (its transactions on that flow end).
    pub async fn flush(&self, core: &mut impl SipIo, now: Instant) {
        while let Some(transmit) = core.poll_transmit() {
            let flow = transmit.flow;
            if let Err(err) = self.transports.send(&flow, transmit.bytes).await {
                tracing::debug!(%err, remote = %flow.remote, "send failed");
                core.handle_send_failed(now, flow);
            }
        }
    }
}
