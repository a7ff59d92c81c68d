//! Signal processing shared by the line and network sides: G.711 companding
//! ([`g711`]), single-frequency detection ([`goertzel`]) for tests and tone
//! checks, DTMF detection ([`dtmf_detect`]) for the emulator, the line echo
//! canceller ([`echo`]), tone generation
//! ([`tone`]) for DTMF mixing and the emulator, call-progress cadences per
//! country ([`cadence`]), a speech-like test signal ([`speech`]) and the voice /
//! tone classifier of answer supervision ([`voice`]).

pub mod cadence;
pub mod dtmf_detect;
pub mod echo;
pub mod g711;
pub mod goertzel;
pub mod resample;
pub mod speech;
pub mod tone;
pub mod voice;
