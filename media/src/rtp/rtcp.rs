//! RTCP sender and receiver reports (RFC 3550 6.4), both ways on the relay's
//! network side: we build SR/RR compound packets from our sender and jitter buffer
//! counters and parse the peer's, which carry its view of our stream (loss, jitter,
//! round trip via LSR/DLSR). Other RTCP packet types (SDES, BYE, APP) are skipped
//! by length. The parser never panics: bad bytes give an [`RtcpError`].

use std::time::{Duration, Instant};

use super::jitter::JitterStats;
use super::units::{ClockRate, RtpTime, Ssrc};

const VERSION: u8 = 2;
const PT_SR: u8 = 200;
const PT_RR: u8 = 201;
const HEADER_LEN: usize = 8;
const SENDER_INFO_LEN: usize = 20;
const BLOCK_LEN: usize = 24;
/// Report blocks fit in the 5-bit count.
pub const MAX_BLOCKS: usize = 31;

/// A 64-bit NTP timestamp (seconds since 1900 in 32.32 fixed point).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct NtpTime(pub u64);

impl NtpTime {
    /// The middle 32 bits, as echoed in LSR.
    pub fn short(self) -> NtpShort {
        NtpShort((self.0 >> 16) as u32)
    }
}

/// The middle 32 bits of an NTP timestamp (16.16 fixed point), the LSR field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NtpShort(pub u32);

/// One reception report block: what the reporter saw of source `ssrc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportBlock {
    /// The source reported on.
    pub ssrc: Ssrc,
    /// Fraction lost since the last report, in 1/256.
    pub fraction_lost: u8,
    /// Cumulative packets lost (24-bit signed; negative with duplicates).
    pub cumulative_lost: i32,
    /// Extended highest sequence number received (cycles << 16 | seq).
    pub highest_seq: u32,
    /// Interarrival jitter in ticks of the source's media clock.
    pub jitter_ticks: u32,
    /// Middle of the NTP time of the last SR from the source (0: none yet).
    pub last_sr: NtpShort,
    /// Delay since that SR, to 1/65536 s.
    pub delay_since_last_sr: Duration,
}

/// A sender report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderReport {
    /// The sender.
    pub ssrc: Ssrc,
    /// Wallclock at the report.
    pub ntp: NtpTime,
    rtp_ticks: u32,
    /// Packets sent so far (wraps).
    pub packets: u32,
    /// Payload octets sent so far (wraps).
    pub octets: u32,
    /// What the sender received.
    pub blocks: Vec<ReportBlock>,
}

impl SenderReport {
    /// A report; `rtp_time` is the media time matching `ntp`.
    pub fn new(
        ssrc: Ssrc,
        ntp: NtpTime,
        rtp_time: RtpTime,
        packets: u32,
        octets: u32,
        blocks: Vec<ReportBlock>,
    ) -> Self {
        Self {
            ssrc,
            ntp,
            rtp_ticks: rtp_time.ticks,
            packets,
            octets,
            blocks,
        }
    }

    /// The media time matching `ntp`, read in the stream's clock.
    pub fn rtp_time(&self, rate: ClockRate) -> RtpTime {
        RtpTime {
            ticks: self.rtp_ticks,
            rate,
        }
    }
}

/// A receiver report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiverReport {
    /// The reporter.
    pub ssrc: Ssrc,
    /// What it received.
    pub blocks: Vec<ReportBlock>,
}

/// One packet of a compound RTCP datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RtcpPacket {
    /// SR.
    Sender(SenderReport),
    /// RR.
    Receiver(ReceiverReport),
    /// Another type (SDES, BYE, APP, feedback), skipped.
    Other {
        /// Its packet type.
        packet_type: u8,
    },
}

/// Why an RTCP datagram was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RtcpError {
    /// Empty datagram.
    #[error("empty RTCP datagram")]
    Empty,
    /// A packet header is cut short.
    #[error("peer sent a truncated RTCP header at byte {0}")]
    TruncatedHeader(usize),
    /// Version not 2.
    #[error("peer sent RTCP version {0}, expected 2")]
    BadVersion(u8),
    /// The length field runs past the datagram.
    #[error("peer's RTCP packet at byte {at} claims {claimed} bytes, {left} left")]
    BadLength {
        /// Offset of the packet.
        at: usize,
        /// Bytes the length field claims.
        claimed: usize,
        /// Bytes available.
        left: usize,
    },
    /// An SR/RR is shorter than its report count needs.
    #[error("peer's RTCP report at byte {0} is too short for its {1} blocks")]
    ShortReport(usize, u8),
    /// A compound packet must start with an SR or RR (RFC 3550 6.1).
    #[error("peer's compound RTCP starts with packet type {0}, not SR/RR")]
    NotReportFirst(u8),
    /// Caller error: too many blocks for one report.
    #[error("{0} report blocks do not fit one report (max 31)")]
    TooManyBlocks(usize),
}

/// Makes our report blocks about the peer's stream from the jitter buffer's
/// counters (fraction lost per interval, RFC 3550 A.3) and the peer's last SR.
#[derive(Debug, Clone, Default)]
pub struct ReceptionReporter {
    prior_expected: u64,
    prior_received: u64,
    last_sr: Option<(NtpShort, Instant)>,
}

impl ReceptionReporter {
    /// Notes the peer's SR that arrived at `now`, for LSR/DLSR.
    pub fn on_sender_report(&mut self, now: Instant, sr: &SenderReport) {
        self.last_sr = Some((sr.ntp.short(), now));
    }

    /// The block for this report interval; `None` before any packet arrived.
    pub fn block(&mut self, now: Instant, stats: &JitterStats) -> Option<ReportBlock> {
        let ssrc = stats.ssrc?;
        let expected = stats.received + stats.lost;
        let interval_expected = expected.saturating_sub(self.prior_expected);
        let interval_received = stats.received.saturating_sub(self.prior_received);
        let interval_lost = interval_expected.saturating_sub(interval_received);
        self.prior_expected = expected;
        self.prior_received = stats.received;
        let fraction_lost = (interval_lost * 256)
            .checked_div(interval_expected)
            .unwrap_or(0)
            .min(255) as u8;
        let (last_sr, delay_since_last_sr) =
            self.last_sr.map_or((NtpShort(0), Duration::ZERO), |(lsr, at)| {
                (lsr, now.saturating_duration_since(at))
            });
        Some(ReportBlock {
            ssrc,
            fraction_lost,
            cumulative_lost: stats.lost.min(0x7f_ffff) as i32,
            highest_seq: stats.highest_seq.map_or(0, |h| h.to_rtcp()),
            jitter_ticks: ClockRate::NARROWBAND.ticks_in(stats.jitter) as u32,
            last_sr,
            delay_since_last_sr,
        })
    }
}

fn be32(b: &[u8], at: usize) -> u32 {
    // Callers check the length of `b` before reading.
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}

/// Parses a compound RTCP datagram.
pub fn parse_compound(datagram: &[u8]) -> Result<Vec<RtcpPacket>, RtcpError> {
    if datagram.is_empty() {
        return Err(RtcpError::Empty);
    }
    let mut packets = Vec::new();
    let mut at = 0;
    while at < datagram.len() {
        let rest = &datagram[at..];
        if rest.len() < 4 {
            return Err(RtcpError::TruncatedHeader(at));
        }
        let version = rest[0] >> 6;
        if version != VERSION {
            return Err(RtcpError::BadVersion(version));
        }
        let count = rest[0] & 0x1f;
        let packet_type = rest[1];
        let len = (usize::from(u16::from_be_bytes([rest[2], rest[3]])) + 1) * 4;
        if len > rest.len() {
            return Err(RtcpError::BadLength {
                at,
                claimed: len,
                left: rest.len(),
            });
        }
        if at == 0 && packet_type != PT_SR && packet_type != PT_RR {
            return Err(RtcpError::NotReportFirst(packet_type));
        }
        let body = &rest[..len];
        packets.push(match packet_type {
            PT_SR => RtcpPacket::Sender(parse_sr(body, count).ok_or(RtcpError::ShortReport(at, count))?),
            PT_RR => RtcpPacket::Receiver(parse_rr(body, count).ok_or(RtcpError::ShortReport(at, count))?),
            other => RtcpPacket::Other { packet_type: other },
        });
        at += len;
    }
    Ok(packets)
}

fn parse_sr(b: &[u8], count: u8) -> Option<SenderReport> {
    let blocks_at = HEADER_LEN + SENDER_INFO_LEN;
    let blocks = parse_blocks(b, blocks_at, count)?;
    Some(SenderReport {
        ssrc: Ssrc(be32(b, 4)),
        ntp: NtpTime(u64::from(be32(b, 8)) << 32 | u64::from(be32(b, 12))),
        rtp_ticks: be32(b, 16),
        packets: be32(b, 20),
        octets: be32(b, 24),
        blocks,
    })
}

fn parse_rr(b: &[u8], count: u8) -> Option<ReceiverReport> {
    let blocks = parse_blocks(b, HEADER_LEN, count)?;
    Some(ReceiverReport {
        ssrc: Ssrc(be32(b, 4)),
        blocks,
    })
}

/// `count` blocks from `at`, or `None` if `b` is too short for them.
fn parse_blocks(b: &[u8], at: usize, count: u8) -> Option<Vec<ReportBlock>> {
    let end = at + usize::from(count) * BLOCK_LEN;
    let area = b.get(..end)?;
    Some(
        area[at..]
            .chunks_exact(BLOCK_LEN)
            .map(|c| {
                let lost = be32(c, 4);
                // Sign-extend the 24-bit cumulative count.
                let cumulative_lost = ((lost << 8) as i32) >> 8;
                ReportBlock {
                    ssrc: Ssrc(be32(c, 0)),
                    fraction_lost: (lost >> 24) as u8,
                    cumulative_lost,
                    highest_seq: be32(c, 8),
                    jitter_ticks: be32(c, 12),
                    last_sr: NtpShort(be32(c, 16)),
                    delay_since_last_sr: Duration::from_nanos(u64::from(be32(c, 20)) * 1_000_000_000 / 65536),
                }
            })
            .collect(),
    )
}

/// Builds a compound datagram from SRs and RRs (`Other` packets are not built).
pub fn build_compound(packets: &[RtcpPacket]) -> Result<Vec<u8>, RtcpError> {
    let mut out = Vec::new();
    for p in packets {
        match p {
            RtcpPacket::Sender(sr) => {
                header(&mut out, PT_SR, &sr.blocks, SENDER_INFO_LEN)?;
                out.extend(sr.ssrc.0.to_be_bytes());
                out.extend(sr.ntp.0.to_be_bytes());
                out.extend(sr.rtp_ticks.to_be_bytes());
                out.extend(sr.packets.to_be_bytes());
                out.extend(sr.octets.to_be_bytes());
                blocks(&mut out, &sr.blocks);
            }
            RtcpPacket::Receiver(rr) => {
                header(&mut out, PT_RR, &rr.blocks, 0)?;
                out.extend(rr.ssrc.0.to_be_bytes());
                blocks(&mut out, &rr.blocks);
            }
            RtcpPacket::Other { .. } => {}
        }
    }
    Ok(out)
}

/// Writes the 4-byte common header of a report with `blocks`.
fn header(
    out: &mut Vec<u8>,
    packet_type: u8,
    blocks: &[ReportBlock],
    info_len: usize,
) -> Result<(), RtcpError> {
    if blocks.len() > MAX_BLOCKS {
        return Err(RtcpError::TooManyBlocks(blocks.len()));
    }
    let len = HEADER_LEN + info_len + blocks.len() * BLOCK_LEN;
    // At most 31 blocks: the count fits 5 bits and the word count fits u16.
    out.push(VERSION << 6 | blocks.len() as u8);
    out.push(packet_type);
    out.extend(((len / 4 - 1) as u16).to_be_bytes());
    Ok(())
}

fn blocks(out: &mut Vec<u8>, blocks: &[ReportBlock]) {
    for b in blocks {
        let lost = u32::from(b.fraction_lost) << 24
            | (b.cumulative_lost.clamp(-0x80_0000, 0x7f_ffff) as u32 & 0xff_ffff);
        let dlsr =
            (b.delay_since_last_sr.as_nanos() * 65536 / 1_000_000_000).min(u128::from(u32::MAX)) as u32;
        for word in [b.ssrc.0, lost, b.highest_seq, b.jitter_ticks, b.last_sr.0, dlsr] {
            out.extend(word.to_be_bytes());
        }
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods, reason = "a test's clock starts at the real now")]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn block(ssrc: u32, cumulative_lost: i32) -> ReportBlock {
        ReportBlock {
            ssrc: Ssrc(ssrc),
            fraction_lost: 64,
            cumulative_lost,
            highest_seq: 0x0001_0005,
            jitter_ticks: 80,
            last_sr: NtpShort(0x1234_5678),
            delay_since_last_sr: Duration::from_millis(500),
        }
    }

    fn compound() -> Vec<RtcpPacket> {
        let sr = SenderReport::new(
            Ssrc(1),
            NtpTime(0xe000_0000_8000_0000),
            RtpTime {
                ticks: 160_000,
                rate: ClockRate::NARROWBAND,
            },
            1000,
            160_000,
            vec![block(2, 7)],
        );
        let rr = ReceiverReport {
            ssrc: Ssrc(1),
            blocks: vec![block(3, -2), block(4, 0x7f_ffff)],
        };
        vec![RtcpPacket::Sender(sr), RtcpPacket::Receiver(rr)]
    }

    #[test]
    fn sr_and_rr_round_trip_in_a_compound() {
        let bytes = build_compound(&compound()).unwrap();
        assert_eq!(bytes.len(), 8 + 20 + 24 + 8 + 48);
        assert_eq!(&bytes[..2], &[0x81, 200]);
        assert_eq!(parse_compound(&bytes), Ok(compound()));
        let RtcpPacket::Sender(sr) = &compound()[0] else {
            unreachable!("built as SR")
        };
        assert_eq!(sr.ntp.short(), NtpShort(0x0000_8000));
        assert_eq!(sr.rtp_time(ClockRate::NARROWBAND).ticks, 160_000);
    }

    #[test]
    fn other_packets_are_skipped_but_must_not_lead() {
        let mut bytes = build_compound(&compound()).unwrap();
        bytes.extend([0x81, 203, 0, 1, 0, 0, 0, 1]);
        let parsed = parse_compound(&bytes).unwrap();
        assert_eq!(parsed.last(), Some(&RtcpPacket::Other { packet_type: 203 }));
        assert_eq!(
            parse_compound(&[0x81, 203, 0, 1, 0, 0, 0, 1]),
            Err(RtcpError::NotReportFirst(203))
        );
    }

    #[test]
    fn bad_input_is_refused_with_a_reason() {
        assert_eq!(parse_compound(&[]), Err(RtcpError::Empty));
        assert_eq!(parse_compound(&[0x41, 200, 0, 1]), Err(RtcpError::BadVersion(1)));
        assert!(matches!(
            parse_compound(&[0x81, 201, 0, 9, 0, 0, 0, 0]),
            Err(RtcpError::BadLength { .. })
        ));
        assert_eq!(
            parse_compound(&[0x81, 201, 0, 1, 0, 0, 0, 0]),
            Err(RtcpError::ShortReport(0, 1))
        );
        let too_many = ReceiverReport {
            ssrc: Ssrc(1),
            blocks: vec![block(1, 0); 32],
        };
        assert_eq!(
            build_compound(&[RtcpPacket::Receiver(too_many)]),
            Err(RtcpError::TooManyBlocks(32))
        );
    }

    #[test]
    fn reception_reporter_computes_interval_loss_and_dlsr() {
        let t0 = Instant::now();
        let mut rep = ReceptionReporter::default();
        let mut stats = JitterStats::default();
        assert_eq!(rep.block(t0, &stats), None);
        stats.ssrc = Some(Ssrc(9));
        stats.highest_seq = Some(crate::rtp::units::ExtSeq((1 << 16) + 65535 + 10));
        (stats.received, stats.lost) = (90, 10);
        stats.jitter = Duration::from_millis(5);
        let RtcpPacket::Sender(sr) = &compound()[0] else {
            unreachable!("built as SR")
        };
        rep.on_sender_report(t0, sr);
        let b = rep.block(t0 + Duration::from_millis(250), &stats).unwrap();
        assert_eq!((b.fraction_lost, b.cumulative_lost, b.jitter_ticks), (25, 10, 40));
        assert_eq!(b.highest_seq, 0x0001_0009);
        assert_eq!(
            (b.last_sr, b.delay_since_last_sr),
            (sr.ntp.short(), Duration::from_millis(250))
        );
        (stats.received, stats.lost) = (190, 10);
        assert_eq!(
            rep.block(t0, &stats).unwrap().fraction_lost,
            0,
            "no loss this interval"
        );
    }

    #[test]
    fn parser_never_panics_on_random_or_mutated_input() {
        let mut rng = StdRng::seed_from_u64(0x5eed_7c7c);
        let seed = build_compound(&compound()).unwrap();
        for case in 0..20_000 {
            let d: Vec<u8> = if case % 2 == 0 {
                (0..rng.random_range(0..80)).map(|_| rng.random()).collect()
            } else {
                let mut d = seed.clone();
                for _ in 0..rng.random_range(1..6) {
                    let i = rng.random_range(0..d.len());
                    d[i] = rng.random();
                }
                d.truncate(rng.random_range(0..=d.len()));
                d
            };
            let _ = parse_compound(&d);
        }
    }
}
