//! The node core in simulated time, its directory played by a double that
//! answers each output from a few rows kept in memory (the whole-call harness
//! in the tests crate uses the real SQL directory). A SIP peer is a bare
//! endpoint wired to the node's by hand.
#![allow(
    clippy::disallowed_methods,
    reason = "an edge: it reads the real clock and the OS generator"
)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use offhook_directory::call_tokens;
use offhook_directory::{Account, AccountKind, HangupCause, Icon, Tenant};
use offhook_sip::endpoint::{Endpoint, EndpointConfig, Event, Role, Transmit};
use offhook_sip::message::{Message, Method, Request, Response, parse};
use offhook_sip::transaction::Timers;
use offhook_sip::transport::{Flow, TransportKind};

use super::directory_io::{Answer, Change, Changed, Query, Record};
use super::{Node, Output, Start};
use crate::config::SignalingConfig;

const NODE: &str = "127.0.0.1:5060";
const PHONE: &str = "127.0.0.1:40000";
const RELAY: &str = "127.0.0.1:5070";
const RELAY_KEY: &[u8] = b"relay-account-ha1";
const SECRET: &[u8] = b"call-token-secret";

/// The directory's rows, and what the node wrote.
#[derive(Debug, Default)]
struct Directory {
    tenants: Vec<Tenant>,
    accounts: Vec<Account>,
    icons: Vec<Icon>,
    ended: Vec<(String, HangupCause)>,
    started: Vec<String>,
    /// Line states written, in order.
    line_states: Vec<offhook_directory::LineState>,
    /// The relay's line, once it registered.
    line: Option<offhook_directory::RoutableLine>,
    /// Lease refreshes asked for (when, in simulated time).
    leases: Vec<Instant>,
    /// The next lease refresh finds the node reaped already.
    lease_lost: bool,
    /// The tenant's destination policy.
    policy: offhook_directory::DestinationPolicy,
    /// Billed time the usage answers say (every period alike).
    billed_ms: i64,
}

impl Directory {
    fn demo() -> Self {
        let tenant = Tenant {
            id: "ten_a".into(),
            name: "a".into(),
            sip_domain: "a.test".into(),
            created_at: 0,
        };
        let icon = Icon {
            id: "icn_1".into(),
            public_id: "sales".into(),
            tenant_id: tenant.id.clone(),
            number: "5550100".into(),
            label: "Sales".into(),
            enabled: true,
            allowed_origins: Vec::new(),
            opening_hours: String::new(),
            timezone: "UTC".into(),
            max_concurrent_calls: 2,
            calls_per_minute: 10,
            ring_timeout_s: None,
            created_at: 0,
        };
        let alice = Account {
            id: "acc_alice".into(),
            tenant_id: tenant.id.clone(),
            username: "alice".into(),
            display_name: String::new(),
            number: None,
            ha1_md5: offhook_directory::DigestAlgorithm::Md5.ha1("alice", "a.test", "alice-secret"),
            ha1_sha256: String::new(),
            kind: AccountKind::User,
            enabled: true,
            created_at: 0,
        };
        Self {
            tenants: vec![tenant],
            accounts: vec![alice],
            icons: vec![icon],
            ..Self::default()
        }
    }

    fn answer(&self, query: &Query) -> Answer {
        match query {
            Query::TenantByDomain(d) => {
                Answer::Tenant(self.tenants.iter().find(|t| &t.sip_domain == d).cloned())
            }
            Query::Tenant(id) => Answer::Tenant(self.tenants.iter().find(|t| &t.id == id).cloned()),
            Query::Account { tenant, username } => Answer::Account(
                self.accounts
                    .iter()
                    .find(|a| &a.tenant_id == tenant && &a.username == username)
                    .cloned(),
            ),
            Query::AccountByNumber { tenant, number } => Answer::Account(
                self.accounts
                    .iter()
                    .find(|a| &a.tenant_id == tenant && a.number.as_ref() == Some(number))
                    .cloned(),
            ),
            Query::Icon { key, .. } => Answer::Icon(self.icons.iter().find(|i| &i.public_id == key).cloned()),
            Query::Policy(_) => Answer::Policy(self.policy.clone()),
            Query::Usage { .. } => {
                let used = offhook_directory::Used {
                    calls: self.started.len() as i64,
                    billed_ms: self.billed_ms,
                };
                Answer::Usage(offhook_directory::Usage {
                    tenant_day: used,
                    tenant_month: used,
                    day: used,
                    month: used,
                })
            }
            // Without a relay line, every number call finds all lines busy.
            Query::Lines => Answer::Lines {
                lines: self.line.iter().cloned().collect(),
                committed: 0,
            },
        }
    }
}

/// The node, its directory double, a phone and a relay that answers every
/// INVITE (180, then 200) and every BYE, on one simulated clock.
struct World {
    now: Instant,
    node: Node,
    directory: Directory,
    phone: Endpoint,
    relay: Endpoint,
    /// BYEs the relay and the phone received.
    byes: Vec<&'static str>,
    /// The relay's process is gone: what is sent to it is lost.
    relay_dead: bool,
}

/// The same flow as seen from its other end.
fn reversed(flow: Flow) -> Flow {
    Flow {
        local: flow.remote,
        remote: flow.local,
        ..flow
    }
}

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

impl World {
    /// The world with the relay health checks off.
    fn new(seed: u64) -> Self {
        let config = SignalingConfig {
            relay_check_interval_ms: 0,
            ..SignalingConfig::default()
        };
        Self::configured(seed, config)
    }

    fn configured(seed: u64, config: SignalingConfig) -> Self {
        let now = Instant::now();
        let start = Start {
            call_token_secret: SECRET.to_vec(),
            nonce_secret: b"nonce-secret".to_vec(),
            flow_token_secret: b"flow-token-secret".to_vec(),
            host: "127.0.0.1".into(),
            clock: (now, 1_800_000_000_000),
            seed,
            owner: crate::node::OwnerId {
                id: "own_test".into(),
                name: "node-1".into(),
            },
        };
        let mut node = Node::new(config, start).unwrap();
        node.endpoint().set_bound(TransportKind::Udp, addr(NODE));
        let mut phone = Endpoint::new(EndpointConfig {
            timers: Timers::default(),
            role: Role::UserAgent,
            host: "127.0.0.1".into(),
            supported: Vec::new(),
            seed: seed + 1,
        });
        phone.set_bound(TransportKind::Udp, addr(PHONE));
        phone.set_bound(TransportKind::Ws, addr(PHONE));
        let mut relay = Endpoint::new(EndpointConfig {
            timers: Timers::default(),
            role: Role::UserAgent,
            host: "127.0.0.1".into(),
            supported: Vec::new(),
            seed: seed + 2,
        });
        relay.set_bound(TransportKind::Udp, addr(RELAY));
        Self {
            now,
            node,
            directory: Directory::demo(),
            phone,
            relay,
            byes: Vec::new(),
            relay_dead: false,
        }
    }

    /// A relay line in the directory, reachable at the relay's address.
    fn with_line(mut self) -> Self {
        self.directory.line = Some(offhook_directory::RoutableLine {
            line: offhook_directory::Line {
                id: "lin_1".into(),
                name: "line-1".into(),
                relay_id: "rel_1".into(),
                tenant_id: None,
                device_path: "emulated".into(),
                kind: offhook_directory::LineKind::Emulated,
                state: offhook_directory::LineState::Idle,
                fault_reason: None,
                state_changed_at: None,
                created_at: 0,
            },
            registration: offhook_directory::Registration {
                id: "reg_1".into(),
                tenant_id: "ten_a".into(),
                aor: "relay-1".into(),
                contact: format!("sip:line-1@{RELAY}"),
                contact_user: "line-1".into(),
                instance: String::new(),
                transport: "udp".into(),
                source: RELAY.into(),
                node: "node-1".into(),
                connection: String::new(),
                call_id: "reg".into(),
                cseq: 1,
                expires_at: i64::MAX,
                updated_at: 0,
            },
            relay: "relay-1".into(),
            relay_state: "up".into(),
            relay_key: offhook_vocab::Secret::new(RELAY_KEY),
        });
        self
    }

    /// The relay: 180 then 200 to an INVITE, 200 to a BYE.
    fn relay_answers(&mut self) {
        while let Some(event) = self.relay.poll_event() {
            let Event::Request { key, request, .. } = event else {
                continue;
            };
            if request.method == Method::Bye {
                self.byes.push("relay");
            }
            // Signaling signs what it sends the relay; the relay checks.
            let wall = self.node.wall_ms(self.now);
            assert_eq!(
                offhook_sip::trust::verify(RELAY_KEY, &request, wall, 30_000),
                Ok(()),
                "{}",
                request.method
            );
            let tag = self.relay.new_tag();
            if request.method == Method::Invite {
                let ringing = request.response(180, "Ringing", Some(&tag));
                let _ = self.relay.respond(self.now, &key, ringing);
            }
            let mut ok = request.response(200, "OK", Some(&tag));
            ok.headers.push("Contact", &format!("<sip:line-1@{RELAY}>"));
            // As a UAS does (RFC 3261 12.1.1): the 2xx carries the Record-Route.
            if request.method == Method::Invite {
                for route in request.headers.get_all("Record-Route") {
                    ok.headers.push("Record-Route", route);
                }
            }
            let _ = self.relay.respond(self.now, &key, ok);
        }
    }

    /// The phone answers a BYE with 200.
    fn phone_answers_bye(&mut self, event: Event) -> Option<Event> {
        match event {
            Event::Request { key, request, .. } if request.method == Method::Bye => {
                self.byes.push("phone");
                let ok = request.response(200, "OK", None);
                let _ = self.phone.respond(self.now, &key, ok);
                None
            }
            other => Some(other),
        }
    }

    /// Hands what the phone sent to the node; whether there was anything.
    fn phone_to_node(&mut self) -> bool {
        let mut moved = false;
        while let Some(Transmit { flow, bytes }) = self.phone.poll_transmit() {
            let flow = reversed(flow);
            self.node.endpoint().handle_datagram(self.now, flow, &bytes);
            self.node.process(self.now);
            moved = true;
        }
        moved
    }

    /// Asserts the node ended its one call with `cause`, a BYE to each side.
    fn assert_ended_both_ways(&mut self, cause: HangupCause) {
        self.byes.sort_unstable();
        assert_eq!(self.byes, ["phone", "relay"], "both sides hear the end");
        assert_eq!(self.directory.ended[0].1, cause);
    }

    /// Asserts the node ended its one call with `cause`, a BYE only to `told`
    /// (the side still there), its line idle, no call left.
    fn assert_ended_one_way(&mut self, told: &'static str, cause: HangupCause, why: &str) {
        assert_eq!(self.byes, [told], "{why}");
        let cdr = self.directory.started[0].clone();
        assert_eq!(self.directory.ended, [(cdr, cause)]);
        assert_eq!(
            self.directory.line_states.last(),
            Some(&offhook_directory::LineState::Idle)
        );
        assert_eq!(self.node.calls(), 0);
    }

    /// Moves datagrams both ways and performs the node's outputs until quiet.
    fn settle(&mut self) {
        loop {
            let mut moved = self.phone_to_node();
            while let Some(Transmit { flow, bytes }) = self.node.endpoint().poll_transmit() {
                let back = reversed(flow);
                if flow.remote == addr(PHONE) {
                    self.phone.handle_datagram(self.now, back, &bytes);
                } else if flow.remote == addr(RELAY) && !self.relay_dead {
                    self.relay.handle_datagram(self.now, back, &bytes);
                    self.relay_answers();
                }
                moved = true;
            }
            while let Some(Transmit { flow, bytes }) = self.relay.poll_transmit() {
                let back = reversed(flow);
                self.node.endpoint().handle_datagram(self.now, back, &bytes);
                self.node.process(self.now);
                moved = true;
            }
            while let Some(output) = self.node.poll_output() {
                moved = true;
                match output {
                    Output::Query(query) => {
                        let answer = self.directory.answer(&query);
                        self.node.handle_answer(self.now, query, Ok(answer));
                    }
                    Output::Change(ticket, change) => {
                        let changed = match change {
                            Change::SpendToken(_) => Changed::TokenSpent(true),
                            Change::ClaimLine(_) => Changed::LineClaimed(self.directory.line.is_some()),
                            Change::Bindings { .. } | Change::Register { .. } => {
                                Changed::Bindings(Vec::new())
                            }
                            Change::EndCdr { cdr, cause, .. } => {
                                self.directory.ended.push((cdr, cause));
                                Changed::CdrEnded
                            }
                            Change::Lease { .. } => {
                                self.directory.leases.push(self.now);
                                let held = !std::mem::take(&mut self.directory.lease_lost);
                                Changed::Lease(held, offhook_directory::Reaped::default())
                            }
                            Change::OperatorRequests { .. } => Changed::OperatorRequests(Vec::new()),
                            Change::SettleRequest { .. } | Change::ResetUnheldLine { .. } => {
                                Changed::Settled(true)
                            }
                        };
                        self.node.handle_changed(self.now, ticket, Ok(changed));
                    }
                    Output::Record(_, Record::StartCdr(cdr)) => self.directory.started.push(cdr.id),
                    Output::Record(_, Record::LineState { state, .. }) => {
                        self.directory.line_states.push(state)
                    }
                    Output::Record(..) => {}
                }
            }
            if !moved {
                return;
            }
        }
    }

    /// Sends `request` from the phone and returns the final response it gets.
    fn call(&mut self, request: Request) -> Response {
        let flow = self.phone.udp_flow(addr(NODE)).unwrap();
        self.call_over(request, flow)
    }

    /// Sends `request` from the phone along `flow`; the final response.
    fn call_over(&mut self, request: Request, flow: Flow) -> Response {
        let key = self.phone.send_request(self.now, request, flow);
        for _ in 0..64 {
            self.settle();
            while let Some(event) = self.phone.poll_event() {
                let Some(event) = self.phone_answers_bye(event) else {
                    continue;
                };
                if let Event::Response { key: k, response } = event
                    && k == key
                    && response.status >= 200
                {
                    return response;
                }
            }
            self.advance(Duration::from_millis(500));
        }
        panic!("no final response to the request");
    }

    /// Moves the clock on and fires every timer.
    fn advance(&mut self, by: Duration) {
        self.now += by;
        self.phone.handle_timeout(self.now);
        self.relay.handle_timeout(self.now);
        self.relay_answers();
        self.node.handle_timeout(self.now);
        self.settle();
        while let Some(event) = self.phone.poll_event() {
            let _ = self.phone_answers_bye(event);
            self.settle();
        }
    }
}

fn request(method: Method, uri: &str, from: &str) -> Request {
    let mut r = Request::new(method.clone(), uri);
    r.headers.push("From", &format!("{from};tag=ph1"));
    r.headers.push("To", &format!("<{uri}>"));
    r.headers.push("Call-ID", "call-1@phone");
    r.headers.push("CSeq", &format!("1 {method}"));
    r.headers.push("Max-Forwards", "70");
    r.headers.push("Contact", &format!("<sip:alice@{PHONE}>"));
    r
}

fn token_invite(world: &World, icon: &str) -> Request {
    let token = call_tokens::sign(SECRET, icon, world.node.wall_ms(world.now) + 60_000);
    let mut invite = request(
        Method::Invite,
        &format!("sip:{icon}@a.test"),
        "<sip:visitor@invalid>",
    );
    invite.headers.push(offhook_vocab::headers::TOKEN, &token);
    invite
}

#[test]
fn every_broken_invite_gets_a_final_answer() {
    // The three paths that used to return without answering: a Request-URI that
    // does not parse, a token icon whose tenant is gone, a From without a SIP URI.
    let mut world = World::new(1);
    let mut bad_uri = token_invite(&world, "sales");
    bad_uri.uri = "sip:".into();
    let answer = world.call(bad_uri);
    assert!(answer.status >= 400, "{}", answer.status);

    let mut world = World::new(2);
    world.directory.tenants.clear();
    let answer = world.call(token_invite(&world, "sales"));
    assert_eq!(answer.status, 404, "{}", answer.reason);

    let mut world = World::new(3);
    let answer = world.call(request(Method::Invite, "sip:5550100@a.test", "<tel:+15550100>"));
    assert_eq!(answer.status, 403, "{}", answer.reason);
}

#[test]
fn a_token_call_with_no_line_ends_its_cdr_before_the_answer() {
    let mut world = World::new(4);
    let answer = world.call(token_invite(&world, "sales"));
    assert_eq!((answer.status, answer.reason.as_str()), (503, "All lines busy"));
    assert_eq!(world.directory.started.len(), 1);
    assert_eq!(
        world.directory.ended,
        [(world.directory.started[0].clone(), HangupCause::LineFault)]
    );
    assert_eq!(world.node.calls(), 0, "nothing left behind");
}

#[test]
fn a_softphone_is_challenged_and_tags_are_random_per_seed() {
    let mut world = World::new(5);
    let answer = world.call(request(
        Method::Invite,
        "sip:5550100@a.test",
        "<sip:alice@a.test>",
    ));
    assert_eq!(answer.status, 407);
    assert!(
        answer
            .headers
            .get("Proxy-Authenticate")
            .unwrap()
            .contains("realm=\"a.test\"")
    );
    let tag = answer.to().unwrap().tag().unwrap().to_owned();
    assert!(tag.len() >= 8 && !["px", "route", "auth", "reg"].contains(&tag.as_str()));

    let mut again = World::new(5);
    let same = again.call(request(
        Method::Invite,
        "sip:5550100@a.test",
        "<sip:alice@a.test>",
    ));
    assert_eq!(
        same.to().unwrap().tag(),
        Some(tag.as_str()),
        "a seed replays exactly"
    );
    let mut other = World::new(6);
    let different = other.call(request(
        Method::Invite,
        "sip:5550100@a.test",
        "<sip:alice@a.test>",
    ));
    assert_ne!(different.to().unwrap().tag(), Some(tag.as_str()));
}

#[test]
fn closed_and_disabled_icons_are_refused_on_every_path() {
    let mut world = World::new(7);
    world.directory.icons[0].opening_hours = "mon 00:00-00:01".into();
    // 1_800_000_000_000 ms is a Friday.
    let answer = world.call(token_invite(&world, "sales"));
    assert_eq!(answer.status, 480, "{}", answer.reason);
    world.directory.icons[0].opening_hours.clear();
    world.directory.icons[0].enabled = false;
    let mut world2 = World::new(8);
    world2.directory.icons[0].enabled = false;
    let answer = world2.call(token_invite(&world2, "sales"));
    assert_eq!(answer.status, 403);
    assert!(world2.directory.started.is_empty(), "no call started");
}

#[test]
fn a_cancel_while_routing_gets_487_and_no_stray_state() {
    let mut world = World::new(9);
    let flow = world.phone.udp_flow(addr(NODE)).unwrap();
    let invite = token_invite(&world, "sales");
    let key = world.phone.send_request(world.now, invite, flow);
    // Deliver the INVITE but do not answer the directory yet.
    world.phone_to_node();
    world.phone.cancel(world.now, &key);
    world.settle();
    let mut finals = Vec::new();
    while let Some(event) = world.phone.poll_event() {
        if let Event::Response { response, .. } = event
            && response.status >= 200
        {
            finals.push(response.status);
        }
    }
    assert_eq!(finals, [487]);
    assert_eq!(world.node.calls(), 0);
    let message = Message::Request(Request::new(Method::Options, "sip:a.test"));
    assert!(
        parse(&message.to_bytes()).is_err(),
        "sanity: a bare OPTIONS lacks headers"
    );
}

/// An answered token call to the relay's line from the phone over `flow`; the
/// phone's dialog.
fn answered_call(world: &mut World, flow: Flow) -> offhook_sip::ua::dialog::Dialog {
    let invite = token_invite(world, "sales");
    let ok = world.call_over(invite.clone(), flow);
    assert_eq!(ok.status, 200, "{}", ok.reason);
    assert_eq!(world.node.calls(), 1);
    assert_eq!(
        world.directory.line_states,
        [offhook_directory::LineState::InCall]
    );
    offhook_sip::ua::dialog::Dialog::uac(&invite, &ok).expect("a dialog from the 200")
}

fn websocket_flow() -> Flow {
    Flow {
        kind: TransportKind::Ws,
        local: addr(PHONE),
        remote: addr(NODE),
        conn: Some(offhook_sip::transport::ConnId(7)),
    }
}

#[test]
fn a_browser_tab_closed_mid_call_ends_the_call_and_frees_the_line() {
    let mut world = World::new(10).with_line();
    world.node.endpoint().set_bound(TransportKind::Ws, addr(NODE));
    answered_call(&mut world, websocket_flow());
    // The tab closes: the WebSocket connection goes, with no BYE.
    let closed = reversed(websocket_flow());
    world.node.endpoint().handle_closed(world.now, closed);
    world.node.process(world.now);
    world.settle();
    world.assert_ended_one_way(
        "relay",
        HangupCause::CallerGone,
        "the line side hears a BYE; the gone caller does not",
    );
}

#[test]
fn a_browser_that_hangs_up_and_closes_its_tab_at_once_ends_the_call_normally() {
    let mut world = World::new(11).with_line();
    world.node.endpoint().set_bound(TransportKind::Ws, addr(NODE));
    let mut dialog = answered_call(&mut world, websocket_flow());
    // The BYE reaches the node and goes on toward the relay...
    let _ = world
        .phone
        .send_request(world.now, dialog.request(Method::Bye), websocket_flow());
    assert!(world.phone_to_node());
    // ...and the tab's WebSocket closes before the relay's 200 is back.
    let closed = reversed(websocket_flow());
    world.node.endpoint().handle_closed(world.now, closed);
    world.node.process(world.now);
    world.settle();
    assert_eq!(world.byes, ["relay"], "one BYE to the line: the caller's own");
    let cdr = world.directory.started[0].clone();
    assert_eq!(world.directory.ended, [(cdr, HangupCause::Normal)]);
    assert_eq!(world.node.calls(), 0);
}

#[test]
fn the_lease_is_refreshed_at_start_then_every_quarter_and_a_lost_one_ends_the_calls() {
    let mut world = World::new(13).with_line();
    let start = world.now;
    world.advance(Duration::ZERO);
    let flow = world.phone.udp_flow(addr(NODE)).unwrap();
    answered_call(&mut world, flow);
    let quarter = SignalingConfig::default().owner_lease() / 4;
    world.advance(quarter);
    world.advance(quarter);
    let since: Vec<Duration> = world.directory.leases.iter().map(|at| *at - start).collect();
    assert_eq!(
        since,
        [Duration::ZERO, quarter, quarter * 2],
        "at start (the reaping of an earlier life), then every quarter"
    );
    assert_eq!(world.node.calls(), 1, "a held lease changes nothing");

    world.directory.lease_lost = true;
    world.advance(quarter);
    world.assert_ended_both_ways(HangupCause::NodeLost);
    assert_eq!(world.node.calls(), 0);
}

#[test]
fn a_call_ends_at_its_maximum_duration() {
    let mut world = World::new(11).with_line();
    let flow = world.phone.udp_flow(addr(NODE)).unwrap();
    answered_call(&mut world, flow);
    let max = SignalingConfig::default().max_call_duration();
    world.advance(max - Duration::from_secs(1));
    assert!(world.byes.is_empty(), "not before its time");
    world.advance(Duration::from_secs(2));
    world.assert_ended_both_ways(HangupCause::MaxDuration);
    assert_eq!(world.node.calls(), 0);
}

#[test]
fn a_draining_node_refuses_new_calls_and_ends_the_others_at_its_deadline() {
    let mut world = World::new(12).with_line();
    let flow = world.phone.udp_flow(addr(NODE)).unwrap();
    answered_call(&mut world, flow);
    world.node.drain(world.now);
    let mut refused = token_invite(&world, "sales");
    refused.headers.set("Call-ID", "call-2@phone");
    let answer = world.call(refused);
    assert_eq!(answer.status, 503);
    assert_eq!(answer.headers.get("Retry-After"), Some("5"));
    assert!(!world.node.is_drained(), "a call is still up");
    world.advance(SignalingConfig::default().drain_grace());
    world.assert_ended_both_ways(HangupCause::Shutdown);
    assert!(world.node.is_drained());
}

/// A REGISTER for alice with credentials answering `challenge` with `password`.
fn register_with(challenge: &Response, password: &str, cseq: u32) -> Request {
    let mut register = request(Method::Register, "sip:a.test", "<sip:alice@a.test>");
    register.headers.set("To", "<sip:alice@a.test>");
    register.headers.set("CSeq", &format!("{cseq} REGISTER"));
    register.headers.set("Call-ID", &format!("reg-{cseq}@phone"));
    answer_with(register, challenge, "alice", password)
}

/// `request` with `user`'s credentials answering `challenge` with `password`.
fn answer_with(mut request: Request, challenge: &Response, user: &str, password: &str) -> Request {
    let www = challenge.headers.get("WWW-Authenticate").unwrap();
    let uri = request.uri.clone();
    let method = request.method.to_string();
    let answer = offhook_sip::auth::answer_challenge(www, &method, &uri, user, password, "c").unwrap();
    request.headers.push("Authorization", &answer);
    request
}

/// The world with its relay's account, whose line holds an answered call.
fn relay_call(seed: u64, relay_check_interval_ms: u64) -> World {
    let config = SignalingConfig {
        relay_check_interval_ms,
        ..SignalingConfig::default()
    };
    let mut world = World::configured(seed, config).with_line();
    let relay = Account {
        id: "acc_relay".into(),
        username: "relay-1".into(),
        kind: AccountKind::Relay,
        ha1_md5: offhook_directory::DigestAlgorithm::Md5.ha1("relay-1", "a.test", "relay-secret"),
        ..world.directory.accounts[0].clone()
    };
    world.directory.accounts.push(relay);
    let flow = world.phone.udp_flow(addr(NODE)).unwrap();
    answered_call(&mut world, flow);
    world.byes.clear();
    world
}

/// Asserts the node ended its one call `relay-lost`: a BYE to the caller
/// only, the CDR ended, the line idle.
fn assert_relay_lost(world: &mut World) {
    world.assert_ended_one_way(
        "phone",
        HangupCause::RelayLost,
        "the caller hears the end; the lost relay is not asked",
    );
}

#[test]
fn a_relay_that_registers_again_as_a_new_process_loses_the_call_on_its_line() {
    let mut world = relay_call(21, 0);
    // The relay refreshing its binding (the same Call-ID) changes nothing.
    let register = |call_id: &str, cseq: u32| {
        let mut r = request(Method::Register, "sip:a.test", "<sip:relay-1@a.test>");
        r.headers.set("To", "<sip:relay-1@a.test>");
        r.headers.set("Call-ID", call_id);
        r.headers.set("CSeq", &format!("{cseq} REGISTER"));
        r.headers
            .set("Contact", &format!("<sip:line-1@{RELAY}>;expires=300"));
        r
    };
    for (call_id, cseq) in [("reg", 2), ("new-boot", 1)] {
        let challenge = world.call(register(call_id, cseq));
        assert_eq!(challenge.status, 401);
        let answered = answer_with(register(call_id, cseq + 1), &challenge, "relay-1", "relay-secret");
        assert_eq!(world.call(answered).status, 200);
        if call_id == "reg" {
            assert!(world.byes.is_empty(), "a refresh is the same relay");
            assert_eq!(world.node.calls(), 1);
        }
    }
    assert_relay_lost(&mut world);
}

#[test]
fn a_relay_that_stops_answering_its_health_checks_loses_the_call_on_its_line() {
    let mut world = relay_call(22, 1_000);
    world.advance(Duration::from_secs(3));
    assert_eq!(world.node.calls(), 1, "a relay that answers keeps its call");
    world.relay_dead = true;
    for _ in 0..20 {
        world.advance(Duration::from_secs(1));
    }
    assert_relay_lost(&mut world);
}

#[test]
fn password_guessing_is_slowed_then_banned_and_the_right_password_does_not_help() {
    let mut world = World::new(13);
    let challenge = |world: &mut World, cseq: u32| {
        let mut r = request(Method::Register, "sip:a.test", "<sip:alice@a.test>");
        r.headers.set("Call-ID", &format!("probe-{cseq}@phone"));
        world.call(r)
    };
    let free = SignalingConfig::default().auth_free_failures;
    for n in 0..free {
        let c = challenge(&mut world, 100 + n);
        assert_eq!(c.status, 401);
        let answer = world.call(register_with(&c, "wrong-guess", n + 1));
        assert_eq!((answer.status, answer.reason.as_str()), (403, "Forbidden"));
    }
    // One more wrong guess, then even the right password waits.
    let c = challenge(&mut world, 200);
    assert_eq!(world.call(register_with(&c, "wrong-again", 50)).status, 403);
    let c = challenge(&mut world, 201);
    let refused = world.call(register_with(&c, "alice-secret", 51));
    assert_eq!(
        (refused.status, refused.reason.as_str()),
        (403, "Too many failed attempts")
    );
    assert!(refused.headers.get("Retry-After").is_some());
    // An unknown user is answered exactly like a known one.
    let mut unknown = request(Method::Register, "sip:a.test", "<sip:mallory@a.test>");
    unknown.headers.set("To", "<sip:mallory@a.test>");
    unknown.headers.set("Call-ID", "m1@phone");
    let c2 = world.call(unknown.clone());
    let www = c2.headers.get("WWW-Authenticate").unwrap().to_owned();
    let answer =
        offhook_sip::auth::answer_challenge(&www, "REGISTER", "sip:a.test", "mallory", "x", "c").unwrap();
    unknown.headers.push("Authorization", &answer);
    unknown.headers.set("CSeq", "2 REGISTER");
    let refused_unknown = world.call(unknown);
    assert_eq!(refused_unknown.status, 403, "as for a wrong password");
    // After the wait, the right password works again.
    world.advance(Duration::from_secs(3));
    let c = challenge(&mut world, 300);
    assert_eq!(world.call(register_with(&c, "alice-secret", 60)).status, 200);
}

/// Alice's INVITE to `uri`, answered to the proxy's challenge; the final response.
fn account_call(world: &mut World, uri: &str) -> Response {
    let challenge = world.call(request(Method::Invite, uri, "<sip:alice@a.test>"));
    assert_eq!(challenge.status, 407, "{}", challenge.reason);
    let www = challenge.headers.get("Proxy-Authenticate").unwrap();
    let answer =
        offhook_sip::auth::answer_challenge(www, "INVITE", uri, "alice", "alice-secret", "c").unwrap();
    let mut invite = request(Method::Invite, uri, "<sip:alice@a.test>");
    invite.headers.set("CSeq", "2 INVITE");
    invite.headers.push("Proxy-Authorization", &answer);
    world.call(invite)
}

#[test]
fn an_account_calling_a_closed_icon_is_refused_like_a_visitor() {
    let mut world = World::new(20).with_line();
    world.directory.icons[0].opening_hours = "mon 00:00-00:01".into();
    let answer = account_call(&mut world, "sip:sales@a.test");
    assert_eq!(
        (answer.status, answer.reason.as_str()),
        (480, "Icon closed at this time")
    );
    assert!(world.directory.started.is_empty(), "no call started");
    assert!(world.directory.line_states.is_empty(), "no line claimed");
}

#[test]
fn destinations_the_tenant_policy_denies_are_refused_before_anything_is_dialed_or_billed() {
    // An account dialing international premium, an access code, a number the
    // tenant denies; a token call to an icon whose number the policy now denies.
    let mut world = World::new(21).with_line();
    world.directory.policy.deny = vec!["555".into()];
    for number in ["+88212345678", "0044201234567", "5550199"] {
        let answer = account_call(&mut world, &format!("sip:{number}@a.test"));
        assert_eq!(
            (answer.status, answer.reason.as_str()),
            (403, super::policy::DENIED),
            "{number}"
        );
    }
    let answer = world.call(token_invite(&world, "sales"));
    assert_eq!(
        (answer.status, answer.reason.as_str()),
        (403, super::policy::DENIED)
    );
    assert!(world.directory.started.is_empty(), "no CDR: nothing billed");
    assert!(
        world.directory.line_states.is_empty(),
        "no line claimed, nothing dialed"
    );
    assert_eq!(world.node.calls(), 0);
    // A longer allow lets the tenant's own range through again.
    world.directory.policy.allow = vec!["5550100".into()];
    let mut world2 = World::new(22).with_line();
    world2.directory.policy = world.directory.policy.clone();
    let ok = world2.call(token_invite(&world2, "sales"));
    assert_eq!(ok.status, 200, "{}", ok.reason);
}

#[test]
fn the_tenant_cap_on_calls_at_once_spans_its_icons_and_accounts() {
    let mut world = World::new(23).with_line();
    world.directory.policy.max_concurrent_calls = 1;
    let flow = world.phone.udp_flow(addr(NODE)).unwrap();
    answered_call(&mut world, flow);
    let mut second = token_invite(&world, "sales");
    second.headers.set("Call-ID", "call-2@phone");
    let answer = world.call(second);
    assert_eq!(
        (answer.status, answer.reason.as_str()),
        (486, "Too many calls at once")
    );
    let answer = account_call(&mut world, "sip:5550123@a.test");
    assert_eq!(answer.status, 486, "{}", answer.reason);
    assert_eq!(world.directory.started.len(), 1, "only the first call has a CDR");
}

#[test]
fn calls_over_the_daily_cap_are_refused_before_anything_is_dialed() {
    let mut world = World::new(24).with_line();
    world.directory.policy.calls_per_day = 1;
    let flow = world.phone.udp_flow(addr(NODE)).unwrap();
    answered_call(&mut world, flow);
    // At once: the node counted its own call into the cached count.
    let mut second = token_invite(&world, "sales");
    second.headers.set("Call-ID", "call-2@phone");
    let answer = world.call(second);
    assert_eq!(
        (answer.status, answer.reason.as_str()),
        (403, "Daily call limit reached")
    );
    assert_eq!(world.directory.started.len(), 1, "no second CDR");
}

#[test]
fn an_answered_call_ends_when_it_uses_up_the_minutes_left() {
    let mut world = World::new(25).with_line();
    // 7 of the icon's 10 minutes today are billed: this call may use 3.
    world.directory.policy.minutes_per_day = 10;
    world.directory.billed_ms = 7 * 60_000;
    let flow = world.phone.udp_flow(addr(NODE)).unwrap();
    answered_call(&mut world, flow);
    world.advance(Duration::from_secs(3 * 60 - 1));
    assert!(world.byes.is_empty(), "not before its budget is used");
    world.advance(Duration::from_secs(2));
    world.assert_ended_both_ways(HangupCause::BudgetExhausted);
    assert_eq!(world.node.calls(), 0);
}

#[test]
fn calls_over_a_monthly_or_minute_cap_are_refused_before_anything_is_dialed() {
    let mut world = World::new(26).with_line();
    world.directory.policy.tenant_minutes_per_month = 10;
    world.directory.billed_ms = 10 * 60_000;
    let answer = world.call(token_invite(&world, "sales"));
    assert_eq!(
        (answer.status, answer.reason.as_str()),
        (403, "Monthly minutes used up")
    );
    assert!(world.directory.started.is_empty(), "no CDR");
    assert!(world.directory.line_states.is_empty(), "no line claimed");

    let mut world = World::new(27).with_line();
    world.directory.policy.calls_per_month = 1;
    let flow = world.phone.udp_flow(addr(NODE)).unwrap();
    answered_call(&mut world, flow);
    world.advance(Duration::from_secs(60));
    let mut second = token_invite(&world, "sales");
    second.headers.set("Call-ID", "call-2@phone");
    let answer = world.call(second);
    assert_eq!(
        (answer.status, answer.reason.as_str()),
        (403, "Monthly call limit reached")
    );
    assert_eq!(world.directory.started.len(), 1, "no second CDR");
}
