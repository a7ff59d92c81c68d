//! One INVITE session as the user-agent layer keeps it: before the final answer
//! (UAS [`Answering`], UAC [`Calling`]) or with its dialog up ([`Established`]:
//! the UAS's wait for the ACK of its 2xx, the UAC's ACK sent again for each 2xx
//! retransmission, our BYE once sent). In-dialog requests go to the dialog's
//! next hop: along the connection it was set up on, or on UDP to the first
//! route's (or the remote target's) address when that is an IP address, else
//! back where the dialog came from.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use super::dialog::Dialog;
use super::reply::Reply;
use super::uac::Calling;
use super::uas::{AckWait, Answering};
use crate::endpoint::Endpoint;
use crate::message::{Method, Request, Uri};
use crate::transaction::ClientKey;
use crate::transport::Flow;

/// A session in one of its phases.
#[derive(Debug)]
pub(super) enum Session {
    /// UAS: the INVITE waits for our final answer.
    Answering(Answering),
    /// UAC: our INVITE waits for its final answer.
    Calling(Calling),
    /// The 2xx went one way or the other: the dialog is up.
    Established(Established),
}

/// How a session whose BYE went out ends once the BYE is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ending {
    /// A BYE of the application's.
    Bye,
    /// The BYE after a 2xx that crossed our CANCEL.
    Cancel,
}

/// A session with its dialog up.
#[derive(Debug)]
pub(super) struct Established {
    pub(super) dialog: Dialog,
    /// The flow the dialog was set up on.
    pub(super) flow: Flow,
    /// UAS: our 2xx until its ACK comes.
    pub(super) ack_wait: Option<AckWait>,
    /// UAC: the ACK of the peer's 2xx.
    pub(super) ack: Option<Request>,
    /// Our BYE went out.
    pub(super) ending: Option<Ending>,
}

impl Session {
    /// The dialog, once there is one on our side's books.
    pub(super) fn dialog_mut(&mut self) -> Option<&mut Dialog> {
        match self {
            Self::Answering(_) => None,
            Self::Calling(c) => c.early.as_mut(),
            Self::Established(e) => Some(&mut e.dialog),
        }
    }

    /// The Call-ID.
    pub(super) fn call_id(&self) -> &str {
        match self {
            Self::Answering(a) => a.invite.call_id(),
            Self::Calling(c) => c.invite.call_id(),
            Self::Established(e) => &e.dialog.id().call_id,
        }
    }

    /// The next deadline of the session (the 2xx wait).
    pub(super) fn deadline(&self) -> Option<Instant> {
        match self {
            Self::Established(Established {
                ack_wait: Some(wait), ..
            }) => Some(wait.deadline()),
            _ => None,
        }
    }
}

/// The address a SIP URI names, when its host is an IP address (a name would
/// need DNS, which the relay and the tests' user agents do without).
fn uri_address(uri: &Uri) -> Option<SocketAddr> {
    let ip: IpAddr = match uri.host.trim_matches(['[', ']']) {
        "localhost" => IpAddr::from([127, 0, 0, 1]),
        host => host.parse().ok()?,
    };
    let default = if uri.scheme == "sips" { 5061 } else { 5060 };
    Some(SocketAddr::new(ip, uri.port.unwrap_or(default)))
}

impl Established {
    /// Where in-dialog requests go (see the module comment).
    fn next_hop(&self) -> Flow {
        if self.flow.conn.is_some() {
            return self.flow;
        }
        match self.dialog.next_hop().as_ref().and_then(uri_address) {
            Some(remote) => Flow { remote, ..self.flow },
            None => self.flow,
        }
    }

    /// Sends a request `method` in the dialog with `extra` at `now`.
    pub(super) fn send(
        &mut self,
        now: Instant,
        endpoint: &mut Endpoint,
        method: Method,
        extra: &Reply,
    ) -> ClientKey {
        let mut request = self.dialog.request(method);
        extra.apply(&mut request.headers, &mut request.body);
        let flow = self.next_hop();
        endpoint.send_request(now, request, flow)
    }

    /// UAC: sends (again) the ACK of the peer's 2xx.
    pub(super) fn send_ack(&self, endpoint: &mut Endpoint) {
        if let Some(ack) = &self.ack {
            endpoint.send_stateless_request(ack.clone(), self.next_hop());
        }
    }
}
