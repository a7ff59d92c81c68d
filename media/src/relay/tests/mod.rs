//! The relay in simulated time, with no socket and no task: the [`Gateway`],
//! one real [`ModemDriver`] and [`Emulator`] per line, a caller on
//! [`offhook_sip::ua`] with a little RTP of its own, and a registrar, all on one
//! virtual clock; the harness moves SIP datagrams, line bytes and media between
//! them and fast-forwards to the next deadline of any of them (str0m's
//! `progress()` idea). Whole calls take milliseconds.
#![allow(
    clippy::disallowed_methods,
    reason = "an edge: it reads the real clock and the OS generator"
)]

mod calls;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use offhook_sip::endpoint::{SipIo, Transmit};
use offhook_sip::message::{Message, Method, Request, Response, parse as parse_sip};
use offhook_sip::testing::{Registrar, arriving, bound_endpoint, first_line};
use offhook_sip::ua::{Body, End, Outgoing, Reply, SessionId, UaConfig, UaEvent, UserAgent};
use offhook_vocab::{DigestAlgorithm, LineState, headers};

use super::{CallId, Device, Gateway, LineSpec, MediaAddrs, Output, Port, RelayConfig, RelayStats};
use crate::dsp::g711::linear_to_ulaw;
use crate::dsp::tone::Tone;
use crate::emulator::{Emulator, Faults};
use crate::modem::{DriverConfig, DriverOutput, LineCommand, LineEvent, ModemDriver};
use crate::testing::CallerMedia;

const RELAY: &str = "127.0.0.1:5070";
const CALLER: &str = "127.0.0.2:5060";
const REGISTRAR: &str = "127.0.0.3:5060";
const CALLER_RTP: &str = "127.0.0.2:6000";
const DOMAIN: &str = "test.example";
const NO_ANSWER: Duration = Duration::from_secs(20);
/// How long an answered RTP/AVP call may be silent.
const RTP_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a WebRTC call's ICE may take to connect (shorter than str0m's own
/// giving up, ~9.5 s, so the relay's bound is what ends it).
const ICE_CONNECT: Duration = Duration::from_secs(5);
/// How long after its answer the number that hangs up does so.
const HANGS_UP_AFTER: Duration = Duration::from_secs(3);

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

/// The caller's RTP/AVP offer (PCMU, telephone-event, rtcp-mux) in `direction`.
fn rtp_offer(direction: &str) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\n\
         m=audio {} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n\
         a=rtcp-mux\r\na={direction}\r\n",
        addr(CALLER_RTP).port()
    )
}

/// One line: the real driver against the emulated modem.
struct SimLine {
    name: String,
    driver: ModemDriver,
    modem: Emulator,
}

impl SimLine {
    /// A fresh driver and modem for `name`, opened at `now`.
    fn new(name: &str, now: Instant) -> Self {
        let config = DriverConfig {
            no_answer: NO_ANSWER,
            ..DriverConfig::default()
        };
        Self {
            name: name.to_owned(),
            driver: ModemDriver::new(config, now),
            modem: Emulator::new(Faults::default(), HANGS_UP_AFTER),
        }
    }
}

/// The whole relay on one clock (see the module comment).
struct Sim {
    now: Instant,
    start: Instant,
    gateway: Gateway,
    lines: Vec<SimLine>,
    caller: UserAgent,
    registrar: Registrar,
    media: CallerMedia,
    /// Where the caller's RTP comes from and goes to (its SDP says so).
    caller_rtp: SocketAddr,
    /// The relay's media sockets, as the harness "bound" them.
    bound: HashMap<CallId, MediaAddrs>,
    next_port: u16,
    /// Drops this many of the caller's next ACKs.
    drop_acks: usize,
    /// Lines whose modem is not there: opening it fails.
    unplugged: Vec<String>,
    /// Every SIP datagram: when, from, first line.
    log: Vec<(Duration, SocketAddr, String)>,
    /// The requests the relay sent, whole.
    relay_requests: Vec<Request>,
    /// What the caller's UA said.
    events: Vec<UaEvent>,
    /// What the lines said (no audio) and were told (no audio).
    line_log: Vec<String>,
    /// Whether the caller's requests reach the relay signed, as from signaling.
    sign: bool,
    /// The requests signed, as they went.
    sent_signed: Vec<Request>,
}

fn config(lines: &[&str]) -> RelayConfig {
    RelayConfig {
        name: "relay".into(),
        password: "secret".into(),
        domain: DOMAIN.into(),
        signaling: addr(REGISTRAR),
        listen: addr(RELAY),
        lines: lines
            .iter()
            .map(|name| LineSpec {
                name: (*name).to_owned(),
                device: Device::Emulated,
                soundcard: None,
                country: None,
                echo_canceller: None,
                emulated: Default::default(),
                modem_ports: None,
            })
            .collect(),
        international_prefix: "00".into(),
        no_answer_s: NO_ANSWER.as_secs(),
        rtcp_interval_ms: 1000,
        rtp_timeout_s: RTP_TIMEOUT.as_secs(),
        ice_connect_timeout_s: ICE_CONNECT.as_secs(),
        advertise: Vec::new(),
        health_listen: None,
    }
}

impl Sim {
    /// A relay with these lines, each on its own emulated modem, except those
    /// in `broken` (no modem: they fail at start); run until registered.
    fn new(lines: &[&str], broken: &[&str]) -> Self {
        let now = Instant::now();
        let all: Vec<&str> = lines.iter().chain(broken).copied().collect();
        let config = config(&all);
        let stats = Arc::new(RelayStats::new(all.iter().copied()));
        let gateway = Gateway::new(
            config,
            bound_endpoint(addr(RELAY), 11),
            stats,
            now,
            SystemTime::UNIX_EPOCH,
            12,
        );
        let mut sim = Self {
            now,
            start: now,
            gateway,
            lines: lines.iter().map(|name| SimLine::new(name, now)).collect(),
            unplugged: broken.iter().map(|name| (*name).to_owned()).collect(),
            caller: UserAgent::new(bound_endpoint(addr(CALLER), 13), UaConfig::default()),
            registrar: Registrar::new(addr(REGISTRAR), DOMAIN, "relay", "secret", 300),
            media: CallerMedia::default(),
            caller_rtp: addr(CALLER_RTP),
            bound: HashMap::new(),
            next_port: 40_000,
            drop_acks: 0,
            log: Vec::new(),
            relay_requests: Vec::new(),
            events: Vec::new(),
            line_log: Vec::new(),
            sign: true,
            sent_signed: Vec::new(),
        };
        for name in broken {
            let fault = LineEvent::Fault("no such device".into());
            sim.gateway.handle_line_event(now, name, fault);
        }
        sim.run(Duration::from_secs(1));
        sim
    }

    fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    fn state(&self, line: &str) -> LineState {
        self.gateway.line(line).unwrap().state
    }

    /// A request from the caller as signaling forwards it: signed with the
    /// relay's key (not ACK and CANCEL, which signaling does not sign), unless
    /// `sign` is off.
    fn signed(&mut self, bytes: Vec<u8>) -> Vec<u8> {
        let Ok(Message::Request(mut request)) = parse_sip(&bytes) else {
            return bytes;
        };
        if !self.sign || matches!(request.method, Method::Ack | Method::Cancel) {
            return bytes;
        }
        let key = DigestAlgorithm::Sha256.ha1("relay", DOMAIN, "secret");
        let wall = i64::try_from(self.elapsed().as_millis()).unwrap();
        offhook_sip::trust::sign(key.as_bytes(), &mut request, wall);
        self.sent_signed.push(request.clone());
        request.to_bytes()
    }

    /// SIP datagrams to wherever they go.
    fn deliver_sip(&mut self) -> bool {
        let mut moving: Vec<(SocketAddr, Transmit)> = Vec::new();
        moving.extend(std::iter::from_fn(|| self.gateway.poll_transmit()).map(|t| (addr(RELAY), t)));
        moving.extend(std::iter::from_fn(|| self.caller.poll_transmit()).map(|t| (addr(CALLER), t)));
        moving.extend(std::iter::from_fn(|| self.registrar.poll_transmit()).map(|t| (addr(REGISTRAR), t)));
        let moved = !moving.is_empty();
        for (from, t) in moving {
            let line = first_line(&t.bytes);
            self.log.push((self.elapsed(), from, line.clone()));
            if from == addr(RELAY)
                && let Ok(Message::Request(request)) = parse_sip(&t.bytes)
            {
                self.relay_requests.push(request);
            }
            if line.starts_with("ACK") && from == addr(CALLER) && self.drop_acks > 0 {
                self.drop_acks -= 1;
                continue;
            }
            let (flow, now) = (arriving(&t), self.now);
            let bytes = match t.flow.remote == addr(RELAY) && from == addr(CALLER) {
                true => self.signed(t.bytes),
                false => t.bytes,
            };
            match t.flow.remote {
                to if to == addr(RELAY) => self.gateway.handle_datagram(now, flow, &bytes),
                to if to == addr(CALLER) => self.caller.handle_datagram(now, flow, &bytes),
                to if to == addr(REGISTRAR) => self.registrar.handle_datagram(now, flow, &bytes),
                _ => {}
            }
        }
        moved
    }

    /// The gateway's outputs carried out.
    fn perform(&mut self) -> bool {
        let mut moved = false;
        while let Some(output) = self.gateway.poll_output() {
            moved = true;
            match output {
                Output::Line { line, command } => {
                    if !matches!(command, LineCommand::Audio(_)) {
                        self.line_log.push(format!("{line} <- {command:?}"));
                    }
                    if let Some(l) = self.lines.iter_mut().find(|l| l.name == line) {
                        l.driver.handle_command(self.now, command);
                    }
                }
                Output::Reopen { line } => {
                    self.line_log.push(format!("{line} reopened"));
                    if self.unplugged.contains(&line) {
                        let fault = LineEvent::Fault("no such device".into());
                        self.gateway.handle_line_event(self.now, &line, fault);
                    } else {
                        self.lines.retain(|l| l.name != line);
                        self.lines.push(SimLine::new(&line, self.now));
                    }
                }
                Output::BindMedia { call, rtcp } => {
                    let rtp = SocketAddr::new(addr(RELAY).ip(), self.next_port);
                    let rtcp = rtcp.then(|| SocketAddr::new(rtp.ip(), self.next_port + 1));
                    self.next_port += 2;
                    let addrs = MediaAddrs { rtp, rtcp };
                    self.bound.insert(call, addrs);
                    self.gateway.handle_media_bound(self.now, call, Ok(addrs));
                }
                Output::Media { to, bytes, .. } => {
                    if to == self.caller_rtp {
                        self.media.receive(&bytes);
                    }
                }
                Output::CloseMedia { call } => {
                    self.bound.remove(&call);
                }
            }
        }
        moved
    }

    /// Bytes between each driver and its modem; line events to the gateway.
    fn move_line_bytes(&mut self) -> bool {
        let mut moved = false;
        for i in 0..self.lines.len() {
            while let Some(output) = self.lines[i].driver.poll_output() {
                moved = true;
                let line = &mut self.lines[i];
                match output {
                    DriverOutput::Write(bytes) => line.modem.handle_bytes(self.now, &bytes),
                    DriverOutput::Event(event) => {
                        if !matches!(event, LineEvent::Audio(_) | LineEvent::EarlyAudio(_)) {
                            self.line_log.push(format!("{} -> {event:?}", line.name));
                        }
                        let name = line.name.clone();
                        self.gateway.handle_line_event(self.now, &name, event);
                    }
                    DriverOutput::Play(_) => {}
                }
            }
            let line = &mut self.lines[i];
            while let Some(bytes) = line.modem.poll_transmit() {
                moved = true;
                line.driver.handle_bytes(self.now, &bytes);
            }
        }
        moved
    }

    /// The caller's media and UA events; BYEs answered 200.
    fn caller_side(&mut self) -> bool {
        let mut moved = false;
        while let Some((to, packet)) = self.media.due(self.now) {
            moved = true;
            let target = self
                .bound
                .iter()
                .find_map(|(call, a)| (a.rtp == to).then_some(*call));
            if let Some(call) = target {
                self.gateway
                    .handle_media(self.now, call, Port::Rtp, self.caller_rtp, &packet);
            }
        }
        while let Some(event) = self.caller.poll_event() {
            moved = true;
            if let UaEvent::InDialog { key, request, .. } = &event
                && request.method == Method::Bye
            {
                let ok = request.response(200, "OK", None);
                self.caller.respond(self.now, key, ok).unwrap();
            }
            self.events.push(event);
        }
        moved
    }

    /// Moves everything at the current time until nothing moves.
    fn settle(&mut self) {
        while self.deliver_sip() | self.perform() | self.move_line_bytes() | self.caller_side() {}
    }

    fn next_deadline(&self) -> Option<Instant> {
        let lines = self
            .lines
            .iter()
            .flat_map(|l| [l.driver.poll_timeout(), l.modem.poll_timeout()]);
        [
            self.gateway.poll_timeout(),
            self.caller.poll_timeout(),
            self.registrar.poll_timeout(),
            self.media.poll_timeout(),
        ]
        .into_iter()
        .chain(lines)
        .flatten()
        .min()
    }

    /// Runs the clock for `for_`, firing every deadline on the way.
    fn run(&mut self, for_: Duration) {
        let until = self.now + for_;
        loop {
            self.settle();
            match self.next_deadline() {
                Some(at) if at <= until => {
                    self.now = self.now.max(at);
                    let now = self.now;
                    self.gateway.handle_timeout(now);
                    self.caller.handle_timeout(now);
                    self.registrar.handle_timeout(now);
                    for line in &mut self.lines {
                        if line.driver.poll_timeout().is_some_and(|t| t <= now) {
                            line.driver.handle_timeout(now);
                        }
                        line.modem.handle_timeout(now);
                    }
                }
                _ => break,
            }
        }
        self.now = until;
        self.settle();
    }

    /// Runs until `done` holds (checked after each step), at most `limit`.
    fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&Self) -> bool) {
        let until = self.now + limit;
        while !done(self) {
            assert!(self.now < until, "not done within {limit:?}");
            self.run(Duration::from_millis(10));
        }
    }

    /// INVITEs `number` on `line` (`None`: no X-Offhook-Line) with a PCMU
    /// offer at our RTP address with rtcp-mux and telephone-event.
    fn call(&mut self, line: Option<&str>, number: &str) -> SessionId {
        self.call_offering(line, number, rtp_offer("sendrecv"))
    }

    /// The caller offers `direction` again in the call's dialog by `method`
    /// (re-INVITE or UPDATE); the final answer, once it came.
    fn reoffer(&mut self, session: SessionId, method: Method, direction: &str) -> Response {
        self.reoffer_sdp(session, method, rtp_offer(direction))
    }

    /// The caller offers `sdp` in the call's dialog by `method`; the final
    /// answer, once it came.
    fn reoffer_sdp(&mut self, session: SessionId, method: Method, sdp: String) -> Response {
        self.in_dialog(session, method, &Reply::default().body(Body::sdp(sdp)))
    }

    /// The caller sends `method` with `extra` in the call's dialog; the final
    /// answer, once it came.
    fn in_dialog(&mut self, session: SessionId, method: Method, extra: &Reply) -> Response {
        self.caller
            .request(self.now, session, method.clone(), extra)
            .unwrap();
        let answered = |sim: &Self| {
            sim.events.iter().rev().find_map(|e| match e {
                UaEvent::InDialogResponse {
                    method: m,
                    response: Some(r),
                    ..
                } if *m == method => Some(r.clone()),
                _ => None,
            })
        };
        let before = self.events.len();
        self.run_until(Duration::from_secs(5), |sim| {
            sim.events.len() > before
                && sim.events[before..]
                    .iter()
                    .any(|e| matches!(e, UaEvent::InDialogResponse { .. }))
        });
        answered(self).expect("the re-offer answered")
    }

    /// A browser's WebRTC offer (str0m's), from a browser that never does ICE.
    fn webrtc_offer(&self) -> String {
        let mut browser = str0m::Rtc::builder().build(self.now);
        let host = str0m::Candidate::host(addr(CALLER_RTP), "udp").unwrap();
        browser.add_local_candidate(host);
        let mut change = browser.sdp_api();
        change.add_media(
            str0m::media::MediaKind::Audio,
            str0m::media::Direction::SendRecv,
            None,
            None,
            None,
        );
        let (offer, _pending) = change.apply().unwrap();
        offer.to_sdp_string()
    }

    /// A call with this SDP offer.
    fn call_offering(&mut self, line: Option<&str>, number: &str, sdp: String) -> SessionId {
        let mut extra = Reply::default()
            .header(headers::NUMBER, number)
            .body(Body::sdp(sdp));
        if let Some(line) = line {
            extra = extra.header(headers::LINE, line);
        }
        let flow = self.caller.endpoint().udp_flow(addr(RELAY)).unwrap();
        let target = match line {
            Some(_) => format!("sip:relay@{RELAY}"),
            None => format!("sip:{RELAY}"),
        };
        let session = self.caller.invite(
            self.now,
            Outgoing {
                target: target.clone(),
                from: format!("sip:visitor@{CALLER}"),
                to: target,
                contact_user: Some("visitor".into()),
                flow,
                extra,
            },
        );
        self.settle();
        session
    }

    /// The final response (or failure) of the caller's INVITE, once it came.
    fn outcome(&self, session: SessionId) -> Option<(u16, Option<Response>)> {
        self.events.iter().find_map(|e| match e {
            UaEvent::Answered { session: s, response } if *s == session => {
                Some((200, Some(response.clone())))
            }
            UaEvent::Terminated {
                session: s,
                end: End::Failed { status, response },
            } if *s == session => Some((*status, response.clone())),
            UaEvent::Terminated {
                session: s,
                end: End::Cancelled,
            } if *s == session => Some((487, None)),
            _ => None,
        })
    }

    /// Waits (bounded) for the call's final answer.
    fn wait_outcome(&mut self, session: SessionId, limit: Duration) -> (u16, Option<Response>) {
        self.run_until(limit, |sim| sim.outcome(session).is_some());
        self.outcome(session).unwrap()
    }

    /// Waits (bounded) for every line to be idle and no call left.
    fn wait_idle(&mut self, limit: Duration) {
        self.run_until(limit, |sim| {
            sim.gateway.calls() == 0 && sim.lines.iter().all(|l| sim.state(&l.name) == LineState::Idle)
        });
    }

    /// Sends the tone to the relay's RTP port of the answer `ok`.
    fn send_tone_to(&mut self, ok: &Response) {
        let body = String::from_utf8_lossy(&ok.body).into_owned();
        let port: u16 = body
            .lines()
            .find_map(|l| l.strip_prefix("m=audio "))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|p| p.parse().ok())
            .expect("an m=audio line in the answer");
        self.media.sending = Some(SocketAddr::new(addr(RELAY).ip(), port));
    }

    /// The modem of `line` is pulled out: its port fails.
    fn unplug(&mut self, line: &str) {
        self.lines.retain(|l| l.name != line);
        self.unplugged.push(line.to_owned());
        let fault = LineEvent::Fault("serial port: device gone".into());
        self.gateway.handle_line_event(self.now, line, fault);
    }

    /// The modem of `line` is back: the next retry opens it.
    fn replug(&mut self, line: &str) {
        self.unplugged.retain(|l| l != line);
    }

    /// Datagrams of the SIP log whose first line is `line`, from `from`: when.
    fn sent(&self, from: &str, line: &str) -> Vec<Duration> {
        self.log
            .iter()
            .filter(|(_, f, l)| *f == addr(from) && l == line)
            .map(|(at, _, _)| *at)
            .collect()
    }
}
