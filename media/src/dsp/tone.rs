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
