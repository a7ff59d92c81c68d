//! The real driver against the emulator with simulated time: whole calls in
//! milliseconds of test time, every demo number and fault switch, each ending
//! with the line idle again.

use std::time::{Duration, Instant};

use super::network::*;
use super::{Emulator, Faults};
use crate::dsp::g711::{linear_to_ulaw, ulaw_to_linear};
use crate::dsp::goertzel::{relative_level, some_block_has};
use crate::dsp::tone::Tone;
use crate::modem::driver::Stream;
use crate::modem::{
    AnswerHow, DriverConfig, DriverOutput, HangupReason, LineCommand, LineEvent, ModemDriver,
};

struct Bench {
    now: Instant,
    driver: ModemDriver,
    modem: Emulator,
    events: Vec<LineEvent>,
    heard: Vec<u8>,
    tone: Option<Tone>,
    /// After this, the relay's side sends silence instead of the tone.
    tone_until: Option<Instant>,
    /// The modem's streams as they changed (`None`: command mode).
    streams: Vec<Option<Stream>>,
    step: u64,
}

impl Bench {
    fn new(faults: Faults) -> Self {
        let now = Instant::now();
        let config = DriverConfig {
            no_answer: Duration::from_secs(20),
            ..DriverConfig::default()
        };
        let mut bench = Self {
            now,
            driver: ModemDriver::new(config, now),
            modem: Emulator::new(faults, Duration::from_secs(3)),
            events: Vec::new(),
            heard: Vec::new(),
            tone: None,
            tone_until: None,
            streams: vec![None],
            step: 0,
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
                    DriverOutput::Write(bytes) => self.modem.handle_bytes(self.now, &bytes),
                    DriverOutput::Event(LineEvent::Audio(audio)) => self.heard.extend(audio),
                    DriverOutput::Event(event) => self.events.push(event),
                }
            }
            if let Some(bytes) = self.modem.poll_transmit() {
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
            let talking = self.tone_until.is_none_or(|until| self.now < until);
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
            LineEvent::Answered(AnswerHow::RingbackStopped)
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
            .contains(&LineEvent::Answered(AnswerHow::PolarityReversal))
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
            .contains(&LineEvent::Answered(AnswerHow::RingbackStopped)),
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
