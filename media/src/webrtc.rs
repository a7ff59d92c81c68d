//! WebRTC termination for browser calls, on str0m (a sans-IO WebRTC stack: ICE-lite
//! here, DTLS-SRTP, rtcp-mux, BUNDLE), chosen because it fits our sans-IO cores and
//! connected to headless Chromium in ~60 ms on this machine (DEPENDENCIES.md).
//! Opus with ropus (pure Rust; the `opus` crate does not build here), preferred
//! over PCMU when offered. Opus runs at 8 kHz on our side: its decoder renders and
//! its encoder takes 8 kHz directly (the 48 kHz <-> 8 kHz resampling happens inside
//! the codec, band-limited the way Opus does it), while the RTP clock stays 48 kHz.
//! The line side is 20 ms frames of 8 kHz mu-law, like every relay leg.
//!
//! Reachability: our host candidates are the relay's advertised addresses
//! (`RelayConfig::advertise`, its public IPs behind 1:1 NAT) at the socket's port,
//! and a datagram is handed to ICE as sent to the advertised address of its
//! family. As an ICE-lite agent we gather nothing; a browser behind NAT or a
//! UDP-blocking firewall reaches us from its server-reflexive or TURN relayed
//! address, which ICE-lite accepts as a peer-reflexive candidate.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use ropus::{Application, Channels, DecodeMode, Decoder, Encoder};
use str0m::change::SdpOffer;
use str0m::format::Codec;
use str0m::media::{Frequency, MediaTime, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc, RtcConfig};

use crate::dsp::g711::{alaw_to_linear, linear_to_ulaw, ulaw_to_linear};
use crate::rtp::dtmf::{TelephoneEvent, digit};

/// 20 ms at 8 kHz.
const FRAME: usize = 160;

/// Why a browser's offer cannot be answered (the caller answers 488, or 400).
#[derive(Debug, thiserror::Error)]
pub enum WebRtcError {
    /// The SDP does not parse.
    #[error("malformed WebRTC SDP: {0}")]
    Sdp(String),
    /// The offer cannot be accepted (no common audio codec, no ICE/DTLS data).
    #[error("WebRTC offer not acceptable: {0}")]
    Offer(String),
    /// Our address is not usable as an ICE candidate.
    #[error("bad local candidate: {0}")]
    Candidate(String),
}

/// One browser's media session.
pub struct WebRtcPeer {
    rtc: Rtc,
    local: SocketAddr,
    /// Our host candidates (never empty).
    candidates: Vec<SocketAddr>,
    mid: Option<Mid>,
    decoder: Decoder,
    encoder: Encoder,
    rtp_ticks: u64,
    to_line: VecDeque<[u8; FRAME]>,
    partial: Vec<u8>,
    transmits: VecDeque<(SocketAddr, Vec<u8>)>,
    next_timeout: Option<Instant>,
    connected: bool,
    closed: bool,
    keys: VecDeque<char>,
    last_key_time: Option<u64>,
    counts: MediaCounts,
}

/// Media packets a WebRTC session handed up and sent, and frames waiting for the line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MediaCounts {
    /// Audio packets received (after SRTP and str0m's reordering).
    pub received: u64,
    /// Audio packets written.
    pub sent: u64,
    /// 20 ms frames waiting for the line.
    pub queued_frames: u64,
}

impl std::fmt::Debug for WebRtcPeer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebRtcPeer")
            .field("local", &self.local)
            .field("connected", &self.connected)
            .finish()
    }
}

impl WebRtcPeer {
    /// Accepts a browser's offer for media on `local` (a bound UDP socket) that
    /// browsers reach at `advertised` (`local` itself when empty); returns the
    /// peer and the SDP answer.
    pub fn accept(
        now: Instant,
        offer: &str,
        local: SocketAddr,
        advertised: &[SocketAddr],
    ) -> Result<(Self, String), WebRtcError> {
        let offer = SdpOffer::from_sdp_string(offer).map_err(|e| WebRtcError::Sdp(e.to_string()))?;
        let mut rtc = RtcConfig::new()
            .set_ice_lite(true)
            .clear_codecs()
            .enable_opus(true, false)
            .enable_pcmu(true, false)
            .build(now);
        let candidates = match advertised {
            [] => vec![local],
            some => some.to_vec(),
        };
        for &addr in &candidates {
            let candidate =
                Candidate::host(addr, "udp").map_err(|e| WebRtcError::Candidate(e.to_string()))?;
            rtc.add_local_candidate(candidate);
        }
        let answer = rtc
            .sdp_api()
            .accept_offer(offer)
            .map_err(|e| WebRtcError::Offer(e.to_string()))?;
        // 8 kHz mono is a valid Opus rate: no resampler of our own needed.
        let decoder =
            Decoder::new(8_000, Channels::Mono).map_err(|e| WebRtcError::Offer(format!("{e:?}")))?;
        let encoder = Encoder::builder(8_000, Channels::Mono, Application::Voip)
            .build()
            .map_err(|e| WebRtcError::Offer(format!("{e:?}")))?;
        let mut peer = Self {
            rtc,
            local,
            candidates,
            mid: None,
            decoder,
            encoder,
            rtp_ticks: 0,
            to_line: VecDeque::new(),
            partial: Vec::new(),
            transmits: VecDeque::new(),
            next_timeout: None,
            connected: false,
            closed: false,
            keys: VecDeque::new(),
            last_key_time: None,
            counts: MediaCounts::default(),
        };
        peer.drain();
        Ok((peer, answer.to_sdp_string()))
    }

    /// Whether ICE and DTLS are up.
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// Whether the browser went away.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// str0m's contract: after every change, poll until it asks for a timeout.
    fn drain(&mut self) {
        loop {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(at)) => {
                    self.next_timeout = Some(at);
                    return;
                }
                Ok(Output::Transmit(t)) => self.transmits.push_back((t.destination, t.contents.to_vec())),
                Ok(Output::Event(event)) => self.on_event(event),
                Err(err) => {
                    tracing::debug!(%err, "WebRTC session failed");
                    self.closed = true;
                    self.next_timeout = None;
                    return;
                }
            }
        }
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Connected => self.connected = true,
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => self.closed = true,
            Event::MediaAdded(added) => self.mid = Some(added.mid),
            Event::MediaData(data) if data.params.spec().codec == Codec::Tele => {
                // One key press is many packets with one timestamp: report it once.
                let start = data.time.numer();
                if let Ok(event) = TelephoneEvent::parse(&data.data)
                    && let Some(key) = digit(event.event)
                    && self.last_key_time != Some(start)
                {
                    self.last_key_time = Some(start);
                    self.keys.push_back(key);
                }
            }
            Event::MediaData(data) => {
                self.counts.received += 1;
                let mut pcm = [0i16; 960];
                let samples = match data.params.spec().codec {
                    Codec::Opus => self
                        .decoder
                        .decode(&data.data, &mut pcm, DecodeMode::Normal)
                        .unwrap_or(0),
                    Codec::PCMU => data
                        .data
                        .iter()
                        .zip(pcm.iter_mut())
                        .map(|(&c, s)| *s = ulaw_to_linear(c))
                        .count(),
                    Codec::PCMA => data
                        .data
                        .iter()
                        .zip(pcm.iter_mut())
                        .map(|(&c, s)| *s = alaw_to_linear(c))
                        .count(),
                    _ => 0,
                };
                self.partial
                    .extend(pcm[..samples.min(960)].iter().map(|&s| linear_to_ulaw(s)));
                while self.partial.len() >= FRAME {
                    let mut frame = [0u8; FRAME];
                    frame.copy_from_slice(&self.partial[..FRAME]);
                    self.partial.drain(..FRAME);
                    // Keep at most 200 ms: a late reader hears the present, not the past.
                    if self.to_line.len() >= 10 {
                        self.to_line.pop_front();
                    }
                    self.to_line.push_back(frame);
                }
            }
            _ => {}
        }
    }

    /// A datagram from the browser arrived on our socket.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        let Ok(contents) = bytes.try_into() else { return };
        // A NAT in front of us hides which advertised address the browser used;
        // any of its family names the one socket we have.
        let destination = self
            .candidates
            .iter()
            .find(|c| c.is_ipv4() == from.is_ipv4())
            .unwrap_or(&self.local);
        let receive = Receive {
            proto: Protocol::Udp,
            source: from,
            destination: *destination,
            contents,
        };
        if self.rtc.handle_input(Input::Receive(now, receive)).is_ok() {
            self.drain();
        }
    }

    /// The deadline str0m asked for.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_timeout
    }

    /// Time passes.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.rtc.handle_input(Input::Timeout(now)).is_ok() {
            self.drain();
        }
    }

    /// A datagram to send, if any.
    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.transmits.pop_front()
    }

    /// A key the browser sent (RFC 4733 telephone-event), once per press.
    pub fn poll_dtmf(&mut self) -> Option<char> {
        self.keys.pop_front()
    }

    /// The browser's next 20 ms for the line (mu-law silence when none came).
    pub fn next_line_frame(&mut self) -> [u8; FRAME] {
        self.to_line.pop_front().unwrap_or([0xFF; FRAME])
    }

    /// 20 ms of line audio (8 kHz mu-law) to the browser.
    pub fn send_line_audio(&mut self, now: Instant, mulaw: &[u8]) {
        let Some(mid) = self.mid.filter(|_| self.connected) else {
            return;
        };
        let Some(writer) = self.rtc.writer(mid) else {
            return;
        };
        let chosen: Option<(Pt, Codec)> = {
            let params: Vec<_> = writer
                .payload_params()
                .map(|p| (p.pt(), p.spec().codec))
                .collect();
            params
                .iter()
                .find(|(_, c)| *c == Codec::Opus)
                .or_else(|| params.iter().find(|(_, c)| *c == Codec::PCMU))
                .copied()
        };
        let Some((pt, codec)) = chosen else { return };
        let result = match codec {
            Codec::Opus => {
                let pcm: Vec<i16> = mulaw.iter().map(|&c| ulaw_to_linear(c)).collect();
                let mut packet = [0u8; 400];
                let Ok(len) = self.encoder.encode(&pcm, &mut packet) else {
                    return;
                };
                let time = MediaTime::new(self.rtp_ticks, Frequency::FORTY_EIGHT_KHZ);
                self.rtp_ticks += 6 * mulaw.len() as u64;
                writer.write(pt, now, time, packet[..len].to_vec())
            }
            _ => {
                let time = MediaTime::new(self.rtp_ticks / 6, Frequency::EIGHT_KHZ);
                self.rtp_ticks += 6 * mulaw.len() as u64;
                writer.write(pt, now, time, mulaw.to_vec())
            }
        };
        if result.is_ok() {
            self.counts.sent += 1;
            self.drain();
        }
    }

    /// What the session counted so far.
    pub fn media_counts(&self) -> MediaCounts {
        MediaCounts {
            queued_frames: self.to_line.len() as u64,
            ..self.counts
        }
    }
}

/// Whether an SDP offer is WebRTC (DTLS-SRTP) rather than plain RTP/AVP.
pub fn is_webrtc_offer(offer: &str) -> bool {
    offer.contains("UDP/TLS/RTP/SAVP") || offer.contains("a=fingerprint:")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use str0m::media::{Direction, MediaKind};

    use super::*;

    const BOUND: &str = "10.0.0.2:40000";
    const PUBLIC: &str = "203.0.113.7:40000";
    const BROWSER: &str = "198.51.100.9:50000";

    /// A full-ICE str0m agent standing in for the browser, and its offer.
    fn browser(now: Instant) -> (Rtc, str0m::change::SdpPendingOffer, String) {
        let mut rtc = RtcConfig::new().build(now);
        let addr: SocketAddr = BROWSER.parse().unwrap();
        rtc.add_local_candidate(Candidate::host(addr, "udp").unwrap());
        let mut api = rtc.sdp_api();
        api.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
        // A change was just made: apply() has an offer.
        let (offer, pending) = api.apply().unwrap();
        (rtc, pending, offer.to_sdp_string())
    }

    #[test]
    fn behind_nat_the_answer_names_the_public_address_and_ice_connects_through_it() {
        let mut now = Instant::now();
        let (mut browser, pending, offer) = browser(now);
        let (bound, public) = (BOUND.parse().unwrap(), PUBLIC.parse().unwrap());
        let (mut relay, answer) = WebRtcPeer::accept(now, &offer, bound, &[public]).unwrap();
        assert!(answer.contains("203.0.113.7 40000 typ host"), "{answer}");
        assert!(!answer.contains("10.0.0.2"), "{answer}");
        let answer = str0m::change::SdpAnswer::from_sdp_string(&answer).unwrap();
        browser.sdp_api().accept_answer(pending, answer).unwrap();

        // The NAT: the browser sends to the public address, the relay's socket
        // sees it arrive on the bound one; replies leave from the bound address
        // and reach the browser from the public one.
        let mut browser_connected = false;
        for _ in 0..2000 {
            let deadline = loop {
                match browser.poll_output().unwrap() {
                    Output::Timeout(at) => break at,
                    Output::Transmit(t) => {
                        assert_eq!(t.destination, public, "the browser only knows the public address");
                        relay.handle_datagram(now, t.source, &t.contents);
                    }
                    Output::Event(Event::Connected) => browser_connected = true,
                    Output::Event(_) => {}
                }
            };
            while let Some((to, bytes)) = relay.poll_transmit() {
                let receive = Receive {
                    proto: Protocol::Udp,
                    source: public,
                    destination: to,
                    contents: bytes.as_slice().try_into().unwrap(),
                };
                browser.handle_input(Input::Receive(now, receive)).unwrap();
            }
            if browser_connected && relay.is_connected() {
                return;
            }
            let next = relay.poll_timeout().map_or(deadline, |r| r.min(deadline));
            now = next.max(now + Duration::from_millis(1));
            browser.handle_input(Input::Timeout(now)).unwrap();
            relay.handle_timeout(now);
        }
        panic!(
            "no connection through the NAT: browser {browser_connected}, relay {}",
            relay.is_connected()
        );
    }

    #[test]
    fn without_public_addresses_the_bound_one_is_the_candidate() {
        let now = Instant::now();
        let (_browser, _pending, offer) = browser(now);
        let (_relay, answer) = WebRtcPeer::accept(now, &offer, BOUND.parse().unwrap(), &[]).unwrap();
        assert!(answer.contains("10.0.0.2 40000 typ host"), "{answer}");
    }
}
