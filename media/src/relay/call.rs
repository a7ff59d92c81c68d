//! One relay call as a state machine, one type per state: [`Binding`] (waiting
//! for its media socket), then [`Setup`] while the line dials (`Dialing`) and
//! rings (`Ringing`), [`Talking`] once the far end answered (audio bridged both
//! ways, keys both ways, RTCP), and [`Settling`] after either side hung up,
//! until the line is on hook again. Each handler takes the call's state, the
//! event and `now`, and returns the next state; what the call wants done (an
//! answer to the INVITE, a BYE, a line command, a datagram) it says as
//! [`Action`]s, which the gateway carries out — the call never touches the SIP
//! layer or a socket. Every way out of `Binding` and `Setup` answers the INVITE
//! once: 180 on ringback, 183 with our SDP when the line's early media (its
//! ringback, busy tone, announcement, the callee's first words) starts flowing
//! to the caller, 200 with the answer's source on answer, 486/480/404/503
//! for the line's failures, 488 for an offer the leg cannot take, nothing when
//! the caller cancelled (the SIP layer answered 487). Once answered, an RTP/AVP
//! call takes new offers in its dialog (re-INVITE, UPDATE): hold and resume,
//! a new codec, a new address, answered 200 with the direction mirrored and
//! the `o=` version bumped (an offer of ours to a re-INVITE without SDP). Every way out of the call
//! gives the line back: idle once on hook, or faulty with the reason.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant, SystemTime};

use offhook_sip::message::{Method, Request};
use offhook_sip::transaction::ServerKey;
use offhook_vocab::{AnswerSource, HangupCause};
use rand::Rng;

use super::bridge::Bridge;
use super::info::{self, InfoBody};
use super::legs::{MediaLeg, Port, Reoffer, RtpLeg};
use super::liveness::{Timeouts, Watchdog};
use super::stats::RelayStats;
use crate::modem::{LineCommand, LineEvent};
use crate::sdp::{self, Negotiated};
use crate::webrtc::WebRtcPeer;

/// How long the line may take to be on hook again after a call.
const SETTLE: Duration = Duration::from_secs(10);

/// Where a call's media sockets were bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaAddrs {
    /// The RTP socket (RTCP too with `rtcp-mux`, and all of WebRTC).
    pub rtp: SocketAddr,
    /// The RTCP socket of an RTP/AVP call without `rtcp-mux`.
    pub rtcp: Option<SocketAddr>,
}

impl MediaAddrs {
    /// Where callers reach the RTP socket: each public address at the socket's
    /// port, or the socket's own address when there is none. Never empty.
    pub fn advertised(&self, public: &[IpAddr]) -> Vec<SocketAddr> {
        match public {
            [] => vec![self.rtp],
            ips => ips
                .iter()
                .map(|&ip| SocketAddr::new(ip, self.rtp.port()))
                .collect(),
        }
    }
}

/// The caller's offer, checked: what the leg is built from once bound.
#[derive(Debug)]
pub(crate) enum Offer {
    /// A browser's WebRTC offer (str0m checks it, with our candidate).
    WebRtc(String),
    /// RTP/AVP, negotiated.
    Rtp(Negotiated),
}

impl Offer {
    /// Whether the call needs a socket of its own for RTCP.
    pub(crate) fn wants_rtcp_socket(&self) -> bool {
        matches!(self, Self::Rtp(n) if !n.rtcp_mux)
    }
}

/// What a call asks the gateway to do.
#[derive(Debug)]
pub(crate) enum Action {
    /// 180 Ringing.
    Ring,
    /// 183 Session Progress with our SDP answer: early media flows.
    EarlyMedia {
        /// Our SDP.
        sdp: String,
    },
    /// 200 OK with our SDP answer and how the answer was known.
    Accept {
        /// Our SDP.
        sdp: String,
        /// `X-Offhook-Answer`.
        how: AnswerSource,
    },
    /// A final non-2xx to the INVITE.
    Reject(u16, String),
    /// BYE to the caller, with the caller's RTCP view of the call.
    Bye {
        /// `X-Offhook-RTCP`.
        rtcp: Option<String>,
        /// `X-Offhook-Cause`: why the relay ended it, when the line did not.
        cause: Option<HangupCause>,
    },
    /// Answers a request in the call's dialog (200 to a BYE, with the RTCP
    /// view; to a new offer, with our SDP).
    Respond {
        /// Its transaction.
        key: ServerKey,
        /// The request.
        request: Request,
        /// Status.
        status: u16,
        /// Reason phrase.
        reason: &'static str,
        /// `X-Offhook-RTCP`.
        rtcp: Option<String>,
        /// Our SDP answer (or offer).
        sdp: Option<String>,
    },
    /// A command for the call's line.
    Line(LineCommand),
    /// A datagram to the caller from one of the call's sockets.
    Media(Port, SocketAddr, Vec<u8>),
    /// The call's media sockets can go.
    CloseMedia,
    /// The call is over and lets go of its line: idle, or faulty with why.
    Release(Option<String>),
}

/// What the calls of a relay share: the relay's clock for RTCP, its RNG, its
/// metrics, and the sink for what they ask.
pub(crate) struct Env<'a> {
    pub(crate) actions: &'a mut Vec<Action>,
    pub(crate) stats: &'a RelayStats,
    pub(crate) rng: &'a mut rand::rngs::StdRng,
    /// The wall clock at `now` (RTCP sender reports carry it).
    pub(crate) wallclock: SystemTime,
    pub(crate) rtcp_interval: Duration,
    /// The media liveness bounds of answered calls.
    pub(crate) timeouts: Timeouts,
    /// The relay's public addresses (`RelayConfig::advertise`).
    pub(crate) advertise: &'a [IpAddr],
}

/// What our RTP/AVP SDP says, for the answers to later offers in the dialog.
#[derive(Debug)]
struct LocalSdp {
    /// The offer last taken.
    negotiated: Negotiated,
    at: SocketAddr,
    rtcp_port: u16,
    session: u64,
    version: u64,
}

impl LocalSdp {
    /// Our SDP again, at the next `o=` version.
    fn next(&mut self) -> String {
        self.version += 1;
        sdp::answer_version(
            &self.negotiated,
            self.at,
            self.rtcp_port,
            self.session,
            self.version,
        )
    }
}

/// Waiting for the media socket(s).
#[derive(Debug)]
pub(crate) struct Binding {
    offer: Offer,
    number: String,
}

/// The line is dialing or ringing; the INVITE waits.
#[derive(Debug)]
pub(crate) struct Setup {
    bridge: Bridge,
    /// Our SDP answer, sent with the 183 and the 200.
    answer: String,
    /// The line's early media flows to the caller (183 sent, bridge started).
    early: bool,
    /// RTP/AVP: what the answer said (none for WebRTC).
    local: Option<LocalSdp>,
}

/// Answered: the audio flows.
#[derive(Debug)]
pub(crate) struct Talking {
    bridge: Bridge,
    watchdog: Watchdog,
    local: Option<LocalSdp>,
}

/// The call is over for the caller; the line is going on hook.
#[derive(Debug)]
pub(crate) struct Settling {
    by: Instant,
    /// A fault the line reported on the way.
    fault: Option<String>,
}

#[derive(Debug)]
enum State {
    Binding(Binding),
    Dialing(Setup),
    Ringing(Setup),
    Talking(Talking),
    Settling(Settling),
    /// Released.
    Over,
}

/// One call (see the module comment).
#[derive(Debug)]
pub(crate) struct Call {
    line: String,
    state: State,
}

/// The SIP answer to a line outcome that ends the call before it is answered.
fn failure(event: &LineEvent) -> Option<(u16, &'static str)> {
    match event {
        LineEvent::Busy => Some((486, "Busy Here")),
        LineEvent::NoAnswer => Some((480, "No Answer")),
        LineEvent::Invalid => Some((404, "Number Not Reachable")),
        LineEvent::NoDialTone => Some((503, "No Dial Tone")),
        LineEvent::Fault(_) => Some((503, "Line Fault")),
        LineEvent::RemoteHangup(_) | LineEvent::Idle => Some((480, "Temporarily Unavailable")),
        _ => None,
    }
}

fn fault_of(event: &LineEvent) -> Option<String> {
    match event {
        LineEvent::Fault(why) => Some(why.clone()),
        _ => None,
    }
}

/// The call ends before its line was used or once it is on hook: its INVITE
/// refused with `reject` (when it still waits), its sockets closed, the line
/// free.
fn over(env: &mut Env<'_>, reject: Option<(u16, String)>) -> State {
    if let Some((status, reason)) = reject {
        env.actions.push(Action::Reject(status, reason));
    }
    env.actions.push(Action::CloseMedia);
    env.actions.push(Action::Release(None));
    State::Over
}

/// Answers a request in the call's dialog with `status` (and the RTCP view).
fn respond(
    env: &mut Env<'_>,
    key: ServerKey,
    request: Request,
    status: (u16, &'static str),
    rtcp: Option<String>,
) {
    env.actions.push(Action::Respond {
        key,
        request,
        status: status.0,
        reason: status.1,
        rtcp,
        sdp: None,
    });
}

/// Answers a new offer in the call's dialog 200 with our `sdp`.
fn accept_offer(env: &mut Env<'_>, key: ServerKey, request: Request, sdp: String) {
    env.actions.push(Action::Respond {
        key,
        request,
        status: 200,
        reason: "OK",
        rtcp: None,
        sdp: Some(sdp),
    });
}

/// The line is going on hook (it hangs up by itself after reporting an
/// outcome; `hang_up` asks it to).
fn settle(now: Instant, env: &mut Env<'_>, hang_up: bool, fault: Option<String>) -> State {
    if hang_up {
        env.actions.push(Action::Line(LineCommand::HangUp));
    }
    env.actions.push(Action::CloseMedia);
    State::Settling(Settling {
        by: now + SETTLE,
        fault,
    })
}

impl Call {
    /// A call on `line` to `number` with the caller's `offer`, waiting for its
    /// media socket(s).
    pub(crate) fn new(line: &str, number: String, offer: Offer) -> Self {
        Self {
            line: line.to_owned(),
            state: State::Binding(Binding { offer, number }),
        }
    }

    /// The line the call holds.
    pub(crate) fn line(&self) -> &str {
        &self.line
    }

    /// Whether the call let go of its line.
    pub(crate) fn is_over(&self) -> bool {
        matches!(self.state, State::Over)
    }

    /// Runs `step` on the state.
    fn step(&mut self, step: impl FnOnce(State, &str) -> State) {
        let state = std::mem::replace(&mut self.state, State::Over);
        self.state = step(state, &self.line);
    }

    /// The media socket(s) are bound (or could not be): build the leg and dial,
    /// or refuse the call.
    pub(crate) fn on_media_bound(
        &mut self,
        now: Instant,
        bound: std::io::Result<MediaAddrs>,
        env: &mut Env<'_>,
    ) {
        self.step(|state, _| match state {
            State::Binding(binding) => binding.bound(now, bound, env),
            other => other,
        });
    }

    /// The line said something.
    pub(crate) fn on_line(&mut self, now: Instant, event: LineEvent, env: &mut Env<'_>) {
        self.step(|state, line| match state {
            State::Dialing(setup) => setup.on_line(now, event, env, false),
            State::Ringing(setup) => setup.on_line(now, event, env, true),
            State::Talking(talking) => talking.on_line(now, event, env, line),
            State::Settling(settling) => settling.on_line(event, env),
            other => other,
        });
    }

    /// A datagram from the caller on one of the call's sockets.
    pub(crate) fn on_media(
        &mut self,
        now: Instant,
        port: Port,
        from: SocketAddr,
        bytes: &[u8],
        env: &mut Env<'_>,
    ) {
        if let Some(bridge) = self.bridge_mut() {
            bridge.on_datagram(now, port, from, bytes);
            Self::drain(bridge, env);
        }
    }

    /// A request in the call's dialog: a BYE ends the call in any state (in
    /// the early dialog too: the SIP layer answers the INVITE 487), an INFO
    /// plays its key, a re-INVITE or UPDATE of an answered RTP/AVP call holds
    /// or resumes it; anything else is refused 488.
    pub(crate) fn on_request(&mut self, now: Instant, key: ServerKey, request: Request, env: &mut Env<'_>) {
        if request.method == Method::Info {
            return self.on_info(key, request, env);
        }
        if matches!(request.method, Method::Invite | Method::Update)
            && let State::Talking(talking) = &mut self.state
        {
            return talking.on_offer(now, key, request, env);
        }
        if request.method != Method::Bye {
            return respond(env, key, request, (488, "Not Acceptable Here"), None);
        }
        self.step(|state, line| match state {
            State::Talking(talking) => talking.on_bye(now, key, request, env, line),
            other => {
                respond(env, key, request, (200, "OK"), None);
                match other {
                    State::Binding(_) => over(env, None),
                    State::Dialing(_) | State::Ringing(_) => settle(now, env, true, None),
                    settling => settling,
                }
            }
        });
    }

    /// An INFO in the dialog: a key (RFC 6086 bodies of softphones) is played
    /// into the line once the call is answered.
    fn on_info(&mut self, key: ServerKey, request: Request, env: &mut Env<'_>) {
        let body = info::parse(request.headers.get("Content-Type"), &request.body);
        let status = match body {
            InfoBody::Key(digit) => {
                if let State::Talking(talking) = &mut self.state {
                    talking.bridge.play_key(digit);
                }
                (200, "OK")
            }
            InfoBody::BadKey => (400, "Bad Request"),
            InfoBody::Unsupported => (415, "Unsupported Media Type"),
        };
        respond(env, key, request, status, None);
    }

    /// Our 2xx was never ACKed (RFC 3261 s13.3.1.4): the call ends with a BYE.
    pub(crate) fn on_ack_timeout(&mut self, now: Instant, env: &mut Env<'_>) {
        self.step(|state, line| match state {
            State::Talking(talking) => talking.hang_up(now, env, line, None),
            other => other,
        });
    }

    /// The SIP session ended without our doing (the caller cancelled, or the
    /// 200 could not be sent): the line hangs up.
    pub(crate) fn on_caller_gone(&mut self, now: Instant, env: &mut Env<'_>) {
        self.step(|state, line| match state {
            State::Binding(_) => {
                env.actions.push(Action::Release(None));
                State::Over
            }
            State::Dialing(_) | State::Ringing(_) => settle(now, env, true, None),
            State::Talking(talking) => {
                talking.ended(env, line);
                settle(now, env, true, None)
            }
            other => other,
        });
    }

    /// The call's next deadline.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        match &self.state {
            State::Dialing(s) | State::Ringing(s) => s.bridge.poll_timeout(),
            State::Talking(t) => t
                .bridge
                .poll_timeout()
                .into_iter()
                .chain(t.media_deadline())
                .min(),
            State::Settling(s) => Some(s.by),
            State::Binding(_) | State::Over => None,
        }
    }

    /// Fires what is due at `now`.
    pub(crate) fn handle_timeout(&mut self, now: Instant, env: &mut Env<'_>) {
        self.step(|state, line| match state {
            State::Dialing(mut s) => {
                s.tick(now, env, line);
                State::Dialing(s)
            }
            State::Ringing(mut s) => {
                s.tick(now, env, line);
                State::Ringing(s)
            }
            State::Talking(talking) => talking.tick(now, env, line),
            State::Settling(s) if now >= s.by => {
                // Never on hook again: the line is not to be trusted.
                let why = s.fault.unwrap_or_else(|| "the line did not go on hook".into());
                env.actions.push(Action::Release(Some(why)));
                State::Over
            }
            other => other,
        });
    }

    fn bridge_mut(&mut self) -> Option<&mut Bridge> {
        match &mut self.state {
            State::Dialing(s) | State::Ringing(s) => Some(&mut s.bridge),
            State::Talking(t) => Some(&mut t.bridge),
            _ => None,
        }
    }

    /// The leg's datagrams out.
    fn drain(bridge: &mut Bridge, env: &mut Env<'_>) {
        while let Some((port, to, bytes)) = bridge.poll_datagram() {
            env.actions.push(Action::Media(port, to, bytes));
        }
    }
}

impl Binding {
    fn bound(self, now: Instant, bound: std::io::Result<MediaAddrs>, env: &mut Env<'_>) -> State {
        let refuse = |env: &mut Env<'_>, status: u16, reason: String| over(env, Some((status, reason)));
        let addrs = match bound {
            Ok(addrs) => addrs,
            Err(err) => {
                tracing::warn!(%err, "no media port for a call");
                return refuse(env, 503, "No media port".into());
            }
        };
        let advertised = addrs.advertised(env.advertise);
        let mut local = None;
        let (leg, answer): (Box<dyn MediaLeg>, String) = match self.offer {
            Offer::WebRtc(offer) => match WebRtcPeer::accept(now, &offer, addrs.rtp, &advertised) {
                Ok((peer, answer)) => (Box::new(peer), answer),
                Err(err) => return refuse(env, 488, err.to_string()),
            },
            Offer::Rtp(negotiated) => {
                let session = u64::from(env.rng.random_range(1..1_000_000_000u32));
                let rtcp_port = addrs.rtcp.unwrap_or(addrs.rtp).port();
                let leg = RtpLeg::new(&negotiated, now, env.wallclock, env.rtcp_interval, env.rng);
                // advertised() is never empty: it falls back to the bound address.
                let at = advertised[0];
                let answer = sdp::answer(&negotiated, at, rtcp_port, session);
                local = Some(LocalSdp {
                    negotiated,
                    at,
                    rtcp_port,
                    session,
                    version: session,
                });
                (Box::new(leg), answer)
            }
        };
        env.actions.push(Action::Line(LineCommand::Dial(self.number)));
        State::Dialing(Setup {
            bridge: Bridge::new(leg),
            answer,
            early: false,
            local,
        })
    }
}

impl Setup {
    /// The line's progress before the answer; `rang`: 180 went out already.
    fn on_line(mut self, now: Instant, event: LineEvent, env: &mut Env<'_>, rang: bool) -> State {
        match event {
            LineEvent::Ringing if !rang => {
                env.actions.push(Action::Ring);
                State::Ringing(self)
            }
            LineEvent::EarlyAudio(audio) => {
                if !self.early {
                    self.early = true;
                    env.actions.push(Action::EarlyMedia {
                        sdp: self.answer.clone(),
                    });
                    self.bridge.start(now);
                }
                self.bridge.on_line_audio(now, &audio);
                Call::drain(&mut self.bridge, env);
                if rang {
                    State::Ringing(self)
                } else {
                    State::Dialing(self)
                }
            }
            LineEvent::Answered(how) => {
                env.actions.push(Action::Accept {
                    sdp: std::mem::take(&mut self.answer),
                    how,
                });
                env.stats.call_started();
                if !self.early {
                    self.bridge.start(now);
                }
                State::Talking(Talking {
                    bridge: self.bridge,
                    watchdog: Watchdog::new(now, env.timeouts),
                    local: self.local,
                })
            }
            // On hook already: nothing to wait for.
            LineEvent::Idle => {
                env.actions
                    .push(Action::Reject(480, "Temporarily Unavailable".into()));
                env.actions.push(Action::CloseMedia);
                env.actions.push(Action::Release(None));
                State::Over
            }
            other => match failure(&other) {
                Some((status, reason)) => {
                    env.actions.push(Action::Reject(status, reason.into()));
                    // The driver hangs up by itself after an outcome.
                    settle(now, env, false, fault_of(&other))
                }
                None if rang => State::Ringing(self),
                None => State::Dialing(self),
            },
        }
    }

    /// The leg's timers (no playout before the answer: no line commands).
    fn tick(&mut self, now: Instant, env: &mut Env<'_>, line: &str) {
        self.bridge.handle_timeout(now, &mut Vec::new(), env.stats, line);
        Call::drain(&mut self.bridge, env);
    }
}

impl Talking {
    fn on_line(mut self, now: Instant, event: LineEvent, env: &mut Env<'_>, line: &str) -> State {
        match event {
            LineEvent::Audio(audio) => {
                self.bridge.on_line_audio(now, &audio);
                Call::drain(&mut self.bridge, env);
                State::Talking(self)
            }
            LineEvent::Dtmf(key) => {
                self.bridge.on_line_key(key);
                State::Talking(self)
            }
            LineEvent::RemoteHangup(_) | LineEvent::Fault(_) | LineEvent::Idle => {
                // A hang-up at the far end is the line's news; a fault is ours.
                let cause = matches!(event, LineEvent::Fault(_)).then_some(HangupCause::LineFault);
                env.actions.push(Action::Bye {
                    rtcp: self.bridge.closing_rtcp_header(),
                    cause,
                });
                self.ended(env, line);
                match event {
                    LineEvent::Idle => over(env, None),
                    other => settle(now, env, false, fault_of(&other)),
                }
            }
            _ => State::Talking(self),
        }
    }

    /// A new offer (re-INVITE, UPDATE) on an RTP/AVP call: its direction (audio
    /// to the caller stops while it does not take it, the RTP watch pauses
    /// while it sends none), its codec (the first offered we carry) and its
    /// address (a zero `c=` of an old-style hold keeps the last one) are taken
    /// and answered 200; an offer we cannot take, or one that turns
    /// `rtcp-mux` on or off, gets 488 and the call goes on as it was (RFC 3264
    /// s8). No SDP: our offer, as things stand (its answer in the ACK changes
    /// nothing). A WebRTC call's offer goes to str0m, which answers it (a
    /// WebRTC re-INVITE without SDP gets 488).
    fn on_offer(&mut self, now: Instant, key: ServerKey, request: Request, env: &mut Env<'_>) {
        let refuse = (488, "Not Acceptable Here");
        if request.body.is_empty() && request.method == Method::Update {
            // No offer in an UPDATE: a target refresh, answered without one
            // (RFC 3311 s5.2).
            return respond(env, key, request, (200, "OK"), None);
        }
        let text = std::str::from_utf8(&request.body).ok();
        let Some(local) = &mut self.local else {
            // WebRTC: str0m answers the browser's offer (hold, ICE restart);
            // a re-INVITE without one gets our SDP again as the offer.
            let offer = match text {
                Some("") => Reoffer::Asked,
                Some(text) => Reoffer::WebRtc(text),
                None => return respond(env, key, request, refuse, None),
            };
            return match self.bridge.reoffer(offer) {
                Ok(Some(sdp)) => accept_offer(env, key, request, sdp),
                _ => respond(env, key, request, refuse, None),
            };
        };
        if request.body.is_empty() {
            // A re-INVITE asking for our offer (RFC 3261 14.2): our SDP again.
            return accept_offer(env, key, request, local.next());
        }
        let offer = text.and_then(|text| sdp::negotiate(text).ok());
        let Some(mut offer) = offer.filter(|o| o.rtcp_mux == local.negotiated.rtcp_mux) else {
            return respond(env, key, request, refuse, None);
        };
        if offer.remote.ip().is_unspecified() {
            offer.remote = local.negotiated.remote;
            offer.remote_rtcp = local.negotiated.remote_rtcp;
        }
        if let Err(why) = self.bridge.reoffer(Reoffer::Rtp(&offer)) {
            tracing::warn!(%why, "re-offer refused");
            return respond(env, key, request, refuse, None);
        }
        let direction = offer.direction;
        tracing::info!(
            direction = direction.as_str(),
            codec = offer.codec.name(),
            "call re-offered"
        );
        local.negotiated = offer;
        let answer = local.next();
        self.bridge.set_sending(direction.receives());
        if direction.sends() {
            self.watchdog.resume(now);
        } else {
            self.watchdog.pause();
        }
        accept_offer(env, key, request, answer);
    }

    fn on_bye(self, now: Instant, key: ServerKey, request: Request, env: &mut Env<'_>, line: &str) -> State {
        respond(env, key, request, (200, "OK"), self.bridge.closing_rtcp_header());
        self.ended(env, line);
        settle(now, env, true, None)
    }

    /// We end the call (for `cause`, when it is not the caller's doing): BYE
    /// to the caller, and the line hangs up.
    fn hang_up(self, now: Instant, env: &mut Env<'_>, line: &str, cause: Option<HangupCause>) -> State {
        env.actions.push(Action::Bye {
            rtcp: self.bridge.closing_rtcp_header(),
            cause,
        });
        self.ended(env, line);
        settle(now, env, true, None)
    }

    /// The metrics hear the call is over.
    fn ended(&self, env: &mut Env<'_>, line: &str) {
        env.stats.call_ended(line);
    }

    fn tick(mut self, now: Instant, env: &mut Env<'_>, line: &str) -> State {
        let mut commands = Vec::new();
        self.bridge.handle_timeout(now, &mut commands, env.stats, line);
        env.actions.extend(commands.into_iter().map(Action::Line));
        Call::drain(&mut self.bridge, env);
        if let Some(cause) = self.watchdog.verdict(now, self.bridge.health()) {
            tracing::info!(line, %cause, "call media dead");
            return self.hang_up(now, env, line, Some(cause));
        }
        State::Talking(self)
    }

    /// When the media watch may end the call.
    fn media_deadline(&self) -> Option<Instant> {
        self.watchdog.deadline(self.bridge.health())
    }
}

impl Settling {
    fn on_line(mut self, event: LineEvent, env: &mut Env<'_>) -> State {
        match event {
            LineEvent::Idle => {
                env.actions.push(Action::Release(None));
                State::Over
            }
            LineEvent::Fault(why) => {
                self.fault = Some(why);
                State::Settling(self)
            }
            _ => State::Settling(self),
        }
    }
}
