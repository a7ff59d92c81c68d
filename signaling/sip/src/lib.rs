//! offhook's SIP stack, shared by every user agent of the project: the signaling
//! proxy, the media relay and the tests' user agents. Layered like a SIP stack
//! should be (RFC 3261 s5): [`message`] (parser and printer), [`transaction`]
//! (sans-IO, RFC-named timers), [`endpoint`] (the sans-IO core every element
//! runs on: inbound checks, transactions, CANCEL, our identity and ids),
//! [`transport`] and [`driver`] (the tokio edge: UDP, TCP, TLS, WebSocket),
//! [`auth`] (digest, both sides), [`trust`] (signaling's signature on what it
//! sends to relays), and [`ua`] on top of the endpoint (dialogs, INVITE
//! sessions both ways, registrations) for the user agents. No SQL and no
//! application policy here.

pub mod auth;
mod counters;
pub mod driver;
pub mod endpoint;
pub mod message;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod transaction;
pub mod transport;
pub mod trust;
pub mod ua;

pub use counters::{MessageCounts, Stats};
