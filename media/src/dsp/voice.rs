//! Tells a voice from a call-progress tone on the line before the answer, frame
//! by frame (20 ms of 8 kHz mu-law): quiet below a level; a tone when one of the
//! call-progress frequencies (dial, ringback, busy of every country we know, and
//! the special information tones) holds a large share of the energy over the last
//! 40 ms; a voice otherwise, loud and spread over the spectrum.

use super::g711::ulaw_to_linear;
use super::goertzel::exact_level;

/// Mean absolute level (of 32767) below which a frame is quiet (~ -40 dBFS).
pub const QUIET_LEVEL: i32 = 330;
/// Share of the energy at the two strongest call-progress frequencies above which it is a tone.
const TONE_SHARE: f64 = 0.55;
/// Dial (350, 440), ringback and busy (400..620), SIT (950, 1400, 1800).
const PROGRESS_FREQS: [f64; 10] = [
    350.0, 400.0, 425.0, 440.0, 450.0, 480.0, 620.0, 950.0, 1400.0, 1800.0,
];
/// Samples per frame.
const FRAME: usize = 160;

/// What a frame of line audio is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sound {
    /// Below [`QUIET_LEVEL`].
    Quiet,
    /// A call-progress tone.
    Tone,
    /// Loud, not a tone: someone speaking (or music).
    Voice,
}

/// The classifier, keeping the previous frame to look at 40 ms at once.
#[derive(Debug, Clone, Default)]
pub struct VoiceDetector {
    previous: Vec<i16>,
    loud: bool,
}

impl VoiceDetector {
    /// Classifies the next frame (any length; 160 samples expected).
    pub fn classify(&mut self, mulaw: &[u8]) -> Sound {
        let frame: Vec<i16> = mulaw.iter().map(|&c| ulaw_to_linear(c)).collect();
        let level: i64 = frame.iter().map(|&s| i64::from(s).abs()).sum();
        let loud = !frame.is_empty() && level > i64::from(QUIET_LEVEL) * frame.len() as i64;
        // After a quiet frame, this frame alone: a tone starting is not diluted by the quiet.
        let mut window = std::mem::take(&mut self.previous);
        window.extend(&frame);
        let window = &window[window
            .len()
            .saturating_sub(if self.loud { 2 * FRAME } else { FRAME })..];
        self.previous = window[window.len().saturating_sub(FRAME)..].to_vec();
        self.loud = loud;
        if !loud {
            return Sound::Quiet;
        }
        // A tone, or two sounding together, hold most of the energy at their frequencies.
        let mut shares: Vec<f64> = PROGRESS_FREQS
            .iter()
            .map(|&f| exact_level(window, f, 8000.0))
            .collect();
        shares.sort_by(|a, b| b.total_cmp(a));
        let tonal = shares[0] + shares[1] > TONE_SHARE;
        if tonal { Sound::Tone } else { Sound::Voice }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::cadence::{CadenceTone, Country};
    use crate::dsp::speech::Greeting;

    fn count(mut source: impl FnMut() -> Vec<u8>, frames: usize) -> [usize; 3] {
        let mut detector = VoiceDetector::default();
        let mut counts = [0; 3];
        for _ in 0..frames {
            counts[detector.classify(&source()) as usize] += 1;
        }
        counts
    }

    #[test]
    fn every_countrys_tones_are_tones_and_the_greeting_is_a_voice() {
        for country in Country::ALL {
            for cadence in [country.ringback(), country.busy()] {
                let mut tone = CadenceTone::new(cadence);
                let [_, _, voice] = count(|| tone.next(160), 600);
                assert_eq!(voice, 0, "{country:?} {cadence:?} taken for a voice");
            }
        }
        let mut greeting = Greeting::new(12);
        let [quiet, tone, voice] = count(|| greeting.next(160), 150);
        assert_eq!(tone, 0, "greeting taken for a tone");
        assert!(voice >= 100, "voice frames {voice}, quiet {quiet}");
        assert_eq!(count(|| vec![0xFF; 160], 10), [10, 0, 0]);
    }

    #[test]
    fn odd_frames_do_not_panic() {
        let mut detector = VoiceDetector::default();
        for len in [0, 1, 159, 160, 161, 400, 3] {
            detector.classify(&vec![0x10; len]);
        }
    }
}
