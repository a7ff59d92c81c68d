//! A whole call through the real `offhook demo`: a token from the click API, an
//! INVITE over UDP to signaling, the relay dialing the echo on the emulated modem
//! (a real PTY, the real driver), a 1 kHz PCMU tone sent as RTP and heard back
//! (Goertzel), RTCP both ways on the RTP port (`rtcp-mux`: the relay's sender
//! reports arrive, our receiver report's loss and jitter come back in the BYE's
//! 200 OK), BYE, and the CDR with how the answer was known. Then a busy line
//! (486), an invalid number (404) and one nobody answers (480), each with its CDR.

use std::net::SocketAddr;
use std::time::Duration;

use offhook_directory::testing::Backend;
use offhook_media::dsp::g711::{linear_to_ulaw, ulaw_to_linear};
use offhook_media::dsp::goertzel::relative_level;
use offhook_media::dsp::tone::Tone;
use offhook_media::rtp::packet::parse;
use offhook_media::rtp::report::is_rtcp;
use offhook_media::rtp::rtcp::{
    ReceiverReport, ReportBlock, RtcpPacket, SenderReport, build_compound, parse_compound,
};
use offhook_media::rtp::units::Ssrc;
use offhook_tests::ua::{TestUa, click, sdp_port};
use offhook_tests::{Offhook, http_get, wait_for_metric};
use serde_json::Value;
use tokio::net::UdpSocket;

/// Our RR about the relay's stream, echoing its SR: a quarter lost, 3 in all, 20 ms jitter.
fn receiver_report(relay: Ssrc, sr: &SenderReport) -> Vec<u8> {
    let block = ReportBlock {
        ssrc: relay,
        fraction_lost: 64,
        cumulative_lost: 3,
        highest_seq: 100,
        jitter_ticks: 160,
        last_sr: sr.ntp.short(),
        delay_since_last_sr: Duration::from_millis(5),
    };
    let rr = ReceiverReport {
        ssrc: Ssrc(0x1234_5678),
        blocks: vec![block],
    };
    build_compound(&[RtcpPacket::Receiver(rr)]).unwrap()
}

#[tokio::test]
async fn browserless_click_to_call_reaches_the_echo_and_a_busy_line() {
    let offhook = Offhook::new(Backend::Sqlite).await;
    // Nobody-answers gives up after 8 s here (60 s by default; the echo answers in ~5.5 s).
    let demo = offhook
        .demo(&[
            ("OFFHOOK_MEDIA__NO_ANSWER_S", "8"),
            ("OFFHOOK_MEDIA__RTCP_INTERVAL_MS", "400"),
        ])
        .await;
    let (proxy, web) = (demo.sip_udp, demo.web.clone());

    let mut ua = TestUa::bind().await;
    let rtp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let grant = click(&web, "demo-echo").await;
    let echo = ua.call(proxy, &grant, rtp.local_addr().unwrap()).await;
    assert_eq!(echo.status, 200, "{echo:?}");
    let ok = echo.response.clone().unwrap();
    assert_eq!(ok.headers.get("X-Offhook-Answer"), Some("ringback-stopped"));

    // 2 s of 1 kHz PCMU, 20 ms per packet; collect what comes back. The relay's
    // sender reports share the port; each is answered with our receiver report.
    let relay_rtp = SocketAddr::from(([127, 0, 0, 1], sdp_port(&ok.body)));
    assert!(
        String::from_utf8_lossy(&ok.body).contains("a=rtcp-mux"),
        "rtcp-mux accepted"
    );
    let mut tone = Tone::new(1000.0, 8000.0, 8000.0);
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let (mut heard, mut relay_ssrc, mut reports) = (Vec::new(), None, Vec::<SenderReport>::new());
    let mut buf = [0u8; 2048];
    for seq in 0..100u16 {
        tick.tick().await;
        let mut packet = vec![0x80, 0, (seq >> 8) as u8, seq as u8];
        packet.extend((u32::from(seq) * 160).to_be_bytes());
        packet.extend(0x1234_5678u32.to_be_bytes());
        packet.extend((0..160).map(|_| linear_to_ulaw(tone.next_sample())));
        rtp.send_to(&packet, relay_rtp).await.unwrap();
        while let Ok((len, _)) = rtp.try_recv_from(&mut buf) {
            if is_rtcp(&buf[..len]) {
                let sr = match &parse_compound(&buf[..len]).expect("the relay's RTCP parses")[..] {
                    [RtcpPacket::Sender(sr)] => sr.clone(),
                    // Its first report may come before its first RTP packet.
                    [RtcpPacket::Receiver(_)] if reports.is_empty() => continue,
                    other => panic!("one SR from a sending relay: {other:?}"),
                };
                let rr = receiver_report(relay_ssrc.expect("RTP before the first SR"), &sr);
                rtp.send_to(&rr, relay_rtp).await.unwrap();
                reports.push(sr);
            } else if let Ok(packet) = parse(&buf[..len]) {
                relay_ssrc = Some(packet.ssrc);
                heard.extend(packet.payload.iter().map(|&c| ulaw_to_linear(c)));
            }
        }
    }
    // At 0.2 s, then every 0.4 s of the ~2 s: four or five; allow for a loaded machine.
    assert!(
        reports.len() >= 3,
        "sender reports from the relay: {}",
        reports.len()
    );
    assert!(
        reports
            .iter()
            .all(|sr| Some(sr.ssrc) == relay_ssrc && sr.packets > 0)
    );
    assert!(
        reports
            .windows(2)
            .all(|w| w[1].packets > w[0].packets && w[1].ntp > w[0].ntp),
        "counts and NTP time grow"
    );
    let last: Vec<i16> = heard.iter().rev().take(4000).copied().collect();
    assert!(
        heard.len() > 4000,
        "RTP came back from the relay ({} samples)",
        heard.len()
    );
    assert!(
        relative_level(&last, 1000.0, 8000.0) > 0.3,
        "the echo of the tone came back"
    );
    let bye = ua.hang_up(echo.session).await;
    assert_eq!(bye.status, 200);
    let rtcp = bye.headers.get("X-Offhook-RTCP").expect("the relay's RTCP stats");
    eprintln!(
        "{} sender reports from the relay in 2 s; its view of our reports: {rtcp}",
        reports.len()
    );
    assert!(
        rtcp.contains("fraction-lost=0.250;cumulative-lost=3;jitter-ms=20;rtt-ms="),
        "our receiver reports were read: {rtcp}"
    );
    // The relay published the call's RTP counters (every 5 s) for /metrics.
    let relay = |name: &str| format!("{name}{{node=\"demo-relay\"}}");
    let received = wait_for_metric(&web, &relay("offhook_rtp_packets_received_total"), 50).await;
    let sent = wait_for_metric(&web, &relay("offhook_rtp_packets_sent_total"), 50).await;
    eprintln!("relay metrics: {received} RTP packets received, {sent} sent");
    let metrics = http_get(&web, "/metrics").await;
    assert!(
        metrics.contains("offhook_jitter_buffer_depth_ms{node=\"demo-relay\",line=\"demo-line-1\"}"),
        "{metrics}"
    );

    // A busy line (486), an invalid number (404), nobody answering (480). After a
    // call the line may still be going on hook (503 "All lines busy"): retry then.
    let rtp_addr = rtp.local_addr().unwrap();
    let mut outcome = async |icon: &'static str| {
        for _ in 0..20 {
            let grant = click(&web, icon).await;
            let placed = ua.call(proxy, &grant, rtp_addr).await;
            if placed.status != 503 {
                return (placed.call_id, placed.status);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{icon}: the line never came back");
    };
    let (busy_call, status) = outcome("demo-busy").await;
    assert_eq!(status, 486, "busy");
    let (invalid_call, status) = outcome("demo-invalid").await;
    assert_eq!(status, 404, "SIT: number not reachable");
    let (no_answer_call, status) = outcome("demo-no-answer").await;
    assert_eq!(status, 480, "nobody answers");

    let cdrs = offhook.run(&["directory", "cdr", "list", "--json"]).await;
    let cdrs: Value = serde_json::from_slice(&cdrs.stdout).unwrap();
    let by_call = |id: &str| {
        cdrs.as_array()
            .unwrap()
            .iter()
            .find(|c| c["call_id"] == id)
            .cloned()
            .unwrap()
    };
    let echo = by_call(&echo.call_id);
    assert_eq!(echo["answer_source"], "ringback-stopped");
    assert_eq!(echo["hangup_cause"], "normal");
    assert_eq!(by_call(&busy_call)["hangup_cause"], "busy");
    assert_eq!(by_call(&invalid_call)["hangup_cause"], "invalid-number");
    assert_eq!(by_call(&no_answer_call)["hangup_cause"], "no-answer");
    assert!(demo.running.stop().await.success());
    offhook.db.finish().await;
}
