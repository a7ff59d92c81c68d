//! Answered calls (dialog tracking for CDRs, lines and limits) and what travels
//! inside their dialogs: in-dialog requests (BYE, re-INVITE, INFO, ...) are
//! forwarded statefully along the Route set, or down the flow named by our own
//! Record-Route entry's token; the ACK of a 2xx goes without a transaction; a 2xx
//! retransmitted after its transaction ended goes upstream by the next Via, and
//! only when the top Via is ours. A BYE's final response ends the call: its CDR
//! (answered upstream once committed), its line, its limit slot.

use std::collections::HashMap;
use std::time::Instant;

use offhook_directory::HangupCause;
use offhook_sip::message::{Method, NameAddr, Request, Response, Uri, Via};
use offhook_sip::transaction::{ClientKey, ServerKey};
use offhook_sip::transport::Flow;

use super::directory_io::Change;
use super::flows;
use super::invite::upstream;
use super::{Node, Owner, Reply};

/// A call the proxy tracks from its 2xx to its BYE.
#[derive(Debug, Clone)]
pub(crate) struct Tracked {
    pub cdr: String,
    pub line: Option<String>,
    pub limit_key: String,
    /// The caller's From tag (a BYE with it is the caller hanging up).
    pub caller_tag: String,
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
}

impl Dialogs {
    pub(crate) fn track(&mut self, call_id: &str, call: Tracked) {
        self.calls.insert(call_id.to_owned(), call);
    }

    pub(crate) fn len(&self) -> usize {
        self.calls.len()
    }
}

impl Node {
    /// Pops the Route entries that name us; the flow token of the last one.
    fn pop_our_routes(&self, request: &mut Request) -> (bool, Option<String>) {
        let (mut popped, mut token) = (false, None);
        while let Some(top) = request.headers.get("Route").map(str::to_owned) {
            let Some(uri) = NameAddr::parse(&top).ok().and_then(|r| r.parsed_uri()) else {
                break;
            };
            if !self.endpoint.is_us(&uri) {
                break;
            }
            token = uri.param("ft").map(str::to_owned);
            request.headers.pop_first("Route");
            popped = true;
        }
        (popped, token)
    }

    /// Where an in-dialog request (or a 2xx ACK) goes: the next Route, or the
    /// flow of our Record-Route entry facing the destination, or the Request-URI.
    fn next_hop(&self, request: &mut Request) -> Option<Flow> {
        let (popped, token) = self.pop_our_routes(request);
        if let Some(next) = request.headers.get("Route") {
            let uri = NameAddr::parse(next).ok()?.parsed_uri()?;
            return flows::to_uri(&self.endpoint, &uri);
        }
        if let Some(flow) = token.and_then(|t| self.connections.named_by_token(&self.endpoint, &t)) {
            return Some(flow);
        }
        let uri = Uri::parse(&request.uri).ok()?;
        if !popped && self.endpoint.is_us(&uri) {
            return None;
        }
        flows::to_uri(&self.endpoint, &uri)
    }

    /// The request as forwarded inside a dialog, and where; or the refusal.
    fn prepare_in_dialog(&self, request: &Request) -> Result<(Request, Flow), Reply> {
        let mut out = request.clone();
        let flow = self
            .next_hop(&mut out)
            .ok_or_else(|| Reply::new(481, "Call/Transaction Does Not Exist"))?;
        out.decrement_max_forwards()
            .ok_or_else(|| Reply::new(483, "Too Many Hops"))?;
        Ok((out, flow))
    }

    /// A request inside a dialog, forwarded statefully.
    pub(super) fn forward_in_dialog(&mut self, now: Instant, key: ServerKey, request: Request) {
        match self.prepare_in_dialog(&request) {
            Ok((out, flow)) => {
                let client = self.endpoint.send_request(now, out, flow);
                self.dialogs
                    .forwards
                    .insert(client, Forward { server: key, request });
            }
            Err(reply) => self.reply(now, &key, &request, reply),
        }
    }

    /// A response on a forwarded in-dialog request; false when it is not one.
    pub(super) fn dialog_response(
        &mut self,
        now: Instant,
        client: &ClientKey,
        response: &Result<Response, u16>,
    ) -> bool {
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
            self.end_dialog(now, &forward.server, &forward.request, response);
        } else {
            self.respond(now, &forward.server, response);
        }
        true
    }

    /// A BYE went through: the call's CDR ends, then its answer goes upstream.
    fn end_dialog(&mut self, now: Instant, server: &ServerKey, bye: &Request, response: Response) {
        let Some(call) = self.dialogs.calls.remove(bye.call_id()) else {
            return self.respond(now, server, response);
        };
        self.limiter.end(&call.limit_key);
        if let Some(line) = &call.line {
            self.free_line(line);
        }
        // A BYE with the caller's From tag is the caller hanging up; any other
        // came from the called side (the line).
        let from_caller = bye
            .from()
            .is_some_and(|f| f.tag() == Some(call.caller_tag.as_str()));
        let cause = if from_caller {
            HangupCause::Normal
        } else {
            HangupCause::RemoteHangup
        };
        let change = Change::EndCdr {
            cdr: call.cdr,
            at: self.wall_ms(now),
            cause,
        };
        self.change(change, Owner::Answer(server.clone(), Box::new(response)));
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
