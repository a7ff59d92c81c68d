//! Typed RTP identifiers and media time: SSRC, 16-bit sequence numbers with their
//! wrap-around aware extension to 64 bits (RFC 3550 A.1), and RTP timestamps that
//! carry their clock rate. Every other `rtp` module speaks in these types; no raw
//! `u32` timestamp crosses a module boundary.

use std::num::NonZeroU32;
use std::time::Duration;

/// A synchronisation source identifier (RFC 3550 5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ssrc(pub u32);

/// A 16-bit RTP sequence number; arithmetic wraps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SeqNo(pub u16);

impl SeqNo {
    /// The next sequence number, wrapping after 65535.
    pub fn next(self) -> Self {
        Self(self.0.wrapping_add(1))
    }

    /// Signed distance `self - earlier` in the shortest direction around the circle.
    pub fn distance_from(self, earlier: SeqNo) -> i16 {
        // Reinterpreting the wrapped difference as i16 picks the short way round.
        self.0.wrapping_sub(earlier.0) as i16
    }

    /// True when `self` comes after `other` (within half the sequence space).
    pub fn is_after(self, other: SeqNo) -> bool {
        self.distance_from(other) > 0
    }
}

/// A sequence number extended with its wrap count (RFC 3550 A.1 `cycles + seq`);
/// the first packet's cycle is 1, so packets reordered before it stay positive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExtSeq(pub u64);

impl ExtSeq {
    /// The 32-bit "extended highest sequence number" of RTCP reports (cycles from 0).
    pub fn to_rtcp(self) -> u32 {
        self.0.saturating_sub(1 << 16) as u32
    }
}

/// Extends 16-bit sequence numbers to 64 bits relative to the highest one seen.
#[derive(Debug, Clone, Copy, Default)]
pub struct SeqExtender {
    highest: Option<u64>,
}

impl SeqExtender {
    /// Extends `seq`; late packets from before a wrap get the previous cycle.
    pub fn extend(&mut self, seq: SeqNo) -> ExtSeq {
        let ext = match self.highest {
            None => (1 << 16) + u64::from(seq.0),
            Some(h) => {
                let delta = i64::from(seq.distance_from(SeqNo(h as u16)));
                // Starting at cycle 1 keeps a delta below zero from underflowing.
                (h as i64 + delta).max(0) as u64
            }
        };
        self.highest = Some(self.highest.map_or(ext, |h| h.max(ext)));
        ExtSeq(ext)
    }

    /// The highest extended sequence number seen, if any.
    pub fn highest(&self) -> Option<ExtSeq> {
        self.highest.map(ExtSeq)
    }
}

/// An RTP media clock rate in Hz (8000 for G.711 and telephone-event).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClockRate(NonZeroU32);

impl ClockRate {
    /// 8 kHz, the clock of PCMU, PCMA and `telephone-event/8000`.
    pub const NARROWBAND: ClockRate = ClockRate(NonZeroU32::new(8000).unwrap());

    /// The rate in Hz.
    pub fn hz(self) -> u32 {
        self.0.get()
    }

    /// How many ticks of this clock a duration lasts (truncated).
    pub fn ticks_in(self, d: Duration) -> u64 {
        (d.as_nanos() * u128::from(self.hz()) / 1_000_000_000) as u64
    }

    /// How long `ticks` of this clock last.
    pub fn duration_of(self, ticks: u64) -> Duration {
        Duration::from_nanos((u128::from(ticks) * 1_000_000_000 / u128::from(self.hz())) as u64)
    }
}

/// An RTP timestamp as on the wire (32 bits, wrapping) with its clock rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RtpTime {
    /// The wire value.
    pub ticks: u32,
    /// The clock it counts.
    pub rate: ClockRate,
}

impl RtpTime {
    /// A timestamp `ticks` later, wrapping.
    pub fn add_ticks(self, ticks: u32) -> Self {
        Self {
            ticks: self.ticks.wrapping_add(ticks),
            rate: self.rate,
        }
    }

    /// Signed distance `self - earlier` in ticks, the short way round.
    pub fn ticks_since(self, earlier: RtpTime) -> i32 {
        self.ticks.wrapping_sub(earlier.ticks) as i32
    }
}

/// A timestamp extended to 64 bits (never wraps in a call) with its clock rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MediaTime {
    /// Ticks since an arbitrary origin of the stream.
    pub ticks: u64,
    /// The clock it counts.
    pub rate: ClockRate,
}

/// Extends 32-bit RTP timestamps to [`MediaTime`] relative to the last one seen.
#[derive(Debug, Clone, Copy, Default)]
pub struct TimeExtender {
    last: Option<(u32, u64)>,
}

impl TimeExtender {
    /// Extends `t`; the first timestamp lands at 2^32 so earlier ones stay positive.
    pub fn extend(&mut self, t: RtpTime) -> MediaTime {
        let ext = match self.last {
            None => (1 << 32) + u64::from(t.ticks),
            Some((raw, ext)) => {
                let delta = i64::from(t.ticks.wrapping_sub(raw) as i32);
                (ext as i64 + delta).max(0) as u64
            }
        };
        self.last = Some((t.ticks, ext));
        MediaTime {
            ticks: ext,
            rate: t.rate,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_distance_wraps() {
        assert_eq!(SeqNo(0).distance_from(SeqNo(65535)), 1);
        assert_eq!(SeqNo(65535).distance_from(SeqNo(0)), -1);
        assert!(SeqNo(3).is_after(SeqNo(65000)));
        assert!(!SeqNo(65000).is_after(SeqNo(3)));
    }

    #[test]
    fn seq_extension_counts_cycles_and_keeps_late_packets_in_old_cycle() {
        let mut x = SeqExtender::default();
        let a = x.extend(SeqNo(65534));
        let b = x.extend(SeqNo(65535));
        let c = x.extend(SeqNo(1));
        let late = x.extend(SeqNo(0));
        let older = x.extend(SeqNo(65533));
        assert_eq!(b.0 - a.0, 1);
        assert_eq!(c.0 - b.0, 2);
        assert_eq!(late.0 - b.0, 1);
        assert_eq!(a.0 - older.0, 1);
        assert_eq!(x.highest(), Some(c));
    }

    #[test]
    fn time_extension_wraps_forward_and_back() {
        let r = ClockRate::NARROWBAND;
        let mut x = TimeExtender::default();
        let a = x.extend(RtpTime {
            ticks: u32::MAX - 79,
            rate: r,
        });
        let b = x.extend(RtpTime { ticks: 80, rate: r });
        let c = x.extend(RtpTime {
            ticks: u32::MAX - 79,
            rate: r,
        });
        assert_eq!(b.ticks - a.ticks, 160);
        assert_eq!(c, a);
    }

    #[test]
    fn clock_rate_converts_durations() {
        let r = ClockRate::NARROWBAND;
        assert_eq!(r.ticks_in(Duration::from_millis(20)), 160);
        assert_eq!(r.duration_of(160), Duration::from_millis(20));
    }
}
