//! The byte stream from a V.253 voice modem: result-code lines in command mode,
//! and in voice streaming mode audio bytes with DLE shielding (`<DLE><DLE>` is one
//! 0x10 audio byte) interleaved with `<DLE>x` events (busy `b`, dial tone `d`,
//! ringback `r`, SIT `J`, silence `s`, quiet `q`, loop break `l`, polarity
//! reversal `L`, DTMF digits, underrun `u`, overrun `o`, end of stream `<ETX>`).
//! Never panics, whatever the bytes; also shields audio for the other direction.

/// The DLE byte.
pub const DLE: u8 = 0x10;
/// The ETX byte (after DLE: end of a voice stream).
pub const ETX: u8 = 0x03;

/// What the modem said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModemOutput {
    /// A result code or information line (command mode), without CR/LF.
    Line(String),
    /// A `<DLE>` event code (any mode).
    Event(u8),
    /// Audio bytes (streaming mode), unshielded.
    Audio(Vec<u8>),
}

/// Splits the modem's bytes into lines, events and audio.
#[derive(Debug, Default)]
pub struct StreamParser {
    streaming: bool,
    after_dle: bool,
    line: Vec<u8>,
}

/// Longest result line kept; longer garbage is cut.
const MAX_LINE: usize = 256;

impl StreamParser {
    /// Switches between command mode (lines) and streaming mode (audio).
    pub fn set_streaming(&mut self, streaming: bool) {
        self.streaming = streaming;
        self.line.clear();
    }

    /// Whether in streaming mode.
    pub fn is_streaming(&self) -> bool {
        self.streaming
    }

    /// Parses bytes; appends what they say to `out`.
    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<ModemOutput>) {
        let mut audio = Vec::new();
        for &b in bytes {
            if self.after_dle {
                self.after_dle = false;
                if b == DLE && self.streaming {
                    audio.push(DLE);
                } else {
                    if !audio.is_empty() {
                        out.push(ModemOutput::Audio(std::mem::take(&mut audio)));
                    }
                    if b == ETX {
                        // The modem left streaming mode by itself.
                        self.streaming = false;
                    }
                    out.push(ModemOutput::Event(b));
                }
                continue;
            }
            if b == DLE {
                self.after_dle = true;
                continue;
            }
            if self.streaming {
                audio.push(b);
                continue;
            }
            match b {
                b'\r' | b'\n' if !self.line.is_empty() => {
                    let text = String::from_utf8_lossy(&self.line).trim().to_owned();
                    self.line.clear();
                    if !text.is_empty() {
                        out.push(ModemOutput::Line(text));
                    }
                }
                b'\r' | b'\n' => {}
                _ if self.line.len() < MAX_LINE => self.line.push(b),
                _ => {}
            }
        }
        if !audio.is_empty() {
            out.push(ModemOutput::Audio(audio));
        }
    }
}

/// Appends audio to `out` with every DLE doubled.
pub fn shield(audio: &[u8], out: &mut Vec<u8>) {
    for &b in audio {
        out.push(b);
        if b == DLE {
            out.push(DLE);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_events_and_shielded_audio() {
        let mut p = StreamParser::default();
        let mut out = Vec::new();
        p.push(b"\r\nOK\r\n+VSM: 0,\"ULAW\",8,0\r\n", &mut out);
        assert_eq!(
            out,
            [
                ModemOutput::Line("OK".into()),
                ModemOutput::Line("+VSM: 0,\"ULAW\",8,0".into())
            ]
        );
        out.clear();
        p.set_streaming(true);
        p.push(&[1, 2, DLE, DLE, 3, DLE, b'r', 4, DLE], &mut out);
        p.push(&[ETX], &mut out);
        assert_eq!(
            out,
            [
                ModemOutput::Audio(vec![1, 2, DLE, 3]),
                ModemOutput::Event(b'r'),
                ModemOutput::Audio(vec![4]),
                ModemOutput::Event(ETX),
            ]
        );
        assert!(!p.is_streaming(), "ETX ends the stream");
        let mut shielded = Vec::new();
        shield(&[DLE, 7], &mut shielded);
        assert_eq!(shielded, [DLE, DLE, 7]);
    }

    #[test]
    fn never_panics_on_noise() {
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        let mut p = StreamParser::default();
        for i in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let bytes = state.to_le_bytes();
            p.set_streaming(i % 3 == 0);
            let mut out = Vec::new();
            p.push(&bytes[..(state % 9) as usize], &mut out);
        }
    }
}
