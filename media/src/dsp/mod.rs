//! Signal processing shared by the line and network sides: G.711 companding
//! ([`g711`]), single-frequency detection ([`goertzel`]) for tests and tone
//! checks, tone generation ([`tone`]) for DTMF mixing and the emulator,
//! call-progress cadences per country ([`cadence`]), a speech-like test signal
//! ([`speech`]) and the voice / tone classifier of answer supervision ([`voice`]).

pub mod cadence;
pub mod g711;
pub mod goertzel;
pub mod speech;
pub mod tone;
pub mod voice;
