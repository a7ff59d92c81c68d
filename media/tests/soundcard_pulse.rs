//! The sound card edge on a real sound server: a PulseAudio daemon of this test's
//! own (user mode, a private socket) with a null sink at 8 kHz mono; a 1 kHz tone
//! written to the card's play ring is played into the sink by cpal's real-time
//! callback, and the sink's monitor source, captured by the input callback, gives
//! it back (loopback stands in for the phone line). When the tone runs out the
//! output plays silence and counts underruns. Bounded waits throughout.
#![allow(
    clippy::disallowed_methods,
    reason = "an edge: it reads the real clock and the OS generator"
)]

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use cpal::HostId;
use offhook_media::dsp::goertzel::relative_level;
use offhook_media::dsp::tone::Tone;
use offhook_media::soundcard;
use offhook_media::soundcard::testing::{MONITOR, PulseServer, SINK};

#[test]
fn a_tone_played_to_the_card_comes_back_from_the_sink_monitor() {
    let dir = std::env::temp_dir().join(format!("offhook-pulse-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pulse = PulseServer::start(&dir).unwrap_or_else(|e| panic!("this test needs PulseAudio: {e}"));
    // SAFETY: this test binary has this one test, and no other thread reads the
    // environment while it is set (cpal's client reads it afterwards).
    unsafe { pulse.use_in_this_process() };
    let mut card = soundcard::open(HostId::PulseAudio, SINK, MONITOR).expect("open the card");
    // Underruns count during calls only: this is one.
    card.counters.in_call.store(true, Ordering::Relaxed);

    // 2 s of tone fed as the ring has room; 7 s of listening (PulseAudio buffers ~2 s of playback).
    let mut tone = Tone::new(1000.0, 8000.0, 8000.0);
    let (mut fed, mut heard) = (0usize, Vec::new());
    let start = Instant::now();
    let deadline = start + Duration::from_secs(20);
    while fed < 16_000 || heard.len() < 56_000 {
        assert!(
            Instant::now() < deadline,
            "captured {} samples in time (fed {fed}; card {:?})",
            heard.len(),
            card.counters.read()
        );
        // A sample is made only when the ring has room for it: none skipped.
        while fed < 16_000 && card.to_line.slots() > 0 {
            let _ = card.to_line.push(tone.next_sample());
            fed += 1;
        }
        while let Ok(sample) = card.from_line.pop() {
            heard.push(sample);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let elapsed = start.elapsed();
    let windows = heard
        .chunks_exact(2000)
        .filter(|w| relative_level(w, 1000.0, 8000.0) > 0.5)
        .count();
    let c = &card.counters;
    eprintln!(
        "captured {} samples in {elapsed:?}; {windows} windows of 250 ms with the tone; played {}, underruns {}, overruns {}",
        heard.len(),
        c.played.load(Ordering::Relaxed),
        c.underruns.load(Ordering::Relaxed),
        c.overruns.load(Ordering::Relaxed)
    );
    assert!(
        windows >= 6,
        "the tone came back through the sink monitor for at least 1.5 s"
    );
    assert_eq!(c.played.load(Ordering::Relaxed), 16_000, "every sample played");
    assert!(
        c.underruns.load(Ordering::Relaxed) > 0,
        "silence once the tone ran out, counted"
    );
    assert!(
        elapsed >= Duration::from_millis(2000),
        "played in real time, not faster ({elapsed:?})"
    );
}
