//! The line edge in long simulated calls: the driver's drift compensation holds
//! the modem's playout buffer (the added latency to the line) over 30 minutes at
//! ±100 ppm, where without it the buffer grows or underruns; the echo canceller
//! removes the emulated hybrid's echo, keeps the callee's greeting spoken over the
//! caller (double talk), and leaves the echo number's 300 ms loopback audible.

use super::*;
use crate::emulator::line::{Hybrid, LineModel};

/// What a long call did to the modem's playout buffer (samples, sampled each
/// second after the first minute) and how many 20 ms ticks underran.
struct Drift {
    low: usize,
    high: usize,
    first: usize,
    last: usize,
    underruns: u64,
}

fn long_call(clock_ppm: i32, compensate_drift: bool, minutes: u64) -> Drift {
    let config = DriverConfig {
        no_answer: Duration::from_secs(20),
        compensate_drift,
        cancel_echo: false,
        ..DriverConfig::default()
    };
    let exchange = Exchange {
        line: LineModel {
            clock_ppm,
            hybrid: None,
        },
        ..Exchange::default()
    };
    let mut b = Bench::on_exchange(Faults::default(), config, exchange);
    b.tone = Some(Tone::new(1000.0, 8000.0, 8000.0));
    b.dial(ECHO, Duration::from_secs(60));
    assert!(b.driver.is_answered());
    let before = b.modem.analogue().underruns;
    let mut depths = Vec::new();
    for _ in 0..minutes * 60 {
        b.run(Duration::from_secs(1));
        depths.push(b.modem.analogue().buffered());
        for kept in [
            &mut b.heard,
            &mut b.line_stream,
            &mut b.to_modem,
            &mut b.from_modem,
        ] {
            kept.clear();
        }
    }
    assert!(b.driver.is_answered(), "the call is up to the end");
    Drift {
        low: depths.iter().copied().min().unwrap_or(0),
        high: depths.iter().copied().max().unwrap_or(0),
        first: depths[0],
        last: depths[depths.len() - 1],
        underruns: b.modem.analogue().underruns - before,
    }
}

#[test]
fn thirty_minutes_at_plus_and_minus_100_ppm_keep_their_latency() {
    for ppm in [100, -100] {
        let on = long_call(ppm, true, 30);
        eprintln!(
            "{ppm:+} ppm compensated: playout buffer {}..{} samples (first {} last {}), {} underruns",
            on.low, on.high, on.first, on.last, on.underruns
        );
        // Bound: the buffer stays within 8 ms (64 samples) over the whole call,
        // under 60 ms of added latency, and never runs dry.
        assert!(on.high - on.low <= 64, "{ppm:+} ppm: {}..{}", on.low, on.high);
        assert!(on.high <= 480, "{ppm:+} ppm: up to {} samples buffered", on.high);
        assert_eq!(on.underruns, 0, "{ppm:+} ppm: underruns");
        let off = long_call(ppm, false, 30);
        eprintln!(
            "{ppm:+} ppm uncompensated: playout buffer {}..{} samples (first {} last {}), {} underruns",
            off.low, off.high, off.first, off.last, off.underruns
        );
        // Without: 0.8 samples a second pile up (180 ms in 30 min) or run dry.
        assert!(
            off.high - off.low > 1000 || off.underruns > 500,
            "{ppm:+} ppm would be fine uncompensated: {}..{}, {} underruns",
            off.low,
            off.high,
            off.underruns
        );
    }
}

/// The caller's voice stand-in: bursts of noise, 250 ms on and 100 ms off.
fn bursts(seconds: usize) -> Vec<i16> {
    let mut state = 0x2545_F491_4F6C_DD1D_u64;
    (0..seconds * 8000)
        .map(|i| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let on = i % 2800 < 2000;
            if on { (state % 12_001) as i16 - 6000 } else { 0 }
        })
        .collect()
}

/// What the caller hears of a call to `number` for `seconds` after the answer
/// (linear), the caller speaking when `talks`.
fn heard(number: &str, hybrid: Option<Hybrid>, cancel_echo: bool, talks: bool, seconds: u64) -> Vec<f32> {
    let config = DriverConfig {
        no_answer: Duration::from_secs(20),
        cancel_echo,
        ..DriverConfig::default()
    };
    let exchange = Exchange {
        line: LineModel { clock_ppm: 0, hybrid },
        ..Exchange::default()
    };
    let mut b = Bench::on_exchange(Faults::default(), config, exchange);
    b.voice = talks.then(|| (bursts(7), 0));
    b.dial(number, Duration::from_secs(seconds + 8));
    assert!(b.driver.is_answered());
    let mut heard: Vec<f32> = b.heard.iter().map(|&c| f32::from(ulaw_to_linear(c))).collect();
    heard.truncate(seconds as usize * 8000);
    heard
}

fn power(samples: &[f32]) -> f64 {
    samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum::<f64>() / samples.len().max(1) as f64
}

fn db(ratio: f64) -> f64 {
    10.0 * ratio.log10()
}

fn difference(a: &[f32], b: &[f32]) -> Vec<f32> {
    a.iter().zip(b).map(|(x, y)| x - y).collect()
}

#[test]
fn the_hybrid_echo_is_cancelled_and_the_callee_talking_over_it_is_not() {
    for hybrid in [
        Hybrid {
            delay_ms: 20,
            erl_db: 10,
        },
        Hybrid {
            delay_ms: 40,
            erl_db: 6,
        },
    ] {
        // The greeting (3 s from the answer), then silence: only echo after it.
        let echoed = heard(GREETS, Some(hybrid), false, true, 14);
        let cancelled = heard(GREETS, Some(hybrid), true, true, 14);
        let greeting = heard(GREETS, Some(hybrid), false, false, 14);
        let second = |s: &[f32], n: usize| s[n * 8000..(n + 1) * 8000].to_vec();
        let erle: Vec<String> = (4..14)
            .map(|n| {
                format!(
                    "{:.1}",
                    db(power(&second(&echoed, n)) / power(&second(&cancelled, n)))
                )
            })
            .collect();
        let window = 6 * 8000..14 * 8000;
        let erle_after = db(power(&echoed[window.clone()]) / power(&cancelled[window]));
        let talk = 0..3 * 8000;
        let kept = db(power(&greeting[talk.clone()]) / power(&cancelled[talk.clone()]));
        let distortion = db(power(&greeting[talk.clone()])
            / power(&difference(&cancelled[talk.clone()], &greeting[talk.clone()])));
        let distortion_off =
            db(power(&greeting[talk.clone()]) / power(&difference(&echoed[talk.clone()], &greeting[talk])));
        eprintln!(
            "hybrid {hybrid:?}: ERLE per second from 4 s: [{}] dB, {erle_after:.1} dB over 6..14 s; \
             greeting level kept within {kept:.2} dB, greeting to echo+distortion {distortion:.1} dB \
             (canceller off: {distortion_off:.1} dB)",
            erle.join(", ")
        );
        assert!(erle_after >= 25.0, "ERLE {erle_after:.1} dB");
        assert!(
            kept.abs() <= 1.0,
            "the greeting lost {kept:.2} dB under double talk"
        );
        assert!(
            distortion >= distortion_off,
            "double talk: {distortion:.1} dB with the canceller, {distortion_off:.1} dB without"
        );
    }
}

#[test]
fn the_echo_number_is_still_heard_through_the_canceller() {
    let hybrid = Some(Hybrid {
        delay_ms: 20,
        erl_db: 10,
    });
    let loopback = heard(ECHO, None, false, true, 8);
    let cancelled = heard(ECHO, hybrid, true, true, 8);
    let tail = 2 * 8000..8 * 8000;
    let lost = db(power(&loopback[tail.clone()]) / power(&cancelled[tail.clone()]));
    let changed =
        db(power(&loopback[tail.clone()]) / power(&difference(&cancelled[tail.clone()], &loopback[tail])));
    eprintln!(
        "echo number through the canceller: level {lost:.2} dB down, loopback to residual {changed:.1} dB"
    );
    assert!(lost.abs() <= 1.0, "the echo number's loopback lost {lost:.2} dB");
    assert!(
        changed >= 15.0,
        "the loopback came through altered: {changed:.1} dB"
    );
}
