//! A streaming band-limited resampler (windowed sinc, any rate pair) for the sound
//! card edge: a card that does not run at 8 kHz (a USB card on `hw:` at 48 kHz)
//! plays the line's 8 kHz upsampled and gives its capture back downsampled. The
//! kernel is cut at 90 % of the lower rate's Nyquist (3.6 kHz between 8 and 48 kHz,
//! above the 300–3400 Hz telephone band) and tabulated once at construction, so
//! the real-time callbacks only multiply and add: no allocation, no trigonometry.
//! One shape serves both ways: [`Resampler::push`] an input sample, then take
//! [`Resampler::output`] while [`Resampler::ready`]. Delay: half the kernel
//! (8 zero crossings of the lower rate: 1 ms at 8 kHz).
//!
//! Own code rather than rubato (weighed): rubato's resamplers take or give a
//! fixed chunk per call (`SincFixedIn`/`SincFixedOut`, `Fft*`), so the card's
//! callbacks, whose lengths vary, would need a staging buffer in front and add
//! up to a chunk of delay each way; a sample-in, sample-out filter fits the
//! callbacks as they come and keeps the added delay at the kernel's 1 ms.

/// Zero crossings of the kernel on each side, in periods of the lower rate.
const ZEROS: f64 = 8.0;
/// Kernel table entries per input sample.
const PHASES: f64 = 64.0;
/// Cutoff as a fraction of the lower rate's Nyquist frequency.
const CUTOFF: f64 = 0.9;

/// Converts a stream of samples from one rate to another.
#[derive(Debug, Clone)]
pub struct Resampler {
    /// Input samples per output sample.
    step: f64,
    /// Half the kernel's width, in input samples.
    half: f64,
    /// The kernel at `1 / PHASES` input-sample steps from 0 to `half`.
    table: Vec<f32>,
    /// The last inputs, oldest at `head`.
    history: Vec<f32>,
    head: usize,
    /// Where the next output falls, in input samples from the oldest in `history`.
    pos: f64,
}

impl Resampler {
    /// A resampler from `from` Hz to `to` Hz (both non-zero).
    pub fn new(from: u32, to: u32) -> Self {
        let (from, to) = (f64::from(from.max(1)), f64::from(to.max(1)));
        // Cutoff relative to the input's sample rate (1.0 = input Nyquist).
        let cut = CUTOFF * (to / from).min(1.0);
        let half = ZEROS / cut;
        let entries = (half * PHASES).ceil() as usize + 2;
        let table = (0..entries)
            .map(|i| {
                let x = i as f64 / PHASES;
                if x >= half {
                    return 0.0;
                }
                let arg = std::f64::consts::PI * cut * x;
                let sinc = if x == 0.0 { 1.0 } else { arg.sin() / arg };
                // Blackman window over [-half, half].
                let w = std::f64::consts::PI * (x / half + 1.0);
                let window = 0.42 - 0.5 * w.cos() + 0.08 * (2.0 * w).cos();
                (cut * sinc * window) as f32
            })
            .collect();
        let len = (2.0 * half).ceil() as usize + 2;
        Self {
            step: from / to,
            half,
            table,
            history: vec![0.0; len],
            head: 0,
            pos: len as f64 - 1.0 - half,
        }
    }

    /// Takes the next input sample.
    pub fn push(&mut self, sample: i16) {
        self.history[self.head] = f32::from(sample);
        self.head = (self.head + 1) % self.history.len();
        self.pos -= 1.0;
    }

    /// Whether the inputs pushed so far make the next output.
    pub fn ready(&self) -> bool {
        self.pos + self.half <= (self.history.len() - 1) as f64
    }

    /// The next output (call when [`Resampler::ready`]).
    pub fn output(&mut self) -> i16 {
        let len = self.history.len();
        let first = (self.pos - self.half).ceil().max(0.0) as usize;
        let last = ((self.pos + self.half).floor() as usize).min(len - 1);
        let mut sum = 0.0f32;
        for j in first..=last {
            let index = ((self.pos - j as f64).abs() * PHASES) as usize;
            let weight = self.table.get(index).copied().unwrap_or(0.0);
            sum += weight * self.history[(self.head + j) % len];
        }
        self.pos += self.step;
        sum.round().clamp(f32::from(i16::MIN), f32::from(i16::MAX)) as i16
    }

    /// The next output, pulling inputs from `input` as it needs them.
    pub fn pull(&mut self, mut input: impl FnMut() -> i16) -> i16 {
        while !self.ready() {
            self.push(input());
        }
        self.output()
    }
}

#[cfg(test)]
mod tests {
    use super::Resampler;
    use crate::dsp::goertzel::relative_level;
    use crate::dsp::tone::Tone;

    fn run(from: u32, to: u32, input: &[i16]) -> Vec<i16> {
        let mut r = Resampler::new(from, to);
        let mut out = Vec::new();
        for &s in input {
            r.push(s);
            while r.ready() {
                out.push(r.output());
            }
        }
        out
    }

    fn tone(freq: f64, rate: u32, n: usize) -> Vec<i16> {
        let mut t = Tone::new(freq, 8000.0, f64::from(rate));
        (0..n).map(|_| t.next_sample()).collect()
    }

    fn rms(s: &[i16]) -> f64 {
        (s.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / s.len() as f64).sqrt()
    }

    #[test]
    fn a_telephone_tone_goes_to_48_khz_and_back_whole() {
        let line = tone(1000.0, 8000, 8000);
        let card = run(8000, 48_000, &line);
        assert!((card.len() as i64 - 48_000).abs() <= 60, "{} samples", card.len());
        assert!(relative_level(&card[4800..], 1000.0, 48_000.0) > 0.9);
        let back = run(48_000, 8000, &card);
        assert!((back.len() as i64 - 8000).abs() <= 20, "{} samples", back.len());
        let (a, b) = (rms(&line[1000..7000]), rms(&back[1000..7000]));
        assert!((b / a - 1.0).abs() < 0.05, "level {a} -> {b}");
        assert!(relative_level(&back[800..], 1000.0, 8000.0) > 0.9);
    }

    #[test]
    fn what_the_line_cannot_carry_is_filtered_out_on_the_way_down() {
        // 10 kHz at 48 kHz would alias to 2 kHz at 8 kHz without the filter.
        let card = tone(10_000.0, 48_000, 48_000);
        let line = run(48_000, 8000, &card);
        assert!(rms(&line[800..]) < rms(&card) * 0.01, "{}", rms(&line[800..]));
    }

    #[test]
    fn odd_ratios_keep_the_rate_and_the_delay_is_small() {
        let line = tone(500.0, 8000, 8000);
        let card = run(8000, 44_100, &line);
        assert!((card.len() as i64 - 44_100).abs() <= 60, "{}", card.len());
        assert!(relative_level(&card[4410..], 500.0, 44_100.0) > 0.9);
        // An impulse comes out within 2 ms.
        let mut impulse = vec![0i16; 400];
        impulse[0] = 20_000;
        let out = run(8000, 48_000, &impulse);
        let peak = out
            .iter()
            .enumerate()
            .max_by_key(|(_, s)| s.unsigned_abs())
            .map(|(i, _)| i);
        assert!(peak.is_some_and(|i| i < 96), "{peak:?}");
    }

    #[test]
    fn pull_and_push_agree() {
        let line = tone(1000.0, 8000, 800);
        let pushed = run(8000, 48_000, &line);
        let mut r = Resampler::new(8000, 48_000);
        let mut input = line.iter().copied();
        let pulled: Vec<i16> = (0..pushed.len())
            .map(|_| r.pull(|| input.next().unwrap_or(0)))
            .collect();
        assert_eq!(pulled, pushed);
    }
}
