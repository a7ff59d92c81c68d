//! The relay's sans-IO core: [`Gateway`], a SIP user agent (on
//! [`offhook_sip::ua`]) in front of the relay's phone lines, like an FXO
//! gateway. In: SIP bytes ([`SipIo`]), line events per line name, media
//! datagrams per call and port, media sockets bound, and `now`. Out: SIP bytes
//! ([`SipIo::poll_transmit`]) and [`Output`]s — line commands per line, media
//! sockets to bind and close, media datagrams to send — with the next deadline
//! ([`Gateway::poll_timeout`]: the UA's timers, each call's 20 ms playout tick,
//! RTCP, a line's settling).
//!
//! It registers each line with signaling once its modem is ready (one contact
//! per line, digest credentials of the relay account). It executes only what
//! signaling signed (403 otherwise: see `trust`). An INVITE is admitted here,
//! in one place: the line signaling named in `X-Offhook-Line` (404 when
//! there is none such, 503 when it is faulty or held by another call, so that
//! signaling tries the next line), the number in `X-Offhook-Number` (only digits,
//! `*`, `#` reach the modem: 484 otherwise), the offer (488 when it is neither
//! WebRTC nor RTP/AVP with G.711). Then the call ([`super::call`]) runs the rest
//! and the gateway carries out what it asks.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use offhook_sip::endpoint::{Endpoint, SipIo, Transmit};
use offhook_sip::message::{Method, Request};
use offhook_sip::transport::Flow;
use offhook_sip::ua::{Body, End, RegistrationSpec, Reply, SessionId, UaConfig, UaEvent, UserAgent};
use offhook_vocab::headers;
use rand::SeedableRng as _;
use rand::rngs::StdRng;

use super::call::{Action, Call, Env, MediaAddrs, Offer};
use super::config::RelayConfig;
use super::legs::Port;
use super::lines::{LineStatus, Lines, Registration, Unavailable};
use super::liveness::Timeouts;
use super::reopen::Reopening;
use super::stats::RelayStats;
use super::trust::Trust;
use crate::modem::{LineCommand, LineEvent};
use crate::sdp;
use crate::webrtc::is_webrtc_offer;

/// A relay call, named by its SIP session.
pub type CallId = SessionId;

/// Binding lifetime asked for each line.
const EXPIRES: Duration = Duration::from_secs(300);

/// What the gateway asks of its driver (or of a simulated-time harness).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// A command for the modem driver of `line`.
    Line {
        /// The line's name.
        line: String,
        /// The command.
        command: LineCommand,
    },
    /// Bind the media socket of `call` (RTP, on the media IP, any port) and,
    /// when `rtcp`, its RTCP socket (RTP port + 1 where free, else any); then
    /// call [`Gateway::handle_media_bound`].
    BindMedia {
        /// The call.
        call: CallId,
        /// An RTCP socket of its own too.
        rtcp: bool,
    },
    /// Send `bytes` from `call`'s `port` socket to `to`.
    Media {
        /// The call.
        call: CallId,
        /// Which of its sockets.
        port: Port,
        /// Where.
        to: SocketAddr,
        /// The datagram.
        bytes: Vec<u8>,
    },
    /// Close the media sockets of `call`.
    CloseMedia {
        /// The call.
        call: CallId,
    },
    /// Open the faulty `line`'s modem again (its port and init); what it then
    /// says comes to [`Gateway::handle_line_event`] as from a new modem: ready
    /// heals the line, a fault schedules the next retry, later.
    Reopen {
        /// The line's name.
        line: String,
    },
}

/// The relay's core (see the module comment).
#[derive(Debug)]
pub struct Gateway {
    ua: UserAgent,
    config: RelayConfig,
    lines: Lines,
    calls: HashMap<CallId, Call>,
    out: VecDeque<Output>,
    stats: Arc<RelayStats>,
    rng: StdRng,
    /// The wall clock at one `now`, for RTCP's NTP timestamps and signatures.
    clock: (Instant, SystemTime),
    trust: Trust,
    reopening: Reopening,
}

/// The number as the modem dials it: a leading `+` becomes the international
/// prefix; anything but digits, `*` and `#` refuses it.
fn number_for_modem(config: &RelayConfig, number: &str) -> Option<String> {
    let number = match number.strip_prefix('+') {
        Some(rest) => format!("{}{rest}", config.international_prefix),
        None => number.to_owned(),
    };
    let ok = !number.is_empty() && number.chars().all(|c| c.is_ascii_digit() || c == '*' || c == '#');
    ok.then_some(number)
}

impl Gateway {
    /// The core of a relay with `config`, speaking SIP through `endpoint` (bound
    /// already, or before the first line is ready), counting into `stats`; the
    /// wall clock reads `wallclock` at `now`; calls' SSRCs and SDP session ids
    /// come from `seed`.
    pub fn new(
        config: RelayConfig,
        endpoint: Endpoint,
        stats: Arc<RelayStats>,
        now: Instant,
        wallclock: SystemTime,
        seed: u64,
    ) -> Self {
        let lines = Lines::new(config.lines.iter().map(|l| l.name.as_str()));
        let gateway = Self {
            trust: Trust::new(&config),
            ua: UserAgent::new(endpoint, UaConfig::default()),
            config,
            lines,
            calls: HashMap::new(),
            out: VecDeque::new(),
            stats,
            rng: StdRng::seed_from_u64(seed),
            clock: (now, wallclock),
            reopening: Reopening::default(),
        };
        gateway.publish_lines();
        gateway
    }

    /// The endpoint (where it is bound, its counters).
    pub fn endpoint(&self) -> &Endpoint {
        self.ua.endpoint()
    }

    /// The endpoint, to bind it.
    pub fn endpoint_mut(&mut self) -> &mut Endpoint {
        self.ua.endpoint_mut()
    }

    /// The relay's counters.
    pub fn stats(&self) -> &Arc<RelayStats> {
        &self.stats
    }

    /// A line's status.
    pub fn line(&self, name: &str) -> Option<&LineStatus> {
        self.lines.status(name)
    }

    /// Every line's status, by name.
    pub fn lines(&self) -> impl Iterator<Item = (&str, &LineStatus)> {
        self.lines.all()
    }

    /// Calls in progress (until their line is on hook again).
    pub fn calls(&self) -> usize {
        self.calls.len()
    }

    /// The next thing to do for the driver.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// When [`Gateway::handle_timeout`] is due next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let calls = self.calls.values().filter_map(Call::poll_timeout);
        let reopen = self.reopening.poll_timeout();
        self.ua
            .poll_timeout()
            .into_iter()
            .chain(calls)
            .chain(reopen)
            .min()
    }

    /// Fires what is due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.ua.handle_timeout(now);
        self.pump(now);
        let due: Vec<CallId> = self
            .calls
            .iter()
            .filter(|(_, c)| c.poll_timeout().is_some_and(|at| at <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            self.with_call(now, id, |call, env| call.handle_timeout(now, env));
        }
        for line in self.reopening.due(now) {
            tracing::info!(%line, "opening the faulty line's modem again");
            self.out.push_back(Output::Reopen { line });
        }
        self.pump(now);
    }

    /// Line `line` said `event`.
    pub fn handle_line_event(&mut self, now: Instant, line: &str, event: LineEvent) {
        match self.lines.holder(line) {
            Some(call) if self.calls.contains_key(&call) => {
                self.with_call(now, call, |call, env| call.on_line(now, event, env));
                return self.pump(now);
            }
            // Held by a call that is gone (never so): the line is free.
            Some(_) => self.lines.release(line, None),
            None => {}
        }
        match event {
            LineEvent::Ready | LineEvent::Idle => {
                self.reopening.healed(line);
                let unregistered = self.lines.ready(line);
                if unregistered {
                    self.register(now, line);
                }
            }
            LineEvent::Fault(why) => {
                tracing::warn!(%line, %why, "line faulty");
                self.lines.fault(line, why);
                self.reopening.failed(line, now);
            }
            // Audio, progress, keys of no call: the line is on its way to idle.
            _ => {}
        }
        self.publish_lines();
    }

    /// The media sockets of `call` are bound at `addrs` (or could not be).
    pub fn handle_media_bound(&mut self, now: Instant, call: CallId, bound: std::io::Result<MediaAddrs>) {
        if !self.calls.contains_key(&call) {
            // The call ended while its sockets were being bound.
            if bound.is_ok() {
                self.out.push_back(Output::CloseMedia { call });
            }
            return;
        }
        self.with_call(now, call, |c, env| c.on_media_bound(now, bound, env));
        self.pump(now);
    }

    /// A datagram for `call` arrived on its `port` socket from `from`.
    pub fn handle_media(&mut self, now: Instant, call: CallId, port: Port, from: SocketAddr, bytes: &[u8]) {
        self.with_call(now, call, |c, env| c.on_media(now, port, from, bytes, env));
        self.pump(now);
    }

    /// Registers `line`'s contact with signaling.
    fn register(&mut self, now: Instant, line: &str) {
        let c = &self.config;
        let Some(flow) = self.ua.endpoint().udp_flow(c.signaling) else {
            tracing::error!(%line, "no SIP socket to register from");
            return;
        };
        let spec = RegistrationSpec {
            flow,
            registrar: format!("sip:{}", c.domain),
            aor: format!("sip:{}@{}", c.name, c.domain),
            contact_user: line.to_owned(),
            username: c.name.clone(),
            password: c.password.clone(),
            expires: EXPIRES,
        };
        let registration = self.ua.register(now, spec);
        self.lines.registering(line, registration);
    }

    /// Handles everything the UA layer has to say.
    fn pump(&mut self, now: Instant) {
        while let Some(event) = self.ua.poll_event() {
            self.on_ua_event(now, event);
        }
        self.publish_lines();
    }

    fn on_ua_event(&mut self, now: Instant, event: UaEvent) {
        match event {
            UaEvent::Invite { session, request, .. } => self.on_invite(now, session, &request),
            UaEvent::Request { key, request, .. } => {
                let (status, reason) = match request.method {
                    Method::Options => (200, "OK"),
                    _ => (405, "Method Not Allowed"),
                };
                let tag = self.ua.endpoint_mut().new_tag();
                let response = request.response(status, reason, Some(&tag));
                // The transaction just handed the request up.
                let _ = self.ua.respond(now, &key, response);
            }
            UaEvent::InDialog {
                session,
                key,
                request,
            } => {
                if let Err(why) = self.trust.check(now, self.wall_ms(now), &request) {
                    tracing::warn!(call = %session, %why, method = %request.method, "in-dialog request refused");
                    let response = request.response(403, "Forbidden", None);
                    // The transaction just handed the request up.
                    let _ = self.ua.respond(now, &key, response);
                    return;
                }
                self.with_call(now, session, |c, env| c.on_request(now, key, request, env));
            }
            UaEvent::AckTimeout { session } => {
                tracing::warn!(call = %session, "no ACK for our 200: hanging up");
                self.with_call(now, session, |c, env| c.on_ack_timeout(now, env));
            }
            UaEvent::Terminated { session, end } => {
                if matches!(end, End::Cancelled | End::Failed { .. }) {
                    self.with_call(now, session, |c, env| c.on_caller_gone(now, env));
                }
            }
            UaEvent::Registered { registration, .. } => {
                if let Some(line) = self.lines.registration(registration, Registration::Registered) {
                    tracing::info!(%line, "line registered");
                }
            }
            UaEvent::RegistrationFailed {
                registration,
                status,
                retry_in,
            } => {
                if let Some(line) = self
                    .lines
                    .registration(registration, Registration::Failed(status))
                {
                    tracing::warn!(%line, status, ?retry_in, "line registration failed; retrying");
                }
            }
            // A UAS only: the rest is about requests of ours we do not wait on.
            UaEvent::Confirmed { .. }
            | UaEvent::Progress { .. }
            | UaEvent::Answered { .. }
            | UaEvent::InDialogResponse { .. }
            | UaEvent::Unregistered { .. }
            | UaEvent::ConnectionClosed { .. } => {}
        }
    }

    /// Admits an INVITE, or says why not (the one place a call is refused
    /// before it starts).
    fn admit(&self, request: &Request) -> Result<(String, String, Offer), (u16, String)> {
        let line = request
            .headers
            .get(headers::LINE)
            .map(str::to_owned)
            .or_else(|| request.request_uri().and_then(|u| u.user))
            .ok_or((404, "No line named".to_owned()))?;
        if self.lines.status(&line).is_none() {
            return Err((404, "No such line".into()));
        }
        let number = request
            .headers
            .get(headers::NUMBER)
            .and_then(|n| number_for_modem(&self.config, n.trim()))
            .ok_or((484, "Address Incomplete".to_owned()))?;
        let offer = String::from_utf8_lossy(&request.body).into_owned();
        let offer = match is_webrtc_offer(&offer) {
            true => Offer::WebRtc(offer),
            false => Offer::Rtp(sdp::negotiate(&offer).map_err(|e| (488, e.to_string()))?),
        };
        Ok((line, number, offer))
    }

    fn on_invite(&mut self, now: Instant, session: SessionId, request: &Request) {
        let wall_ms = self.wall_ms(now);
        let trusted = self.trust.check(now, wall_ms, request).map_err(|why| {
            tracing::warn!(call = %session, %why, "INVITE not from signaling");
            (403, "Forbidden".to_owned())
        });
        let admitted = trusted
            .and_then(|()| self.admit(request))
            .and_then(|(line, number, offer)| {
                self.lines.claim(&line, session).map_err(|why| match why {
                    Unavailable::Unknown => (404, "No such line".to_owned()),
                    Unavailable::Faulty => (503, "Line Fault".to_owned()),
                    Unavailable::InUse => (503, "Line in use".to_owned()),
                    Unavailable::NotReady => (503, "Line not ready".to_owned()),
                })?;
                Ok((line, number, offer))
            });
        match admitted {
            Err((status, reason)) => {
                tracing::info!(call = %session, status, %reason, "call refused");
                // The session is new and unanswered: reject cannot be refused.
                let _ = self.ua.reject(now, session, &Reply::new(status, &reason));
            }
            Ok((line, number, offer)) => {
                let rtcp = offer.wants_rtcp_socket();
                self.calls.insert(session, Call::new(&line, number, offer));
                self.out.push_back(Output::BindMedia { call: session, rtcp });
            }
        }
    }

    /// The wall clock at `now`.
    fn wall(&self, now: Instant) -> SystemTime {
        self.clock.1 + now.saturating_duration_since(self.clock.0)
    }

    /// The wall clock at `now`, in Unix milliseconds.
    fn wall_ms(&self, now: Instant) -> i64 {
        let since = self
            .wall(now)
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
    }

    /// Runs `handle` on call `id` and carries out what it asks.
    fn with_call(&mut self, now: Instant, id: CallId, handle: impl FnOnce(&mut Call, &mut Env<'_>)) {
        let wallclock = self.wall(now);
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let mut actions = Vec::new();
        let mut env = Env {
            actions: &mut actions,
            stats: &self.stats,
            rng: &mut self.rng,
            wallclock,
            rtcp_interval: Duration::from_millis(self.config.rtcp_interval_ms.max(1)),
            timeouts: Timeouts {
                rtp: Duration::from_secs(self.config.rtp_timeout_s.max(1)),
                ice_connect: Duration::from_secs(self.config.ice_connect_timeout_s.max(1)),
            },
            advertise: &self.config.advertise,
        };
        handle(call, &mut env);
        let line = call.line().to_owned();
        if call.is_over() {
            self.calls.remove(&id);
        }
        for action in actions {
            self.perform(now, id, &line, action);
        }
    }

    /// Carries out what call `id` on `line` asked.
    fn perform(&mut self, now: Instant, id: CallId, line: &str, action: Action) {
        let result = match action {
            Action::Ring => self.ua.provisional(now, id, &Reply::new(180, "Ringing")),
            Action::EarlyMedia { sdp } => {
                let progress = Reply::new(183, "Session Progress").body(Body::sdp(sdp));
                self.ua.provisional(now, id, &progress)
            }
            Action::Accept { sdp, how } => {
                self.lines.answered(line);
                let ok = Reply::new(200, "OK")
                    .header(headers::ANSWER, how.as_str())
                    .body(Body::sdp(sdp));
                self.ua.accept(now, id, &ok)
            }
            Action::Reject(status, reason) => self.ua.reject(now, id, &Reply::new(status, &reason)),
            Action::Bye { rtcp, cause } => {
                let mut bye = Reply::default();
                if let Some(rtcp) = rtcp {
                    bye = bye.header(headers::RTCP, &rtcp);
                }
                if let Some(cause) = cause {
                    bye = bye.header(headers::CAUSE, cause.as_str());
                }
                self.ua.bye(now, id, &bye)
            }
            Action::Respond {
                key,
                request,
                status,
                reason,
                rtcp,
                sdp,
            } => {
                let mut response = request.response(status, reason, None);
                if let Some(rtcp) = rtcp {
                    response.headers.push(headers::RTCP, &rtcp);
                }
                if let Some(sdp) = sdp {
                    response.headers.push("Content-Type", "application/sdp");
                    response.body = sdp.into_bytes();
                }
                self.ua.respond(now, &key, response)
            }
            Action::Line(command) => {
                self.out.push_back(Output::Line {
                    line: line.to_owned(),
                    command,
                });
                Ok(())
            }
            Action::Media(port, to, bytes) => {
                self.out.push_back(Output::Media {
                    call: id,
                    port,
                    to,
                    bytes,
                });
                Ok(())
            }
            Action::CloseMedia => {
                self.out.push_back(Output::CloseMedia { call: id });
                Ok(())
            }
            Action::Release(fault) => {
                if let Some(why) = &fault {
                    tracing::warn!(%line, %why, "line faulty after a call");
                    self.reopening.failed(line, now);
                }
                self.lines.release(line, fault);
                Ok(())
            }
        };
        if let Err(err) = result {
            // The session ended under us (the caller went away); its
            // Terminated event tells the call.
            tracing::debug!(call = %id, %err, "SIP action not taken");
        }
    }

    /// The lines' states into the metrics.
    fn publish_lines(&self) {
        for (name, status) in self.lines.all() {
            self.stats
                .set_line_state(name, status.state, status.fault.as_deref());
        }
    }
}

impl SipIo for Gateway {
    fn handle_datagram(&mut self, now: Instant, flow: Flow, bytes: &[u8]) {
        self.ua.handle_datagram(now, flow, bytes);
        self.pump(now);
    }

    fn handle_closed(&mut self, now: Instant, flow: Flow) {
        self.ua.handle_closed(now, flow);
        self.pump(now);
    }

    fn handle_send_failed(&mut self, now: Instant, flow: Flow) {
        self.ua.handle_send_failed(now, flow);
        self.pump(now);
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.ua.poll_transmit()
    }
}
