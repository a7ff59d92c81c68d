//! The endpoint: the sans-IO core that every SIP element of offhook runs on (the
//! signaling proxy, the media relay, the tests' user agents), in the shape of
//! quinn-proto's `Endpoint`. Bytes and the time go in ([`Endpoint::handle_datagram`],
//! [`Endpoint::handle_timeout`], [`Endpoint::handle_closed`]); [`Event`]s for the
//! element's own core and [`Transmit`]s for the wire come out, with the next
//! deadline. Inside: the checks every element makes on what arrives (see
//! [`inbound`]), the transaction layer, CANCEL matching (RFC 3261 s9.2), and our
//! identity: the host and ports we name in Via and Contact, and a seeded RNG for
//! branches, tags and Call-IDs. The element calls back in to send requests
//! ([`Endpoint::send_request`] puts our Via on top), answer, cancel, or forward
//! statelessly. The tokio edge is [`crate::driver`].

mod ids;
mod inbound;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

pub use ids::BRANCH_COOKIE;
pub use inbound::Role;

use crate::counters::Stats;
use crate::message::{Message, Method, Request, Response, Uri, Via};
use crate::transaction::{ClientKey, Output, ServerKey, Timers, TransactionError, TransactionLayer};
use crate::transport::{Flow, TransportKind};
use ids::Ids;
use inbound::Verdict;

/// How an endpoint behaves and names itself.
#[derive(Debug, Clone)]
pub struct EndpointConfig {
    /// RFC 3261 timers.
    pub timers: Timers,
    /// Proxy or user agent.
    pub role: Role,
    /// The host we put in Via, Record-Route and Contact (an address or name
    /// others reach us at; behind NAT, the public one).
    pub host: String,
    /// Option tags we understand in `Require`/`Proxy-Require` (none today).
    pub supported: Vec<String>,
    /// Seed of the RNG that makes branches, tags and Call-IDs.
    pub seed: u64,
}

impl EndpointConfig {
    /// A user agent's settings: default timers, no option tags, named `host`,
    /// its ids from `seed`.
    pub fn user_agent(host: &str, seed: u64) -> Self {
        Self {
            timers: Timers::default(),
            role: Role::UserAgent,
            host: host.to_owned(),
            supported: Vec::new(),
            seed,
        }
    }
}

/// What the endpoint hands up to the element's core.
#[derive(Debug)]
pub enum Event {
    /// A new request in a server transaction: answer it with [`Endpoint::respond`].
    /// (CANCEL never comes here: see [`Event::Cancelled`].)
    Request {
        /// The server transaction.
        key: ServerKey,
        /// The request.
        request: Request,
        /// Where it came from.
        flow: Flow,
    },
    /// A CANCEL matched this INVITE server transaction; the CANCEL is answered
    /// 200 already. The INVITE's user answers it 487 if it has not answered yet.
    Cancelled {
        /// The INVITE's server transaction.
        invite: ServerKey,
    },
    /// The ACK of a 2xx (no transaction, end to end).
    Ack {
        /// The ACK.
        request: Request,
        /// Where it came from.
        flow: Flow,
    },
    /// A response on one of our client transactions (1xx, each 2xx, the first
    /// final non-2xx).
    Response {
        /// The client transaction.
        key: ClientKey,
        /// The response.
        response: Response,
    },
    /// No final response in time (Timer B or F): act as on 408.
    Timeout {
        /// The client transaction.
        key: ClientKey,
    },
    /// The transport failed under a client transaction (RFC 3261 s8.1.3.1: act
    /// as on 503).
    TransportFailed {
        /// The client transaction.
        key: ClientKey,
    },
    /// A response that matched no client transaction (a 2xx retransmitted after
    /// the transaction ended).
    StrayResponse {
        /// The response.
        response: Response,
        /// Where it came from.
        flow: Flow,
    },
    /// Timer H: the ACK of our final non-2xx response never came.
    AckTimeout {
        /// The server transaction.
        key: ServerKey,
    },
    /// A stream connection (TCP, TLS, WebSocket) closed: its flow is gone.
    ConnectionClosed {
        /// The connection's flow.
        flow: Flow,
    },
}

/// Bytes to send along a flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Where.
    pub flow: Flow,
    /// The message, encoded.
    pub bytes: Vec<u8>,
}

/// One SIP element's endpoint (see the module comment).
#[derive(Debug)]
pub struct Endpoint {
    config: EndpointConfig,
    /// Our listening address per transport (set by the driver once bound).
    bound: HashMap<TransportKind, SocketAddr>,
    layer: TransactionLayer,
    ids: Ids,
    events: VecDeque<Event>,
    transmits: VecDeque<Transmit>,
    stats: Arc<Stats>,
}

impl Endpoint {
    /// An endpoint with nothing bound yet.
    pub fn new(config: EndpointConfig) -> Self {
        Self {
            layer: TransactionLayer::new(config.timers),
            ids: Ids::seeded(config.seed),
            config,
            bound: HashMap::new(),
            events: VecDeque::new(),
            transmits: VecDeque::new(),
            stats: Arc::default(),
        }
    }

    /// The driver bound `kind` at `addr`.
    pub fn set_bound(&mut self, kind: TransportKind, addr: SocketAddr) {
        self.bound.insert(kind, addr);
    }

    /// Where `kind` is bound.
    pub fn bound(&self, kind: TransportKind) -> Option<SocketAddr> {
        self.bound.get(&kind).copied()
    }

    /// The host we name ourselves by.
    pub fn host(&self) -> &str {
        &self.config.host
    }

    /// The timers.
    pub fn timers(&self) -> Timers {
        self.config.timers
    }

    /// The counters (shared with the metrics publisher).
    pub fn stats(&self) -> Arc<Stats> {
        self.stats.clone()
    }

    /// Transactions alive.
    pub fn transactions(&self) -> usize {
        self.layer.len()
    }

    /// A fresh tag for a From or To header.
    pub fn new_tag(&mut self) -> String {
        self.ids.tag()
    }

    /// A fresh Call-ID.
    pub fn new_call_id(&mut self) -> String {
        self.ids.call_id(&self.config.host)
    }

    /// A random number in `1..below` from the endpoint's seeded RNG.
    pub fn random_below(&mut self, below: u32) -> u32 {
        self.ids.number(below)
    }

    /// Our port on `kind` (5060 when not bound, as a URI without a port means).
    fn port(&self, kind: TransportKind) -> u16 {
        self.bound(kind).map_or(5060, |a| a.port())
    }

    /// Our Via for a request leaving on `kind`, with a fresh branch.
    pub fn via(&mut self, kind: TransportKind) -> String {
        format!(
            "SIP/2.0/{} {}:{};branch={};rport",
            kind.via_token(),
            self.config.host,
            self.port(kind),
            self.ids.branch()
        )
    }

    /// A SIP URI naming us on `kind`, with `user` and `params` (each `;name=value`
    /// or `;name`, written as given).
    pub fn uri(&self, kind: TransportKind, user: Option<&str>, params: &str) -> String {
        let user = user.map(|u| format!("{u}@")).unwrap_or_default();
        let transport = match kind {
            TransportKind::Udp => String::new(),
            other => format!(";transport={}", other.name()),
        };
        format!(
            "sip:{user}{}:{}{transport}{params}",
            self.config.host,
            self.port(kind)
        )
    }

    /// Whether a URI (a Route entry, a Request-URI) names us.
    pub fn is_us(&self, uri: &Uri) -> bool {
        let port = uri.port.unwrap_or(5060);
        uri.host.eq_ignore_ascii_case(&self.config.host) && self.bound.values().any(|a| a.port() == port)
    }

    /// Whether a Via was put there by us.
    pub fn is_our_via(&self, via: &Via) -> bool {
        let uri = Uri {
            scheme: "sip".into(),
            user: None,
            host: via.host.to_ascii_lowercase(),
            port: via.port,
            params: Vec::new(),
        };
        self.is_us(&uri)
    }

    /// A UDP flow from our UDP socket to `remote`, if we have one.
    pub fn udp_flow(&self, remote: SocketAddr) -> Option<Flow> {
        Some(Flow {
            kind: TransportKind::Udp,
            local: self.bound(TransportKind::Udp)?,
            remote,
            conn: None,
        })
    }

    /// Bytes arrived on `flow` at `now`.
    pub fn handle_datagram(&mut self, now: Instant, flow: Flow, bytes: &[u8]) {
        if bytes.iter().all(|b| *b == b'\r' || *b == b'\n') {
            // RFC 5626 s3.5.1: a double-CRLF ping on a stream gets a CRLF pong.
            if flow.conn.is_some() && bytes.len() >= 4 {
                self.transmits.push_back(Transmit {
                    flow,
                    bytes: b"\r\n".to_vec(),
                });
            }
            return;
        }
        let verdict = inbound::judge(
            bytes,
            &flow,
            self.config.role,
            &self.config.supported,
            &mut self.ids,
        );
        match verdict {
            Verdict::Deliver(message) => {
                match &message {
                    Message::Request(r) => {
                        self.stats.requests.fetch_add(1, Ordering::Relaxed);
                        self.stats.messages.request(r.method.as_str());
                    }
                    Message::Response(r) => {
                        self.stats.responses.fetch_add(1, Ordering::Relaxed);
                        self.stats.messages.response(r.status);
                    }
                }
                self.layer.handle_message(now, message, flow);
                self.drain_layer(now);
            }
            Verdict::Reply(reply) => {
                if reply.status == 400 || reply.status == 505 {
                    self.stats.unparsable.fetch_add(1, Ordering::Relaxed);
                    self.stats.answered_400.fetch_add(1, Ordering::Relaxed);
                }
                tracing::debug!(remote = %flow.remote, status = reply.status, reason = %reply.reason, "refused");
                self.transmits.push_back(Transmit {
                    flow,
                    bytes: reply.to_bytes(),
                });
            }
            Verdict::Drop(err) => {
                self.stats.unparsable.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(remote = %flow.remote, %err, "unparsable message dropped");
            }
        }
    }

    /// A stream connection closed: its transactions end (their users hear
    /// [`Event::TransportFailed`]) and the element hears [`Event::ConnectionClosed`].
    pub fn handle_closed(&mut self, now: Instant, flow: Flow) {
        self.transport_failed(now, flow);
        self.events.push_back(Event::ConnectionClosed { flow });
    }

    /// Sending on `flow` failed (RFC 3261 s17.1.4, s17.2.4).
    pub fn handle_send_failed(&mut self, now: Instant, flow: Flow) {
        self.transport_failed(now, flow);
    }

    fn transport_failed(&mut self, now: Instant, flow: Flow) {
        for key in self.layer.handle_transport_error(flow) {
            self.events.push_back(Event::TransportFailed { key });
        }
        self.drain_layer(now);
    }

    /// Sends `request` along `flow` in a new client transaction, with our Via on
    /// top (a fresh branch names the transaction).
    pub fn send_request(&mut self, now: Instant, mut request: Request, flow: Flow) -> ClientKey {
        let via = self.via(flow.kind);
        request.headers.push_front("Via", &via);
        let key = self
            .layer
            .send_request(now, request, flow)
            // Invariant: the Via just pushed carries a branch.
            .unwrap_or_else(|_| unreachable!("our Via has a branch"));
        self.drain_layer(now);
        key
    }

    /// Answers a server transaction.
    pub fn respond(
        &mut self,
        now: Instant,
        key: &ServerKey,
        response: Response,
    ) -> Result<(), TransactionError> {
        let result = self.layer.respond(now, key, response);
        self.drain_layer(now);
        result
    }

    /// Cancels a client INVITE transaction (RFC 3261 s9.1): a CANCEL with the
    /// INVITE's Via, Route, From, To, Call-ID and CSeq number goes the same way.
    /// Its own response is of no interest. Nothing happens for a transaction that
    /// is gone.
    pub fn cancel(&mut self, now: Instant, key: &ClientKey) {
        let (Some(invite), Some(flow)) = (self.layer.client_request(key), self.layer.client_flow(key)) else {
            return;
        };
        let mut cancel = Request::new(Method::Cancel, &invite.uri);
        for name in ["Via", "Route", "From", "To", "Call-ID", "Max-Forwards"] {
            for value in invite.headers.get_all(name) {
                cancel.headers.push(name, value);
            }
        }
        let number = invite.cseq().map_or(1, |c| c.number);
        cancel.headers.push("CSeq", &format!("{number} CANCEL"));
        // The CANCEL carries the INVITE's own Via (same branch), so it is sent as is.
        if self.layer.send_request(now, cancel, flow).is_ok() {
            self.drain_layer(now);
        }
    }

    /// Sends a request outside any transaction (an ACK of a 2xx, or one a proxy
    /// forwards statelessly) with our Via on top.
    pub fn send_stateless_request(&mut self, mut request: Request, flow: Flow) {
        let via = self.via(flow.kind);
        request.headers.push_front("Via", &via);
        self.transmits.push_back(Transmit {
            flow,
            bytes: request.to_bytes(),
        });
    }

    /// Sends a response outside any transaction (a stray 2xx a proxy forwards).
    pub fn send_stateless_response(&mut self, response: &Response, flow: Flow) {
        self.transmits.push_back(Transmit {
            flow,
            bytes: response.to_bytes(),
        });
    }

    /// The next event for the element.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The next bytes to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// When [`Endpoint::handle_timeout`] is due next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.layer.poll_timeout()
    }

    /// Fires the timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.layer.handle_timeout(now);
        self.drain_layer(now);
    }

    /// Moves what the transaction layer produced into events and transmits.
    fn drain_layer(&mut self, now: Instant) {
        while let Some(output) = self.layer.poll_output() {
            let event = match output {
                Output::Send { flow, message } => {
                    self.transmits.push_back(Transmit {
                        flow,
                        bytes: message.to_bytes(),
                    });
                    continue;
                }
                Output::Request { key, request, .. } if request.method == Method::Cancel => {
                    self.on_cancel(now, &key, &request);
                    continue;
                }
                Output::Request { key, request, flow } => Event::Request { key, request, flow },
                Output::Ack { request, flow } => Event::Ack { request, flow },
                // A CANCEL's own answer (or silence) is of no interest to anyone.
                Output::Response { key, .. } | Output::Timeout { key } if *key.method() == Method::Cancel => {
                    continue;
                }
                Output::Response { key, response } => Event::Response { key, response },
                Output::StrayResponse { response, flow } => Event::StrayResponse { response, flow },
                Output::Timeout { key } => Event::Timeout { key },
                Output::AckTimeout { key } => Event::AckTimeout { key },
            };
            self.events.push_back(event);
        }
    }

    /// RFC 3261 s9.2: a CANCEL is answered here, and the INVITE's user told.
    fn on_cancel(&mut self, now: Instant, key: &ServerKey, cancel: &Request) {
        let (status, reason) = match self.layer.invite_for_cancel(cancel) {
            Some(invite) => {
                self.events.push_back(Event::Cancelled { invite });
                (200, "OK")
            }
            None => (481, "Call/Transaction Does Not Exist"),
        };
        let tag = self.ids.tag();
        let _ = self
            .layer
            .respond(now, key, cancel.response(status, reason, Some(&tag)));
    }
}

/// The wire side of a SIP core, as its tokio edge ([`crate::driver`]) or a
/// simulated-time harness drives it: bytes in, bytes out, and what became of a
/// send. The endpoint has it, and so has every core that owns one (the
/// user-agent layer, the media relay), which then handles what its endpoint
/// made of the input at once.
pub trait SipIo {
    /// Bytes arrived on `flow` at `now`.
    fn handle_datagram(&mut self, now: Instant, flow: Flow, bytes: &[u8]);
    /// A stream connection closed.
    fn handle_closed(&mut self, now: Instant, flow: Flow);
    /// Sending on `flow` failed.
    fn handle_send_failed(&mut self, now: Instant, flow: Flow);
    /// The next bytes to send.
    fn poll_transmit(&mut self) -> Option<Transmit>;
}

impl SipIo for Endpoint {
    fn handle_datagram(&mut self, now: Instant, flow: Flow, bytes: &[u8]) {
        Endpoint::handle_datagram(self, now, flow, bytes);
    }

    fn handle_closed(&mut self, now: Instant, flow: Flow) {
        Endpoint::handle_closed(self, now, flow);
    }

    fn handle_send_failed(&mut self, now: Instant, flow: Flow) {
        Endpoint::handle_send_failed(self, now, flow);
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        Endpoint::poll_transmit(self)
    }
}

#[cfg(test)]
mod tests;
