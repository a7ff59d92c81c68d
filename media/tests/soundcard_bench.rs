//! The sound card's latency and steadiness over a long call (run by
//! `bench/soundcard_latency.sh`; ignored in the suite for its length): a private
//! PulseAudio null sink is the card, fed like the relay feeds it (20 ms every
//! 20 ms) with a 100 ms 1 kHz burst every second; what the card captures from the
//! sink's monitor is searched for each burst's onset. Each onset's round trip
//! (our play ring -> sink -> monitor -> our capture ring) is timed to the sample:
//! a captured batch's last sample is "now", the ones before it 125 µs apart.
//! Reports p50/p95/max of the round trip, the one-way device latencies
//! PulseAudio reports, and the underruns after a 2 s warm-up; asserts the
//! targets (round trip p95 ≤ 120 ms, i.e. ≤ 60 ms each way; no underrun).
//! `OFFHOOK_BENCH_SECONDS` sets the length (600).
#![allow(
    clippy::disallowed_methods,
    reason = "an edge: it reads the real clock and the OS generator"
)]

mod bursts;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use cpal::HostId;
use offhook_media::soundcard::testing::{MONITOR, PulseServer, SINK};
use offhook_media::soundcard::{self, FRAME};

use bursts::{Bursts, WARM_UP};

#[test]
#[ignore = "a benchmark of minutes: bench/soundcard_latency.sh runs it"]
fn sound_card_latency_and_underruns_over_a_long_call() {
    let seconds: u64 = std::env::var("OFFHOOK_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(600);
    let dir = std::env::temp_dir().join(format!("offhook-pulse-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pulse = PulseServer::start(&dir).unwrap_or_else(|e| panic!("needs PulseAudio: {e}"));
    // SAFETY: one test in this binary; the environment is set before any thread reads it.
    unsafe { pulse.use_in_this_process() };
    let mut card = soundcard::open(HostId::PulseAudio, SINK, MONITOR).expect("open the card");
    card.counters.in_call.store(true, Ordering::Relaxed);

    let frames = seconds * 50;
    let start = Instant::now();
    let mut bursts = Bursts::new();
    let mut underruns_at_warm = None;
    let (mut max_play_us, mut max_capture_us) = (0u64, 0u64);
    while bursts.fed() < frames || start.elapsed() < Duration::from_millis(20 * frames + 500) {
        let due = (start.elapsed().as_millis() / 20) as u64 + 1;
        while bursts.fed() < due.min(frames) {
            let frame = bursts.next_frame();
            match card.to_line.write_chunk_uninit(FRAME) {
                Ok(chunk) => {
                    chunk.fill_from_iter(frame);
                }
                Err(_) => {
                    card.counters.dropped.fetch_add(FRAME as u64, Ordering::Relaxed);
                }
            }
            if bursts.fed() == WARM_UP {
                underruns_at_warm = Some(card.counters.underruns.load(Ordering::Relaxed));
            }
        }
        let now = Instant::now();
        let batch: Vec<i16> = std::iter::from_fn(|| card.from_line.pop().ok()).collect();
        bursts.heard(now, &batch);
        if bursts.fed() > WARM_UP {
            let c = &card.counters;
            max_play_us = max_play_us.max(c.playback_latency_us.load(Ordering::Relaxed));
            max_capture_us = max_capture_us.max(c.capture_latency_us.load(Ordering::Relaxed));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let underruns_at_end = card.counters.underruns.load(Ordering::Relaxed);
    let c = card.counters.read();
    let summary = bursts.summary(Duration::ZERO);
    let steady = underruns_at_end - underruns_at_warm.unwrap_or(0);
    println!(
        "soundcard_latency: {seconds} s call, {summary} (ring -> card -> sink monitor -> card -> \
         ring); PulseAudio device latency at most {max_play_us} us playback, {max_capture_us} us \
         capture; underruns after warm-up {steady} samples; {c}"
    );
    assert_eq!(summary.heard, summary.sent, "every burst came back");
    let p95 = summary.p95.expect("bursts came back");
    assert!(p95 <= Duration::from_millis(120), "round trip p95 {p95:?}");
    assert_eq!(steady, 0, "no underrun at steady state");
    assert_eq!(c.dropped, 0, "the card kept up");
}
