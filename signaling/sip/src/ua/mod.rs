//! The user-agent layer (RFC 3261 s12-s14) on top of the [`Endpoint`]: what
//! every user agent of offhook does the same way — the media relay answering
//! calls and registering its lines, the tests' user agents and the load
//! generator placing calls. [`UserAgent`] owns the endpoint and, sans-IO like
//! it, takes bytes and the time and hands up [`UaEvent`]s per INVITE session
//! ([`SessionId`]) and per registration ([`RegistrationId`]):
//!
//! - [`dialog`]: dialogs with their route set and CSeq counters; in-dialog
//!   requests built with the right Request-URI and Route.
//! - UAS: 100 Trying at once, provisional responses (those that make
//!   an early dialog carry a Contact, s12.1.1), the 2xx retransmitted from T1
//!   doubling to T2 until its ACK, given up after 64*T1 (s13.3.1.4:
//!   [`UaEvent::AckTimeout`], the application ends the call with a BYE); a
//!   CANCEL answered 487.
//! - UAC: the INVITE, provisional and final responses, the ACK of
//!   each 2xx from the dialog (s13.2.2.4), CANCEL before the answer, and the
//!   transaction's errors as statuses (408 for Timer B, 503 for a transport
//!   failure, s8.1.3.1).
//! - Both: BYE and other in-dialog requests; the peer's are CSeq-checked (500
//!   when out of order) and answered 481 when they name no dialog.
//! - Registration client: REGISTER per contact with digest
//!   answers, refresh before expiry, retry with backoff, unregister.
//!
//! The application answers each INVITE once, through [`UserAgent::accept`] or
//! [`UserAgent::reject`]; every session ends with one [`UaEvent::Terminated`].
//! Tags, Call-IDs and branches come from the endpoint's seeded RNG.

mod agent;
pub mod dialog;
mod register;
mod session;
mod uac;
mod uas;

use std::fmt;
use std::time::Duration;

pub use agent::UserAgent;
pub use register::RegistrationSpec;

use crate::message::{Method, Request, Response};
use crate::transaction::{ServerKey, TransactionError};
use crate::transport::Flow;

/// One INVITE session of a [`UserAgent`], from its INVITE to its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(u64);

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s{}", self.0)
    }
}

/// One registered contact of a [`UserAgent`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RegistrationId(u64);

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

/// A message body with its type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Body {
    /// `Content-Type`.
    pub content_type: String,
    /// The bytes.
    pub bytes: Vec<u8>,
}

impl Body {
    /// An SDP body.
    pub fn sdp(sdp: impl Into<String>) -> Self {
        Self {
            content_type: "application/sdp".into(),
            bytes: sdp.into().into_bytes(),
        }
    }
}

/// What the application puts into a response or request the layer builds:
/// status and reason (responses), extra headers, a body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reply {
    /// Status code (responses only).
    pub status: u16,
    /// Reason phrase (responses only).
    pub reason: String,
    /// Extra headers, in order.
    pub headers: Vec<(String, String)>,
    /// A body.
    pub body: Option<Body>,
}

impl Reply {
    /// A response with this status and reason.
    pub fn new(status: u16, reason: &str) -> Self {
        Self {
            status,
            reason: reason.to_owned(),
            ..Self::default()
        }
    }

    /// With one more header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// With a body.
    pub fn body(mut self, body: Body) -> Self {
        self.body = Some(body);
        self
    }

    /// Adds the headers and body to `headers`/`body` of a message.
    fn apply(&self, headers: &mut crate::message::Headers, body: &mut Vec<u8>) {
        for (name, value) in &self.headers {
            headers.push(name, value);
        }
        if let Some(b) = &self.body {
            headers.push("Content-Type", &b.content_type);
            body.clone_from(&b.bytes);
        }
    }
}

/// A call to place ([`UserAgent::invite`]).
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// The Request-URI.
    pub target: String,
    /// Our address of record (From, without tag).
    pub from: String,
    /// The callee's (To).
    pub to: String,
    /// The user part of our Contact.
    pub contact_user: Option<String>,
    /// Where the INVITE goes first (an outbound proxy).
    pub flow: Flow,
    /// Extra headers and the offer (no status).
    pub extra: Reply,
}

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// We sent BYE; its answer, if one came.
    ByeSent(Option<Response>),
    /// The peer sent BYE and we answered it 2xx.
    ByeReceived,
    /// UAS: we answered the INVITE with this non-2xx status.
    Rejected(u16),
    /// UAS: the caller cancelled before our answer (answered 487). UAC: we did.
    Cancelled,
    /// UAC: the INVITE failed with this status: the final response, or 408
    /// (no answer in time) or 503 (the transport failed) without one.
    Failed {
        /// The status.
        status: u16,
        /// The response, when one came.
        response: Option<Response>,
    },
}

/// What the user-agent layer hands up.
#[derive(Debug)]
pub enum UaEvent {
    /// A new INVITE; 100 Trying is sent. Answer it once with
    /// [`UserAgent::accept`] or [`UserAgent::reject`] (after
    /// [`UserAgent::provisional`] responses, if any).
    Invite {
        /// Its session.
        session: SessionId,
        /// The INVITE.
        request: Request,
        /// Where it came from.
        flow: Flow,
    },
    /// A request outside any dialog that is not an INVITE (OPTIONS, MESSAGE,
    /// ...): answer it with [`UserAgent::respond`].
    Request {
        /// Its server transaction.
        key: ServerKey,
        /// The request.
        request: Request,
        /// Where it came from.
        flow: Flow,
    },
    /// A request in the dialog of `session` (BYE, INFO, re-INVITE, ...), its
    /// CSeq in order: answer it with [`UserAgent::respond`]; a 2xx to a BYE
    /// ends the session.
    InDialog {
        /// The session.
        session: SessionId,
        /// Its server transaction.
        key: ServerKey,
        /// The request.
        request: Request,
    },
    /// UAS: the ACK of our 2xx came.
    Confirmed {
        /// The session.
        session: SessionId,
    },
    /// UAS: no ACK for our 2xx within 64*T1 (RFC 3261 s13.3.1.4): the session
    /// should end, with [`UserAgent::bye`].
    AckTimeout {
        /// The session.
        session: SessionId,
    },
    /// UAC: a provisional response.
    Progress {
        /// The session.
        session: SessionId,
        /// The response.
        response: Response,
    },
    /// UAC: the 2xx; its ACK is sent.
    Answered {
        /// The session.
        session: SessionId,
        /// The response.
        response: Response,
    },
    /// The final answer to a request we sent in the dialog of `session`, or
    /// 408/503 without a response.
    InDialogResponse {
        /// The session.
        session: SessionId,
        /// The request's method.
        method: Method,
        /// The status.
        status: u16,
        /// The response, when one came.
        response: Option<Response>,
    },
    /// The session is over; its id is forgotten.
    Terminated {
        /// The session.
        session: SessionId,
        /// How.
        end: End,
    },
    /// The registration is in place until `expires` from now.
    Registered {
        /// The registration.
        registration: RegistrationId,
        /// The lifetime the registrar granted.
        expires: Duration,
    },
    /// The registrar refused the registration (or did not answer: 408, or the
    /// transport failed: 503); it is tried again in `retry_in`.
    RegistrationFailed {
        /// The registration.
        registration: RegistrationId,
        /// The status.
        status: u16,
        /// When the next attempt goes out.
        retry_in: Duration,
    },
    /// The contact is unregistered and the registration forgotten.
    Unregistered {
        /// The registration.
        registration: RegistrationId,
    },
    /// A stream connection closed (its dialogs may be unreachable now).
    ConnectionClosed {
        /// The flow.
        flow: Flow,
    },
}

/// Why the application's call on the layer was refused (misuse by the caller).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UaError {
    /// No such session (it ended, or never was).
    #[error("no session {0}")]
    NoSession(SessionId),
    /// No such registration.
    #[error("no such registration")]
    NoRegistration,
    /// The session is not in a state that allows this.
    #[error("session {session}: {what}")]
    WrongState {
        /// The session.
        session: SessionId,
        /// What was asked.
        what: &'static str,
    },
    /// A status code that does not fit the call (e.g. a 2xx to reject).
    #[error("status {0} does not fit")]
    BadStatus(u16),
    /// The transaction layer refused.
    #[error(transparent)]
    Transaction(#[from] TransactionError),
}

#[cfg(test)]
mod tests;
