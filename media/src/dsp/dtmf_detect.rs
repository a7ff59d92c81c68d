//! A DTMF detector on 20 ms blocks of 8 kHz audio (Goertzel on the eight key
//! frequencies): a key is reported once, when its dual tone has held for two
//! blocks, and again only after a block without it. The emulated modem uses it
//! to hear keys on both sides of its line.

use super::goertzel::relative_level;

const ROWS: [f64; 4] = [697.0, 770.0, 852.0, 941.0];
const COLS: [f64; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
const KEYS: [&str; 4] = ["123A", "456B", "789C", "*0#D"];
/// Share of a block's energy each of the two tones must carry.
const MIN_SHARE: f64 = 0.2;
/// Blocks a key must hold before it counts (40 ms: RFC 4733's shortest is 40).
const HOLD_BLOCKS: u32 = 2;

/// The detector's state between blocks.
#[derive(Debug, Clone, Default)]
pub struct DtmfDetector {
    /// The key heard in the last block, and for how many blocks in a row.
    current: Option<(char, u32)>,
}

impl DtmfDetector {
    /// One block of samples (20 ms at 8 kHz is best); the key, the first time it
    /// has held for long enough.
    pub fn block(&mut self, samples: &[i16]) -> Option<char> {
        let key = key_in(samples);
        let run = match (self.current, key) {
            (Some((was, n)), Some(k)) if was == k => n + 1,
            _ => 1,
        };
        self.current = key.map(|k| (k, run));
        key.filter(|_| run == HOLD_BLOCKS)
    }
}

/// The key whose dual tone dominates `samples`, if one does.
fn key_in(samples: &[i16]) -> Option<char> {
    let strongest = |freqs: &[f64; 4]| {
        freqs
            .iter()
            .map(|&f| relative_level(samples, f, 8000.0))
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .filter(|&(_, share)| share >= MIN_SHARE)
            .map(|(i, _)| i)
    };
    let (row, col) = (strongest(&ROWS)?, strongest(&COLS)?);
    KEYS[row].chars().nth(col)
}

#[cfg(test)]
mod tests {
    use super::DtmfDetector;
    use crate::dsp::g711::ulaw_to_linear;
    use crate::dsp::tone::{Tone, dtmf_frames};

    fn detect(frames: &[[u8; 160]]) -> String {
        let mut detector = DtmfDetector::default();
        frames
            .iter()
            .filter_map(|f| detector.block(&f.map(ulaw_to_linear)))
            .collect()
    }

    #[test]
    fn every_key_is_heard_once_per_press() {
        for key in "0123456789*#ABCD".chars() {
            let mut frames = dtmf_frames(key);
            frames.extend(dtmf_frames(key));
            assert_eq!(detect(&frames), format!("{key}{key}"), "key {key}");
        }
    }

    #[test]
    fn a_tone_silence_or_a_single_block_is_no_key() {
        let mut tone = Tone::new(1000.0, 8000.0, 8000.0);
        let speech: Vec<[u8; 160]> = (0..50)
            .map(|_| std::array::from_fn(|_| crate::dsp::g711::linear_to_ulaw(tone.next_sample())))
            .collect();
        assert_eq!(detect(&speech), "");
        assert_eq!(detect(&[[0xFF; 160]; 10]), "");
        assert_eq!(detect(&dtmf_frames('5')[..1]), "");
    }
}
