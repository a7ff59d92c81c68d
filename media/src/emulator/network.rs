//! The simulated telephone network behind the emulated modem: what each demo
//! number does once dialed, as a script of DLE events over time, the line's own
//! call-progress audio before the answer (a country's E.180 ringback or busy tone,
//! [`Exchange`]), and the audio the far end sends (an echo 300 ms late, a 1 kHz
//! tone, a parrot that repeats what it heard once the caller is quiet, a spoken
//! greeting, or silence).

use std::collections::VecDeque;
use std::time::Duration;

use crate::dsp::cadence::{CadenceTone, Country};
use crate::dsp::g711::{linear_to_ulaw, ulaw_to_linear};
use crate::dsp::speech::Greeting;
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

/// Answers after [`Exchange::greeting_rings`] rings with a spoken greeting
/// ([`GREETING_SYLLABLES`] x 250 ms of a speech-like signal), then silence.
pub const GREETS: &str = "5550108";

/// Syllables of [`GREETS`]'s greeting.
pub const GREETING_SYLLABLES: u64 = 12;
/// When the exchange starts ringing (or sounding busy) after the dial.
pub const FIRST_RING: Duration = Duration::from_millis(500);

/// How the simulated exchange sounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exchange {
    /// Whose E.180 tones play on the line; `None`: the short demo cadence, a
    /// `<DLE>r` every [`RING_PERIOD`] and no call-progress audio.
    pub country: Option<Country>,
    /// Rings before [`GREETS`] answers.
    pub greeting_rings: u32,
    /// The modem's clock error and the line's hybrid echo.
    pub line: super::line::LineModel,
}

impl Default for Exchange {
    fn default() -> Self {
        Self {
            country: None,
            greeting_rings: 2,
            line: super::line::LineModel::default(),
        }
    }
}

impl Exchange {
    fn rings(&self, count: u32) -> Vec<(Duration, u8)> {
        let period = self.country.map_or(RING_PERIOD, |c| c.ringback().period());
        (0..count).map(|n| (FIRST_RING + period * n, b'r')).collect()
    }

    /// When the far end picks up after `rings` rings: with a country's cadence,
    /// halfway through the silence after the last burst.
    pub fn answer_after(&self, rings: u32) -> Duration {
        match self.country {
            None => FIRST_RING + RING_PERIOD * rings,
            Some(country) => {
                let cadence = country.ringback();
                let span = cadence.burst_span();
                FIRST_RING + cadence.period() * rings.saturating_sub(1) + span + (cadence.period() - span) / 2
            }
        }
    }

    /// The line's audio before the answer: ringback, from [`FIRST_RING`].
    fn ringback(&self) -> FarAudio {
        self.country.map_or(FarAudio::Silence, |c| {
            FarAudio::Progress(CadenceTone::starting_after(c.ringback(), FIRST_RING))
        })
    }

    fn busy(&self) -> Script {
        match self.country {
            None => Script {
                events: (1..=20).map(|n| (FIRST_RING * n, b'b')).collect(),
                answer_at: None,
                before_answer: FarAudio::Silence,
                audio: FarAudio::Silence,
            },
            // A modem reports busy once it has heard two cycles of the cadence.
            Some(country) => Script {
                events: (2..=21)
                    .map(|n| (FIRST_RING + country.busy().period() * n, b'b'))
                    .collect(),
                answer_at: None,
                before_answer: FarAudio::Progress(CadenceTone::starting_after(country.busy(), FIRST_RING)),
                audio: FarAudio::Silence,
            },
        }
    }
}

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
    /// A call-progress tone (ringback, busy).
    Progress(CadenceTone),
    /// A spoken greeting.
    Greeting(Greeting),
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
            Self::Progress(tone) => tone.next(len),
            Self::Greeting(greeting) => greeting.next(len),
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
    /// The line's audio until then.
    pub before_answer: FarAudio,
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

/// The script of a dialed number on `exchange`; `hangup_after` applies to [`HANGS_UP`].
pub fn script(number: &str, hangup_after: Duration, exchange: &Exchange) -> Script {
    let answering = |rings: u32, audio: FarAudio| Script {
        events: exchange.rings(rings),
        answer_at: Some(exchange.answer_after(rings)),
        before_answer: exchange.ringback(),
        audio,
    };
    match number {
        ECHO => answering(2, echo()),
        ANNOUNCEMENT => answering(1, FarAudio::Tone(Tone::new(1000.0, 8000.0, 8000.0))),
        GREETS => answering(
            exchange.greeting_rings,
            FarAudio::Greeting(Greeting::new(GREETING_SYLLABLES)),
        ),
        BUSY => exchange.busy(),
        NEVER_ANSWERS => Script {
            events: exchange.rings(1000),
            answer_at: None,
            before_answer: exchange.ringback(),
            audio: FarAudio::Silence,
        },
        HANGS_UP => {
            let mut script = answering(2, echo());
            script
                .events
                .push((exchange.answer_after(2) + hangup_after, b'l'));
            script
        }
        PARROT => answering(
            1,
            FarAudio::Parrot {
                recording: Vec::new(),
                playback: VecDeque::new(),
                quiet: 0,
            },
        ),
        POLARITY => {
            let mut script = answering(1, echo());
            let at = match exchange.country {
                None => Duration::from_secs(2),
                Some(_) => exchange.answer_after(1),
            };
            script.answer_at = Some(at);
            script.events.push((at, b'L'));
            script
        }
        _ => Script {
            events: vec![(Duration::from_millis(700), b'J')],
            answer_at: None,
            before_answer: FarAudio::Silence,
            audio: FarAudio::Silence,
        },
    }
}
