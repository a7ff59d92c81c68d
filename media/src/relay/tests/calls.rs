//! Whole calls through the relay in simulated time: the echo, the line's
//! failures, CANCEL, both hang-ups, the lost ACK, the INVITEs the relay refuses,
//! hold and unhold by re-INVITE and UPDATE.

use std::time::Duration;

use offhook_sip::message::Method;
use offhook_sip::transport::Flow;
use offhook_sip::ua::{End, Reply, UaEvent};
use offhook_vocab::{LineState, headers};

use super::*;
use crate::dsp::goertzel::relative_level;
use crate::emulator::network::{BUSY, ECHO, HANGS_UP, INVALID, NEVER_ANSWERS};

const LINE: &str = "line-1";
const SECOND: Duration = Duration::from_secs(1);

/// The status of the caller's INVITE on a fresh one-line relay.
fn one_call(number: &str, limit: Duration) -> (Sim, u16) {
    let mut sim = Sim::new(&[LINE], &[]);
    let session = sim.call(Some(LINE), number);
    let (status, _) = sim.wait_outcome(session, limit);
    (sim, status)
}

#[test]
fn lines_register_with_digest_credentials() {
    let sim = Sim::new(&[LINE, "line-2"], &[]);
    for line in [LINE, "line-2"] {
        let status = sim.gateway.line(line).unwrap();
        assert_eq!(
            (status.state, status.registration),
            (LineState::Idle, super::super::Registration::Registered)
        );
    }
    assert_eq!(
        sim.registrar.contacts,
        ["<sip:line-1@127.0.0.1:5070>", "<sip:line-2@127.0.0.1:5070>"]
    );
    let challenged = sim.sent(REGISTRAR, "SIP/2.0 401 Unauthorized").len();
    assert_eq!(challenged, 2, "one challenge per line, answered once");
}

#[test]
fn the_echo_answers_and_the_tone_comes_back() {
    let mut sim = Sim::new(&[LINE], &[]);
    let session = sim.call(Some(LINE), ECHO);
    let (status, ok) = sim.wait_outcome(session, 20 * SECOND);
    let ok = ok.unwrap();
    assert_eq!(status, 200);
    assert_eq!(ok.headers.get(headers::ANSWER), Some("ringback-stopped"));
    assert!(
        ok.headers
            .get("Contact")
            .unwrap()
            .contains("sip:relay@127.0.0.1:5070")
    );
    assert_eq!(sim.sent(RELAY, "SIP/2.0 180 Ringing").len(), 1, "one 180");
    assert_eq!(sim.state(LINE), LineState::InCall);
    assert!(sim.line_log.contains(&"line-1 <- Dial(\"5550100\")".to_owned()));

    sim.send_tone_to(&ok);
    sim.run(3 * SECOND);
    let heard = &sim.media.heard;
    assert!(heard.len() > 8000, "RTP came back ({} samples)", heard.len());
    let last: Vec<i16> = heard.iter().rev().take(4000).copied().collect();
    assert!(
        relative_level(&last, 1000.0, 8000.0) > 0.3,
        "the echo of the tone came back"
    );
    assert!(sim.media.rtcp >= 2, "sender reports on the RTP port (rtcp-mux)");
    assert_eq!(
        sim.sent(RELAY, "SIP/2.0 200 OK").len(),
        1,
        "ACKed: no retransmission"
    );

    sim.media.sending = None;
    sim.caller.bye(sim.now, session, &Reply::default()).unwrap();
    sim.run(SECOND);
    let bye = sim.events.iter().find_map(|e| match e {
        UaEvent::Terminated {
            end: End::ByeSent(Some(r)),
            ..
        } => Some(r.clone()),
        _ => None,
    });
    let bye = bye.expect("the BYE answered");
    assert_eq!(bye.status, 200);
    assert!(
        bye.headers
            .get(headers::RTCP)
            .is_some_and(|r| r.contains("sent="))
    );
    sim.wait_idle(10 * SECOND);
    assert!(sim.line_log.contains(&"line-1 <- HangUp".to_owned()));
}

#[test]
fn busy_invalid_and_no_answer_map_to_486_404_480_and_the_line_is_idle_after() {
    for (number, expected, limit) in [
        (BUSY, 486, 10 * SECOND),
        (INVALID, 404, 10 * SECOND),
        (NEVER_ANSWERS, 480, NO_ANSWER + 5 * SECOND),
    ] {
        let (mut sim, status) = one_call(number, limit);
        assert_eq!(status, expected, "{number}");
        if number == NEVER_ANSWERS {
            assert!(sim.elapsed() >= NO_ANSWER, "480 after the ring timeout");
        }
        sim.wait_idle(10 * SECOND);
    }
}

#[test]
fn a_cancel_while_ringing_gets_487_and_the_line_hangs_up() {
    let mut sim = Sim::new(&[LINE], &[]);
    let session = sim.call(Some(LINE), NEVER_ANSWERS);
    sim.run_until(5 * SECOND, |sim| {
        sim.sent(RELAY, "SIP/2.0 180 Ringing").len() == 1
    });
    sim.caller.cancel(sim.now, session).unwrap();
    let (status, _) = sim.wait_outcome(session, 5 * SECOND);
    assert_eq!(status, 487);
    assert_eq!(sim.sent(RELAY, "SIP/2.0 487 Request Terminated").len(), 1);
    sim.wait_idle(10 * SECOND);
    assert!(sim.line_log.contains(&"line-1 <- HangUp".to_owned()));
}

#[test]
fn the_far_end_hanging_up_sends_bye_to_the_caller() {
    let mut sim = Sim::new(&[LINE], &[]);
    let session = sim.call(Some(LINE), HANGS_UP);
    let (status, _) = sim.wait_outcome(session, 20 * SECOND);
    assert_eq!(status, 200);
    sim.run_until(HANGS_UP_AFTER + 5 * SECOND, |sim| {
        sim.events.iter().any(|e| {
            matches!(
                e,
                UaEvent::Terminated {
                    end: End::ByeReceived,
                    ..
                }
            )
        })
    });
    let bye = sim.sent(RELAY, &format!("BYE sip:visitor@{CALLER} SIP/2.0"));
    assert_eq!(bye.len(), 1, "{:?}", sim.log);
    sim.wait_idle(10 * SECOND);
}

/// The caller's ACK came and BYE arrived from the relay.
fn bye_received(sim: &Sim) -> bool {
    sim.events.iter().any(|e| {
        matches!(
            e,
            UaEvent::Terminated {
                end: End::ByeReceived,
                ..
            }
        )
    })
}

#[test]
fn a_silent_rtp_caller_ends_with_media_timeout_and_the_line_hangs_up() {
    let mut sim = Sim::new(&[LINE], &[]);
    let session = sim.call(Some(LINE), ECHO);
    let (status, _) = sim.wait_outcome(session, 20 * SECOND);
    assert_eq!(status, 200);
    relay_byes_after(&mut sim, RTP_TIMEOUT, "media-timeout");
    assert!(sim.line_log.contains(&"line-1 <- HangUp".to_owned()));
    sim.wait_idle(10 * SECOND);
}

#[test]
fn a_webrtc_call_whose_ice_never_connects_ends_no_audio_path_within_the_bound() {
    let mut sim = Sim::new(&[LINE], &[]);
    let offer = sim.webrtc_offer();
    let session = sim.call_offering(Some(LINE), ECHO, offer);
    let (status, _) = sim.wait_outcome(session, 20 * SECOND);
    assert_eq!(status, 200);
    relay_byes_after(&mut sim, ICE_CONNECT, "no-audio-path");
    sim.wait_idle(10 * SECOND);
}

/// Runs until the relay's BYE of the answered call: it comes `bound` (within a
/// second) after the 200, once, with `cause`.
fn relay_byes_after(sim: &mut Sim, bound: Duration, cause: &str) {
    let answered = sim.sent(RELAY, "SIP/2.0 200 OK")[0];
    sim.run_until(bound + 5 * SECOND, bye_received);
    let byes = sim.sent(RELAY, &format!("BYE sip:visitor@{CALLER} SIP/2.0"));
    assert_eq!(byes.len(), 1, "{:?}", sim.log);
    let after = byes[0] - answered;
    assert!(
        after >= bound && after < bound + SECOND,
        "BYE {after:?} after the answer"
    );
    let bye = sim
        .relay_requests
        .iter()
        .find(|r| r.method == Method::Bye)
        .unwrap();
    assert_eq!(bye.headers.get(headers::CAUSE), Some(cause));
}

#[test]
fn a_caller_that_keeps_sending_is_not_timed_out() {
    let mut sim = Sim::new(&[LINE], &[]);
    let session = sim.call(Some(LINE), ECHO);
    let (status, ok) = sim.wait_outcome(session, 20 * SECOND);
    assert_eq!(status, 200);
    sim.send_tone_to(&ok.unwrap());
    sim.run(3 * RTP_TIMEOUT);
    assert!(!bye_received(&sim), "{:?}", sim.log);
    assert_eq!(sim.state(LINE), LineState::InCall);
}

#[test]
fn hold_stops_audio_to_the_caller_and_pauses_the_rtp_watch_until_unhold() {
    let mut sim = Sim::new(&[LINE], &[]);
    let session = sim.call(Some(LINE), ECHO);
    let (status, ok) = sim.wait_outcome(session, 20 * SECOND);
    assert_eq!(status, 200);
    let ok = ok.unwrap();
    let body = |r: &Response| String::from_utf8_lossy(&r.body).into_owned();
    let first_o = body(&ok)
        .lines()
        .find(|l| l.starts_with("o="))
        .unwrap()
        .to_owned();
    sim.send_tone_to(&ok);
    sim.run(2 * SECOND);
    assert!(sim.media.heard.len() > 8000, "the echo before the hold");

    // Hold, the caller still sending (sendonly): nothing comes back.
    let held = sim.reoffer(session, Method::Invite, "sendonly");
    assert_eq!(held.status, 200);
    let answer = body(&held);
    assert!(answer.contains("a=recvonly\r\n"), "{answer}");
    assert!(
        answer.contains("m=audio ") && answer.contains(" RTP/AVP 0 101\r\n"),
        "{answer}"
    );
    assert_ne!(
        answer.lines().find(|l| l.starts_with("o=")).unwrap(),
        first_o,
        "o= version bumped"
    );
    sim.run(SECOND);
    let during = sim.media.heard.len();
    sim.run(3 * SECOND);
    assert_eq!(sim.media.heard.len(), during, "no audio to a caller on hold");
    assert_eq!(
        sim.sent(RELAY, "SIP/2.0 200 OK").len(),
        2,
        "the re-INVITE's 200 ACKed at once"
    );

    // Inactive by UPDATE, the caller silent: past the RTP timeout, no BYE.
    let inactive = sim.reoffer(session, Method::Update, "inactive");
    assert_eq!(inactive.status, 200);
    assert!(body(&inactive).contains("a=inactive\r\n"));
    sim.media.sending = None;
    sim.run(3 * RTP_TIMEOUT);
    assert!(!bye_received(&sim), "{:?}", sim.log);
    assert_eq!(sim.state(LINE), LineState::InCall);

    // Unhold: the echo again.
    let resumed = sim.reoffer(session, Method::Invite, "sendrecv");
    assert!(body(&resumed).contains("a=sendrecv\r\n"));
    sim.send_tone_to(&ok);
    let before = sim.media.heard.len();
    sim.run(3 * SECOND);
    let last: Vec<i16> = sim.media.heard[before..]
        .iter()
        .rev()
        .take(4000)
        .copied()
        .collect();
    assert!(
        last.len() == 4000 && relative_level(&last, 1000.0, 8000.0) > 0.3,
        "the echo after unhold"
    );

    // The RTP watch runs again: a caller silent after unhold is timed out.
    sim.media.sending = None;
    sim.run_until(RTP_TIMEOUT + 5 * SECOND, bye_received);
    let bye = sim
        .relay_requests
        .iter()
        .find(|r| r.method == Method::Bye)
        .expect("BYE");
    assert_eq!(bye.headers.get(headers::CAUSE), Some("media-timeout"));
    sim.wait_idle(10 * SECOND);
}

#[test]
fn a_request_without_sdp_in_the_dialog_gets_our_sdp_again_by_invite_and_none_by_update() {
    let body = |r: &Response| String::from_utf8_lossy(&r.body).into_owned();
    let origin = |sdp: &str| sdp.lines().find(|l| l.starts_with("o=")).map(str::to_owned);
    let mut sim = Sim::new(&[LINE], &[]);
    let rtp = sim.call(Some(LINE), ECHO);
    let webrtc_offer = sim.webrtc_offer();
    let mut webrtc_sim = Sim::new(&[LINE], &[]);
    let webrtc = webrtc_sim.call_offering(Some(LINE), ECHO, webrtc_offer);
    for (sim, session, kind) in [(&mut sim, rtp, "RTP/AVP"), (&mut webrtc_sim, webrtc, "WebRTC")] {
        let (status, ok) = sim.wait_outcome(session, 20 * SECOND);
        assert_eq!(status, 200, "{kind}");
        let first = body(&ok.unwrap());
        // A re-INVITE without an offer: ours in the 200 (RFC 3261 14.2), the
        // same session at the next version.
        let asked = sim.in_dialog(session, Method::Invite, &Reply::default());
        assert_eq!(asked.status, 200, "{kind}");
        let again = body(&asked);
        assert!(again.contains("m=audio "), "{kind}: {again}");
        assert_ne!(origin(&again), origin(&first), "{kind}: o= version bumped");
        assert_eq!(
            first.contains("a=fingerprint:"),
            again.contains("a=fingerprint:"),
            "{kind}: {again}"
        );
        // An UPDATE without one: a target refresh, 200 without a body (RFC 3311 5.2).
        let refresh = sim.in_dialog(session, Method::Update, &Reply::default());
        assert_eq!((refresh.status, refresh.body.len()), (200, 0), "{kind}");
        assert_eq!(sim.state(LINE), LineState::InCall, "{kind}");
    }
}

/// The echo's level in the caller's last 0.5 s.
fn echo_level(sim: &Sim) -> f64 {
    let last: Vec<i16> = sim.media.heard.iter().rev().take(4000).copied().collect();
    assert_eq!(last.len(), 4000, "audio came back");
    relative_level(&last, 1000.0, 8000.0)
}

#[test]
fn a_codec_change_is_answered_in_the_new_codec_and_the_audio_goes_on_in_it() {
    let mut sim = Sim::new(&[LINE], &[]);
    let session = sim.call(Some(LINE), ECHO);
    let (status, ok) = sim.wait_outcome(session, 20 * SECOND);
    assert_eq!(status, 200);
    sim.send_tone_to(ok.as_ref().unwrap());
    sim.run(2 * SECOND);
    // PCMA first, PCMU still offered: the first one we carry is taken.
    let pcma = rtp_offer("sendrecv")
        .replace("RTP/AVP 0 101", "RTP/AVP 8 0 101")
        .replace("a=rtpmap:0 PCMU", "a=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU");
    let changed = sim.reoffer_sdp(session, Method::Invite, pcma);
    assert_eq!(changed.status, 200);
    let answer = String::from_utf8_lossy(&changed.body).into_owned();
    assert!(answer.contains(" RTP/AVP 8 101\r\n"), "{answer}");
    assert!(answer.contains("a=rtpmap:8 PCMA/8000\r\n"), "{answer}");
    sim.media.codec = crate::sdp::G711::Pcma;
    let before = sim.media.payload_types.len();
    sim.run(3 * SECOND);
    let since: Vec<u8> = sim.media.payload_types[before + 5..].to_vec();
    assert!(since.len() > 100 && since.iter().all(|&pt| pt == 8), "{since:?}");
    assert!(echo_level(&sim) > 0.3, "the echo in PCMA");
    assert_eq!(sim.state(LINE), LineState::InCall);
}

#[test]
fn an_offer_with_no_codec_of_ours_gets_488_and_the_call_goes_on_as_it_was() {
    let mut sim = Sim::new(&[LINE], &[]);
    let session = sim.call(Some(LINE), ECHO);
    let (status, ok) = sim.wait_outcome(session, 20 * SECOND);
    assert_eq!(status, 200);
    sim.send_tone_to(ok.as_ref().unwrap());
    let opus = rtp_offer("sendrecv")
        .replace("RTP/AVP 0 101", "RTP/AVP 111")
        .replace("a=rtpmap:0 PCMU/8000", "a=rtpmap:111 opus/48000/2");
    assert_eq!(sim.reoffer_sdp(session, Method::Invite, opus).status, 488);
    let unmuxed = rtp_offer("sendrecv").replace("a=rtcp-mux\r\n", "");
    assert_eq!(sim.reoffer_sdp(session, Method::Update, unmuxed).status, 488);
    let before = sim.media.payload_types.len();
    sim.run(2 * SECOND);
    assert!(sim.media.payload_types[before..].iter().all(|&pt| pt == 0));
    assert!(echo_level(&sim) > 0.3, "the echo in PCMU");
    assert_eq!(sim.state(LINE), LineState::InCall);
    // The next offer is answered against the session as it was.
    let again = sim.reoffer(session, Method::Invite, "sendrecv");
    assert_eq!(again.status, 200);
    assert!(String::from_utf8_lossy(&again.body).contains(" RTP/AVP 0 101\r\n"));
}

#[test]
fn a_new_address_in_a_reoffer_gets_the_audio_and_the_old_one_is_not_heard() {
    let mut sim = Sim::new(&[LINE], &[]);
    let session = sim.call(Some(LINE), ECHO);
    let (status, ok) = sim.wait_outcome(session, 20 * SECOND);
    assert_eq!(status, 200);
    let ok = ok.unwrap();
    sim.send_tone_to(&ok);
    sim.run(2 * SECOND);
    let (&call, _) = sim.bound.iter().next().expect("the call's media bound");
    let moved = rtp_offer("sendrecv")
        .replace("127.0.0.2", "127.0.0.4")
        .replace("m=audio 6000", "m=audio 6100");
    assert_eq!(sim.reoffer_sdp(session, Method::Invite, moved).status, 200);
    sim.caller_rtp = addr("127.0.0.4:6100");
    // The old address (and a third host) keep sending another tone: refused.
    let mut spray = Tone::new(2500.0, 8000.0, 8000.0);
    let before = sim.media.heard.len();
    for step in 0..150u16 {
        for (n, from) in [addr(CALLER_RTP), addr("127.0.0.66:6100")].iter().enumerate() {
            let packet = tone_packet(0xBAD0 + n as u32, 5000 + step, &mut spray);
            let now = sim.now;
            sim.gateway.handle_media(now, call, Port::Rtp, *from, &packet);
        }
        sim.run(Duration::from_millis(20));
    }
    assert!(
        sim.media.heard.len() - before > 16000,
        "our audio goes to the new address"
    );
    assert!(echo_level(&sim) > 0.3, "the caller's tone from its new address");
    let heard: Vec<i16> = sim.media.heard.iter().rev().take(8000).copied().collect();
    let foreign = relative_level(&heard, 2500.0, 8000.0);
    assert!(foreign < 0.01, "the old address heard: level {foreign}");
    assert_eq!(sim.state(LINE), LineState::InCall);
}

#[test]
fn an_unplugged_modem_ends_its_call_line_fault_is_retried_and_heals_once_replugged() {
    let mut sim = Sim::new(&[LINE], &[]);
    let session = sim.call(Some(LINE), ECHO);
    let (status, ok) = sim.wait_outcome(session, 20 * SECOND);
    assert_eq!(status, 200);
    sim.send_tone_to(&ok.unwrap());
    sim.run(2 * SECOND);
    sim.unplug(LINE);
    sim.run_until(5 * SECOND, bye_received);
    let bye = sim
        .relay_requests
        .iter()
        .find(|r| r.method == Method::Bye)
        .unwrap();
    assert_eq!(bye.headers.get(headers::CAUSE), Some("line-fault"));
    sim.run(40 * SECOND);
    assert_eq!(sim.state(LINE), LineState::Fault);
    let retries = sim.line_log.iter().filter(|l| *l == "line-1 reopened").count();
    assert!((3..=6).contains(&retries), "1, 2, 4, 8, 16 s apart: {retries}");

    // Plugged back: the next retry opens and initialises it; it takes calls.
    sim.replug(LINE);
    sim.run(35 * SECOND);
    assert_eq!(sim.state(LINE), LineState::Idle);
    let session = sim.call(Some(LINE), ECHO);
    let (status, _) = sim.wait_outcome(session, 20 * SECOND);
    assert_eq!(status, 200, "the healed line answers");
}

#[test]
fn a_modem_missing_at_start_is_retried_and_works_once_plugged() {
    let mut sim = Sim::new(&["line-2"], &[LINE]);
    assert_eq!(sim.state(LINE), LineState::Fault);
    sim.replug(LINE);
    sim.run(5 * SECOND);
    assert_eq!(sim.state(LINE), LineState::Idle);
    assert_eq!(sim.state("line-2"), LineState::Idle);
}

#[test]
fn a_lost_ack_gets_the_200_again_until_one_arrives() {
    let mut sim = Sim::new(&[LINE], &[]);
    sim.drop_acks = 2;
    let session = sim.call(Some(LINE), ECHO);
    let (status, _) = sim.wait_outcome(session, 20 * SECOND);
    assert_eq!(status, 200);
    sim.run(10 * SECOND);
    let oks = sim.sent(RELAY, "SIP/2.0 200 OK");
    let gaps: Vec<u128> = oks.iter().map(|at| (*at - oks[0]).as_millis()).collect();
    assert_eq!(
        gaps,
        [0, 500, 1500],
        "the 200 at 0, T1, 3 T1; the third ACK arrives"
    );
    assert_eq!(sim.state(LINE), LineState::InCall, "the call goes on");
    assert!(!sim.log.iter().any(|(_, _, l)| l.starts_with("BYE")));
}

#[test]
fn no_ack_at_all_ends_the_call_with_bye_after_64_t1() {
    let mut sim = Sim::new(&[LINE], &[]);
    sim.drop_acks = usize::MAX;
    let session = sim.call(Some(LINE), ECHO);
    let (status, ok) = sim.wait_outcome(session, 20 * SECOND);
    assert_eq!(status, 200);
    // The caller's media flows: only the missing ACK ends the call.
    sim.send_tone_to(&ok.unwrap());
    let answered = sim.sent(RELAY, "SIP/2.0 200 OK")[0];
    sim.run_until(40 * SECOND, |sim| {
        sim.events.iter().any(|e| {
            matches!(
                e,
                UaEvent::Terminated {
                    end: End::ByeReceived,
                    ..
                }
            )
        })
    });
    let oks = sim.sent(RELAY, "SIP/2.0 200 OK");
    assert_eq!(oks.len(), 11, "T1 doubling to T2 for 64*T1: {oks:?}");
    let bye = sim.sent(RELAY, &format!("BYE sip:visitor@{CALLER} SIP/2.0"))[0];
    assert_eq!(bye - answered, Duration::from_secs(32), "BYE at 64*T1");
    sim.wait_idle(10 * SECOND);
}

#[test]
fn an_invite_naming_no_line_or_an_unknown_one_gets_404() {
    let mut sim = Sim::new(&[LINE], &[]);
    let none = sim.call(None, ECHO);
    assert_eq!(sim.wait_outcome(none, SECOND).0, 404);
    let unknown = sim.call(Some("line-9"), ECHO);
    assert_eq!(sim.wait_outcome(unknown, SECOND).0, 404);
    let bad_number = sim.call(Some(LINE), "555;0100");
    assert_eq!(sim.wait_outcome(bad_number, SECOND).0, 484);
    assert!(sim.line_log.iter().all(|l| !l.contains("Dial")), "nothing dialed");
    assert_eq!(sim.state(LINE), LineState::Idle);
}

#[test]
fn a_line_busy_with_another_call_gets_503_so_signaling_tries_the_next() {
    let mut sim = Sim::new(&[LINE, "line-2"], &[]);
    let first = sim.call(Some(LINE), NEVER_ANSWERS);
    sim.run_until(5 * SECOND, |sim| sim.state(LINE) == LineState::Dialing);
    let second = sim.call(Some(LINE), ECHO);
    let (status, response) = sim.wait_outcome(second, SECOND);
    assert_eq!((status, response.unwrap().reason.as_str()), (503, "Line in use"));
    let other = sim.call(Some("line-2"), ECHO);
    assert_eq!(sim.wait_outcome(other, 20 * SECOND).0, 200);
    sim.caller.cancel(sim.now, first).unwrap();
    assert_eq!(sim.wait_outcome(first, SECOND).0, 487);
}

#[test]
fn a_modem_that_fails_at_start_is_faulty_and_the_others_work() {
    let mut sim = Sim::new(&[LINE], &["line-2"]);
    let broken = sim.gateway.line("line-2").unwrap().clone();
    assert_eq!(broken.state, LineState::Fault);
    assert_eq!(broken.fault.as_deref(), Some("no such device"));
    let refused = sim.call(Some("line-2"), ECHO);
    assert_eq!(sim.wait_outcome(refused, SECOND).0, 503);
    let metrics = sim.gateway.stats().metric_values();
    assert!(metrics.contains(&(
        "offhook_relay_line_state".into(),
        "line=\"line-2\",state=\"fault\"".into(),
        1
    )));
    let good = sim.call(Some(LINE), ECHO);
    assert_eq!(sim.wait_outcome(good, 20 * SECOND).0, 200);
}

#[test]
fn keys_cross_both_ways() {
    let mut sim = Sim::new(&[LINE], &[]);
    let session = sim.call(Some(LINE), ECHO);
    let (_, ok) = sim.wait_outcome(session, 20 * SECOND);
    sim.send_tone_to(&ok.unwrap());
    sim.run(SECOND);
    // The caller's key (RFC 4733) reaches the line as a DTMF command.
    sim.media.key = Some('5');
    sim.run(SECOND);
    assert!(
        sim.line_log.contains(&"line-1 <- Dtmf('5')".to_owned()),
        "{:?}",
        sim.line_log
    );
    // A key at the far end reaches the caller as telephone-events.
    let now = sim.now;
    sim.gateway.handle_line_event(now, LINE, LineEvent::Dtmf('7'));
    sim.run(SECOND);
    assert!(sim.media.payload_types.contains(&101));
}

#[test]
fn only_what_signaling_signed_is_executed() {
    let mut sim = Sim::new(&[LINE], &[]);
    sim.sign = false;
    let unsigned = sim.call(Some(LINE), ECHO);
    assert_eq!(sim.wait_outcome(unsigned, SECOND).0, 403);
    assert!(sim.line_log.iter().all(|l| !l.contains("Dial")), "nothing dialed");

    sim.sign = true;
    let call = sim.call(Some(LINE), ECHO);
    assert_eq!(sim.wait_outcome(call, 20 * SECOND).0, 200);
    // The signed INVITE again, as a new transaction: a replay.
    let mut replay = sim.sent_signed[0].clone();
    assert_eq!(replay.method, Method::Invite);
    let via = replay
        .headers
        .get("Via")
        .unwrap()
        .replace("branch=z9hG4bK", "branch=z9hG4bKagain");
    replay.headers.replace_first("Via", &via);
    let flow = Flow {
        kind: offhook_sip::transport::TransportKind::Udp,
        local: addr(RELAY),
        remote: addr(CALLER),
        conn: None,
    };
    let now = sim.now;
    sim.gateway.handle_datagram(now, flow, &replay.to_bytes());
    sim.settle();
    assert_eq!(sim.sent(RELAY, "SIP/2.0 403 Forbidden").len(), 2, "{:?}", sim.log);
    // A BYE nobody signed does not end the call.
    sim.sign = false;
    sim.caller.bye(sim.now, call, &Reply::default()).unwrap();
    sim.run(SECOND);
    let bye_refused = sim.events.iter().any(|e| {
        matches!(
            e,
            UaEvent::InDialogResponse {
                method: Method::Bye,
                status: 403,
                ..
            }
        )
    });
    assert!(bye_refused, "{:?}", sim.events);
    assert_eq!(sim.state(LINE), LineState::InCall);
}

/// A PCMU packet of 20 ms of `tone`.
fn tone_packet(ssrc: u32, seq: u16, tone: &mut Tone) -> Vec<u8> {
    let mut packet = vec![0x80, 0, (seq >> 8) as u8, seq as u8];
    packet.extend((u32::from(seq) * 160).to_be_bytes());
    packet.extend(ssrc.to_be_bytes());
    packet.extend((0..160).map(|_| linear_to_ulaw(tone.next_sample())));
    packet
}

#[test]
fn rtp_sprayed_from_a_third_address_never_reaches_the_line() {
    let mut sim = Sim::new(&[LINE], &[]);
    let session = sim.call(Some(LINE), ECHO);
    let (status, ok) = sim.wait_outcome(session, 20 * SECOND);
    assert_eq!(status, 200);
    let (&call, _) = sim.bound.iter().next().expect("the call's media bound");
    // A 2.5 kHz stream from another host before the caller's first packet, and
    // from another port of the caller's host once the leg latched; in sequence,
    // with SSRCs of their own (they would pass probation), two per 20 ms.
    let mut spray = Tone::new(2500.0, 8000.0, 8000.0);
    let strangers = [addr("127.0.0.66:6000"), addr("127.0.0.2:6002")];
    let mut seq = 0u16;
    for step in 0..200u16 {
        if step == 10 {
            sim.send_tone_to(ok.as_ref().unwrap());
        }
        for (n, from) in strangers.iter().enumerate().take(if step < 20 { 1 } else { 2 }) {
            for _ in 0..2 {
                seq = seq.wrapping_add(1);
                let packet = tone_packet(0xBAD0 + n as u32, seq, &mut spray);
                let now = sim.now;
                sim.gateway.handle_media(now, call, Port::Rtp, *from, &packet);
            }
        }
        sim.run(Duration::from_millis(20));
    }
    let heard: Vec<i16> = sim.media.heard.iter().rev().take(8000).copied().collect();
    assert_eq!(heard.len(), 8000, "the echo came back");
    assert!(
        relative_level(&heard, 1000.0, 8000.0) > 0.3,
        "the caller's tone on the line"
    );
    let foreign = relative_level(&heard, 2500.0, 8000.0);
    assert!(foreign < 0.01, "foreign audio on the line: level {foreign}");
    assert_eq!(sim.state(LINE), LineState::InCall, "the call goes on");
}
