//! Clock drift compensation at the device edge, sans-IO. The relay writes 20 ms
//! of audio per tick of its own clock, while the modem plays it at its crystal's
//! 8000 Hz ± error: the modem's playout buffer would slowly fill (latency creep)
//! or drain (underrun glitches). In a full-duplex stream the modem sends us
//! exactly one sample per sample it plays, so samples written less samples
//! received is its buffer depth (plus a constant): that measured depth, smoothed,
//! is held at its level after [`WARMUP`] by dropping or repeating one sample, in a
//! quiet frame where one comes within [`MAX_WAIT`], at the frame's quietest sample.
//! A depth more than a frame over its level is a step, not a drift (a stall of
//! one side left that much standing): the whole frame is dropped, on the same
//! terms, until the depth is back within a frame.
//! The same holds the other queues at the edge ([`DriftCompensator::adjust`]
//! with the queue's depth): from the modem's clock to an RTP/AVP leg's 20 ms
//! packet clock (the sender's backlog), from the relay's clock to a sound
//! card's (its play ring), and in the emulated modem from the sound server's
//! clock to its own (the microphone port's playout buffer). A queue whose
//! early level is too shallow to ride out the jitter of its feed gets a floor
//! ([`DriftCompensator::with_floor`]): the level held is at least that.

use crate::dsp::g711::ulaw_to_linear;

/// Frames (20 ms) before the depth's level is taken as the target.
pub const WARMUP: u32 = 250;
/// Smoothing of the measured depth, in frames (an exponential average).
const SMOOTHING: f64 = 64.0;
/// Off the target by more than this many samples (2 ms): correct.
pub const DEADBAND: f64 = 16.0;
/// Mean |sample| (of 32767) under which a frame is quiet enough to correct in.
const QUIET: i32 = 400;
/// Frames a due correction waits for a quiet frame before it is made anyway.
const MAX_WAIT: u32 = 50;

/// The compensator of one full-duplex stream (see the module comment).
#[derive(Debug, Default, Clone)]
pub struct DriftCompensator {
    written: u64,
    /// Samples received since the first write.
    received: u64,
    frames: u32,
    /// Smoothed depth (samples written - received), once writing started.
    level: Option<f64>,
    target: Option<f64>,
    /// Frames a due correction has waited.
    waited: u32,
    /// The least level held, whatever the early level was.
    floor: Option<f64>,
    /// Samples dropped so far.
    pub dropped: u64,
    /// Samples repeated so far.
    pub inserted: u64,
}

impl DriftCompensator {
    /// A compensator that holds the depth at its early level, or at `floor`
    /// samples where that level is lower (it repeats samples up to it).
    pub fn with_floor(floor: f64) -> Self {
        Self {
            floor: Some(floor),
            ..Self::default()
        }
    }

    /// `count` samples came from the modem.
    pub fn on_received(&mut self, count: usize) {
        if self.level.is_some() {
            self.received += count as u64;
        }
    }

    /// A frame about to be written to the modem: a sample is dropped from it or
    /// repeated in it when the modem's buffer has drifted from its level.
    pub fn on_write(&mut self, frame: &mut Vec<u8>) {
        let depth = self.written as f64 - self.received as f64;
        self.adjust(depth, frame);
        self.written += frame.len() as u64;
    }

    /// A frame (mu-law) about to enter a queue `depth` samples deep: a sample
    /// is dropped from it or repeated in it when the depth has drifted from its level.
    pub fn adjust(&mut self, depth: f64, frame: &mut Vec<u8>) {
        let level = self.level.map_or(depth, |l| l + (depth - l) / SMOOTHING);
        self.level = Some(level);
        self.frames = self.frames.saturating_add(1);
        if self.frames == WARMUP {
            self.target = Some(self.floor.map_or(level, |floor| level.max(floor)));
        }
        let off = self.target.map_or(0.0, |t| level - t);
        if off.abs() > DEADBAND && !frame.is_empty() {
            let loudness = frame
                .iter()
                .map(|&c| i32::from(ulaw_to_linear(c)).abs())
                .sum::<i32>()
                / frame.len() as i32;
            if loudness < QUIET || self.waited >= MAX_WAIT {
                let quietest = (0..frame.len())
                    .min_by_key(|&i| ulaw_to_linear(frame[i]).unsigned_abs())
                    .unwrap_or(0);
                let step = if off > frame.len() as f64 {
                    let len = frame.len();
                    frame.clear();
                    self.dropped += len as u64;
                    -(len as f64)
                } else if off > 0.0 {
                    frame.remove(quietest);
                    self.dropped += 1;
                    -1.0
                } else {
                    frame.insert(quietest, frame[quietest]);
                    self.inserted += 1;
                    1.0
                };
                // The depth moved by one sample now; the average need not catch up.
                self.level = Some(level + step);
                self.waited = 0;
            } else {
                self.waited += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A modem whose clock runs `ppm` fast: each 20 ms it plays (and sends back)
    /// 160·(1 + ppm·1e-6) samples on average. Returns the depth range after warmup.
    fn run(ppm: i64, frames: u64, compensate: bool) -> (i64, i64) {
        let mut comp = DriftCompensator::default();
        let mut buffer: i64 = 0;
        let mut played: u64 = 0;
        let (mut low, mut high) = (i64::MAX, i64::MIN);
        for n in 1..=frames {
            let mut frame = vec![0xFF; 160];
            if compensate {
                comp.on_write(&mut frame);
            }
            buffer += frame.len() as i64;
            let due = (n as i64 * 160 * (1_000_000 + ppm) / 1_000_000) as u64;
            let count = due - played;
            played = due;
            buffer -= count as i64;
            comp.on_received(count as usize);
            if n > u64::from(WARMUP) * 2 {
                low = low.min(buffer);
                high = high.max(buffer);
            }
        }
        (low, high)
    }

    #[test]
    fn what_a_stall_left_standing_goes_within_seconds_even_in_loud_audio() {
        // A queue fed a loud frame per tick and played a frame per tick, whose
        // player stalls for 5 ticks at 20 s (800 samples then stand).
        let loud = crate::dsp::g711::linear_to_ulaw(8000);
        let mut comp = DriftCompensator::default();
        let (mut depth, mut before, mut after) = (0usize, 0usize, 0usize);
        for n in 0..3000 {
            let mut frame = vec![loud; 160];
            comp.adjust(depth as f64, &mut frame);
            depth += frame.len();
            if !(1000..1005).contains(&n) {
                depth = depth.saturating_sub(160);
            }
            match n {
                999 => before = depth,
                2999 => after = depth,
                _ => {}
            }
        }
        // Back within a frame (the rest goes a sample at a time, a sample a
        // second in loud audio).
        assert!(
            after < before + 160,
            "{before} before the stall, {after} 40 s after"
        );
        assert!(comp.dropped >= 640, "{}", comp.dropped);
    }

    #[test]
    fn a_floor_raises_a_shallow_queue_to_it_and_holds_it_there() {
        // A queue whose depth, as measured, stands at 2 samples: it is raised
        // to its floor of 48 (within the deadband) and stays there.
        let mut comp = DriftCompensator::with_floor(48.0);
        let mut depth = 2.0;
        for _ in 0..(WARMUP + 500) {
            let mut frame = vec![0xFF; 160];
            comp.adjust(depth, &mut frame);
            depth += frame.len() as f64 - 160.0;
        }
        assert!((48.0 - DEADBAND..=48.0 + DEADBAND).contains(&depth), "{depth}");
        assert_eq!(comp.dropped, 0);
        assert!(comp.inserted >= 30, "{}", comp.inserted);
    }

    #[test]
    fn holds_the_depth_at_plus_and_minus_100_ppm() {
        // 30 minutes.
        let frames = 30 * 60 * 50;
        for ppm in [100, -100] {
            let (low, high) = run(ppm, frames, true);
            assert!(high - low <= 2 * DEADBAND as i64 + 4, "{ppm} ppm: {low}..{high}");
            let (low, high) = run(ppm, frames, false);
            assert!(high - low > 1000, "{ppm} ppm uncompensated: {low}..{high}");
        }
    }
}
