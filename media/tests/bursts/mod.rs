//! What the sound card benches share: the feed (20 ms frames, silent but for a
//! 100 ms 1 kHz burst every second after a warm-up) and the timing of each
//! burst's onset in what comes back, to the sample: a batch that arrives at
//! `now` has its last sample at `now`, the ones before it 125 µs apart.
#![allow(clippy::disallowed_methods, reason = "an edge: it reads the real clock")]

use std::time::{Duration, Instant};

use offhook_media::dsp::tone::Tone;
use offhook_media::soundcard::FRAME;

/// A burst every 50 frames (1 s), 5 frames (100 ms) long, after the warm-up.
const EVERY: u64 = 50;
const BURST: u64 = 5;
/// Frames (20 ms) of warm-up: no burst, underruns not counted.
pub(crate) const WARM_UP: u64 = 100;
/// A sample this loud is the burst.
const LOUD: u16 = 2000;
/// Quiet samples that end a burst (50 ms).
const QUIET_END: u32 = 400;

/// The feed, and the round trips of the bursts heard back so far.
pub(crate) struct Bursts {
    tone: Tone,
    fed: u64,
    sent: Vec<Instant>,
    trips: Vec<Duration>,
    in_burst: bool,
    quiet_run: u32,
}

impl Bursts {
    pub(crate) fn new() -> Self {
        Self {
            tone: Tone::new(1000.0, 8000.0, 8000.0),
            fed: 0,
            sent: Vec::new(),
            trips: Vec::new(),
            in_burst: false,
            quiet_run: 0,
        }
    }

    /// Frames fed so far.
    pub(crate) fn fed(&self) -> u64 {
        self.fed
    }

    /// The next 20 ms to feed (linear); a burst's first frame is timed now.
    pub(crate) fn next_frame(&mut self) -> [i16; FRAME] {
        let loud = self.fed % EVERY < BURST && self.fed >= WARM_UP;
        if loud && self.fed.is_multiple_of(EVERY) {
            self.sent.push(Instant::now());
        }
        self.fed += 1;
        std::array::from_fn(|_| if loud { self.tone.next_sample() } else { 0 })
    }

    /// Samples that came back, the last of them at `now`.
    pub(crate) fn heard(&mut self, now: Instant, batch: &[i16]) {
        for (k, sample) in batch.iter().enumerate() {
            let loud = sample.unsigned_abs() > LOUD;
            if loud && !self.in_burst {
                let age = Duration::from_micros(125 * (batch.len() - 1 - k) as u64);
                if let Some(onset) = self.sent.get(self.trips.len()) {
                    self.trips.push((now - age).saturating_duration_since(*onset));
                }
            }
            self.quiet_run = if loud { 0 } else { self.quiet_run + 1 };
            self.in_burst = (self.in_burst || loud) && self.quiet_run < QUIET_END;
        }
    }

    /// Bursts sent and heard back, and the round trips' p50, p95 and max, less
    /// `known` (a delay of the path that is not ours, e.g. the echo number's).
    pub(crate) fn summary(&self, known: Duration) -> Summary {
        let mut sorted: Vec<Duration> = self.trips.iter().map(|t| t.saturating_sub(known)).collect();
        sorted.sort();
        let at = |q: f64| {
            let last = sorted.len().saturating_sub(1);
            sorted.get((last as f64 * q).round() as usize).copied()
        };
        Summary {
            sent: self.sent.len(),
            heard: sorted.len(),
            p50: at(0.5),
            p95: at(0.95),
            max: sorted.last().copied(),
        }
    }
}

/// See [`Bursts::summary`].
#[derive(Debug)]
pub(crate) struct Summary {
    pub(crate) sent: usize,
    pub(crate) heard: usize,
    pub(crate) p50: Option<Duration>,
    pub(crate) p95: Option<Duration>,
    pub(crate) max: Option<Duration>,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} bursts sent, {} heard back; round trip p50 {:?} p95 {:?} max {:?}",
            self.sent, self.heard, self.p50, self.p95, self.max
        )
    }
}
