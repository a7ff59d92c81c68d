//! A seeded network simulation for the jitter buffer's tests and the relay
//! benchmark: it makes a packet schedule (send and arrival times of 20 ms packets
//! under loss and jitter) and plays it through a [`JitterBuffer`] with a 20 ms
//! playout clock in simulated time, measuring what the line would hear.

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::jitter::{AudioPacket, FRAME_PERIOD, FRAME_SAMPLES, FrameKind, JitterBuffer, JitterStats};
use super::units::{ClockRate, RtpTime, SeqNo, Ssrc};

/// Extra one-way delay on top of the base delay, per packet.
#[derive(Debug, Clone, Copy)]
pub enum JitterModel {
    /// Every packet takes the base delay.
    None,
    /// Uniform in `[0, max]`.
    Uniform(Duration),
    /// Lomax (Pareto II) with this scale and shape, capped: mostly small, a long tail.
    Pareto {
        /// Scale.
        scale: Duration,
        /// Shape (larger is lighter-tailed).
        shape: f64,
        /// Largest extra delay.
        cap: Duration,
    },
}

/// The simulated path.
#[derive(Debug, Clone, Copy)]
pub struct NetProfile {
    /// Fixed one-way delay.
    pub base_delay: Duration,
    /// Variable delay.
    pub jitter: JitterModel,
    /// Probability that a packet is lost.
    pub loss: f64,
}

/// One packet that made it through.
#[derive(Debug, Clone, Copy)]
pub struct SimPacket {
    /// Position in the stream (packet `i` carries samples `160 i ..`).
    pub index: u32,
    /// Send time since the start.
    pub sent: Duration,
    /// Arrival time since the start.
    pub arrival: Duration,
}

/// `count` packets sent every 20 ms through `profile`, by arrival time.
pub fn schedule(seed: u64, count: u32, profile: &NetProfile) -> Vec<SimPacket> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut packets: Vec<SimPacket> = (0..count)
        .filter_map(|index| {
            let lost = rng.random_bool(profile.loss);
            let extra = match profile.jitter {
                JitterModel::None => Duration::ZERO,
                JitterModel::Uniform(max) => max.mul_f64(rng.random()),
                JitterModel::Pareto { scale, shape, cap } => {
                    let u: f64 = rng.random_range(f64::EPSILON..1.0);
                    scale.mul_f64(u.powf(-1.0 / shape) - 1.0).min(cap)
                }
            };
            let sent = FRAME_PERIOD * index;
            (!lost).then_some(SimPacket {
                index,
                sent,
                arrival: sent + profile.base_delay + extra,
            })
        })
        .collect();
    packets.sort_by_key(|p| p.arrival);
    packets
}

/// The packet the simulation sends as packet `index`: its samples name it. Sequence
/// numbers wrap after packet 1535 and timestamps after packet 1000.
pub fn sim_packet(index: u32) -> AudioPacket {
    let mut samples = vec![8000i16; FRAME_SAMPLES];
    samples[0] = (index & 0x7fff) as i16;
    samples[1] = (index >> 15) as i16;
    AudioPacket {
        ssrc: Ssrc(0x5151),
        seq: SeqNo(index.wrapping_add(64_000) as u16),
        time: RtpTime {
            ticks: index.wrapping_mul(160).wrapping_add(u32::MAX - 160 * 1000),
            rate: ClockRate::NARROWBAND,
        },
        marker: index == 0,
        samples,
    }
}

/// What the line heard.
#[derive(Debug, Clone)]
pub struct PlayoutReport {
    /// Frames popped (one per tick, always).
    pub frames: u64,
    /// Frames of received audio.
    pub audio: u64,
    /// Audio frames played out of order (should be none).
    pub out_of_order: u64,
    /// Per audio frame: playout time minus send time minus the base delay, sorted.
    pub added_latency: Vec<Duration>,
    /// The buffer's own view.
    pub stats: JitterStats,
}

impl PlayoutReport {
    /// The `q` quantile (0..=1) of the added latency.
    pub fn latency_quantile(&self, q: f64) -> Duration {
        let n = self.added_latency.len();
        if n == 0 {
            return Duration::ZERO;
        }
        self.added_latency[((n - 1) as f64 * q.clamp(0.0, 1.0)).round() as usize]
    }

    /// Late packets as a fraction of received ones.
    pub fn late_fraction(&self) -> f64 {
        self.stats.late as f64 / self.stats.received.max(1) as f64
    }
}

/// Plays `packets` (from [`schedule`]) through `buffer`, popping every 20 ms from
/// `pop_phase` on, until `tail` after the last arrival.
pub fn play_through(
    buffer: &mut JitterBuffer,
    start: Instant,
    packets: &[SimPacket],
    profile: &NetProfile,
    pop_phase: Duration,
    tail: Duration,
) -> PlayoutReport {
    let sent_of = |index: u32| FRAME_PERIOD * index;
    let end = packets.last().map_or(Duration::ZERO, |p| p.arrival) + tail;
    let mut next = packets.iter().peekable();
    let mut report = PlayoutReport {
        frames: 0,
        audio: 0,
        out_of_order: 0,
        added_latency: Vec::with_capacity(packets.len()),
        stats: JitterStats::default(),
    };
    let mut last_index = None;
    let mut tick = pop_phase;
    while tick <= end {
        while let Some(p) = next.next_if(|p| p.arrival <= tick) {
            buffer.push(start + p.arrival, sim_packet(p.index));
        }
        let frame = buffer.pop(start + tick);
        report.frames += 1;
        if frame.kind == FrameKind::Audio {
            let index = (frame.samples[0] as u32) | ((frame.samples[1] as u32) << 15);
            report.audio += 1;
            if last_index.is_some_and(|l| index <= l) {
                report.out_of_order += 1;
            }
            last_index = Some(index);
            let heard = tick.saturating_sub(sent_of(index) + profile.base_delay);
            report.added_latency.push(heard);
        }
        tick += FRAME_PERIOD;
    }
    report.added_latency.sort();
    report.stats = buffer.stats();
    report
}
