//! The endpoint in simulated time: two endpoints wired back to back by hand.
#![allow(
    clippy::disallowed_methods,
    reason = "an edge: it reads the real clock and the OS generator"
)]

use std::time::{Duration, Instant};

use super::*;
use crate::message::parse;

fn endpoint(host: &str, port: u16, role: Role, seed: u64) -> Endpoint {
    let mut e = Endpoint::new(EndpointConfig {
        timers: Timers::default(),
        role,
        host: host.into(),
        supported: Vec::new(),
        seed,
    });
    e.set_bound(TransportKind::Udp, format!("{host}:{port}").parse().unwrap());
    e
}

/// Delivers everything `from` wants to send to whichever of `to` is bound at the
/// destination; returns how many datagrams moved.
fn deliver(now: Instant, from: &mut Endpoint, to: &mut Endpoint) -> usize {
    let mut moved = 0;
    while let Some(t) = from.poll_transmit() {
        let flow = Flow {
            kind: t.flow.kind,
            local: t.flow.remote,
            remote: t.flow.local,
            conn: None,
        };
        to.handle_datagram(now, flow, &t.bytes);
        moved += 1;
    }
    moved
}

fn options(uac: &mut Endpoint) -> Request {
    let mut r = Request::new(Method::Invite, "sip:b@127.0.0.2:5060");
    let tag = uac.new_tag();
    let call_id = uac.new_call_id();
    r.headers.push("From", &format!("<sip:a@127.0.0.1>;tag={tag}"));
    r.headers.push("To", "<sip:b@127.0.0.2>");
    r.headers.push("Call-ID", &call_id);
    r.headers.push("CSeq", "1 INVITE");
    r.headers.push("Max-Forwards", "70");
    r
}

#[test]
fn a_cancel_is_answered_and_its_invite_user_told() {
    let now = Instant::now();
    let mut a = endpoint("127.0.0.1", 5060, Role::UserAgent, 1);
    let mut b = endpoint("127.0.0.2", 5060, Role::UserAgent, 2);
    let flow = a.udp_flow("127.0.0.2:5060".parse().unwrap()).unwrap();
    let invite = options(&mut a);
    let key = a.send_request(now, invite, flow);
    assert_eq!(deliver(now, &mut a, &mut b), 1);
    let Some(Event::Request {
        key: server, request, ..
    }) = b.poll_event()
    else {
        panic!("the INVITE reaches b");
    };
    let via = request.top_via().unwrap();
    assert!(via.branch().unwrap().starts_with(BRANCH_COOKIE));
    assert_eq!(via.param("rport"), Some("5060"), "stamped on arrival");

    a.cancel(now, &key);
    deliver(now, &mut a, &mut b);
    assert!(matches!(b.poll_event(), Some(Event::Cancelled { invite }) if invite == server));
    deliver(now, &mut b, &mut a); // the CANCEL's 200
    let terminated = request.response(487, "Request Terminated", Some("t"));
    b.respond(now, &server, terminated).unwrap();
    deliver(now, &mut b, &mut a);
    match a.poll_event() {
        Some(Event::Response { key: k, response }) => assert_eq!((k, response.status), (key, 487)),
        other => panic!("{other:?}"),
    }
    // The non-2xx is ACKed by the layer: b's transaction completes quietly.
    deliver(now, &mut a, &mut b);
    assert!(b.poll_event().is_none());
}

#[test]
fn a_cancel_for_nothing_gets_481_and_garbage_gets_400() {
    let now = Instant::now();
    let mut a = endpoint("127.0.0.1", 5060, Role::Proxy, 1);
    let flow = a.udp_flow("192.0.2.1:5060".parse().unwrap()).unwrap();
    let cancel = "CANCEL sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKx\r\n\
        From: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nCall-ID: c\r\nCSeq: 1 CANCEL\r\n\r\n";
    a.handle_datagram(now, flow, cancel.as_bytes());
    let reply = parse(&a.poll_transmit().unwrap().bytes).unwrap();
    assert!(matches!(reply, Message::Response(r) if r.status == 481));
    assert!(a.poll_event().is_none(), "nothing for the element");

    let broken = "INVITE sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKy\r\n\
        From: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nCall-ID: c\r\nCSeq: one INVITE\r\n\r\n";
    a.handle_datagram(now, flow, broken.as_bytes());
    let reply = a.poll_transmit().unwrap().bytes;
    assert!(
        reply.starts_with(b"SIP/2.0 400 Bad CSeq\r\n"),
        "{}",
        String::from_utf8_lossy(&reply)
    );
}

#[test]
fn seeded_endpoints_replay_their_ids() {
    let (mut a, mut b) = (
        endpoint("127.0.0.1", 1, Role::Proxy, 42),
        endpoint("127.0.0.1", 1, Role::Proxy, 42),
    );
    assert_eq!(
        (a.new_tag(), a.via(TransportKind::Tcp), a.new_call_id()),
        (b.new_tag(), b.via(TransportKind::Tcp), b.new_call_id())
    );
    assert_ne!(a.new_tag(), endpoint("127.0.0.1", 1, Role::Proxy, 43).new_tag());
}

#[test]
fn a_closed_connection_fails_its_transactions() {
    let now = Instant::now();
    let mut a = endpoint("127.0.0.1", 5060, Role::UserAgent, 1);
    a.set_bound(TransportKind::Tcp, "127.0.0.1:5060".parse().unwrap());
    let flow = Flow {
        kind: TransportKind::Tcp,
        local: "127.0.0.1:5060".parse().unwrap(),
        remote: "127.0.0.2:40000".parse().unwrap(),
        conn: Some(crate::transport::ConnId(9)),
    };
    let request = options(&mut a);
    let key = a.send_request(now, request, flow);
    a.handle_closed(now + Duration::from_millis(10), flow);
    assert!(matches!(a.poll_event(), Some(Event::TransportFailed { key: k }) if k == key));
    assert!(matches!(a.poll_event(), Some(Event::ConnectionClosed { flow: f }) if f == flow));
    assert_eq!(a.transactions(), 0);
}

#[test]
fn an_unanswered_request_times_out_by_timer_b() {
    let now = Instant::now();
    let mut a = endpoint("127.0.0.1", 5060, Role::UserAgent, 1);
    let flow = a.udp_flow("192.0.2.1:5060".parse().unwrap()).unwrap();
    let request = options(&mut a);
    let key = a.send_request(now, request, flow);
    let mut sent = 0;
    let mut at = now;
    while let Some(next) = a.poll_timeout() {
        at = next;
        a.handle_timeout(at);
        while a.poll_transmit().is_some() {
            sent += 1;
        }
        if let Some(event) = a.poll_event() {
            assert!(matches!(event, Event::Timeout { key: k } if k == key));
            break;
        }
    }
    assert_eq!(at - now, Timers::default().t1 * 64, "Timer B = 64*T1");
    assert!(sent >= 6, "Timer A retransmissions ({sent})");
}
