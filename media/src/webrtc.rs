//! WebRTC termination for browser calls, on str0m (a sans-IO WebRTC stack: ICE-lite
//! here, DTLS-SRTP, rtcp-mux, BUNDLE), chosen because it fits our sans-IO cores and
//! connected to headless Chromium in ~60 ms on this machine (DEPENDENCIES.md).
//! Opus with ropus (pure Rust; the `opus` crate does not build here), preferred
//! over PCMU when offered. Opus runs at 8 kHz on our side: its decoder renders and
//! its encoder takes 8 kHz directly (the 48 kHz <-> 8 kHz resampling happens inside
//! the codec, band-limited the way Opus does it), while the RTP clock stays 48 kHz.
//! The line side is 20 ms frames of 8 kHz mu-law, like every relay leg: decoded
//! audio goes through the same adaptive jitter buffer as RTP/AVP legs; a gap in the
//! browser's sequence numbers is concealed by the Opus decoder (its in-band FEC
//! for the packet just before the one that arrived, its PLC for earlier ones).
//! Packets are 20 ms unless the browser's offer asks for longer ones and a lower
//! bitrate (the narrow-link profile, [`opus_packing`]); the browser's packets may
//! be any length Opus has (the decoder and jitter buffer take up to 120 ms).
//!
//! Reachability: our host candidates are the relay's advertised addresses
//! (`RelayConfig::advertise`, its public IPs behind 1:1 NAT) at the socket's port,
//! and a datagram is handed to ICE as sent to the advertised address of its
//! family. As an ICE-lite agent we gather nothing; a browser behind NAT or a
//! UDP-blocking firewall reaches us from its server-reflexive or TURN relayed
//! address, which ICE-lite accepts as a peer-reflexive candidate.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::rtp::codec::frame_to_line;
use crate::rtp::jitter::{AudioPacket, JitterBuffer, JitterStats};
use crate::rtp::units::{ClockRate, RtpTime, SeqNo, Ssrc};

use ropus::{Application, Bitrate, Channels, DecodeMode, Decoder, Encoder};
use str0m::change::SdpOffer;
use str0m::format::{Codec, FormatParams};
use str0m::media::{Frequency, MediaTime, Mid, Pt, TelephoneEvent as ToneEvent};
use str0m::net::{Protocol, Receive};
use str0m::rtp::Extension;
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc, RtcConfig, RtcError};

use crate::dsp::g711::{alaw_to_linear, ulaw_to_linear};
use crate::rtp::dtmf::{SEND_VOLUME, TelephoneEvent, digit, event_code};

mod opus_packing;
use opus_packing::OpusPacking;

/// 20 ms at 8 kHz.
const FRAME: usize = 160;
/// Longest gap the Opus decoder conceals, in 8 kHz samples (100 ms); the jitter
/// buffer covers longer ones.
const MAX_CONCEALED: u64 = 800;
/// Longest Opus packet, in 8 kHz samples (120 ms).
const MAX_OPUS_SAMPLES: usize = 960;
/// RFC 4733 telephone-event at the clock rates browsers offer it (Chromium: 110
/// at 48 kHz with Opus, 126 at 8 kHz with G.711); the offer's numbers win.
const TELEPHONE_EVENTS: [(u8, Frequency); 2] =
    [(110, Frequency::FORTY_EIGHT_KHZ), (126, Frequency::EIGHT_KHZ)];
/// The one source a WebRTC leg plays (str0m hands up a single stream per mid).
const SOURCE: Ssrc = Ssrc(0);

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
    packing: OpusPacking,
    /// Line audio waiting to fill the next Opus packet.
    outgoing: Vec<i16>,
    rtp_ticks: u64,
    jitter: JitterBuffer,
    /// The last audio packet handed up: its sequence number, the 8 kHz media
    /// time just after it, and its length in samples.
    last_audio: Option<(u64, u64, u64)>,
    transmits: VecDeque<(SocketAddr, Vec<u8>)>,
    next_timeout: Option<Instant>,
    connected: bool,
    closed: bool,
    keys: VecDeque<char>,
    last_key_time: Option<u64>,
    /// A far-end key to signal with the next audio written, and for how long.
    key_out: Option<(char, Duration)>,
    counts: MediaCounts,
    /// Our SDP as last sent (the answer to the browser's latest offer).
    sdp: String,
}

/// Media packets a WebRTC session handed up and sent, and frames waiting for the line.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MediaCounts {
    /// Audio packets received (after SRTP and str0m's reordering).
    pub received: u64,
    /// Audio packets written.
    pub sent: u64,
    /// Packets missing from the browser's sequence (concealed or not).
    pub lost: u64,
    /// Missing packets the Opus decoder made up (FEC or PLC), played when in time.
    pub concealed: u64,
    /// The jitter buffer's view.
    pub jitter: JitterStats,
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
        let packing = OpusPacking::from_offer(offer);
        let offer = SdpOffer::from_sdp_string(offer).map_err(|e| WebRtcError::Sdp(e.to_string()))?;
        let mut config = RtcConfig::new()
            .set_ice_lite(true)
            .clear_codecs()
            .enable_opus(true, false)
            .enable_pcmu(true, false)
            // No hold-back for a missing packet (15 packets by default, 300 ms
            // of audio stuck behind each loss): the gap goes to the decoder's
            // concealment at once, and the jitter buffer does the reordering.
            .set_reordering_size_audio(0);
        if !packing.is_default() {
            // A narrow link has no room for transport-wide congestion control:
            // its feedback is RTCP about ten times a second each way (~9 kbit/s
            // of a 33.6 kbit/s link, measured). Audio level and mid stay.
            config = config
                .clear_extension_map()
                .set_extension(1, Extension::AudioLevel)
                .set_extension(4, Extension::RtpMid);
        }
        for (pt, rate) in TELEPHONE_EVENTS {
            let params = FormatParams::default();
            config
                .codec_config()
                .add_config(Pt::from(pt), None, Codec::Tele, rate, None, params);
        }
        let mut rtc = config.build(now);
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
        let bitrate = packing.bitrate.map_or(Bitrate::Auto, Bitrate::Bits);
        let encoder = Encoder::builder(8_000, Channels::Mono, Application::Voip)
            .bitrate(bitrate)
            .build()
            .map_err(|e| WebRtcError::Offer(format!("{e:?}")))?;
        let mut peer = Self {
            rtc,
            local,
            candidates,
            mid: None,
            decoder,
            encoder,
            packing,
            outgoing: Vec::with_capacity(packing.packet_samples()),
            rtp_ticks: 0,
            jitter: JitterBuffer::new(packing.jitter_config()),
            last_audio: None,
            transmits: VecDeque::new(),
            next_timeout: None,
            connected: false,
            closed: false,
            keys: VecDeque::new(),
            last_key_time: None,
            key_out: None,
            counts: MediaCounts::default(),
            sdp: packing.annotate_answer(&answer.to_sdp_string()),
        };
        peer.drain();
        let sdp = peer.sdp.clone();
        Ok((peer, sdp))
    }

    /// A new offer from the browser during the call (hold or resume by its
    /// direction; an ICE restart by new `ice-ufrag`/`ice-pwd`, answered with
    /// new credentials of ours and the same candidates); str0m writes the answer.
    pub fn reoffer(&mut self, offer: &str) -> Result<String, WebRtcError> {
        let offer = SdpOffer::from_sdp_string(offer).map_err(|e| WebRtcError::Sdp(e.to_string()))?;
        let answer = self
            .rtc
            .sdp_api()
            .accept_offer(offer)
            .map_err(|e| WebRtcError::Offer(e.to_string()));
        self.drain();
        self.sdp = self.packing.annotate_answer(&answer?.to_sdp_string());
        Ok(self.sdp.clone())
    }

    /// Our SDP again at the next `o=` version: the offer of a 200 to a
    /// re-INVITE that carried none (a session refresh, RFC 3261 14.2). ICE
    /// credentials and the DTLS association stay, so the setup role of our
    /// answer stays too (RFC 8842 s5.5); the browser's answer in the ACK changes
    /// nothing here.
    pub fn offer_again(&mut self) -> String {
        self.sdp = next_origin_version(&self.sdp);
        self.sdp.clone()
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
                // One packet of the peer's that does not depacketize (say a
                // telephone event cut short, as Chromium sent after its audio
                // stalled): that packet is dropped, the session goes on.
                Err(RtcError::Packet(mid, pt, err)) => {
                    tracing::debug!(%mid, %pt, %err, "malformed media packet dropped");
                }
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
            Event::IceConnectionStateChange(state) => {
                tracing::debug!(?state, "browser ICE");
                if state == IceConnectionState::Disconnected {
                    self.closed = true;
                }
            }
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
                if self.counts.received == 0 {
                    tracing::debug!(seq = **data.seq_range.start(), "browser audio begins");
                }
                self.counts.received += 1;
                let codec = data.params.spec().codec;
                // Media time at 8 kHz: Opus counts 48 kHz, G.711 8 kHz.
                let time = match codec {
                    Codec::Opus => data.time.numer() / 6,
                    _ => data.time.numer(),
                };
                let seq = **data.seq_range.start();
                if codec == Codec::Opus {
                    self.conceal_gap(data.network_time, seq, time, &data.data);
                }
                let mut pcm = [0i16; MAX_OPUS_SAMPLES];
                let samples = match codec {
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
                let samples = samples.min(pcm.len());
                if self.last_audio.is_none_or(|(last, _, _)| seq > last) {
                    self.last_audio = Some((seq, time + samples as u64, samples as u64));
                }
                self.jitter.push(
                    data.network_time,
                    audio_packet(seq, time, pcm[..samples].to_vec()),
                );
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

    /// Packets `last + 1 .. seq` never came: when each was as long as the last
    /// one that did and together they are short, the decoder makes them up before
    /// it decodes `packet` (the one that came): FEC from `packet` for the one just
    /// before it, PLC for the others.
    fn conceal_gap(&mut self, now: Instant, seq: u64, time: u64, packet: &[u8]) {
        let Some((last, end, len)) = self.last_audio else {
            return;
        };
        let missing = seq.saturating_sub(last + 1);
        if missing == 0 {
            return;
        }
        self.counts.lost += missing;
        let gap = missing * len;
        if len == 0 || gap > MAX_CONCEALED || time.checked_sub(end) != Some(gap) {
            return;
        }
        for n in 0..missing {
            let mut pcm = vec![0i16; len as usize];
            let (data, mode) = match n + 1 == missing {
                true => (packet, DecodeMode::Fec),
                false => (&[][..], DecodeMode::Normal),
            };
            let Ok(samples) = self.decoder.decode(data, &mut pcm, mode) else {
                return;
            };
            self.counts.concealed += 1;
            pcm.truncate(samples);
            self.jitter
                .push_concealment(now, audio_packet(last + 1 + n, end + n * len, pcm));
        }
    }

    /// The browser's next 20 ms for the line, at the playout tick `now`.
    pub fn next_line_frame(&mut self, now: Instant) -> [u8; FRAME] {
        frame_to_line(&self.jitter.pop(now))
    }

    /// A key pressed at the line's far end: sent as a telephone event of `duration`
    /// with the next audio, when the browser negotiated them.
    pub fn send_key(&mut self, key: char, duration: Duration) {
        self.key_out = Some((key, duration));
    }

    /// 20 ms of line audio (8 kHz mu-law) to the browser: sent at once as PCMU,
    /// or gathered into Opus packets of the session's packet time.
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
        let rate = match codec {
            Codec::Opus => Frequency::FORTY_EIGHT_KHZ,
            _ => Frequency::EIGHT_KHZ,
        };
        let (time, payload, ticks) = match codec {
            Codec::Opus => {
                self.outgoing.extend(mulaw.iter().map(|&c| ulaw_to_linear(c)));
                if self.outgoing.len() < self.packing.packet_samples() {
                    return;
                }
                let mut packet = [0u8; 1275];
                let encoded = self.encoder.encode(&self.outgoing, &mut packet);
                let samples = std::mem::take(&mut self.outgoing).len() as u64;
                let Ok(len) = encoded else { return };
                let time = MediaTime::new(self.rtp_ticks, rate);
                (time, packet[..len].to_vec(), 6 * samples)
            }
            _ => {
                let time = MediaTime::new(self.rtp_ticks / 6, rate);
                (time, mulaw.to_vec(), 6 * mulaw.len() as u64)
            }
        };
        self.rtp_ticks += ticks;
        let events = writer
            .payload_params()
            .any(|p| p.spec().codec == Codec::Tele && p.spec().clock_rate == rate);
        let key = self.key_out.take().filter(|_| events);
        let writer = match key.and_then(|(key, duration)| Some((event_code(key)?, duration))) {
            Some((event, duration)) => writer.telephone_event(ToneEvent {
                event,
                end: true,
                volume: SEND_VOLUME,
                duration,
            }),
            None => writer,
        };
        if writer.write(pt, now, time, payload).is_ok() {
            self.counts.sent += 1;
            self.drain();
        }
    }

    /// What the session counted so far.
    pub fn media_counts(&self) -> MediaCounts {
        MediaCounts {
            jitter: self.jitter.stats(),
            ..self.counts
        }
    }
}

/// Audio of the browser's stream as the jitter buffer takes it: `seq` extended by
/// str0m, `time` in 8 kHz ticks (both wrap on the wire's widths).
fn audio_packet(seq: u64, time: u64, samples: Vec<i16>) -> AudioPacket {
    AudioPacket {
        ssrc: SOURCE,
        seq: SeqNo(seq as u16),
        time: RtpTime {
            ticks: time as u32,
            rate: ClockRate::NARROWBAND,
        },
        marker: false,
        samples,
    }
}

/// `sdp` with its `o=` session version one up (a line that does not parse
/// stays as it is).
fn next_origin_version(sdp: &str) -> String {
    let bump = |origin: &str| -> Option<String> {
        let mut fields: Vec<&str> = origin.split(' ').collect();
        let version = fields.get(2)?.parse::<u64>().ok()?.wrapping_add(1).to_string();
        fields[2] = &version;
        Some(format!("o={}\r\n", fields.join(" ")))
    };
    sdp.split_inclusive("\r\n")
        .map(|line| {
            line.strip_prefix("o=")
                .and_then(|origin| bump(origin.trim_end()))
                .unwrap_or_else(|| line.to_owned())
        })
        .collect()
}

/// Whether an SDP offer is WebRTC (DTLS-SRTP) rather than plain RTP/AVP.
pub fn is_webrtc_offer(offer: &str) -> bool {
    offer.contains("UDP/TLS/RTP/SAVP") || offer.contains("a=fingerprint:")
}

#[cfg(test)]
#[allow(clippy::disallowed_methods, reason = "a test's clock starts at the real now")]
mod tests {
    //! A str0m browser (Opus and telephone-event at 48 kHz, as Chromium offers)
    //! against [`WebRtcPeer`] on one simulated clock, datagrams handed across.

    use std::net::SocketAddr;
    use std::time::{Duration, Instant};

    use ropus::{Application, Channels, Encoder, InbandFec};
    use str0m::change::{SdpAnswer, SdpOffer};
    use str0m::format::{Codec, FormatParams};
    use str0m::media::{Direction, Frequency, MediaKind, MediaTime, Mid, Pt, TelephoneEvent};
    use str0m::net::{Protocol, Receive};
    use str0m::{Candidate, Event, Input, Output, Rtc, RtcConfig};

    use super::WebRtcPeer;
    use crate::dsp::g711::{linear_to_ulaw, ulaw_to_linear};
    use crate::dsp::tone::Tone;

    const MS: Duration = Duration::from_millis(1);

    struct Browser {
        rtc: Rtc,
        mid: Mid,
        addr: SocketAddr,
        encoder: Encoder,
        /// 8 kHz samples in each packet the browser sends.
        ptime_samples: u64,
        sent: u64,
        keys: Vec<u8>,
        /// The relay's audio packets as the browser got them: RTP time (48 kHz) and payload size.
        heard: Vec<(u64, usize)>,
    }

    struct World {
        now: Instant,
        browser: Browser,
        peer: WebRtcPeer,
        peer_addr: SocketAddr,
        /// Whether the browser's audio packet with this RTP sequence number is lost.
        lose: fn(u16) -> bool,
        lost: u64,
        /// What the line says to the browser (400 Hz).
        line: Tone,
    }

    fn world(lose: fn(u16) -> bool) -> (World, String) {
        world_offering(lose, |offer| offer, 160)
    }

    /// A world whose browser's offer goes through `offered` before the relay
    /// reads it (as the widget's narrow profile edits it), and whose browser
    /// sends packets of `ptime_samples`.
    fn world_offering(
        lose: fn(u16) -> bool,
        offered: fn(String) -> String,
        ptime_samples: u64,
    ) -> (World, String) {
        let now = Instant::now();
        let addr: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let peer_addr: SocketAddr = "127.0.0.1:6000".parse().unwrap();
        let mut config = RtcConfig::new().clear_codecs().enable_opus(true, false);
        config.codec_config().add_config(
            Pt::from(110),
            None,
            Codec::Tele,
            Frequency::FORTY_EIGHT_KHZ,
            None,
            FormatParams::default(),
        );
        let mut rtc = config.build(now);
        rtc.add_local_candidate(Candidate::host(addr, "udp").unwrap());
        let mut change = rtc.sdp_api();
        let mid = change.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
        let (offer, pending) = change.apply().unwrap();
        let (peer, answer) =
            WebRtcPeer::accept(now, &offered(offer.to_sdp_string()), peer_addr, &[]).unwrap();
        rtc.sdp_api()
            .accept_answer(pending, SdpAnswer::from_sdp_string(&answer).unwrap())
            .unwrap();
        // In-band FEC on, as Chromium runs it when loss is reported.
        let encoder = Encoder::builder(8_000, Channels::Mono, Application::Voip)
            .inband_fec(InbandFec::Enabled)
            .packet_loss_perc(4)
            .build()
            .unwrap();
        let browser = Browser {
            rtc,
            mid,
            addr,
            encoder,
            ptime_samples,
            sent: 0,
            keys: Vec::new(),
            heard: Vec::new(),
        };
        let world = World {
            now,
            browser,
            peer,
            peer_addr,
            lose,
            lost: 0,
            line: Tone::new(400.0, 8000.0, 8000.0),
        };
        (world, answer)
    }

    impl World {
        /// One millisecond: both sides' timers and datagrams.
        fn step(&mut self) {
            self.now += MS;
            let now = self.now;
            let _ = self.browser.rtc.handle_input(Input::Timeout(now));
            while let Ok(out) = self.browser.rtc.poll_output() {
                match out {
                    Output::Timeout(_) => break,
                    Output::Transmit(t) => {
                        let bytes = t.contents.to_vec();
                        let audio = bytes.len() > 12 && bytes[0] >> 6 == 2 && bytes[1] & 0x7F == 111;
                        if audio && (self.lose)(u16::from_be_bytes([bytes[2], bytes[3]])) {
                            self.lost += 1;
                            continue;
                        }
                        self.peer.handle_datagram(now, self.browser.addr, &bytes);
                    }
                    Output::Event(Event::MediaData(data)) if data.params.spec().codec == Codec::Tele => {
                        self.browser.keys.push(data.data[0]);
                    }
                    Output::Event(Event::MediaData(data)) => {
                        self.browser.heard.push((data.time.numer(), data.data.len()));
                    }
                    Output::Event(_) => {}
                }
            }
            if self.peer.poll_timeout().is_some_and(|at| at <= now) {
                self.peer.handle_timeout(now);
            }
            while let Some((to, bytes)) = self.peer.poll_transmit() {
                assert_eq!(to, self.browser.addr);
                let receive = Receive {
                    proto: Protocol::Udp,
                    source: self.peer_addr,
                    destination: self.browser.addr,
                    contents: bytes.as_slice().try_into().unwrap(),
                };
                let _ = self.browser.rtc.handle_input(Input::Receive(now, receive));
            }
        }

        /// One packet of a 1 kHz tone from the browser's microphone, with `key` pressed.
        fn speak(&mut self, tone: &mut Tone, key: Option<u8>) {
            let b = &mut self.browser;
            let Some(writer) = b.rtc.writer(b.mid) else { return };
            let Some(pt) = writer
                .payload_params()
                .find(|p| p.spec().codec == Codec::Opus)
                .map(|p| p.pt())
            else {
                return;
            };
            let pcm: Vec<i16> = (0..b.ptime_samples).map(|_| tone.next_sample()).collect();
            let mut packet = [0u8; 400];
            let len = b.encoder.encode(&pcm, &mut packet).unwrap();
            let writer = match key {
                Some(event) => writer.telephone_event(TelephoneEvent {
                    event,
                    end: true,
                    volume: 10,
                    duration: 100 * MS,
                }),
                None => writer,
            };
            let time = MediaTime::new(b.sent * 6 * b.ptime_samples, Frequency::FORTY_EIGHT_KHZ);
            b.sent += 1;
            let _ = writer.write(pt, self.now, time, packet[..len].to_vec());
        }

        /// Runs `ms`, the browser speaking a packet every packet time and the line
        /// (from `playing` on) taking a frame every 20 ms; the line's frames and
        /// the peer's depth.
        fn run(&mut self, ms: u64, playing: Instant, tone: &mut Tone) -> (Vec<[u8; 160]>, Vec<Duration>) {
            let mut frames = Vec::new();
            let mut depth = Vec::new();
            for n in 0..ms {
                self.step();
                if n % (self.browser.ptime_samples / 8) == 0 && self.peer.is_connected() {
                    self.speak(tone, None);
                }
                if n % 20 == 0 && self.peer.is_connected() {
                    let said: Vec<u8> = (0..160)
                        .map(|_| linear_to_ulaw(self.line.next_sample()))
                        .collect();
                    self.peer.send_line_audio(self.now, &said);
                    if self.now >= playing {
                        frames.push(self.peer.next_line_frame(self.now));
                        depth.push(self.peer.media_counts().jitter.depth);
                    }
                }
            }
            (frames, depth)
        }
    }

    fn rms(frame: &[u8; 160]) -> f64 {
        let sum: f64 = frame.iter().map(|&c| f64::from(ulaw_to_linear(c)).powi(2)).sum();
        (sum / 160.0).sqrt()
    }

    #[test]
    fn a_malformed_telephone_event_is_dropped_and_the_call_goes_on() {
        let (mut w, _) = world(|_| false);
        let mut tone = Tone::new(1000.0, 8000.0, 8000.0);
        let start = w.now;
        w.run(1000, start, &mut tone);
        assert!(w.peer.is_connected());
        // Three bytes where RFC 4733 reports are four.
        let b = &mut w.browser;
        let time = MediaTime::new(b.sent * 6 * b.ptime_samples, Frequency::FORTY_EIGHT_KHZ);
        let writer = b.rtc.writer(b.mid).unwrap();
        writer.write(Pt::from(110), w.now, time, vec![5, 10, 0]).unwrap();
        let before = w.peer.media_counts().received;
        w.run(500, start, &mut tone);
        assert!(!w.peer.is_closed(), "the session survived the bad packet");
        assert!(w.peer.media_counts().received > before + 20, "audio still flows");
        w.speak(&mut tone, Some(7));
        w.run(300, start, &mut tone);
        assert_eq!(w.peer.poll_dtmf(), Some('7'), "and keys too");
    }

    #[test]
    fn answer_offers_telephone_events_and_keys_go_both_ways() {
        let (mut w, answer) = world(|_| false);
        assert!(answer.contains("telephone-event/48000"), "{answer}");
        let mut tone = Tone::new(1000.0, 8000.0, 8000.0);
        let start = w.now;
        w.run(1000, start, &mut tone);
        assert!(w.peer.is_connected());
        // The browser's keypad: one press, many packets, reported once.
        w.speak(&mut tone, Some(5));
        w.run(300, start, &mut tone);
        assert_eq!(w.peer.poll_dtmf(), Some('5'));
        assert_eq!(w.peer.poll_dtmf(), None);
        // A far-end key, to the browser as events of code 9.
        w.peer.send_key('9', 100 * MS);
        w.run(300, start, &mut tone);
        assert!(
            !w.browser.keys.is_empty() && w.browser.keys.iter().all(|&e| e == 9),
            "{:?}",
            w.browser.keys
        );
    }

    /// Every 25th browser packet lost (4 %), the call answered 3 s in, after
    /// audio has flowed from the moment ICE and DTLS were up: every loss is seen
    /// and made up by the decoder, nothing is late, the buffer stays within
    /// `max_depth` and no line frame falls below `min_rms` (a 1 kHz tone of
    /// 5,657 RMS). The line's counts.
    fn assert_losses_concealed(
        mut w: World,
        ms: u64,
        max_depth: Duration,
        min_rms: f64,
    ) -> super::MediaCounts {
        let mut tone = Tone::new(1000.0, 8000.0, 8000.0);
        let answered = w.now + 3000 * MS;
        let (frames, depth) = w.run(ms, answered, &mut tone);
        let counts = w.peer.media_counts();
        eprintln!(
            "lost {} counts {counts:?} depth max {:?}",
            w.lost,
            depth.iter().max()
        );
        assert!(w.lost > 5);
        // All but perhaps the last, which no later packet revealed.
        assert!(w.lost - counts.lost <= 1, "{} lost, {} seen", w.lost, counts.lost);
        assert_eq!(counts.concealed, counts.lost);
        assert_eq!(counts.jitter.late, 0);
        assert!(
            depth[50..].iter().all(|d| *d <= max_depth),
            "depth {:?}",
            depth.iter().max()
        );
        let quiet = frames[50..].iter().filter(|f| rms(f) < min_rms).count();
        assert_eq!(quiet, 0, "frames with the tone gone");
        counts
    }

    #[test]
    fn browser_audio_plays_through_the_jitter_buffer_with_loss_concealed() {
        // The tone never drops out: concealment fills each 20 ms gap.
        let (w, _) = world(|seq| seq % 25 == 0);
        let counts = assert_losses_concealed(w, 23_000, 40 * MS, 1000.0);
        assert!(counts.lost > 30);
    }

    /// The widget's narrow-link profile, as it edits the offer it sends: Opus at
    /// 16 kbit/s at most, in 60 ms packets.
    fn narrow(offer: String) -> String {
        let edited = offer
            .replace("useinbandfec=1", "useinbandfec=1;maxaveragebitrate=16000")
            .replace(
                "a=rtpmap:111 opus/48000/2\r\n",
                "a=rtpmap:111 opus/48000/2\r\na=ptime:60\r\na=maxptime:60\r\n",
            );
        assert!(
            edited.contains("maxaveragebitrate") && edited.contains("a=ptime:60"),
            "{offer}"
        );
        edited
    }

    /// The relay's packets to the browser over the last `seconds`: RTP time
    /// steps (48 kHz) and payload bitrate.
    fn heard(w: &World, seconds: u64) -> (Vec<u64>, f64) {
        let packets = &w.browser.heard[w.browser.heard.len() - (seconds * 1000 / 20) as usize / 3..];
        let steps: Vec<u64> = packets.windows(2).map(|p| p[1].0 - p[0].0).collect();
        let span = (packets[packets.len() - 1].0 - packets[0].0) as f64 / 48_000.0;
        let bytes: usize = packets[1..].iter().map(|p| p.1).sum();
        (steps, bytes as f64 * 8.0 / span)
    }

    #[test]
    fn a_narrow_offer_gets_sixty_ms_opus_at_sixteen_kbit_both_ways() {
        let (mut w, answer) = world_offering(|_| false, narrow, 480);
        assert!(answer.contains("maxaveragebitrate=16000"), "{answer}");
        assert!(answer.contains("a=ptime:60\r\na=maxptime:60\r\n"), "{answer}");
        assert!(!answer.contains("transport-wide-cc"), "{answer}");
        let mut tone = Tone::new(1000.0, 8000.0, 8000.0);
        let start = w.now;
        let (frames, _) = w.run(6000, start, &mut tone);
        let (steps, bitrate) = heard(&w, 3);
        eprintln!(
            "narrow: {} packets to the browser, {bitrate:.0} bit/s of Opus",
            w.browser.heard.len()
        );
        assert!(steps.iter().all(|&s| s == 2880), "60 ms each: {steps:?}");
        assert!((8_000.0..=16_000.0 * 1.1).contains(&bitrate), "{bitrate} bit/s");
        // The browser's 60 ms packets reach the line as a steady tone.
        let counts = w.peer.media_counts();
        assert!(counts.received > 80, "{counts:?}");
        let quiet = frames[100..].iter().filter(|f| rms(f) < 1000.0).count();
        assert_eq!(quiet, 0, "frames with the tone gone");
    }

    #[test]
    fn a_plain_offer_gets_twenty_ms_opus() {
        let (mut w, answer) = world(|_| false);
        assert!(
            !answer.contains("maxaveragebitrate") && !answer.contains("a=ptime"),
            "{answer}"
        );
        assert!(answer.contains("transport-wide-cc"), "{answer}");
        let mut tone = Tone::new(1000.0, 8000.0, 8000.0);
        let start = w.now;
        w.run(3000, start, &mut tone);
        let (steps, bitrate) = heard(&w, 1);
        eprintln!("plain: {bitrate:.0} bit/s of Opus");
        assert!(steps.iter().all(|&s| s == 960), "20 ms each: {steps:?}");
    }

    #[test]
    fn sixty_ms_browser_packets_play_through_the_jitter_buffer_with_loss_concealed() {
        // Every lost packet is made up by the decoder in time, none by the jitter
        // buffer's repeats; over 60 ms the made-up tone fades (by up to ~18 dB
        // here), but no frame goes silent.
        let (w, _) = world_offering(|seq| seq % 25 == 0, narrow, 480);
        let counts = assert_losses_concealed(w, 18_000, 100 * MS, 500.0);
        assert_eq!(counts.jitter.concealed, 0, "{counts:?}");
    }

    fn ufrag(sdp: &str) -> &str {
        sdp.lines()
            .find_map(|l| l.strip_prefix("a=ice-ufrag:"))
            .expect("an ice-ufrag")
    }

    /// A world whose browser has sent a second of tone and is connected; our
    /// first answer, and the tone to go on with.
    fn connected() -> (World, String, Tone) {
        let (mut w, first) = world(|_| false);
        let mut tone = Tone::new(1000.0, 8000.0, 8000.0);
        let start = w.now;
        w.run(1000, start, &mut tone);
        assert!(w.peer.is_connected());
        (w, first, tone)
    }

    /// Runs `ms` more and asserts the session goes on and the last `frames`
    /// frames carried the browser's tone.
    fn assert_tone_goes_on(w: &mut World, ms: u64, frames: usize, tone: &mut Tone, after: &str) {
        let from = w.now;
        let (heard, _) = w.run(ms, from, tone);
        assert!(w.peer.is_connected() && !w.peer.is_closed());
        let toned = heard[heard.len() - frames..]
            .iter()
            .filter(|f| rms(f) > 1000.0)
            .count();
        assert_eq!(toned, frames, "the browser's tone after {after}");
    }

    #[test]
    fn an_ice_restart_offer_gets_new_credentials_and_the_audio_resumes() {
        let (mut w, first, mut tone) = connected();
        let mut change = w.browser.rtc.sdp_api();
        change.ice_restart(true);
        let (offer, pending) = change.apply().expect("an ICE restart offer");
        let offer = offer.to_sdp_string();
        assert_ne!(ufrag(&offer), "", "{offer}");
        let answer = w.peer.reoffer(&offer).unwrap();
        assert_ne!(ufrag(&answer), ufrag(&first), "new credentials of ours");
        w.browser
            .rtc
            .sdp_api()
            .accept_answer(pending, SdpAnswer::from_sdp_string(&answer).unwrap())
            .unwrap();
        assert_tone_goes_on(&mut w, 5000, 100, &mut tone, "the restart");
        // Hold from the browser: our answer mirrors it.
        let mut change = w.browser.rtc.sdp_api();
        change.set_direction(w.browser.mid, Direction::SendOnly);
        let (offer, _pending) = change.apply().expect("a hold offer");
        let answer = w.peer.reoffer(&offer.to_sdp_string()).unwrap();
        assert!(answer.contains("a=recvonly"), "{answer}");
    }

    fn origin_version(sdp: &str) -> u64 {
        let origin = sdp.lines().find_map(|l| l.strip_prefix("o=")).expect("o=");
        origin.split(' ').nth(2).unwrap().parse().unwrap()
    }

    #[test]
    fn an_offer_asked_for_is_our_sdp_again_and_the_browser_takes_it() {
        let (mut w, first, mut tone) = connected();
        let again = w.peer.offer_again();
        assert_eq!(origin_version(&again), origin_version(&first) + 1);
        let rest = |sdp: &str| {
            sdp.lines()
                .filter(|l| !l.starts_with("o="))
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert_eq!(rest(&again), rest(&first), "the same session");
        assert_eq!(origin_version(&w.peer.offer_again()), origin_version(&first) + 2);
        let offer = SdpOffer::from_sdp_string(&again).unwrap();
        w.browser
            .rtc
            .sdp_api()
            .accept_offer(offer)
            .expect("the browser takes it");
        assert_tone_goes_on(&mut w, 2000, 50, &mut tone, "the refresh");
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods, reason = "a test's clock starts at the real now")]
mod nat_tests {
    //! The relay behind a 1:1 NAT: a full-ICE str0m browser reaches it at its
    //! advertised address.

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
