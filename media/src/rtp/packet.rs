//! The receive edge of the relay's network side: every UDP datagram from the peer
//! enters here. [`parse`] checks RTP structure (the fuzz entry point); an
//! [`RtpReceiver`] then validates it against the session (negotiated payload types,
//! sane length, SSRC lock with RFC 3550 A.1 probation) and hands audio on to the
//! jitter buffer and telephone-events to the DTMF receiver. Bad packets are counted
//! by reason and dropped; nothing here panics on any input.

use rtp_rs::{RtpReader, RtpReaderError};

use super::units::{ClockRate, RtpTime, SeqNo, Ssrc};
use crate::sdp::G711;

/// The longest audio payload accepted: 120 ms of 8 kHz G.711.
pub const MAX_AUDIO_PAYLOAD: usize = 960;
/// Consecutive in-sequence packets a new SSRC must send before we switch to it.
pub const MIN_SEQUENTIAL: u32 = 2;

/// What a payload type carries, as negotiated in SDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadKind {
    /// G.711 audio, mu-law or A-law.
    Audio(G711),
    /// RFC 4733 `telephone-event/8000`.
    TelephoneEvent,
}

impl PayloadKind {
    /// The RTP clock of this payload.
    pub fn clock_rate(self) -> ClockRate {
        ClockRate::NARROWBAND
    }
}

/// The session's payload type map (RFC 3551 static types plus dynamic ones from SDP).
#[derive(Debug, Clone)]
pub struct PayloadMap {
    kinds: [Option<PayloadKind>; 128],
}

impl PayloadMap {
    /// An empty map: every payload type is unexpected.
    pub fn empty() -> Self {
        Self { kinds: [None; 128] }
    }

    /// PCMU on 0, PCMA on 8 and, if negotiated, telephone-event on a dynamic type.
    pub fn g711(telephone_event: Option<u8>) -> Self {
        let map = [G711::Pcmu, G711::Pcma]
            .into_iter()
            .fold(Self::empty(), |map, codec| {
                map.with(codec.payload_type(), PayloadKind::Audio(codec))
            });
        match telephone_event {
            Some(pt) => map.with(pt, PayloadKind::TelephoneEvent),
            None => map,
        }
    }

    /// This map with `pt` (masked to 7 bits) bound to `kind`.
    pub fn with(mut self, pt: u8, kind: PayloadKind) -> Self {
        self.kinds[usize::from(pt & 0x7f)] = Some(kind);
        self
    }

    /// What `pt` carries in this session, if it was negotiated.
    pub fn kind(&self, pt: u8) -> Option<PayloadKind> {
        self.kinds.get(usize::from(pt)).copied().flatten()
    }

    /// The payload type bound to `kind`, if any.
    pub fn payload_type(&self, kind: PayloadKind) -> Option<u8> {
        // Positions are below 128, so the cast cannot truncate.
        self.kinds.iter().position(|k| *k == Some(kind)).map(|p| p as u8)
    }
}

/// A structurally valid RTP packet, borrowed from the datagram.
#[derive(Debug, Clone, Copy)]
pub struct ParsedRtp<'a> {
    /// Source.
    pub ssrc: Ssrc,
    /// Sequence number.
    pub seq: SeqNo,
    /// Marker bit (talkspurt start for audio, event start for telephone-event).
    pub marker: bool,
    /// Payload type (7 bits).
    pub payload_type: u8,
    /// Payload without padding.
    pub payload: &'a [u8],
    ticks: u32,
}

impl ParsedRtp<'_> {
    /// The timestamp, read in the clock of the payload.
    pub fn time(&self, rate: ClockRate) -> RtpTime {
        RtpTime {
            ticks: self.ticks,
            rate,
        }
    }
}

/// Why a datagram was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DropReason {
    /// Shorter than the 12-byte RTP header.
    #[error("peer sent {0} bytes, shorter than an RTP header")]
    TooShort(usize),
    /// Version field not 2.
    #[error("peer sent RTP version {0}, expected 2")]
    BadVersion(u8),
    /// CSRC list or header extension runs past the datagram.
    #[error("peer sent a truncated RTP header")]
    Truncated,
    /// Padding length zero or longer than the payload.
    #[error("peer sent invalid RTP padding length {0}")]
    BadPadding(u8),
    /// An RTCP packet on the RTP port (rtcp-mux); hand it to the RTCP parser.
    #[error("RTCP packet type {0} on the RTP flow")]
    Rtcp(u8),
    /// Payload type not negotiated for this session.
    #[error("peer sent payload type {0}, not negotiated")]
    UnexpectedPayloadType(u8),
    /// From an SSRC still on probation (RFC 3550 A.1).
    #[error("SSRC {0:08x} is on probation")]
    Probation(u32),
    /// Payload length implausible for its payload type.
    #[error("peer sent a {0}-byte payload, implausible for its payload type")]
    BadLength(usize),
}

/// Parses one datagram as RTP; the never-panicking entry point for fuzzing.
pub fn parse(datagram: &[u8]) -> Result<ParsedRtp<'_>, DropReason> {
    if let Some(&pt) = datagram.get(1)
        && (192..=223).contains(&pt)
        && datagram[0] >> 6 == 2
    {
        return Err(DropReason::Rtcp(pt));
    }
    let r = RtpReader::new(datagram).map_err(|e| match e {
        RtpReaderError::BufferTooShort(n) => DropReason::TooShort(n),
        RtpReaderError::UnsupportedVersion(v) => DropReason::BadVersion(v),
        RtpReaderError::HeadersTruncated { .. } => DropReason::Truncated,
        RtpReaderError::PaddingLengthInvalid(p) => DropReason::BadPadding(p),
    })?;
    Ok(ParsedRtp {
        ssrc: Ssrc(r.ssrc()),
        seq: SeqNo(r.sequence_number().into()),
        marker: r.mark(),
        payload_type: r.payload_type(),
        payload: r.payload(),
        ticks: r.timestamp(),
    })
}

/// A packet accepted for this session.
#[derive(Debug, Clone, Copy)]
pub struct RtpPacket<'a> {
    /// Source (the locked one).
    pub ssrc: Ssrc,
    /// Sequence number.
    pub seq: SeqNo,
    /// Timestamp in the payload's clock.
    pub time: RtpTime,
    /// Marker bit.
    pub marker: bool,
    /// What the payload carries.
    pub kind: PayloadKind,
    /// The payload bytes.
    pub payload: &'a [u8],
}

/// Dropped datagrams, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DropCounts {
    /// Shorter than a header.
    pub too_short: u64,
    /// Not version 2.
    pub bad_version: u64,
    /// Truncated header.
    pub truncated: u64,
    /// Invalid padding.
    pub bad_padding: u64,
    /// RTCP on the RTP flow.
    pub rtcp: u64,
    /// Payload type not negotiated.
    pub unexpected_payload_type: u64,
    /// New SSRC on probation.
    pub probation: u64,
    /// Implausible payload length.
    pub bad_length: u64,
}

impl DropCounts {
    fn count(&mut self, reason: DropReason) {
        let slot = match reason {
            DropReason::TooShort(_) => &mut self.too_short,
            DropReason::BadVersion(_) => &mut self.bad_version,
            DropReason::Truncated => &mut self.truncated,
            DropReason::BadPadding(_) => &mut self.bad_padding,
            DropReason::Rtcp(_) => &mut self.rtcp,
            DropReason::UnexpectedPayloadType(_) => &mut self.unexpected_payload_type,
            DropReason::Probation(_) => &mut self.probation,
            DropReason::BadLength(_) => &mut self.bad_length,
        };
        *slot += 1;
    }

    /// All drops.
    pub fn total(&self) -> u64 {
        self.too_short
            + self.bad_version
            + self.truncated
            + self.bad_padding
            + self.rtcp
            + self.unexpected_payload_type
            + self.probation
            + self.bad_length
    }
}

/// A new SSRC being watched before we switch to it.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    ssrc: Ssrc,
    last_seq: SeqNo,
    run: u32,
}

/// Validates datagrams against one session's expectations.
#[derive(Debug, Clone)]
pub struct RtpReceiver {
    map: PayloadMap,
    locked: Option<Ssrc>,
    candidate: Option<Candidate>,
    min_sequential: u32,
    drops: DropCounts,
    accepted: u64,
}

impl RtpReceiver {
    /// A receiver for the negotiated `map`; it locks on the first valid SSRC.
    pub fn new(map: PayloadMap) -> Self {
        Self {
            map,
            locked: None,
            candidate: None,
            min_sequential: MIN_SEQUENTIAL,
            drops: DropCounts::default(),
            accepted: 0,
        }
    }

    /// A new negotiation in the session (RFC 3264 s8): payload types map per
    /// `map` from the next datagram; the locked source stays.
    pub fn set_map(&mut self, map: PayloadMap) {
        self.map = map;
    }

    /// Checks one datagram; `Err` means it was dropped (and counted).
    pub fn receive<'a>(&mut self, datagram: &'a [u8]) -> Result<RtpPacket<'a>, DropReason> {
        let verdict = self.validate(datagram);
        match verdict {
            Ok(_) => self.accepted += 1,
            Err(reason) => self.drops.count(reason),
        }
        verdict
    }

    fn validate<'a>(&mut self, datagram: &'a [u8]) -> Result<RtpPacket<'a>, DropReason> {
        let p = parse(datagram)?;
        let kind = self
            .map
            .kind(p.payload_type)
            .ok_or(DropReason::UnexpectedPayloadType(p.payload_type))?;
        let len = p.payload.len();
        let plausible = match kind {
            PayloadKind::Audio(_) => (1..=MAX_AUDIO_PAYLOAD).contains(&len),
            PayloadKind::TelephoneEvent => len >= 4,
        };
        if !plausible {
            return Err(DropReason::BadLength(len));
        }
        self.lock(p.ssrc, p.seq)?;
        Ok(RtpPacket {
            ssrc: p.ssrc,
            seq: p.seq,
            time: p.time(kind.clock_rate()),
            marker: p.marker,
            kind,
            payload: p.payload,
        })
    }

    /// SSRC lock: the locked source passes; a new one must send `min_sequential`
    /// consecutive in-sequence packets, uninterrupted by the locked source.
    fn lock(&mut self, ssrc: Ssrc, seq: SeqNo) -> Result<(), DropReason> {
        if self.locked.is_none_or(|l| l == ssrc) {
            self.locked = Some(ssrc);
            self.candidate = None;
            return Ok(());
        }
        let run = match self.candidate {
            Some(c) if c.ssrc == ssrc && seq == c.last_seq.next() => c.run + 1,
            _ => 1,
        };
        if run >= self.min_sequential {
            self.locked = Some(ssrc);
            self.candidate = None;
            Ok(())
        } else {
            self.candidate = Some(Candidate {
                ssrc,
                last_seq: seq,
                run,
            });
            Err(DropReason::Probation(ssrc.0))
        }
    }

    /// The source currently locked on.
    pub fn locked_ssrc(&self) -> Option<Ssrc> {
        self.locked
    }

    /// Dropped datagrams by reason.
    pub fn drops(&self) -> DropCounts {
        self.drops
    }

    /// Accepted packets.
    pub fn accepted(&self) -> u64 {
        self.accepted
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn packet(pt: u8, seq: u16, ssrc: u32, payload: &[u8]) -> Vec<u8> {
        rtp_rs::RtpPacketBuilder::new()
            .payload_type(pt)
            .sequence(seq.into())
            .ssrc(ssrc)
            .timestamp(u32::from(seq) * 160)
            .payload(payload)
            .build()
            // The builder only fails on payload types above 127 or too many CSRCs.
            .unwrap()
    }

    #[test]
    fn accepts_negotiated_audio() {
        let mut rx = RtpReceiver::new(PayloadMap::g711(Some(101)));
        let d = packet(8, 7, 42, &[0xd5; 160]);
        let p = rx.receive(&d).expect("valid PCMA");
        assert_eq!(
            (p.kind, p.seq, p.ssrc),
            (PayloadKind::Audio(G711::Pcma), SeqNo(7), Ssrc(42))
        );
        assert_eq!(p.time.ticks, 7 * 160);
        assert_eq!(p.payload.len(), 160);
        assert_eq!(
            PayloadMap::g711(Some(101)).payload_type(PayloadKind::TelephoneEvent),
            Some(101)
        );
    }

    #[test]
    fn drops_by_reason() {
        let mut rx = RtpReceiver::new(PayloadMap::g711(None));
        assert!(matches!(rx.receive(&[0x80; 5]), Err(DropReason::TooShort(5))));
        let mut v1 = packet(0, 1, 1, &[0; 160]);
        v1[0] = 0x40;
        assert!(matches!(rx.receive(&v1), Err(DropReason::BadVersion(1))));
        assert!(matches!(
            rx.receive(&packet(101, 1, 1, &[0; 4])),
            Err(DropReason::UnexpectedPayloadType(101))
        ));
        assert!(matches!(
            rx.receive(&packet(0, 1, 1, &[])),
            Err(DropReason::BadLength(0))
        ));
        assert!(matches!(
            rx.receive(&[0x80, 200, 0, 1, 0, 0, 0, 0]),
            Err(DropReason::Rtcp(200))
        ));
        let d = rx.drops();
        assert_eq!(
            (
                d.too_short,
                d.bad_version,
                d.unexpected_payload_type,
                d.bad_length,
                d.rtcp
            ),
            (1, 1, 1, 1, 1)
        );
        assert_eq!(d.total(), 5);
    }

    #[test]
    fn new_ssrc_switches_only_after_probation() {
        let mut rx = RtpReceiver::new(PayloadMap::g711(None));
        let a = |seq| packet(0, seq, 0xa, &[0xff; 160]);
        let b = |seq| packet(0, seq, 0xb, &[0xff; 160]);
        assert!(rx.receive(&a(1)).is_ok());
        assert_eq!(
            rx.receive(&b(100)).map(|p| p.ssrc),
            Err(DropReason::Probation(0xb))
        );
        assert!(rx.receive(&a(2)).is_ok(), "locked source interrupts the run");
        assert!(rx.receive(&b(101)).is_err());
        assert!(rx.receive(&b(103)).is_err(), "out of sequence restarts the run");
        assert_eq!(rx.receive(&b(104)).map(|p| p.ssrc), Ok(Ssrc(0xb)));
        assert_eq!(rx.locked_ssrc(), Some(Ssrc(0xb)));
        assert!(rx.receive(&a(3)).is_err(), "the old source is now on probation");
        assert_eq!(rx.drops().probation, 4);
    }

    #[test]
    fn never_panics_on_random_or_mutated_input() {
        let mut rng = StdRng::seed_from_u64(0x0ff_400c);
        let mut rx = RtpReceiver::new(PayloadMap::g711(Some(101)));
        let seed = packet(0, 1, 1, &[0x55; 160]);
        for case in 0..20_000 {
            let datagram: Vec<u8> = if case % 2 == 0 {
                let len = rng.random_range(0..64);
                (0..len).map(|_| rng.random()).collect()
            } else {
                let mut d = seed.clone();
                for _ in 0..rng.random_range(1..6) {
                    let i = rng.random_range(0..d.len());
                    d[i] = rng.random();
                }
                d.truncate(rng.random_range(0..=d.len()));
                d
            };
            if let Ok(p) = rx.receive(&datagram) {
                assert!(p.payload.len() <= datagram.len());
            }
        }
        assert_eq!(rx.accepted() + rx.drops().total(), 20_000);
    }
}
