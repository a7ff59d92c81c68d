//! The node core in simulated time, its directory played by a double that
//! answers each output from a few rows kept in memory (the whole-call harness
//! in the tests crate uses the real SQL directory). A SIP peer is a bare
//! endpoint wired to the node's by hand.

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
const SECRET: &[u8] = b"call-token-secret";

/// The directory's rows, and what the node wrote.
#[derive(Debug, Default)]
struct Directory {
    tenants: Vec<Tenant>,
    accounts: Vec<Account>,
    icons: Vec<Icon>,
    ended: Vec<(String, HangupCause)>,
    started: Vec<String>,
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
            // No relay has registered: every number call finds all lines busy.
            Query::Lines => Answer::Lines {
                lines: Vec::new(),
                committed: 0,
            },
        }
    }
}

/// The node, its directory double and a phone, on one simulated clock.
struct World {
    now: Instant,
    node: Node,
    directory: Directory,
    phone: Endpoint,
}

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

impl World {
    fn new(seed: u64) -> Self {
        let now = Instant::now();
        let config = SignalingConfig {
            relay_check_interval_ms: 0,
            ..SignalingConfig::default()
        };
        let start = Start {
            call_token_secret: SECRET.to_vec(),
            nonce_secret: b"nonce-secret".to_vec(),
            host: "127.0.0.1".into(),
            clock: (now, 1_800_000_000_000),
            seed,
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
        Self {
            now,
            node,
            directory: Directory::demo(),
            phone,
        }
    }

    /// Moves datagrams both ways and performs the node's outputs until quiet.
    fn settle(&mut self) {
        loop {
            let mut moved = false;
            while let Some(Transmit { flow, bytes }) = self.phone.poll_transmit() {
                let flow = Flow {
                    local: flow.remote,
                    remote: flow.local,
                    ..flow
                };
                self.node.endpoint().handle_datagram(self.now, flow, &bytes);
                self.node.process(self.now);
                moved = true;
            }
            while let Some(Transmit { flow, bytes }) = self.node.endpoint().poll_transmit() {
                if flow.remote == addr(PHONE) {
                    let flow = Flow {
                        local: flow.remote,
                        remote: flow.local,
                        ..flow
                    };
                    self.phone.handle_datagram(self.now, flow, &bytes);
                }
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
                            Change::ClaimLine(_) => Changed::LineClaimed(false),
                            Change::Bindings { .. } | Change::Register { .. } => {
                                Changed::Bindings(Vec::new())
                            }
                            Change::EndCdr { cdr, cause, .. } => {
                                self.directory.ended.push((cdr, cause));
                                Changed::CdrEnded
                            }
                        };
                        self.node.handle_changed(self.now, ticket, Ok(changed));
                    }
                    Output::Record(_, Record::StartCdr(cdr)) => self.directory.started.push(cdr.id),
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
        let key = self.phone.send_request(self.now, request, flow);
        for _ in 0..64 {
            self.settle();
            while let Some(event) = self.phone.poll_event() {
                if let Event::Response { key: k, response } = event
                    && k == key
                    && response.status >= 200
                {
                    return response;
                }
            }
            self.now += Duration::from_millis(500);
            self.phone.handle_timeout(self.now);
            self.node.handle_timeout(self.now);
        }
        panic!("no final response to the request");
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
    while let Some(Transmit { flow, bytes }) = world.phone.poll_transmit() {
        let flow = Flow {
            local: flow.remote,
            remote: flow.local,
            ..flow
        };
        world.node.endpoint().handle_datagram(world.now, flow, &bytes);
        world.node.process(world.now);
    }
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
