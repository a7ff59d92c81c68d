//! The network side of the media relay. Datagrams from the peer pass the
//! [`latch`] (strict symmetric RTP: one source address) and enter through
//! [`packet::RtpReceiver`]; audio is decoded by [`codec`] into the [`jitter`] buffer,
//! which the playout clock pops every 20 ms for the line. Line audio goes back out
//! through [`sender::RtpSender`] as 20 ms packets; key presses go both ways as
//! RFC 4733 telephone-events ([`dtmf`]); [`rtcp`] builds and parses the reports both
//! ways, and [`report`] sends ours every interval and keeps what the peer's say. [`units`] holds the typed ids and media time every module speaks; [`netsim`]
//! simulates a network for tests and the relay benchmark.

pub mod codec;
pub mod dtmf;
pub mod jitter;
pub mod latch;
pub mod netsim;
pub mod packet;
pub mod report;
pub mod rtcp;
pub mod sender;
pub mod units;
