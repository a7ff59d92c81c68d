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
use offhook_sip::ua::{Body, End, Reply, UaEvent};
use offhook_tests::sim::{HANGS_UP_AFTER, World};
use offhook_vocab::headers;

const SECOND: Duration = Duration::from_secs(1);

async fn world(lines: &[&str]) -> World {
    World::new(lines, SignalingConfig::default()).await
}

/// The caller hangs up: the call ends `normal` and line-1 is idle again.
async fn hang_up_normally(w: &mut World, session: offhook_sip::ua::SessionId) {
    w.media.sending = None;
    w.caller
        .bye(w.now, session, &Reply::default())
        .expect("in a dialog");
    w.run(2 * SECOND).await;
    assert!(w.ended(session));
    assert_eq!(w.cdrs().await[0].hangup_cause, Some(HangupCause::Normal));
    assert_eq!(w.line_state("line-1").await, LineState::Idle);
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
    // The caller's media follows its newest call (the ringing one's early
    // media): the drain ends the talking call before the relay's RTP timeout would.
    let config = SignalingConfig {
        drain_s: 10,
        ..SignalingConfig::default()
    };
    let mut w = World::new(&["line-1", "line-2"], config).await;
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
async fn an_operator_hangs_up_an_answered_call_and_resets_a_faulty_line() {
    use offhook_directory::{ActionResult, Scope};
    let mut w = world(&["line-1", "line-2"]).await;
    let session = w.click("echo").await;
    assert_eq!(w.wait_outcome(session, 30 * SECOND).await, 200);
    let cdr = w.cdrs().await.remove(0);
    let d = w.db.directory.clone();
    let hangup = d
        .request_hangup(&Scope::Operator, &cdr.id, "cli:root", w.wall_ms(), 60_000)
        .await
        .expect("a hang-up request");

    w.run(3 * SECOND).await;
    assert!(w.ended(session), "the caller got a BYE");
    assert!(
        w.relay.lines.iter().all(|l| !l.modem.off_hook()),
        "the relay put the line on hook"
    );
    let cdr = w.cdrs().await.remove(0);
    assert_eq!(cdr.hangup_cause, Some(HangupCause::OperatorHangup));
    assert!(cdr.ended_at.is_some());
    assert_eq!(w.line_state("line-1").await, LineState::Idle);
    assert_eq!(w.line_state("line-2").await, LineState::Idle);
    let done = d.operator_action(&Scope::Operator, &hangup.id).await.unwrap();
    assert_eq!(done.result, Some(ActionResult::Done), "{done:?}");

    // A line in fault that no call holds is put back to idle.
    let line = d.line("line-2").await.unwrap();
    d.set_line_fault(&line.id, "no dial tone", w.wall_ms())
        .await
        .unwrap();
    let reset = d
        .request_line_reset("line-2", "cli:root", w.wall_ms(), 60_000)
        .await
        .unwrap();
    w.run(3 * SECOND).await;
    assert_eq!(w.line_state("line-2").await, LineState::Idle);
    let done = d.operator_action(&Scope::Operator, &reset.id).await.unwrap();
    assert_eq!(done.result, Some(ActionResult::Done), "{done:?}");
}

#[tokio::test]
async fn an_operator_hangs_up_a_ringing_call_and_a_hang_up_the_call_outran_is_not_found() {
    use offhook_directory::{ActionResult, Scope};
    let mut w = world(&["line-1"]).await;
    let session = w.click("silent").await;
    w.run(8 * SECOND).await;
    assert_eq!(w.outcome(session), None, "still ringing");
    let cdr = w.cdrs().await.remove(0);
    let d = w.db.directory.clone();
    let hangup = d
        .request_hangup(&Scope::Operator, &cdr.id, "cli:root", w.wall_ms(), 60_000)
        .await
        .unwrap();
    w.run(4 * SECOND).await;
    assert_eq!(w.outcome(session), Some(487), "the INVITE was cancelled");
    let cdr = w.cdrs().await.remove(0);
    assert_eq!(cdr.hangup_cause, Some(HangupCause::OperatorHangup));
    assert_eq!(cdr.answered_at, None);
    assert_eq!(w.line_state("line-1").await, LineState::Idle);
    assert!(!w.relay.lines[0].modem.off_hook());
    let done = d.operator_action(&Scope::Operator, &hangup.id).await.unwrap();
    assert_eq!(done.result, Some(ActionResult::Done));

    // Asked while the call was live, but the caller gave up before the node's
    // next look: settled `not-found`, the CDR keeps its own cause.
    let slow = SignalingConfig {
        operator_poll_ms: 30_000,
        ..SignalingConfig::default()
    };
    let mut w = World::new(&["line-1"], slow).await;
    let d = w.db.directory.clone();
    let session = w.click("silent").await;
    w.run(4 * SECOND).await;
    let cdr = w.cdrs().await.remove(0);
    let hangup = d
        .request_hangup(&Scope::Operator, &cdr.id, "cli:root", w.wall_ms(), 60_000)
        .await
        .unwrap();
    w.caller.cancel(w.now, session).expect("ringing");
    assert_eq!(w.wait_outcome(session, 20 * SECOND).await, 487);
    w.run(30 * SECOND).await;
    let late = d.operator_action(&Scope::Operator, &hangup.id).await.unwrap();
    assert_eq!(late.result, Some(ActionResult::NotFound), "{late:?}");
    assert_eq!(
        w.cdrs().await.remove(0).hangup_cause,
        Some(HangupCause::Cancelled)
    );
    let again = d
        .request_hangup(&Scope::Operator, &cdr.id, "cli:root", w.wall_ms(), 60_000)
        .await;
    assert!(again.is_err(), "a call that has ended cannot be asked to hang up");
}

#[tokio::test]
async fn keys_go_both_ways_a_callers_event_reaches_the_line_and_the_far_ends_comes_back_as_events() {
    let mut w = world(&["line-1"]).await;
    let session = w.click("echo").await;
    assert_eq!(w.wait_outcome(session, 30 * SECOND).await, 200);
    w.run(SECOND).await;
    let before = w.media.payload_types.iter().filter(|&&pt| pt == 101).count();
    assert_eq!(before, 0, "no events before a key");

    // The caller's RFC 4733 key: the line plays it (+VTS), the far end hears it.
    w.media.key = Some('5');
    w.run(SECOND).await;
    assert_eq!(w.relay.lines[0].modem.far_end_heard(), ['5']);
    // The echo sends the key back: the modem reports it (<DLE>5), the relay
    // signals it to the caller as telephone-events.
    w.run(SECOND).await;
    let events = w.media.payload_types.iter().filter(|&&pt| pt == 101).count();
    assert!(
        events >= 3,
        "the far end's key came back as {events} telephone-event packets"
    );

    hang_up_normally(&mut w, session).await;
}

#[tokio::test]
async fn a_key_sent_by_sip_info_is_accepted_and_played_into_the_line() {
    let mut w = world(&["line-1"]).await;
    let session = w.click("echo").await;
    assert_eq!(w.wait_outcome(session, 30 * SECOND).await, 200);
    w.run(SECOND).await;
    let info = |content_type: &str, body: &[u8]| {
        Reply::default().body(Body {
            content_type: content_type.into(),
            bytes: body.to_vec(),
        })
    };
    let sent = [
        info("application/dtmf-relay", b"Signal=7\r\nDuration=160\r\n"),
        info("application/dtmf", b"#"),
        info("application/json", b"{}"),
    ];
    for extra in &sent {
        w.caller
            .request(w.now, session, Method::Info, extra)
            .expect("in a dialog");
        w.run(SECOND).await;
    }
    let answers: Vec<u16> = w
        .events
        .iter()
        .filter_map(|e| match e {
            UaEvent::InDialogResponse {
                method: Method::Info,
                status,
                ..
            } => Some(*status),
            _ => None,
        })
        .collect();
    assert_eq!(answers, [200, 200, 415]);
    assert_eq!(w.relay.lines[0].modem.far_end_heard(), ['7', '#']);

    hang_up_normally(&mut w, session).await;
}

/// A caller may say its media never connected (the widget's ICE deadline): its
/// BYE's `X-Offhook-Cause` ends the record `no-audio-path`; any other cause
/// it states is not believed.
#[tokio::test]
async fn a_caller_whose_media_never_connected_ends_the_record_no_audio_path_and_no_other_stated_cause_counts()
{
    for (stated, recorded) in [
        ("no-audio-path", HangupCause::NoAudioPath),
        ("line-fault", HangupCause::Normal),
    ] {
        let mut w = world(&["line-1"]).await;
        let session = w.click("echo").await;
        assert_eq!(w.wait_outcome(session, 30 * SECOND).await, 200);
        w.media.sending = None;
        let stating = Reply::default().header(headers::CAUSE, stated);
        w.caller.bye(w.now, session, &stating).expect("in a dialog");
        w.run(2 * SECOND).await;
        assert!(w.ended(session));
        assert_eq!(w.cdrs().await[0].hangup_cause, Some(recorded), "stated {stated}");
        assert_eq!(w.line_state("line-1").await, LineState::Idle);
        assert!(!w.relay.lines[0].modem.off_hook(), "the line hung up");
    }
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

/// A call ends when it uses up the minutes its icon had left for the day
/// (cause budget-exhausted, on both sides, the line idle); then the next click
/// is refused before anything is dialed or billed.
#[tokio::test]
async fn a_call_ends_when_the_icons_minutes_run_out_and_the_next_is_refused() {
    let mut w = world(&["line-1"]).await;
    let d = w.db.directory.clone();
    let caps = offhook_directory::PolicyUpdate {
        minutes_per_day: Some(10),
        ..offhook_directory::PolicyUpdate::default()
    };
    d.update_destination_policy("sim", caps).await.unwrap();
    // 9.5 of the echo icon's 10 minutes are billed already today.
    let icon = d.icon(&offhook_directory::Scope::Operator, "echo").await.unwrap();
    let at = w.wall_ms();
    let earlier = d
        .start_cdr(offhook_directory::NewCdr {
            tenant_id: icon.tenant_id.clone(),
            icon_id: Some(icon.id.clone()),
            account_id: None,
            call_id: "earlier".into(),
            number: icon.number.clone(),
            line_id: None,
            started_at: at,
        })
        .await
        .unwrap();
    d.answer_cdr(&earlier.id, at, AnswerSource::Sip).await.unwrap();
    d.end_cdr(&earlier.id, at + 570_000, HangupCause::Normal)
        .await
        .unwrap();

    let session = w.click("echo").await;
    assert_eq!(w.wait_outcome(session, 30 * SECOND).await, 200);
    w.run_until(60 * SECOND, |w| w.ended(session)).await;
    assert!(w.ended(session), "the caller got a BYE");
    w.run(2 * SECOND).await;
    let cdr = w.cdrs().await.into_iter().find(|c| c.id != earlier.id).unwrap();
    assert_eq!(cdr.hangup_cause, Some(HangupCause::BudgetExhausted));
    let billed = cdr.ended_at.unwrap() - cdr.answered_at.unwrap();
    assert!(
        (29_000..=32_000).contains(&billed),
        "billed {billed} ms of a 30 s budget"
    );
    assert_eq!(w.line_state("line-1").await, LineState::Idle);
    assert!(!w.relay.lines[0].modem.off_hook(), "the relay hung up too");

    // Past the view's cache: the day's minutes are used up.
    w.run(2 * SECOND).await;
    let refused = w.click("echo").await;
    assert_eq!(w.wait_outcome(refused, 10 * SECOND).await, 403);
    assert_eq!(w.cdrs().await.len(), 2, "no CDR for the refused call");
    assert_eq!(w.line_state("line-1").await, LineState::Idle);
}
