//! A dialog (RFC 3261 s12): the peer-to-peer relationship an INVITE sets up,
//! named by its Call-ID and the two tags. It keeps what in-dialog requests are
//! built from — our and the peer's party headers, the two CSeq counters, the
//! remote target and the route set — and builds them with the Request-URI and
//! Route of s12.2.1.1 (loose routing, and strict routers' Request-URI swap), the
//! ACK of a 2xx with its INVITE's CSeq (s13.2.2.4), and checks the CSeq of what
//! the peer sends (s12.2.2: lower than the last one is out of order, 500).

use crate::message::{Headers, Method, NameAddr, Request, Response, Uri};

/// Identifies a dialog: Call-ID and the tags, ours first.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DialogId {
    /// Call-ID.
    pub call_id: String,
    /// Our tag (From of what we send, To of what we receive).
    pub local_tag: String,
    /// The peer's tag.
    pub remote_tag: String,
}

impl DialogId {
    /// The dialog a request from the peer is in: its To tag is ours, its From
    /// tag theirs; `None` outside a dialog (no To tag).
    pub fn of_request(request: &Request) -> Option<Self> {
        Some(Self::answering(request, request.to()?.tag()?))
    }

    /// The dialog we make by answering the peer's `request` with `local_tag`
    /// (an RFC 2543 peer's request without a From tag has an empty remote tag).
    pub fn answering(request: &Request, local_tag: &str) -> Self {
        Self {
            call_id: request.call_id().to_owned(),
            local_tag: local_tag.to_owned(),
            remote_tag: request
                .from()
                .and_then(|from| from.tag().map(str::to_owned))
                .unwrap_or_default(),
        }
    }

    /// The dialog a response to one of our requests is in: its From tag is
    /// ours, its To tag theirs; `None` without a To tag.
    pub fn of_response(response: &Response) -> Option<Self> {
        Some(Self {
            call_id: response.call_id().to_owned(),
            local_tag: response.from()?.tag()?.to_owned(),
            remote_tag: response.to()?.tag()?.to_owned(),
        })
    }
}

/// Early (after a provisional with a To tag) or confirmed (after the 2xx).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialogState {
    /// A 101-199 response with a tag made it.
    Early,
    /// A 2xx made it (or confirmed it).
    Confirmed,
}

/// Why a dialog cannot be made from these messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DialogError {
    /// The To tag that names the dialog is missing, or From or To do not parse.
    #[error("no To tag")]
    MissingTag,
    /// The CSeq does not parse.
    #[error("bad CSeq")]
    BadCSeq,
}

/// An in-dialog request whose CSeq is lower than the last one the peer sent
/// (RFC 3261 s12.2.2): answer it 500.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("CSeq {got} is lower than the dialog's {last}")]
pub struct OutOfOrder {
    /// The request's CSeq number.
    pub got: u32,
    /// The highest the peer sent before.
    pub last: u32,
}

/// One dialog (see the module comment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialog {
    id: DialogId,
    state: DialogState,
    /// Our party with our tag: the From of what we send.
    local_party: String,
    /// The peer's party with its tag: the To of what we send.
    remote_party: String,
    /// The CSeq of the last request we sent in the dialog.
    local_seq: u32,
    /// The highest CSeq the peer sent, once it sent one.
    remote_seq: Option<u32>,
    /// Where our requests go: the peer's Contact.
    remote_target: String,
    /// The proxies our requests pass (Route values, first hop first).
    route_set: Vec<String>,
}

/// The URI of a Contact header value, if it has a usable one.
fn contact_uri(headers: &Headers) -> Option<String> {
    let contact = NameAddr::parse(headers.get("Contact")?).ok()?;
    (contact.uri != "*").then_some(contact.uri)
}

impl Dialog {
    /// The dialog our `response` (a 101-199 with our To tag, or a 2xx) to the
    /// peer's `request` makes (RFC 3261 s12.1.1). Our first request in it will
    /// carry CSeq `local_seq + 1`. The remote target is the request's Contact
    /// (its Request-URI's sender when it has none).
    pub fn uas(request: &Request, response: &Response, local_seq: u32) -> Result<Self, DialogError> {
        let remote_seq = request.cseq().ok_or(DialogError::BadCSeq)?.number;
        let remote_party = request.headers.get("From").ok_or(DialogError::MissingTag)?;
        let local_party = response.headers.get("To").ok_or(DialogError::MissingTag)?;
        let local_tag = response.to().and_then(|to| to.tag().map(str::to_owned));
        let id = DialogId::answering(request, &local_tag.ok_or(DialogError::MissingTag)?);
        let remote_target = contact_uri(&request.headers)
            .or_else(|| request.from().map(|from| from.uri))
            .unwrap_or_default();
        Ok(Self {
            id,
            state: Self::state_of(response),
            local_party: local_party.to_owned(),
            remote_party: remote_party.to_owned(),
            local_seq,
            remote_seq: Some(remote_seq),
            remote_target,
            route_set: request
                .headers
                .get_all("Record-Route")
                .into_iter()
                .map(str::to_owned)
                .collect(),
        })
    }

    /// The dialog the peer's `response` (a 101-199 with a To tag, or a 2xx) to
    /// our `request` makes (RFC 3261 s12.1.2): route set from its Record-Route in
    /// reverse, remote target from its Contact (our Request-URI when it has none).
    pub fn uac(request: &Request, response: &Response) -> Result<Self, DialogError> {
        let id = DialogId::of_response(response).ok_or(DialogError::MissingTag)?;
        let local_seq = request.cseq().ok_or(DialogError::BadCSeq)?.number;
        let mut dialog = Self {
            id,
            state: DialogState::Early,
            local_party: request.headers.get("From").unwrap_or_default().to_owned(),
            remote_party: String::new(),
            local_seq,
            remote_seq: None,
            remote_target: request.uri.clone(),
            route_set: Vec::new(),
        };
        dialog.update_from(response);
        Ok(dialog)
    }

    fn state_of(response: &Response) -> DialogState {
        if (200..300).contains(&response.status) {
            DialogState::Confirmed
        } else {
            DialogState::Early
        }
    }

    /// UAC: what the peer's response says of the dialog (route set, target,
    /// its party, early or confirmed).
    fn update_from(&mut self, response: &Response) {
        self.state = Self::state_of(response);
        self.remote_party = response.headers.get("To").unwrap_or_default().to_owned();
        if let Some(target) = contact_uri(&response.headers) {
            self.remote_target = target;
        }
        self.route_set = response
            .headers
            .get_all("Record-Route")
            .into_iter()
            .rev()
            .map(str::to_owned)
            .collect();
    }

    /// UAC: the 2xx for an early dialog came; it is confirmed and its route set
    /// recomputed from the 2xx (RFC 3261 s13.2.2.4).
    pub fn confirm(&mut self, response: &Response) {
        self.update_from(response);
    }

    /// A target refresh (a re-INVITE or UPDATE, or the 2xx to ours): the peer's
    /// new Contact is where our requests go from now on (RFC 3261 s12.2).
    pub fn refresh_target(&mut self, headers: &Headers) {
        if let Some(target) = contact_uri(headers) {
            self.remote_target = target;
        }
    }

    /// The dialog's id.
    pub fn id(&self) -> &DialogId {
        &self.id
    }

    /// Early or confirmed.
    pub fn state(&self) -> DialogState {
        self.state
    }

    /// Where our requests go, before routing.
    pub fn remote_target(&self) -> &str {
        &self.remote_target
    }

    /// The Route values our requests carry, first hop first.
    pub fn route_set(&self) -> &[String] {
        &self.route_set
    }

    /// The URI of the next hop: the first route, or the remote target.
    pub fn next_hop(&self) -> Option<Uri> {
        let first = match self.route_set.first() {
            Some(route) => NameAddr::parse(route).ok()?.uri,
            None => self.remote_target.clone(),
        };
        Uri::parse(&first).ok()
    }

    /// A new request `method` in the dialog (not ACK: see [`Dialog::ack`]) with
    /// the next CSeq: Request-URI and Route per RFC 3261 s12.2.1.1, From, To,
    /// Call-ID, Max-Forwards. The endpoint adds our Via when it sends it.
    pub fn request(&mut self, method: Method) -> Request {
        self.local_seq += 1;
        let number = self.local_seq;
        self.build(method, number)
    }

    /// The ACK of the 2xx to our INVITE with CSeq `invite_cseq` (RFC 3261
    /// s13.2.2.4: the INVITE's CSeq number, method ACK).
    pub fn ack(&self, invite_cseq: u32) -> Request {
        self.build(Method::Ack, invite_cseq)
    }

    fn build(&self, method: Method, cseq: u32) -> Request {
        let first = self.route_set.first().and_then(|r| NameAddr::parse(r).ok());
        let strict = first
            .as_ref()
            .is_some_and(|r| Uri::parse(&r.uri).is_ok_and(|u| u.param("lr").is_none()));
        let mut request = match (&first, strict) {
            // A strict router: it gets the Request-URI, the remote target goes last.
            (Some(router), true) => {
                let mut request = Request::new(method.clone(), &router.uri);
                for route in &self.route_set[1..] {
                    request.headers.push("Route", route);
                }
                request
                    .headers
                    .push("Route", &format!("<{}>", self.remote_target));
                request
            }
            _ => {
                let mut request = Request::new(method.clone(), &self.remote_target);
                for route in &self.route_set {
                    request.headers.push("Route", route);
                }
                request
            }
        };
        request.headers.push("Max-Forwards", "70");
        request.headers.push("From", &self.local_party);
        request.headers.push("To", &self.remote_party);
        request.headers.push("Call-ID", &self.id.call_id);
        request.headers.push("CSeq", &format!("{cseq} {method}"));
        request
    }

    /// Checks the CSeq of the peer's in-dialog `request` (not an ACK) and
    /// remembers it (RFC 3261 s12.2.2).
    pub fn check_remote_cseq(&mut self, request: &Request) -> Result<(), OutOfOrder> {
        let Some(got) = request.cseq().map(|c| c.number) else {
            // The endpoint refuses requests without a valid CSeq before they get here.
            return Ok(());
        };
        match self.remote_seq {
            Some(last) if got < last => Err(OutOfOrder { got, last }),
            _ => {
                self.remote_seq = Some(got);
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Message, parse};

    fn request(text: &str) -> Request {
        match parse(text.replace('\n', "\r\n").as_bytes()).unwrap() {
            Message::Request(r) => r,
            Message::Response(_) => unreachable!("a request"),
        }
    }

    fn response(text: &str) -> Response {
        match parse(text.replace('\n', "\r\n").as_bytes()).unwrap() {
            Message::Response(r) => r,
            Message::Request(_) => unreachable!("a response"),
        }
    }

    const INVITE: &str = "INVITE sip:bob@b.example SIP/2.0
Via: SIP/2.0/UDP p2.example;branch=z9hG4bKp2
Via: SIP/2.0/UDP a.example;branch=z9hG4bKa
Record-Route: <sip:p2.example;lr>
Record-Route: <sip:p1.example;lr>
From: Alice <sip:alice@a.example>;tag=a1
To: Bob <sip:bob@b.example>
Call-ID: c1
CSeq: 7 INVITE
Contact: <sip:alice@192.0.2.1:5062>
Max-Forwards: 68

";

    const OK: &str = "SIP/2.0 200 OK
Via: SIP/2.0/UDP a.example;branch=z9hG4bKa
Record-Route: <sip:p2.example;lr>
Record-Route: <sip:p1.example;lr>
From: Alice <sip:alice@a.example>;tag=a1
To: Bob <sip:bob@b.example>;tag=b1
Call-ID: c1
CSeq: 7 INVITE
Contact: <sip:bob@192.0.2.2>

";

    #[test]
    fn the_uas_keeps_the_route_set_in_order_the_uac_reverses_it() {
        let invite = request(INVITE);
        let ok = response(OK);
        let mut uas = Dialog::uas(&invite, &ok, 100).unwrap();
        assert_eq!(uas.id().local_tag, "b1");
        assert_eq!(uas.state(), DialogState::Confirmed);
        assert_eq!(uas.route_set(), ["<sip:p2.example;lr>", "<sip:p1.example;lr>"]);
        let bye = uas.request(Method::Bye);
        assert_eq!(bye.uri, "sip:alice@192.0.2.1:5062");
        assert_eq!(
            bye.headers.get_all("Route"),
            ["<sip:p2.example;lr>", "<sip:p1.example;lr>"]
        );
        assert_eq!(bye.headers.get("From"), Some("Bob <sip:bob@b.example>;tag=b1"));
        assert_eq!(bye.headers.get("To"), Some("Alice <sip:alice@a.example>;tag=a1"));
        assert_eq!(bye.headers.get("CSeq"), Some("101 BYE"));
        assert_eq!(uas.next_hop().unwrap().host, "p2.example");

        let mut uac = Dialog::uac(&invite, &ok).unwrap();
        assert_eq!(*uac.id(), DialogId::of_response(&ok).unwrap());
        assert_eq!(uac.route_set(), ["<sip:p1.example;lr>", "<sip:p2.example;lr>"]);
        let ack = uac.ack(7);
        assert_eq!(
            (ack.uri.as_str(), ack.headers.get("CSeq")),
            ("sip:bob@192.0.2.2", Some("7 ACK"))
        );
        let info = uac.request(Method::Info);
        assert_eq!(info.headers.get("CSeq"), Some("8 INFO"));
        assert_eq!(info.headers.get("To"), Some("Bob <sip:bob@b.example>;tag=b1"));
    }

    #[test]
    fn a_strict_router_gets_the_request_uri() {
        let invite = request(&INVITE.replace("<sip:p2.example;lr>", "<sip:p2.example>"));
        let mut uas = Dialog::uas(&invite, &response(OK), 1).unwrap();
        let bye = uas.request(Method::Bye);
        assert_eq!(bye.uri, "sip:p2.example");
        assert_eq!(
            bye.headers.get_all("Route"),
            ["<sip:p1.example;lr>", "<sip:alice@192.0.2.1:5062>"]
        );
    }

    #[test]
    fn an_early_dialog_is_confirmed_by_the_2xx_with_its_route_set() {
        let invite = request(INVITE);
        let ringing = response(
            &OK.replace("200 OK", "180 Ringing")
                .replace("Record-Route: <sip:p1.example;lr>\n", ""),
        );
        let mut uac = Dialog::uac(&invite, &ringing).unwrap();
        assert_eq!(uac.state(), DialogState::Early);
        assert_eq!(uac.route_set().len(), 1);
        uac.confirm(&response(OK));
        assert_eq!(uac.state(), DialogState::Confirmed);
        assert_eq!(uac.route_set().len(), 2);
        let no_tag = response(&OK.replace(";tag=b1", ""));
        assert_eq!(Dialog::uac(&invite, &no_tag), Err(DialogError::MissingTag));
    }

    #[test]
    fn a_lower_cseq_is_out_of_order() {
        let mut uas = Dialog::uas(&request(INVITE), &response(OK), 1).unwrap();
        let bye = |n: u32| {
            request(&format!(
                "BYE sip:bob@192.0.2.2 SIP/2.0\nVia: SIP/2.0/UDP a.example;branch=z9hG4bK{n}\n\
                 From: <sip:alice@a.example>;tag=a1\nTo: <sip:bob@b.example>;tag=b1\nCall-ID: c1\n\
                 CSeq: {n} BYE\n\n"
            ))
        };
        assert_eq!(
            uas.check_remote_cseq(&bye(6)),
            Err(OutOfOrder { got: 6, last: 7 })
        );
        assert_eq!(uas.check_remote_cseq(&bye(9)), Ok(()));
        assert_eq!(
            uas.check_remote_cseq(&bye(8)),
            Err(OutOfOrder { got: 8, last: 9 })
        );
        let refresh = request(&INVITE.replace("192.0.2.1:5062", "192.0.2.9"));
        uas.refresh_target(&refresh.headers);
        assert_eq!(uas.remote_target(), "sip:alice@192.0.2.9");
    }
}
