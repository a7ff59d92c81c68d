//! The network side end to end in simulated time: line audio packetized by an
//! `RtpSender`, carried as datagrams (delayed, some duplicated), validated by an
//! `RtpReceiver`, decoded into the jitter buffer and popped as line bytes again;
//! and a key press crossing as telephone-events.
#![allow(
    clippy::disallowed_methods,
    reason = "an edge: it reads the real clock and the OS generator"
)]

use std::time::{Duration, Instant};

use offhook_media::rtp::codec::{frame_to_line, line_to_payload, to_audio_packet};
use offhook_media::rtp::dtmf::DtmfReceiver;
use offhook_media::rtp::jitter::{FRAME_PERIOD, FrameKind, JitterBuffer, JitterConfig};
use offhook_media::rtp::packet::{PayloadMap, RtpReceiver};
use offhook_media::rtp::sender::RtpSender;
use offhook_media::sdp::G711;
use rand::SeedableRng;
use rand::rngs::StdRng;

const DELAY: Duration = Duration::from_millis(30);

/// Line bytes avoiding mu-law's negative zero (0x7f), which decodes like 0xff.
fn line_audio(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| [0x10u8, 0x80, 0xa5, 0x3c, 0xf0][i % 5] ^ (i / 5) as u8 & 0x0f)
        .collect()
}

/// Sends `line` through a `codec` call leg; returns the line bytes of audio frames.
fn relay(codec: G711, line: &[u8]) -> (Vec<u8>, RtpReceiver) {
    let t0 = Instant::now();
    let mut tx = RtpSender::new(codec.payload_type(), &mut StdRng::seed_from_u64(11));
    let mut rx = RtpReceiver::new(PayloadMap::g711(Some(101)));
    let mut jb = JitterBuffer::new(JitterConfig::default());
    let mut payload = Vec::new();
    line_to_payload(codec, line, &mut payload);
    let mut in_flight = Vec::new();
    let mut heard = Vec::new();
    for tick in 0..(line.len() / 160 + 10) as u32 {
        let now = t0 + FRAME_PERIOD * tick;
        if let Some(chunk) = payload.chunks(160).nth(tick as usize) {
            tx.handle_input(now, chunk);
        }
        tx.handle_timeout(now);
        while let Some(d) = tx.poll_output() {
            // Every third datagram is duplicated on the way.
            let copies = if tick % 3 == 0 { 2 } else { 1 };
            in_flight.extend(std::iter::repeat_n((now + DELAY, d), copies));
        }
        for (_, d) in in_flight.extract_if(.., |(at, _)| *at <= now + Duration::from_millis(5)) {
            let packet = rx.receive(&d).expect("our own packets validate");
            jb.push(
                now + Duration::from_millis(5),
                to_audio_packet(&packet).expect("audio"),
            );
        }
        let frame = jb.pop(now + Duration::from_millis(10));
        if frame.kind == FrameKind::Audio {
            heard.extend(frame_to_line(&frame));
        }
    }
    let s = jb.stats();
    assert_eq!((s.lost, s.late), (0, 0), "{s:?}");
    assert!(s.duplicate > 0);
    (heard, rx)
}

#[test]
fn pcmu_line_audio_crosses_unchanged() {
    let line = line_audio(8000);
    let (heard, rx) = relay(G711::Pcmu, &line);
    assert_eq!(heard, line);
    assert_eq!(rx.drops().total(), 0);
}

#[test]
fn pcma_line_audio_crosses_transcoded_back_to_mu_law() {
    let line = line_audio(8000);
    let (heard, _) = relay(G711::Pcma, &line);
    assert_eq!(heard.len(), line.len());
    // mu-law -> A-law -> mu-law moves a code by at most one step.
    let far = line
        .iter()
        .zip(&heard)
        .filter(|(a, b)| a.abs_diff(**b) > 1)
        .count();
    assert_eq!(far, 0);
}

#[test]
fn a_key_press_crosses_as_exactly_one_digit() {
    let t0 = Instant::now();
    let mut tx = RtpSender::new(0, &mut StdRng::seed_from_u64(12));
    let mut rx = RtpReceiver::new(PayloadMap::g711(Some(101)));
    let mut dtmf = DtmfReceiver::default();
    tx.handle_input(t0, &[0xff; 1600]);
    tx.send_digit(101, '#', Duration::from_millis(120))
        .expect("a DTMF digit");
    tx.handle_timeout(t0 + Duration::from_millis(200));
    let digits: Vec<_> = std::iter::from_fn(|| tx.poll_output())
        .filter_map(|d| rx.receive(&d).ok().and_then(|p| dtmf.handle(&p)))
        .collect();
    assert_eq!(digits.len(), 1);
    assert_eq!(
        (digits[0].digit, digits[0].duration),
        ('#', Duration::from_millis(120))
    );
}
