//! Call-progress tones per country (ITU-T E.180): ringback and busy as
//! frequencies and on/off cadences, what the answer supervision needs to know of
//! them (longest silence, how long a burst lasts), and a generator of the tone as
//! 8 kHz mu-law for the emulated exchange.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::g711::linear_to_ulaw;
use super::tone::Tone;

/// A tone's frequencies and cadence: segment lengths in ms, on first, alternating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cadence {
    /// The frequencies sounding together while on (Hz).
    pub freqs: &'static [u16],
    /// On, off, on, off... (ms); the cycle repeats.
    pub segments: &'static [u32],
}

impl Cadence {
    /// One whole cycle.
    pub fn period(&self) -> Duration {
        Duration::from_millis(self.segments.iter().map(|&ms| u64::from(ms)).sum())
    }

    /// The longest off segment.
    pub fn longest_silence(&self) -> Duration {
        let off = self.segments.iter().skip(1).step_by(2).max().copied();
        Duration::from_millis(u64::from(off.unwrap_or(0)))
    }

    /// From the start of a cycle to the end of its last on segment.
    pub fn burst_span(&self) -> Duration {
        let last_on = self.segments.len().saturating_sub(1) & !1;
        Duration::from_millis(self.segments[..=last_on].iter().map(|&ms| u64::from(ms)).sum())
    }

    /// Whether the tone sounds `at` after its start.
    pub fn is_on(&self, at: Duration) -> bool {
        let period = self.period().as_millis().max(1);
        let mut left = at.as_millis() % period;
        for (n, &ms) in self.segments.iter().enumerate() {
            if left < u128::from(ms) {
                return n % 2 == 0;
            }
            left -= u128::from(ms);
        }
        false
    }
}

/// A country's call-progress tones (spelled `us`, `uk`, `de`, `fr` in settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Country {
    /// United States (North American precise tones).
    Us,
    /// United Kingdom.
    Uk,
    /// Germany.
    De,
    /// France.
    Fr,
}

impl Country {
    /// Every country we know the tones of.
    pub const ALL: [Self; 4] = [Self::Us, Self::Uk, Self::De, Self::Fr];

    /// Ringback (ring tone).
    pub fn ringback(self) -> Cadence {
        match self {
            Self::Us => Cadence {
                freqs: &[440, 480],
                segments: &[2000, 4000],
            },
            Self::Uk => Cadence {
                freqs: &[400, 450],
                segments: &[400, 200, 400, 2000],
            },
            Self::De => Cadence {
                freqs: &[425],
                segments: &[1000, 4000],
            },
            Self::Fr => Cadence {
                freqs: &[440],
                segments: &[1500, 3500],
            },
        }
    }

    /// Busy tone.
    pub fn busy(self) -> Cadence {
        match self {
            Self::Us => Cadence {
                freqs: &[480, 620],
                segments: &[500, 500],
            },
            Self::Uk => Cadence {
                freqs: &[400],
                segments: &[375, 375],
            },
            Self::De => Cadence {
                freqs: &[425],
                segments: &[480, 480],
            },
            Self::Fr => Cadence {
                freqs: &[440],
                segments: &[500, 500],
            },
        }
    }

    /// Its `+GCI` country code (ITU-T T.35).
    pub fn t35_code(self) -> u8 {
        match self {
            Self::Us => 0xB5,
            Self::Uk => 0xB4,
            Self::De => 0x04,
            Self::Fr => 0x3D,
        }
    }

    /// The country of a `+GCI` code (ITU-T T.35), if we know its tones.
    pub fn from_t35(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.t35_code() == code)
    }
}

/// A cadenced tone as it sounds on the line, from its start.
#[derive(Debug, Clone)]
pub struct CadenceTone {
    cadence: Cadence,
    tones: Vec<Tone>,
    /// Samples played; negative: silence before the tone starts.
    samples: i64,
}

impl CadenceTone {
    /// The tone at about -13 dBm0 per frequency.
    pub fn new(cadence: Cadence) -> Self {
        let tones = cadence
            .freqs
            .iter()
            .map(|&f| Tone::new(f64::from(f), 3000.0, 8000.0))
            .collect();
        Self {
            cadence,
            tones,
            samples: 0,
        }
    }

    /// The tone after `delay` of silence.
    pub fn starting_after(cadence: Cadence, delay: Duration) -> Self {
        let mut tone = Self::new(cadence);
        tone.samples = -((delay.as_micros() / 125) as i64);
        tone
    }

    /// The next `len` mu-law bytes.
    pub fn next(&mut self, len: usize) -> Vec<u8> {
        (0..len)
            .map(|_| {
                let at = u64::try_from(self.samples)
                    .ok()
                    .map(|n| Duration::from_micros(n * 125));
                self.samples += 1;
                let on = at.is_some_and(|at| self.cadence.is_on(at));
                let sample = self
                    .tones
                    .iter_mut()
                    .fold(0i16, |sum, t| sum.saturating_add(t.next_sample()));
                linear_to_ulaw(if on { sample } else { 0 })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::g711::ulaw_to_linear;
    use crate::dsp::goertzel::exact_level;

    #[test]
    fn cadences_follow_e180() {
        let us = Country::Us.ringback();
        assert_eq!(us.period(), Duration::from_secs(6));
        assert_eq!(us.longest_silence(), Duration::from_secs(4));
        assert_eq!(us.burst_span(), Duration::from_secs(2));
        let uk = Country::Uk.ringback();
        assert_eq!(uk.longest_silence(), Duration::from_secs(2));
        assert_eq!(uk.burst_span(), Duration::from_millis(1000));
        assert!(uk.is_on(Duration::from_millis(100)));
        assert!(!uk.is_on(Duration::from_millis(500)));
        assert!(uk.is_on(Duration::from_millis(700)));
        assert!(!uk.is_on(Duration::from_millis(1500)));
        assert!(uk.is_on(Duration::from_millis(3100)));
        assert_eq!(Country::De.ringback().longest_silence(), Duration::from_secs(4));
        assert_eq!(Country::Fr.ringback().period(), Duration::from_secs(5));
    }

    #[test]
    fn the_tone_sounds_its_frequencies_only_while_on() {
        let mut tone = CadenceTone::new(Country::De.ringback());
        let on: Vec<i16> = tone.next(800).iter().map(|&c| ulaw_to_linear(c)).collect();
        assert!(exact_level(&on, 425.0, 8000.0) > 0.8);
        tone.next(8000 - 800);
        let off: Vec<i16> = tone.next(800).iter().map(|&c| ulaw_to_linear(c)).collect();
        assert!(off.iter().all(|&s| s.unsigned_abs() < 10));
    }
}
