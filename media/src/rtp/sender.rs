//! The send edge of the relay's network side: line audio, already in the payload's
//! G.711 byte format (see `codec`), goes in as it arrives; one 20 ms RTP packet comes
//! out per tick of a 20 ms clock, with sequence numbers +1, timestamps +160, our
//! SSRC, and the marker bit on the first packet of each talkspurt. Sans-IO in the
//! crate's core shape: `handle_input`, `handle_timeout`, `poll_output`,
//! `poll_timeout`.

use std::collections::VecDeque;
use std::time::Instant;

use rand::Rng;

use super::jitter::{FRAME_PERIOD, FRAME_SAMPLES};
use super::units::{ClockRate, RtpTime, SeqNo, Ssrc};

/// Frames of backlog kept before the oldest audio is dropped (bounds latency).
const MAX_BACKLOG_FRAMES: usize = 5;

/// What has been sent, for RTCP sender reports and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SenderStats {
    /// Packets sent.
    pub packets: u64,
    /// Payload octets sent.
    pub octets: u64,
    /// Ticks with less than a frame of audio (nothing sent; next packet marked).
    pub underruns: u64,
    /// Samples dropped because the backlog was too long.
    pub dropped_samples: u64,
}

/// Packetizes one direction of line audio into RTP.
#[derive(Debug, Clone)]
pub struct RtpSender {
    ssrc: Ssrc,
    payload_type: u8,
    seq: SeqNo,
    time: RtpTime,
    pending: VecDeque<u8>,
    next_tick: Option<Instant>,
    talkspurt_start: bool,
    out: VecDeque<Vec<u8>>,
    stats: SenderStats,
}

impl RtpSender {
    /// A sender for `payload_type` whose SSRC, first sequence number and first
    /// timestamp come from `rng` (seed it in tests).
    pub fn new(payload_type: u8, rng: &mut impl Rng) -> Self {
        Self {
            ssrc: Ssrc(rng.random()),
            payload_type: payload_type & 0x7f,
            seq: SeqNo(rng.random()),
            time: RtpTime {
                ticks: rng.random(),
                rate: ClockRate::NARROWBAND,
            },
            pending: VecDeque::new(),
            next_tick: None,
            talkspurt_start: true,
            out: VecDeque::new(),
            stats: SenderStats::default(),
        }
    }

    /// Our SSRC.
    pub fn ssrc(&self) -> Ssrc {
        self.ssrc
    }

    /// Takes G.711 payload bytes (one per 8 kHz sample); the first call starts the
    /// 20 ms clock at `now`.
    pub fn handle_input(&mut self, now: Instant, payload_bytes: &[u8]) {
        self.next_tick.get_or_insert(now);
        self.pending.extend(payload_bytes);
        let max = MAX_BACKLOG_FRAMES * FRAME_SAMPLES;
        if self.pending.len() > max {
            let excess = self.pending.len() - max;
            self.pending.drain(..excess);
            self.stats.dropped_samples += excess as u64;
        }
    }

    /// Runs every tick due at `now`: each sends one frame if there is one.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(tick) = self.next_tick.filter(|t| *t <= now) {
            self.next_tick = Some(tick + FRAME_PERIOD);
            self.send_frame();
        }
    }

    fn send_frame(&mut self) {
        if self.pending.len() < FRAME_SAMPLES {
            // The stream pauses: time moves on, and the next packet starts a talkspurt.
            self.stats.underruns += 1;
            self.talkspurt_start = true;
        } else {
            let payload: Vec<u8> = self.pending.drain(..FRAME_SAMPLES).collect();
            let packet = rtp_rs::RtpPacketBuilder::new()
                .payload_type(self.payload_type)
                .marked(self.talkspurt_start)
                .sequence(self.seq.0.into())
                .ssrc(self.ssrc.0)
                .timestamp(self.time.ticks)
                .payload(&payload)
                .build()
                // Fails only for payload types above 127 (masked in `new`) or >15 CSRCs (none).
                .unwrap();
            self.out.push_back(packet);
            self.stats.packets += 1;
            self.stats.octets += FRAME_SAMPLES as u64;
            self.seq = self.seq.next();
            self.talkspurt_start = false;
        }
        self.time = self.time.add_ticks(FRAME_SAMPLES as u32);
    }

    /// The next RTP datagram to send, if any.
    pub fn poll_output(&mut self) -> Option<Vec<u8>> {
        self.out.pop_front()
    }

    /// When `handle_timeout` is next due (`None` before the first input).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_tick
    }

    /// What has been sent so far.
    pub fn stats(&self) -> SenderStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtp::packet::parse;
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use std::time::Duration;

    #[test]
    fn paces_20ms_packets_with_consecutive_seq_and_time() {
        let t0 = Instant::now();
        let mut tx = RtpSender::new(0, &mut StdRng::seed_from_u64(9));
        assert_eq!(tx.poll_timeout(), None);
        tx.handle_input(t0, &[0x11; 480]);
        assert_eq!(tx.poll_timeout(), Some(t0));
        tx.handle_timeout(t0 + Duration::from_millis(45));
        assert_eq!(tx.poll_timeout(), Some(t0 + Duration::from_millis(60)));
        let packets: Vec<Vec<u8>> = std::iter::from_fn(|| tx.poll_output()).collect();
        assert_eq!(packets.len(), 3);
        let parsed: Vec<_> = packets.iter().map(|p| parse(p).unwrap()).collect();
        for pair in parsed.windows(2) {
            assert_eq!(pair[1].seq, pair[0].seq.next());
            let rate = ClockRate::NARROWBAND;
            assert_eq!(pair[1].time(rate).ticks_since(pair[0].time(rate)), 160);
            assert_eq!(pair[1].ssrc, tx.ssrc());
        }
        assert_eq!(
            parsed.iter().map(|p| p.marker).collect::<Vec<_>>(),
            [true, false, false]
        );
        assert!(
            parsed
                .iter()
                .all(|p| p.payload == [0x11; 160] && p.payload_type == 0)
        );
    }

    #[test]
    fn underrun_skips_time_and_marks_the_next_talkspurt() {
        let t0 = Instant::now();
        let mut tx = RtpSender::new(8, &mut StdRng::seed_from_u64(1));
        tx.handle_input(t0, &[0xd5; 160]);
        tx.handle_timeout(t0);
        tx.handle_timeout(t0 + Duration::from_millis(20));
        tx.handle_input(t0 + Duration::from_millis(30), &[0xd5; 160]);
        tx.handle_timeout(t0 + Duration::from_millis(40));
        let a = tx.poll_output().unwrap();
        let b = tx.poll_output().unwrap();
        let (a, b) = (parse(&a).unwrap(), parse(&b).unwrap());
        let rate = ClockRate::NARROWBAND;
        assert_eq!(b.time(rate).ticks_since(a.time(rate)), 320);
        assert_eq!(b.seq, a.seq.next());
        assert!(a.marker && b.marker);
        assert_eq!(tx.stats().underruns, 1);
    }

    #[test]
    fn seeded_rng_replays_and_backlog_is_bounded() {
        let a = RtpSender::new(0, &mut StdRng::seed_from_u64(5));
        let b = RtpSender::new(0, &mut StdRng::seed_from_u64(5));
        assert_eq!((a.ssrc, a.seq, a.time), (b.ssrc, b.seq, b.time));
        let mut tx = a;
        tx.handle_input(Instant::now(), &[0; 2000]);
        assert_eq!(tx.stats().dropped_samples, 2000 - 800);
    }
}
