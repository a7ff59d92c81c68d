//! The sound card of the modem + sound card line (DESIGN "Lines"): the modem
//! dials and holds the line while the audio goes through a sound card wired to
//! its audio ports. Here is the real-time edge, the same for both hosts: a play
//! side pops line audio (8 kHz, mono, 16-bit) from a lock-free SPSC ring (rtrb)
//! 20 ms at a time, a capture side pushes what the line sends into another; the
//! device threads touch only the rings and atomics. An underrun plays silence and
//! is counted; a full capture ring drops the sample and counts it.
//!
//! Latency fit for talk: both rings are bounded ([`PLAY_QUEUE`], [`CAPTURE_QUEUE`])
//! and each host runs 20 ms periods:
//! - PulseAudio / PipeWire ([`pulse`]): libpulse's simple API with explicit buffer
//!   attributes (40 ms target, 20 ms requests and fragments); the server converts
//!   our 8 kHz to whatever the sink runs at.
//! - ALSA `hw:` / `plughw:` ([`alsa`]): cpal's ALSA host with a fixed 20 ms
//!   period (two periods buffered); a card that cannot run at 8 kHz runs at
//!   48 kHz (or its highest rate) and [`crate::dsp::resample`] converts.
//!
//! The relay side writes and reads the rings without ever blocking the device:
//! 20 ms mu-law frames in ([`SoundCard::play_ulaw`]) and out
//! ([`SoundCard::captured_frame`]); G.711 conversion happens there. Underruns are
//! counted while a call is on the line ([`CardCounters::in_call`]): between calls
//! silence is what the card should play. The operator's view ([`CardCounters`]):
//! device names, the rate the card runs at, the device latency each way as the
//! host reports it, and the play queue's depth (observable for the clock drift
//! compensation at the device edge). Device names are the host's (PulseAudio sink
//! and source names, e.g. `alsa_output.usb-….analog-mono` and its `….monitor`;
//! ALSA PCM names, e.g. `hw:CARD=Device,DEV=0`); `default` is the host's default.

mod alsa;
pub(crate) mod pulse;
#[cfg(feature = "testing")]
pub mod testing;

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use cpal::HostId;

use crate::dsp::g711::{linear_to_ulaw, ulaw_to_linear};
use crate::modem::drift::DriftCompensator;

/// The line's sample rate.
pub const RATE: u32 = 8000;
/// One 20 ms frame (the device period) of line audio.
pub const FRAME: usize = 160;
/// The play ring's bound: 4 frames (80 ms) waiting for the card at most; what
/// the relay gives beyond it is dropped and counted. It is also the most a
/// standing queue (after a stall of the card's thread) can add to the latency.
pub const PLAY_QUEUE: usize = 4 * FRAME;
/// The capture ring's bound: 10 frames (200 ms) the relay has not read yet.
pub const CAPTURE_QUEUE: usize = 10 * FRAME;

/// Frames (20 ms) over which the play ring's lowest depth is taken (1 s).
const STANDING_WINDOW: u32 = 50;
/// The least standing depth of the play ring the drift compensator holds
/// (48 samples, 6 ms): the margin that rides out the jitter of our 20 ms
/// feed against the card's periods. Without it the depth stood where the
/// call's first seconds left it, often a few samples, and a feed a
/// millisecond late played silence.
const STANDING_FLOOR: f64 = 48.0;

/// The name that picks the host's default device.
pub const DEFAULT_DEVICE: &str = "default";

/// Why the sound card could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum SoundCardError {
    /// No such sound server (e.g. PulseAudio not running).
    #[error("sound host {0:?} unavailable: {1}")]
    Host(HostId, String),
    /// No device of that name.
    #[error("no {direction} device named '{name}'")]
    NoDevice {
        /// `output` or `input`.
        direction: &'static str,
        /// The name asked for.
        name: String,
    },
    /// The device refused the stream.
    #[error("device '{0}' refused a 16-bit stream with 20 ms periods: {1}")]
    Stream(String, String),
}

/// Counters and gauges the device threads keep (and the line's edge: its call
/// state and its drift compensator's counts), and what the card is.
#[derive(Debug, Default)]
pub struct CardCounters {
    /// The playback device's name as configured.
    pub playback: String,
    /// The capture device's name as configured.
    pub capture: String,
    /// A call is on the line: missing audio is an underrun (set by the line's edge).
    pub in_call: AtomicBool,
    /// Output samples played as silence for lack of line audio during a call.
    pub underruns: AtomicU64,
    /// Input samples dropped because the relay did not read them in time.
    pub overruns: AtomicU64,
    /// Samples played from line audio.
    pub played: AtomicU64,
    /// Samples captured.
    pub captured: AtomicU64,
    /// Samples the relay gave while the play ring was full ([`PLAY_QUEUE`]).
    pub dropped: AtomicU64,
    /// Samples the drift compensator took out of the line audio to hold the
    /// play ring's depth (the card's clock slow against ours, or what a stall left).
    pub drift_dropped: AtomicU64,
    /// Samples the drift compensator repeated in the line audio (the card's clock fast).
    pub drift_repeated: AtomicU64,
    /// The rate the card runs at (Hz); [`RATE`] unless resampled.
    pub rate: AtomicU32,
    /// Device latency of playback as the host last reported it (µs): from a
    /// sample leaving our ring to the card's output.
    pub playback_latency_us: AtomicU64,
    /// Device latency of capture (µs): from the card's input to our ring.
    pub capture_latency_us: AtomicU64,
    /// Samples waiting in the play ring at the last device period.
    pub queued: AtomicU64,
    /// Why the card stopped (a stream error, the device gone), once it has:
    /// set by the device thread that stopped, read by the line's edge, which
    /// faults the line.
    pub failed: OnceLock<String>,
    /// Woken when the capture thread has pushed a period, and when the card
    /// fails: the line's edge takes the audio as it comes, not at a 20 ms poll
    /// of its own (which added up to a period of latency).
    pub capture_ready: tokio::sync::Notify,
}

/// A reading of [`CardCounters`]' counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CardCounts {
    /// See [`CardCounters::underruns`].
    pub underruns: u64,
    /// See [`CardCounters::overruns`].
    pub overruns: u64,
    /// See [`CardCounters::played`].
    pub played: u64,
    /// See [`CardCounters::captured`].
    pub captured: u64,
    /// See [`CardCounters::dropped`].
    pub dropped: u64,
    /// See [`CardCounters::drift_dropped`].
    pub drift_dropped: u64,
    /// See [`CardCounters::drift_repeated`].
    pub drift_repeated: u64,
}

impl CardCounters {
    /// Counters of a card with these devices.
    pub fn new(playback: &str, capture: &str) -> Self {
        Self {
            playback: playback.to_owned(),
            capture: capture.to_owned(),
            rate: AtomicU32::new(RATE),
            ..Self::default()
        }
    }

    /// The card stopped: `why` names the device and the error (the first
    /// failure is kept; the other direction usually follows it).
    pub fn fail(&self, why: String) {
        let _ = self.failed.set(why);
        self.capture_ready.notify_one();
    }

    /// The counters now.
    pub fn read(&self) -> CardCounts {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CardCounts {
            underruns: get(&self.underruns),
            overruns: get(&self.overruns),
            played: get(&self.played),
            captured: get(&self.captured),
            dropped: get(&self.dropped),
            drift_dropped: get(&self.drift_dropped),
            drift_repeated: get(&self.drift_repeated),
        }
    }
}

impl CardCounts {
    /// What was counted since `earlier`.
    pub fn since(&self, earlier: &Self) -> Self {
        Self {
            underruns: self.underruns.saturating_sub(earlier.underruns),
            overruns: self.overruns.saturating_sub(earlier.overruns),
            played: self.played.saturating_sub(earlier.played),
            captured: self.captured.saturating_sub(earlier.captured),
            dropped: self.dropped.saturating_sub(earlier.dropped),
            drift_dropped: self.drift_dropped.saturating_sub(earlier.drift_dropped),
            drift_repeated: self.drift_repeated.saturating_sub(earlier.drift_repeated),
        }
    }
}

impl std::fmt::Display for CardCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "played={};underruns={};captured={};overruns={};dropped={};drift_dropped={};drift_repeated={}",
            self.played,
            self.underruns,
            self.captured,
            self.overruns,
            self.dropped,
            self.drift_dropped,
            self.drift_repeated
        )
    }
}

/// The play side of a device thread: pops line audio, plays silence for what is
/// missing, and counts per period (no lock, no allocation).
struct Player {
    ring: rtrb::Consumer<i16>,
    counters: Arc<CardCounters>,
    played: u64,
    missing: u64,
}

impl Player {
    fn new(ring: rtrb::Consumer<i16>, counters: Arc<CardCounters>) -> Self {
        Self {
            ring,
            counters,
            played: 0,
            missing: 0,
        }
    }

    /// The next line sample to play.
    fn next(&mut self) -> i16 {
        match self.ring.pop() {
            Ok(sample) => {
                self.played += 1;
                sample
            }
            Err(_) => {
                self.missing += 1;
                0
            }
        }
    }

    /// Publishes what this period played, and the depth left in the ring.
    fn period_done(&mut self) {
        let c = &self.counters;
        c.played
            .fetch_add(std::mem::take(&mut self.played), Ordering::Relaxed);
        let missing = std::mem::take(&mut self.missing);
        if c.in_call.load(Ordering::Relaxed) {
            c.underruns.fetch_add(missing, Ordering::Relaxed);
        }
        c.queued.store(self.ring.slots() as u64, Ordering::Relaxed);
    }
}

/// The capture side of a device thread: pushes line samples, drops and counts
/// what the full ring has no room for.
struct Recorder {
    ring: rtrb::Producer<i16>,
    counters: Arc<CardCounters>,
    captured: u64,
    lost: u64,
}

impl Recorder {
    fn new(ring: rtrb::Producer<i16>, counters: Arc<CardCounters>) -> Self {
        Self {
            ring,
            counters,
            captured: 0,
            lost: 0,
        }
    }

    /// Takes one captured line sample.
    fn put(&mut self, sample: i16) {
        match self.ring.push(sample) {
            Ok(()) => self.captured += 1,
            Err(_) => self.lost += 1,
        }
    }

    /// Publishes what this period captured.
    fn period_done(&mut self) {
        let c = &self.counters;
        c.captured
            .fetch_add(std::mem::take(&mut self.captured), Ordering::Relaxed);
        c.overruns
            .fetch_add(std::mem::take(&mut self.lost), Ordering::Relaxed);
        c.capture_ready.notify_one();
    }
}

/// An open sound card: write line audio to `to_line`, read it from `from_line`.
pub struct SoundCard {
    /// Samples to play (what goes into the phone line), at most [`PLAY_QUEUE`].
    pub to_line: rtrb::Producer<i16>,
    /// Samples captured (what comes from the phone line).
    pub from_line: rtrb::Consumer<i16>,
    /// What the device threads counted.
    pub counters: Arc<CardCounters>,
    /// Holds what stands in the play ring at its level early in the call: the
    /// card's clock against the relay's, and what a stall of the card left.
    drift: DriftCompensator,
    /// The depth that stands in the play ring.
    standing: StandingDepth,
    /// Keeps the host's streams running; dropping it stops them.
    _streams: Box<dyn Send>,
}

impl std::fmt::Debug for SoundCard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SoundCard")
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

/// Opens `output` (played into the line) and `input` (captured from it) of
/// `host` (PulseAudio or ALSA).
pub fn open(host: HostId, output: &str, input: &str) -> Result<SoundCard, SoundCardError> {
    let counters = Arc::new(CardCounters::new(output, input));
    let (to_line, playing) = rtrb::RingBuffer::<i16>::new(PLAY_QUEUE);
    let (capturing, from_line) = rtrb::RingBuffer::<i16>::new(CAPTURE_QUEUE);
    let player = Player::new(playing, counters.clone());
    let recorder = Recorder::new(capturing, counters.clone());
    let streams = match host {
        HostId::PulseAudio => pulse::open(output, input, player, recorder)?,
        _ => alsa::open(host, output, input, player, recorder)?,
    };
    Ok(SoundCard {
        to_line,
        from_line,
        counters,
        drift: DriftCompensator::with_floor(STANDING_FLOOR),
        standing: StandingDepth::default(),
        _streams: streams,
    })
}

/// The play ring's lowest depth in this window of [`STANDING_WINDOW`] frames,
/// and in the last whole one: what stands in the ring whatever the phase of
/// the card's periods against our frames (the depth at one push is 0 or a
/// frame by that phase alone, and chasing it only adds underruns).
#[derive(Debug)]
struct StandingDepth {
    lowest: usize,
    frames: u32,
    last_window: usize,
}

impl Default for StandingDepth {
    fn default() -> Self {
        Self {
            lowest: usize::MAX,
            frames: 0,
            last_window: 0,
        }
    }
}

impl StandingDepth {
    /// The ring is `depth` samples deep before a frame goes in: the lowest
    /// depth of the last whole window.
    fn observe(&mut self, depth: usize) -> usize {
        self.lowest = self.lowest.min(depth);
        self.frames += 1;
        if self.frames == STANDING_WINDOW {
            (self.last_window, self.lowest, self.frames) = (self.lowest, usize::MAX, 0);
        }
        self.last_window
    }
}

impl SoundCard {
    /// A call starts on the line: the play ring's depth is measured afresh
    /// (each call's feed has its own phase against the card's periods).
    pub fn call_started(&mut self) {
        self.drift = DriftCompensator::with_floor(STANDING_FLOOR);
        self.standing = StandingDepth::default();
    }

    /// Queues 8 kHz mu-law to play into the line, a sample dropped or repeated
    /// in a quiet frame when the ring's depth moved off its level (drift
    /// compensation at the device edge, [`DriftCompensator`]); what finds the
    /// ring full (the card stalled) is dropped and counted.
    pub fn play_ulaw(&mut self, mulaw: &[u8]) {
        let mut mulaw = mulaw.to_vec();
        let standing = self.standing.observe(PLAY_QUEUE - self.to_line.slots());
        let before = (self.drift.dropped, self.drift.inserted);
        self.drift.adjust(standing as f64, &mut mulaw);
        let c = &self.counters;
        c.drift_dropped
            .fetch_add(self.drift.dropped - before.0, Ordering::Relaxed);
        c.drift_repeated
            .fetch_add(self.drift.inserted - before.1, Ordering::Relaxed);
        let room = self.to_line.slots().min(mulaw.len());
        let dropped = mulaw.len() - room;
        for &code in &mulaw[..room] {
            // The ring has room for `room` samples: checked above, and only we push.
            let _ = self.to_line.push(ulaw_to_linear(code));
        }
        if dropped > 0 {
            self.counters.dropped.fetch_add(dropped as u64, Ordering::Relaxed);
        }
    }

    /// The next whole 20 ms frame captured from the line, as mu-law.
    pub fn captured_frame(&mut self) -> Option<[u8; FRAME]> {
        let chunk = self.from_line.read_chunk(FRAME).ok()?;
        let mut frame = [0xFF; FRAME];
        let (a, b) = chunk.as_slices();
        for (code, &sample) in frame.iter_mut().zip(a.iter().chain(b)) {
            *code = linear_to_ulaw(sample);
        }
        chunk.commit_all();
        Some(frame)
    }
}
