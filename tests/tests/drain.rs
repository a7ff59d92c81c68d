//! SIGTERM to the real `offhook demo`, mid-call and mid-setup: the process
//! drains and exits by its deadline (`drain_s` and the few seconds after it),
//! the caller gets a BYE with a Reason (mid-call) or a final response
//! (mid-setup), the CDR ends `shutdown`, the line is idle in the directory
//! afterwards, and the log has no error (nothing written to a closed pool).

use std::net::SocketAddr;
use std::time::Duration;

use offhook_directory::testing::Backend;
use offhook_directory::{Cdr, HangupCause, LineState, Scope};
use offhook_sip::ua::UaEvent;
use offhook_tests::ua::{TestUa, click};
use offhook_tests::{Demo, Offhook, scratch_dir};
use tokio::net::UdpSocket;

/// The drain's grace in these tests, and the bound on the exit after SIGTERM
/// (the grace, the 5 s the node may wait for its last answers, and a margin).
const DRAIN_S: &str = "2";
const EXIT_BOUND: Duration = Duration::from_secs(2 + 5 + 3);

/// The demo with a short drain, its log at `info` in `log`.
async fn demo(offhook: &Offhook, log: &std::path::Path) -> Demo {
    let envs = [("OFFHOOK_SIGNALING__DRAIN_S", DRAIN_S), ("RUST_LOG", "info")];
    offhook.demo_logged(&envs, log).await
}

/// SIGTERM, then the exit: within [`EXIT_BOUND`], successful; how long it took.
async fn terminate(demo: &mut Demo) -> Duration {
    let started = tokio::time::Instant::now();
    demo.running.terminate();
    let status = tokio::time::timeout(EXIT_BOUND, demo.running.child.wait())
        .await
        .expect("the demo exits by the drain's deadline")
        .expect("wait for the demo");
    assert!(status.success(), "{status}");
    started.elapsed()
}

/// Polls until the demo's line is in `state` (its records are written behind).
async fn wait_for_line(offhook: &Offhook, state: LineState) {
    let until = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let line = offhook.db.directory.line("demo-line-1").await.unwrap();
        if line.state == state {
            return;
        }
        assert!(tokio::time::Instant::now() < until, "never {state}: {line:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The one CDR of `call_id`.
async fn cdr(offhook: &Offhook, call_id: &str) -> Cdr {
    let cdrs = offhook
        .db
        .directory
        .list_cdrs(&Scope::Operator, &Default::default())
        .await
        .unwrap();
    cdrs.into_iter()
        .find(|c| c.call_id == call_id)
        .expect("the call's CDR")
}

/// After the exit: the CDR ended `shutdown`, every line idle, no error logged.
async fn directory_is_true(offhook: &Offhook, call_id: &str, log: &std::path::Path) {
    let cdr = cdr(offhook, call_id).await;
    assert!(cdr.ended_at.is_some(), "{cdr:?}");
    assert_eq!(cdr.hangup_cause, Some(HangupCause::Shutdown), "{cdr:?}");
    let lines = offhook.db.directory.list_lines(&Scope::Operator).await.unwrap();
    assert!(lines.iter().all(|l| l.state == LineState::Idle), "{lines:?}");
    let log = std::fs::read_to_string(log).unwrap();
    let errors: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("ERROR") || l.contains("closed pool") || l.contains("PoolClosed"))
        .collect();
    assert!(errors.is_empty(), "errors in the log: {errors:#?}");
    assert!(log.contains("drained"), "the node drained:\n{log}");
}

async fn rtp_socket() -> (UdpSocket, SocketAddr) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let address = socket.local_addr().unwrap();
    (socket, address)
}

#[tokio::test]
async fn sigterm_mid_call_byes_the_caller_ends_the_cdr_and_frees_the_line() {
    let offhook = Offhook::new(Backend::Sqlite).await;
    let log = scratch_dir("drain-mid-call").join("demo.log");
    let mut demo = demo(&offhook, &log).await;
    let mut ua = TestUa::bind().await;
    let (_rtp, rtp) = rtp_socket().await;
    let call = ua
        .call(demo.sip_udp, &click(&demo.web, "demo-echo").await, rtp)
        .await;
    assert_eq!(call.status, 200, "{call:?}");
    wait_for_line(&offhook, LineState::InCall).await;

    let (took, bye) = tokio::join!(terminate(&mut demo), ua.bye_from_far_side(call.session));
    eprintln!("SIGTERM mid-call: exit after {took:?}");
    let reason = bye.headers.get("Reason").unwrap_or_default();
    assert!(reason.contains("shutdown"), "the BYE says why: {bye:?}");
    directory_is_true(&offhook, &call.call_id, &log).await;
    offhook.db.finish().await;
}

#[tokio::test]
async fn sigterm_mid_setup_answers_the_caller_ends_the_cdr_and_frees_the_line() {
    let offhook = Offhook::new(Backend::Sqlite).await;
    let log = scratch_dir("drain-mid-setup").join("demo.log");
    let mut demo = demo(&offhook, &log).await;
    let mut ua = TestUa::bind().await;
    let (_rtp, rtp) = rtp_socket().await;
    // Nobody answers this number: the line rings on until the drain ends it.
    let grant = click(&demo.web, "demo-no-answer").await;
    let (session, call_id) = ua.dial(demo.sip_udp, &grant, rtp).await;
    loop {
        match ua.event().await {
            UaEvent::Progress { session: s, response } if s == session && response.status == 180 => break,
            UaEvent::Terminated { session: s, end } if s == session => panic!("{end:?}"),
            _ => {}
        }
    }
    wait_for_line(&offhook, LineState::Dialing).await;

    let (took, placed) = tokio::join!(terminate(&mut demo), ua.final_answer(session, call_id));
    eprintln!(
        "SIGTERM mid-setup: exit after {took:?}, caller got {}",
        placed.status
    );
    assert!(placed.status >= 400, "a final refusal: {placed:?}");
    directory_is_true(&offhook, &placed.call_id, &log).await;
    offhook.db.finish().await;
}
