//! The UAC side of an INVITE session before its 2xx (RFC 3261 s13.2): the
//! INVITE built from an [`Outgoing`] (our From tag, a fresh Call-ID, a Contact
//! at our address) and sent through the endpoint, the early dialog a provisional
//! with a To tag makes, and whether we cancelled it.

use std::time::Instant;

use super::dialog::Dialog;
use super::reply::Outgoing;
use crate::endpoint::Endpoint;
use crate::message::{Method, Request, Response};
use crate::transaction::ClientKey;
use crate::transport::Flow;

/// Our INVITE, before its 2xx.
#[derive(Debug)]
pub(super) struct Calling {
    /// Its client transaction.
    pub(super) key: ClientKey,
    /// The INVITE as we built it (the endpoint put its Via on the copy it sent).
    pub(super) invite: Request,
    /// Where it went.
    pub(super) flow: Flow,
    /// The early dialog of the last provisional with a To tag.
    pub(super) early: Option<Dialog>,
    /// We sent CANCEL.
    pub(super) cancelled: bool,
}

impl Calling {
    /// Builds the INVITE for `call` and sends it at `now`.
    pub(super) fn start(now: Instant, endpoint: &mut Endpoint, call: Outgoing) -> Self {
        let mut invite = Request::new(Method::Invite, &call.target);
        let tag = endpoint.new_tag();
        let call_id = endpoint.new_call_id();
        let cseq = endpoint.random_below(1 << 16);
        let contact = endpoint.uri(call.flow.kind, call.contact_user.as_deref(), "");
        invite.headers.push("Max-Forwards", "70");
        invite.headers.push("From", &format!("<{}>;tag={tag}", call.from));
        invite.headers.push("To", &format!("<{}>", call.to));
        invite.headers.push("Call-ID", &call_id);
        invite.headers.push("CSeq", &format!("{cseq} INVITE"));
        invite.headers.push("Contact", &format!("<{contact}>"));
        call.extra.apply(&mut invite.headers, &mut invite.body);
        let key = endpoint.send_request(now, invite.clone(), call.flow);
        Self {
            key,
            invite,
            flow: call.flow,
            early: None,
            cancelled: false,
        }
    }

    /// The INVITE's CSeq number (its ACK's).
    pub(super) fn cseq(&self) -> u32 {
        self.invite.cseq().map_or(0, |c| c.number)
    }

    /// A provisional response: the early dialog it makes, if it has a To tag
    /// (RFC 3261 s12.1.2), replaces the one before.
    pub(super) fn on_provisional(&mut self, response: &Response) -> Option<&Dialog> {
        if response.status == 100 {
            return None;
        }
        let dialog = Dialog::uac(&self.invite, response).ok()?;
        Some(self.early.insert(dialog))
    }

    /// The dialog the 2xx `ok` confirms: the early one it names, or a new one.
    pub(super) fn confirmed_by(&mut self, ok: &Response) -> Option<Dialog> {
        match self.early.take() {
            Some(mut early) if Some(early.id().clone()) == super::dialog::DialogId::of_response(ok) => {
                early.confirm(ok);
                Some(early)
            }
            _ => Dialog::uac(&self.invite, ok).ok(),
        }
    }
}
