//! The signaling node as a sans-IO core: the SIP endpoint, the registrar, the
//! stateful proxy (click-to-call policy, lines, limits, CDRs, dialogs) and the
//! relays' health checks, driven by events and `now`. It reads the directory
//! through [`directory_io`] outputs whose answers come back as inputs, so a whole
//! call can run in simulated time. Every request gets its answer from one
//! place ([`Node::reply`]); every decision is a value ([`Step`]).
//!
//! Shape: the driver feeds [`Node::endpoint`] with what arrives, then calls
//! [`Node::process`]; it performs each [`Output`] and hands the result back
//! ([`Node::handle_answer`], [`Node::handle_changed`]); it sleeps until
//! [`Node::poll_timeout`] and calls [`Node::handle_timeout`]; it sends what the
//! endpoint wants sent.

pub mod directory_io;

mod auth;
mod dialogs;
mod flows;
mod health_checks;
mod invite;
mod lease;
mod lines;
mod operator;
mod policy;
mod registrar;
mod route;
mod throttle;
mod view;

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use offhook_directory::limits::Limiter;
use offhook_sip::auth::{DigestServer, MemoryNonceStore};
use offhook_sip::endpoint::{Endpoint, EndpointConfig, Event, Role};
use offhook_sip::message::{Method, Request, Response};
use offhook_sip::transaction::{ServerKey, Timers};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};

use crate::config::SignalingConfig;
use directory_io::{Answer, Change, Changed, Query, Record, Ticket};
use flows::Connections;
use health_checks::HealthChecks;
use lines::LinePool;
use view::View;

pub use lease::OwnerId;
pub(crate) use throttle::ThrottleConfig;

/// What the core asks its driver to do with the directory.
#[derive(Debug, Clone)]
pub enum Output {
    /// Read this; answer with [`Node::handle_answer`].
    Query(Query),
    /// Do this; answer with [`Node::handle_changed`] and the same ticket.
    Change(Ticket, Change),
    /// Write this behind the calls, in order; `seq` numbers the records (the
    /// lines snapshot says up to which one it reflects).
    Record(u64, Record),
}

/// The keys and clocks a node starts with.
#[derive(Debug, Clone)]
pub struct Start {
    /// The directory secret that signs call tokens (shared with `web`).
    pub call_token_secret: Vec<u8>,
    /// The directory secret that signs digest nonces (shared by all nodes).
    pub nonce_secret: Vec<u8>,
    /// The directory secret that signs the flow tokens of our Record-Route
    /// entries (shared by all nodes).
    pub flow_token_secret: Vec<u8>,
    /// The host to name ourselves by in Via, Record-Route and Contact.
    pub host: String,
    /// `now` and the wall clock (Unix ms) at the same moment: the core's
    /// wall time is `wall_ms + (now - instant)`, so that simulated time moves both.
    pub clock: (Instant, i64),
    /// Seed of the node's RNG (tags, branches, nonces, CDR ids).
    pub seed: u64,
    /// Who this start of the node is in the directory.
    pub owner: OwnerId,
}

/// A response a decision asks for: status, reason, extra headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reply {
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(&'static str, String)>,
}

impl Reply {
    pub(crate) fn new(status: u16, reason: &str) -> Self {
        Self {
            status,
            reason: reason.to_owned(),
            headers: Vec::new(),
        }
    }

    pub(crate) fn with(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }
}

/// A decision taken on the directory view.
#[derive(Debug)]
pub(crate) enum Step<T> {
    /// Decided.
    Done(T),
    /// Run this query, then decide again.
    Need(Query),
    /// Answer the request so.
    Reply(Reply),
    /// Answer with a digest challenge for `realm` (`stale=true` when the nonce
    /// was old or replayed).
    Challenge { realm: String, stale: bool },
    /// Wrong credentials for `user` of `realm`: counted by the throttle, logged,
    /// answered 403.
    Failed { realm: String, user: String },
}

impl<T> Step<T> {
    /// The decided value, or this step as one of another decision (which waits,
    /// replies or challenges the same way).
    pub(crate) fn decided<U>(self) -> Result<T, Step<U>> {
        match self {
            Self::Done(value) => Ok(value),
            Self::Need(query) => Err(Step::Need(query)),
            Self::Reply(reply) => Err(Step::Reply(reply)),
            Self::Challenge { realm, stale } => Err(Step::Challenge { realm, stale }),
            Self::Failed { realm, user } => Err(Step::Failed { realm, user }),
        }
    }
}

/// Who waits for a query or a change.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Owner {
    /// An INVITE in progress.
    Invite(ServerKey),
    /// A REGISTER in progress.
    Register(ServerKey),
    /// The lines snapshot itself (a background refresh).
    Lines,
    /// A dialog's BYE: answer it once the CDR's end is committed.
    Answer(ServerKey, Box<Response>),
    /// Nobody: a write the node does not wait on (a call it ended itself).
    Background,
    /// The node's lease refresh.
    Lease,
    /// The operator requests' poll.
    Operator,
}

/// The signaling node's core (see the module comment).
#[derive(Debug)]
pub struct Node {
    config: SignalingConfig,
    endpoint: Endpoint,
    view: View,
    lines: LinePool,
    limiter: Limiter,
    digest: DigestServer,
    nonces: MemoryNonceStore,
    throttle: throttle::Throttle,
    call_token_secret: Vec<u8>,
    connections: Connections,
    flow_tokens: flows::FlowTokens,
    invites: invite::Invites,
    registers: HashMap<ServerKey, registrar::Register>,
    dialogs: dialogs::Dialogs,
    health: Option<HealthChecks>,
    lease: lease::Lease,
    operator: operator::OperatorPoll,
    waiting: HashMap<Query, Vec<Owner>>,
    tickets: HashMap<Ticket, Owner>,
    next_ticket: u64,
    record_seq: u64,
    outputs: VecDeque<Output>,
    rng: StdRng,
    clock: (Instant, i64),
    sweep_at: Option<Instant>,
    /// Draining since a SIGTERM: the calls' deadline.
    draining: Option<Instant>,
}

/// Live digest nonces remembered at most (about 200 bytes each); beyond, the
/// oldest is forgotten and nonces as old are challenged again.
const NONCES_HELD: usize = 200_000;

/// How often the limiter forgets empty windows.
const SWEEP: Duration = Duration::from_secs(60);

impl Node {
    /// A node with these settings; nothing bound yet (the driver binds and tells
    /// [`Node::endpoint`] where).
    ///
    /// # Errors
    /// A setting it cannot use, named.
    pub fn new(config: SignalingConfig, start: Start) -> Result<Self, String> {
        let digest_algorithms = config
            .digest_algorithms
            .iter()
            .map(|name| {
                offhook_sip::auth::algorithm_named(name)
                    .ok_or_else(|| format!("digest_algorithms: '{name}' is not MD5 or SHA-256"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut rng = StdRng::seed_from_u64(start.seed);
        let endpoint = Endpoint::new(EndpointConfig {
            timers: Timers {
                t1: config.t1(),
                t2: config.t2(),
                t4: config.t4(),
            },
            role: Role::Proxy,
            host: start.host,
            supported: Vec::new(),
            seed: rng.random(),
        });
        Ok(Self {
            view: View::new(config.directory_cache()),
            lines: LinePool::new(config.directory_cache()),
            limiter: Limiter::default(),
            digest: DigestServer::new(start.nonce_secret, rng.random(), config.nonce_lifetime_s)
                .with_algorithms(digest_algorithms, &config.md5_only_user_agents),
            nonces: MemoryNonceStore::new(config.nonce_lifetime_s, NONCES_HELD),
            throttle: throttle::Throttle::new(config.auth_throttle()),
            call_token_secret: start.call_token_secret,
            connections: Connections::default(),
            flow_tokens: flows::FlowTokens::new(offhook_vocab::Secret::new(start.flow_token_secret)),
            invites: invite::Invites::default(),
            registers: HashMap::new(),
            dialogs: dialogs::Dialogs::default(),
            health: config.relay_checks().map(|c| HealthChecks::new(c, start.clock.0)),
            lease: lease::Lease::new(start.owner, config.owner_lease(), start.clock.0),
            operator: operator::OperatorPoll::new(config.operator_poll(), start.clock.0),
            waiting: HashMap::new(),
            tickets: HashMap::new(),
            next_ticket: 0,
            record_seq: 0,
            outputs: VecDeque::new(),
            endpoint,
            rng,
            clock: start.clock,
            sweep_at: None,
            draining: None,
            config,
        })
    }

    /// The endpoint: the driver feeds it what arrives and sends what it asks.
    pub fn endpoint(&mut self) -> &mut Endpoint {
        &mut self.endpoint
    }

    /// Calls this node tracks (INVITEs in progress and answered dialogs).
    pub fn calls(&self) -> usize {
        self.invites.len() + self.dialogs.len()
    }

    /// Wall time at `now`, Unix ms.
    fn wall_ms(&self, now: Instant) -> i64 {
        let (at, ms) = self.clock;
        let since = i64::try_from(now.saturating_duration_since(at).as_millis()).unwrap_or(i64::MAX);
        let before = i64::try_from(at.saturating_duration_since(now).as_millis()).unwrap_or(0);
        ms.saturating_add(since).saturating_sub(before)
    }

    fn wall_secs(&self, now: Instant) -> u64 {
        u64::try_from(self.wall_ms(now) / 1000).unwrap_or(0)
    }

    /// Handles everything the endpoint has for the node.
    pub fn process(&mut self, now: Instant) {
        while let Some(event) = self.endpoint.poll_event() {
            self.on_event(now, event);
        }
    }

    fn on_event(&mut self, now: Instant, event: Event) {
        match event {
            Event::Request { key, request, flow } => {
                self.connections.seen(&flow);
                self.on_request(now, key, request, flow);
            }
            Event::Cancelled { invite } => self.invite_cancelled(now, &invite),
            Event::Ack { request, flow } => {
                self.connections.seen(&flow);
                self.forward_ack(request);
            }
            Event::Response { key, response } => self.on_response(now, key, Ok(response)),
            Event::Timeout { key } => self.on_response(now, key, Err(408)),
            Event::TransportFailed { key } => self.on_response(now, key, Err(503)),
            Event::StrayResponse { response, flow } => {
                self.connections.seen(&flow);
                self.forward_stray(&response);
            }
            Event::AckTimeout { .. } => {}
            Event::ConnectionClosed { flow } => {
                self.connections.closed(&flow);
                self.invites_of_flow_closed(now, &flow);
                self.flow_closed(now, &flow);
            }
        }
    }

    fn on_request(
        &mut self,
        now: Instant,
        key: ServerKey,
        request: Request,
        flow: offhook_sip::transport::Flow,
    ) {
        let in_dialog = request.to().is_some_and(|to| to.tag().is_some());
        match request.method {
            Method::Register if !in_dialog => self.register(now, key, request, flow),
            Method::Invite if !in_dialog => self.invite(now, key, request, flow),
            _ if in_dialog => self.forward_in_dialog(now, key, request),
            Method::Options => {
                let reply = Reply::new(200, "OK").with(
                    "Allow",
                    "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, INFO, UPDATE".into(),
                );
                self.reply(now, &key, &request, reply);
            }
            Method::Ack | Method::Cancel => {}
            _ => self.reply(now, &key, &request, Reply::new(501, "Not Implemented")),
        }
    }

    /// Answers `request` (in server transaction `key`) with `reply`, with a fresh
    /// To tag. The one place where the node's own answers are made.
    fn reply(&mut self, now: Instant, key: &ServerKey, request: &Request, reply: Reply) {
        let tag = (reply.status > 100).then(|| self.endpoint.new_tag());
        let mut response = request.response(reply.status, &reply.reason, tag.as_deref());
        for (name, value) in reply.headers {
            response.headers.push(name, &value);
        }
        self.respond(now, key, response);
    }

    fn respond(&mut self, now: Instant, key: &ServerKey, response: Response) {
        if let Err(err) = self.endpoint.respond(now, key, response) {
            tracing::debug!(%err, "response dropped: its transaction is gone");
        }
    }

    /// What an authentication decision reads, for a request from `source`.
    fn auth_ctx(&self, now: Instant, source: std::net::IpAddr) -> auth::AuthCtx<'_> {
        auth::AuthCtx {
            view: &self.view,
            endpoint: &self.endpoint,
            throttle: &self.throttle,
            digest: &self.digest,
            now,
            now_secs: self.wall_secs(now),
            source,
        }
    }

    /// Wrong credentials: counted against their source and account, logged on
    /// the security target (one stable line per failure), answered 403.
    fn auth_failed(&mut self, now: Instant, source: std::net::IpAddr, realm: &str, user: &str) -> Reply {
        self.throttle.failed(now, source, realm, user);
        tracing::warn!(target: "offhook::security", %source, realm, user, "digest authentication failed");
        Reply::new(403, "Forbidden")
    }

    /// A digest challenge for `request` as a [`Reply`].
    fn challenge(
        &mut self,
        now: Instant,
        request: &Request,
        realm: &str,
        stale: bool,
        challenger: auth::Challenger,
    ) -> Reply {
        let salt = self.rng.random();
        challenger.challenge(&self.digest, request, realm, stale, self.wall_secs(now), salt)
    }

    /// Asks for `query` on behalf of `owner` (once per query in flight).
    fn need(&mut self, query: Query, owner: Owner) {
        let owners = self.waiting.entry(query.clone()).or_default();
        if !owners.contains(&owner) {
            owners.push(owner);
        }
        if owners.len() == 1 {
            self.outputs.push_back(Output::Query(query));
        }
    }

    /// Asks for `change` on behalf of `owner`.
    fn change(&mut self, change: Change, owner: Owner) {
        let ticket = Ticket(self.next_ticket);
        self.next_ticket += 1;
        self.tickets.insert(ticket, owner);
        self.outputs.push_back(Output::Change(ticket, change));
    }

    /// Queues a write behind the calls; its sequence number.
    fn record(&mut self, record: Record) -> u64 {
        self.record_seq += 1;
        self.outputs.push_back(Output::Record(self.record_seq, record));
        self.record_seq
    }

    /// A query's answer (or the directory's failure).
    pub fn handle_answer(&mut self, now: Instant, query: Query, answer: Result<Answer, String>) {
        let owners = self.waiting.remove(&query).unwrap_or_default();
        match answer {
            Ok(Answer::Lines { lines, committed }) => self.lines.snapshot(now, lines, committed),
            Ok(answer) => self.view.insert(now, query, answer),
            Err(err) => {
                tracing::error!(%err, ?query, "directory unavailable");
                if query == Query::Lines {
                    self.lines.read_failed();
                }
                for owner in owners {
                    self.owner_failed(now, owner);
                }
                return;
            }
        }
        for owner in owners {
            self.resume(now, owner, None);
        }
    }

    /// A change's result (or the directory's failure).
    pub fn handle_changed(&mut self, now: Instant, ticket: Ticket, changed: Result<Changed, String>) {
        let Some(owner) = self.tickets.remove(&ticket) else {
            return;
        };
        match changed {
            Ok(changed) => self.resume(now, owner, Some(changed)),
            Err(err) => {
                tracing::error!(%err, "directory unavailable");
                self.owner_failed(now, owner);
            }
        }
    }

    fn resume(&mut self, now: Instant, owner: Owner, changed: Option<Changed>) {
        match owner {
            Owner::Invite(key) => self.drive_invite(now, &key, changed),
            Owner::Register(key) => self.drive_register(now, &key, changed),
            Owner::Lines | Owner::Background => {}
            Owner::Answer(key, response) => self.respond(now, &key, *response),
            Owner::Lease => match changed {
                Some(Changed::Lease(held, reaped)) => self.lease_refreshed(now, Some((held, reaped))),
                _ => self.lease_refreshed(now, None),
            },
            Owner::Operator => match changed {
                Some(Changed::OperatorRequests(open)) => self.operator_requests(now, Some(open)),
                _ => self.operator_requests(now, None),
            },
        }
    }

    fn owner_failed(&mut self, now: Instant, owner: Owner) {
        match owner {
            Owner::Invite(key) => self.invite_failed(now, &key, Reply::new(500, "Directory unavailable")),
            Owner::Register(key) => {
                if let Some(register) = self.registers.remove(&key) {
                    self.reply(
                        now,
                        &key,
                        &register.request,
                        Reply::new(500, "Directory unavailable"),
                    );
                }
            }
            Owner::Lines | Owner::Background => {}
            Owner::Answer(key, response) => self.respond(now, &key, *response),
            Owner::Lease => self.lease_refreshed(now, None),
            Owner::Operator => self.operator_requests(now, None),
        }
    }

    /// The next thing to do with the directory.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// Starts draining (a SIGTERM): new calls are refused with 503 at once;
    /// the calls in progress may go on for `drain_s`, then both sides of each
    /// get a BYE. [`Node::is_drained`] says when nothing is left to do.
    pub fn drain(&mut self, now: Instant) {
        if self.draining.is_none() {
            tracing::info!(calls = self.calls(), "draining: new calls refused");
            self.draining = Some(now + self.config.drain_grace());
        }
    }

    /// Draining, and no call, no write and no BYE of the node's left.
    pub fn is_drained(&self) -> bool {
        self.draining.is_some() && self.calls() == 0 && self.tickets.is_empty() && !self.byes_in_flight()
    }

    /// The drain's deadline came: every call still there ends.
    fn drain_timeout(&mut self, now: Instant) {
        if self.draining.is_none_or(|at| at > now) {
            return;
        }
        self.end_every_call(now, offhook_directory::HangupCause::Shutdown);
        self.end_every_invite(now, offhook_directory::HangupCause::Shutdown);
    }

    /// The earliest deadline of the node and its endpoint.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let drain = self.draining.filter(|_| self.calls() > 0);
        let own = [
            self.sweep_at,
            self.health.as_ref().and_then(HealthChecks::poll_timeout),
            self.dialogs.poll_timeout(),
            self.lease.poll_timeout(),
            self.operator.poll_timeout(),
            drain,
        ];
        own.into_iter()
            .flatten()
            .chain(self.endpoint.poll_timeout())
            .min()
    }

    /// Fires what is due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.endpoint.handle_timeout(now);
        self.process(now);
        if self.sweep_at.is_none_or(|at| at <= now) {
            self.limiter.sweep(now);
            self.sweep_at = Some(now + SWEEP);
        }
        self.health_timeout(now);
        self.dialogs_timeout(now);
        self.lease_timeout(now);
        self.operator_timeout(now);
        self.drain_timeout(now);
    }
}

#[cfg(test)]
mod tests;
