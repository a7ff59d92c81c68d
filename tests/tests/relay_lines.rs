//! A relay started with one good and one broken modem (its serial device does
//! not exist), through the real `offhook demo`: the relay starts and serves the
//! good line; the broken one is `fault` in the directory with the modem's
//! reason (mirrored by the relay, within seconds), so no call is routed to it;
//! an operator's reset puts it back to `idle`, and the relay marks it `fault`
//! again, since its modem is still missing. The relay's own `/readyz` says
//! ready while one line works, and 503 naming the line and its reason when
//! the only line it has is the broken one.

use std::time::Duration;

use offhook_directory::testing::Backend;
use offhook_directory::{Line, LineState};
use offhook_tests::ua::{TestUa, click};
use offhook_tests::{Offhook, http_get};
use tokio::net::UdpSocket;

const LINES: &str = r#"[{ name = "demo-line-1", device = "emulated" }, { name = "broken-line", device = { serial = "/dev/offhook-no-such-modem" } }]"#;
const BROKEN_ONLY: &str = r#"[{ name = "broken-line", device = { serial = "/dev/offhook-no-such-modem" } }]"#;
const HEALTH: (&str, &str) = ("OFFHOOK_MEDIA__HEALTH_LISTEN", "127.0.0.1:0");

async fn line(offhook: &Offhook, name: &str) -> Line {
    offhook.db.directory.line(name).await.expect("the line")
}

/// Polls until the line is in `state` (the relay mirrors every 5 s).
async fn wait_for_state(offhook: &Offhook, name: &str, state: LineState) -> Line {
    wait_for(offhook, name, &state.to_string(), |line| line.state == state).await
}

/// Polls until the line is as `wanted` says, for up to 30 s.
async fn wait_for(offhook: &Offhook, name: &str, what: &str, wanted: impl Fn(&Line) -> bool) -> Line {
    let until = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let now = line(offhook, name).await;
        if wanted(&now) {
            return now;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "{name} never became {what}: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn a_broken_modem_is_a_fault_line_in_the_directory_and_the_good_one_takes_calls() {
    let offhook = Offhook::new(Backend::Sqlite).await;
    let demo = offhook.demo(&[("OFFHOOK_MEDIA__LINES", LINES), HEALTH]).await;
    let health = demo.media_health.clone().expect("the relay's health endpoints");

    let broken = wait_for_state(&offhook, "broken-line", LineState::Fault).await;
    let first_fault_at = broken.state_changed_at.expect("when it became faulty");
    let reason = broken.fault_reason.unwrap_or_default();
    assert!(!reason.is_empty(), "the modem's reason is kept");
    eprintln!("broken-line: fault ({reason})");
    assert_eq!(line(&offhook, "demo-line-1").await.state, LineState::Idle);
    let ready = http_get(&health, "/readyz").await;
    assert!(
        ready.starts_with("HTTP/1.0 200") && ready.ends_with("ready\n"),
        "{ready}"
    );

    // Calls go to the good line.
    let mut ua = TestUa::bind().await;
    let rtp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let grant = click(&demo.web, "demo-echo").await;
    let call = ua.call(demo.sip_udp, &grant, rtp.local_addr().unwrap()).await;
    assert_eq!(call.status, 200, "{call:?}");
    wait_for_state(&offhook, "demo-line-1", LineState::InCall).await;
    assert_eq!(ua.hang_up(call.session).await.status, 200);

    // An operator's reset sets it idle; the relay, whose modem is still
    // missing, marks it faulty again. The idle spell may be shorter than a
    // poll (the relay's mirror can land just after the reset), so the test
    // looks for a fault set after the first one rather than for the idle state
    // (the relay marks only a line not in fault: a later fault means the reset took).
    let reset = offhook.run(&["directory", "line", "reset", "broken-line"]).await;
    assert!(reset.status.success(), "{reset:?}");
    let refaulted = wait_for(&offhook, "broken-line", "fault again after the reset", |line| {
        line.state == LineState::Fault && line.state_changed_at.is_some_and(|at| at > first_fault_at)
    })
    .await;
    assert!(
        refaulted.fault_reason.is_some_and(|r| !r.is_empty()),
        "the reason is kept"
    );
    assert_eq!(
        wait_for_state(&offhook, "demo-line-1", LineState::Idle)
            .await
            .state,
        LineState::Idle
    );
    demo.running.stop().await;
}

#[tokio::test]
async fn a_relay_whose_only_line_is_broken_is_not_ready_and_says_why() {
    let offhook = Offhook::new(Backend::Sqlite).await;
    let demo = offhook
        .demo(&[("OFFHOOK_MEDIA__LINES", BROKEN_ONLY), HEALTH])
        .await;
    let health = demo.media_health.clone().expect("the relay's health endpoints");
    assert!(http_get(&health, "/healthz").await.starts_with("HTTP/1.0 200"));
    let not_ready = http_get(&health, "/readyz").await;
    eprintln!("{not_ready}");
    assert!(not_ready.starts_with("HTTP/1.0 503"), "{not_ready}");
    assert!(not_ready.contains("not ready: no line works"), "{not_ready}");
    assert!(
        not_ready.contains("broken-line: fault ("),
        "names the line and why: {not_ready}"
    );
    wait_for_state(&offhook, "broken-line", LineState::Fault).await;
    demo.running.stop().await;
}
