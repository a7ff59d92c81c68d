//! The simulated telephone network behind the emulated modem: what each demo
//! number does once dialed, as a script of DLE events over time, and the audio the
//! far end sends (an echo 300 ms late, a 1 kHz tone, a parrot that repeats what it
//! heard once the caller is quiet, or silence).

use std::collections::VecDeque;
use std::time::Duration;

use crate::dsp::g711::{linear_to_ulaw, ulaw_to_linear};
use crate::dsp::tone::Tone;

/// Plays back what it hears 300 ms later; answers after two ringbacks.
pub const ECHO: &str = "5550100";
/// Answers and plays a 1 kHz tone.
pub const ANNOUNCEMENT: &str = "5550101";
/// Busy.
pub const BUSY: &str = "5550102";
/// Rings forever.
pub const NEVER_ANSWERS: &str = "5550103";
/// Special information tone: invalid number.
pub const INVALID: &str = "5550104";
/// Answers (echo), then hangs up after a while (loop break).
pub const HANGS_UP: &str = "5550105";
/// Echo that signals its answer by polarity reversal.
pub const POLARITY: &str = "5550106";
/// Parrot: records what it hears, and once the line has been quiet for
/// [`PARROT_QUIET`] plays it back (a half-duplex line can hear that).
pub const PARROT: &str = "5550107";

/// Quiet that makes the parrot speak.
pub const PARROT_QUIET: Duration = Duration::from_millis(600);
/// Longest recording the parrot keeps.
const PARROT_MAX: usize = 5 * 8000;
/// Sample level (of 32767) the parrot counts as sound.
const PARROT_LEVEL: u16 = 300;

/// Ringback cadence of the simulated exchange: one ring every 2 s (short, for the demo).
pub const RING_PERIOD: Duration = Duration::from_secs(2);
/// Echo delay.
pub const ECHO_DELAY: Duration = Duration::from_millis(300);

/// The far end's audio.
#[derive(Debug)]
pub enum FarAudio {
    /// Nothing (mu-law silence).
    Silence,
    /// What the line sends, delayed.
    Echo(VecDeque<u8>),
    /// A tone.
    Tone(Tone),
    /// What it heard until a pause, played back after the pause.
    Parrot {
        /// Heard so far (since the first sound).
        recording: Vec<u8>,
        /// Being played back.
        playback: VecDeque<u8>,
        /// Quiet samples since the last sound.
        quiet: usize,
    },
}

impl FarAudio {
    /// The next `len` mu-law bytes the far end sends.
    pub fn next(&mut self, len: usize) -> Vec<u8> {
        match self {
            Self::Silence => vec![0xFF; len],
            Self::Echo(buffer) => (0..len).map(|_| buffer.pop_front().unwrap_or(0xFF)).collect(),
            Self::Tone(tone) => (0..len).map(|_| linear_to_ulaw(tone.next_sample())).collect(),
            Self::Parrot { playback, .. } => (0..len).map(|_| playback.pop_front().unwrap_or(0xFF)).collect(),
        }
    }

    /// What the line sends to the far end.
    pub fn hear(&mut self, audio: &[u8]) {
        match self {
            Self::Echo(buffer) => buffer.extend(audio),
            Self::Parrot {
                recording,
                playback,
                quiet,
            } if playback.is_empty() => {
                let pause = PARROT_QUIET.as_millis() as usize * 8;
                for &code in audio {
                    if ulaw_to_linear(code).unsigned_abs() > PARROT_LEVEL {
                        *quiet = 0;
                    } else if recording.is_empty() {
                        continue;
                    } else {
                        *quiet += 1;
                    }
                    if recording.len() < PARROT_MAX {
                        recording.push(code);
                    }
                    if *quiet >= pause {
                        recording.truncate(recording.len().saturating_sub(*quiet));
                        playback.extend(recording.drain(..));
                        *quiet = 0;
                    }
                }
            }
            _ => {}
        }
    }
}

/// A call's script: DLE events at offsets from the dial, and the far audio.
#[derive(Debug)]
pub struct Script {
    /// (offset from dial, event code), in time order.
    pub events: Vec<(Duration, u8)>,
    /// When the far end answers (audio starts), if ever.
    pub answer_at: Option<Duration>,
    /// The far end's audio after the answer.
    pub audio: FarAudio,
}

impl Script {
    /// Takes the event codes due `elapsed` after the dial, in order.
    pub fn take_due(&mut self, elapsed: Duration) -> Vec<u8> {
        let due = self.events.iter().take_while(|(at, _)| *at <= elapsed).count();
        self.events.drain(..due).map(|(_, code)| code).collect()
    }
}

fn echo() -> FarAudio {
    // Pre-filled with 300 ms of silence: what is heard comes back 300 ms later.
    FarAudio::Echo(VecDeque::from(vec![0xFF; ECHO_DELAY.as_millis() as usize * 8]))
}

fn rings(count: u32) -> Vec<(Duration, u8)> {
    (0..count)
        .map(|n| (Duration::from_millis(500) + RING_PERIOD * n, b'r'))
        .collect()
}

/// The script of a dialed number; `hangup_after` applies to [`HANGS_UP`].
pub fn script(number: &str, hangup_after: Duration) -> Script {
    let after_two_rings = Duration::from_millis(500) + RING_PERIOD * 2;
    match number {
        ECHO => Script {
            events: rings(2),
            answer_at: Some(after_two_rings),
            audio: echo(),
        },
        ANNOUNCEMENT => Script {
            events: rings(1),
            answer_at: Some(Duration::from_millis(500) + RING_PERIOD),
            audio: FarAudio::Tone(Tone::new(1000.0, 8000.0, 8000.0)),
        },
        BUSY => Script {
            events: (1..=20).map(|n| (Duration::from_millis(500) * n, b'b')).collect(),
            answer_at: None,
            audio: FarAudio::Silence,
        },
        NEVER_ANSWERS => Script {
            events: rings(1000),
            answer_at: None,
            audio: FarAudio::Silence,
        },
        HANGS_UP => {
            let mut events = rings(2);
            events.push((after_two_rings + hangup_after, b'l'));
            Script {
                events,
                answer_at: Some(after_two_rings),
                audio: echo(),
            }
        }
        PARROT => Script {
            events: rings(1),
            answer_at: Some(Duration::from_millis(500) + RING_PERIOD),
            audio: FarAudio::Parrot {
                recording: Vec::new(),
                playback: VecDeque::new(),
                quiet: 0,
            },
        },
        POLARITY => Script {
            events: vec![(Duration::from_millis(500), b'r'), (Duration::from_secs(2), b'L')],
            answer_at: Some(Duration::from_secs(2)),
            audio: echo(),
        },
        _ => Script {
            events: vec![(Duration::from_millis(700), b'J')],
            answer_at: None,
            audio: FarAudio::Silence,
        },
    }
}
