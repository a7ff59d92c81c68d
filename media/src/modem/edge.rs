//! The audio edge of a full-duplex modem stream, sans-IO: what goes to the modem
//! passes the drift compensator ([`super::drift`]); what comes back counts for it
//! and, when the line cancels echo, passes the echo canceller
//! ([`crate::dsp::echo`]) with what was played as its reference. The reference is
//! paced by the samples received (the modem plays one for each it sends), so it
//! stays aligned with the echo whatever the two clocks do.

use std::collections::VecDeque;

use super::drift::DriftCompensator;
use crate::dsp::echo::EchoCanceller;
use crate::dsp::g711::{linear_to_ulaw, ulaw_to_linear};

/// Most reference samples held (1 s): a modem that stops sending audio back
/// cannot make us keep more.
const MAX_REFERENCE: usize = 8000;

/// One stream's edge (see the module comment).
#[derive(Debug, Clone)]
pub struct LineEdge {
    /// The drift compensator, if the line compensates.
    pub drift: Option<DriftCompensator>,
    canceller: Option<Box<EchoCanceller>>,
    reference: VecDeque<i16>,
}

impl LineEdge {
    /// A fresh edge, with the drift compensator and/or the echo canceller.
    pub fn new(compensate_drift: bool, cancel_echo: bool) -> Self {
        Self {
            drift: compensate_drift.then(DriftCompensator::default),
            canceller: cancel_echo.then(Box::default),
            reference: VecDeque::new(),
        }
    }

    /// The stream was entered again (after keys by `+VTS`): the counts start
    /// over, the canceller keeps what it learnt of the line.
    pub fn restart(&mut self) {
        if let Some(drift) = self.drift.as_mut() {
            *drift = DriftCompensator::default();
        }
        self.reference.clear();
        if let Some(canceller) = self.canceller.as_mut() {
            canceller.forget_reference();
        }
    }

    /// A frame for the modem (it may lose or gain a sample).
    pub fn to_line(&mut self, frame: &mut Vec<u8>) {
        if let Some(drift) = self.drift.as_mut() {
            drift.on_write(frame);
        }
        if self.canceller.is_some() {
            self.reference.extend(frame.iter().map(|&c| ulaw_to_linear(c)));
            let excess = self.reference.len().saturating_sub(MAX_REFERENCE);
            self.reference.drain(..excess);
        }
    }

    /// Audio from the modem, echo cancelled in place.
    pub fn from_line(&mut self, audio: &mut [u8]) {
        if let Some(drift) = self.drift.as_mut() {
            drift.on_received(audio.len());
        }
        let Some(canceller) = self.canceller.as_mut() else {
            return;
        };
        for code in audio {
            let played = self.reference.pop_front().unwrap_or(0);
            let near = ulaw_to_linear(*code);
            let out = canceller.process(played, near);
            // Untouched audio keeps its code (mu-law has two zeros).
            if out != near {
                *code = linear_to_ulaw(out);
            }
        }
    }
}
