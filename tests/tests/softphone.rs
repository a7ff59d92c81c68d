//! A third-party softphone through the whole gateway: sipp (Debian `sip-tester`)
//! registers an account made with `offhook directory account create`, then calls
//! the demo echo number 5550100 through the real `offhook demo` (signaling's
//! digest challenge, the proxy, the media relay, the real modem driver on a PTY,
//! the emulated modem and telephone network) and sends a 1 kHz tone as PCMU RTP;
//! the test's own socket, named as the softphone's RTP port in sipp's offer, must
//! hear the echo of that tone (Goertzel), and the relay's RTCP sender reports on
//! the port above it (no `rtcp-mux` in sipp's offer: RTP port + 1, RFC 3550 s11).
//! Then busy (486), an invalid number (404) and a number nobody answers (480),
//! each with its CDR cause. And a hold and unhold by re-INVITE.

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

/// One call at a time: each runs its own demo, emulated line and sipp in real
/// time; two at once on a loaded 2-core machine lose echo to starvation.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// sipp as the demo tenant's account alice (made by the test), registered
/// with `proxy`, keeping its files in `dir`.
async fn registered_alice(proxy: std::net::SocketAddr, dir: std::path::PathBuf) -> Softphone {
    let phone = Softphone {
        proxy,
        user: "alice".into(),
        password: PASSWORD.into(),
        domain: "demo.offhook.test".into(),
        dir,
    };
    let registered = phone.run("register.xml", "register", &[]).await;
    assert!(registered.success, "REGISTER:\n{}", registered.trace);
    phone
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
    let _serial = SERIAL.lock().await;
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
    let phone = registered_alice(proxy, dir).await;

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

/// sipp holds the echo call by re-INVITE (`tests/sipp/hold.xml`) while it goes on
/// sending its tone: the 200s mirror the direction (sipp checks them), nothing
/// comes back while on hold, the echo comes back after the unhold, the CDR ends
/// `normal` and every line is idle after.
#[tokio::test]
async fn sipp_softphone_holds_and_resumes_the_echo_by_reinvite() {
    let _serial = SERIAL.lock().await;
    let offhook = Offhook::new(Backend::Sqlite).await;
    let demo = offhook.demo(&[]).await;
    offhook.create_demo_account("alice", PASSWORD, "201").await;
    let dir = scratch_dir("softphone-hold");
    write_ulaw_tone(&dir.join("long.ulaw"), 1000.0, 10).unwrap();
    let phone = registered_alice(demo.sip_udp, dir).await;

    // When each tone packet of the echo came, since the first.
    let (ear, _ear_rtcp) = port_pair().await;
    let ear_port = ear.local_addr().unwrap().port().to_string();
    let (stop, mut stopped) = oneshot::channel::<()>();
    #[allow(clippy::disallowed_methods, reason = "real packets, real arrival times")]
    let listening = tokio::spawn(async move {
        let mut arrivals = Vec::new();
        let mut buf = vec![0u8; 2048];
        let start = std::time::Instant::now();
        loop {
            tokio::select! {
                received = ear.recv_from(&mut buf) => {
                    let Ok((len, _)) = received else { continue };
                    let Some(packet) = parse(&buf[..len]).ok().filter(|p| p.payload_type == 0) else { continue };
                    let samples: Vec<i16> = packet.payload.iter().map(|&c| ulaw_to_linear(c)).collect();
                    if relative_level(&samples, 1000.0, 8000.0) > 0.5 {
                        arrivals.push(start.elapsed());
                    }
                }
                _ = &mut stopped => return arrivals,
            }
        }
    });
    let held = until_the_line_is_free(&phone, "hold.xml", &["5550100", &ear_port]).await;
    assert_eq!(
        held.last_final_status(),
        Some(200),
        "BYE answered:\n{}",
        held.trace
    );
    assert_eq!(held.trace.matches("a=recvonly").count(), 1, "{}", held.trace);
    // The UPDATE without SDP: a 200 without one (sipp checked the re-INVITE's offer).
    let update_ok = held
        .trace
        .split("\n----")
        .find(|m| m.contains("SIP/2.0 200") && m.contains("CSeq: 6 UPDATE"))
        .expect("the UPDATE answered");
    assert!(
        !update_ok.contains("v=0") && update_ok.to_ascii_lowercase().contains("content-length: 0"),
        "{update_ok}"
    );
    stop.send(()).unwrap();
    let arrivals = listening.await.unwrap();
    // The longest silence between two echoed packets is the hold (3 s in the
    // scenario), with the echo on both sides of it.
    let (gap_at, gap) = arrivals
        .windows(2)
        .map(|w| (w[0], w[1] - w[0]))
        .max_by_key(|(_, gap)| *gap)
        .expect("echo packets");
    let before = arrivals.iter().filter(|at| **at <= gap_at).count();
    let after = arrivals.len() - before;
    eprintln!("echo: {before} packets, hold gap {gap:?}, {after} packets after unhold");
    assert!(
        gap >= Duration::from_millis(2500),
        "no audio on hold: gap {gap:?}"
    );
    assert!(
        before >= 50 && after >= 50,
        "the echo before the hold and after the unhold: {before} / {after}"
    );

    let cdrs = offhook.run(&["directory", "cdr", "list", "--json"]).await;
    let cdrs: Value = serde_json::from_slice(&cdrs.stdout).unwrap();
    let id = call_id(&held);
    let cdr = cdrs
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["call_id"] == id.as_str())
        .expect("the CDR");
    assert_eq!(cdr["hangup_cause"], "normal", "{cdr}");
    assert!(!cdr["ended_at"].is_null(), "{cdr}");
    for _ in 0..50 {
        let lines = offhook.run(&["directory", "line", "list", "--json"]).await;
        let lines: Value = serde_json::from_slice(&lines.stdout).unwrap();
        if lines.as_array().unwrap().iter().all(|l| l["state"] == "idle") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let lines = offhook.run(&["directory", "line", "list", "--json"]).await;
    let lines: Value = serde_json::from_slice(&lines.stdout).unwrap();
    assert!(
        lines.as_array().unwrap().iter().all(|l| l["state"] == "idle"),
        "{lines}"
    );
    assert!(demo.running.stop().await.success());
    offhook.db.finish().await;
}
