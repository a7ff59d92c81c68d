//! The Goertzel algorithm: the power of one frequency in a block of samples,
//! cheaper than an FFT when one bin is wanted (is a 1 kHz tone there?).

/// Power of `freq` Hz in `samples` taken at `rate` Hz (unnormalised), rounded to
/// the block's nearest DFT bin.
pub fn power(samples: &[i16], freq: f64, rate: f64) -> f64 {
    let n = samples.len().max(1) as f64;
    let k = (0.5 + samples.len() as f64 * freq / rate).floor();
    power_exact(samples, k * rate / n, rate)
}

/// Power of exactly `freq` Hz in `samples` (the generalised Goertzel: no rounding
/// to a bin, for tones that fall between bins of a short block).
pub fn power_exact(samples: &[i16], freq: f64, rate: f64) -> f64 {
    let omega = 2.0 * std::f64::consts::PI * freq / rate;
    let coeff = 2.0 * omega.cos();
    let (mut s1, mut s2) = (0.0, 0.0);
    for &x in samples {
        let s0 = f64::from(x) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    s1 * s1 + s2 * s2 - coeff * s1 * s2
}

fn share(samples: &[i16], power: f64) -> f64 {
    let energy: f64 = samples.iter().map(|&x| f64::from(x) * f64::from(x)).sum();
    if energy == 0.0 {
        return 0.0;
    }
    (2.0 * power / (samples.len() as f64 * energy)).min(1.0)
}

/// Share of the block's energy at `freq`, 0.0..=1.0 (about 0.5 or more for a
/// clean tone at that frequency, near 0 for silence or other tones).
pub fn relative_level(samples: &[i16], freq: f64, rate: f64) -> f64 {
    share(samples, power(samples, freq, rate))
}

/// [`relative_level`] at exactly `freq` rather than its nearest bin.
pub fn exact_level(samples: &[i16], freq: f64, rate: f64) -> f64 {
    share(samples, power_exact(samples, freq, rate))
}

/// Whether some block of `block` samples carries every one of `freqs` with a
/// share above `min` (a tone or a DTMF key somewhere in a recording).
pub fn some_block_has(samples: &[i16], block: usize, freqs: &[f64], min: f64) -> bool {
    samples
        .chunks(block.max(1))
        .any(|b| freqs.iter().all(|&f| relative_level(b, f, 8000.0) > min))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::tone::Tone;

    #[test]
    fn finds_the_tone_and_not_another() {
        let mut tone = Tone::new(1000.0, 8000.0, 8000.0);
        let block: Vec<i16> = (0..400).map(|_| tone.next_sample()).collect();
        assert!(relative_level(&block, 1000.0, 8000.0) > 0.8);
        assert!(relative_level(&block, 1400.0, 8000.0) < 0.05);
        assert_eq!(relative_level(&[0; 160], 1000.0, 8000.0), 0.0);
        let mut quiet_then_tone = vec![0; 800];
        quiet_then_tone.extend(&block);
        assert!(some_block_has(&quiet_then_tone, 400, &[1000.0], 0.8));
        assert!(!some_block_has(&quiet_then_tone, 400, &[1400.0], 0.1));
    }
}
