//! What the user-agent layer hands up and what it refuses: the ids of its
//! sessions and registrations, [`UaEvent`], how a session ends ([`End`]), and
//! [`UaError`] for calls the application should not have made.

use std::fmt;
use std::time::Duration;

use crate::message::{Method, Request, Response};
use crate::transaction::{ServerKey, TransactionError};
use crate::transport::Flow;

/// One INVITE session of a [`super::UserAgent`], from its INVITE to its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub(super) u64);

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s{}", self.0)
    }
}

/// One registered contact of a [`super::UserAgent`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RegistrationId(pub(super) u64);

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
    /// [`super::UserAgent::accept`] or [`super::UserAgent::reject`] (after
    /// [`super::UserAgent::provisional`] responses, if any).
    Invite {
        /// Its session.
        session: SessionId,
        /// The INVITE.
        request: Request,
        /// Where it came from.
        flow: Flow,
    },
    /// A request outside any dialog that is not an INVITE (OPTIONS, MESSAGE,
    /// ...): answer it with [`super::UserAgent::respond`].
    Request {
        /// Its server transaction.
        key: ServerKey,
        /// The request.
        request: Request,
        /// Where it came from.
        flow: Flow,
    },
    /// A request in the dialog of `session` (BYE, INFO, re-INVITE, ...), its
    /// CSeq in order: answer it with [`super::UserAgent::respond`]; a 2xx to a BYE
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
    /// should end, with [`super::UserAgent::bye`].
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
