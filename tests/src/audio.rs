//! Test audio: a tone written as a WAV file (mono, 16-bit PCM: 48 kHz for
//! Chromium's fake microphone, `--use-file-for-fake-audio-capture`; 8 kHz for
//! baresip's `aufile`), or as raw 8 kHz mu-law for sipp's `rtp_stream` (the bytes
//! go out as PCMU payload as they are); and the samples of a WAV file a softphone
//! recorded.

use std::path::Path;

use offhook_media::dsp::g711::linear_to_ulaw;
use offhook_media::dsp::tone::Tone;

/// `seconds` of a sine at `hz`, amplitude 0.5 of full scale, sampled at `rate`.
fn tone(hz: f64, rate: u32, seconds: u32) -> impl Iterator<Item = i16> {
    let mut tone = Tone::new(hz, 0.5 * f64::from(i16::MAX), f64::from(rate));
    (0..rate * seconds).map(move |_| tone.next_sample())
}

/// Writes `seconds` of a sine at `hz` (amplitude 0.5 of full scale), sampled at
/// 48 kHz, to `path`.
pub fn write_tone_wav(path: &Path, hz: f64, seconds: u32) -> std::io::Result<()> {
    write_tone_wav_at(path, hz, seconds, 48_000)
}

/// Writes `seconds` of a sine at `hz` (amplitude 0.5 of full scale), sampled at
/// `rate`, to `path`.
pub fn write_tone_wav_at(path: &Path, hz: f64, seconds: u32, rate: u32) -> std::io::Result<()> {
    let samples = rate * seconds;
    let mut data = Vec::with_capacity(44 + 2 * samples as usize);
    data.extend_from_slice(b"RIFF");
    data.extend_from_slice(&(36 + 2 * samples).to_le_bytes());
    data.extend_from_slice(b"WAVEfmt ");
    data.extend_from_slice(&16u32.to_le_bytes()); // fmt chunk size
    data.extend_from_slice(&1u16.to_le_bytes()); // PCM
    data.extend_from_slice(&1u16.to_le_bytes()); // mono
    data.extend_from_slice(&rate.to_le_bytes());
    data.extend_from_slice(&(rate * 2).to_le_bytes()); // bytes per second
    data.extend_from_slice(&2u16.to_le_bytes()); // block align
    data.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
    data.extend_from_slice(b"data");
    data.extend_from_slice(&(2 * samples).to_le_bytes());
    for sample in tone(hz, rate, seconds) {
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

/// The 16-bit samples of a PCM WAV file's `data` chunk.
///
/// # Errors
/// When the file cannot be read or is not RIFF/WAVE with a data chunk.
pub fn read_wav_samples(path: &Path) -> std::io::Result<Vec<i16>> {
    let bytes = std::fs::read(path)?;
    let bad = || {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{}: not a PCM WAV file", path.display()),
        )
    };
    if bytes.len() < 12 || &bytes[..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err(bad());
    }
    let mut at = 12;
    while at + 8 <= bytes.len() {
        let id = &bytes[at..at + 4];
        let len = u32::from_le_bytes([bytes[at + 4], bytes[at + 5], bytes[at + 6], bytes[at + 7]]) as usize;
        let body = at + 8;
        if id == b"data" {
            let end = (body + len).min(bytes.len());
            return Ok(bytes[body..end]
                .chunks_exact(2)
                .map(|b| i16::from_le_bytes([b[0], b[1]]))
                .collect());
        }
        at = body + len + (len & 1);
    }
    Err(bad())
}
