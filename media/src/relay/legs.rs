//! The network legs a relay call bridges to its line, behind one trait so the
//! bridge is the same for both: plain RTP/AVP for softphones (validating receiver,
//! jitter buffer, paced sender) and WebRTC for browsers (str0m, Opus or PCMU).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use crate::rtp::codec::{frame_to_line, line_to_payload, to_audio_packet};
use crate::rtp::dtmf::DtmfReceiver;
use crate::rtp::jitter::{JitterBuffer, JitterConfig};
use crate::rtp::packet::{PayloadMap, RtpReceiver};
use crate::rtp::sender::RtpSender;
use crate::sdp::{G711, Negotiated};
use crate::webrtc::WebRtcPeer;

/// How long a far-end key is signalled to the caller.
const KEY_DURATION: std::time::Duration = std::time::Duration::from_millis(100);

/// A call's network side, as the bridge drives it.
pub(crate) trait MediaLeg: Send {
    /// A datagram arrived.
    fn on_datagram(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]);
    /// 20 ms of line audio (mu-law) to send.
    fn on_line_audio(&mut self, now: Instant, mulaw: &[u8]);
    /// The next 20 ms for the line (mu-law).
    fn next_line_frame(&mut self, now: Instant) -> [u8; 160];
    /// A datagram to send.
    fn poll_datagram(&mut self) -> Option<(SocketAddr, Vec<u8>)>;
    /// The leg's next deadline.
    fn poll_timeout(&self) -> Option<Instant>;
    /// Time passes.
    fn handle_timeout(&mut self, now: Instant);
    /// The peer is gone.
    fn is_closed(&self) -> bool;
    /// A key the caller pressed (RFC 4733), once per press.
    fn poll_dtmf(&mut self) -> Option<char>;
    /// A key pressed at the far end of the line, to the caller (RFC 4733 where
    /// negotiated; otherwise it stays in the audio, where the line put it).
    fn send_dtmf(&mut self, key: char);
}

/// RTP/AVP with PCMU or PCMA.
pub(crate) struct RtpLeg {
    remote: SocketAddr,
    codec: G711,
    receiver: RtpReceiver,
    jitter: JitterBuffer,
    sender: RtpSender,
    payload: Vec<u8>,
    dtmf: DtmfReceiver,
    dtmf_payload_type: Option<u8>,
    keys: VecDeque<char>,
}

impl RtpLeg {
    pub(crate) fn new(negotiated: &Negotiated) -> Self {
        Self {
            remote: negotiated.remote,
            codec: negotiated.codec,
            receiver: RtpReceiver::new(PayloadMap::g711(negotiated.dtmf_payload_type)),
            jitter: JitterBuffer::new(JitterConfig::default()),
            sender: RtpSender::new(negotiated.codec.payload_type(), &mut rand::rng()),
            payload: Vec::with_capacity(160),
            dtmf: DtmfReceiver::default(),
            dtmf_payload_type: negotiated.dtmf_payload_type,
            keys: VecDeque::new(),
        }
    }
}

impl MediaLeg for RtpLeg {
    fn on_datagram(&mut self, now: Instant, _from: SocketAddr, bytes: &[u8]) {
        let Ok(packet) = self.receiver.receive(bytes) else {
            return;
        };
        if let Some(audio) = to_audio_packet(&packet) {
            self.jitter.push(now, audio);
        } else if let Some(press) = self.dtmf.handle(&packet) {
            self.keys.push_back(press.digit);
        }
    }

    fn on_line_audio(&mut self, now: Instant, mulaw: &[u8]) {
        self.payload.clear();
        line_to_payload(self.codec, mulaw, &mut self.payload);
        self.sender.handle_input(now, &self.payload);
    }

    fn next_line_frame(&mut self, now: Instant) -> [u8; 160] {
        frame_to_line(&self.jitter.pop(now))
    }

    fn poll_datagram(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.sender.poll_output().map(|packet| (self.remote, packet))
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.sender.poll_timeout()
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.sender.handle_timeout(now);
    }

    fn is_closed(&self) -> bool {
        false
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
}

impl MediaLeg for WebRtcPeer {
    fn on_datagram(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        self.handle_datagram(now, from, bytes);
    }

    fn on_line_audio(&mut self, now: Instant, mulaw: &[u8]) {
        self.send_line_audio(now, mulaw);
    }

    fn next_line_frame(&mut self, _now: Instant) -> [u8; 160] {
        WebRtcPeer::next_line_frame(self)
    }

    fn poll_datagram(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.poll_transmit()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        WebRtcPeer::poll_timeout(self)
    }

    fn handle_timeout(&mut self, now: Instant) {
        WebRtcPeer::handle_timeout(self, now);
    }

    fn is_closed(&self) -> bool {
        WebRtcPeer::is_closed(self)
    }

    fn poll_dtmf(&mut self) -> Option<char> {
        WebRtcPeer::poll_dtmf(self)
    }

    fn send_dtmf(&mut self, _key: char) {
        // The browser hears the tone in the audio; there is no keypad display to feed.
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::{MediaLeg, RtpLeg};
    use crate::sdp::{G711, Negotiated};

    #[test]
    fn far_end_keys_go_out_as_telephone_events() {
        let negotiated = Negotiated {
            codec: G711::Pcmu,
            dtmf_payload_type: Some(101),
            remote: "127.0.0.1:4000".parse().unwrap(),
            ptime_ms: 20,
            on_hold: false,
        };
        let mut leg = RtpLeg::new(&negotiated);
        let t0 = Instant::now();
        leg.on_line_audio(t0, &[0xFF; 160]);
        leg.send_dtmf('7');
        let mut payload_types = Vec::new();
        for n in 1..=10 {
            leg.handle_timeout(t0 + Duration::from_millis(20 * n));
            while let Some((to, packet)) = leg.poll_datagram() {
                assert_eq!(to, negotiated.remote);
                payload_types.push(packet[1] & 0x7F);
            }
        }
        assert!(
            payload_types.contains(&101),
            "telephone-event packets sent: {payload_types:?}"
        );
    }
}
