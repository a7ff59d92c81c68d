//! Test support (feature `testing`): the relay's side of a simulated world, for
//! harnesses that step whole calls on one virtual clock with no socket and no
//! task ([`RelaySide`]: the [`Gateway`], one real [`ModemDriver`] against one
//! [`Emulator`] per line, the media sockets "bound" at made-up ports), and a
//! caller's media ([`CallerMedia`]: a 1 kHz PCMU tone every 20 ms, keys as RFC
//! 4733 events, what comes back decoded). The harness moves SIP between the
//! gateway's endpoint and its peers and media between [`RelaySide::perform`]
//! and [`RelaySide::media_in`]. For tests of a real line's port:
//! [`next_line_event`].
#![allow(
    clippy::disallowed_methods,
    reason = "an edge: it reads the real clock and the OS generator"
)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use offhook_sip::endpoint::Endpoint;

use crate::dsp::g711::{alaw_to_linear, linear_to_alaw, linear_to_ulaw, ulaw_to_linear};
use crate::dsp::tone::Tone;
use crate::emulator::{Emulator, Faults};
use crate::modem::{DriverOutput, LineCommand, LineEvent, LineHandle, ModemDriver};
use crate::relay::{CallId, Gateway, LineSpec, MediaAddrs, Output, Port, RelayConfig, RelayStats};
use crate::rtp::packet::parse;
use crate::rtp::report::is_rtcp;

/// The next event of `line` that is `wanted` (the others are skipped).
///
/// # Panics
/// When the line's task ends, or none comes within 20 s.
pub async fn next_line_event(line: &mut LineHandle, wanted: impl Fn(&LineEvent) -> bool) -> LineEvent {
    let wait = async {
        loop {
            let event = line.events.recv().await.expect("the line task runs");
            if wanted(&event) {
                return event;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), wait)
        .await
        .expect("event in time")
}

/// One line: the real driver against the emulated modem.
#[derive(Debug)]
pub struct ModemLine {
    /// The line's name.
    pub name: String,
    /// The driver.
    pub driver: ModemDriver,
    /// The modem and its telephone network.
    pub modem: Emulator,
}

impl ModemLine {
    /// A fresh driver and modem for `spec` at `now`.
    fn on(spec: &LineSpec, no_answer: Duration, hangs_up_after: Duration, now: Instant) -> Self {
        Self {
            name: spec.name.clone(),
            driver: ModemDriver::new(spec.driver_config(no_answer), now),
            modem: Emulator::new(Faults::default(), hangs_up_after).with_exchange(spec.exchange()),
        }
    }
}

/// The relay of a simulated world (see the module comment).
#[derive(Debug)]
pub struct RelaySide {
    /// The relay's core.
    pub gateway: Gateway,
    /// Its lines.
    pub lines: Vec<ModemLine>,
    /// The media sockets of each call, as the harness "bound" them.
    pub bound: HashMap<CallId, MediaAddrs>,
    next_port: u16,
    /// The lines' settings and emulator timing, for a modem opened again.
    specs: Vec<LineSpec>,
    no_answer: Duration,
    hangs_up_after: Duration,
    /// What the lines said and were told (no audio).
    pub line_log: Vec<String>,
}

impl RelaySide {
    /// A relay with `config`, its SIP on `endpoint` (bound already), its clock
    /// reading `clock` (monotonic, wall) at the start, a modem on every line of
    /// the config but `broken` ones (they fail at start); numbers that hang up do
    /// so `hangs_up_after` the answer.
    pub fn new(
        config: RelayConfig,
        endpoint: Endpoint,
        clock: (Instant, SystemTime),
        seed: u64,
        broken: &[&str],
        hangs_up_after: Duration,
    ) -> Self {
        let names: Vec<String> = config.lines.iter().map(|l| l.name.clone()).collect();
        let stats = Arc::new(RelayStats::new(names.iter().map(String::as_str)));
        let (now, wall) = clock;
        let no_answer = Duration::from_secs(config.no_answer_s);
        let lines = config
            .lines
            .iter()
            .filter(|spec| !broken.contains(&spec.name.as_str()))
            .map(|spec| ModemLine::on(spec, no_answer, hangs_up_after, now))
            .collect();
        let specs = config.lines.clone();
        let gateway = Gateway::new(config, endpoint, stats, now, wall, seed);
        let mut relay = Self {
            gateway,
            lines,
            bound: HashMap::new(),
            next_port: 40_000,
            specs,
            no_answer,
            hangs_up_after,
            line_log: Vec::new(),
        };
        for name in broken {
            let fault = LineEvent::Fault("no such device".into());
            relay.gateway.handle_line_event(now, name, fault);
        }
        relay
    }

    /// Carries out the gateway's outputs; the media datagrams it sends (where to,
    /// the bytes) for the harness to deliver. True when anything moved.
    pub fn perform(&mut self, now: Instant, media_out: &mut Vec<(SocketAddr, Vec<u8>)>) -> bool {
        let mut moved = false;
        while let Some(output) = self.gateway.poll_output() {
            moved = true;
            match output {
                Output::Line { line, command } => {
                    if !matches!(command, LineCommand::Audio(_)) {
                        self.line_log.push(format!("{line} <- {command:?}"));
                    }
                    if let Some(l) = self.lines.iter_mut().find(|l| l.name == line) {
                        l.driver.handle_command(now, command);
                    }
                }
                Output::BindMedia { call, rtcp } => {
                    let ip = self
                        .gateway
                        .endpoint()
                        .host()
                        .parse()
                        .unwrap_or([127, 0, 0, 1].into());
                    let rtp = SocketAddr::new(ip, self.next_port);
                    let rtcp = rtcp.then(|| SocketAddr::new(ip, self.next_port + 1));
                    self.next_port += 2;
                    let addrs = MediaAddrs { rtp, rtcp };
                    self.bound.insert(call, addrs);
                    self.gateway.handle_media_bound(now, call, Ok(addrs));
                }
                Output::Media { to, bytes, .. } => media_out.push((to, bytes)),
                Output::CloseMedia { call } => {
                    self.bound.remove(&call);
                }
                // The emulated modems here are never unplugged: a retry finds
                // the line's modem there, fresh, and the line works again.
                Output::Reopen { line } => {
                    let spec = self.specs.iter().find(|s| s.name == line);
                    if let (Some(l), Some(spec)) = (self.lines.iter_mut().find(|l| l.name == line), spec) {
                        *l = ModemLine::on(spec, self.no_answer, self.hangs_up_after, now);
                    }
                }
            }
        }
        moved
    }

    /// A media datagram from `from` to one of the calls' sockets at `to`.
    pub fn media_in(&mut self, now: Instant, to: SocketAddr, from: SocketAddr, bytes: &[u8]) {
        let target = self.bound.iter().find_map(|(call, a)| {
            if a.rtp == to {
                Some((*call, Port::Rtp))
            } else if a.rtcp == Some(to) {
                Some((*call, Port::Rtcp))
            } else {
                None
            }
        });
        if let Some((call, port)) = target {
            self.gateway.handle_media(now, call, port, from, bytes);
        }
    }

    /// Bytes between each driver and its modem; line events to the gateway.
    pub fn move_line_bytes(&mut self, now: Instant) -> bool {
        let mut moved = false;
        for line in &mut self.lines {
            while let Some(output) = line.driver.poll_output() {
                moved = true;
                match output {
                    DriverOutput::Write(bytes) => line.modem.handle_bytes(now, &bytes),
                    DriverOutput::Event(event) => {
                        if !matches!(event, LineEvent::Audio(_) | LineEvent::EarlyAudio(_)) {
                            self.line_log.push(format!("{} -> {event:?}", line.name));
                        }
                        self.gateway.handle_line_event(now, &line.name, event);
                    }
                    DriverOutput::Play(_) => {}
                }
            }
            while let Some(bytes) = line.modem.poll_transmit() {
                moved = true;
                line.driver.handle_bytes(now, &bytes);
            }
        }
        moved
    }

    /// The earliest deadline of the gateway, the drivers and the modems.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let lines = self
            .lines
            .iter()
            .flat_map(|l| [l.driver.poll_timeout(), l.modem.poll_timeout()]);
        std::iter::once(self.gateway.poll_timeout())
            .chain(lines)
            .flatten()
            .min()
    }

    /// Fires what is due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.gateway.handle_timeout(now);
        for line in &mut self.lines {
            if line.driver.poll_timeout().is_some_and(|t| t <= now) {
                line.driver.handle_timeout(now);
            }
            line.modem.handle_timeout(now);
        }
    }
}

/// A caller's media: a 1 kHz tone as PCMU (or PCMA) every 20 ms while
/// `sending`, a key as telephone-events when asked; what comes back, decoded.
#[derive(Debug)]
pub struct CallerMedia {
    tone: Tone,
    /// Where the tone goes (the relay's RTP address), once known.
    pub sending: Option<SocketAddr>,
    next_send: Option<Instant>,
    seq: u16,
    /// The audio that came back, decoded.
    pub heard: Vec<i16>,
    /// Payload types of the RTP that came back.
    pub payload_types: Vec<u8>,
    /// RTCP packets that came back.
    pub rtcp: usize,
    /// A key to send as RFC 4733 with the next packet.
    pub key: Option<char>,
    /// Sends silence instead of the tone (bursts, for latency measurements).
    pub quiet: bool,
    /// The codec the tone goes out in.
    pub codec: crate::sdp::G711,
}

impl Default for CallerMedia {
    fn default() -> Self {
        Self {
            tone: Tone::new(1000.0, 8000.0, 8000.0),
            sending: None,
            next_send: None,
            seq: 0,
            heard: Vec::new(),
            payload_types: Vec::new(),
            rtcp: 0,
            key: None,
            quiet: false,
            codec: crate::sdp::G711::Pcmu,
        }
    }
}

impl CallerMedia {
    fn packet(&mut self, payload_type: u8, payload: &[u8]) -> Vec<u8> {
        let mut packet = vec![0x80, payload_type, (self.seq >> 8) as u8, self.seq as u8];
        packet.extend((u32::from(self.seq) * 160).to_be_bytes());
        packet.extend(0x1234_5678u32.to_be_bytes());
        packet.extend(payload);
        self.seq = self.seq.wrapping_add(1);
        packet
    }

    /// When the next packet is due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.sending.and(self.next_send)
    }

    /// The next datagram due at `now`, if any: where to, the bytes.
    pub fn due(&mut self, now: Instant) -> Option<(SocketAddr, Vec<u8>)> {
        let to = self.sending?;
        if self.next_send.is_some_and(|at| at > now) {
            return None;
        }
        self.next_send = Some(self.next_send.unwrap_or(now) + Duration::from_millis(20));
        let packet = match self.key.take() {
            // RFC 4733: event, end bit and volume, duration.
            Some(key) => {
                let event = crate::rtp::dtmf::event_code(key).unwrap_or(0);
                self.packet(101, &[event, 0x80 | 10, 0x03, 0x20])
            }
            None => {
                let (quiet, codec) = (self.quiet, self.codec);
                let audio: Vec<u8> = (0..160)
                    .map(|_| self.tone.next_sample())
                    .map(|sample| if quiet { 0 } else { sample })
                    .map(|sample| match codec {
                        crate::sdp::G711::Pcmu => linear_to_ulaw(sample),
                        crate::sdp::G711::Pcma => linear_to_alaw(sample),
                    })
                    .collect();
                self.packet(codec.payload_type(), &audio)
            }
        };
        Some((to, packet))
    }

    /// A datagram that came back.
    pub fn receive(&mut self, bytes: &[u8]) {
        if is_rtcp(bytes) {
            self.rtcp += 1;
        } else if let Ok(packet) = parse(bytes) {
            self.payload_types.push(packet.payload_type);
            match packet.payload_type {
                0 => self
                    .heard
                    .extend(packet.payload.iter().map(|&c| ulaw_to_linear(c))),
                8 => self
                    .heard
                    .extend(packet.payload.iter().map(|&c| alaw_to_linear(c))),
                _ => {}
            }
        }
    }

    /// The relay's RTP address from an SDP answer, and the tone starts going there.
    pub fn send_to_answer(&mut self, sdp: &[u8]) {
        let body = String::from_utf8_lossy(sdp);
        let (Some(ip), Some(port)) = (
            body.lines()
                .find_map(|l| l.strip_prefix("c=IN IP4 "))
                .and_then(|ip| ip.trim().parse().ok()),
            body.lines()
                .find_map(|l| l.strip_prefix("m=audio "))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|p| p.parse().ok()),
        ) else {
            return;
        };
        self.sending = Some(SocketAddr::new(ip, port));
    }
}
