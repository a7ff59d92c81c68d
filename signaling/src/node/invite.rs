//! One initial INVITE through the proxy (RFC 3261 s16), as a state machine on
//! the node: who calls and where to ([`super::route`]), the call token spent,
//! the limits, the CDR started, then a free relay line claimed (with failover to
//! the next line when a relay does not answer or says 503 before ringing) or the
//! callee's registered contact; the INVITE forwarded with a double Record-Route
//! whose flow tokens bring in-dialog requests back down the caller's flow; the
//! responses passed upstream; CANCEL passed on. It ends in exactly one of two
//! ways: a 2xx (the call is a dialog now, [`super::dialogs`]) or a final failure
//! sent upstream once the call's CDR end is committed, so that whoever sees the
//! call end can read how it ended. [`Node::fail_call`] is the one exit of every
//! failure path.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use offhook_directory::{Cdr, HangupCause, LineState, RoutableLine};
use offhook_sip::message::{Request, Response};
use offhook_sip::transaction::{ClientKey, ServerKey};
use offhook_sip::transport::Flow;
use offhook_vocab::headers;
use rand::Rng as _;

use super::auth::Challenger;
use super::directory_io::{Change, Changed, Query, Record};
use super::lines::Refresh;
use super::route::{self, Caller, RouteCtx, Routed, Target};
use super::{Node, Owner, Reply, Step};

/// Where an INVITE is.
#[derive(Debug)]
enum Stage {
    /// Deciding who calls.
    Caller,
    /// Deciding where the call goes.
    Target(Box<Caller>),
    /// Its call token is being spent.
    Spending(Box<Routed>),
    /// Choosing a line (waiting for the lines snapshot, if there is none).
    Lines(Box<Routed>),
    /// A line is being claimed.
    Claiming(Box<Routed>, Arc<RoutableLine>),
    /// The callee's bindings are being read.
    Bindings(Box<Routed>),
    /// Forwarded; waiting for the final response.
    Forwarded {
        client: ClientKey,
        /// A provisional response came (no failover after that).
        provisional: bool,
        /// More lines to try when this one does not take the call.
        routed: Box<Routed>,
    },
}

/// The call an admitted INVITE started.
#[derive(Debug)]
struct Started {
    cdr: String,
    limit_key: String,
    /// The line it holds.
    line: Option<String>,
    /// Lines it tried already.
    tried: Vec<String>,
    /// Where the INVITE went last.
    callee_flow: Option<Flow>,
    /// The key of the relay it went to (requests to it are signed).
    callee_key: Option<offhook_vocab::Secret>,
    /// Billed time it may use once answered (its tenant's minute caps).
    budget: Option<Duration>,
}

#[derive(Debug)]
struct Invite {
    request: Request,
    flow: Flow,
    stage: Stage,
    call: Option<Started>,
    /// A CANCEL came while a change was in flight: end at its result.
    cancelled: bool,
    /// Ended by the node (an operator's hang-up): the CDR's cause, whatever
    /// answer downstream gives to the CANCEL.
    ended_by: Option<HangupCause>,
}

/// The INVITEs in progress.
#[derive(Debug, Default)]
pub(crate) struct Invites {
    by_server: HashMap<ServerKey, Invite>,
    by_client: HashMap<ClientKey, ServerKey>,
}

impl Invites {
    pub(crate) fn len(&self) -> usize {
        self.by_server.len()
    }
}

/// A response from downstream without our Via, ready to go upstream.
pub(crate) fn upstream(mut response: Response) -> Response {
    response.headers.pop_first("Via");
    response
}

/// The base-32 alphabet of directory ids.
const ID_ALPHABET: &[u8; 32] = b"abcdefghjkmnpqrstuvwxyz023456789";

impl Node {
    /// A fresh CDR id (`cdr_…`, as the directory makes them), from the node's RNG.
    fn new_cdr_id(&mut self) -> String {
        let tail: String = (0..16)
            .map(|_| char::from(ID_ALPHABET[self.rng.random_range(0..ID_ALPHABET.len())]))
            .collect();
        format!("cdr_{tail}")
    }

    /// A response to `request` made from a reply (a fresh To tag).
    pub(super) fn response_for(&mut self, request: &Request, reply: Reply) -> Response {
        let tag = self.endpoint.new_tag();
        let mut response = request.response(reply.status, &reply.reason, Some(&tag));
        for (name, value) in reply.headers {
            response.headers.push(name, &value);
        }
        response
    }

    /// A new initial INVITE.
    pub(super) fn invite(&mut self, now: Instant, key: ServerKey, request: Request, flow: Flow) {
        let trying = request.response(100, "Trying", None);
        self.respond(now, &key, trying);
        if request.max_forwards() == Some(0) {
            return self.reply(now, &key, &request, Reply::new(483, "Too Many Hops"));
        }
        let looped = request
            .headers
            .get_all("Via")
            .iter()
            .skip(1)
            .any(|v| offhook_sip::message::Via::parse(v).is_ok_and(|via| self.endpoint.is_our_via(&via)));
        if looped {
            return self.reply(now, &key, &request, Reply::new(482, "Loop Detected"));
        }
        if self.draining.is_some() {
            let reply = Reply::new(503, "Shutting down").with("Retry-After", "5".into());
            return self.reply(now, &key, &request, reply);
        }
        let invite = Invite {
            request,
            flow,
            stage: Stage::Caller,
            call: None,
            cancelled: false,
            ended_by: None,
        };
        self.invites.by_server.insert(key.clone(), invite);
        self.drive_invite(now, &key, None);
    }

    /// Moves an INVITE on until it waits for something or is done; `changed` is
    /// the result of the change it waited for.
    pub(super) fn drive_invite(&mut self, now: Instant, key: &ServerKey, mut changed: Option<Changed>) {
        loop {
            let Some(invite) = self.invites.by_server.get_mut(key) else {
                return;
            };
            let stage = std::mem::replace(&mut invite.stage, Stage::Caller);
            let cancelled = invite.cancelled;
            let unexpected = || {
                Err(Ended::failed(
                    Reply::new(500, "Unexpected directory answer"),
                    HangupCause::Sip(500),
                ))
            };
            let next = match stage {
                Stage::Caller => self.decide_caller(now, key),
                Stage::Target(caller) => self.decide_target(now, key, caller),
                Stage::Spending(routed) => match changed.take() {
                    None => Ok(Next::Wait(Stage::Spending(routed))),
                    Some(_) if cancelled => Err(Ended::cancelled()),
                    Some(Changed::TokenSpent(true)) => self.admit(now, key, *routed),
                    Some(Changed::TokenSpent(false)) => {
                        Err(Ended::refused(Reply::new(403, "Call token already used")))
                    }
                    Some(_) => unexpected(),
                },
                Stage::Lines(routed) => self.choose_line(now, key, routed),
                Stage::Claiming(routed, line) => match changed.take() {
                    None => Ok(Next::Wait(Stage::Claiming(routed, line))),
                    Some(Changed::LineClaimed(won)) => self.claimed(now, key, routed, &line, won),
                    Some(_) => unexpected(),
                },
                Stage::Bindings(routed) => match changed.take() {
                    None => Ok(Next::Wait(Stage::Bindings(routed))),
                    Some(_) if cancelled => Err(Ended::cancelled()),
                    Some(Changed::Bindings(bindings)) => self.forward_to_account(now, key, routed, &bindings),
                    Some(_) => unexpected(),
                },
                forwarded @ Stage::Forwarded { .. } => Ok(Next::Wait(forwarded)),
            };
            let stage = match next {
                Ok(Next::Run(stage)) => Some(stage),
                Ok(Next::Wait(stage)) => {
                    if let Some(invite) = self.invites.by_server.get_mut(key) {
                        invite.stage = stage;
                    }
                    return;
                }
                Ok(Next::Done) => return,
                Err(ended) => return self.fail_call(now, key, ended),
            };
            if let (Some(invite), Some(stage)) = (self.invites.by_server.get_mut(key), stage) {
                invite.stage = stage;
            }
        }
    }

    fn route_ctx(&self, now: Instant, source: std::net::IpAddr) -> RouteCtx<'_> {
        RouteCtx {
            auth: self.auth_ctx(now, source),
            view: &self.view,
            now,
            now_ms: self.wall_ms(now),
            call_token_secret: &self.call_token_secret,
            per_source_per_minute: self.config.calls_per_source_per_minute,
            source,
        }
    }

    fn request_of(&self, key: &ServerKey) -> Option<(Request, std::net::IpAddr)> {
        self.invites
            .by_server
            .get(key)
            .map(|i| (i.request.clone(), i.flow.remote.ip()))
    }

    fn decide_caller(&mut self, now: Instant, key: &ServerKey) -> Result<Next, Ended> {
        let Some((request, source)) = self.request_of(key) else {
            return Ok(Next::Done);
        };
        match route::caller(&self.route_ctx(now, source), &request) {
            Step::Done(Caller::Account { tenant, verified }) => {
                let now_secs = self.wall_secs(now);
                self.throttle
                    .succeeded(source, &tenant.sip_domain, &verified.account.username);
                if verified.spend(&mut self.nonces, now_secs) {
                    Ok(Next::Run(Stage::Target(Box::new(Caller::Account {
                        tenant,
                        verified,
                    }))))
                } else {
                    Err(Ended::refused(self.challenge(
                        now,
                        &request,
                        &tenant.sip_domain,
                        true,
                        Challenger::Proxy,
                    )))
                }
            }
            Step::Done(visitor) => Ok(Next::Run(Stage::Target(Box::new(visitor)))),
            Step::Need(query) => {
                self.need(query, Owner::Invite(key.clone()));
                Ok(Next::Wait(Stage::Caller))
            }
            Step::Reply(reply) => Err(Ended::refused(reply)),
            Step::Challenge { realm, stale } => Err(Ended::refused(self.challenge(
                now,
                &request,
                &realm,
                stale,
                Challenger::Proxy,
            ))),
            Step::Failed { realm, user } => Err(Ended::refused(self.auth_failed(now, source, &realm, &user))),
        }
    }

    fn decide_target(&mut self, now: Instant, key: &ServerKey, caller: Box<Caller>) -> Result<Next, Ended> {
        let Some((request, source)) = self.request_of(key) else {
            return Ok(Next::Done);
        };
        match route::target(&self.route_ctx(now, source), &request, &caller) {
            Step::Done(routed) => match routed.token.clone() {
                Some(grant) => {
                    self.change(Change::SpendToken(grant), Owner::Invite(key.clone()));
                    Ok(Next::Wait(Stage::Spending(Box::new(routed))))
                }
                None => self.admit(now, key, routed),
            },
            Step::Need(query) => {
                self.need(query, Owner::Invite(key.clone()));
                Ok(Next::Wait(Stage::Target(caller)))
            }
            Step::Reply(reply) => Err(Ended::refused(reply)),
            Step::Challenge { .. } | Step::Failed { .. } => Err(Ended::refused(Reply::new(403, "Forbidden"))),
        }
    }

    /// Admits the call by the limits, starts its CDR, and goes for its target.
    fn admit(&mut self, now: Instant, key: &ServerKey, routed: Routed) -> Result<Next, Ended> {
        let Some(invite) = self.invites.by_server.get(key) else {
            return Ok(Next::Done);
        };
        let source = invite.flow.remote.ip();
        let call_id = invite.request.call_id().to_owned();
        let tenant = (routed.tenant.id.as_str(), routed.tenant_max_concurrent);
        match self
            .limiter
            .admit_in_group(&routed.limit_key, tenant, source, routed.limits, now)
        {
            Ok(()) => {}
            Err(offhook_directory::limits::Refusal::TooManyConcurrent) => {
                return Err(Ended::refused(Reply::new(486, "Too many calls at once")));
            }
            Err(offhook_directory::limits::Refusal::RateLimited { retry_after }) => {
                let reply =
                    Reply::new(503, "Too many calls, try later").with("Retry-After", retry_after.to_string());
                return Err(Ended::refused(reply));
            }
        }
        let day = self.wall_ms(now).div_euclid(offhook_directory::DAY_MS);
        self.view
            .count_call(&routed.tenant.id, super::policy::through(&routed), day);
        let number = match &routed.target {
            Target::Number(number) => number.clone(),
            Target::Account(callee) => callee.number.clone().unwrap_or_else(|| callee.username.clone()),
        };
        let cdr = Cdr {
            id: self.new_cdr_id(),
            tenant_id: routed.tenant.id.clone(),
            icon_id: routed.icon.as_ref().map(|i| i.id.clone()),
            account_id: routed.caller.as_ref().map(|a| a.id.clone()),
            call_id,
            number,
            line_id: None,
            started_at: self.wall_ms(now),
            answered_at: None,
            ended_at: None,
            answer_source: None,
            hangup_cause: None,
            quality: None,
        };
        let started = Started {
            cdr: cdr.id.clone(),
            limit_key: routed.limit_key.clone(),
            line: None,
            tried: Vec::new(),
            callee_flow: None,
            callee_key: None,
            budget: routed.budget,
        };
        tracing::info!(
            call_id = %cdr.call_id,
            cdr = %cdr.id,
            tenant = %routed.tenant.name,
            icon = routed.icon.as_ref().map_or("", |i| i.public_id.as_str()),
            account = routed.caller.as_ref().map_or("", |a| a.username.as_str()),
            number = %offhook_vocab::mask_number(&cdr.number),
            "call started"
        );
        self.record(Record::StartCdr(Box::new(cdr)));
        if let Some(invite) = self.invites.by_server.get_mut(key) {
            invite.call = Some(started);
        }
        match &routed.target {
            Target::Number(_) => Ok(Next::Run(Stage::Lines(Box::new(routed)))),
            Target::Account(callee) => {
                let change = Change::Bindings {
                    tenant: routed.tenant.id.clone(),
                    aor: callee.username.clone(),
                };
                self.change(change, Owner::Invite(key.clone()));
                Ok(Next::Wait(Stage::Bindings(Box::new(routed))))
            }
        }
    }

    /// Picks the next free line and claims it; waits for the lines snapshot
    /// when there is none.
    fn choose_line(&mut self, now: Instant, key: &ServerKey, routed: Box<Routed>) -> Result<Next, Ended> {
        match self.lines.refresh(now) {
            Refresh::Needed => {
                self.ask_lines(Owner::Invite(key.clone()));
                return Ok(Next::Wait(Stage::Lines(routed)));
            }
            Refresh::Background => self.ask_lines(Owner::Lines),
            Refresh::No => {}
        }
        let tried = self
            .invites
            .by_server
            .get(key)
            .and_then(|i| i.call.as_ref())
            .map(|c| c.tried.clone())
            .unwrap_or_default();
        let candidates = self.lines.candidates(self.wall_ms(now), &routed.tenant.id);
        for line in candidates.into_iter().filter(|l| !tried.contains(&l.line.id)) {
            let reachable = self
                .connections
                .to_registration(&self.endpoint, &self.config.node_id, &line.registration)
                .is_some();
            if reachable && self.lines.reserve(&line.line.id) {
                self.change(
                    Change::ClaimLine(line.line.id.clone()),
                    Owner::Invite(key.clone()),
                );
                return Ok(Next::Wait(Stage::Claiming(routed, line)));
            }
        }
        Err(Ended::failed(
            Reply::new(503, "All lines busy"),
            HangupCause::LineFault,
        ))
    }

    /// Asks for a lines snapshot (once while one is in flight).
    fn ask_lines(&mut self, owner: Owner) {
        if !self.waiting.contains_key(&Query::Lines) {
            self.lines.read_started();
        }
        self.need(Query::Lines, owner);
    }

    /// A line claim's result: forward the call there, or try the next line.
    fn claimed(
        &mut self,
        now: Instant,
        key: &ServerKey,
        routed: Box<Routed>,
        line: &RoutableLine,
        won: bool,
    ) -> Result<Next, Ended> {
        let cancelled = self.invites.by_server.get(key).is_some_and(|i| i.cancelled);
        let Some(call) = self.invites.by_server.get_mut(key).and_then(|i| i.call.as_mut()) else {
            return Ok(Next::Done);
        };
        call.tried.push(line.line.id.clone());
        if !won {
            self.lines.held_elsewhere(&line.line.id);
            if cancelled {
                return Err(Ended::cancelled());
            }
            return Ok(Next::Run(Stage::Lines(routed)));
        }
        call.line = Some(line.line.id.clone());
        if cancelled {
            // fail_call gives the line back.
            return Err(Ended::cancelled());
        }
        let cdr = call.cdr.clone();
        self.record(Record::CdrLine {
            cdr,
            line: line.line.id.clone(),
        });
        let Some(flow) =
            self.connections
                .to_registration(&self.endpoint, &self.config.node_id, &line.registration)
        else {
            // Its connection went while the claim was in flight.
            self.release_line(key);
            return Ok(Next::Run(Stage::Lines(routed)));
        };
        let number = match &routed.target {
            Target::Number(number) => number.clone(),
            Target::Account(_) => String::new(),
        };
        let Some(mut forwarded) = self.forwarded(key, &line.registration.contact, &flow) else {
            return Ok(Next::Done);
        };
        forwarded.headers.push(headers::NUMBER, &number);
        forwarded.headers.push(headers::LINE, &line.line.name);
        offhook_sip::trust::sign(line.relay_key.expose(), &mut forwarded, self.wall_ms(now));
        if let Some(call) = self.invites.by_server.get_mut(key).and_then(|i| i.call.as_mut()) {
            call.callee_key = Some(line.relay_key.clone());
        }
        Ok(Next::Wait(self.send_invite(now, key, forwarded, flow, routed)))
    }

    /// Forwards the call to the callee's first reachable binding.
    fn forward_to_account(
        &mut self,
        now: Instant,
        key: &ServerKey,
        routed: Box<Routed>,
        bindings: &[offhook_directory::Registration],
    ) -> Result<Next, Ended> {
        let reachable = bindings.iter().find_map(|b| {
            self.connections
                .to_registration(&self.endpoint, &self.config.node_id, b)
                .map(|f| (b.contact.clone(), f))
        });
        let Some((contact, flow)) = reachable else {
            return Err(Ended::failed(
                Reply::new(480, "Temporarily Unavailable"),
                HangupCause::NoAnswer,
            ));
        };
        let Some(forwarded) = self.forwarded(key, &contact, &flow) else {
            return Ok(Next::Done);
        };
        Ok(Next::Wait(self.send_invite(now, key, forwarded, flow, routed)))
    }

    fn send_invite(
        &mut self,
        now: Instant,
        key: &ServerKey,
        forwarded: Request,
        flow: Flow,
        routed: Box<Routed>,
    ) -> Stage {
        if let Some(call) = self.invites.by_server.get_mut(key).and_then(|i| i.call.as_mut()) {
            call.callee_flow = Some(flow);
        }
        let client = self.endpoint.send_request(now, forwarded, flow);
        self.invites.by_client.insert(client.clone(), key.clone());
        Stage::Forwarded {
            client,
            provisional: false,
            routed,
        }
    }

    /// The INVITE as forwarded to `uri` along `to`: Max-Forwards less one,
    /// credentials and private headers gone, Record-Route facing both flows (our
    /// Via goes on top when the endpoint sends it).
    fn forwarded(&self, key: &ServerKey, uri: &str, to: &Flow) -> Option<Request> {
        let invite = self.invites.by_server.get(key)?;
        let mut out = invite.request.clone();
        out.uri = uri.to_owned();
        // Max-Forwards 0 was answered with 483 before routing.
        out.decrement_max_forwards();
        out.headers.remove("Proxy-Authorization");
        for name in headers::PRIVATE {
            out.headers.remove(name);
        }
        out.headers
            .push_front("Record-Route", &self.record_route(&invite.flow));
        out.headers.push_front("Record-Route", &self.record_route(to));
        Some(out)
    }

    /// Our Record-Route entry facing `flow` (the flow's token inside).
    pub(super) fn record_route(&self, flow: &Flow) -> String {
        format!(
            "<{}>",
            self.endpoint.uri(
                flow.kind,
                None,
                &format!(";lr;ft={}", self.flow_tokens.token(flow))
            )
        )
    }

    /// A response (or a timeout/transport failure as 408/503) on a client
    /// transaction of a forwarded INVITE or in-dialog request.
    pub(super) fn on_response(&mut self, now: Instant, client: ClientKey, response: Result<Response, u16>) {
        if self.health_response(now, &client, response.as_ref().map(|r| r.status)) {
            return;
        }
        if let Some(key) = self.invites.by_client.get(&client).cloned() {
            return self.invite_response(now, &key, &client, response);
        }
        if self.dialog_response(now, &client, &response) {
            return;
        }
        // A 2xx retransmission after the INVITE was done (RFC 6026 Accepted).
        if let Ok(response) = response
            && (200..300).contains(&response.status)
        {
            self.forward_stray(&response);
        }
    }

    fn invite_response(
        &mut self,
        now: Instant,
        key: &ServerKey,
        client: &ClientKey,
        response: Result<Response, u16>,
    ) {
        let Some(Stage::Forwarded { provisional, .. }) = self.invites.by_server.get(key).map(|i| &i.stage)
        else {
            return;
        };
        let provisional = *provisional;
        let status = response.as_ref().map_or_else(|s| *s, |r| r.status);
        if status == 100 {
            return;
        }
        if matches!(status, 408 | 503) && !provisional {
            // No answer at all (or 503) before any provisional: the next line may do.
            self.invites.by_client.remove(client);
            self.release_line(key);
            let Some(invite) = self.invites.by_server.get_mut(key) else {
                return;
            };
            if let Stage::Forwarded { routed, .. } = std::mem::replace(&mut invite.stage, Stage::Caller)
                && matches!(routed.target, Target::Number(_))
            {
                tracing::warn!("relay did not take the call; trying the next line");
                invite.stage = Stage::Lines(routed);
                return self.drive_invite(now, key, None);
            }
            let reply = Reply::new(408, "Request Timeout");
            return self.fail_call(now, key, Ended::failed(reply, HangupCause::NoAnswer));
        }
        let Ok(response) = response else {
            // A timeout after ringing: nobody answered.
            self.invites.by_client.remove(client);
            let reply = Reply::new(408, "Request Timeout");
            return self.fail_call(now, key, Ended::failed(reply, HangupCause::NoAnswer));
        };
        if response.status < 200 {
            if let Some(Stage::Forwarded { provisional, .. }) =
                self.invites.by_server.get_mut(key).map(|i| &mut i.stage)
            {
                if !*provisional {
                    tracing::info!(
                        call_id = response.call_id(),
                        status = response.status,
                        "call ringing"
                    );
                }
                *provisional = true;
            }
            return self.respond(now, key, upstream(response));
        }
        self.invites.by_client.remove(client);
        if response.status < 300 {
            return self.answered(now, key, response);
        }
        let cause = HangupCause::of_status(response.status);
        self.fail_call(now, key, Ended::Response(Box::new(upstream(response)), cause));
    }

    /// The call was answered: it becomes a dialog, the 2xx goes upstream.
    fn answered(&mut self, now: Instant, key: &ServerKey, response: Response) {
        let Some(invite) = self.invites.by_server.remove(key) else {
            return;
        };
        if let Some(call) = invite.call {
            let source = response
                .headers
                .get(headers::ANSWER)
                .and_then(|h| h.trim().parse().ok())
                .unwrap_or(offhook_directory::AnswerSource::Sip);
            let at = self.wall_ms(now);
            tracing::info!(call_id = invite.request.call_id(), cdr = %call.cdr, answer = %source, "call answered");
            self.record(Record::AnswerCdr {
                cdr: call.cdr.clone(),
                at,
                source,
            });
            if let Some(line) = &call.line {
                self.record(Record::LineState {
                    line: line.clone(),
                    state: LineState::InCall,
                });
            }
            if let Some(callee_flow) = call.callee_flow {
                let tracked = super::dialogs::Tracked::new(
                    &invite.request,
                    &response,
                    invite.flow,
                    callee_flow,
                    super::dialogs::CallRecord {
                        cdr: call.cdr,
                        line: call.line,
                        limit_key: call.limit_key,
                        answered: now,
                        callee_key: call.callee_key,
                    },
                );
                // The shorter of the longest call and the minute budget ends it.
                let max = self.config.max_call_duration();
                let limit = match call.budget {
                    Some(budget) if budget < max => (budget, HangupCause::BudgetExhausted),
                    _ => (max, HangupCause::MaxDuration),
                };
                self.dialogs.track(now, invite.request.call_id(), tracked, limit);
            }
        }
        self.respond(now, key, upstream(response));
    }

    /// A CANCEL matched this INVITE.
    pub(super) fn invite_cancelled(&mut self, now: Instant, key: &ServerKey) {
        let Some(invite) = self.invites.by_server.get_mut(key) else {
            return;
        };
        match &invite.stage {
            // The 487 comes back from downstream.
            Stage::Forwarded { client, .. } => {
                let client = client.clone();
                self.endpoint.cancel(now, &client);
            }
            Stage::Spending(_) | Stage::Claiming(..) | Stage::Bindings(_) => invite.cancelled = true,
            Stage::Caller | Stage::Target(_) | Stage::Lines(_) => {
                self.fail_call(now, key, Ended::cancelled())
            }
        }
    }

    /// Ends the INVITE whose call's CDR is `cdr` (cancelled, with `cause`).
    pub(super) fn end_invite_of_cdr(&mut self, now: Instant, cdr: &str, cause: HangupCause) -> bool {
        self.end_invite_where(now, cause, |i| i.call.as_ref().is_some_and(|c| c.cdr == cdr))
    }

    /// Ends the INVITE whose call holds `line` (cancelled, with `cause`).
    pub(super) fn end_invite_on_line(&mut self, now: Instant, line: &str, cause: HangupCause) -> bool {
        self.end_invite_where(now, cause, |i| {
            i.call.as_ref().is_some_and(|c| c.line.as_deref() == Some(line))
        })
    }

    /// Whether an INVITE is claiming `line` right now.
    pub(super) fn is_claiming(&self, line: &str) -> bool {
        self.invites
            .by_server
            .values()
            .any(|i| matches!(&i.stage, Stage::Claiming(_, claimed) if claimed.line.id == line))
    }

    fn end_invite_where(
        &mut self,
        now: Instant,
        cause: HangupCause,
        which: impl Fn(&Invite) -> bool,
    ) -> bool {
        let Some((key, invite)) = self.invites.by_server.iter_mut().find(|(_, i)| which(i)) else {
            return false;
        };
        invite.ended_by = Some(cause);
        let key = key.clone();
        self.invite_cancelled(now, &key);
        true
    }

    /// The connection an INVITE came on closed: it is cancelled.
    pub(super) fn invites_of_flow_closed(&mut self, now: Instant, flow: &Flow) {
        let gone: Vec<ServerKey> = self
            .invites
            .by_server
            .iter()
            .filter(|(_, i)| i.flow == *flow)
            .map(|(k, _)| k.clone())
            .collect();
        for key in gone {
            self.invite_cancelled(now, &key);
        }
    }

    /// Ends every INVITE in progress (a drain's deadline came) with `cause`:
    /// those forwarded are cancelled downstream, the others refused.
    pub(super) fn end_every_invite(&mut self, now: Instant, cause: HangupCause) {
        while self.end_invite_where(now, cause, |i| i.ended_by.is_none()) {}
    }

    /// The directory failed an INVITE's query or change.
    pub(super) fn invite_failed(&mut self, now: Instant, key: &ServerKey, reply: Reply) {
        self.fail_call(now, key, Ended::failed(reply, HangupCause::Sip(500)));
    }

    /// Gives a call's line back (a record, and free here at once).
    fn release_line(&mut self, key: &ServerKey) {
        let line = self
            .invites
            .by_server
            .get_mut(key)
            .and_then(|i| i.call.as_mut())
            .and_then(|c| c.line.take());
        if let Some(line) = line {
            self.free_line(&line);
        }
    }

    /// Records a line idle again and offers it here at once.
    pub(super) fn free_line(&mut self, line: &str) {
        let seq = self.record(Record::LineState {
            line: line.to_owned(),
            state: LineState::Idle,
        });
        self.lines.release(line, seq);
    }

    /// The one exit of every failed INVITE: limits and line released, the CDR
    /// ended, and the final response sent once that end is committed (at once
    /// when no call was started).
    pub(super) fn fail_call(&mut self, now: Instant, key: &ServerKey, ended: Ended) {
        let Some(invite) = self.invites.by_server.remove(key) else {
            return;
        };
        self.invites.by_client.retain(|_, server| server != key);
        let (response, mut cause) = match ended {
            Ended::Refused(reply) => (self.response_for(&invite.request, reply), HangupCause::Rejected),
            Ended::Failed(reply, cause) => (self.response_for(&invite.request, reply), cause),
            Ended::Response(response, cause) => (*response, cause),
        };
        cause = invite.ended_by.unwrap_or(cause);
        let Some(call) = invite.call else {
            tracing::debug!(
                call_id = invite.request.call_id(),
                status = response.status,
                "call refused"
            );
            return self.respond(now, key, response);
        };
        tracing::info!(
            call_id = invite.request.call_id(),
            cdr = %call.cdr,
            status = response.status,
            cause = %cause,
            "call failed"
        );
        self.limiter.end(&call.limit_key);
        if let Some(line) = &call.line {
            self.free_line(line);
        }
        let change = Change::EndCdr {
            cdr: call.cdr,
            at: self.wall_ms(now),
            cause,
        };
        self.change(change, Owner::Answer(key.clone(), Box::new(response)));
    }
}

/// How a failed INVITE is answered.
#[derive(Debug)]
pub(super) enum Ended {
    /// Refused before a call started (or by policy): this reply.
    Refused(Reply),
    /// Failed with this reply and this cause.
    Failed(Reply, HangupCause),
    /// Failed downstream: pass this response up.
    Response(Box<Response>, HangupCause),
}

impl Ended {
    fn refused(reply: Reply) -> Self {
        Self::Refused(reply)
    }

    fn failed(reply: Reply, cause: HangupCause) -> Self {
        Self::Failed(reply, cause)
    }

    fn cancelled() -> Self {
        Self::Failed(Reply::new(487, "Request Terminated"), HangupCause::Cancelled)
    }
}

/// What an INVITE does after a step.
#[derive(Debug)]
enum Next {
    /// Go on with this stage at once.
    Run(Stage),
    /// Park in this stage until a query's answer, a change's result or a response.
    Wait(Stage),
    /// Nothing more (the INVITE is gone).
    Done,
}
