//! The real driver against the emulator with simulated time: whole calls in
//! milliseconds of test time, every demo number and fault switch, each ending
//! with the line idle again; and the modem + sound card line, whose modem only
//! dials and holds the line while the bench stands in for the card. Answer
//! supervision on each country's cadences is in [`supervision`].
#![allow(
    clippy::disallowed_methods,
    reason = "an edge: it reads the real clock and the OS generator"
)]

use std::time::{Duration, Instant};

use super::network::*;
use super::{Emulator, Faults};
use crate::dsp::g711::{linear_to_ulaw, ulaw_to_linear};
use crate::dsp::goertzel::{relative_level, some_block_has};
use crate::dsp::tone::Tone;
use offhook_vocab::AnswerSource;

use crate::modem::driver::Stream;
use crate::modem::{
    DriverConfig, DriverOutput, HangupReason, LineAudio, LineCommand, LineEvent, ModemDriver,
};

struct Bench {
    now: Instant,
    driver: ModemDriver,
    modem: Emulator,
    events: Vec<LineEvent>,
    heard: Vec<u8>,
    /// Everything the relay got from the line, early media and after the answer.
    line_stream: Vec<u8>,
    tone: Option<Tone>,
    /// Instead of the tone: this signal, looped (and where it is).
    voice: Option<(Vec<i16>, usize)>,
    /// After this, the relay's side sends silence instead of the tone.
    tone_until: Option<Instant>,
    /// The modem's streams as they changed (`None`: command mode).
    streams: Vec<Option<Stream>>,
    step: u64,
    /// Sound card line: what the driver gave the card to play.
    played: Vec<u8>,
    /// Sound card line: what the card captures from the line once answered (fed every 20 ms).
    card_input: Option<Tone>,
    /// Every byte the driver wrote to the modem, and the modem sent back.
    to_modem: Vec<u8>,
    from_modem: Vec<u8>,
}

impl Bench {
    fn new(faults: Faults) -> Self {
        Self::with_audio(faults, LineAudio::Serial)
    }

    fn with_audio(faults: Faults, audio: LineAudio) -> Self {
        let config = DriverConfig {
            no_answer: Duration::from_secs(20),
            audio,
            ..DriverConfig::default()
        };
        Self::on_exchange(faults, config, Exchange::default())
    }

    /// A driver with `config` on a modem whose exchange sounds like `exchange`.
    fn on_exchange(faults: Faults, config: DriverConfig, exchange: Exchange) -> Self {
        let now = Instant::now();
        let mut bench = Self {
            now,
            driver: ModemDriver::new(config, now),
            modem: Emulator::new(faults, Duration::from_secs(3)).with_exchange(exchange),
            events: Vec::new(),
            heard: Vec::new(),
            line_stream: Vec::new(),
            tone: None,
            voice: None,
            tone_until: None,
            streams: vec![None],
            step: 0,
            played: Vec::new(),
            card_input: None,
            to_modem: Vec::new(),
            from_modem: Vec::new(),
        };
        bench.run(Duration::from_millis(200));
        bench
    }

    /// Moves bytes both ways and advances time in 10 ms steps.
    fn run(&mut self, for_: Duration) {
        let end = self.now + for_;
        while self.now < end {
            while let Some(output) = self.driver.poll_output() {
                match output {
                    DriverOutput::Write(bytes) => {
                        self.to_modem.extend(&bytes);
                        self.modem.handle_bytes(self.now, &bytes);
                    }
                    DriverOutput::Event(LineEvent::Audio(audio)) => {
                        self.line_stream.extend(&audio);
                        self.heard.extend(audio);
                    }
                    DriverOutput::Event(LineEvent::EarlyAudio(audio)) => self.line_stream.extend(audio),
                    DriverOutput::Event(event) => self.events.push(event),
                    DriverOutput::Play(audio) => self.played.extend(audio),
                }
            }
            if let Some(bytes) = self.modem.poll_transmit() {
                self.from_modem.extend(&bytes);
                self.driver.handle_bytes(self.now, &bytes);
                if self.streams.last() != Some(&self.driver.stream()) {
                    self.streams.push(self.driver.stream());
                }
                continue;
            }
            self.now += Duration::from_millis(10);
            self.modem.handle_timeout(self.now);
            if self.driver.poll_timeout().is_some_and(|t| t <= self.now) {
                self.driver.handle_timeout(self.now);
            }
            // The relay's side: 20 ms of tone into the line every other 10 ms step.
            let answered = self.events.iter().any(|e| matches!(e, LineEvent::Answered(_)));
            self.step += 1;
            if let Some(card) = self.card_input.as_mut().filter(|_| self.step.is_multiple_of(2)) {
                // The far end's tone once it answered; before, the (demo) line is quiet.
                let frame: Vec<u8> = match answered {
                    true => (0..160).map(|_| linear_to_ulaw(card.next_sample())).collect(),
                    false => vec![0xFF; 160],
                };
                self.driver.handle_card_audio(self.now, &frame);
            }
            let talking = self.tone_until.is_none_or(|until| self.now < until);
            if let Some((signal, at)) = self
                .voice
                .as_mut()
                .filter(|_| answered && self.step.is_multiple_of(2))
            {
                let chunk: Vec<u8> = (0..160)
                    .map(|_| {
                        *at = (*at + 1) % signal.len();
                        linear_to_ulaw(if talking { signal[*at] } else { 0 })
                    })
                    .collect();
                self.driver.handle_command(self.now, LineCommand::Audio(chunk));
            }
            if let Some(tone) = self
                .tone
                .as_mut()
                .filter(|_| answered && self.step.is_multiple_of(2))
            {
                let chunk: Vec<u8> = match talking {
                    true => (0..160).map(|_| linear_to_ulaw(tone.next_sample())).collect(),
                    false => vec![0xFF; 160],
                };
                self.driver.handle_command(self.now, LineCommand::Audio(chunk));
            }
        }
    }

    fn dial(&mut self, number: &str, for_: Duration) {
        self.driver
            .handle_command(self.now, LineCommand::Dial(number.into()));
        self.run(for_);
    }

    fn hang_up(&mut self) {
        self.driver.handle_command(self.now, LineCommand::HangUp);
        self.run(Duration::from_secs(5));
    }

    fn outcome(&self) -> Vec<LineEvent> {
        self.events
            .iter()
            .filter(|e| !matches!(e, LineEvent::Ready | LineEvent::Dialing))
            .cloned()
            .collect()
    }
}

#[test]
fn echo_is_answered_when_ringback_stops_and_echoes_a_tone() {
    let mut b = Bench::new(Faults::default());
    assert_eq!(b.events, [LineEvent::Ready]);
    b.tone = Some(Tone::new(1000.0, 8000.0, 8000.0));
    b.dial(ECHO, Duration::from_secs(18));
    assert_eq!(
        b.outcome()[..2],
        [
            LineEvent::Ringing,
            LineEvent::Answered(AnswerSource::RingbackStopped)
        ]
    );
    let samples: Vec<i16> = b
        .heard
        .iter()
        .rev()
        .take(1600)
        .map(|&c| ulaw_to_linear(c))
        .collect();
    assert!(
        relative_level(&samples, 1000.0, 8000.0) > 0.5,
        "the 1 kHz tone comes back"
    );
    b.hang_up();
    assert_eq!(b.events.last(), Some(&LineEvent::Idle));
}

#[test]
fn busy_invalid_no_answer_no_dial_tone() {
    for (number, faults, expected) in [
        (BUSY, Faults::default(), LineEvent::Busy),
        (INVALID, Faults::default(), LineEvent::Invalid),
        ("5559999", Faults::default(), LineEvent::Invalid),
        (NEVER_ANSWERS, Faults::default(), LineEvent::NoAnswer),
        (
            ECHO,
            Faults {
                no_dial_tone: true,
                ..Faults::default()
            },
            LineEvent::NoDialTone,
        ),
    ] {
        let mut b = Bench::new(faults);
        b.dial(number, Duration::from_secs(25));
        let outcome = b.outcome();
        assert!(outcome.contains(&expected), "{number}: {outcome:?}");
        assert_eq!(b.events.last(), Some(&LineEvent::Idle), "{number}: back to idle");
    }
}

#[test]
fn far_end_hangs_up_and_polarity_signals_answer() {
    let mut b = Bench::new(Faults::default());
    b.dial(HANGS_UP, Duration::from_secs(20));
    assert!(
        b.outcome()
            .contains(&LineEvent::RemoteHangup(HangupReason::LoopBreak)),
        "{:?}",
        b.outcome()
    );
    assert_eq!(b.events.last(), Some(&LineEvent::Idle));
    let mut b = Bench::new(Faults::default());
    b.dial(POLARITY, Duration::from_secs(4));
    assert!(
        b.outcome()
            .contains(&LineEvent::Answered(AnswerSource::PolarityReversal))
    );
    b.hang_up();
    assert_eq!(b.events.last(), Some(&LineEvent::Idle));
}

#[test]
fn fault_switches() {
    // Conexant: AT+VTR=? says ERROR, AT+VTR works: full duplex anyway.
    let mut b = Bench::new(Faults {
        vtr_query_error: true,
        vendor_vsm: true,
        ..Faults::default()
    });
    assert_eq!(
        b.events,
        [LineEvent::Ready],
        "mu-law found by name with vendor ids"
    );
    b.dial(ANNOUNCEMENT, Duration::from_secs(12));
    assert!(!b.driver.is_half_duplex());
    let samples: Vec<i16> = b
        .heard
        .iter()
        .rev()
        .take(800)
        .map(|&c| ulaw_to_linear(c))
        .collect();
    assert!(
        relative_level(&samples, 1000.0, 8000.0) > 0.5,
        "announcement tone heard"
    );
    b.hang_up();
    assert_eq!(b.events.last(), Some(&LineEvent::Idle));
    // No +VTR at all: half-duplex receive.
    let mut b = Bench::new(Faults {
        no_vtr: true,
        ..Faults::default()
    });
    b.dial(ANNOUNCEMENT, Duration::from_secs(12));
    assert!(b.driver.is_half_duplex());
    assert!(!b.heard.is_empty());
    b.hang_up();
    assert_eq!(b.events.last(), Some(&LineEvent::Idle));
    // Stuck in duplex: <DLE>^ is ignored; the driver resyncs.
    let mut b = Bench::new(Faults {
        stuck_in_duplex: true,
        underruns: true,
        ..Faults::default()
    });
    b.dial(POLARITY, Duration::from_secs(4));
    b.hang_up();
    assert_eq!(b.events.last(), Some(&LineEvent::Idle), "{:?}", b.events);
    assert!(b.driver.resyncs >= 1);
    assert!(b.driver.underruns >= 1);
}

#[test]
fn only_digits_reach_the_modem() {
    let mut b = Bench::new(Faults::default());
    b.driver
        .handle_command(b.now, LineCommand::Dial("555;ATH".into()));
    let out = b.driver.poll_output();
    assert!(
        matches!(out, Some(DriverOutput::Event(LineEvent::Fault(_)))),
        "{out:?}"
    );
    assert!(b.driver.poll_output().is_none(), "nothing written to the modem");
}

fn linear(mulaw: &[u8]) -> Vec<i16> {
    mulaw.iter().map(|&c| ulaw_to_linear(c)).collect()
}

/// Goertzel share of `freq` in the last `samples` line samples heard.
fn level_of_last(heard: &[u8], samples: usize, freq: f64) -> f64 {
    let tail: Vec<i16> = heard
        .iter()
        .rev()
        .take(samples)
        .map(|&c| ulaw_to_linear(c))
        .collect();
    relative_level(&tail, freq, 8000.0)
}

#[test]
fn half_duplex_transmits_while_the_caller_talks_then_receives() {
    let mut b = Bench::new(Faults {
        no_vtr: true,
        ..Faults::default()
    });
    b.tone = Some(Tone::new(1000.0, 8000.0, 8000.0));
    // Answered when ringback stops (one ring, then 3 s): 1 s of tone, then quiet.
    b.dial(PARROT, Duration::from_secs(6));
    assert!(
        b.outcome()
            .contains(&LineEvent::Answered(AnswerSource::RingbackStopped)),
        "{:?}",
        b.events
    );
    b.heard.clear();
    b.tone_until = Some(b.now + Duration::from_secs(1));
    b.run(Duration::from_secs(3));
    assert!(b.driver.is_half_duplex());
    let turns: Vec<_> = b.streams.iter().flatten().copied().collect();
    assert!(
        turns
            .windows(3)
            .any(|w| w == [Stream::Receive, Stream::Transmit, Stream::Receive]),
        "receive, transmit while talking, receive again: {:?}",
        b.streams
    );
    assert_eq!(b.driver.stream(), Some(Stream::Receive));
    // The parrot repeats the second of tone once the line is quiet: heard on +VRX.
    let tone = some_block_has(&linear(&b.heard), 800, &[1000.0], 0.5);
    assert!(
        tone,
        "the parrot's playback heard in receive mode ({} bytes)",
        b.heard.len()
    );
    b.hang_up();
    assert_eq!(b.events.last(), Some(&LineEvent::Idle), "{:?}", b.events);
}

#[test]
fn keys_go_out_by_vts_and_come_back_through_the_echo() {
    for (faults, by_vts) in [
        (Faults::default(), true),
        (
            Faults {
                no_vts: true,
                ..Faults::default()
            },
            false,
        ),
    ] {
        let mut b = Bench::new(faults);
        assert_eq!(b.driver.has_tone_command(), by_vts, "probed with AT+VTS=?");
        b.tone = Some(Tone::new(1000.0, 0.0, 8000.0));
        b.dial(ECHO, Duration::from_secs(9));
        assert_eq!(b.driver.stream(), Some(Stream::Duplex));
        b.streams = vec![b.driver.stream()];
        b.heard.clear();
        b.driver.handle_command(b.now, LineCommand::Dtmf('5'));
        b.run(Duration::from_millis(600));
        // '5' is 770 + 1336 Hz; the echo returns it 300 ms later.
        let found = some_block_has(&linear(&b.heard), 400, &[770.0, 1336.0], 0.2);
        assert!(found, "the key came back (vts {by_vts})");
        let left_the_stream = b.streams.contains(&None);
        assert_eq!(
            left_the_stream, by_vts,
            "+VTS is sent in command mode: {:?}",
            b.streams
        );
        assert_eq!(b.driver.stream(), Some(Stream::Duplex), "back in full duplex");
        assert!(level_of_last(&b.heard, 400, 770.0) < 0.2, "and only once");
        b.hang_up();
        assert_eq!(b.events.last(), Some(&LineEvent::Idle));
    }
}

#[test]
fn a_key_on_a_half_duplex_line_goes_by_vts_and_receiving_resumes() {
    let mut b = Bench::new(Faults {
        no_vtr: true,
        ..Faults::default()
    });
    b.dial(ANNOUNCEMENT, Duration::from_secs(7));
    assert_eq!(b.driver.stream(), Some(Stream::Receive));
    assert!(level_of_last(&b.heard, 800, 1000.0) > 0.5, "announcement heard");
    b.streams = vec![b.driver.stream()];
    b.driver.handle_command(b.now, LineCommand::Dtmf('#'));
    b.run(Duration::from_secs(1));
    assert_eq!(b.streams, [Some(Stream::Receive), None, Some(Stream::Receive)]);
    assert!(
        level_of_last(&b.heard, 800, 1000.0) > 0.5,
        "announcement heard again"
    );
    b.hang_up();
    assert_eq!(b.events.last(), Some(&LineEvent::Idle));
}

/// A modem + sound card line: the driver's bench with the emulator's audio on its
/// audio ports, and the bench's card input playing a 1 kHz tone.
fn card_bench(faults: Faults) -> Bench {
    let mut b = Bench::with_audio(
        Faults {
            no_serial_audio: true,
            ..faults
        },
        LineAudio::SoundCard,
    );
    assert_eq!(b.events, [LineEvent::Ready], "initialised as usual");
    b.card_input = Some(Tone::new(1000.0, 8000.0, 8000.0));
    b
}

fn written(b: &Bench) -> String {
    String::from_utf8_lossy(&b.to_modem).into_owned()
}

#[test]
fn sound_card_line_dials_and_holds_the_line_while_the_card_carries_the_audio() {
    let mut b = card_bench(Faults::default());
    b.tone = Some(Tone::new(1000.0, 8000.0, 8000.0));
    b.dial(ECHO, Duration::from_secs(9));
    assert_eq!(
        b.outcome(),
        [
            LineEvent::Ringing,
            LineEvent::Answered(AnswerSource::RingbackStopped)
        ],
        "call progress from DLE events in command mode"
    );
    let commands = written(&b);
    for expected in ["AT+FCLASS=8\r", "AT+VLS=1\r", "ATDT5550100\r"] {
        assert!(commands.contains(expected), "{expected:?} in {commands:?}");
    }
    assert!(!commands.contains("AT+VTR") && !commands.contains("AT+VRX") && !commands.contains("AT+VTX"));
    assert_eq!(b.streams, [None], "never in a voice stream");
    // The last ringback 2.5 s after the dial, plus the 3 s gap: answered at 5.5 s, 3.5 s ago.
    // The card captured 1 kHz once answered, quiet before; the relay hears it only once answered.
    let samples: Vec<i16> = b.heard.iter().map(|&c| ulaw_to_linear(c)).collect();
    assert!(
        (24_000..=32_000).contains(&samples.len()),
        "the card's audio once answered: {} samples",
        samples.len()
    );
    assert!(relative_level(&samples, 1000.0, 8000.0) > 0.5);
    // What the relay sent the line went to the card, not to the serial port.
    let played: Vec<i16> = b.played.iter().map(|&c| ulaw_to_linear(c)).collect();
    assert!(played.len() >= 24_000, "{} samples played", played.len());
    assert!(relative_level(&played, 1000.0, 8000.0) > 0.5);
    assert!(
        b.from_modem.len() < 500,
        "only result codes and DLE events came over the serial port: {} bytes",
        b.from_modem.len()
    );
    b.hang_up();
    assert_eq!(b.events.last(), Some(&LineEvent::Idle));
    assert!(
        written(&b).ends_with("ATH\r"),
        "on hook by ATH: {:?}",
        written(&b)
    );
    let (played, heard) = (b.played.len(), b.heard.len());
    b.run(Duration::from_secs(1));
    assert_eq!(
        (b.played.len(), b.heard.len()),
        (played, heard),
        "no audio after the call"
    );
}

#[test]
fn sound_card_line_outcomes_and_far_end_hang_up() {
    for (number, expected) in [
        (BUSY, LineEvent::Busy),
        (INVALID, LineEvent::Invalid),
        (NEVER_ANSWERS, LineEvent::NoAnswer),
        (HANGS_UP, LineEvent::RemoteHangup(HangupReason::LoopBreak)),
    ] {
        let mut b = card_bench(Faults::default());
        b.dial(number, Duration::from_secs(25));
        let outcome = b.outcome();
        assert!(outcome.contains(&expected), "{number}: {outcome:?}");
        assert_eq!(b.events.last(), Some(&LineEvent::Idle), "{number}: back to idle");
        assert_eq!(b.streams, [None], "{number}: never streamed");
    }
    let mut b = card_bench(Faults {
        no_dial_tone: true,
        ..Faults::default()
    });
    b.dial(ECHO, Duration::from_secs(2));
    assert!(b.outcome().contains(&LineEvent::NoDialTone), "{:?}", b.events);
    assert_eq!(b.events.last(), Some(&LineEvent::Idle));
}

#[test]
fn sound_card_line_hears_an_unsolicited_no_carrier_as_the_far_end_hanging_up() {
    let mut b = card_bench(Faults::default());
    b.dial(POLARITY, Duration::from_secs(3));
    assert!(b.driver.is_answered(), "{:?}", b.events);
    // Some modems end a held call with a result code rather than <DLE>l.
    b.driver.handle_bytes(b.now, b"\r\nNO CARRIER\r\n");
    b.run(Duration::from_secs(1));
    assert!(
        b.outcome()
            .contains(&LineEvent::RemoteHangup(HangupReason::LoopBreak)),
        "{:?}",
        b.events
    );
    assert_eq!(b.events.last(), Some(&LineEvent::Idle));
}

#[test]
fn sound_card_line_keys_by_vts_in_command_mode_or_as_tones_on_the_card() {
    for (faults, by_vts) in [
        (Faults::default(), true),
        (
            Faults {
                no_vts: true,
                ..Faults::default()
            },
            false,
        ),
    ] {
        let mut b = card_bench(faults);
        b.tone = Some(Tone::new(1000.0, 0.0, 8000.0));
        b.dial(POLARITY, Duration::from_secs(3));
        assert!(b.driver.is_answered());
        b.played.clear();
        b.driver.handle_command(b.now, LineCommand::Dtmf('5'));
        b.run(Duration::from_millis(600));
        assert_eq!(written(&b).contains("AT+VTS=5\r"), by_vts, "{:?}", written(&b));
        // '5' is 770 + 1336 Hz: on the card only when the modem cannot play it.
        let on_card = some_block_has(&linear(&b.played), 400, &[770.0, 1336.0], 0.2);
        assert_eq!(on_card, !by_vts, "key tone on the card (vts {by_vts})");
        assert_eq!(b.streams, [None], "no stream entered after the key");
        b.hang_up();
        assert_eq!(b.events.last(), Some(&LineEvent::Idle));
    }
}

#[test]
fn a_serial_audio_driver_on_a_modem_without_serial_audio_faults_clearly() {
    let mut b = Bench::new(Faults {
        no_serial_audio: true,
        ..Faults::default()
    });
    b.dial(ECHO, Duration::from_secs(2));
    let fault = b.events.iter().find_map(|e| match e {
        LineEvent::Fault(what) => Some(what.clone()),
        _ => None,
    });
    assert!(
        fault.as_deref().is_some_and(|f| f.contains("HalfDuplex")),
        "+VTR and +VRX refused, said so: {:?}",
        b.events
    );
    assert_eq!(b.events.last(), Some(&LineEvent::Idle));
}

mod line_edge;
mod supervision;

/// An audio-ports modem (no audio over the serial port) that went off hook at
/// `start` with `+VLS=vls` and dials the echo number.
fn dialing_on_ports(start: Instant, vls: u8, hangup_after: Duration) -> Emulator {
    let faults = Faults {
        no_serial_audio: true,
        ..Faults::default()
    };
    let mut modem = Emulator::new(faults, hangup_after);
    modem.handle_bytes(start, format!("AT+VLS={vls}\rATDT{ECHO}\r").as_bytes());
    modem
}

/// An audio-ports modem off hook with `+VLS=vls`, dialing the echo number: a
/// 1 kHz tone into its microphone port for 2 s (simulated), what its speaker
/// port played.
fn ports_echo(vls: u8) -> Vec<i16> {
    let start = Instant::now();
    let mut modem = dialing_on_ports(start, vls, Duration::from_secs(60));
    let mut tone = Tone::new(1000.0, 8000.0, 8000.0);
    let mut speaker = Vec::new();
    let mut now = start;
    while now < start + Duration::from_secs(6) {
        now += Duration::from_millis(20);
        let chunk: Vec<i16> = (0..160).map(|_| tone.next_sample()).collect();
        modem.mic_in(&chunk);
        modem.handle_timeout(now);
        speaker.extend(modem.speaker_out());
    }
    speaker
}

/// The microphone port's playout buffer on a 10-minute call whose sound
/// server runs `ppm` off the modem's clock and stalls for 100 ms at 60 s (then
/// delivers its backlog at once): the most it held in 10-20 s and in the last minute.
fn mic_depths(ppm: i64) -> (usize, usize) {
    let start = Instant::now();
    let mut modem = dialing_on_ports(start, crate::emulator::VLS_PORTS, Duration::from_secs(3600));
    let mut tone = Tone::new(1000.0, 8000.0, 8000.0);
    let (mut fed, mut early, mut late) = (0i64, 0, 0);
    let ticks = 10 * 60 * 50;
    for n in 1..=ticks {
        let now = start + Duration::from_millis(20 * n as u64);
        let due = n * 160 * (1_000_000 + ppm) / 1_000_000;
        if !(3000..3005).contains(&n) {
            let chunk: Vec<i16> = (fed..due).map(|_| tone.next_sample()).collect();
            modem.mic_in(&chunk);
            fed = due;
        }
        modem.handle_timeout(now);
        let depth = modem.analogue().buffered();
        if (500..1000).contains(&n) {
            early = early.max(depth);
        }
        if n > ticks - 3000 {
            late = late.max(depth);
        }
    }
    (early, late)
}

#[test]
fn the_microphone_ports_delay_does_not_grow_with_drift_or_after_a_stall() {
    // Uncompensated, 1,000 ppm is 8 samples a second: 4,800 (0.6 s) standing
    // after 10 minutes, and the stall's 800 samples standing for good. Held
    // within a frame (20 ms) of the level early in the call.
    for ppm in [1000, 0, -1000] {
        let (early, late) = mic_depths(ppm);
        assert!(late < early + 160, "{ppm} ppm: {early} early, {late} late");
    }
}

#[test]
fn the_line_is_on_the_audio_ports_only_with_vls_7() {
    let heard = ports_echo(crate::emulator::VLS_PORTS);
    let tail = &heard[heard.len() - 4000..];
    assert!(
        relative_level(tail, 1000.0, 8000.0) > 0.5,
        "the echo of the microphone's tone is on the speaker port"
    );
    let heard = ports_echo(1);
    assert!(
        heard.iter().all(|s| s.unsigned_abs() < 100),
        "+VLS=1: the ports are not on the line"
    );
}
