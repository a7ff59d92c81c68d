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
mod event;
mod register;
mod reply;
mod session;
mod uac;
mod uas;

pub use agent::{UaConfig, UserAgent};
pub use event::{End, RegistrationId, SessionId, UaError, UaEvent};
pub use register::RegistrationSpec;
pub use reply::{Body, Outgoing, Reply};

#[cfg(test)]
mod tests;
