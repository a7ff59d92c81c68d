//! offhook's signaling process: a SIP server that real SIP peers can use. The
//! message layer ([`message`]) and the transaction layer are sans-IO; the transports
//! ([`transport`]) are the tokio edge; the registrar and the stateful proxy decide
//! with the directory. See DESIGN.md, "Processes".

pub mod auth;
pub mod config;
pub mod health;
pub mod limits;
pub mod message;
pub mod server;
/// The former name of [`message`], kept so existing `crate::sip::..` paths resolve.
pub use message as sip;
pub mod transaction;
pub mod transport;
