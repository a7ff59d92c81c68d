//! The modem + sound card line's port path over a long call (run by
//! `bench/soundcard_latency.sh`; ignored in the suite for its length): the real
//! modem driver on a PTY holds a call to the echo number on the emulated modem,
//! whose audio ports are on a private PulseAudio server; the line's sound card
//! plays into `card_out` (the modem's mic-in records its monitor) and captures
//! `modem_spk.monitor` (the modem's speaker-out plays into `modem_spk`). The
//! bench feeds the line like the relay does (a 20 ms frame every 20 ms, with a
//! 100 ms burst every second) and times each burst's onset in the line audio
//! the driver reports: card -> modem mic-in -> line -> echo -> modem
//! speaker-out -> card, less the echo number's own delay. Reports p50/p95/max
//! and the card's underruns, overruns and dropped samples after the warm-up;
//! asserts the targets (round trip p95 ≤ 150 ms, no underrun, nothing dropped).
//! `OFFHOOK_BENCH_SECONDS` sets the length (600).
#![allow(
    clippy::disallowed_methods,
    reason = "an edge: it reads the real clock and the OS generator"
)]

mod bursts;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use cpal::HostId;
use offhook_media::dsp::g711::{linear_to_ulaw, ulaw_to_linear};
use offhook_media::emulator::network::{ECHO, ECHO_DELAY, Exchange};
use offhook_media::emulator::ports::PortDevices;
use offhook_media::emulator::{Faults, VLS_PORTS, pty};
use offhook_media::modem::{DriverConfig, LineCommand, LineEvent, open_modem_with_card};
use offhook_media::soundcard::testing::{
    CARD_OUT, CARD_OUT_MONITOR, MODEM_SPK, MODEM_SPK_MONITOR, PulseServer,
};
use offhook_media::soundcard::{self, CardCounts};
use offhook_media::testing::next_line_event;

use bursts::{Bursts, WARM_UP};

#[test]
#[ignore = "a benchmark of minutes: bench/soundcard_latency.sh runs it"]
fn port_path_latency_and_underruns_over_a_long_call() {
    let seconds: u64 = std::env::var("OFFHOOK_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(600);
    let dir = std::env::temp_dir().join(format!("offhook-pulse-ports-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pulse = PulseServer::start(&dir).unwrap_or_else(|e| panic!("needs PulseAudio: {e}"));
    // SAFETY: one test in this binary, and no other thread yet: the runtime starts below.
    unsafe { pulse.use_in_this_process() };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(call(seconds));
}

async fn call(seconds: u64) {
    let ports = PortDevices {
        mic_in: CARD_OUT_MONITOR.into(),
        speaker_out: MODEM_SPK.into(),
    };
    // A modem whose audio is on its ports: none over the serial port.
    let faults = Faults {
        no_serial_audio: true,
        ..Faults::default()
    };
    let modem = pty::spawn(
        faults,
        Duration::from_secs(seconds + 60),
        Exchange::default(),
        Some(&ports),
    )
    .expect("the emulated modem and its ports");
    let card = soundcard::open(HostId::PulseAudio, CARD_OUT, MODEM_SPK_MONITOR).expect("open the card");
    let counters = card.counters.clone();
    let config = DriverConfig {
        vls: VLS_PORTS,
        ..DriverConfig::default()
    };
    let mut line = open_modem_with_card(&modem.path, config, card).expect("open the modem");
    assert_eq!(next_line_event(&mut line, |_| true).await, LineEvent::Ready);
    line.commands.send(LineCommand::Dial(ECHO.into())).await.unwrap();
    next_line_event(&mut line, |e| matches!(e, LineEvent::Answered(_))).await;

    let mut bursts = Bursts::new();
    let frames = seconds * 50;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut at_warm: Option<CardCounts> = None;
    let (mut max_play_us, mut max_capture_us, mut max_queued) = (0u64, 0u64, 0u64);
    // Fed, then a second to hear the last burst back.
    let tail = Duration::from_secs(1) + ECHO_DELAY;
    let mut fed_all: Option<Instant> = None;
    // The card's counts from the warm-up to the last frame fed (after it the
    // card plays silence, counted as underruns while the call is up).
    let mut steady: Option<CardCounts> = None;
    while fed_all.is_none_or(|at| at.elapsed() < tail) {
        tokio::select! {
            _ = tick.tick() => {
                if bursts.fed() < frames {
                    let frame = bursts.next_frame().map(linear_to_ulaw).to_vec();
                    line.commands.send(LineCommand::Audio(frame)).await.unwrap();
                    if bursts.fed() == WARM_UP {
                        at_warm = Some(counters.read());
                    }
                } else if fed_all.is_none() {
                    fed_all = Some(Instant::now());
                    steady = Some(counters.read().since(&at_warm.unwrap_or_default()));
                }
                if bursts.fed() > WARM_UP {
                    max_play_us = max_play_us.max(counters.playback_latency_us.load(Ordering::Relaxed));
                    max_capture_us = max_capture_us.max(counters.capture_latency_us.load(Ordering::Relaxed));
                    max_queued = max_queued.max(counters.queued.load(Ordering::Relaxed));
                }
            }
            event = line.events.recv() => match event.expect("the line task runs") {
                LineEvent::Audio(audio) => {
                    let samples: Vec<i16> = audio.iter().map(|&c| ulaw_to_linear(c)).collect();
                    bursts.heard(Instant::now(), &samples);
                }
                LineEvent::Dtmf(_) => {}
                other => panic!("the call went on: {other:?}"),
            },
        }
    }
    let steady = steady.unwrap_or_default();
    let summary = bursts.summary(ECHO_DELAY);
    println!(
        "soundcard_port_path: {seconds} s call; {summary} (card -> modem mic-in -> line -> echo \
         -> modem speaker-out -> card, less the echo's {ECHO_DELAY:?}); PulseAudio device latency \
         at most {max_play_us} us playback, {max_capture_us} us capture; play ring at most \
         {max_queued} samples; after warm-up: {steady}"
    );
    line.commands.send(LineCommand::HangUp).await.unwrap();
    next_line_event(&mut line, |e| *e == LineEvent::Idle).await;
    assert_eq!(summary.heard, summary.sent, "every burst came back");
    let p95 = summary.p95.expect("bursts came back");
    assert!(p95 <= Duration::from_millis(150), "round trip p95 {p95:?}");
    assert_eq!(steady.underruns, 0, "no underrun at steady state");
    assert_eq!((steady.overruns, steady.dropped), (0, 0), "the card kept up");
}
