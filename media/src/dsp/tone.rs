//! Tone generators: a phase-continuous sine (announcements, test tones, ringback
//! and busy cadences) and DTMF dual tones (ITU-T Q.23), at any sample rate.

/// A sine at one frequency, continuing its phase across calls.
#[derive(Debug, Clone)]
pub struct Tone {
    step: f64,
    phase: f64,
    amplitude: f64,
}

impl Tone {
    /// A tone of `freq` Hz and peak `amplitude` (in sample units) at `rate` Hz.
    pub fn new(freq: f64, amplitude: f64, rate: f64) -> Self {
        Self {
            step: 2.0 * std::f64::consts::PI * freq / rate,
            phase: 0.0,
            amplitude,
        }
    }

    /// The next sample.
    pub fn next_sample(&mut self) -> i16 {
        let value = self.amplitude * self.phase.sin();
        self.phase = (self.phase + self.step) % (2.0 * std::f64::consts::PI);
        value.clamp(f64::from(i16::MIN), f64::from(i16::MAX)) as i16
    }
}

/// The two frequencies of a DTMF key, if it is one (`0-9 * # A-D`).
pub fn dtmf_frequencies(key: char) -> Option<(f64, f64)> {
    const ROWS: [f64; 4] = [697.0, 770.0, 852.0, 941.0];
    const COLS: [f64; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
    const KEYS: [&str; 4] = ["123A", "456B", "789C", "*0#D"];
    KEYS.iter().enumerate().find_map(|(row, keys)| {
        keys.chars()
            .position(|k| k == key.to_ascii_uppercase())
            .map(|col| (ROWS[row], COLS[col]))
    })
}

/// A DTMF key as a dual tone.
#[derive(Debug, Clone)]
pub struct Dtmf {
    low: Tone,
    high: Tone,
}

impl Dtmf {
    /// The dual tone of `key` at `rate` Hz, or `None` for a non-key.
    pub fn new(key: char, rate: f64) -> Option<Self> {
        let (low, high) = dtmf_frequencies(key)?;
        Some(Self {
            low: Tone::new(low, 6000.0, rate),
            high: Tone::new(high, 6000.0, rate),
        })
    }

    /// The next sample.
    pub fn next_sample(&mut self) -> i16 {
        self.low.next_sample().saturating_add(self.high.next_sample())
    }
}

/// How long a key sounds when we play it into a line ourselves.
pub const KEY_TONE_FRAMES: usize = 5;

/// A pressed key as a line hears it: 100 ms of its DTMF dual tone, then 40 ms of
/// silence, as 20 ms frames of 8 kHz mu-law; none for a non-key.
pub fn dtmf_frames(key: char) -> Vec<[u8; 160]> {
    let Some(mut tone) = Dtmf::new(key, 8000.0) else {
        return Vec::new();
    };
    let mut frames: Vec<[u8; 160]> = (0..KEY_TONE_FRAMES)
        .map(|_| std::array::from_fn(|_| super::g711::linear_to_ulaw(tone.next_sample())))
        .collect();
    frames.extend([[0xFF; 160]; 2]);
    frames
}

#[cfg(test)]
mod tests {
    use super::dtmf_frames;
    use crate::dsp::g711::ulaw_to_linear;
    use crate::dsp::goertzel::relative_level;

    #[test]
    fn a_key_becomes_its_dual_tone_on_the_line() {
        let frames = dtmf_frames('5');
        assert_eq!(frames.len(), 7);
        let samples: Vec<i16> = frames
            .iter()
            .take(5)
            .flatten()
            .map(|&c| ulaw_to_linear(c))
            .collect();
        // '5' is 770 Hz + 1336 Hz: each carries a good share of the energy (1336 Hz falls
        // between Goertzel bins of a 100 ms block, so it reads a little lower).
        assert!(relative_level(&samples, 770.0, 8000.0) > 0.2);
        assert!(relative_level(&samples, 1336.0, 8000.0) > 0.2);
        assert!(relative_level(&samples, 1000.0, 8000.0) < 0.05);
        assert!(dtmf_frames('x').is_empty());
    }
}
