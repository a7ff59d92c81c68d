//! A speech-like test signal: a voiced source (a fundamental gliding like
//! intonation, with its harmonics) shaped by vowel formants, in syllables of
//! 250 ms, as 8 kHz mu-law. The emulator's callee greets with it; detectors must
//! take it for a voice and not for a call-progress tone.

use super::g711::linear_to_ulaw;

/// Vowel formants (F1, F2, F3 in Hz): a, e, o, i, u.
const VOWELS: [[f64; 3]; 5] = [
    [730.0, 1090.0, 2440.0],
    [530.0, 1840.0, 2480.0],
    [570.0, 840.0, 2410.0],
    [270.0, 2290.0, 3010.0],
    [300.0, 870.0, 2240.0],
];
/// Samples per syllable (250 ms).
const SYLLABLE: u64 = 2000;
/// Peak level of a syllable (of 32767).
const PEAK: f64 = 9000.0;

/// A greeting of `syllables` syllables, then silence.
#[derive(Debug, Clone)]
pub struct Greeting {
    syllables: u64,
    samples: u64,
    phase: f64,
}

impl Greeting {
    /// A greeting that lasts `syllables` x 250 ms.
    pub fn new(syllables: u64) -> Self {
        Self {
            syllables,
            samples: 0,
            phase: 0.0,
        }
    }

    fn sample(&mut self) -> i16 {
        let n = self.samples;
        self.samples += 1;
        let syllable = n / SYLLABLE;
        if syllable >= self.syllables {
            return 0;
        }
        let within = (n % SYLLABLE) as f64 / SYLLABLE as f64;
        // Intonation: 105..165 Hz, moving within and across syllables.
        let f0 = 135.0 + 30.0 * (std::f64::consts::TAU * (within * 0.5 + syllable as f64 * 0.37)).sin();
        self.phase = (self.phase + std::f64::consts::TAU * f0 / 8000.0) % std::f64::consts::TAU;
        let formants = VOWELS[(syllable % VOWELS.len() as u64) as usize];
        let harmonics = (3400.0 / f0) as u32;
        let voiced: f64 = (1..=harmonics)
            .map(|h| {
                let f = f64::from(h) * f0;
                let gain: f64 = formants
                    .iter()
                    .map(|&formant| 1.0 / (1.0 + ((f - formant) / 90.0).powi(2)))
                    .sum();
                gain * (f64::from(h) * self.phase).sin()
            })
            .sum();
        let envelope = (std::f64::consts::PI * within).sin().powi(2);
        (PEAK * 0.5 * envelope * voiced).clamp(-32000.0, 32000.0) as i16
    }

    /// The next `len` mu-law bytes.
    pub fn next(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| linear_to_ulaw(self.sample())).collect()
    }
}
