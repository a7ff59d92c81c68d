//! The real signaling server on 127.0.0.1 driven by sipp (Debian `sip-tester`):
//! REGISTER with a digest challenge, a call from a sipp UAC through the proxy to
//! a sipp UAS registered as a relay line, CANCEL before answer, a busy line, and
//! calls under packet loss. Each test on a fresh database; CDRs checked.

mod common;

use offhook_directory::{AnswerSource, HangupCause, LineState};
use std::time::Duration;

use common::{Setup, Site, finish, free_port, test_config, uas};
use offhook_directory::testing::{Backend, backends};

const SITE: Site = Site {
    tenant: "t",
    domain: "t.test",
    icon: "sales",
};

async fn setup(backend: Backend) -> Setup {
    Setup::new(backend, SITE, &[("relay-1", "line-1")], test_config(false)).await
}

#[tokio::test]
async fn register_with_digest_challenge() {
    for backend in backends() {
        let s = setup(backend).await;
        assert!(
            s.register("alice", "alice-secret", "alice", 5999).await,
            "{backend:?}"
        );
        let tenant = s.db.directory.tenant("t").await.unwrap();
        let bindings =
            s.db.directory
                .registrations(&tenant.id, "alice", 0)
                .await
                .unwrap();
        assert_eq!(bindings.len(), 1);
        assert_eq!(bindings[0].contact, "sip:alice@127.0.0.1:5999");
        assert!(
            !s.register("alice", "wrong-password", "alice", 5999).await,
            "wrong password refused"
        );
        s.db.finish().await;
    }
}

#[tokio::test]
async fn call_through_the_proxy_to_a_relay_line() {
    for backend in backends() {
        let s = setup(backend).await;
        let uas_port = free_port();
        let relay = uas("uas.xml", uas_port, 1, &[]);
        assert!(s.register("relay-1", "relay-1-secret", "line-1", uas_port).await);
        let caller = s.uac("uac.xml", "sales", 1, &[]);
        assert!(finish(caller, "uac").await, "{backend:?}: call completes");
        assert!(finish(relay, "uas").await);
        let cdrs = s.cdrs().await;
        assert_eq!(cdrs.len(), 1);
        assert_eq!(cdrs[0].number, "5550100", "the icon's number, from the directory");
        assert!(cdrs[0].answered_at.is_some());
        assert_eq!(cdrs[0].answer_source, Some(AnswerSource::Sip));
        assert_eq!(cdrs[0].hangup_cause, Some(HangupCause::Normal));
        let line = s.db.directory.line("line-1").await.unwrap();
        assert_eq!(line.state, LineState::Idle, "released after the call");
        s.db.finish().await;
    }
}

#[tokio::test]
async fn cancel_before_answer_and_busy_line() {
    let s = setup(Backend::Sqlite).await;
    let uas_port = free_port();
    let relay = uas("uas_ringing.xml", uas_port, 1, &[]);
    assert!(s.register("relay-1", "relay-1-secret", "line-1", uas_port).await);
    assert!(finish(s.uac("uac_cancel.xml", "sales", 1, &[]), "uac cancel").await);
    assert!(finish(relay, "uas ringing").await);
    let busy_port = free_port();
    let relay = uas("uas_busy.xml", busy_port, 1, &[]);
    assert!(s.register("relay-1", "relay-1-secret", "line-1", busy_port).await);
    assert!(finish(s.uac("uac_busy.xml", "sales", 1, &[]), "uac busy").await);
    assert!(finish(relay, "uas busy").await);
    let mut causes: Vec<_> = s
        .cdrs()
        .await
        .into_iter()
        .filter_map(|c| c.hangup_cause)
        .collect();
    causes.sort();
    assert_eq!(causes, [HangupCause::Busy, HangupCause::Cancelled]);
    s.db.finish().await;
}

/// A UDP hop between the proxy and the relay at `to` that loses the first INVITE
/// and the first ACK the proxy sends; everything else passes both ways.
async fn lossy_hop(to: u16) -> (u16, tokio::task::JoinHandle<u32>) {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = socket.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let (mut lost_invite, mut lost_ack, mut passed) = (false, false, 0);
        let relay: std::net::SocketAddr = ("127.0.0.1".parse::<std::net::IpAddr>().unwrap(), to).into();
        let mut proxy = None;
        let mut buf = vec![0u8; 65_535];
        while let Ok(Ok((len, from))) =
            tokio::time::timeout(Duration::from_secs(5), socket.recv_from(&mut buf)).await
        {
            let bytes = &buf[..len];
            if !lost_invite && bytes.starts_with(b"INVITE ") {
                lost_invite = true;
                continue;
            }
            if !lost_ack && bytes.starts_with(b"ACK ") {
                lost_ack = true;
                continue;
            }
            passed += 1;
            if from == relay {
                if let Some(proxy) = proxy {
                    let _ = socket.send_to(bytes, proxy).await;
                }
            } else {
                proxy = Some(from);
                let _ = socket.send_to(bytes, relay).await;
            }
        }
        passed
    });
    (port, task)
}

#[tokio::test]
async fn retransmissions_recover_lost_invite_and_ack() {
    // The proxy's Timer A resends the lost INVITE; the relay's 200 retransmissions
    // (after the lost ACK) pass through the proxy's Accepted state to the caller,
    // whose new ACK gets through.
    let s = setup(Backend::Sqlite).await;
    let uas_port = free_port();
    let relay = uas("uas.xml", uas_port, 1, &[]);
    let (hop, hop_task) = lossy_hop(uas_port).await;
    assert!(s.register("relay-1", "relay-1-secret", "line-1", hop).await);
    // Hold 2 s: the relay's 200 retransmission (T1 = 500 ms) comes before the BYE.
    let caller = s.uac("uac.xml", "sales", 1, &["-d", "2000"]);
    assert!(
        finish(caller, "uac").await,
        "the call completes despite the losses"
    );
    assert!(finish(relay, "uas").await);
    let cdrs = s.cdrs().await;
    assert!(cdrs[0].answered_at.is_some());
    assert_eq!(cdrs[0].hangup_cause, Some(HangupCause::Normal));
    hop_task.abort();
    s.db.finish().await;
}

/// Polls the directory until `relay`'s state is `state` (10 s at most).
async fn relay_becomes(s: &Setup, relay: &str, state: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut poll = tokio::time::interval(Duration::from_millis(50));
    loop {
        poll.tick().await;
        let now = s.db.directory.relay(relay).await.unwrap();
        if now.state == state {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{relay} stays {} instead of {state}",
            now.state
        );
    }
}

#[tokio::test]
async fn calls_fail_over_to_another_relay_when_one_stops_answering_options() {
    // Two relays with a line each; relay-1 registered last, so its line comes
    // first. Health checks every 200 ms, down after two unanswered probes.
    let config = offhook_signaling::config::SignalingConfig {
        relay_check_interval_ms: 200,
        relay_check_timeout_ms: 200,
        relay_check_misses: 2,
        ..test_config(false)
    };
    let relays = [("relay-1", "line-1"), ("relay-2", "line-2")];
    let s = Setup::new(Backend::Sqlite, SITE, &relays, config).await;
    // -aa: sipp answers OPTIONS (each counts as one of its -m calls).
    let (port_1, port_2) = (free_port(), free_port());
    let relay_1 = uas("uas.xml", port_1, 1000, &["-aa"]);
    let relay_2 = uas("uas.xml", port_2, 1000, &["-aa"]);
    assert!(s.register("relay-2", "relay-2-secret", "line-2", port_2).await);
    assert!(s.register("relay-1", "relay-1-secret", "line-1", port_1).await);
    relay_becomes(&s, "relay-1", "up").await;
    relay_becomes(&s, "relay-2", "up").await;
    let line_of_last_call = |cdrs: Vec<offhook_directory::Cdr>| cdrs[0].line_id.clone().unwrap();
    let line_1 = s.db.directory.line("line-1").await.unwrap().id;
    let line_2 = s.db.directory.line("line-2").await.unwrap().id;

    assert!(finish(s.uac("uac.xml", "sales", 1, &[]), "first call").await);
    assert_eq!(line_of_last_call(s.cdrs().await), line_1, "relay-1's line first");

    // relay-1 goes away (stops answering anything); the checks notice.
    drop(relay_1);
    relay_becomes(&s, "relay-1", "down").await;
    let seen = s.db.directory.relay("relay-1").await.unwrap().last_seen_at;
    assert!(seen.is_some(), "its last answer is recorded");
    assert!(finish(s.uac("uac.xml", "sales", 1, &[]), "second call").await);
    let cdrs = s.cdrs().await;
    assert_eq!(cdrs.len(), 2);
    assert!(cdrs.iter().all(|c| c.hangup_cause == Some(HangupCause::Normal)));
    assert_eq!(line_of_last_call(cdrs), line_2, "the call went to relay-2");
    drop(relay_2);
    s.db.finish().await;
}
