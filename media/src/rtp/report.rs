//! RTCP reporting for one RTP/AVP session (RFC 3550 s6), sans-IO: every report
//! interval it makes a compound of one SR (once we have sent RTP) or RR, with a
//! reception block about the peer's stream from the jitter buffer's counters; the
//! peer's SR/RR datagrams go in, and what they say of our stream (fraction and
//! cumulative loss, interarrival jitter, round trip from LSR/DLSR) is kept as
//! [`PeerReports`], the call's RTCP stats. Time is injected: `now` as an `Instant`,
//! and one wallclock reading (NTP) at construction that NTP timestamps count from.

use std::collections::VecDeque;
use std::time::{Duration, Instant, SystemTime};

use super::jitter::JitterStats;
use super::rtcp::{
    NtpShort, NtpTime, ReceiverReport, ReceptionReporter, RtcpError, RtcpPacket, SenderReport,
    build_compound, parse_compound,
};
use super::sender::SenderStats;
use super::units::{ClockRate, RtpTime, Ssrc};

/// Seconds from the NTP epoch (1900) to the Unix epoch (1970).
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

impl NtpTime {
    /// The NTP timestamp of a wallclock reading.
    pub fn from_system_time(at: SystemTime) -> Self {
        let since_unix = at.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
        Self::from_duration(since_unix + Duration::from_secs(NTP_UNIX_OFFSET))
    }

    /// `since_1900` as 32.32 fixed point (wraps in 2036 like every NTP clock).
    fn from_duration(since_1900: Duration) -> Self {
        let fraction = (u64::from(since_1900.subsec_nanos()) << 32) / 1_000_000_000;
        Self(since_1900.as_secs() << 32 | fraction)
    }

    /// `d` later.
    pub fn later_by(self, d: Duration) -> Self {
        let ticks = (d.as_nanos() << 32) / 1_000_000_000;
        Self(self.0.wrapping_add(ticks as u64))
    }
}

impl NtpShort {
    /// `self - earlier`, the short way round, as a duration (16.16 seconds).
    fn since(self, earlier: NtpShort) -> Duration {
        let ticks = self.0.wrapping_sub(earlier.0);
        Duration::from_nanos(u64::from(ticks) * 1_000_000_000 / 65_536)
    }
}

/// The RTCP side of a call: what went out, and what the peer said of our stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeerReports {
    /// Compound reports we sent.
    pub sent: u64,
    /// Compound reports the peer sent that parsed.
    pub received: u64,
    /// Datagrams that did not parse as RTCP (see [`RtcpError`]).
    pub malformed: u64,
    /// The peer's last word on our stream: fraction lost in its last interval (1/256).
    pub fraction_lost: u8,
    /// Cumulative packets of ours it lost.
    pub cumulative_lost: i32,
    /// Interarrival jitter of our stream as it measured it.
    pub jitter: Duration,
    /// Round trip from its LSR/DLSR (RFC 3550 6.4.1), once it echoed one of our SRs.
    pub round_trip: Option<Duration>,
    /// Packets it says it sent (its last SR).
    pub peer_packets_sent: Option<u32>,
}

impl PeerReports {
    /// One header value: `sent=3;received=2;fraction-lost=0.250;cumulative-lost=10;jitter-ms=10;rtt-ms=1`
    /// (`rtt-ms` only once known).
    pub fn to_header(&self) -> String {
        let mut text = format!(
            "sent={};received={};fraction-lost={:.3};cumulative-lost={};jitter-ms={:.0}",
            self.sent,
            self.received,
            f64::from(self.fraction_lost) / 256.0,
            self.cumulative_lost,
            self.jitter.as_secs_f64() * 1000.0
        );
        if let Some(rtt) = self.round_trip {
            text.push_str(&format!(";rtt-ms={:.0}", rtt.as_secs_f64() * 1000.0));
        }
        text
    }
}

/// Our sending side at report time.
#[derive(Debug, Clone, Copy)]
pub struct SendSide {
    /// Our SSRC.
    pub ssrc: Ssrc,
    /// What we sent.
    pub stats: SenderStats,
    /// Media time of our next packet.
    pub media_time: RtpTime,
}

/// Sends SR/RR every interval and takes in the peer's.
#[derive(Debug)]
pub struct RtcpReporter {
    interval: Duration,
    next_report: Instant,
    /// The wallclock at `epoch.0`.
    epoch: (Instant, NtpTime),
    reception: ReceptionReporter,
    peer: PeerReports,
    out: VecDeque<Vec<u8>>,
}

impl RtcpReporter {
    /// A reporter whose NTP clock reads `wallclock` at `now`; the first report goes
    /// out half an interval in (RFC 3550 6.2: the initial interval is halved).
    pub fn new(now: Instant, wallclock: NtpTime, interval: Duration) -> Self {
        Self {
            interval,
            next_report: now + interval / 2,
            epoch: (now, wallclock),
            reception: ReceptionReporter::default(),
            peer: PeerReports::default(),
            out: VecDeque::new(),
        }
    }

    fn ntp(&self, now: Instant) -> NtpTime {
        self.epoch.1.later_by(now.saturating_duration_since(self.epoch.0))
    }

    /// An RTCP datagram from the peer; `ours` is our SSRC (blocks about it are kept).
    pub fn handle_datagram(&mut self, now: Instant, bytes: &[u8], ours: Ssrc) -> Result<(), RtcpError> {
        let packets = match parse_compound(bytes) {
            Ok(packets) => packets,
            Err(err) => {
                self.peer.malformed += 1;
                return Err(err);
            }
        };
        self.peer.received += 1;
        let arrival = self.ntp(now).short();
        for packet in packets {
            let blocks = match &packet {
                RtcpPacket::Sender(sr) => {
                    self.reception.on_sender_report(now, sr);
                    self.peer.peer_packets_sent = Some(sr.packets);
                    &sr.blocks
                }
                RtcpPacket::Receiver(rr) => &rr.blocks,
                RtcpPacket::Other { .. } => continue,
            };
            for block in blocks.iter().filter(|b| b.ssrc == ours) {
                self.peer.fraction_lost = block.fraction_lost;
                self.peer.cumulative_lost = block.cumulative_lost;
                self.peer.jitter = ClockRate::NARROWBAND.duration_of(u64::from(block.jitter_ticks));
                if block.last_sr != NtpShort(0) {
                    let held_and_back = arrival.since(block.last_sr);
                    self.peer.round_trip = Some(held_and_back.saturating_sub(block.delay_since_last_sr));
                }
            }
        }
        Ok(())
    }

    /// When the next report is due.
    pub fn poll_timeout(&self) -> Instant {
        self.next_report
    }

    /// Makes the report if it is due at `now`: an SR once we have sent RTP, else
    /// an RR; with a block about the peer's stream once it has sent any.
    pub fn handle_timeout(&mut self, now: Instant, ours: &SendSide, theirs: &JitterStats) {
        if now < self.next_report {
            return;
        }
        self.next_report = now + self.interval;
        let blocks: Vec<_> = self.reception.block(now, theirs).into_iter().collect();
        let report = if ours.stats.packets > 0 {
            RtcpPacket::Sender(SenderReport::new(
                ours.ssrc,
                self.ntp(now),
                ours.media_time,
                ours.stats.packets as u32,
                ours.stats.octets as u32,
                blocks,
            ))
        } else {
            RtcpPacket::Receiver(ReceiverReport {
                ssrc: ours.ssrc,
                blocks,
            })
        };
        // One block at most: within the 31 that fit a report.
        let bytes = build_compound(&[report]).expect("one report block fits");
        self.out.push_back(bytes);
        self.peer.sent += 1;
    }

    /// The next RTCP datagram to send.
    pub fn poll_output(&mut self) -> Option<Vec<u8>> {
        self.out.pop_front()
    }

    /// What the peer reported so far.
    pub fn peer(&self) -> PeerReports {
        self.peer
    }
}

/// Whether a datagram on a multiplexed port is RTCP (RFC 5761 s4: the second byte,
/// the RTCP packet type, is 192..=223, where RTP would have marker + payload type
/// 64..=95, which no dynamic or static audio type uses).
pub fn is_rtcp(datagram: &[u8]) -> bool {
    datagram.get(1).is_some_and(|b| (192..=223).contains(b))
}

#[cfg(test)]
#[allow(clippy::disallowed_methods, reason = "a test's clock starts at the real now")]
mod tests {
    use super::*;
    use crate::rtp::rtcp::ReportBlock;
    use crate::rtp::units::ExtSeq;

    const INTERVAL: Duration = Duration::from_secs(5);

    fn send_side(packets: u64) -> SendSide {
        SendSide {
            ssrc: Ssrc(0xAAAA),
            stats: SenderStats {
                packets,
                octets: packets * 160,
                ..SenderStats::default()
            },
            media_time: RtpTime {
                ticks: 16_000,
                rate: ClockRate::NARROWBAND,
            },
        }
    }

    /// The report due now, which must be one SR.
    fn only_sr(r: &mut RtcpReporter) -> SenderReport {
        match &parse_compound(&r.poll_output().unwrap()).unwrap()[..] {
            [RtcpPacket::Sender(sr)] => sr.clone(),
            other => panic!("one SR expected: {other:?}"),
        }
    }

    fn received(count: u64, lost: u64) -> JitterStats {
        JitterStats {
            ssrc: Some(Ssrc(0xBBBB)),
            highest_seq: Some(ExtSeq((1 << 16) + count + lost)),
            received: count,
            lost,
            jitter: Duration::from_millis(4),
            ..JitterStats::default()
        }
    }

    #[test]
    fn rr_before_sending_then_sr_every_interval() {
        let t0 = Instant::now();
        let wall = NtpTime::from_system_time(SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000));
        let mut r = RtcpReporter::new(t0, wall, INTERVAL);
        assert_eq!(
            r.poll_timeout(),
            t0 + INTERVAL / 2,
            "first report at half an interval"
        );
        r.handle_timeout(t0 + Duration::from_secs(1), &send_side(0), &received(0, 0));
        assert_eq!(r.poll_output(), None, "not due yet");
        r.handle_timeout(r.poll_timeout(), &send_side(0), &JitterStats::default());
        let rr = parse_compound(&r.poll_output().unwrap()).unwrap();
        assert_eq!(
            rr,
            [RtcpPacket::Receiver(ReceiverReport {
                ssrc: Ssrc(0xAAAA),
                blocks: vec![]
            })]
        );
        let at = r.poll_timeout();
        assert_eq!(at, t0 + INTERVAL / 2 + INTERVAL);
        r.handle_timeout(at, &send_side(250), &received(90, 10));
        let sr = only_sr(&mut r);
        assert_eq!((sr.ssrc, sr.packets, sr.octets), (Ssrc(0xAAAA), 250, 40_000));
        assert_eq!(
            sr.ntp,
            wall.later_by(at - t0),
            "NTP time counts from the wallclock reading"
        );
        assert_eq!(sr.blocks.len(), 1);
        assert_eq!(
            (
                sr.blocks[0].ssrc,
                sr.blocks[0].fraction_lost,
                sr.blocks[0].cumulative_lost
            ),
            (Ssrc(0xBBBB), 25, 10)
        );
        assert_eq!(r.peer().sent, 2);
    }

    #[test]
    fn the_peers_reports_give_loss_jitter_and_round_trip() {
        let t0 = Instant::now();
        let wall = NtpTime(0xE000_0000_0000_0000);
        let mut r = RtcpReporter::new(t0, wall, INTERVAL);
        let at = r.poll_timeout();
        r.handle_timeout(at, &send_side(100), &received(0, 0));
        let ours = only_sr(&mut r);
        // The peer holds our SR 200 ms, and its answer takes 30 ms each way.
        let theirs = RtcpPacket::Sender(SenderReport::new(
            Ssrc(0xBBBB),
            NtpTime(1),
            RtpTime {
                ticks: 0,
                rate: ClockRate::NARROWBAND,
            },
            77,
            77 * 160,
            vec![ReportBlock {
                ssrc: Ssrc(0xAAAA),
                fraction_lost: 64,
                cumulative_lost: 12,
                highest_seq: 100,
                jitter_ticks: 160,
                last_sr: ours.ntp.short(),
                delay_since_last_sr: Duration::from_millis(200),
            }],
        ));
        let bytes = build_compound(&[theirs]).unwrap();
        let arrival = at + Duration::from_millis(260);
        r.handle_datagram(arrival, &bytes, Ssrc(0xAAAA)).unwrap();
        let peer = r.peer();
        assert_eq!((peer.fraction_lost, peer.cumulative_lost), (64, 12));
        assert_eq!(peer.jitter, Duration::from_millis(20));
        assert_eq!(peer.peer_packets_sent, Some(77));
        let rtt = peer.round_trip.unwrap();
        assert!(
            rtt.abs_diff(Duration::from_millis(60)) < Duration::from_millis(1),
            "{rtt:?}"
        );
        assert_eq!(
            peer.to_header(),
            "sent=1;received=1;fraction-lost=0.250;cumulative-lost=12;jitter-ms=20;rtt-ms=60"
        );
        // Our next report echoes their SR (LSR/DLSR).
        r.handle_timeout(r.poll_timeout(), &send_side(300), &received(77, 0));
        let next = only_sr(&mut r);
        assert_eq!(next.blocks[0].last_sr, NtpTime(1).short());
        assert!(next.blocks[0].delay_since_last_sr > Duration::ZERO);
        // Garbage is counted, not believed.
        assert!(
            r.handle_datagram(arrival, &[0x80, 200, 0, 40], Ssrc(0xAAAA))
                .is_err()
        );
        assert_eq!((r.peer().received, r.peer().malformed), (1, 1));
    }

    #[test]
    fn rtcp_is_told_from_rtp_on_a_shared_port() {
        assert!(is_rtcp(&[0x80, 200, 0, 6]));
        assert!(is_rtcp(&[0x81, 201, 0, 7]));
        assert!(!is_rtcp(&[0x80, 0, 0, 1]), "PCMU");
        assert!(!is_rtcp(&[0x80, 0x80 | 101, 0, 1]), "telephone-event with marker");
        assert!(!is_rtcp(&[0x80]));
    }
}
