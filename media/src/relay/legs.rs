//! The network legs a relay call bridges to its line, behind one trait so the
//! bridge is the same for both: plain RTP/AVP for softphones (source latch,
//! validating receiver,
//! jitter buffer, paced sender, RTCP reports on the RTP port with `rtcp-mux` or on
//! their own port) and WebRTC for browsers (str0m, Opus or PCMU, its own RTCP).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use crate::modem::drift::DriftCompensator;
use crate::rtp::codec::{frame_to_line, line_to_payload, to_audio_packet};
use crate::rtp::dtmf::DtmfReceiver;
use crate::rtp::jitter::{JitterBuffer, JitterConfig};
use crate::rtp::latch::SourceLatch;
use crate::rtp::packet::{PayloadMap, RtpReceiver};
use crate::rtp::report::{PeerReports, RtcpReporter, SendSide, is_rtcp};
use crate::rtp::rtcp::NtpTime;
use crate::rtp::sender::RtpSender;
use crate::sdp::{G711, Negotiated};
use crate::webrtc::WebRtcPeer;

use super::liveness::Health;
use super::stats::LegCounts;

/// How long a far-end key is signalled to the caller.
const KEY_DURATION: std::time::Duration = std::time::Duration::from_millis(100);

/// Which of a call's media sockets a datagram uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Port {
    /// The RTP port (RTCP too with `rtcp-mux`, and all of WebRTC).
    Rtp,
    /// The RTCP port of a call without `rtcp-mux`.
    Rtcp,
}

/// A call's network side, as the bridge drives it.
pub(crate) trait MediaLeg: Send {
    /// A datagram arrived on `port`.
    fn on_datagram(&mut self, now: Instant, port: Port, from: SocketAddr, bytes: &[u8]);
    /// 20 ms of line audio (mu-law) to send.
    fn on_line_audio(&mut self, now: Instant, mulaw: &[u8]);
    /// The next 20 ms for the line (mu-law).
    fn next_line_frame(&mut self, now: Instant) -> [u8; 160];
    /// A datagram to send, from `port`.
    fn poll_datagram(&mut self) -> Option<(Port, SocketAddr, Vec<u8>)>;
    /// The leg's next deadline.
    fn poll_timeout(&self) -> Option<Instant>;
    /// Time passes.
    fn handle_timeout(&mut self, now: Instant);
    /// What the leg knows of its peer's liveness.
    fn health(&self) -> Health;
    /// A key the caller pressed (RFC 4733), once per press.
    fn poll_dtmf(&mut self) -> Option<char>;
    /// A key pressed at the far end of the line, to the caller (RFC 4733 where
    /// negotiated; otherwise it stays in the audio, where the line put it).
    fn send_dtmf(&mut self, key: char);
    /// What the peer's RTCP reports said of our stream (RTP/AVP legs).
    fn peer_reports(&self) -> Option<PeerReports>;
    /// What the leg counted since the call began, for the relay's metrics.
    fn counts(&self) -> LegCounts;
    /// A new offer in the call's dialog (re-INVITE, UPDATE) of the leg's own
    /// kind: taken from now on, with the answer when the leg writes its own;
    /// `Err` (the call answers 488) leaves the leg as it was (RFC 3264 s8).
    fn reoffer(&mut self, offer: Reoffer<'_>) -> Result<Option<String>, String>;
}

/// A new offer in a call's dialog, for its leg.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Reoffer<'a> {
    /// RTP/AVP, negotiated: its codec, telephone-event and addresses (the
    /// call writes the answer).
    Rtp(&'a Negotiated),
    /// A browser's SDP.
    WebRtc(&'a str),
    /// None: the peer asks for ours (a re-INVITE without SDP). The leg writes
    /// it when it is its own (WebRTC); the call writes RTP/AVP's.
    Asked,
}

/// RTP/AVP with PCMU or PCMA.
pub(crate) struct RtpLeg {
    remote: SocketAddr,
    source: SourceLatch,
    codec: G711,
    receiver: RtpReceiver,
    jitter: JitterBuffer,
    sender: RtpSender,
    payload: Vec<u8>,
    dtmf: DtmfReceiver,
    dtmf_payload_type: Option<u8>,
    keys: VecDeque<char>,
    rtcp: RtcpReporter,
    rtcp_mux: bool,
    remote_rtcp: SocketAddr,
    /// When a valid packet last came from the peer.
    heard: Option<Instant>,
    /// Holds the sender's backlog against the line's clock.
    drift: DriftCompensator,
}

impl RtpLeg {
    /// The leg of `negotiated`, reporting every `rtcp_interval`; its NTP clock
    /// reads `wallclock` at `now`; its SSRC and first sequence number and
    /// timestamp come from `rng`.
    pub(crate) fn new(
        negotiated: &Negotiated,
        now: Instant,
        wallclock: SystemTime,
        rtcp_interval: Duration,
        rng: &mut impl rand::Rng,
    ) -> Self {
        Self {
            rtcp: RtcpReporter::new(now, NtpTime::from_system_time(wallclock), rtcp_interval),
            rtcp_mux: negotiated.rtcp_mux,
            remote_rtcp: negotiated.remote_rtcp,
            remote: negotiated.remote,
            source: SourceLatch::new(negotiated.remote),
            codec: negotiated.codec,
            receiver: RtpReceiver::new(PayloadMap::g711(negotiated.dtmf_payload_type)),
            jitter: JitterBuffer::new(JitterConfig::default()),
            sender: RtpSender::new(negotiated.codec.payload_type(), rng),
            payload: Vec::with_capacity(160),
            dtmf: DtmfReceiver::default(),
            dtmf_payload_type: negotiated.dtmf_payload_type,
            keys: VecDeque::new(),
            heard: None,
            drift: DriftCompensator::default(),
        }
    }
}

impl MediaLeg for RtpLeg {
    fn on_datagram(&mut self, now: Instant, port: Port, from: SocketAddr, bytes: &[u8]) {
        let admitted = match port {
            Port::Rtp => self.source.admit(from),
            Port::Rtcp => self.source.admit_rtcp(from),
        };
        if !admitted {
            return;
        }
        if port == Port::Rtcp || (self.rtcp_mux && is_rtcp(bytes)) {
            // A bad report is counted in the peer's stats and otherwise ignored.
            if self.rtcp.handle_datagram(now, bytes, self.sender.ssrc()).is_ok() {
                self.heard = Some(now);
            }
            return;
        }
        let Ok(packet) = self.receiver.receive(bytes) else {
            return;
        };
        self.source.confirm(from);
        self.heard = Some(now);
        if let Some(audio) = to_audio_packet(&packet) {
            self.jitter.push(now, audio);
        } else if let Some(press) = self.dtmf.handle(&packet) {
            self.keys.push_back(press.digit);
        }
    }

    fn on_line_audio(&mut self, now: Instant, mulaw: &[u8]) {
        // The line's clock against our packet clock: the backlog is held at its level.
        let mut audio = mulaw.to_vec();
        self.drift.adjust(self.sender.backlog() as f64, &mut audio);
        self.payload.clear();
        line_to_payload(self.codec, &audio, &mut self.payload);
        self.sender.handle_input(now, &self.payload);
    }

    fn next_line_frame(&mut self, now: Instant) -> [u8; 160] {
        frame_to_line(&self.jitter.pop(now))
    }

    fn poll_datagram(&mut self) -> Option<(Port, SocketAddr, Vec<u8>)> {
        if let Some(packet) = self.sender.poll_output() {
            return Some((Port::Rtp, self.remote, packet));
        }
        let report = self.rtcp.poll_output()?;
        Some(match self.rtcp_mux {
            true => (Port::Rtp, self.remote, report),
            false => (Port::Rtcp, self.remote_rtcp, report),
        })
    }

    fn poll_timeout(&self) -> Option<Instant> {
        let report = self.rtcp.poll_timeout();
        Some(self.sender.poll_timeout().map_or(report, |rtp| rtp.min(report)))
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.sender.handle_timeout(now);
        let ours = SendSide {
            ssrc: self.sender.ssrc(),
            stats: self.sender.stats(),
            media_time: self.sender.media_time(),
        };
        self.rtcp.handle_timeout(now, &ours, &self.jitter.stats());
    }

    fn health(&self) -> Health {
        Health::Rtp { heard: self.heard }
    }

    fn poll_dtmf(&mut self) -> Option<char> {
        self.keys.pop_front()
    }

    fn send_dtmf(&mut self, key: char) {
        if let Some(pt) = self.dtmf_payload_type {
            // Keys come from the modem's DTMF detector: always 0-9 * # A-D.
            let _ = self.sender.send_digit(pt, key, KEY_DURATION);
        }
    }

    fn peer_reports(&self) -> Option<PeerReports> {
        Some(self.rtcp.peer())
    }

    /// The new codec goes out from the next packet (the line side transcodes
    /// as before; what comes in is decoded by its payload type); a new
    /// address gets our media, and the source latch starts over there.
    fn reoffer(&mut self, offer: Reoffer<'_>) -> Result<Option<String>, String> {
        let negotiated = match offer {
            Reoffer::Rtp(negotiated) => negotiated,
            // The call writes our RTP/AVP SDP; nothing changes here.
            Reoffer::Asked => return Ok(None),
            Reoffer::WebRtc(_) => return Err("a WebRTC offer on an RTP/AVP call".into()),
        };
        if negotiated.codec != self.codec {
            self.codec = negotiated.codec;
            self.sender.set_payload_type(negotiated.codec.payload_type());
        }
        if negotiated.dtmf_payload_type != self.dtmf_payload_type {
            self.dtmf_payload_type = negotiated.dtmf_payload_type;
            self.receiver
                .set_map(PayloadMap::g711(negotiated.dtmf_payload_type));
        }
        self.remote = negotiated.remote;
        self.remote_rtcp = negotiated.remote_rtcp;
        self.source.resignal(negotiated.remote);
        Ok(None)
    }

    fn counts(&self) -> LegCounts {
        let jitter = self.jitter.stats();
        LegCounts {
            received: self.receiver.accepted(),
            sent: self.sender.stats().packets,
            invalid: self.receiver.drops().total() + self.source.foreign(),
            late: jitter.late,
            lost: jitter.lost,
            depth_ms: u64::try_from(jitter.depth.as_millis()).unwrap_or(u64::MAX),
        }
    }
}

impl MediaLeg for WebRtcPeer {
    fn on_datagram(&mut self, now: Instant, _port: Port, from: SocketAddr, bytes: &[u8]) {
        self.handle_datagram(now, from, bytes);
    }

    fn on_line_audio(&mut self, now: Instant, mulaw: &[u8]) {
        self.send_line_audio(now, mulaw);
    }

    fn next_line_frame(&mut self, now: Instant) -> [u8; 160] {
        WebRtcPeer::next_line_frame(self, now)
    }

    fn poll_datagram(&mut self) -> Option<(Port, SocketAddr, Vec<u8>)> {
        self.poll_transmit().map(|(to, bytes)| (Port::Rtp, to, bytes))
    }

    fn poll_timeout(&self) -> Option<Instant> {
        WebRtcPeer::poll_timeout(self)
    }

    fn handle_timeout(&mut self, now: Instant) {
        WebRtcPeer::handle_timeout(self, now);
    }

    fn health(&self) -> Health {
        Health::Ice {
            connected: self.is_connected(),
            lost: self.is_closed(),
        }
    }

    fn poll_dtmf(&mut self) -> Option<char> {
        WebRtcPeer::poll_dtmf(self)
    }

    fn send_dtmf(&mut self, key: char) {
        self.send_key(key, KEY_DURATION);
    }

    fn reoffer(&mut self, offer: Reoffer<'_>) -> Result<Option<String>, String> {
        match offer {
            Reoffer::WebRtc(sdp) => WebRtcPeer::reoffer(self, sdp)
                .map(Some)
                .map_err(|e| e.to_string()),
            Reoffer::Asked => Ok(Some(self.offer_again())),
            Reoffer::Rtp(_) => Err("an RTP/AVP offer on a WebRTC call".into()),
        }
    }

    fn peer_reports(&self) -> Option<PeerReports> {
        // str0m runs the WebRTC leg's RTCP (and its feedback) itself.
        None
    }

    fn counts(&self) -> LegCounts {
        // str0m reorders inside; what it handed up, and its playout.
        let media = self.media_counts();
        LegCounts {
            received: media.received,
            sent: media.sent,
            late: media.jitter.late,
            lost: media.lost,
            depth_ms: u64::try_from(media.jitter.depth.as_millis()).unwrap_or(u64::MAX),
            ..LegCounts::default()
        }
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods, reason = "a test's clock starts at the real now")]
mod tests {
    use std::time::{Duration, Instant, SystemTime};

    use super::{MediaLeg, Port, RtpLeg};
    use crate::rtp::rtcp::{ReceiverReport, ReportBlock, RtcpPacket, build_compound, parse_compound};
    use crate::sdp::{G711, Negotiated};

    const RTCP_INTERVAL: Duration = Duration::from_secs(1);

    fn seeded() -> rand::rngs::StdRng {
        rand::SeedableRng::seed_from_u64(5)
    }

    fn negotiated(rtcp_mux: bool) -> Negotiated {
        let remote = "127.0.0.1:4000".parse().unwrap();
        Negotiated {
            codec: G711::Pcmu,
            dtmf_payload_type: Some(101),
            remote,
            ptime_ms: 20,
            direction: crate::sdp::Direction::SendRecv,
            rtcp_mux,
            remote_rtcp: if rtcp_mux {
                remote
            } else {
                "127.0.0.1:4001".parse().unwrap()
            },
        }
    }

    /// Runs `leg` for `ms` of line audio; every datagram it sends, with its port.
    fn run(leg: &mut RtpLeg, t0: Instant, ms: u64) -> Vec<(Port, std::net::SocketAddr, Vec<u8>)> {
        let mut sent = Vec::new();
        for n in 1..=ms / 20 {
            let now = t0 + Duration::from_millis(20 * n);
            leg.on_line_audio(now, &[0xFF; 160]);
            leg.handle_timeout(now);
            sent.extend(std::iter::from_fn(|| leg.poll_datagram()));
        }
        sent
    }

    /// A PCMU packet of 160 `byte`s.
    fn pcmu(ssrc: u32, seq: u16, byte: u8) -> Vec<u8> {
        let mut packet = vec![0x80, 0, (seq >> 8) as u8, seq as u8];
        packet.extend((u32::from(seq) * 160).to_be_bytes());
        packet.extend(ssrc.to_be_bytes());
        packet.extend([byte; 160]);
        packet
    }

    #[test]
    fn a_spray_from_other_sources_never_reaches_the_line() {
        // The SDP says 127.0.0.1:4000; the peer sends from port 4100.
        let negotiated = negotiated(true);
        let peer = "127.0.0.1:4100".parse().unwrap();
        let strangers: [std::net::SocketAddr; 2] = [
            "127.0.0.9:4000".parse().unwrap(),
            "127.0.0.1:4200".parse().unwrap(),
        ];
        let (ours, theirs) = (0x11, 0x22);
        let t0 = Instant::now();
        let mut leg = RtpLeg::new(&negotiated, t0, SystemTime::now(), RTCP_INTERVAL, &mut seeded());
        let (mut frames, mut foreign_frames, mut our_frames) = (0, 0, 0);
        for n in 0..100u16 {
            let now = t0 + Duration::from_millis(20 * u64::from(n));
            // Another host sprays from the start, another port of the peer's host
            // once latched; each with its own SSRC, in sequence (past probation).
            if n > 0 {
                leg.on_datagram(now, Port::Rtp, strangers[1], &pcmu(0xBAD1, n, theirs));
            }
            leg.on_datagram(now, Port::Rtp, strangers[0], &pcmu(0xBAD0, n, theirs));
            leg.on_datagram(now, Port::Rtp, peer, &pcmu(0x600D, n, ours));
            leg.on_datagram(now, Port::Rtp, strangers[0], &pcmu(0xBAD0, n + 1000, theirs));
            let frame = leg.next_line_frame(now);
            frames += 1;
            foreign_frames += usize::from(frame.contains(&theirs));
            our_frames += usize::from(frame.contains(&ours));
        }
        assert_eq!(
            foreign_frames, 0,
            "foreign audio reaching the line, of {frames} frames"
        );
        assert!(
            our_frames > 80,
            "the peer's audio plays: {our_frames} of {frames}"
        );
        let counts = leg.counts();
        assert_eq!(counts.received, 100, "only the peer's packets accepted");
        assert_eq!(counts.invalid, 99 + 200, "every foreign datagram counted");
        // Our audio and reports go where the SDP says, never to a stranger.
        let sent = run(&mut leg, t0 + Duration::from_secs(2), 1000);
        assert!(!sent.is_empty());
        assert!(
            sent.iter()
                .all(|(port, to, _)| (*port, *to) == (Port::Rtp, negotiated.remote))
        );
    }

    #[test]
    fn far_end_keys_go_out_as_telephone_events() {
        let negotiated = negotiated(false);
        let t0 = Instant::now();
        let mut leg = RtpLeg::new(&negotiated, t0, SystemTime::now(), RTCP_INTERVAL, &mut seeded());
        leg.on_line_audio(t0, &[0xFF; 160]);
        leg.send_dtmf('7');
        let payload_types: Vec<u8> = run(&mut leg, t0, 200)
            .into_iter()
            .map(|(port, to, packet)| {
                assert_eq!((port, to), (Port::Rtp, negotiated.remote));
                packet[1] & 0x7F
            })
            .collect();
        assert!(
            payload_types.contains(&101),
            "telephone-event packets sent: {payload_types:?}"
        );
    }

    #[test]
    fn sender_reports_go_to_the_rtcp_port_or_share_the_rtp_port() {
        for mux in [false, true] {
            let negotiated = negotiated(mux);
            let t0 = Instant::now();
            let mut leg = RtpLeg::new(&negotiated, t0, SystemTime::now(), RTCP_INTERVAL, &mut seeded());
            let reports: Vec<_> = run(&mut leg, t0, 3000)
                .into_iter()
                .filter(|(_, _, bytes)| crate::rtp::report::is_rtcp(bytes))
                .collect();
            // At 0.5 s, 1.5 s and 2.5 s: half an interval, then every interval.
            assert_eq!(reports.len(), 3, "mux {mux}");
            for (port, to, bytes) in &reports {
                let expected = if mux { Port::Rtp } else { Port::Rtcp };
                assert_eq!((*port, *to), (expected, negotiated.remote_rtcp), "mux {mux}");
                assert!(matches!(
                    parse_compound(bytes).unwrap()[..],
                    [RtcpPacket::Sender(_)]
                ));
            }
            // The peer's RR about our stream, on the port it belongs to.
            let RtcpPacket::Sender(ours) = &parse_compound(&reports[0].2).unwrap()[0] else {
                unreachable!("checked above")
            };
            let rr = build_compound(&[RtcpPacket::Receiver(ReceiverReport {
                ssrc: crate::rtp::units::Ssrc(7),
                blocks: vec![ReportBlock {
                    ssrc: ours.ssrc,
                    fraction_lost: 128,
                    cumulative_lost: 5,
                    highest_seq: 150,
                    jitter_ticks: 80,
                    last_sr: ours.ntp.short(),
                    delay_since_last_sr: Duration::from_millis(100),
                }],
            })])
            .unwrap();
            let port = if mux { Port::Rtp } else { Port::Rtcp };
            leg.on_datagram(t0 + Duration::from_secs(3), port, negotiated.remote_rtcp, &rr);
            let peer = leg.peer_reports().unwrap();
            assert_eq!(
                (peer.received, peer.fraction_lost, peer.cumulative_lost),
                (1, 128, 5)
            );
            assert_eq!(peer.jitter, Duration::from_millis(10));
            assert!(peer.round_trip.is_some());
        }
    }
}
