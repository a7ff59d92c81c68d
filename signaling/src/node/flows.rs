//! How this node reaches the other end of a request: the flow a client's
//! registration came over (a UDP address, or a stream connection this node
//! holds: WebSocket clients have `.invalid` hosts, NATed ones unreachable
//! contacts), the flow named by a token in one of our Record-Route entries (so
//! in-dialog requests go back down the caller's own connection), or a URI's IP
//! and port over UDP. The node learns which stream connections are open from
//! what arrives on them and from their close events.

use std::collections::HashSet;
use std::net::SocketAddr;

use offhook_directory::Registration;
use offhook_sip::endpoint::Endpoint;
use offhook_sip::message::Uri;
use offhook_sip::transport::{ConnId, Flow, TransportKind};

/// The flow tokens of our Record-Route entries, `kind~remote~conn~mac`: enough
/// to send down the same flow again, and signed (HMAC with a key every node of
/// the directory shares), so that a request naming a flow we did not record is
/// refused: the proxy forwards in-dialog requests only inside dialogs it made.
#[derive(Debug, Clone)]
pub(crate) struct FlowTokens {
    key: offhook_vocab::Secret,
}

impl FlowTokens {
    pub(crate) fn new(key: offhook_vocab::Secret) -> Self {
        Self { key }
    }

    fn mac(&self, text: &str) -> String {
        use hmac::Mac as _;
        // HMAC takes keys of any length.
        let mut mac =
            hmac::Hmac::<sha2::Sha256>::new_from_slice(self.key.expose()).expect("HMAC takes any key length");
        mac.update(text.as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..12])
    }

    /// The token naming `flow`.
    pub(crate) fn token(&self, flow: &Flow) -> String {
        let text = format!(
            "{}~{}~{}",
            flow.kind.name(),
            flow.remote,
            flow.conn.map_or(0, |c| c.0)
        );
        let mac = self.mac(&text);
        format!("{text}~{mac}")
    }

    /// Whether we signed `token`.
    pub(crate) fn is_ours(&self, token: &str) -> bool {
        self.read(token).is_some()
    }

    /// What a token of ours says, when it is ours.
    fn read<'a>(&self, token: &'a str) -> Option<&'a str> {
        let (text, mac) = token.rsplit_once('~')?;
        (self.mac(text) == mac).then_some(text)
    }
}

/// The stream connections open on this node.
#[derive(Debug, Default)]
pub(crate) struct Connections {
    open: HashSet<ConnId>,
}

impl Connections {
    /// Something arrived on `flow`.
    pub(crate) fn seen(&mut self, flow: &Flow) {
        if let Some(conn) = flow.conn {
            self.open.insert(conn);
        }
    }

    /// `flow`'s connection closed.
    pub(crate) fn closed(&mut self, flow: &Flow) {
        if let Some(conn) = flow.conn {
            self.open.remove(&conn);
        }
    }

    fn is_open(&self, conn: ConnId) -> bool {
        self.open.contains(&conn)
    }

    /// The flow to reach a registered contact, if this node can.
    pub(crate) fn to_registration(
        &self,
        endpoint: &Endpoint,
        node_id: &str,
        reg: &Registration,
    ) -> Option<Flow> {
        let kind = TransportKind::parse(&reg.transport)?;
        let remote: SocketAddr = reg.source.parse().ok()?;
        let local = endpoint.bound(kind)?;
        if kind == TransportKind::Udp {
            // A contact on the address the REGISTER came from is reachable as
            // written (third-party registrations too); another address is a client
            // behind NAT, reachable only where its packets came from.
            let contact = Uri::parse(&reg.contact).ok();
            let remote = contact
                .filter(|c| c.host.trim_matches(['[', ']']) == remote.ip().to_string())
                .map(|c| SocketAddr::new(remote.ip(), c.port.unwrap_or(5060)))
                .unwrap_or(remote);
            return endpoint.udp_flow(remote);
        }
        let conn = reg.connection.strip_prefix('c')?.parse().ok().map(ConnId)?;
        (reg.node == node_id && self.is_open(conn)).then_some(Flow {
            kind,
            local,
            remote,
            conn: Some(conn),
        })
    }

    /// The flow named by a token of one of our Record-Route entries; `None`
    /// when the token is not ours or its connection is gone.
    pub(crate) fn named_by_token(
        &self,
        endpoint: &Endpoint,
        tokens: &FlowTokens,
        token: &str,
    ) -> Option<Flow> {
        let mut parts = tokens.read(token)?.split('~');
        let kind = TransportKind::parse(parts.next()?)?;
        let remote: SocketAddr = parts.next()?.parse().ok()?;
        let conn: u64 = parts.next()?.parse().ok()?;
        let local = endpoint.bound(kind)?;
        let conn = (kind != TransportKind::Udp).then_some(ConnId(conn));
        if conn.is_some_and(|id| !self.is_open(id)) {
            return None;
        }
        Some(Flow {
            kind,
            local,
            remote,
            conn,
        })
    }
}

/// A UDP flow to a URI's host and port (IP literals only: no DNS here).
pub(crate) fn to_uri(endpoint: &Endpoint, uri: &Uri) -> Option<Flow> {
    let ip = uri.host.trim_matches(['[', ']']);
    let ip = if ip == "localhost" { "127.0.0.1" } else { ip };
    endpoint.udp_flow(SocketAddr::new(ip.parse().ok()?, uri.port.unwrap_or(5060)))
}
