//! offhook's SIP stack, shared by every user agent of the project: the signaling
//! proxy, the media relay and the tests' user agents. Layered like a SIP stack
//! should be (RFC 3261 s5): [`message`] (parser and printer), [`transaction`]
//! (sans-IO, RFC-named timers), [`transport`] (the tokio edge: UDP, TCP, TLS,
//! WebSocket), [`endpoint`] (one event loop over the transaction layer), and
//! [`auth`] (digest, both sides). No SQL and no application policy here.

pub mod auth;
mod counters;
pub mod endpoint;
pub mod message;
pub mod transaction;
pub mod transport;

pub use counters::MessageCounts;
