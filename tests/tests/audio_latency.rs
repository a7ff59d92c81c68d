//! The audio path's latency benchmark (run by `bench/audio_latency.sh`, not by
//! `cargo test`): a click to the echo number through signaling, the relay
//! (jitter buffer, drift compensation) and the real driver against the emulated
//! modem with its clock `OFFHOOK_BENCH_PPM` ppm off (default +100), for
//! `OFFHOOK_BENCH_MINUTES` simulated minutes (default 10). Every 2 s the caller
//! sends a 200 ms burst of tone; the round trip is from the burst's first packet
//! to its onset in what comes back, less the echo number's own 300 ms. Printed
//! per minute: round trip (min/median/max), the line's jitter-buffer depth, the
//! modem's playout buffer, the tone's SNR in the bursts, and underruns.
#![allow(
    clippy::disallowed_methods,
    reason = "an edge: it reads the real clock and the environment"
)]

use std::time::Duration;

use offhook_media::emulator::line::LineModel;
use offhook_media::emulator::network::ECHO_DELAY;
use offhook_signaling::config::SignalingConfig;
use offhook_tests::sim::World;

const STEP: Duration = Duration::from_millis(10);
/// A burst starts every this many steps and lasts [`BURST_STEPS`].
const PERIOD_STEPS: u64 = 200;
const BURST_STEPS: u64 = 20;
/// Sample level (of 32767) that is the burst's onset.
const ONSET: i16 = 2000;

fn env(name: &str, default: i64) -> i64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// SNR (dB) of a 1 kHz tone in `samples`: the tone's Goertzel power against the rest.
fn tone_snr(samples: &[i16]) -> f64 {
    let n = samples.len() as f64;
    let w = std::f64::consts::TAU * 1000.0 / 8000.0;
    let (mut re, mut im) = (0.0, 0.0);
    for (i, &s) in samples.iter().enumerate() {
        re += f64::from(s) * (w * i as f64).cos();
        im += f64::from(s) * (w * i as f64).sin();
    }
    let tone = 2.0 * (re * re + im * im) / (n * n);
    let total = samples.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / n;
    10.0 * (tone / (total - tone).max(1e-9)).log10()
}

#[tokio::test]
#[ignore = "a benchmark of minutes: bench/audio_latency.sh"]
async fn round_trip_through_the_echo_number_over_a_long_call_with_drift() {
    let ppm = env("OFFHOOK_BENCH_PPM", 100) as i32;
    let minutes = env("OFFHOOK_BENCH_MINUTES", 10) as u64;
    let model = LineModel {
        clock_ppm: ppm,
        hybrid: None,
    };
    // The canceller is measured by the media tests; unoptimised it would slow this down.
    let mut w = World::on_lines(&["line-1"], SignalingConfig::default(), None, model, Some(false)).await;
    let session = w.click("echo").await;
    assert_eq!(w.wait_outcome(session, Duration::from_secs(30)).await, 200);
    w.run(Duration::from_secs(2)).await;
    println!("offhook audio latency bench: echo number, modem clock {ppm:+} ppm, {minutes} min");
    println!(
        "minute  rtt-300ms min/median/max (ms)  jitter buffer (ms)  modem buffer (ms)  tone SNR (dB)  underruns"
    );
    let (mut rtts, mut depths, mut modem, mut snrs) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut burst_sent = None;
    let mut quiet_run = 0usize;
    let mut snr_at = None;
    let mut seen = w.media.heard.len();
    let underruns_at_start = w.relay.lines[0].modem.analogue().underruns;
    for step in 0..minutes * 60 * 100 {
        let phase = step % PERIOD_STEPS;
        w.media.quiet = phase >= BURST_STEPS;
        if phase == 0 {
            burst_sent = Some(w.now);
        }
        w.run(STEP).await;
        let heard = &w.media.heard[seen..];
        for (i, &sample) in heard.iter().enumerate() {
            if sample.unsigned_abs() > ONSET as u16 {
                if quiet_run > 800
                    && let Some(sent) = burst_sent.take()
                {
                    // Samples that came in this step arrived by `now`, the last at `now`.
                    let late = Duration::from_micros((heard.len() - i) as u64 * 125);
                    let rtt = (w.now - late).saturating_duration_since(sent);
                    rtts.push(rtt.as_secs_f64() * 1000.0 - ECHO_DELAY.as_secs_f64() * 1000.0);
                    // The burst's tone, 25 ms past its onset, once it is all in.
                    snr_at = Some(seen + i + 200);
                }
                quiet_run = 0;
            } else {
                quiet_run += 1;
            }
        }
        seen = w.media.heard.len();
        if let Some(start) = snr_at
            && let Some(burst) = w.media.heard.get(start..start + 800)
        {
            snrs.push(tone_snr(burst));
            snr_at = None;
        }
        if step % 100 == 0 {
            let depth = w
                .relay
                .gateway
                .stats()
                .metric_values()
                .into_iter()
                .find(|(name, labels, _)| {
                    name == "offhook_jitter_buffer_depth_ms" && labels.contains("line-1")
                })
                .map_or(0, |(_, _, v)| v);
            depths.push(depth as f64);
            modem.push(w.relay.lines[0].modem.analogue().buffered() as f64 / 8.0);
        }
        if (step + 1) % 6000 == 0 {
            let minute = (step + 1) / 6000;
            let (lo, hi) = rtts
                .iter()
                .fold((f64::MAX, f64::MIN), |(l, h), &r| (l.min(r), h.max(r)));
            let mid = median(&mut rtts.clone());
            let snr = median(&mut snrs.clone());
            let underruns = w.relay.lines[0].modem.analogue().underruns - underruns_at_start;
            println!(
                "{minute:>6}  {lo:>6.1} / {mid:>6.1} / {hi:>6.1}            {:>5.1}..{:<5.1}          {:>5.1}..{:<5.1}        {snr:>5.1}          {underruns}",
                depths.iter().copied().fold(f64::MAX, f64::min),
                depths.iter().copied().fold(f64::MIN, f64::max),
                modem.iter().copied().fold(f64::MAX, f64::min),
                modem.iter().copied().fold(f64::MIN, f64::max),
            );
            assert!(!rtts.is_empty(), "bursts came back in minute {minute}");
            rtts.clear();
            depths.clear();
            modem.clear();
            snrs.clear();
        }
        // What came back is only needed for the current burst.
        if w.media.heard.len() > 16_000 {
            let drop = w.media.heard.len() - 8000;
            w.media.heard.drain(..drop);
            seen -= drop;
            snr_at = snr_at.map(|at| at.saturating_sub(drop));
        }
    }
    assert!(w.relay.gateway.line("line-1").is_some(), "the line is there");
}
