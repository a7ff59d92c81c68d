//! [`UserAgent`]: the endpoint, its INVITE sessions and its registrations, and
//! the routing of what the endpoint hands up to them — new INVITEs to new
//! sessions, in-dialog requests and ACKs by dialog id, responses and timeouts
//! by the client transaction that owns them, CANCEL by the INVITE's server
//! transaction. What only the layer can answer it answers here: 100 Trying,
//! 481 for a request that names no dialog, 500 for one out of order, 487 for a
//! cancelled INVITE (and for one whose session ends unanswered).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::dialog::{Dialog, DialogId};
use super::event::{End, RegistrationId, SessionId, UaError, UaEvent};
use super::register::{Outcome, Registration, RegistrationSpec};
use super::reply::{Outgoing, Reply};
use super::session::{Ending, Established, Session};
use super::uac::Calling;
use super::uas::{AckTimer, AckWait, Answering};
use crate::endpoint::{Endpoint, Event, SipIo, Transmit};
use crate::message::{Method, Request, Response};
use crate::transaction::{ClientKey, ServerKey};
use crate::transport::Flow;

/// How the user-agent layer behaves.
#[derive(Debug, Clone)]
pub struct UaConfig {
    /// The first wait before a refused or unanswered registration is tried
    /// again; it doubles with each failure (with jitter) up to `retry_max`.
    pub retry_min: Duration,
    /// The longest wait between registration attempts.
    pub retry_max: Duration,
}

impl Default for UaConfig {
    fn default() -> Self {
        Self {
            retry_min: Duration::from_secs(5),
            retry_max: Duration::from_secs(300),
        }
    }
}

/// Who a client transaction belongs to.
#[derive(Debug, Clone)]
enum Owner {
    /// A session's INVITE.
    Invite(SessionId),
    /// A request in a session's dialog.
    InDialog(SessionId, Method),
    /// A REGISTER.
    Registration(RegistrationId),
}

/// The keys of `map` whose `deadline` is due at `now`.
fn due<K: Copy, V>(map: &HashMap<K, V>, deadline: impl Fn(&V) -> Option<Instant>, now: Instant) -> Vec<K> {
    map.iter()
        .filter(|(_, v)| deadline(v).is_some_and(|at| at <= now))
        .map(|(k, _)| *k)
        .collect()
}

/// The user-agent layer over one endpoint (see the module comment of [`super`]).
#[derive(Debug)]
pub struct UserAgent {
    endpoint: Endpoint,
    config: UaConfig,
    next_id: u64,
    sessions: HashMap<SessionId, Session>,
    /// Early and confirmed dialogs, to their sessions.
    dialogs: HashMap<DialogId, SessionId>,
    /// UAS INVITE transactions not answered finally, for CANCEL.
    invites: HashMap<ServerKey, SessionId>,
    /// In-dialog requests the application answers.
    answering: HashMap<ServerKey, (SessionId, Method)>,
    clients: HashMap<ClientKey, Owner>,
    registrations: HashMap<RegistrationId, Registration>,
    events: VecDeque<UaEvent>,
}

impl UserAgent {
    /// The layer over `endpoint` (bound, or bound later through
    /// [`UserAgent::endpoint_mut`]).
    pub fn new(endpoint: Endpoint, config: UaConfig) -> Self {
        Self {
            endpoint,
            config,
            next_id: 0,
            sessions: HashMap::new(),
            dialogs: HashMap::new(),
            invites: HashMap::new(),
            answering: HashMap::new(),
            clients: HashMap::new(),
            registrations: HashMap::new(),
            events: VecDeque::new(),
        }
    }

    /// The endpoint.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The endpoint, to bind it or to ask it for ids.
    pub fn endpoint_mut(&mut self) -> &mut Endpoint {
        &mut self.endpoint
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<UaEvent> {
        self.events.pop_front()
    }

    /// When [`UserAgent::handle_timeout`] is due next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let sessions = self.sessions.values().filter_map(Session::deadline);
        let registrations = self.registrations.values().filter_map(Registration::deadline);
        self.endpoint
            .poll_timeout()
            .into_iter()
            .chain(sessions)
            .chain(registrations)
            .min()
    }

    /// Fires what is due at `now`: the endpoint's timers, the 2xx
    /// retransmissions, registration refreshes and retries.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.endpoint.handle_timeout(now);
        self.drain(now);
        for id in due(&self.sessions, Session::deadline, now) {
            self.on_ack_timer(now, id);
        }
        for id in due(&self.registrations, Registration::deadline, now) {
            let Some(registration) = self.registrations.get_mut(&id) else {
                continue;
            };
            if let Some(key) = registration.handle_timeout(now, &mut self.endpoint) {
                self.clients.insert(key, Owner::Registration(id));
            }
        }
    }

    fn new_session_id(&mut self) -> SessionId {
        self.next_id += 1;
        SessionId(self.next_id)
    }

    /// The Call-ID of a session.
    pub fn call_id(&self, session: SessionId) -> Option<&str> {
        self.sessions.get(&session).map(Session::call_id)
    }

    /// The dialog of a session, once it is up.
    pub fn dialog(&self, session: SessionId) -> Option<&Dialog> {
        match self.sessions.get(&session)? {
            Session::Established(e) => Some(&e.dialog),
            _ => None,
        }
    }

    // --- UAC ---

    /// Places a call: the INVITE goes out at `now`.
    pub fn invite(&mut self, now: Instant, call: Outgoing) -> SessionId {
        let id = self.new_session_id();
        let calling = Calling::start(now, &mut self.endpoint, call);
        self.clients.insert(calling.key.clone(), Owner::Invite(id));
        self.sessions.insert(id, Session::Calling(calling));
        id
    }

    /// Cancels our INVITE before its final answer (RFC 3261 s9.1). Should its
    /// 2xx cross the CANCEL, the call is ACKed and ended with a BYE.
    pub fn cancel(&mut self, now: Instant, session: SessionId) -> Result<(), UaError> {
        match self.sessions.get_mut(&session) {
            Some(Session::Calling(calling)) => {
                if !calling.cancelled {
                    calling.cancelled = true;
                    self.endpoint.cancel(now, &calling.key);
                }
                Ok(())
            }
            Some(_) => Err(UaError::WrongState {
                session,
                what: "cancel: only an unanswered call of ours",
            }),
            None => Err(UaError::NoSession(session)),
        }
    }

    // --- UAS ---

    fn answering(&self, session: SessionId, what: &'static str) -> Result<&Answering, UaError> {
        match self.sessions.get(&session) {
            Some(Session::Answering(a)) => Ok(a),
            Some(_) => Err(UaError::WrongState { session, what }),
            None => Err(UaError::NoSession(session)),
        }
    }

    /// A provisional response (101-199 make an early dialog and carry our
    /// Contact) to an INVITE not answered finally yet.
    pub fn provisional(&mut self, now: Instant, session: SessionId, reply: &Reply) -> Result<(), UaError> {
        if !(100..200).contains(&reply.status) {
            return Err(UaError::BadStatus(reply.status));
        }
        let answering = self.answering(session, "provisional: the INVITE is answered")?;
        let (key, response, dialog) = (
            answering.key.clone(),
            answering.response(reply),
            answering.dialog_id(),
        );
        self.endpoint.respond(now, &key, response)?;
        if reply.status > 100 {
            self.dialogs.insert(dialog, session);
        }
        Ok(())
    }

    /// Answers the INVITE with a 2xx: the dialog is up, and the 2xx is sent
    /// again until its ACK comes ([`UaEvent::Confirmed`]) or 64*T1 pass
    /// ([`UaEvent::AckTimeout`]).
    pub fn accept(&mut self, now: Instant, session: SessionId, reply: &Reply) -> Result<(), UaError> {
        if !(200..300).contains(&reply.status) {
            return Err(UaError::BadStatus(reply.status));
        }
        self.answering(session, "accept: the INVITE is answered")?;
        let Some(Session::Answering(answering)) = self.sessions.remove(&session) else {
            unreachable!("checked just above");
        };
        self.invites.remove(&answering.key);
        let ok = answering.response(reply);
        if let Err(err) = self.endpoint.respond(now, &answering.key, ok.clone()) {
            // Only a transport failure under the transaction takes it away.
            self.forget(session, None);
            self.terminated(
                session,
                End::Failed {
                    status: 503,
                    response: None,
                },
            );
            return Err(err.into());
        }
        let local_seq = self.endpoint.random_below(1 << 16);
        let dialog = match Dialog::uas(&answering.invite, &ok, local_seq) {
            Ok(dialog) => dialog,
            // The endpoint refused INVITEs without a valid CSeq already.
            Err(_) => unreachable!("a validated INVITE and our own 2xx make a dialog"),
        };
        let cseq = answering.invite.cseq().map_or(0, |c| c.number);
        self.dialogs.insert(dialog.id().clone(), session);
        let established = Established {
            dialog,
            flow: answering.flow,
            ack_wait: Some(AckWait::new(now, ok, cseq, self.endpoint.timers())),
            ack: None,
            ending: None,
        };
        self.sessions.insert(session, Session::Established(established));
        Ok(())
    }

    /// Answers the INVITE with a final non-2xx (300-699): the session ends.
    pub fn reject(&mut self, now: Instant, session: SessionId, reply: &Reply) -> Result<(), UaError> {
        if !(300..700).contains(&reply.status) {
            return Err(UaError::BadStatus(reply.status));
        }
        let answering = self.answering(session, "reject: the INVITE is answered")?;
        let (key, response) = (answering.key.clone(), answering.response(reply));
        let result = self.endpoint.respond(now, &key, response);
        self.end(now, session, End::Rejected(reply.status));
        result.map_err(UaError::from)
    }

    // --- both ---

    /// Ends an established session with a BYE carrying `extra`; the session
    /// ends ([`End::ByeSent`]) when the BYE is answered.
    pub fn bye(&mut self, now: Instant, session: SessionId, extra: &Reply) -> Result<(), UaError> {
        self.request(now, session, Method::Bye, extra)
    }

    /// Sends a request (INFO, re-INVITE, BYE as [`UserAgent::bye`]) in an
    /// established session; its answer comes as [`UaEvent::InDialogResponse`].
    pub fn request(
        &mut self,
        now: Instant,
        session: SessionId,
        method: Method,
        extra: &Reply,
    ) -> Result<(), UaError> {
        let established = match self.sessions.get_mut(&session) {
            _ if method == Method::Ack || method == Method::Cancel => {
                return Err(UaError::WrongState {
                    session,
                    what: "request: ACK and CANCEL are the layer's",
                });
            }
            Some(Session::Established(e)) if e.ending.is_none() => e,
            Some(_) => {
                return Err(UaError::WrongState {
                    session,
                    what: "in-dialog request: the session is not established, or ending",
                });
            }
            None => return Err(UaError::NoSession(session)),
        };
        if method == Method::Bye {
            established.ending = Some(Ending::Bye);
            established.ack_wait = None;
        }
        let key = established.send(now, &mut self.endpoint, method.clone(), extra);
        self.clients.insert(key, Owner::InDialog(session, method));
        Ok(())
    }

    /// Answers a request handed up as [`UaEvent::Request`] or
    /// [`UaEvent::InDialog`]; a 2xx to a BYE ends its session.
    /// A 2xx to a re-INVITE carries our Contact and goes again until its ACK
    /// (RFC 3261 s13.3.1.4, s14.2), as the first one did.
    pub fn respond(&mut self, now: Instant, key: &ServerKey, mut response: Response) -> Result<(), UaError> {
        let status = response.status;
        let reinvite = match self.answering.get(key) {
            Some((session, Method::Invite)) if (200..300).contains(&status) => Some(*session),
            _ => None,
        };
        if let Some(Session::Established(e)) = reinvite.and_then(|s| self.sessions.get(&s))
            && response.headers.get("Contact").is_none()
        {
            let contact = format!("<{}>", self.endpoint.uri(e.flow.kind, None, ""));
            response.headers.push("Contact", &contact);
        }
        let ok = reinvite.map(|_| response.clone());
        let cseq = response.cseq().map_or(0, |c| c.number);
        self.endpoint.respond(now, key, response)?;
        if let (Some(ok), Some(Session::Established(e))) =
            (ok, reinvite.and_then(|s| self.sessions.get_mut(&s)))
        {
            e.ack_wait = Some(AckWait::new(now, ok, cseq, self.endpoint.timers()));
        }
        if status >= 200
            && let Some((session, method)) = self.answering.remove(key)
            && method == Method::Bye
            && status < 300
        {
            self.end(now, session, End::ByeReceived);
        }
        Ok(())
    }

    // --- registrations ---

    /// Starts registering a contact at `now`, kept registered until
    /// [`UserAgent::unregister`].
    pub fn register(&mut self, now: Instant, spec: RegistrationSpec) -> RegistrationId {
        self.next_id += 1;
        let id = RegistrationId(self.next_id);
        let retry = (self.config.retry_min, self.config.retry_max);
        let (registration, key) = Registration::start(now, &mut self.endpoint, spec, retry);
        self.clients.insert(key, Owner::Registration(id));
        self.registrations.insert(id, registration);
        id
    }

    /// Removes the contact at the registrar ([`UaEvent::Unregistered`] once done).
    pub fn unregister(&mut self, now: Instant, registration: RegistrationId) -> Result<(), UaError> {
        let r = self
            .registrations
            .get_mut(&registration)
            .ok_or(UaError::NoRegistration)?;
        let key = r.unregister(now, &mut self.endpoint);
        self.clients.insert(key, Owner::Registration(registration));
        Ok(())
    }

    /// Whether the contact is registered now.
    pub fn is_registered(&self, registration: RegistrationId) -> bool {
        self.registrations
            .get(&registration)
            .is_some_and(Registration::is_registered)
    }

    fn on_registration(&mut self, registration: RegistrationId, outcome: Option<Outcome>) {
        let event = match outcome {
            None => return,
            Some(Outcome::Sent(key)) => {
                self.clients.insert(key, Owner::Registration(registration));
                return;
            }
            Some(Outcome::Registered(expires)) => UaEvent::Registered {
                registration,
                expires,
            },
            Some(Outcome::Failed { status, retry_in }) => UaEvent::RegistrationFailed {
                registration,
                status,
                retry_in,
            },
            Some(Outcome::Unregistered) => {
                self.registrations.remove(&registration);
                UaEvent::Unregistered { registration }
            }
        };
        self.events.push_back(event);
    }

    // --- what the endpoint hands up ---

    fn drain(&mut self, now: Instant) {
        while let Some(event) = self.endpoint.poll_event() {
            self.on_event(now, event);
        }
    }

    fn on_event(&mut self, now: Instant, event: Event) {
        match event {
            Event::Request { key, request, flow } => self.on_request(now, key, request, flow),
            Event::Cancelled { invite } => self.on_cancelled(now, &invite),
            Event::Ack { request, .. } => self.on_ack(&request),
            Event::Response { key, response } => self.on_response(now, &key, response),
            Event::Timeout { key } => self.on_failure(now, &key, 408),
            Event::TransportFailed { key } => self.on_failure(now, &key, 503),
            Event::StrayResponse { response, .. } => self.on_stray(&response),
            // The ACK of a non-2xx we sent never came: nothing waits for it.
            Event::AckTimeout { .. } => {}
            Event::ConnectionClosed { flow } => self.events.push_back(UaEvent::ConnectionClosed { flow }),
        }
    }

    /// Answers a request ourselves (the layer's own refusals).
    fn refuse(&mut self, now: Instant, key: &ServerKey, request: &Request, status: u16, reason: &str) {
        let tag = self.endpoint.new_tag();
        let response = request.response(status, reason, Some(&tag));
        // The transaction is the one that just handed the request up.
        let _ = self.endpoint.respond(now, key, response);
    }

    fn on_request(&mut self, now: Instant, key: ServerKey, request: Request, flow: Flow) {
        let Some(dialog) = DialogId::of_request(&request) else {
            return match request.method {
                Method::Invite => self.on_invite(now, key, request, flow),
                Method::Bye => self.refuse(now, &key, &request, 481, "Call/Transaction Does Not Exist"),
                _ => self.events.push_back(UaEvent::Request { key, request, flow }),
            };
        };
        let Some(session) = self.dialogs.get(&dialog).copied() else {
            return self.refuse(now, &key, &request, 481, "Call/Transaction Does Not Exist");
        };
        let in_order = match self.sessions.get_mut(&session).and_then(Session::dialog_mut) {
            Some(dialog) => dialog.check_remote_cseq(&request).is_ok(),
            None => true,
        };
        if !in_order {
            return self.refuse(now, &key, &request, 500, "CSeq Out of Order");
        }
        self.answering
            .insert(key.clone(), (session, request.method.clone()));
        self.events.push_back(UaEvent::InDialog {
            session,
            key,
            request,
        });
    }

    fn on_invite(&mut self, now: Instant, key: ServerKey, request: Request, flow: Flow) {
        let session = self.new_session_id();
        let answering = Answering::new(key.clone(), request.clone(), flow, &mut self.endpoint);
        let trying = answering.response(&Reply::new(100, "Trying"));
        // The transaction is the one that just handed the INVITE up.
        let _ = self.endpoint.respond(now, &key, trying);
        self.invites.insert(key, session);
        self.sessions.insert(session, Session::Answering(answering));
        self.events.push_back(UaEvent::Invite {
            session,
            request,
            flow,
        });
    }

    fn on_cancelled(&mut self, now: Instant, invite: &ServerKey) {
        if let Some(session) = self.invites.get(invite).copied() {
            // `end` answers an unanswered INVITE 487.
            self.end(now, session, End::Cancelled);
        }
    }

    fn on_ack(&mut self, ack: &Request) {
        let Some(session) = DialogId::of_request(ack).and_then(|d| self.dialogs.get(&d).copied()) else {
            return;
        };
        if let Some(Session::Established(e)) = self.sessions.get_mut(&session)
            && e.ack_wait.as_ref().is_some_and(|w| w.is_acked_by(ack))
        {
            e.ack_wait = None;
            self.events.push_back(UaEvent::Confirmed { session });
        }
    }

    fn on_response(&mut self, now: Instant, key: &ClientKey, response: Response) {
        match self.clients.get(key).cloned() {
            Some(Owner::Invite(session)) => self.on_invite_response(now, session, key, response),
            Some(Owner::InDialog(session, method)) if response.status >= 200 => {
                self.clients.remove(key);
                if method == Method::Invite && response.status < 300 {
                    self.ack_reinvite(session, &response);
                }
                self.in_dialog_done(now, session, method, response.status, Some(response));
            }
            Some(Owner::InDialog(..)) => {}
            // A 2xx to our re-INVITE again, its transaction done with us.
            None => self.on_stray(&response),
            Some(Owner::Registration(id)) => {
                let outcome = self
                    .registrations
                    .get_mut(&id)
                    .and_then(|r| r.on_response(now, &mut self.endpoint, key, &response));
                self.on_registration(id, outcome);
            }
        }
    }

    fn on_invite_response(&mut self, now: Instant, session: SessionId, key: &ClientKey, response: Response) {
        let status = response.status;
        match self.sessions.get_mut(&session) {
            Some(Session::Calling(calling)) if status < 200 => {
                if let Some(early) = calling.on_provisional(&response) {
                    self.dialogs.insert(early.id().clone(), session);
                }
                self.events.push_back(UaEvent::Progress { session, response });
            }
            Some(Session::Calling(_)) if status < 300 => self.on_answered(now, session, response),
            Some(Session::Calling(calling)) => {
                // The transaction layer ACKed it.
                let end = match calling.cancelled && status == 487 {
                    true => End::Cancelled,
                    false => End::Failed {
                        status,
                        response: Some(response),
                    },
                };
                self.clients.remove(key);
                self.end(now, session, end);
            }
            // A 2xx again (retransmitted, RFC 3261 s13.2.2.4): ACK it again.
            Some(Session::Established(e))
                if (200..300).contains(&status)
                    && DialogId::of_response(&response).as_ref() == Some(e.dialog.id()) =>
            {
                e.send_ack(&mut self.endpoint);
            }
            _ => {}
        }
    }

    /// The 2xx to our INVITE: the dialog is up, the ACK goes out; a call we
    /// cancelled meanwhile is ended with a BYE.
    fn on_answered(&mut self, now: Instant, session: SessionId, response: Response) {
        let Some(Session::Calling(mut calling)) = self.sessions.remove(&session) else {
            return;
        };
        let Some(dialog) = calling.confirmed_by(&response) else {
            // A 2xx without a To tag: no dialog to ACK or end.
            let status = response.status;
            self.forget(session, None);
            return self.terminated(
                session,
                End::Failed {
                    status,
                    response: Some(response),
                },
            );
        };
        self.dialogs.retain(|_, s| *s != session);
        self.dialogs.insert(dialog.id().clone(), session);
        let ack = dialog.ack(calling.cseq());
        let mut established = Established {
            dialog,
            flow: calling.flow,
            ack_wait: None,
            ack: Some(ack),
            ending: None,
        };
        established.send_ack(&mut self.endpoint);
        if calling.cancelled {
            let key = established.send(now, &mut self.endpoint, Method::Bye, &Reply::default());
            established.ending = Some(Ending::Cancel);
            self.clients.insert(key, Owner::InDialog(session, Method::Bye));
        } else {
            self.events.push_back(UaEvent::Answered { session, response });
        }
        self.sessions.insert(session, Session::Established(established));
    }

    fn on_failure(&mut self, now: Instant, key: &ClientKey, status: u16) {
        match self.clients.remove(key) {
            Some(Owner::Invite(session)) => {
                if let Some(Session::Calling(calling)) = self.sessions.get(&session) {
                    let end = match calling.cancelled {
                        true => End::Cancelled,
                        false => End::Failed {
                            status,
                            response: None,
                        },
                    };
                    self.end(now, session, end);
                }
            }
            Some(Owner::InDialog(session, method)) => self.in_dialog_done(now, session, method, status, None),
            Some(Owner::Registration(id)) => {
                let outcome = self
                    .registrations
                    .get_mut(&id)
                    .and_then(|r| r.on_failure(now, &mut self.endpoint, key, status));
                self.on_registration(id, outcome);
            }
            None => {}
        }
    }

    fn in_dialog_done(
        &mut self,
        now: Instant,
        session: SessionId,
        method: Method,
        status: u16,
        response: Option<Response>,
    ) {
        self.events.push_back(UaEvent::InDialogResponse {
            session,
            method: method.clone(),
            status,
            response: response.clone(),
        });
        if method != Method::Bye {
            return;
        }
        let end = match self.sessions.get(&session) {
            Some(Session::Established(e)) if e.ending == Some(Ending::Cancel) => End::Cancelled,
            _ => End::ByeSent(response),
        };
        self.end(now, session, end);
    }

    /// UAC: the 2xx to our re-INVITE is ACKed (again at each retransmission,
    /// by [`Self::on_stray`]).
    fn ack_reinvite(&mut self, session: SessionId, response: &Response) {
        if let Some(Session::Established(e)) = self.sessions.get_mut(&session) {
            e.ack = Some(e.dialog.ack(response.cseq().map_or(0, |c| c.number)));
            e.send_ack(&mut self.endpoint);
        }
    }

    /// A 2xx to our INVITE after its transaction ended (RFC 3261 s13.2.2.4):
    /// ACK it again.
    fn on_stray(&mut self, response: &Response) {
        if !(200..300).contains(&response.status)
            || response.cseq().is_none_or(|c| c.method != Method::Invite)
        {
            return;
        }
        let session = DialogId::of_response(response).and_then(|d| self.dialogs.get(&d).copied());
        if let Some(Session::Established(e)) = session.and_then(|s| self.sessions.get(&s)) {
            e.send_ack(&mut self.endpoint);
        }
    }

    fn on_ack_timer(&mut self, now: Instant, session: SessionId) {
        let Some(Session::Established(e)) = self.sessions.get_mut(&session) else {
            return;
        };
        let Some(wait) = e.ack_wait.as_mut() else { return };
        match wait.on_timer(now) {
            Some(AckTimer::Resend) => {
                self.endpoint.send_stateless_response(&wait.ok, e.flow);
            }
            Some(AckTimer::GiveUp) => {
                e.ack_wait = None;
                self.events.push_back(UaEvent::AckTimeout { session });
            }
            None => {}
        }
    }

    /// Ends a session: an INVITE it had not answered gets 487 (the caller
    /// cancelled, or the peer ended the early dialog), and the application
    /// hears [`UaEvent::Terminated`].
    fn end(&mut self, now: Instant, session: SessionId, end: End) {
        let Some(removed) = self.sessions.remove(&session) else {
            return;
        };
        if let Session::Answering(answering) = &removed
            && !matches!(end, End::Rejected(_))
        {
            let response = answering.response(&Reply::new(487, "Request Terminated"));
            // The INVITE's transaction is waiting for exactly this.
            let _ = self.endpoint.respond(now, &answering.key, response);
        }
        self.forget(session, Some(&removed));
        self.terminated(session, end);
    }

    /// Drops every reference to a session that is gone.
    fn forget(&mut self, session: SessionId, removed: Option<&Session>) {
        if let Some(Session::Answering(a)) = removed {
            self.invites.remove(&a.key);
        }
        self.dialogs.retain(|_, s| *s != session);
        self.answering.retain(|_, (s, _)| *s != session);
        self.clients.retain(|_, owner| match owner {
            Owner::Invite(s) | Owner::InDialog(s, _) => *s != session,
            Owner::Registration(_) => true,
        });
    }

    fn terminated(&mut self, session: SessionId, end: End) {
        self.events.push_back(UaEvent::Terminated { session, end });
    }
}

impl SipIo for UserAgent {
    fn handle_datagram(&mut self, now: Instant, flow: Flow, bytes: &[u8]) {
        self.endpoint.handle_datagram(now, flow, bytes);
        self.drain(now);
    }

    fn handle_closed(&mut self, now: Instant, flow: Flow) {
        self.endpoint.handle_closed(now, flow);
        self.drain(now);
    }

    fn handle_send_failed(&mut self, now: Instant, flow: Flow) {
        self.endpoint.handle_send_failed(now, flow);
        self.drain(now);
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.endpoint.poll_transmit()
    }
}
