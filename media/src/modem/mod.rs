//! The line side: a V.253 voice modem. [`stream`] splits what the modem sends
//! (result lines, DLE events, shielded audio); [`driver`] is the sans-IO state
//! machine that initialises, dials, follows call progress, carries audio and hangs
//! up. The tokio wrapper that owns the serial port lives with the relay.

pub mod driver;
pub mod stream;

pub use driver::{AnswerHow, DriverConfig, DriverOutput, HangupReason, LineCommand, LineEvent, ModemDriver};
