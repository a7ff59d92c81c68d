//! Answered calls and what travels inside their dialogs. In-dialog requests (BYE,
//! re-INVITE, INFO, ...) are forwarded statefully along the Route set, or down
//! the flow named by our own Record-Route entry's token; the ACK of a 2xx goes
//! without a transaction; a 2xx retransmitted after its transaction ended goes
//! upstream by the next Via, and only when the top Via is ours. A BYE's final
//! response ends the call: its CDR (answered upstream once committed), its line,
//! its limit slot.
//!
//! The node also ends calls itself ([`Node::end_call`]), with a BYE to each side
//! that is still there, built from what it kept of the dialog (tags, contacts,
//! flows, the CSeq each side used last): when the caller's connection closes
//! (a browser tab), when a call reaches its maximum duration, when the relay of
//! its line is lost, when the node drains on shutdown.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::time::{Duration, Instant};

use offhook_directory::HangupCause;
use offhook_sip::message::{Method, NameAddr, Request, Response, Uri, Via};
use offhook_sip::transaction::{ClientKey, ServerKey};
use offhook_sip::transport::Flow;

use super::directory_io::Change;
use super::flows;
use super::invite::upstream;
use super::{Node, Owner, Reply};

/// What an answered call holds in the directory and the limits.
#[derive(Debug, Clone)]
pub(crate) struct CallRecord {
    pub cdr: String,
    pub line: Option<String>,
    pub limit_key: String,
    /// When the call was answered.
    pub answered: Instant,
    /// The callee relay's key: what goes to it is signed.
    pub callee_key: Option<offhook_vocab::Secret>,
}

/// One side of a dialog, as the node can reach it.
#[derive(Debug, Clone)]
struct Side {
    /// Its From/To header value (with its tag).
    header: String,
    /// Its tag.
    tag: String,
    /// Where requests for it go (its Contact).
    target: String,
    /// How the node reaches it.
    flow: Flow,
    /// The CSeq it used last.
    cseq: u32,
}

/// A call the proxy tracks from its 2xx to its end.
#[derive(Debug, Clone)]
pub(crate) struct Tracked {
    record: CallRecord,
    caller: Side,
    callee: Side,
}

impl Tracked {
    /// The call an INVITE and its 2xx made.
    pub(crate) fn new(
        invite: &Request,
        ok: &Response,
        caller_flow: Flow,
        callee_flow: Flow,
        record: CallRecord,
    ) -> Self {
        let contact = |headers: &offhook_sip::message::Headers, fallback: &str| {
            headers
                .get("Contact")
                .and_then(|c| NameAddr::parse(c).ok())
                .map_or_else(|| fallback.to_owned(), |c| c.uri)
        };
        let cseq = invite.cseq().map_or(1, |c| c.number);
        let caller = Side {
            header: invite.headers.get("From").unwrap_or_default().to_owned(),
            tag: invite
                .from()
                .and_then(|f| f.tag().map(str::to_owned))
                .unwrap_or_default(),
            target: contact(&invite.headers, &invite.uri),
            flow: caller_flow,
            cseq,
        };
        let callee = Side {
            header: ok.headers.get("To").unwrap_or_default().to_owned(),
            tag: ok
                .to()
                .and_then(|t| t.tag().map(str::to_owned))
                .unwrap_or_default(),
            target: contact(&ok.headers, &invite.uri),
            flow: callee_flow,
            cseq: 0,
        };
        Self {
            record,
            caller,
            callee,
        }
    }
}

/// An in-dialog request forwarded, waiting for its final response.
#[derive(Debug)]
struct Forward {
    server: ServerKey,
    request: Request,
}

/// The answered calls and the in-dialog requests in flight.
#[derive(Debug, Default)]
pub(crate) struct Dialogs {
    calls: HashMap<String, Tracked>,
    forwards: HashMap<ClientKey, Forward>,
    /// BYEs the node sent itself: their answers go nowhere.
    own_byes: HashSet<ClientKey>,
    /// When each call reaches its maximum duration or its minute budget, and
    /// the cause it ends with then (entries of calls that ended are skipped
    /// when they come up).
    deadlines: BinaryHeap<Reverse<(Instant, String, HangupCause)>>,
}

impl Dialogs {
    /// Tracks a call that ends with `cause` after `max` unless it ends before.
    pub(crate) fn track(
        &mut self,
        now: Instant,
        call_id: &str,
        call: Tracked,
        (max, cause): (Duration, HangupCause),
    ) {
        self.calls.insert(call_id.to_owned(), call);
        self.deadlines
            .push(Reverse((now + max, call_id.to_owned(), cause)));
    }

    pub(crate) fn len(&self) -> usize {
        self.calls.len()
    }

    /// The earliest maximum-duration deadline.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.deadlines.peek().map(|Reverse((at, _, _))| *at)
    }

    /// The calls whose deadline has come at `now`, with the cause they end with.
    fn due(&mut self, now: Instant) -> Vec<(String, HangupCause)> {
        let mut due = Vec::new();
        while self
            .deadlines
            .peek()
            .is_some_and(|Reverse((at, _, _))| *at <= now)
        {
            if let Some(Reverse((_, call_id, cause))) = self.deadlines.pop()
                && self.calls.contains_key(&call_id)
            {
                due.push((call_id, cause));
            }
        }
        due
    }

    /// The calls with a side on `flow`, each with whether it is the caller's.
    /// A call whose BYE is already on its way is left out: it ends by that
    /// BYE's answer, with the cause of who sent it, not with the connection
    /// that closed behind it (a browser sends BYE and closes its tab at once).
    fn on_flow(&self, flow: &Flow) -> Vec<(String, bool)> {
        let ending: HashSet<&str> = self
            .forwards
            .values()
            .filter(|f| f.request.method == Method::Bye)
            .map(|f| f.request.call_id())
            .collect();
        self.calls
            .iter()
            .filter(|(id, _)| !ending.contains(id.as_str()))
            .filter_map(|(id, c)| {
                if c.caller.flow == *flow {
                    Some((id.clone(), true))
                } else if c.callee.flow == *flow {
                    Some((id.clone(), false))
                } else {
                    None
                }
            })
            .collect()
    }

    /// The call whose CDR is `cdr`.
    pub(super) fn call_of_cdr(&self, cdr: &str) -> Option<String> {
        self.calls
            .iter()
            .find(|(_, c)| c.record.cdr == cdr)
            .map(|(id, _)| id.clone())
    }

    /// The call that holds `line`.
    pub(super) fn call_on_line(&self, line: &str) -> Option<String> {
        self.calls
            .iter()
            .find(|(_, c)| c.record.line.as_deref() == Some(line))
            .map(|(id, _)| id.clone())
    }

    fn ids(&self) -> Vec<String> {
        self.calls.keys().cloned().collect()
    }
}

impl Node {
    /// Pops the Route entries that name us; the flow token of the last one.
    fn pop_our_routes(&self, request: &mut Request) -> Option<String> {
        let mut token = None;
        while let Some(top) = request.headers.get("Route").map(str::to_owned) {
            let Some(uri) = NameAddr::parse(&top).ok().and_then(|r| r.parsed_uri()) else {
                break;
            };
            if !self.endpoint.is_us(&uri) {
                break;
            }
            token = uri.param("ft").map(str::to_owned);
            request.headers.pop_first("Route");
        }
        token
    }

    /// Where an in-dialog request (or a 2xx ACK) goes: down the flow named by
    /// the token of our Record-Route entry facing the destination. Only a
    /// request routed through us by a dialog we made gets there: without our
    /// Route, with a token we did not sign, or with a Route beyond ours (we
    /// would forward to whatever it names: an open relay), it is refused.
    fn next_hop(&self, request: &mut Request) -> Result<Flow, Reply> {
        let refused = || Reply::new(403, "Not a dialog of this proxy");
        let token = self.pop_our_routes(request);
        if request.headers.contains("Route") {
            return Err(refused());
        }
        let token = token.ok_or_else(refused)?;
        if !self.flow_tokens.is_ours(&token) {
            return Err(refused());
        }
        self.connections
            .named_by_token(&self.endpoint, &self.flow_tokens, &token)
            .ok_or_else(|| Reply::new(480, "The other side's connection is gone"))
    }

    /// The request as forwarded inside a dialog, and where; or the refusal.
    fn prepare_in_dialog(&self, request: &Request) -> Result<(Request, Flow), Reply> {
        let mut out = request.clone();
        let flow = self.next_hop(&mut out)?;
        out.decrement_max_forwards()
            .ok_or_else(|| Reply::new(483, "Too Many Hops"))?;
        Ok((out, flow))
    }

    /// A request inside a dialog, forwarded statefully.
    pub(super) fn forward_in_dialog(&mut self, now: Instant, key: ServerKey, request: Request) {
        match self.prepare_in_dialog(&request) {
            Ok((mut out, flow)) => {
                self.note_cseq(&request);
                for name in offhook_vocab::headers::PRIVATE {
                    out.headers.remove(name);
                }
                if let Some(cause) = self.stated_cause(&request) {
                    out.headers.push("Reason", &reason(cause));
                }
                if let Some(key) = self.callee_key_toward(&request) {
                    offhook_sip::trust::sign(key.expose(), &mut out, self.wall_ms(now));
                }
                let client = self.endpoint.send_request(now, out, flow);
                self.dialogs
                    .forwards
                    .insert(client, Forward { server: key, request });
            }
            Err(reply) => self.reply(now, &key, &request, reply),
        }
    }

    /// The callee relay's key when `request` goes from the caller to it.
    fn callee_key_toward(&self, request: &Request) -> Option<offhook_vocab::Secret> {
        let call = self.dialogs.calls.get(request.call_id())?;
        let from_caller = request
            .from()
            .is_some_and(|f| f.tag() == Some(call.caller.tag.as_str()));
        if from_caller {
            call.record.callee_key.clone()
        } else {
            None
        }
    }

    /// Why a BYE's sender ended a tracked call, from its `X-Offhook-Cause`:
    /// from the called side the causes a relay sees; from the caller only
    /// that its media never connected (the widget's own ICE deadline).
    fn stated_cause(&self, request: &Request) -> Option<HangupCause> {
        if request.method != Method::Bye {
            return None;
        }
        let call = self.dialogs.calls.get(request.call_id())?;
        let from_caller = request
            .from()
            .is_some_and(|f| f.tag() == Some(call.caller.tag.as_str()));
        let cause = request.headers.get(offhook_vocab::headers::CAUSE)?.parse().ok()?;
        let believed = match from_caller {
            true => cause == HangupCause::NoAudioPath,
            false => matches!(
                cause,
                HangupCause::MediaTimeout | HangupCause::NoAudioPath | HangupCause::LineFault
            ),
        };
        believed.then_some(cause)
    }

    /// Keeps the CSeq each side of a tracked call used last.
    fn note_cseq(&mut self, request: &Request) {
        let (Some(call), Some(cseq)) = (self.dialogs.calls.get_mut(request.call_id()), request.cseq()) else {
            return;
        };
        let from_tag = request.from().and_then(|f| f.tag().map(str::to_owned));
        let side = if from_tag.as_deref() == Some(call.caller.tag.as_str()) {
            &mut call.caller
        } else {
            &mut call.callee
        };
        side.cseq = side.cseq.max(cseq.number);
    }

    /// A response on a forwarded in-dialog request; false when it is not one.
    pub(super) fn dialog_response(
        &mut self,
        now: Instant,
        client: &ClientKey,
        response: &Result<Response, u16>,
    ) -> bool {
        if self.dialogs.own_byes.contains(client) {
            let done = response.as_ref().map_or(true, |r| r.status >= 200);
            if done {
                self.dialogs.own_byes.remove(client);
            }
            return true;
        }
        let Some(forward) = self.dialogs.forwards.get(client) else {
            return false;
        };
        let response = match response {
            Ok(r) if r.status == 100 => return true,
            Ok(r) if r.status < 200 => {
                let (server, response) = (forward.server.clone(), upstream(r.clone()));
                self.respond(now, &server, response);
                return true;
            }
            Ok(r) => upstream(r.clone()),
            Err(408) => self.response_for(&forward.request.clone(), Reply::new(408, "Request Timeout")),
            Err(_) => self.response_for(&forward.request.clone(), Reply::new(503, "Service Unavailable")),
        };
        let Some(forward) = self.dialogs.forwards.remove(client) else {
            return true;
        };
        if forward.request.method == Method::Bye {
            self.bye_went_through(now, &forward.server, &forward.request, response);
        } else {
            self.respond(now, &forward.server, response);
        }
        true
    }

    /// A BYE went through: the call's CDR ends, then its answer goes upstream.
    fn bye_went_through(&mut self, now: Instant, server: &ServerKey, bye: &Request, response: Response) {
        let stated = self.stated_cause(bye);
        let Some(call) = self.dialogs.calls.remove(bye.call_id()) else {
            return self.respond(now, server, response);
        };
        // A BYE with the caller's From tag is the caller hanging up; any other
        // came from the called side (the line).
        let from_caller = bye
            .from()
            .is_some_and(|f| f.tag() == Some(call.caller.tag.as_str()));
        let cause = match (from_caller, stated) {
            (_, Some(cause)) => cause,
            (true, None) => HangupCause::Normal,
            (false, None) => HangupCause::RemoteHangup,
        };
        self.close_call(
            now,
            bye.call_id(),
            &call.record,
            cause,
            Owner::Answer(server.clone(), Box::new(response)),
        );
    }

    /// Releases what a call held and ends its CDR; `then` runs once committed.
    fn close_call(
        &mut self,
        now: Instant,
        call_id: &str,
        record: &CallRecord,
        cause: HangupCause,
        then: Owner,
    ) {
        self.limiter.end(&record.limit_key);
        if let Some(line) = &record.line {
            self.free_line(line);
        }
        let seconds = now.saturating_duration_since(record.answered).as_secs();
        tracing::info!(call_id, cdr = %record.cdr, cause = %cause, seconds, "call ended");
        let change = Change::EndCdr {
            cdr: record.cdr.clone(),
            at: self.wall_ms(now),
            cause,
        };
        self.change(change, then);
    }

    /// Ends a call on the node's own initiative: a BYE to each side still there
    /// (`gone` names the side that left: caller or callee), then its CDR.
    pub(super) fn end_call(&mut self, now: Instant, call_id: &str, cause: HangupCause, gone: Option<bool>) {
        let Some(call) = self.dialogs.calls.remove(call_id) else {
            return;
        };
        // `gone`: Some(true) when the caller left, Some(false) when the callee did.
        if gone != Some(false) {
            let key = call.record.callee_key.clone();
            self.send_bye(now, call_id, (&call.callee, &call.caller), key, cause);
        }
        if gone != Some(true) {
            self.send_bye(now, call_id, (&call.caller, &call.callee), None, cause);
        }
        self.close_call(now, call_id, &call.record, cause, Owner::Background);
    }

    /// A BYE from `from` to `to`, sent by the node, with its `cause` as Reason.
    fn send_bye(
        &mut self,
        now: Instant,
        call_id: &str,
        (to, from): (&Side, &Side),
        key: Option<offhook_vocab::Secret>,
        cause: HangupCause,
    ) {
        let mut bye = Request::new(Method::Bye, &to.target);
        bye.headers.push("Max-Forwards", "70");
        bye.headers.push("From", &from.header);
        bye.headers.push("To", &to.header);
        bye.headers.push("Call-ID", call_id);
        bye.headers
            .push("CSeq", &format!("{} BYE", from.cseq.saturating_add(1)));
        bye.headers.push("Reason", &reason(cause));
        if let Some(key) = key {
            offhook_sip::trust::sign(key.expose(), &mut bye, self.wall_ms(now));
        }
        let client = self.endpoint.send_request(now, bye, to.flow);
        self.dialogs.own_byes.insert(client);
    }

    /// A stream connection closed: the calls with a side on it end (the other
    /// side gets a BYE).
    pub(super) fn flow_closed(&mut self, now: Instant, flow: &Flow) {
        for (call_id, caller_gone) in self.dialogs.on_flow(flow) {
            let cause = if caller_gone {
                HangupCause::CallerGone
            } else {
                HangupCause::RemoteHangup
            };
            self.end_call(now, &call_id, cause, Some(caller_gone));
        }
    }

    /// The relay holding these lines died (it stopped answering, or started
    /// again): their calls are gone with it; the callers get a BYE.
    pub(super) fn relay_lost(&mut self, now: Instant, lines: &[String]) {
        for line in lines {
            if let Some(call_id) = self.dialogs.call_on_line(line) {
                tracing::warn!(call_id, line, "the relay of a call's line is lost");
                self.end_call(now, &call_id, HangupCause::RelayLost, Some(false));
            }
        }
    }

    /// Ends the calls that reached their maximum duration at `now`.
    pub(super) fn dialogs_timeout(&mut self, now: Instant) {
        for (call_id, cause) in self.dialogs.due(now) {
            self.end_call(now, &call_id, cause, None);
        }
    }

    /// Ends every call (a drain's deadline came).
    pub(super) fn end_every_call(&mut self, now: Instant, cause: HangupCause) {
        for call_id in self.dialogs.ids() {
            self.end_call(now, &call_id, cause, None);
        }
    }

    /// Whether BYEs the node sent are still unanswered.
    pub(super) fn byes_in_flight(&self) -> bool {
        !self.dialogs.own_byes.is_empty()
    }

    /// The ACK of a 2xx: forwarded without a transaction.
    pub(super) fn forward_ack(&mut self, request: Request) {
        if let Ok((out, flow)) = self.prepare_in_dialog(&request) {
            self.endpoint.send_stateless_request(out, flow);
        }
    }

    /// A response that matched no transaction (a retransmitted 2xx): upstream
    /// by the next Via, if the top one is ours.
    pub(super) fn forward_stray(&mut self, response: &Response) {
        let ours = response
            .top_via()
            .is_some_and(|via| self.endpoint.is_our_via(&via));
        if !ours {
            tracing::debug!("stray response not sent through us: dropped");
            return;
        }
        let response = upstream(response.clone());
        let Some(via) = response.headers.get("Via").and_then(|v| Via::parse(v).ok()) else {
            return;
        };
        let host = via
            .param("received")
            .map_or_else(|| via.host.clone(), str::to_owned);
        let port = via.param("rport").and_then(|p| p.parse().ok()).or(via.port);
        let uri = Uri {
            scheme: "sip".into(),
            user: None,
            host,
            port,
            params: Vec::new(),
        };
        if via.transport == "UDP"
            && let Some(flow) = flows::to_uri(&self.endpoint, &uri)
        {
            self.endpoint.send_stateless_response(&response, flow);
        }
    }
}

/// The `Reason` (RFC 3326) of a BYE the relay ended for `cause`, so the caller
/// can say why: `SIP;cause=200;text="no audio path"`.
fn reason(cause: HangupCause) -> String {
    format!("SIP;cause=200;text=\"{}\"", cause.as_str().replace('-', " "))
}
