//! The line side: a V.253 voice modem. [`stream`] splits what the modem sends
//! (result lines, DLE events, shielded audio); [`driver`] is the sans-IO state
//! machine that initialises, dials, follows call progress, carries audio and hangs
//! up; [`edge`] keeps a full-duplex stream's latency against clock drift
//! ([`drift`]) and cancels the line's echo; [`port`] is its tokio edge on a
//! serial port.

pub mod drift;
pub mod driver;
pub mod edge;
pub mod port;
pub mod stream;

pub use driver::{DriverConfig, DriverOutput, HangupReason, LineAudio, LineCommand, LineEvent, ModemDriver};
pub use port::{LineHandle, open_modem, open_modem_with_card};
