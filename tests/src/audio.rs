//! Test audio: a tone written as a WAV file (48 kHz, mono, 16-bit PCM) for
//! Chromium's fake microphone (`--use-file-for-fake-audio-capture`), or as raw
//! 8 kHz mu-law for sipp's `rtp_stream` (the bytes go out as PCMU payload as they are).

use std::path::Path;

use offhook_media::dsp::g711::linear_to_ulaw;
use offhook_media::dsp::tone::Tone;

/// `seconds` of a sine at `hz`, amplitude 0.5 of full scale, sampled at `rate`.
fn tone(hz: f64, rate: u32, seconds: u32) -> impl Iterator<Item = i16> {
    let mut tone = Tone::new(hz, 0.5 * f64::from(i16::MAX), f64::from(rate));
    (0..rate * seconds).map(move |_| tone.next_sample())
}

/// Writes `seconds` of a sine at `hz` (amplitude 0.5 of full scale) to `path`.
pub fn write_tone_wav(path: &Path, hz: f64, seconds: u32) -> std::io::Result<()> {
    const RATE: u32 = 48_000;
    let samples = RATE * seconds;
    let mut data = Vec::with_capacity(44 + 2 * samples as usize);
    data.extend_from_slice(b"RIFF");
    data.extend_from_slice(&(36 + 2 * samples).to_le_bytes());
    data.extend_from_slice(b"WAVEfmt ");
    data.extend_from_slice(&16u32.to_le_bytes()); // fmt chunk size
    data.extend_from_slice(&1u16.to_le_bytes()); // PCM
    data.extend_from_slice(&1u16.to_le_bytes()); // mono
    data.extend_from_slice(&RATE.to_le_bytes());
    data.extend_from_slice(&(RATE * 2).to_le_bytes()); // bytes per second
    data.extend_from_slice(&2u16.to_le_bytes()); // block align
    data.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
    data.extend_from_slice(b"data");
    data.extend_from_slice(&(2 * samples).to_le_bytes());
    for sample in tone(hz, RATE, seconds) {
        data.extend_from_slice(&sample.to_le_bytes());
    }
    std::fs::write(path, data)
}

/// Writes `seconds` of a sine at `hz` as raw 8 kHz mu-law (no header) to `path`.
pub fn write_ulaw_tone(path: &Path, hz: f64, seconds: u32) -> std::io::Result<()> {
    std::fs::write(
        path,
        tone(hz, 8000, seconds).map(linear_to_ulaw).collect::<Vec<u8>>(),
    )
}
