//! What every transaction user of a signaling node shares: settings, the
//! directory, digest and call-token keys, limits, live calls, and how this node
//! names itself in Via and Record-Route. Also the flow tokens it writes into its
//! Record-Route entries, so that in-dialog requests find their way back down a
//! client's own connection (WebSocket clients have `.invalid` hosts) or NAT binding.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use offhook_directory::{CallWriter, Directory, Registration};
use rand::Rng;

use super::cache::Lookups;
use super::lines::LinePool;
use crate::config::SignalingConfig;
use offhook_directory::limits::Limiter;
use offhook_sip::auth::{DigestServer, MemoryNonceStore};
use offhook_sip::legacy::Ctx;
use offhook_sip::message::{Request, Uri};
use offhook_sip::transport::{ConnId, Flow, TransportKind, Transports};

/// The addresses this node listens on, per transport.
#[derive(Debug, Clone, Default)]
pub struct Bound {
    /// UDP.
    pub udp: Option<SocketAddr>,
    /// TCP.
    pub tcp: Option<SocketAddr>,
    /// WebSocket.
    pub ws: Option<SocketAddr>,
    /// TLS.
    pub tls: Option<SocketAddr>,
    /// Secure WebSocket.
    pub wss: Option<SocketAddr>,
}

impl Bound {
    /// The listening address of a transport.
    pub fn of(&self, kind: TransportKind) -> Option<SocketAddr> {
        match kind {
            TransportKind::Udp => self.udp,
            TransportKind::Tcp => self.tcp,
            TransportKind::Ws => self.ws,
            TransportKind::Tls => self.tls,
            TransportKind::Wss => self.wss,
        }
    }
}

/// A call the proxy tracks from INVITE to BYE (dialog tracking for CDRs and limits).
#[derive(Debug, Clone)]
pub(crate) struct TrackedCall {
    pub cdr_id: String,
    pub line_id: Option<String>,
    pub limit_key: String,
    pub caller_tag: String,
}

pub(crate) struct Node {
    pub config: SignalingConfig,
    pub directory: Directory,
    /// Cached directory reads (see `cache`).
    pub lookups: Lookups,
    /// CDRs and line states, written behind the calls.
    pub writer: CallWriter,
    /// The lines calls go to (see `lines`).
    pub lines: Arc<LinePool>,
    pub digest: DigestServer,
    pub nonces: Mutex<MemoryNonceStore>,
    pub limiter: Mutex<Limiter>,
    pub call_token_secret: Vec<u8>,
    pub host: String,
    pub bound: Bound,
    pub calls: Mutex<HashMap<String, TrackedCall>>,
    pub ctx: Ctx,
    pub transports: Transports,
}

/// Locks a mutex; a poisoned one only means a task panicked mid-update of plain data.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl Node {
    /// Our Via for a request leaving on `kind`, with a fresh branch.
    pub fn via(&self, kind: TransportKind) -> String {
        let port = self.bound.of(kind).map_or(5060, |a| a.port());
        let branch: String = hex::encode(rand::rng().random::<[u8; 10]>());
        format!(
            "SIP/2.0/{} {}:{port};branch=z9hG4bK{branch}",
            kind.via_token(),
            self.host
        )
    }

    /// Our Record-Route entry facing `flow` (the flow's token inside).
    pub fn record_route(&self, flow: &Flow) -> String {
        let port = self.bound.of(flow.kind).map_or(5060, |a| a.port());
        format!(
            "<sip:{}:{port};transport={};lr;ft={}>",
            self.host,
            flow.kind.name(),
            flow_token(flow)
        )
    }

    /// Whether a URI (a Route entry, a Request-URI) names this node.
    pub fn is_us(&self, uri: &Uri) -> bool {
        let port = uri.port.unwrap_or(5060);
        uri.host == self.host.to_ascii_lowercase()
            && [
                TransportKind::Udp,
                TransportKind::Tcp,
                TransportKind::Ws,
                TransportKind::Tls,
                TransportKind::Wss,
            ]
            .iter()
            .any(|k| self.bound.of(*k).is_some_and(|a| a.port() == port))
    }

    /// Whether a request's Via list already holds us (a loop, RFC 3261 s16.3).
    pub fn looped(&self, request: &Request) -> bool {
        request.headers.get_all("Via").iter().skip(1).any(|v| {
            offhook_sip::message::Via::parse(v).is_ok_and(|via| {
                let uri = Uri {
                    scheme: "sip".into(),
                    user: None,
                    host: via.host,
                    port: via.port,
                    params: vec![],
                };
                self.is_us(&uri)
            })
        })
    }

    /// The flow to reach a registered contact, if this node can.
    pub fn flow_to_registration(&self, reg: &Registration) -> Option<Flow> {
        let kind = TransportKind::parse(&reg.transport)?;
        let remote: SocketAddr = reg.source.parse().ok()?;
        let local = self.bound.of(kind)?;
        if kind == TransportKind::Udp {
            // A contact on the address the REGISTER came from is reachable as
            // written (third-party registrations too); another address is a client
            // behind NAT, reachable only where its packets came from.
            let contact = Uri::parse(&reg.contact).ok();
            let remote = contact
                .filter(|c| c.host.trim_matches(['[', ']']) == remote.ip().to_string())
                .map(|c| SocketAddr::new(remote.ip(), c.port.unwrap_or(5060)))
                .unwrap_or(remote);
            return Some(Flow {
                kind,
                local,
                remote,
                conn: None,
            });
        }
        let conn = reg.connection.strip_prefix('c')?.parse().ok().map(ConnId)?;
        (reg.node == self.config.node_id && self.transports.is_connected(conn)).then_some(Flow {
            kind,
            local,
            remote,
            conn: Some(conn),
        })
    }

    /// The flow named by a token of one of our Record-Route entries.
    pub fn flow_from_token(&self, token: &str) -> Option<Flow> {
        let mut parts = token.split('~');
        let kind = TransportKind::parse(parts.next()?)?;
        let remote: SocketAddr = parts.next()?.parse().ok()?;
        let conn: u64 = parts.next()?.parse().ok()?;
        let local = self.bound.of(kind)?;
        let conn = (kind != TransportKind::Udp).then_some(ConnId(conn));
        if let Some(id) = conn
            && !self.transports.is_connected(id)
        {
            return None;
        }
        Some(Flow {
            kind,
            local,
            remote,
            conn,
        })
    }

    /// A UDP flow to a URI's host and port (IP literals only: no DNS here).
    pub fn flow_to_uri(&self, uri: &Uri) -> Option<Flow> {
        let ip = uri.host.trim_matches(['[', ']']);
        let ip = if ip == "localhost" { "127.0.0.1" } else { ip };
        let remote = SocketAddr::new(ip.parse().ok()?, uri.port.unwrap_or(5060));
        Some(Flow {
            kind: TransportKind::Udp,
            local: self.bound.udp?,
            remote,
            conn: None,
        })
    }
}

/// `kind~remote~conn`: enough to send down the same flow again.
pub(crate) fn flow_token(flow: &Flow) -> String {
    format!(
        "{}~{}~{}",
        flow.kind.name(),
        flow.remote,
        flow.conn.map_or(0, |c| c.0)
    )
}
