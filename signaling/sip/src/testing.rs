//! Test support for the crates that build on the SIP stack (behind the
//! `testing` feature): an endpoint bound at an address, datagrams turned round
//! for their destination, and a registrar double
//! that challenges a REGISTER with digest and grants the binding, for
//! simulated-time tests of user agents that register (the media relay's lines).

use std::net::SocketAddr;
use std::time::Instant;

use offhook_vocab::DigestAlgorithm;

use crate::auth::{Credentials, DigestServer, MemoryNonceStore, NonceStore as _, same_uri};
use crate::endpoint::{Endpoint, EndpointConfig, Event, SipIo, Transmit};
use crate::transport::{Flow, TransportKind};

/// The flow a transmit arrives on at its destination (the sender's turned round).
pub fn arriving(transmit: &Transmit) -> Flow {
    Flow {
        kind: transmit.flow.kind,
        local: transmit.flow.remote,
        remote: transmit.flow.local,
        conn: None,
    }
}

/// The first line of a message (`INVITE sip:… SIP/2.0`, `SIP/2.0 200 OK`).
pub fn first_line(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .lines()
        .next()
        .unwrap_or("")
        .to_owned()
}

/// A user agent's endpoint named by and bound (UDP) at `at`, its ids from `seed`.
pub fn bound_endpoint(at: SocketAddr, seed: u64) -> Endpoint {
    let mut endpoint = Endpoint::new(EndpointConfig::user_agent(&at.ip().to_string(), seed));
    endpoint.set_bound(TransportKind::Udp, at);
    endpoint
}

/// A registrar: a REGISTER without good credentials for its one account gets a
/// 401 with an MD5 challenge; one with them gets 200 with its Contact and
/// `expires`. While `silent` it drops everything.
#[derive(Debug)]
pub struct Registrar {
    endpoint: Endpoint,
    digest: DigestServer,
    nonces: MemoryNonceStore,
    realm: String,
    ha1: String,
    /// The lifetime granted.
    pub expires: u64,
    /// Drops every request.
    pub silent: bool,
    /// The Contact of each REGISTER granted, in order.
    pub contacts: Vec<String>,
    /// The nonce count of each REGISTER that carried credentials.
    pub counts: Vec<String>,
}

impl Registrar {
    /// A registrar at `at` for `username`/`password` in `realm`.
    pub fn new(at: SocketAddr, realm: &str, username: &str, password: &str, expires: u64) -> Self {
        Self {
            endpoint: bound_endpoint(at, 9),
            digest: DigestServer::new(b"test registrar".to_vec(), 1, 3600),
            nonces: MemoryNonceStore::new(3_600, 100_000),
            realm: realm.to_owned(),
            ha1: DigestAlgorithm::Md5.ha1(username, realm, password),
            expires,
            silent: false,
            contacts: Vec::new(),
            counts: Vec::new(),
        }
    }

    /// The endpoint's next deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.endpoint.poll_timeout()
    }

    /// The endpoint's timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.endpoint.handle_timeout(now);
    }

    fn answer(&mut self, now: Instant) {
        while let Some(event) = self.endpoint.poll_event() {
            let Event::Request { key, request, .. } = event else {
                continue;
            };
            let credentials = request
                .headers
                .get("Authorization")
                .and_then(|a| Credentials::parse(a).ok());
            if let Some(c) = &credentials {
                self.counts.push(c.nc.clone().unwrap_or_default());
            }
            let granted = credentials.and_then(|c| {
                let ok = |uri: &str| same_uri(uri, &request.uri);
                let used = self.digest.check(&c, "REGISTER", ok, &self.ha1, 0).ok()?;
                self.nonces.advance(&used, 0).then_some(())
            });
            let response = match granted {
                Some(()) => {
                    let contact = request.headers.get("Contact").unwrap_or_default().to_owned();
                    let mut ok = request.response(200, "OK", Some("registrar"));
                    ok.headers
                        .push("Contact", &format!("{contact};expires={}", self.expires));
                    self.contacts.push(contact);
                    ok
                }
                None => {
                    let mut challenge = request.response(401, "Unauthorized", Some("registrar"));
                    let salt = u64::from(self.endpoint.random_below(u32::MAX));
                    let offered = self.digest.challenges(&self.realm, 0, false, None, salt);
                    challenge.headers.push("WWW-Authenticate", &offered[0]);
                    challenge
                }
            };
            // The transaction just handed the request up.
            let _ = self.endpoint.respond(now, &key, response);
        }
    }
}

impl SipIo for Registrar {
    fn handle_datagram(&mut self, now: Instant, flow: Flow, bytes: &[u8]) {
        if !self.silent {
            self.endpoint.handle_datagram(now, flow, bytes);
            self.answer(now);
        }
    }

    fn handle_closed(&mut self, _: Instant, _: Flow) {}

    fn handle_send_failed(&mut self, _: Instant, _: Flow) {}

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.endpoint.poll_transmit()
    }
}
