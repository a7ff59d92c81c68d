//! Signal processing shared by the line and network sides: G.711 companding
//! ([`g711`]), single-frequency detection ([`goertzel`]) for tests and tone
//! checks, DTMF detection ([`dtmf_detect`]) for the emulator, and tone
//! generation ([`tone`]) for DTMF mixing and the emulator.

pub mod dtmf_detect;
pub mod g711;
pub mod goertzel;
pub mod tone;
