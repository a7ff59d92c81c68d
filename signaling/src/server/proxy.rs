//! The stateful proxy (RFC 3261 s16): initial INVITEs are routed (see `route`),
//! admitted by the limits, given a free relay line (see `lines`: chosen in memory,
//! claimed in the directory, with failover to the next line when a relay does not
//! answer) or the callee's registered contact, and forwarded with our Via and a
//! double Record-Route whose flow tokens bring in-dialog requests back down the
//! right connection. Responses go back upstream; CANCEL is passed on; dialogs are
//! tracked from INVITE to BYE for the CDR (queued at start, completed at answer
//! and end, written behind the call) and the limits. The end of a call waits for
//! its CDR to be committed before the final response or the BYE's 200 goes
//! upstream, so that whoever sees a call end can read how it ended.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use offhook_directory::{AnswerSource, HangupCause, NewCdr};
use offhook_vocab::headers;

use super::node::{Node, TrackedCall, lock};
use super::now_ms;
use super::route::{Routed, Target, route};
use offhook_directory::limits::Refusal;
use offhook_sip::legacy::ClientEvent;
use offhook_sip::message::{Message, Method, NameAddr, Request, Response, Uri, Via};
use offhook_sip::transaction::ServerKey;
use offhook_sip::transport::Flow;

fn answer_source(response: &Response) -> AnswerSource {
    response
        .headers
        .get(headers::ANSWER)
        .and_then(|h| h.trim().parse().ok())
        .unwrap_or(AnswerSource::Sip)
}

/// The request as forwarded: new Request-URI, Max-Forwards less one, credentials
/// and private headers gone, Record-Route facing both flows, our Via on top.
fn forwarded(node: &Node, request: &Request, uri: &str, from: &Flow, to: &Flow) -> Request {
    let mut out = request.clone();
    out.uri = uri.to_owned();
    // Max-Forwards 0 was answered with 483 before routing.
    out.decrement_max_forwards();
    out.headers.remove("Proxy-Authorization");
    for name in headers::PRIVATE {
        out.headers.remove(name);
    }
    out.headers.push_front("Record-Route", &node.record_route(from));
    out.headers.push_front("Record-Route", &node.record_route(to));
    out.headers.push_front("Via", &node.via(to.kind));
    out
}

/// A response from downstream without our Via, ready to go upstream.
fn upstream(mut response: Response) -> Response {
    response.headers.pop_first("Via");
    response
}

fn release(node: &Node, call_id: &str) -> Option<TrackedCall> {
    let call = lock(&node.calls).remove(call_id)?;
    lock(&node.limiter).end(&call.limit_key);
    Some(call)
}

/// Releases the call's line and completes its CDR (resolves once committed).
async fn finish(node: &Node, call: &TrackedCall, cause: HangupCause) {
    if let Some(line) = &call.line_id {
        node.lines.release(line);
    }
    node.writer.end_cdr(&call.cdr_id, now_ms(), cause).await;
}

/// An initial INVITE.
pub(crate) async fn invite(node: Arc<Node>, key: ServerKey, request: Request, flow: Flow) {
    let reply = |status: u16, reason: &str| request.response(status, reason, Some("px"));
    node.ctx.respond(&key, request.response(100, "Trying", None));
    if request
        .headers
        .get("Max-Forwards")
        .is_some_and(|m| m.trim() == "0")
    {
        return node.ctx.respond(&key, reply(483, "Too Many Hops"));
    }
    if node.looped(&request) {
        return node.ctx.respond(&key, reply(482, "Loop Detected"));
    }
    let Some(routed) = route(&node, &key, &request).await else {
        return;
    };
    let source: IpAddr = flow.remote.ip();
    let admitted = lock(&node.limiter).admit(&routed.limit_key, source, routed.limits, Instant::now());
    match admitted {
        Ok(()) => {}
        Err(Refusal::TooManyConcurrent) => {
            return node.ctx.respond(&key, reply(486, "Too many calls at once"));
        }
        Err(Refusal::RateLimited { retry_after }) => {
            let mut response = reply(503, "Too many calls, try later");
            response.headers.push("Retry-After", &retry_after.to_string());
            return node.ctx.respond(&key, response);
        }
    }
    let number = match &routed.target {
        Target::Number { number } => number.clone(),
        Target::Account { callee } => callee.number.clone().unwrap_or_else(|| callee.username.clone()),
    };
    let cdr = node.writer.start_cdr(NewCdr {
        tenant_id: routed.tenant.id.clone(),
        icon_id: routed.icon.as_ref().map(|i| i.id.clone()),
        account_id: routed.caller.as_ref().map(|a| a.id.clone()),
        call_id: request.call_id().to_owned(),
        number: number.clone(),
        line_id: None,
        started_at: now_ms(),
    });
    let cdr = match cdr {
        Ok(cdr) => cdr,
        Err(err) => {
            // Only a number the directory refuses gets here.
            tracing::warn!(%err, "proxy: no CDR for this number");
            lock(&node.limiter).end(&routed.limit_key);
            return node.ctx.respond(&key, reply(484, "Address Incomplete"));
        }
    };
    let caller_tag = request
        .from()
        .and_then(|f| f.tag().map(str::to_owned))
        .unwrap_or_default();
    let call = TrackedCall {
        cdr_id: cdr.id,
        line_id: None,
        limit_key: routed.limit_key.clone(),
        caller_tag,
    };
    lock(&node.calls).insert(request.call_id().to_owned(), call);
    let outcome = match &routed.target {
        Target::Number { number } => to_line(&node, &key, &request, &flow, &routed, number).await,
        Target::Account { callee } => to_account(&node, &key, &request, &flow, &routed, callee).await,
    };
    if let Err((status, reason)) = outcome {
        if let Some(call) = release(&node, request.call_id()) {
            finish(&node, &call, HangupCause::of_status(status)).await;
        }
        node.ctx.respond(&key, reply(status, reason));
    }
}

/// Tries the free lines in order until a relay takes the call.
async fn to_line(
    node: &Node,
    key: &ServerKey,
    request: &Request,
    flow: &Flow,
    routed: &Routed,
    number: &str,
) -> Result<(), (u16, &'static str)> {
    let free = node
        .lines
        .candidates(Instant::now(), now_ms(), &routed.tenant.id)
        .await
        .map_err(|err| {
            tracing::error!(%err, "proxy: cannot list free lines");
            (500, "Directory unavailable")
        })?;
    for candidate in free {
        let Some(out) = node.flow_to_registration(&candidate.registration) else {
            continue;
        };
        if !node.lines.claim(&candidate.line.id).await {
            continue;
        }
        let cdr_id = lock(&node.calls).get_mut(request.call_id()).map(|call| {
            call.line_id = Some(candidate.line.id.clone());
            call.cdr_id.clone()
        });
        if let Some(cdr_id) = cdr_id {
            node.writer.set_cdr_line(&cdr_id, &candidate.line.id);
        }
        let mut fwd = forwarded(node, request, &candidate.registration.contact, flow, &out);
        fwd.headers.push(headers::NUMBER, number);
        fwd.headers.push(headers::LINE, &candidate.line.name);
        match relay_call(node, key, request, fwd, out).await {
            Relayed::Done => return Ok(()),
            Relayed::TryNext => {
                tracing::warn!(line = %candidate.line.name, "relay did not take the call; trying the next line");
                node.lines.release(&candidate.line.id);
                if let Some(call) = lock(&node.calls).get_mut(request.call_id()) {
                    call.line_id = None;
                }
            }
        }
    }
    Err((503, "All lines busy"))
}

async fn to_account(
    node: &Node,
    key: &ServerKey,
    request: &Request,
    flow: &Flow,
    routed: &Routed,
    callee: &offhook_directory::Account,
) -> Result<(), (u16, &'static str)> {
    let bindings = node
        .directory
        .registrations(&routed.tenant.id, &callee.username, now_ms())
        .await
        .map_err(|_| (500, "Directory unavailable"))?;
    let reachable = bindings
        .iter()
        .find_map(|b| node.flow_to_registration(b).map(|f| (b, f)));
    let Some((binding, out)) = reachable else {
        return Err((480, "Temporarily Unavailable"));
    };
    let fwd = forwarded(node, request, &binding.contact, flow, &out);
    match relay_call(node, key, request, fwd, out).await {
        Relayed::Done => Ok(()),
        Relayed::TryNext => Err((408, "Request Timeout")),
    }
}

enum Relayed {
    /// A final response went upstream.
    Done,
    /// No answer at all (or 503) before any provisional: another target may do.
    TryNext,
}

/// Forwards one INVITE and relays its responses upstream until the final one.
/// Retransmissions of a 2xx come after this returns: the engine passes them up
/// as stray responses, forwarded statelessly by Via (RFC 3261 s16.7, RFC 6026).
async fn relay_call(node: &Node, key: &ServerKey, request: &Request, fwd: Request, out: Flow) -> Relayed {
    let call_id = request.call_id().to_owned();
    let mut cancelled = node.ctx.cancelled(key);
    let Some((client, mut events)) = node.ctx.send(fwd, out).await else {
        return Relayed::TryNext;
    };
    let (mut provisional, mut cancel_sent) = (false, false);
    loop {
        let event = tokio::select! {
            event = events.recv() => event,
            _ = &mut cancelled, if !cancel_sent => {
                cancel_sent = true;
                node.ctx.cancel(&client);
                continue;
            }
        };
        match event {
            None => return Relayed::TryNext,
            Some(ClientEvent::Timeout) if !provisional => return Relayed::TryNext,
            Some(ClientEvent::Timeout) => {
                if let Some(call) = release(node, &call_id) {
                    finish(node, &call, HangupCause::NoAnswer).await;
                }
                node.ctx
                    .respond(key, request.response(408, "Request Timeout", Some("px")));
                return Relayed::Done;
            }
            Some(ClientEvent::Response(response)) => {
                let status = response.status;
                if status == 100 {
                    continue;
                }
                if status == 503 && !provisional {
                    return Relayed::TryNext;
                }
                provisional |= status < 200;
                if (200..300).contains(&status) {
                    let tracked = lock(&node.calls).get(&call_id).cloned();
                    if let Some(call) = tracked {
                        node.writer
                            .answer_cdr(&call.cdr_id, now_ms(), answer_source(&response));
                        if let Some(line) = &call.line_id {
                            node.lines.in_call(line);
                        }
                    }
                    node.ctx.respond(key, upstream(response));
                    return Relayed::Done;
                }
                if status >= 300 {
                    if let Some(call) = release(node, &call_id) {
                        finish(node, &call, HangupCause::of_status(status)).await;
                    }
                    node.ctx.respond(key, upstream(response));
                    return Relayed::Done;
                }
                node.ctx.respond(key, upstream(response));
            }
        }
    }
}

/// Pops the Route entries that name us; returns the flow token of the last one.
fn pop_our_routes(node: &Node, request: &mut Request) -> (bool, Option<String>) {
    let (mut popped, mut token) = (false, None);
    while let Some(top) = request.headers.get("Route").map(str::to_owned) {
        let Some(uri) = NameAddr::parse(&top).ok().and_then(|r| r.parsed_uri()) else {
            break;
        };
        if !node.is_us(&uri) {
            break;
        }
        token = uri.param("ft").map(str::to_owned);
        request.headers.pop_first("Route");
        popped = true;
    }
    (popped, token)
}

/// Where an in-dialog request (or a 2xx ACK) goes: the next Route, or the flow
/// of our Record-Route entry facing the destination, or the Request-URI.
fn next_hop(node: &Node, request: &mut Request) -> Option<Flow> {
    let (popped, token) = pop_our_routes(node, request);
    if let Some(next) = request.headers.get("Route") {
        return NameAddr::parse(next)
            .ok()?
            .parsed_uri()
            .and_then(|u| node.flow_to_uri(&u));
    }
    if let Some(flow) = token.and_then(|t| node.flow_from_token(&t)) {
        return Some(flow);
    }
    let uri = Uri::parse(&request.uri).ok()?;
    if !popped && node.is_us(&uri) {
        return None;
    }
    node.flow_to_uri(&uri)
}

/// The request as forwarded inside a dialog, and where; or the refusal.
fn prepare_in_dialog(node: &Node, request: &Request) -> Result<(Request, Flow), (u16, &'static str)> {
    let mut out = request.clone();
    let flow = next_hop(node, &mut out).ok_or((481, "Call/Transaction Does Not Exist"))?;
    out.decrement_max_forwards().ok_or((483, "Too Many Hops"))?;
    out.headers.push_front("Via", &node.via(flow.kind));
    Ok((out, flow))
}

/// A request inside a dialog (BYE, re-INVITE, INFO, ...), forwarded statefully.
pub(crate) async fn in_dialog(node: Arc<Node>, key: ServerKey, request: Request) {
    let (fwd, out) = match prepare_in_dialog(&node, &request) {
        Ok(prepared) => prepared,
        Err((status, reason)) => return node.ctx.respond(&key, request.response(status, reason, None)),
    };
    let Some((_, mut events)) = node.ctx.send(fwd, out).await else {
        return;
    };
    while let Some(event) = events.recv().await {
        let response = match event {
            ClientEvent::Response(r) if r.status == 100 => continue,
            ClientEvent::Response(r) => upstream(r),
            ClientEvent::Timeout => request.response(408, "Request Timeout", None),
        };
        let last = response.status >= 200;
        if last && request.method == Method::Bye {
            end_dialog(&node, &request).await;
        }
        node.ctx.respond(&key, response);
        if last {
            break;
        }
    }
}

/// A BYE went through: the call's CDR is completed and its line released.
async fn end_dialog(node: &Node, bye: &Request) {
    let Some(call) = release(node, bye.call_id()) else {
        return;
    };
    // A BYE with the caller's From tag is the caller hanging up; any other came
    // from the called side (the line).
    let from_caller = bye
        .from()
        .is_some_and(|f| f.tag() == Some(call.caller_tag.as_str()));
    let cause = if from_caller {
        HangupCause::Normal
    } else {
        HangupCause::RemoteHangup
    };
    finish(node, &call, cause).await;
}

/// The ACK of a 2xx: forwarded without a transaction.
pub(crate) fn ack(node: &Node, request: &Request) {
    if let Ok((fwd, out)) = prepare_in_dialog(node, request) {
        node.ctx.send_stateless(Message::Request(fwd), out);
    }
}

/// A response that matched no transaction (a retransmitted 2xx): upstream by Via.
pub(crate) fn stray_response(node: &Node, response: Response) {
    let response = upstream(response);
    let Some(via) = response.headers.get("Via").and_then(|v| Via::parse(v).ok()) else {
        return;
    };
    let host = via
        .param("received")
        .map(str::to_owned)
        .unwrap_or(via.host.clone());
    let port = via.param("rport").and_then(|p| p.parse().ok()).or(via.port);
    let uri = Uri {
        scheme: "sip".into(),
        user: None,
        host,
        port,
        params: Vec::new(),
    };
    if via.transport == "UDP"
        && let Some(flow) = node.flow_to_uri(&uri)
    {
        node.ctx.send_stateless(Message::Response(response), flow);
    }
}
