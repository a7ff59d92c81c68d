//! A line echo canceller (G.168 style) for the line -> caller path: an NLMS
//! adaptive FIR of [`TAPS`] taps (128 ms at 8 kHz: the modem's playout buffer
//! plus a hybrid's 10–40 ms delay and its short impulse response) models the
//! 2-wire hybrid's echo of what we play into the line and subtracts it from what
//! the line sends back; a Geigel detector freezes adaptation while the far end
//! talks (double talk), so the callee's voice is never learnt and cancelled. An
//! echo later than the filter (the echo test number's 300 ms loopback) is not
//! modelled and passes through, as it must.
//!
//! Our own code rather than a crate: the maintained ones (`webrtc-audio-processing`,
//! `speexdsp` bindings) build a C/C++ library (meson/abseil, or pkg-config'd
//! libspeexdsp) into every build for one filter of some 60 lines, and their AEC
//! is tuned for acoustic echo at 16–48 kHz rather than a line's short, linear echo.

/// Filter length in samples (128 ms at 8 kHz).
pub const TAPS: usize = 1024;
/// NLMS step size.
const MU: f32 = 0.4;
/// Geigel threshold: near-end louder than 0.7 of the recent far-end peak is taken
/// for double talk (a hybrid's echo returns at least 6 dB down, but its dispersed
/// peak can come within 3 dB of the far end's).
const GEIGEL: f32 = 0.7;
/// Samples adaptation stays frozen after double talk was last seen (30 ms).
const HANGOVER: u32 = 240;
/// Samples per block of the far-end peak window.
const BLOCK: usize = 128;
/// Regularisation of the NLMS step (a quiet reference adapts little).
const EPSILON: f32 = TAPS as f32 * 64.0 * 64.0;

/// The canceller (see the module comment).
#[derive(Debug, Clone)]
pub struct EchoCanceller {
    weights: Vec<f32>,
    /// The reference (what was played into the line), twice over so that the
    /// newest [`TAPS`] samples are always one contiguous slice.
    history: Vec<f32>,
    pos: usize,
    /// Energy of the reference in the filter, and its samples that are not zero.
    energy: f64,
    sounding: usize,
    /// Peak |reference| of each [`BLOCK`] of the window, and of the block being filled.
    peaks: Vec<f32>,
    block_peak: f32,
    in_block: usize,
    /// Samples until adaptation may resume after double talk.
    hold: u32,
}

impl Default for EchoCanceller {
    fn default() -> Self {
        Self {
            weights: vec![0.0; TAPS],
            history: vec![0.0; 2 * TAPS],
            pos: 0,
            energy: 0.0,
            sounding: 0,
            peaks: vec![0.0; TAPS / BLOCK + 1],
            block_peak: 0.0,
            in_block: 0,
            hold: 0,
        }
    }
}

impl EchoCanceller {
    /// Whether the last sample was taken for double talk (adaptation frozen).
    pub fn double_talk(&self) -> bool {
        self.hold > 0
    }

    /// The line was silent for a while (a stream left and entered again): what
    /// was played before is forgotten; what was learnt of the line is kept.
    pub fn forget_reference(&mut self) {
        self.history.fill(0.0);
        self.peaks.fill(0.0);
        (
            self.energy,
            self.sounding,
            self.block_peak,
            self.in_block,
            self.hold,
        ) = (0.0, 0, 0.0, 0, 0);
    }

    fn push_reference(&mut self, sample: f32) {
        let old = self.history[self.pos];
        self.energy = (self.energy + f64::from(sample * sample) - f64::from(old * old)).max(0.0);
        self.sounding = self.sounding + usize::from(sample != 0.0) - usize::from(old != 0.0);
        self.history[self.pos] = sample;
        self.history[self.pos + TAPS] = sample;
        self.pos = (self.pos + 1) % TAPS;
        self.block_peak = self.block_peak.max(sample.abs());
        self.in_block += 1;
        if self.in_block == BLOCK {
            self.peaks.rotate_left(1);
            if let Some(last) = self.peaks.last_mut() {
                *last = self.block_peak;
            }
            self.block_peak = 0.0;
            self.in_block = 0;
        }
    }

    /// One sample: `reference` is what is being played into the line now,
    /// `near` what the line sends back now; returns `near` less the echo.
    pub fn process(&mut self, reference: i16, near: i16) -> i16 {
        self.push_reference(f32::from(reference));
        if self.sounding == 0 {
            // Nothing played for a whole tail: no echo to cancel, nothing to learn.
            return near;
        }
        // Newest first: x[0] is `reference`, x[k] the sample k ago.
        let newest = self.pos + TAPS - 1;
        let window = &self.history[newest + 1 - TAPS..=newest];
        let estimate: f32 = self
            .weights
            .iter()
            .zip(window.iter().rev())
            .map(|(w, x)| w * x)
            .sum();
        let near = f32::from(near);
        let error = near - estimate;
        let far_peak = self.peaks.iter().copied().fold(self.block_peak, f32::max);
        if near.abs() > GEIGEL * far_peak {
            self.hold = HANGOVER;
        } else if self.hold > 0 {
            self.hold -= 1;
        } else {
            let step = MU * error / (self.energy as f32 + EPSILON);
            for (w, x) in self.weights.iter_mut().zip(window.iter().rev()) {
                *w += step * x;
            }
        }
        error.clamp(-32768.0, 32767.0) as i16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A white-ish test signal (xorshift), about `level` peak.
    fn noise(n: usize, level: f32, seed: u64) -> Vec<i16> {
        let mut state = seed;
        (0..n)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                ((state % 2001) as f32 / 1000.0 - 1.0).mul_add(level, 0.0) as i16
            })
            .collect()
    }

    fn power(samples: &[f32]) -> f32 {
        samples.iter().map(|s| s * s).sum::<f32>() / samples.len().max(1) as f32
    }

    #[test]
    fn learns_a_delayed_attenuated_echo_and_keeps_double_talk() {
        let far = noise(8000 * 6, 8000.0, 7);
        // Echo: 30 ms late, -10 dB, a short dispersion.
        let echo = |i: usize| -> f32 {
            [(240, 0.25f32), (241, 0.12), (243, -0.06)]
                .iter()
                .filter(|(d, _)| i >= *d)
                .map(|(d, g)| g * f32::from(far[i - d]))
                .sum()
        };
        let talker = noise(far.len(), 6000.0, 99);
        let mut ec = EchoCanceller::default();
        let (mut echo_in, mut echo_out, mut kept) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..far.len() {
            // The far talker speaks from 4 s to 5 s.
            let speaking = (32_000..40_000).contains(&i);
            let other = if speaking { f32::from(talker[i]) } else { 0.0 };
            let out = f32::from(ec.process(far[i], (echo(i) + other) as i16));
            if i >= 16_000 && !speaking && i < 32_000 {
                echo_in.push(echo(i));
                echo_out.push(out);
            }
            if speaking {
                kept.push((out - other, other));
            }
        }
        let erle = 10.0 * (power(&echo_in) / power(&echo_out)).log10();
        assert!(erle >= 25.0, "ERLE {erle:.1} dB");
        // Double talk: the talker comes through with the echo still removed.
        let residual: Vec<f32> = kept.iter().map(|(r, _)| *r).collect();
        let voice: Vec<f32> = kept.iter().map(|(_, v)| *v).collect();
        let snr = 10.0 * (power(&voice) / power(&residual)).log10();
        assert!(snr >= 20.0, "talker to residual {snr:.1} dB during double talk");
    }
}
