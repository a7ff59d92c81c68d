//! Transaction machines driven by a simulated clock: retransmission counts and
//! timer expiry on UDP, none on TCP, absorbed retransmissions, ACK generation,
//! and the CANCEL/200 race. No sleeping: time is an input.
#![allow(
    clippy::disallowed_methods,
    reason = "an edge: it reads the real clock and the OS generator"
)]

use std::time::{Duration, Instant};

use super::*;
use crate::message::{Message, Method, Request, Response, parse};
use crate::transport::{ConnId, Flow, TransportKind};

fn flow(kind: TransportKind) -> Flow {
    Flow {
        kind,
        local: "127.0.0.1:5060".parse().unwrap(),
        remote: "127.0.0.1:5070".parse().unwrap(),
        conn: (kind != TransportKind::Udp).then_some(ConnId(1)),
    }
}

fn request(method: &str, branch: &str) -> Request {
    let text = format!(
        "{method} sip:bob@b.example SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch={branch}\r\n\
         From: <sip:alice@a.example>;tag=a1\r\nTo: <sip:bob@b.example>\r\nCall-ID: call-1\r\n\
         CSeq: 1 {method}\r\nMax-Forwards: 70\r\n\r\n"
    );
    match parse(text.as_bytes()).unwrap() {
        Message::Request(r) => r,
        Message::Response(_) => unreachable!("a request line was written"),
    }
}

fn response_to(req: &Request, status: u16) -> Response {
    req.response(status, "Reason", Some("b1"))
}

/// Runs the clock forward in 100 ms steps to `until`, collecting outputs.
fn run_until(layer: &mut TransactionLayer, start: Instant, until: Duration) -> Vec<(Duration, Output)> {
    let mut seen = Vec::new();
    let mut t = Duration::ZERO;
    while t <= until {
        if layer.poll_timeout().is_some_and(|d| d <= start + t) {
            layer.handle_timeout(start + t);
        }
        while let Some(out) = layer.poll_output() {
            seen.push((t, out));
        }
        t += Duration::from_millis(100);
    }
    seen
}

fn sends(outputs: &[(Duration, Output)]) -> Vec<Duration> {
    outputs
        .iter()
        .filter(|(_, o)| matches!(o, Output::Send { .. }))
        .map(|(t, _)| *t)
        .collect()
}

#[test]
fn invite_client_timer_a_doubles_until_timer_b() {
    let (mut layer, t0) = (TransactionLayer::new(Timers::default()), Instant::now());
    layer
        .send_request(t0, request("INVITE", "z9hG4bKa"), flow(TransportKind::Udp))
        .unwrap();
    let out = run_until(&mut layer, t0, Duration::from_secs(40));
    let ms: Vec<u128> = sends(&out).iter().map(Duration::as_millis).collect();
    assert_eq!(ms, [0, 500, 1500, 3500, 7500, 15500, 31500]);
    let timeouts: Vec<_> = out
        .iter()
        .filter(|(_, o)| matches!(o, Output::Timeout { .. }))
        .collect();
    assert_eq!(timeouts.len(), 1);
    assert_eq!(timeouts[0].0, Duration::from_secs(32), "Timer B = 64*T1");
    assert!(layer.is_empty());
}

#[test]
fn non_invite_timer_e_is_capped_at_t2() {
    let (mut layer, t0) = (TransactionLayer::new(Timers::default()), Instant::now());
    layer
        .send_request(t0, request("OPTIONS", "z9hG4bKo"), flow(TransportKind::Udp))
        .unwrap();
    let out = run_until(&mut layer, t0, Duration::from_secs(40));
    let ms: Vec<u128> = sends(&out).iter().map(Duration::as_millis).collect();
    assert_eq!(
        ms,
        [0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]
    );
    assert!(
        out.iter()
            .any(|(t, o)| matches!(o, Output::Timeout { .. }) && *t == Duration::from_secs(32))
    );
}

#[test]
fn reliable_transport_never_retransmits() {
    let (mut layer, t0) = (TransactionLayer::new(Timers::default()), Instant::now());
    layer
        .send_request(t0, request("INVITE", "z9hG4bKt"), flow(TransportKind::Tcp))
        .unwrap();
    let out = run_until(&mut layer, t0, Duration::from_secs(33));
    assert_eq!(sends(&out), [Duration::ZERO]);
    assert!(
        out.iter().any(|(_, o)| matches!(o, Output::Timeout { .. })),
        "Timer B still applies"
    );
}

#[test]
fn transport_error_ends_the_flows_transactions() {
    let (mut layer, t0) = (TransactionLayer::new(Timers::default()), Instant::now());
    let (tcp, udp) = (flow(TransportKind::Tcp), flow(TransportKind::Udp));
    layer
        .send_request(t0, request("INVITE", "z9hG4bKe1"), tcp)
        .unwrap();
    layer
        .send_request(t0, request("OPTIONS", "z9hG4bKe2"), udp)
        .unwrap();
    layer.handle_message(t0, Message::Request(request("BYE", "z9hG4bKe3")), tcp);
    while layer.poll_output().is_some() {}
    let failed = layer.handle_transport_error(tcp);
    assert_eq!(
        failed.iter().map(ClientKey::branch).collect::<Vec<_>>(),
        ["z9hG4bKe1"]
    );
    assert_eq!(layer.len(), 1, "only the UDP transaction is left");
}

#[test]
fn configured_t1_scales_the_timers() {
    let timers = Timers {
        t1: Duration::from_millis(100),
        ..Timers::default()
    };
    let (mut layer, t0) = (TransactionLayer::new(timers), Instant::now());
    layer
        .send_request(t0, request("INVITE", "z9hG4bKs"), flow(TransportKind::Udp))
        .unwrap();
    let out = run_until(&mut layer, t0, Duration::from_secs(8));
    assert!(
        out.iter()
            .any(|(t, o)| matches!(o, Output::Timeout { .. }) && *t == Duration::from_millis(6400))
    );
}

#[test]
fn invite_server_absorbs_retransmissions_and_retransmits_its_final() {
    let (mut layer, t0) = (TransactionLayer::new(Timers::default()), Instant::now());
    let invite = request("INVITE", "z9hG4bKs1");
    let udp = flow(TransportKind::Udp);
    layer.handle_message(t0, Message::Request(invite.clone()), udp);
    let Some(Output::Request { key, .. }) = layer.poll_output() else {
        panic!("new request for the TU")
    };
    layer.handle_message(t0, Message::Request(invite.clone()), udp);
    assert!(
        layer.poll_output().is_none(),
        "retransmission absorbed before any response"
    );
    layer.respond(t0, &key, response_to(&invite, 180)).unwrap();
    assert!(matches!(layer.poll_output(), Some(Output::Send { .. })));
    layer.handle_message(t0, Message::Request(invite.clone()), udp);
    assert!(
        matches!(layer.poll_output(), Some(Output::Send { .. })),
        "last provisional resent"
    );
    layer.respond(t0, &key, response_to(&invite, 486)).unwrap();
    let out = run_until(&mut layer, t0, Duration::from_secs(40));
    let ms: Vec<u128> = sends(&out).iter().map(Duration::as_millis).collect();
    assert_eq!(
        &ms[..6],
        [0, 500, 1500, 3500, 7500, 11500],
        "Timer G doubles to T2"
    );
    assert!(
        out.iter()
            .any(|(t, o)| matches!(o, Output::AckTimeout { .. }) && *t == Duration::from_secs(32))
    );
    assert!(layer.is_empty(), "Timer H ends it");
}

#[test]
fn ack_confirms_and_timer_i_ends() {
    let (mut layer, t0) = (TransactionLayer::new(Timers::default()), Instant::now());
    let invite = request("INVITE", "z9hG4bKs2");
    let udp = flow(TransportKind::Udp);
    layer.handle_message(t0, Message::Request(invite.clone()), udp);
    let Some(Output::Request { key, .. }) = layer.poll_output() else {
        panic!("request")
    };
    layer.respond(t0, &key, response_to(&invite, 404)).unwrap();
    let _ = layer.poll_output();
    let mut ack = request("ACK", "z9hG4bKs2");
    ack.headers.set("To", "<sip:bob@b.example>;tag=b1");
    layer.handle_message(
        t0 + Duration::from_millis(200),
        Message::Request(ack.clone()),
        udp,
    );
    assert!(
        layer.poll_output().is_none(),
        "the ACK of a non-2xx stays in the transaction"
    );
    let out = run_until(&mut layer, t0, Duration::from_secs(6));
    assert!(sends(&out).is_empty(), "no retransmission after the ACK");
    assert!(layer.is_empty(), "Timer I = T4 ends it");
}

#[test]
fn invite_client_acks_a_failure_once_and_absorbs_its_retransmission() {
    let (mut layer, t0) = (TransactionLayer::new(Timers::default()), Instant::now());
    let invite = request("INVITE", "z9hG4bKc1");
    let key = layer
        .send_request(t0, invite.clone(), flow(TransportKind::Udp))
        .unwrap();
    let _ = layer.poll_output();
    let busy = response_to(&invite, 486);
    layer.handle_message(t0, Message::Response(busy.clone()), flow(TransportKind::Udp));
    let Some(Output::Send {
        message: Message::Request(ack),
        ..
    }) = layer.poll_output()
    else {
        panic!("ACK")
    };
    assert_eq!(ack.method, Method::Ack);
    assert_eq!(
        ack.top_via().unwrap().branch(),
        Some("z9hG4bKc1"),
        "same branch as the INVITE"
    );
    assert_eq!(ack.to().unwrap().tag(), Some("b1"));
    assert!(matches!(layer.poll_output(), Some(Output::Response { key: k, .. }) if k == key));
    layer.handle_message(t0, Message::Response(busy), flow(TransportKind::Udp));
    assert!(
        matches!(layer.poll_output(), Some(Output::Send { .. })),
        "ACK resent"
    );
    assert!(layer.poll_output().is_none(), "not passed up twice");
    run_until(&mut layer, t0, Duration::from_secs(33));
    assert!(layer.is_empty(), "Timer D ends it");
}

#[test]
fn cancel_race_with_200() {
    let (mut layer, t0) = (TransactionLayer::new(Timers::default()), Instant::now());
    let udp = flow(TransportKind::Udp);
    let invite = request("INVITE", "z9hG4bKr1");
    let invite_key = layer.send_request(t0, invite.clone(), udp).unwrap();
    layer.handle_message(t0, Message::Response(response_to(&invite, 180)), udp);
    // The user cancels; the CANCEL is its own transaction on the same branch.
    let cancel = request("CANCEL", "z9hG4bKr1");
    let cancel_key = layer.send_request(t0, cancel.clone(), udp).unwrap();
    // The 200 for the INVITE crosses the CANCEL: it still goes up (the user ACKs and BYEs).
    layer.handle_message(t0, Message::Response(response_to(&invite, 200)), udp);
    layer.handle_message(t0, Message::Response(response_to(&cancel, 200)), udp);
    let ups: Vec<(ClientKey, u16)> = std::iter::from_fn(|| layer.poll_output())
        .filter_map(|o| match o {
            Output::Response { key, response } => Some((key, response.status)),
            _ => None,
        })
        .collect();
    assert_eq!(
        ups,
        [
            (invite_key.clone(), 180),
            (invite_key.clone(), 200),
            (cancel_key, 200)
        ]
    );
    // A retransmitted 2xx is passed up too (RFC 6026 Accepted, Timer M).
    layer.handle_message(t0, Message::Response(response_to(&invite, 200)), udp);
    assert!(matches!(layer.poll_output(), Some(Output::Response { key, .. }) if key == invite_key));
}

#[test]
fn server_finds_the_invite_a_cancel_is_for() {
    let (mut layer, t0) = (TransactionLayer::new(Timers::default()), Instant::now());
    let udp = flow(TransportKind::Udp);
    layer.handle_message(t0, Message::Request(request("INVITE", "z9hG4bKx")), udp);
    layer.handle_message(t0, Message::Request(request("CANCEL", "z9hG4bKx")), udp);
    let outputs: Vec<_> = std::iter::from_fn(|| layer.poll_output()).collect();
    assert_eq!(
        outputs.len(),
        2,
        "INVITE and CANCEL are separate server transactions"
    );
    let found = layer.invite_for_cancel(&request("CANCEL", "z9hG4bKx"));
    assert!(found.is_some());
    assert!(!layer.is_answered(&found.unwrap()));
    assert!(
        layer
            .invite_for_cancel(&request("CANCEL", "z9hG4bKother"))
            .is_none()
    );
}

#[test]
fn stray_ack_and_response_go_to_the_user() {
    let (mut layer, t0) = (TransactionLayer::new(Timers::default()), Instant::now());
    let udp = flow(TransportKind::Udp);
    layer.handle_message(t0, Message::Request(request("ACK", "z9hG4bKack2xx")), udp);
    assert!(matches!(layer.poll_output(), Some(Output::Ack { .. })));
    let invite = request("INVITE", "z9hG4bKgone");
    layer.handle_message(t0, Message::Response(response_to(&invite, 200)), udp);
    assert!(matches!(layer.poll_output(), Some(Output::StrayResponse { .. })));
}

/// The earliest deadline by scanning every transaction (what the heap replaces).
fn scanned_deadline(layer: &TransactionLayer) -> Option<Instant> {
    let servers = layer.servers.values().filter_map(ServerTx::deadline);
    let clients = layer.clients.values().filter_map(ClientTx::deadline);
    servers.chain(clients).min()
}

#[test]
fn deadline_heap_matches_a_scan_through_many_calls() {
    // A proxy's mix, started 10 ms apart: server INVITEs answered 180 then 200 or
    // 486, client INVITEs answered 200, BYEs both ways, for 40 simulated seconds.
    let (mut layer, t0) = (TransactionLayer::new(Timers::default()), Instant::now());
    let udp = flow(TransportKind::Udp);
    let mut now = t0;
    for n in 0..4000u32 {
        now = t0 + Duration::from_millis(10 * u64::from(n));
        layer.handle_timeout(now);
        let invite = request("INVITE", &format!("z9hG4bKs{n}"));
        layer.handle_message(now, Message::Request(invite.clone()), udp);
        let key = std::iter::from_fn(|| layer.poll_output())
            .find_map(|o| match o {
                Output::Request { key, .. } => Some(key),
                _ => None,
            })
            .unwrap();
        layer.respond(now, &key, response_to(&invite, 180)).unwrap();
        let last = if n % 3 == 0 { 486 } else { 200 };
        layer.respond(now, &key, response_to(&invite, last)).unwrap();
        let sent = request("INVITE", &format!("z9hG4bKc{n}"));
        layer.send_request(now, sent.clone(), udp).unwrap();
        if n % 2 == 0 {
            layer.handle_message(now, Message::Response(response_to(&sent, 200)), udp);
        }
        let bye = request("BYE", &format!("z9hG4bKb{n}"));
        layer.send_request(now, bye.clone(), udp).unwrap();
        if n % 5 != 0 {
            layer.handle_message(now, Message::Response(response_to(&bye, 200)), udp);
        }
        while layer.poll_output().is_some() {}
        assert_eq!(layer.poll_timeout(), scanned_deadline(&layer), "call {n}");
    }
    let end = now + Duration::from_secs(40);
    while let Some(at) = layer.poll_timeout().filter(|at| *at <= end) {
        layer.handle_timeout(at);
        while layer.poll_output().is_some() {}
        assert_eq!(layer.poll_timeout(), scanned_deadline(&layer));
    }
    assert!(layer.is_empty(), "every transaction ended by its timers");
    assert!(layer.deadlines.is_empty(), "no stale entry outlives them");
}
