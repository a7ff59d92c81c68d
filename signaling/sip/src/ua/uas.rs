//! The UAS side of an INVITE session (RFC 3261 s13.3): the INVITE waiting for
//! our answer ([`Answering`]: our To tag and Contact, the responses built from
//! the application's [`Reply`]), and once the 2xx went out the wait for its ACK
//! ([`AckWait`], s13.3.1.4): the 2xx again at T1, 2*T1, ... capped at T2, given
//! up 64*T1 after the first.

use std::time::{Duration, Instant};

use super::dialog::DialogId;
use super::reply::Reply;
use crate::endpoint::Endpoint;
use crate::message::{Request, Response};
use crate::transaction::{ServerKey, Timers};
use crate::transport::Flow;

/// An INVITE we have not answered finally yet.
#[derive(Debug)]
pub(super) struct Answering {
    /// Its server transaction.
    pub(super) key: ServerKey,
    /// The INVITE.
    pub(super) invite: Request,
    /// Where it came from (responses and the 2xx retransmissions go back there).
    pub(super) flow: Flow,
    /// Our To tag.
    tag: String,
    /// Our Contact: the user the INVITE was for, at our address.
    contact: String,
}

impl Answering {
    pub(super) fn new(key: ServerKey, invite: Request, flow: Flow, endpoint: &mut Endpoint) -> Self {
        let user = invite.request_uri().and_then(|uri| uri.user);
        let contact = format!("<{}>", endpoint.uri(flow.kind, user.as_deref(), ""));
        Self {
            key,
            tag: endpoint.new_tag(),
            invite,
            flow,
            contact,
        }
    }

    /// The early or confirmed dialog our responses make.
    pub(super) fn dialog_id(&self) -> DialogId {
        DialogId::answering(&self.invite, &self.tag)
    }

    /// Our response with `reply`'s status, headers and body: our To tag on all
    /// but a 100; on those that make a dialog (101-299) the Record-Route copied
    /// and our Contact (RFC 3261 s12.1.1).
    pub(super) fn response(&self, reply: &Reply) -> Response {
        let status = reply.status;
        let tag = (status > 100).then_some(self.tag.as_str());
        let mut response = self.invite.response(status, &reply.reason, tag);
        if (101..300).contains(&status) {
            for route in self.invite.headers.get_all("Record-Route") {
                response.headers.push("Record-Route", route);
            }
            response.headers.push("Contact", &self.contact);
        }
        reply.apply(&mut response.headers, &mut response.body);
        response
    }
}

/// What the 2xx wait asks for at a deadline.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum AckTimer {
    /// Send the 2xx again.
    Resend,
    /// 64*T1 without an ACK: stop and end the session.
    GiveUp,
}

/// Our 2xx, waiting for its ACK (RFC 3261 s13.3.1.4).
#[derive(Debug)]
pub(super) struct AckWait {
    /// The 2xx.
    pub(super) ok: Response,
    /// The INVITE's CSeq number, which its ACK carries.
    cseq: u32,
    /// When the 2xx goes again, and the interval that got us there (T1,
    /// doubling up to T2).
    resend_at: Instant,
    interval: Duration,
    /// 64*T1 after the first 2xx.
    give_up_at: Instant,
    t2: Duration,
}

impl AckWait {
    /// The 2xx `ok` to the INVITE with CSeq `cseq` went out at `now`.
    pub(super) fn new(now: Instant, ok: Response, cseq: u32, timers: Timers) -> Self {
        Self {
            ok,
            cseq,
            resend_at: now + timers.t1,
            interval: timers.t1,
            give_up_at: now + timers.t1 * 64,
            t2: timers.t2,
        }
    }

    /// Whether `ack` acknowledges our 2xx.
    pub(super) fn is_acked_by(&self, ack: &Request) -> bool {
        ack.cseq().is_some_and(|c| c.number == self.cseq)
    }

    pub(super) fn deadline(&self) -> Instant {
        self.resend_at.min(self.give_up_at)
    }

    /// Time passes; what is due at `now`, if anything.
    pub(super) fn on_timer(&mut self, now: Instant) -> Option<AckTimer> {
        if now >= self.give_up_at {
            return Some(AckTimer::GiveUp);
        }
        if now < self.resend_at {
            return None;
        }
        self.interval = (self.interval * 2).min(self.t2);
        self.resend_at = now + self.interval;
        Some(AckTimer::Resend)
    }
}
