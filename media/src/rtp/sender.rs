//! The send edge of the relay's network side: line audio, already in the payload's
//! G.711 byte format (see `codec`), goes in as it arrives; one 20 ms RTP packet comes
//! out per tick of a 20 ms clock, with sequence numbers +1, timestamps +160, our
//! SSRC, and the marker bit on the first packet of each talkspurt. A key press
//! (`send_digit`) replaces the audio with an RFC 4733 telephone-event series for its
//! duration: one timestamp, growing durations, three end packets. Sans-IO in the
//! crate's core shape: `handle_input`, `handle_timeout`, `poll_output`,
//! `poll_timeout`.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rand::Rng;

use super::dtmf::{SEND_VOLUME, TelephoneEvent, event_code};
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

/// Copies of the final packet of a telephone-event (RFC 4733 2.5.1.4).
const END_PACKETS: usize = 3;
const TICKS_PER_FRAME: u16 = FRAME_SAMPLES as u16;

/// The caller asked for a key that is not on a DTMF keypad.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a DTMF digit (0-9 * # A-D)")]
pub struct NotADigit(pub char);

/// A telephone-event being sent.
#[derive(Debug, Clone, Copy)]
struct EventRun {
    payload_type: u8,
    code: u8,
    start: RtpTime,
    total: u16,
    sent: u16,
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
    event: Option<EventRun>,
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
            event: None,
            out: VecDeque::new(),
            stats: SenderStats::default(),
        }
    }

    /// The audio goes out as `payload_type` from the next packet (a codec
    /// changed by a new offer); SSRC, sequence and timestamps run on.
    pub fn set_payload_type(&mut self, payload_type: u8) {
        self.payload_type = payload_type & 0x7f;
    }

    /// Samples waiting for their packet.
    pub fn backlog(&self) -> usize {
        self.pending.len()
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

    /// Sends `digit` for `duration` (at least one frame) as telephone-events on
    /// `payload_type`, starting at the next tick, in place of the audio.
    pub fn send_digit(&mut self, payload_type: u8, digit: char, duration: Duration) -> Result<(), NotADigit> {
        let code = event_code(digit).ok_or(NotADigit(digit))?;
        let ticks = self
            .time
            .rate
            .ticks_in(duration)
            .clamp(u64::from(TICKS_PER_FRAME), u64::from(u16::MAX));
        self.event = Some(EventRun {
            payload_type: payload_type & 0x7f,
            code,
            start: self.time,
            // Clamped to u16 just above.
            total: ticks as u16,
            sent: 0,
        });
        Ok(())
    }

    fn send_frame(&mut self) {
        let have_audio = self.pending.len() >= FRAME_SAMPLES;
        if let Some(run) = self.event.as_mut() {
            // The key press replaces this frame of audio.
            self.pending.drain(..FRAME_SAMPLES.min(self.pending.len()));
            let first = run.sent == 0;
            run.sent = run.sent.saturating_add(TICKS_PER_FRAME).min(run.total);
            let run = *run;
            let end = run.sent == run.total;
            let payload = TelephoneEvent {
                event: run.code,
                end,
                volume: SEND_VOLUME,
                duration: run.sent,
            }
            .to_bytes();
            let copies = if end { END_PACKETS } else { 1 };
            for copy in 0..copies {
                self.emit(run.payload_type, first && copy == 0, run.start, &payload);
            }
            if end {
                self.event = None;
                self.talkspurt_start = true;
            }
        } else if have_audio {
            let payload: Vec<u8> = self.pending.drain(..FRAME_SAMPLES).collect();
            self.emit(self.payload_type, self.talkspurt_start, self.time, &payload);
            self.talkspurt_start = false;
        } else {
            // The stream pauses: time moves on, and the next packet starts a talkspurt.
            self.stats.underruns += 1;
            self.talkspurt_start = true;
        }
        self.time = self.time.add_ticks(u32::from(TICKS_PER_FRAME));
    }

    fn emit(&mut self, payload_type: u8, marker: bool, time: RtpTime, payload: &[u8]) {
        let packet = rtp_rs::RtpPacketBuilder::new()
            .payload_type(payload_type)
            .marked(marker)
            .sequence(self.seq.0.into())
            .ssrc(self.ssrc.0)
            .timestamp(time.ticks)
            .payload(payload)
            .build()
            // Fails only for payload types above 127 (all masked) or >15 CSRCs (none).
            .unwrap();
        self.out.push_back(packet);
        self.stats.packets += 1;
        self.stats.octets += payload.len() as u64;
        self.seq = self.seq.next();
    }

    /// The next RTP datagram to send, if any.
    pub fn poll_output(&mut self) -> Option<Vec<u8>> {
        self.out.pop_front()
    }

    /// When `handle_timeout` is next due (`None` before the first input).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_tick
    }

    /// Media time of the next frame (with `stats`, what an RTCP SR reports).
    pub fn media_time(&self) -> RtpTime {
        self.time
    }

    /// What has been sent so far.
    pub fn stats(&self) -> SenderStats {
        self.stats
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods, reason = "a test's clock starts at the real now")]
mod tests {
    use super::*;
    use crate::rtp::dtmf::DtmfReceiver;
    use crate::rtp::packet::parse;
    use crate::rtp::packet::{PayloadMap, RtpReceiver};
    use rand::SeedableRng;
    use rand::rngs::StdRng;

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

    #[test]
    fn a_digit_becomes_one_event_series_and_one_received_digit() {
        let t0 = Instant::now();
        let mut tx = RtpSender::new(0, &mut StdRng::seed_from_u64(3));
        tx.handle_input(t0, &[0xff; 1600]);
        tx.handle_timeout(t0);
        tx.send_digit(101, '5', Duration::from_millis(100)).unwrap();
        assert_eq!(tx.send_digit(101, 'x', Duration::ZERO), Err(NotADigit('x')));
        tx.handle_timeout(t0 + Duration::from_millis(120));
        let packets: Vec<Vec<u8>> = std::iter::from_fn(|| tx.poll_output()).collect();
        assert_eq!(packets.len(), 1 + 4 + 3, "audio, four updates, three ends");
        let events: Vec<_> = packets[1..].iter().map(|p| parse(p).unwrap()).collect();
        let durations: Vec<u16> = events
            .iter()
            .map(|p| TelephoneEvent::parse(p.payload).unwrap().duration)
            .collect();
        assert_eq!(durations, [160, 320, 480, 640, 800, 800, 800]);
        assert!(events.iter().all(|p| p.payload_type == 101
            && p.time(ClockRate::NARROWBAND) == events[0].time(ClockRate::NARROWBAND)));
        assert_eq!(
            events.iter().map(|p| p.marker).collect::<Vec<_>>(),
            [true, false, false, false, false, false, false]
        );
        let mut rx = RtpReceiver::new(PayloadMap::g711(Some(101)));
        let mut dtmf = DtmfReceiver::default();
        let digits: Vec<_> = packets
            .iter()
            .filter_map(|p| dtmf.handle(&rx.receive(p).unwrap()))
            .collect();
        assert_eq!(digits.len(), 1);
        assert_eq!(
            (digits[0].digit, digits[0].duration),
            ('5', Duration::from_millis(100))
        );
    }
}
