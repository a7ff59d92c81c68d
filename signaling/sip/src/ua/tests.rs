//! The user-agent layer in simulated time: a caller and a callee (and a
//! registrar) on one virtual clock, datagrams moved between them by hand, some
//! dropped on purpose.
#![allow(
    clippy::disallowed_methods,
    reason = "an edge: it reads the real clock and the OS generator"
)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::*;
use crate::endpoint::{Endpoint, SipIo, Transmit};
use crate::message::{Message, Method, parse};
use crate::testing::{Registrar, arriving, bound_endpoint, first_line};

const CALLER: &str = "127.0.0.2:5060";
const CALLEE: &str = "127.0.0.3:5060";
const REGISTRAR: &str = "127.0.0.4:5060";

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

fn endpoint(at: &str, seed: u64) -> Endpoint {
    bound_endpoint(addr(at), seed)
}

/// Caller, callee and registrar on one clock.
struct Sim {
    now: Instant,
    caller: UserAgent,
    callee: UserAgent,
    registrar: Registrar,
    /// Drops the next this many ACKs from the caller (`usize::MAX`: all).
    drop_acks: usize,
    /// Every datagram sent (first line, when, from where).
    log: Vec<(Duration, SocketAddr, String)>,
    start: Instant,
}

impl Sim {
    fn new() -> Self {
        let now = Instant::now();
        Self {
            now,
            start: now,
            caller: UserAgent::new(endpoint(CALLER, 1), UaConfig::default()),
            callee: UserAgent::new(endpoint(CALLEE, 2), UaConfig::default()),
            registrar: Registrar::new(addr(REGISTRAR), "test.example", "relay", "secret", 60),
            drop_acks: 0,
            log: Vec::new(),
        }
    }

    fn parts(&mut self) -> [(SocketAddr, &mut dyn SipIo); 3] {
        [
            (addr(CALLER), &mut self.caller as &mut dyn SipIo),
            (addr(CALLEE), &mut self.callee),
            (addr(REGISTRAR), &mut self.registrar),
        ]
    }

    /// Moves datagrams until none are left.
    fn deliver(&mut self) {
        loop {
            let (now, elapsed) = (self.now, self.now - self.start);
            let mut moving: Vec<(SocketAddr, Transmit)> = Vec::new();
            for (at, part) in self.parts() {
                moving.extend(std::iter::from_fn(|| part.poll_transmit()).map(|t| (at, t)));
            }
            if moving.is_empty() {
                return;
            }
            for (from, t) in moving {
                let line = first_line(&t.bytes);
                self.log.push((elapsed, from, line.clone()));
                if line.starts_with("ACK") && from == addr(CALLER) && self.drop_acks > 0 {
                    self.drop_acks -= 1;
                    continue;
                }
                let flow = arriving(&t);
                for (at, part) in self.parts() {
                    if at == t.flow.remote {
                        part.handle_datagram(now, flow, &t.bytes);
                    }
                }
            }
        }
    }

    /// Runs the clock until `for_` has passed, firing every deadline on the way.
    fn run(&mut self, for_: Duration) {
        let until = self.now + for_;
        self.deliver();
        loop {
            let next = [
                self.caller.poll_timeout(),
                self.callee.poll_timeout(),
                self.registrar.poll_timeout(),
            ]
            .into_iter()
            .flatten()
            .min();
            match next {
                Some(at) if at <= until => {
                    self.now = self.now.max(at);
                    let now = self.now;
                    self.caller.handle_timeout(now);
                    self.callee.handle_timeout(now);
                    self.registrar.handle_timeout(now);
                    self.deliver();
                }
                _ => break,
            }
        }
        self.now = until;
    }

    fn caller_events(&mut self) -> Vec<UaEvent> {
        std::iter::from_fn(|| self.caller.poll_event()).collect()
    }

    fn callee_events(&mut self) -> Vec<UaEvent> {
        std::iter::from_fn(|| self.callee.poll_event()).collect()
    }

    /// The caller INVITEs the callee directly; the callee's session.
    fn call(&mut self) -> (SessionId, SessionId) {
        let flow = self.caller.endpoint().udp_flow(addr(CALLEE)).unwrap();
        let call = Outgoing {
            target: format!("sip:line-1@{CALLEE}"),
            from: format!("sip:visitor@{CALLER}"),
            to: format!("sip:line-1@{CALLEE}"),
            contact_user: Some("visitor".into()),
            flow,
            extra: Reply::default().header("X-Test", "1").body(Body::sdp("v=0\r\n")),
        };
        let caller = self.caller.invite(self.now, call);
        self.deliver();
        match &self.callee_events()[..] {
            [UaEvent::Invite { session, request, .. }] => {
                assert_eq!(request.headers.get("X-Test"), Some("1"));
                assert_eq!(request.body, b"v=0\r\n");
                (caller, *session)
            }
            other => panic!("{other:?}"),
        }
    }

    /// Times (since the start) the callee sent a 2xx.
    fn oks(&self) -> Vec<Duration> {
        self.log
            .iter()
            .filter(|(_, from, line)| *from == addr(CALLEE) && line == "SIP/2.0 200 OK")
            .map(|(at, _, _)| *at)
            .collect()
    }
}

fn parsed(transmit_bytes: &[u8]) -> Message {
    parse(transmit_bytes).unwrap()
}

#[test]
fn a_call_rings_is_answered_acked_and_hung_up() {
    let mut sim = Sim::new();
    let (caller, callee) = sim.call();
    sim.callee
        .provisional(sim.now, callee, &Reply::new(180, "Ringing"))
        .unwrap();
    sim.deliver();
    let ringing = match &sim.caller_events()[..] {
        [
            UaEvent::Progress { response: trying, .. },
            UaEvent::Progress { response, .. },
        ] => {
            assert_eq!(trying.status, 100);
            response.clone()
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(ringing.status, 180);
    assert!(
        ringing.headers.get("Contact").is_some(),
        "a 180 that makes an early dialog has a Contact (RFC 3261 s12.1.1)"
    );
    let ok = Reply::new(200, "OK").body(Body::sdp("v=0 answer\r\n"));
    sim.callee.accept(sim.now, callee, &ok).unwrap();
    sim.deliver();
    match &sim.caller_events()[..] {
        [UaEvent::Answered { session, response }] => {
            assert_eq!(*session, caller);
            assert_eq!(response.body, b"v=0 answer\r\n");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(&sim.callee_events()[..], [UaEvent::Confirmed { session }] if *session == callee));
    assert_eq!(sim.caller.call_id(caller), sim.callee.call_id(callee));
    assert!(sim.caller.call_id(caller).unwrap().ends_with("@127.0.0.2"));

    sim.run(Duration::from_secs(10));
    assert_eq!(sim.oks().len(), 1, "no 2xx retransmission once ACKed");
    sim.caller
        .bye(sim.now, caller, &Reply::default().header("X-Why", "done"))
        .unwrap();
    sim.deliver();
    let (key, bye) = match sim.callee_events().pop() {
        Some(UaEvent::InDialog {
            session,
            key,
            request,
        }) if session == callee => (key, request),
        other => panic!("{other:?}"),
    };
    assert_eq!(bye.method, Method::Bye);
    assert_eq!(bye.headers.get("X-Why"), Some("done"));
    let mut answer = bye.response(200, "OK", None);
    answer.headers.push("X-Stats", "fine");
    sim.callee.respond(sim.now, &key, answer).unwrap();
    sim.deliver();
    assert!(matches!(
        &sim.callee_events()[..],
        [UaEvent::Terminated {
            end: End::ByeReceived,
            ..
        }]
    ));
    match &sim.caller_events()[..] {
        [
            UaEvent::InDialogResponse { status: 200, .. },
            UaEvent::Terminated {
                end: End::ByeSent(Some(r)),
                ..
            },
        ] => assert_eq!(r.headers.get("X-Stats"), Some("fine")),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        sim.callee.bye(sim.now, callee, &Reply::default()),
        Err(UaError::NoSession(callee))
    );
}

#[test]
fn a_lost_ack_gets_the_2xx_again_at_t1_doubling_to_t2() {
    let mut sim = Sim::new();
    let (_, callee) = sim.call();
    sim.drop_acks = 3;
    let answered_at = sim.now - sim.start;
    sim.callee
        .accept(sim.now, callee, &Reply::new(200, "OK"))
        .unwrap();
    sim.run(Duration::from_secs(20));
    let gaps: Vec<Duration> = sim.oks().iter().map(|at| *at - answered_at).collect();
    let ms = |v: &[u64]| v.iter().map(|&m| Duration::from_millis(m)).collect::<Vec<_>>();
    assert_eq!(gaps, ms(&[0, 500, 1500, 3500]), "2xx at 0, T1, 3 T1, 7 T1");
    // The fourth ACK (answering the third retransmission) got through.
    let events = sim.callee_events();
    assert!(matches!(&events[..], [UaEvent::Confirmed { .. }]), "{events:?}");
}

#[test]
fn no_ack_at_all_gives_up_after_64_t1() {
    let mut sim = Sim::new();
    let (caller, callee) = sim.call();
    sim.drop_acks = usize::MAX;
    let answered_at = sim.now - sim.start;
    sim.callee
        .accept(sim.now, callee, &Reply::new(200, "OK"))
        .unwrap();
    sim.run(Duration::from_secs(40));
    let gaps: Vec<u64> = sim
        .oks()
        .iter()
        .map(|at| (*at - answered_at).as_millis() as u64)
        .collect();
    assert_eq!(
        gaps,
        [0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500],
        "T1 doubling, capped at T2 = 4 s"
    );
    let events = sim.callee_events();
    assert!(
        matches!(&events[..], [UaEvent::AckTimeout { session }] if *session == callee),
        "{events:?}"
    );
    // The application ends it: the BYE reaches the caller.
    sim.callee.bye(sim.now, callee, &Reply::default()).unwrap();
    sim.deliver();
    let events = sim.caller_events();
    let Some(UaEvent::InDialog {
        key,
        request,
        session,
    }) = events.into_iter().find(|e| matches!(e, UaEvent::InDialog { .. }))
    else {
        panic!("the BYE reached the caller");
    };
    assert_eq!((session, request.method.clone()), (caller, Method::Bye));
    sim.caller
        .respond(sim.now, &key, request.response(200, "OK", None))
        .unwrap();
    sim.deliver();
    assert!(sim.callee_events().iter().any(|e| matches!(
        e,
        UaEvent::Terminated {
            end: End::ByeSent(Some(_)),
            ..
        }
    )));
}

#[test]
fn a_cancelled_invite_is_answered_487_on_both_sides() {
    let mut sim = Sim::new();
    let (caller, callee) = sim.call();
    sim.caller.cancel(sim.now, caller).unwrap();
    sim.deliver();
    assert!(matches!(
        &sim.callee_events()[..],
        [UaEvent::Terminated { session, end: End::Cancelled }] if *session == callee
    ));
    assert!(
        sim.caller_events()
            .iter()
            .any(|e| matches!(e, UaEvent::Terminated { session, end: End::Cancelled } if *session == caller))
    );
    assert!(
        sim.log
            .iter()
            .any(|(_, _, l)| l == "SIP/2.0 487 Request Terminated")
    );
    assert!(matches!(
        sim.callee.accept(sim.now, callee, &Reply::new(200, "OK")),
        Err(UaError::NoSession(_))
    ));
}

#[test]
fn a_rejection_ends_the_call_and_unknown_dialogs_get_481() {
    let mut sim = Sim::new();
    let (caller, callee) = sim.call();
    assert_eq!(
        sim.callee.reject(sim.now, callee, &Reply::new(200, "OK")),
        Err(UaError::BadStatus(200))
    );
    sim.callee
        .reject(sim.now, callee, &Reply::new(486, "Busy Here"))
        .unwrap();
    sim.deliver();
    match sim.caller_events().pop() {
        Some(UaEvent::Terminated {
            session,
            end: End::Failed {
                status: 486,
                response: Some(_),
            },
        }) => assert_eq!(session, caller),
        other => panic!("{other:?}"),
    }
    // A BYE in no dialog of the callee's.
    let bye = format!(
        "BYE sip:line-1@{CALLEE} SIP/2.0\r\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bKstray\r\n\
         From: <sip:a@x>;tag=1\r\nTo: <sip:b@x>;tag=2\r\nCall-ID: nope\r\nCSeq: 5 BYE\r\n\r\n"
    );
    let flow = sim.callee.endpoint().udp_flow(addr(CALLER)).unwrap();
    sim.callee.handle_datagram(sim.now, flow, bye.as_bytes());
    let reply = sim.callee.poll_transmit().unwrap();
    assert!(matches!(parsed(&reply.bytes), Message::Response(r) if r.status == 481));
}

#[test]
fn an_out_of_order_request_gets_500() {
    let mut sim = Sim::new();
    let (caller, callee) = sim.call();
    sim.callee
        .accept(sim.now, callee, &Reply::new(200, "OK"))
        .unwrap();
    sim.deliver();
    sim.caller_events();
    sim.callee_events();
    // An INFO of the caller's, then one with a lower CSeq.
    sim.caller
        .request(sim.now, caller, Method::Info, &Reply::default())
        .unwrap();
    let info = sim.caller.poll_transmit().unwrap();
    let text = String::from_utf8(info.bytes.clone()).unwrap();
    let Message::Request(request) = parsed(&info.bytes) else {
        unreachable!("an INFO")
    };
    let number = request.cseq().unwrap().number;
    let lower = text
        .replace(
            &format!("CSeq: {number} INFO"),
            &format!("CSeq: {} INFO", number - 5),
        )
        .replace("branch=z9hG4bK", "branch=z9hG4bKlow");
    let flow = sim.callee.endpoint().udp_flow(addr(CALLER)).unwrap();
    sim.callee.handle_datagram(sim.now, flow, info.bytes.as_slice());
    assert!(matches!(&sim.callee_events()[..], [UaEvent::InDialog { .. }]));
    sim.callee.handle_datagram(sim.now, flow, lower.as_bytes());
    assert!(sim.callee_events().is_empty());
    let reply = sim.callee.poll_transmit().unwrap();
    assert!(matches!(parsed(&reply.bytes), Message::Response(r) if r.status == 500));
}

#[test]
fn an_unanswered_invite_fails_with_408_after_timer_b() {
    let mut sim = Sim::new();
    let flow = sim.caller.endpoint().udp_flow(addr("192.0.2.9:5060")).unwrap();
    let session = sim.caller.invite(
        sim.now,
        Outgoing {
            target: "sip:nobody@192.0.2.9".into(),
            from: "sip:visitor@127.0.0.2".into(),
            to: "sip:nobody@192.0.2.9".into(),
            contact_user: None,
            flow,
            extra: Reply::default(),
        },
    );
    sim.run(Duration::from_secs(33));
    match sim.caller_events().pop() {
        Some(UaEvent::Terminated {
            session: s,
            end: End::Failed {
                status: 408,
                response: None,
            },
        }) => assert_eq!(s, session),
        other => panic!("{other:?}"),
    }
}

fn registration(sim: &mut Sim) -> RegistrationId {
    register_with(sim, "secret")
}

fn register_with(sim: &mut Sim, password: &str) -> RegistrationId {
    let flow = sim.caller.endpoint().udp_flow(addr(REGISTRAR)).unwrap();
    sim.caller.register(
        sim.now,
        RegistrationSpec {
            flow,
            registrar: "sip:test.example".into(),
            aor: "sip:relay@test.example".into(),
            contact_user: "line-1".into(),
            username: "relay".into(),
            password: password.into(),
            expires: Duration::from_secs(300),
        },
    )
}

#[test]
fn a_registration_answers_the_challenge_and_refreshes_with_the_next_nonce_count() {
    let mut sim = Sim::new();
    let id = registration(&mut sim);
    sim.deliver();
    assert!(matches!(
        &sim.caller_events()[..],
        [UaEvent::Registered { registration, expires }] if *registration == id && *expires == Duration::from_secs(60)
    ));
    assert!(sim.caller.is_registered(id));
    // Refreshed at 4/5 of the 60 s granted, with the same nonce and nc 2: no new challenge.
    sim.run(Duration::from_secs(47));
    assert!(sim.caller_events().is_empty());
    sim.run(Duration::from_secs(2));
    assert!(matches!(&sim.caller_events()[..], [UaEvent::Registered { .. }]));
    assert_eq!(sim.registrar.counts, ["00000001", "00000002"]);
    let registers = sim
        .log
        .iter()
        .filter(|(_, _, l)| l.starts_with("REGISTER"))
        .count();
    assert_eq!(registers, 3, "challenged once, refreshed once");
    sim.caller.unregister(sim.now, id).unwrap();
    sim.deliver();
    assert!(matches!(&sim.caller_events()[..], [UaEvent::Unregistered { .. }]));
    assert!(!sim.caller.is_registered(id));
}

#[test]
fn an_unanswered_registration_is_retried_with_a_doubling_backoff() {
    let mut sim = Sim::new();
    sim.registrar.silent = true;
    let id = registration(&mut sim);
    let mut waits = Vec::new();
    for _ in 0..4 {
        sim.run(Duration::from_secs(32 + 300));
        for event in sim.caller_events() {
            match event {
                UaEvent::RegistrationFailed {
                    registration,
                    status,
                    retry_in,
                } => {
                    assert_eq!((registration, status), (id, 408));
                    waits.push(retry_in);
                }
                other => panic!("{other:?}"),
            }
        }
    }
    assert!(waits.len() >= 4, "{waits:?}");
    for (n, wait) in waits.iter().enumerate() {
        let full = (Duration::from_secs(5) * 2u32.pow(n as u32)).min(Duration::from_secs(300));
        assert!(
            *wait > full / 2 && *wait <= full,
            "attempt {n}: {wait:?} of {full:?}"
        );
    }
    // The registrar comes back: the next attempt registers.
    sim.registrar.silent = false;
    sim.run(Duration::from_secs(400));
    assert!(
        sim.caller_events()
            .iter()
            .any(|e| matches!(e, UaEvent::Registered { .. }))
    );
}

#[test]
fn wrong_credentials_are_not_answered_forever() {
    let mut sim = Sim::new();
    register_with(&mut sim, "wrong");
    sim.deliver();
    assert!(matches!(
        &sim.caller_events()[..],
        [UaEvent::RegistrationFailed { status: 401, .. }]
    ));
    let registers = sim
        .log
        .iter()
        .filter(|(_, _, l)| l.starts_with("REGISTER"))
        .count();
    assert_eq!(registers, 3, "two challenges answered, then a pause");
}

#[test]
fn a_reinvite_2xx_goes_again_until_acked_and_an_update_needs_no_ack() {
    let mut sim = Sim::new();
    let (caller, callee) = sim.call();
    sim.callee
        .accept(sim.now, callee, &Reply::new(200, "OK"))
        .unwrap();
    sim.run(Duration::from_secs(1));
    sim.caller_events();
    sim.callee_events();
    let hold = Reply::default().body(Body::sdp("v=0\r\na=sendonly\r\n"));
    sim.caller
        .request(sim.now, caller, Method::Invite, &hold)
        .unwrap();
    sim.deliver();
    let (key, reinvite) = match &sim.callee_events()[..] {
        [UaEvent::InDialog { key, request, .. }] => (key.clone(), request.clone()),
        other => panic!("{other:?}"),
    };
    assert_eq!(reinvite.method, Method::Invite);
    sim.drop_acks = 2;
    let sent_at = sim.now - sim.start;
    sim.callee
        .respond(sim.now, &key, reinvite.response(200, "OK", None))
        .unwrap();
    sim.run(Duration::from_secs(20));
    let gaps: Vec<Duration> = sim
        .oks()
        .iter()
        .filter(|at| **at >= sent_at)
        .map(|at| *at - sent_at)
        .collect();
    let ms = |v: &[u64]| v.iter().map(|&m| Duration::from_millis(m)).collect::<Vec<_>>();
    assert_eq!(
        gaps,
        ms(&[0, 500, 1500]),
        "the re-INVITE's 2xx again until its third ACK"
    );
    let events = sim.callee_events();
    assert!(matches!(&events[..], [UaEvent::Confirmed { .. }]), "{events:?}");
    let reinvite_ok = sim
        .log
        .iter()
        .filter(|(_, from, l)| *from == addr(CALLEE) && l.starts_with("SIP/2.0 200"))
        .count();

    sim.caller
        .request(sim.now, caller, Method::Update, &hold)
        .unwrap();
    sim.deliver();
    let (key, update) = match &sim.callee_events()[..] {
        [UaEvent::InDialog { key, request, .. }] => (key.clone(), request.clone()),
        other => panic!("{other:?}"),
    };
    sim.callee
        .respond(sim.now, &key, update.response(200, "OK", None))
        .unwrap();
    sim.run(Duration::from_secs(40));
    let oks = sim
        .log
        .iter()
        .filter(|(_, from, l)| *from == addr(CALLEE) && l.starts_with("SIP/2.0 200"))
        .count();
    assert_eq!(
        oks,
        reinvite_ok + 1,
        "an UPDATE's 2xx is the transaction's, sent once"
    );
    assert!(sim.callee_events().is_empty(), "no ACK timeout for an UPDATE");
    assert!(matches!(
        &sim.caller_events()[..],
        [.., UaEvent::InDialogResponse { status: 200, .. }]
    ));
}
