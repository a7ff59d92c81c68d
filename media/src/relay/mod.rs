//! The media relay: a SIP user agent (like an FXO gateway) that owns modem
//! lines. It registers each line with signaling (one contact per line, digest
//! credentials of its relay account), answers the INVITEs routed to it by
//! dialing the number signaling put in `X-Offhook-Number` on the line it named,
//! maps call progress to SIP (180, 200, 486, 480, 404, 503), bridges the
//! caller's media (RTP with a jitter buffer and paced sender, or WebRTC from a
//! browser) with the line's 8 kHz mu-law, and sends BYE when the far end hangs
//! up. A line with a sound card ([`LineSpec::soundcard`]) is a modem + sound
//! card line: its modem only dials and holds the line, and the call's audio is
//! played and captured by the card.
//!
//! Layout: [`Gateway`] is the sans-IO core (SIP through [`offhook_sip::ua`],
//! the lines, the calls); `call` is one call's state machine, `bridge` its
//! audio, `legs` its network side (RTP/AVP or WebRTC), `liveness` the watch
//! over its media, `reopen` the retries of faulty modems, `lines` the line table,
//! `trust` the check of signaling's signature, `stats` the metrics, `config`
//! the settings; [`Relay`] (`driver`) is the
//! tokio edge that moves the bytes: SIP sockets, one UDP socket (two without
//! `rtcp-mux`) per call, the modems' ports, the sleep to the next deadline.

mod bridge;
mod call;
mod config;
mod driver;
mod gateway;
mod info;
mod legs;
mod lines;
mod liveness;
mod reopen;
mod stats;
mod trust;

pub use call::MediaAddrs;
pub use config::{Device, LineSpec, RelayConfig, SoundCardSpec, SoundHost};
pub use driver::{Relay, RelayError};
pub use gateway::{CallId, Gateway, Output};
pub use legs::Port;
pub use lines::{LineStatus, Registration};
pub use stats::{LegCounts, RelayStats};

#[cfg(test)]
mod tests;
