//! A third-party softphone through the whole gateway: sipp (Debian `sip-tester`)
//! registers an account made with `offhook directory account create`, then calls
//! the demo echo number 5550100 through the real `offhook demo` (signaling's
//! digest challenge, the proxy, the media relay, the real modem driver on a PTY,
//! the emulated modem and telephone network) and sends a 1 kHz tone as PCMU RTP;
//! the test's own socket, named as the softphone's RTP port in sipp's offer, must
//! hear the echo of that tone (Goertzel), and the relay's RTCP sender reports on
//! the port above it (no `rtcp-mux` in sipp's offer: RTP port + 1, RFC 3550 s11).
//! Then busy (486), an invalid number (404) and a number nobody answers (480),
//! each with its CDR cause.

use std::time::Duration;

use offhook_directory::testing::Backend;
use offhook_media::dsp::g711::ulaw_to_linear;
use offhook_media::dsp::goertzel::relative_level;
use offhook_media::rtp::packet::parse;
use offhook_media::rtp::rtcp::{RtcpPacket, parse_compound};
use offhook_tests::sipp::{SippRun, Softphone};
use offhook_tests::{Offhook, scratch_dir, write_ulaw_tone};
use serde_json::Value;
use tokio::net::UdpSocket;
use tokio::sync::oneshot;

const PASSWORD: &str = "alice-softphone-secret";
/// 250 ms windows of what came back; the tone sipp sends lasts 4 s.
const WINDOW: usize = 2000;

/// Runs `scenario` until the line is free: after a call the relay's line may
/// still be going on hook, which signaling answers 503 (sipp ACKs it and stops).
async fn until_the_line_is_free(phone: &Softphone, scenario: &str, extra: &[&str]) -> SippRun {
    for attempt in 0..30 {
        let run = phone.run(scenario, &format!("{scenario}-{attempt}"), extra).await;
        assert!(run.success, "sipp {scenario} failed:\n{}", run.trace);
        if run.last_final_status() != Some(503) {
            return run;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("{scenario}: the line never came back");
}

/// Two UDP sockets on 127.0.0.1 at ports P and P + 1 (RTP and RTCP).
async fn port_pair() -> (UdpSocket, UdpSocket) {
    for _ in 0..50 {
        let rtp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let next = rtp.local_addr().unwrap().port().checked_add(1);
        if let Some(Ok(rtcp)) = next
            .map(|p| std::net::SocketAddr::from(([127, 0, 0, 1], p)))
            .map(std::net::UdpSocket::bind)
        {
            rtcp.set_nonblocking(true).unwrap();
            return (rtp, UdpSocket::from_std(rtcp).unwrap());
        }
    }
    panic!("no free pair of UDP ports on 127.0.0.1");
}

/// The Call-ID sipp used (its first message's).
fn call_id(run: &SippRun) -> String {
    run.trace
        .lines()
        .find_map(|line| line.strip_prefix("Call-ID:"))
        .map(|id| id.trim().to_owned())
        .unwrap_or_else(|| panic!("a Call-ID in the trace:\n{}", run.trace))
}

#[tokio::test]
async fn sipp_softphone_reaches_the_echo_busy_invalid_and_no_answer() {
    let offhook = Offhook::new(Backend::Sqlite).await;
    let demo = offhook
        .demo(&[
            ("OFFHOOK_MEDIA__NO_ANSWER_S", "8"),
            ("OFFHOOK_MEDIA__RTCP_INTERVAL_MS", "1000"),
        ])
        .await;
    let proxy = demo.sip_udp;
    offhook.create_demo_account("alice", PASSWORD, "201").await;

    let dir = scratch_dir("softphone");
    write_ulaw_tone(&dir.join("tone.ulaw"), 1000.0, 4).unwrap();
    let phone = Softphone {
        proxy,
        user: "alice".into(),
        password: PASSWORD.into(),
        domain: "demo.offhook.test".into(),
        dir,
    };
    let registered = phone.run("register.xml", "register", &[]).await;
    assert!(registered.success, "REGISTER:\n{}", registered.trace);

    // The echo: what the relay sends lands on our sockets (the offer's RTP port
    // and the one above it for RTCP).
    let (ear, ear_rtcp) = port_pair().await;
    let ear_port = ear.local_addr().unwrap().port().to_string();
    let (stop, mut stopped) = oneshot::channel::<()>();
    let listening = tokio::spawn(async move {
        let (mut heard, mut ssrc, mut reports) = (Vec::new(), None, Vec::new());
        let (mut buf, mut rtcp_buf) = (vec![0u8; 2048], vec![0u8; 2048]);
        loop {
            tokio::select! {
                received = ear.recv_from(&mut buf) => {
                    let Ok((len, _)) = received else { continue };
                    if let Some(packet) = parse(&buf[..len]).ok().filter(|p| p.payload_type == 0) {
                        ssrc = Some(packet.ssrc);
                        heard.extend(packet.payload.iter().map(|&c| ulaw_to_linear(c)));
                    }
                }
                received = ear_rtcp.recv_from(&mut rtcp_buf) => {
                    let Ok((len, from)) = received else { continue };
                    reports.push((from, parse_compound(&rtcp_buf[..len])));
                }
                _ = &mut stopped => return (heard, ssrc, reports),
            }
        }
    });
    let echo = until_the_line_is_free(&phone, "call.xml", &["5550100", &ear_port]).await;
    assert_eq!(
        echo.last_final_status(),
        Some(200),
        "BYE answered:\n{}",
        echo.trace
    );
    stop.send(()).unwrap();
    let (heard, relay_ssrc, reports) = listening.await.unwrap();
    // The relay's RTP port (its answer, the trace's last SDP) + 1 sends a sender
    // report every second.
    let relay_rtp_port = echo
        .trace
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("m=audio "))
        .and_then(|rest| rest.split(' ').next()?.parse::<u16>().ok())
        .expect("the relay's answer in the trace");
    let senders: Vec<_> = reports
        .iter()
        .filter_map(|(from, parsed)| match parsed.as_deref() {
            Ok([RtcpPacket::Sender(sr)]) if from.port() == relay_rtp_port + 1 => Some(sr),
            _ => None,
        })
        .collect();
    eprintln!(
        "{} RTCP datagrams on RTP + 1, {} SRs from the relay's RTP port + 1",
        reports.len(),
        senders.len()
    );
    assert!(
        senders.len() >= 3,
        "sender reports over the ~5 s call: {reports:?}"
    );
    assert!(
        senders
            .iter()
            .all(|sr| Some(sr.ssrc) == relay_ssrc && sr.packets > 0)
    );
    let tone_windows = heard
        .chunks_exact(WINDOW)
        .filter(|w| relative_level(w, 1000.0, 8000.0) > 0.5)
        .count();
    eprintln!(
        "softphone heard {} samples back, {tone_windows} windows of 250 ms with the 1 kHz echo",
        heard.len()
    );
    assert!(
        tone_windows >= 8,
        "the echo of the 4 s tone came back for at least 2 s ({tone_windows} windows of 250 ms, {} samples)",
        heard.len()
    );

    let mut refused = Vec::new();
    for (number, status) in [("5550102", 486), ("5550104", 404), ("5550103", 480)] {
        let run = until_the_line_is_free(&phone, "refused.xml", &[number, &ear_port]).await;
        assert_eq!(run.last_final_status(), Some(status), "{number}:\n{}", run.trace);
        refused.push((number, call_id(&run)));
    }

    let cdrs = offhook.run(&["directory", "cdr", "list", "--json"]).await;
    let cdrs: Value = serde_json::from_slice(&cdrs.stdout).unwrap();
    let cause = |id: &str| {
        let cdr = cdrs
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["call_id"] == id)
            .unwrap_or_else(|| panic!("a CDR for {id}: {cdrs}"));
        (cdr["hangup_cause"].clone(), cdr["answer_source"].clone())
    };
    assert_eq!(
        cause(&call_id(&echo)),
        ("normal".into(), "ringback-stopped".into())
    );
    for ((number, id), expected) in refused.iter().zip(["busy", "invalid-number", "no-answer"]) {
        assert_eq!(cause(id).0, expected, "CDR of {number}");
    }
    assert!(demo.running.stop().await.success());
    offhook.db.finish().await;
}
