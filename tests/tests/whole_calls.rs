//! Whole click-to-calls in simulated time (see `offhook_tests::sim`): the
//! signaling core, the relay core with the modem driver against the emulator,
//! a caller, and a real directory. Each test asserts what the caller got, what
//! the line and the modem did, and what the directory says afterwards.

use std::time::Duration;

use offhook_directory::{AnswerSource, HangupCause, LineState};
use offhook_media::dsp::goertzel::relative_level;
use offhook_media::modem::LineEvent;
use offhook_signaling::config::SignalingConfig;
use offhook_sip::message::Method;
use offhook_sip::ua::{End, Reply, UaEvent};
use offhook_tests::sim::{HANGS_UP_AFTER, World};
use offhook_vocab::headers;

const SECOND: Duration = Duration::from_secs(1);

async fn world(lines: &[&str]) -> World {
    World::new(lines, SignalingConfig::default()).await
}

#[tokio::test]
async fn a_click_reaches_the_echo_the_tone_comes_back_and_the_cdr_is_answered_then_normal() {
    let mut w = world(&["line-1"]).await;
    let session = w.click("echo").await;
    assert_eq!(w.wait_outcome(session, 30 * SECOND).await, 200);
    assert_eq!(w.line_state("line-1").await, LineState::InCall);

    w.run(3 * SECOND).await;
    let heard: Vec<i16> = w.media.heard.iter().rev().take(4000).copied().collect();
    assert!(
        heard.len() == 4000,
        "audio came back ({} samples)",
        w.media.heard.len()
    );
    assert!(
        relative_level(&heard, 1000.0, 8000.0) > 0.3,
        "the caller hears the echo of its own tone"
    );

    w.media.sending = None;
    w.caller
        .bye(w.now, session, &Reply::default())
        .expect("in a dialog");
    w.run(2 * SECOND).await;
    assert!(w.ended(session));
    let cdrs = w.cdrs().await;
    let cdr = &cdrs[0];
    assert_eq!(cdr.number, "5550100");
    assert_eq!(cdr.line_id.as_deref().map(str::is_empty), Some(false));
    assert!(cdr.answered_at.is_some());
    assert_eq!(cdr.answer_source, Some(AnswerSource::RingbackStopped));
    assert_eq!(cdr.hangup_cause, Some(HangupCause::Normal));
    let (answered, ended) = (cdr.answered_at.unwrap(), cdr.ended_at.expect("ended"));
    assert!(
        (2_500..4_500).contains(&(ended - answered)),
        "billed for the ~3 s it lasted: {} ms",
        ended - answered
    );
    assert_eq!(
        w.line_state("line-1").await,
        LineState::Idle,
        "the line is free again"
    );
}

#[tokio::test]
async fn busy_invalid_and_no_answer_end_with_their_status_cause_and_an_idle_line() {
    let mut w = world(&["line-1"]).await;
    for (icon, status, cause) in [
        ("busy", 486, HangupCause::Busy),
        ("invalid", 404, HangupCause::InvalidNumber),
        ("silent", 480, HangupCause::NoAnswer),
    ] {
        let session = w.click(icon).await;
        assert_eq!(w.wait_outcome(session, 120 * SECOND).await, status, "{icon}");
        w.run(SECOND).await;
        let cdr = w.cdrs().await.remove(0);
        assert_eq!((cdr.answered_at, cdr.hangup_cause), (None, Some(cause)), "{icon}");
        assert!(cdr.ended_at.is_some(), "{icon}: the CDR ended");
        assert_eq!(w.line_state("line-1").await, LineState::Idle, "{icon}");
    }
}

#[tokio::test]
async fn a_caller_who_gives_up_while_it_rings_gets_487_and_the_line_hangs_up() {
    let mut w = world(&["line-1"]).await;
    let session = w.click("silent").await;
    w.run(3 * SECOND).await;
    assert_eq!(w.line_state("line-1").await, LineState::Dialing);
    w.caller.cancel(w.now, session).expect("ringing");
    assert_eq!(w.wait_outcome(session, 5 * SECOND).await, 487);
    w.run(2 * SECOND).await;
    let cdr = w.cdrs().await.remove(0);
    assert_eq!(cdr.hangup_cause, Some(HangupCause::Cancelled));
    assert_eq!(w.line_state("line-1").await, LineState::Idle);
    assert!(
        !w.relay.lines[0].modem.off_hook(),
        "the modem put the line back on hook"
    );
}

#[tokio::test]
async fn the_far_end_hanging_up_reaches_the_caller_as_bye_and_ends_the_cdr_remote_hangup() {
    let mut w = world(&["line-1"]).await;
    let session = w.click("hangup").await;
    assert_eq!(w.wait_outcome(session, 30 * SECOND).await, 200);
    w.run_until(HANGS_UP_AFTER + 10 * SECOND, |w| w.ended(session))
        .await;
    assert!(
        w.events.iter().any(|e| matches!(
            e,
            UaEvent::Terminated { session: s, end: End::ByeReceived } if *s == session
        )),
        "{:?}",
        w.events
    );
    w.run(SECOND).await;
    let cdr = w.cdrs().await.remove(0);
    assert_eq!(cdr.hangup_cause, Some(HangupCause::RemoteHangup));
    assert_eq!(w.line_state("line-1").await, LineState::Idle);
}

#[tokio::test]
async fn two_lines_carry_two_calls_and_a_third_click_finds_none_free() {
    let mut w = world(&["line-1", "line-2"]).await;
    let first = w.click("echo").await;
    let second = w.click("echo").await;
    assert_eq!(w.wait_outcome(first, 30 * SECOND).await, 200);
    assert_eq!(w.wait_outcome(second, 30 * SECOND).await, 200);
    assert_eq!(w.line_state("line-1").await, LineState::InCall);
    assert_eq!(w.line_state("line-2").await, LineState::InCall);

    let third = w.click("echo").await;
    assert_eq!(w.wait_outcome(third, 10 * SECOND).await, 503);
    let cdr = w.cdrs().await.remove(0);
    assert_eq!(cdr.line_id, None, "no line was taken for it");
    assert!(cdr.ended_at.is_some());

    for session in [first, second] {
        w.caller
            .bye(w.now, session, &Reply::default())
            .expect("in a dialog");
    }
    w.run(2 * SECOND).await;
    assert_eq!(w.line_state("line-1").await, LineState::Idle);
    assert_eq!(w.line_state("line-2").await, LineState::Idle);
    let open = w
        .cdrs()
        .await
        .into_iter()
        .filter(|c| c.ended_at.is_none())
        .count();
    assert_eq!(open, 0, "every CDR ended");
}

#[tokio::test]
async fn a_call_longer_than_the_limit_is_ended_on_both_sides() {
    let config = SignalingConfig {
        max_call_s: 20,
        ..SignalingConfig::default()
    };
    let mut w = World::new(&["line-1"], config).await;
    let session = w.click("echo").await;
    assert_eq!(w.wait_outcome(session, 30 * SECOND).await, 200);
    w.run_until(30 * SECOND, |w| w.ended(session)).await;
    w.run(2 * SECOND).await;
    let cdr = w.cdrs().await.remove(0);
    assert_eq!(cdr.hangup_cause, Some(HangupCause::MaxDuration));
    assert_eq!(w.line_state("line-1").await, LineState::Idle);
    assert!(!w.relay.lines[0].modem.off_hook());
}

#[tokio::test]
async fn a_drain_refuses_new_clicks_lets_calls_finish_then_ends_them_shutdown() {
    let mut w = world(&["line-1", "line-2"]).await;
    let talking = w.click("echo").await;
    assert_eq!(w.wait_outcome(talking, 30 * SECOND).await, 200);
    let ringing = w.click("silent").await;
    w.run(2 * SECOND).await;

    w.node.drain(w.now);
    let late = w.click("echo").await;
    assert_eq!(
        w.wait_outcome(late, 5 * SECOND).await,
        503,
        "no new call while draining"
    );
    assert!(!w.ended(talking), "the call in progress goes on");

    w.run_until(30 * SECOND, |w| w.node.is_drained()).await;
    assert!(w.ended(talking) && w.ended(ringing));
    let cdrs = w.cdrs().await;
    assert!(
        cdrs.iter().all(|c| c.ended_at.is_some()),
        "every CDR ended: {cdrs:?}"
    );
    let talked = cdrs
        .iter()
        .find(|c| c.answered_at.is_some())
        .expect("the answered call");
    assert_eq!(talked.hangup_cause, Some(HangupCause::Shutdown));
    w.run(2 * SECOND).await;
    assert_eq!(w.line_state("line-1").await, LineState::Idle);
    assert_eq!(w.line_state("line-2").await, LineState::Idle);
    assert!(
        w.relay.lines.iter().all(|l| !l.modem.off_hook()),
        "both lines on hook"
    );
}

#[tokio::test]
async fn a_node_killed_mid_call_and_restarted_ends_the_cdr_node_lost_and_frees_the_line() {
    let mut w = world(&["line-1"]).await;
    let session = w.click("echo").await;
    assert_eq!(w.wait_outcome(session, 30 * SECOND).await, 200);
    w.run(7 * SECOND).await;
    let answered_at = w.cdrs().await[0].answered_at.expect("answered");

    w.restart_node(99).await;
    let cdr = w.cdrs().await.remove(0);
    assert_eq!(
        cdr.hangup_cause,
        Some(HangupCause::NodeLost),
        "closed by the restart at once"
    );
    let ended = cdr.ended_at.expect("ended");
    assert!(
        ended >= answered_at && ended <= w.wall_ms(),
        "billed up to the last lease refresh: answered {answered_at}, ended {ended}, now {}",
        w.wall_ms()
    );
    assert_eq!(w.line_state("line-1").await, LineState::Idle);
}

#[tokio::test]
async fn a_silent_rtp_caller_is_ended_media_timeout_with_a_reason_and_the_line_is_idle() {
    let mut w = world(&["line-1"]).await;
    let session = w.click("echo").await;
    assert_eq!(w.wait_outcome(session, 30 * SECOND).await, 200);
    w.media.sending = None;
    w.run_until(30 * SECOND, |w| w.ended(session)).await;
    w.run(2 * SECOND).await;
    let bye = w
        .events
        .iter()
        .find_map(|e| match e {
            UaEvent::InDialog { request, .. } if request.method == Method::Bye => Some(request),
            _ => None,
        })
        .expect("the relay's BYE reached the caller");
    assert_eq!(
        bye.headers.get("Reason"),
        Some("SIP;cause=200;text=\"media timeout\"")
    );
    assert_eq!(bye.headers.get(headers::CAUSE), None, "private: stripped");
    let cdr = w.cdrs().await.remove(0);
    assert_eq!(cdr.hangup_cause, Some(HangupCause::MediaTimeout));
    assert_eq!(w.line_state("line-1").await, LineState::Idle);
    assert!(!w.relay.lines[0].modem.off_hook(), "the line hung up");
}

#[tokio::test]
async fn a_line_fault_mid_call_ends_the_cdr_line_fault_and_the_reopened_line_takes_the_next_call() {
    let mut w = world(&["line-1"]).await;
    let session = w.click("echo").await;
    assert_eq!(w.wait_outcome(session, 30 * SECOND).await, 200);
    w.run(2 * SECOND).await;
    let fault = LineEvent::Fault("serial port: read error".into());
    w.relay.gateway.handle_line_event(w.now, "line-1", fault);
    w.run_until(10 * SECOND, |w| w.ended(session)).await;
    w.run(2 * SECOND).await;
    let cdr = w.cdrs().await.remove(0);
    assert_eq!(cdr.hangup_cause, Some(HangupCause::LineFault));
    assert!(cdr.ended_at.is_some());

    // The relay opened the modem again: the line answers the next click.
    w.run(15 * SECOND).await;
    let next = w.click("echo").await;
    assert_eq!(w.wait_outcome(next, 30 * SECOND).await, 200);
}
