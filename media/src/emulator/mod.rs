//! A V.253 voice modem emulator, sans-IO: what a driver writes and the time go
//! in, what the modem answers (result codes, DLE events, audio paced at 8,000
//! bytes/s in 20 ms chunks: a PTY has no baud rate to pace it) comes out. Behind
//! it is the simulated telephone network of [`network`], reached through the
//! modem's analogue side ([`line`]: its sample clock, off by `clock_ppm`, its
//! playout buffer, and the line's hybrid echo). Streams: `+VTR` both
//! ways, `+VRX` from the line (ended by `<DLE>!` or `<DLE>^`), `+VTX` to the line
//! (ended by the DTE's `<DLE><ETX>`); while the DTE does not transmit, the line
//! carries silence to the far end. `AT+GCI=` (a T.35 country code) makes the
//! exchange sound like that country. `AT+VTS` plays keys to the far end. The
//! modem hears keys both ways: those the far end heard (by `+VTS` or as tones in
//! the audio) are kept for tests ([`Emulator::far_end_heard`]); those in the far
//! end's audio are reported to the DTE as `<DLE>` and the key while it streams
//! from the line, as V.253 modems do. Fault
//! switches reproduce real modem quirks. With [`Faults::no_serial_audio`] it is the
//! modem of a modem + sound card line: its audio is on its audio ports (wired to a
//! sound card), so it streams none over the serial port; after `ATDT` it reports
//! the call's progress and end as DLE events in voice command mode. `offhook demo` and the tests run it on a pseudo-terminal
//! ([`pty`]) so that the real driver talks to it through the real serial code.

pub mod line;
pub mod network;
pub mod ports;
pub mod pty;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::dsp::cadence::Country;
use crate::dsp::dtmf_detect::DtmfDetector;
use crate::dsp::g711::{linear_to_ulaw, ulaw_to_linear};
use crate::dsp::tone::dtmf_frames;
use crate::modem::drift::DriftCompensator;
use crate::modem::stream::{DLE, ETX, shield};
use line::Analogue;
use network::{Exchange, Script, script};

/// One 20 ms chunk of 8 kHz mu-law.
const CHUNK: usize = 160;
const TICK: Duration = Duration::from_millis(20);

/// Modem quirks to reproduce.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// ERROR to `AT+VTR=?` while `AT+VTR` works (Conexant firmware).
    pub vtr_query_error: bool,
    /// No `+VTR` at all: half duplex only.
    pub no_vtr: bool,
    /// Vendor numbering of `+VSM` formats (mu-law is id 132 named `G711U`).
    pub vendor_vsm: bool,
    /// No dial tone on the line.
    pub no_dial_tone: bool,
    /// Ignores `<DLE>^` and keeps streaming until `<DLE><ETX>` and CR.
    pub stuck_in_duplex: bool,
    /// Reports an underrun now and then while streaming.
    pub underruns: bool,
    /// No `+VTS`: keys must come as tones in the audio.
    pub no_vts: bool,
    /// The audio is on the modem's audio ports (a sound card line), not on the
    /// serial port: `+VTR`, `+VRX` and `+VTX` answer ERROR, and call progress
    /// comes as DLE events in command mode. The far end hears nothing from the
    /// serial port and sends nothing back over it.
    pub no_serial_audio: bool,
}

#[derive(Debug, PartialEq, Eq)]
enum Mode {
    Command,
    /// A voice stream: audio from the DTE to the line, and/or from the line to the DTE.
    Streaming {
        to_line: bool,
        from_line: bool,
    },
}

/// The `+VLS` value that routes the line to the modem's audio ports (V.253
/// "speakerphone": the line's audio out of the speaker port, the microphone
/// port's into the line, as US Robotics and Rockwell/Conexant voice modems number
/// it). `+VLS=1` (line to the DCE) takes the line with the ports not connected.
pub const VLS_PORTS: u8 = 7;
/// Samples of microphone audio waiting for the line at most (80 ms).
const MAX_MIC_BACKLOG: usize = 640;
/// Samples the speaker port holds at most before the oldest go (1 s).
const MAX_SPEAKER: usize = 8000;

/// The emulated modem.
#[derive(Debug)]
pub struct Emulator {
    faults: Faults,
    hangup_after: Duration,
    exchange: Exchange,
    mode: Mode,
    off_hook: bool,
    line: Vec<u8>,
    after_dle: bool,
    call: Option<(Instant, Script)>,
    out: VecDeque<u8>,
    next_tick: Option<Instant>,
    ticks: u64,
    /// Keys in what the far end hears: the detector, audio not yet in a block,
    /// and the keys so far.
    to_far: (DtmfDetector, Vec<i16>, Vec<char>),
    /// Keys in what the far end sends.
    from_far: DtmfDetector,
    /// The clock, playout buffer and hybrid.
    analogue: Analogue,
    /// Whether the line is routed to the audio ports (`+VLS=7`, audio-ports modem).
    ports: bool,
    /// The line's audio out of the speaker port, linear, not yet taken.
    speaker: VecDeque<i16>,
    /// Holds the playout buffer's depth for the microphone port at its level
    /// early in the call, as an analogue port adds no delay that grows: the
    /// sound server's clock against the modem's, and what a stall left.
    mic_drift: DriftCompensator,
}

impl Emulator {
    /// An idle modem with these quirks; [`network::HANGS_UP`] hangs up after `hangup_after`.
    pub fn new(faults: Faults, hangup_after: Duration) -> Self {
        Self {
            faults,
            hangup_after,
            exchange: Exchange::default(),
            mode: Mode::Command,
            off_hook: false,
            line: Vec::new(),
            after_dle: false,
            call: None,
            out: VecDeque::new(),
            next_tick: None,
            ticks: 0,
            to_far: (DtmfDetector::default(), Vec::new(), Vec::new()),
            from_far: DtmfDetector::default(),
            analogue: Analogue::default(),
            ports: false,
            speaker: VecDeque::new(),
            mic_drift: DriftCompensator::default(),
        }
    }

    /// Audio into the microphone port (linear, 8 kHz): it reaches the line only
    /// while the line is routed to the ports and a call is on it; it is played
    /// out at the modem's clock through the playout buffer, which an analogue
    /// port keeps short: past [`MAX_MIC_BACKLOG`] (the card's clock running fast)
    /// the chunk is dropped.
    pub fn mic_in(&mut self, audio: &[i16]) {
        if self.ports && self.call.is_some() && self.analogue.buffered() < MAX_MIC_BACKLOG {
            let mut law: Vec<u8> = audio.iter().map(|&s| linear_to_ulaw(s)).collect();
            self.mic_drift.adjust(self.analogue.buffered() as f64, &mut law);
            self.analogue.queue(&law);
        }
    }

    /// Routes the line to the audio ports or off them: from a port the playout
    /// buffer starts at one chunk, not the DTE's prebuffer (an analogue input
    /// buffers next to nothing).
    fn set_ports(&mut self, on: bool) {
        self.ports = on;
        self.mic_drift = DriftCompensator::default();
        self.analogue.set_start(on.then_some(line::PORT_PREBUFFER));
    }

    /// The line's audio out of the speaker port since the last call (linear, 8 kHz).
    pub fn speaker_out(&mut self) -> Vec<i16> {
        self.speaker.drain(..).collect()
    }

    /// The analogue side: what its playout buffer holds, its underruns.
    pub fn analogue(&self) -> &Analogue {
        &self.analogue
    }

    /// The same modem on an exchange that sounds like `exchange` (a country's
    /// ringback and busy tones, how many rings before [`network::GREETS`] answers).
    pub fn with_exchange(mut self, exchange: Exchange) -> Self {
        self.analogue = Analogue::new(exchange.line);
        self.exchange = exchange;
        self
    }

    /// The keys the far end of the line heard, by `+VTS` or as tones, in order.
    pub fn far_end_heard(&self) -> &[char] {
        &self.to_far.2
    }

    /// Whether the modem holds the line off hook (dialing or in a call).
    pub fn off_hook(&self) -> bool {
        self.off_hook
    }

    fn reply(&mut self, text: &str) {
        self.out.extend(format!("\r\n{text}\r\n").as_bytes());
    }

    fn formats(&self) -> &'static [&'static str] {
        if self.faults.vendor_vsm {
            &[
                "128,\"8-BIT LINEAR\",8,0,(7200,8000,11025),(0),(0)",
                "132,\"G711U\",8,0,(8000),(0),(0)",
                "131,\"G711A\",8,0,(8000),(0),(0)",
            ]
        } else {
            &["0,\"ULAW\",8,0,(8000),(0),(0)", "1,\"ALAW\",8,0,(8000),(0),(0)"]
        }
    }

    fn command(&mut self, now: Instant, text: &str) {
        let upper = text.trim().to_ascii_uppercase();
        let mu_law_id = if self.faults.vendor_vsm { "132" } else { "0" };
        match upper.as_str() {
            "AT" | "ATZ" | "ATE0V1Q0" | "AT+FCLASS=8" | "AT+VSD=0,0" | "AT+VIT=0" => self.reply("OK"),
            // Ringback timers (V.253 +VRA in 0.1 s, +VRN in s): taken, the driver supervises.
            s if s.starts_with("AT+VRA=") || s.starts_with("AT+VRN=") => {
                let value = &s[7..];
                let ok = !value.is_empty() && value.len() <= 3 && value.bytes().all(|b| b.is_ascii_digit());
                self.reply(if ok { "OK" } else { "ERROR" })
            }
            s if s.starts_with("AT+VTS") && self.faults.no_vts => self.reply("ERROR"),
            s if ["AT+VTR", "AT+VRX", "AT+VTX"].iter().any(|c| s.starts_with(c))
                && self.faults.no_serial_audio =>
            {
                self.reply("ERROR")
            }
            "AT+VTS=?" => {
                self.reply("(200-3300),(200-3300),(0-50)");
                self.reply("OK");
            }
            s if s.starts_with("AT+VTS=") => {
                let keys: Vec<char> = s[7..].chars().filter(|c| *c != ',').collect();
                if keys.is_empty() || keys.iter().any(|k| dtmf_frames(*k).is_empty()) {
                    return self.reply("ERROR");
                }
                for key in keys {
                    for frame in dtmf_frames(key) {
                        self.send_to_far_end(now, &frame);
                    }
                }
                self.reply("OK");
            }
            // Country selection (T.35 code in hex): its tones are the exchange's from now on.
            s if s.starts_with("AT+GCI=") => {
                match u8::from_str_radix(&s[7..], 16).ok().and_then(Country::from_t35) {
                    Some(country) => {
                        self.exchange.country = Some(country);
                        self.reply("OK");
                    }
                    None => self.reply("ERROR"),
                }
            }
            "AT+GCI?" => {
                let code = self.exchange.country.unwrap_or(Country::Us).t35_code();
                self.reply(&format!("+GCI: {code:02X}"));
                self.reply("OK");
            }
            "AT+VSM=?" => {
                for format in self.formats() {
                    self.reply(format);
                }
                self.reply("OK");
            }
            s if s.starts_with("AT+VSM=") => {
                let ok = s.trim_start_matches("AT+VSM=").split(',').next() == Some(mu_law_id);
                self.reply(if ok { "OK" } else { "ERROR" });
            }
            "AT+VLS=1" | "AT+VLS=7" if self.faults.no_dial_tone => self.reply("NO DIALTONE"),
            "AT+VLS=1" => {
                self.off_hook = true;
                self.set_ports(false);
                self.reply("OK");
            }
            "AT+VLS=7" if self.faults.no_serial_audio => {
                self.off_hook = true;
                self.set_ports(true);
                self.reply("OK");
            }
            s if s.starts_with("ATDT") && self.off_hook => {
                let number: String = s[4..]
                    .chars()
                    .filter(|c| c.is_ascii_digit() || "*#".contains(*c))
                    .collect();
                self.call = Some((now, script(&number, self.hangup_after, &self.exchange)));
                if self.faults.no_serial_audio {
                    // No stream will follow: the call's events come in command mode.
                    self.next_tick = Some(now + TICK);
                }
                self.reply("OK");
            }
            "AT+VTR=?" if self.faults.vtr_query_error || self.faults.no_vtr => self.reply("ERROR"),
            "AT+VTR=?" => self.reply("OK"),
            "AT+VTR" if self.faults.no_vtr => self.reply("ERROR"),
            "AT+VTR" | "AT+VRX" | "AT+VTX" if self.off_hook => {
                self.reply("CONNECT");
                self.mode = Mode::Streaming {
                    to_line: upper != "AT+VRX",
                    from_line: upper != "AT+VTX",
                };
                self.next_tick = Some(now + TICK);
            }
            "ATH" | "ATH0" => {
                self.analogue.reset();
                self.off_hook = false;
                self.set_ports(false);
                self.speaker.clear();
                self.call = None;
                self.next_tick = None;
                self.reply("OK");
            }
            _ => self.reply("ERROR"),
        }
    }

    fn end_stream(&mut self) {
        // `<DLE>^` / `<DLE>!` end the stream at once: what the buffer holds is dropped.
        self.analogue.reset();
        self.mode = Mode::Command;
        self.next_tick = None;
        self.out.extend([DLE, ETX]);
        self.reply("OK");
    }

    /// Audio the far end hears (once it has answered).
    fn send_to_far_end(&mut self, now: Instant, audio: &[u8]) {
        if let Some((start, script)) = self.call.as_mut()
            && script.answer_at.is_some_and(|at| now >= *start + at)
        {
            script.audio.hear(audio);
            let (detector, pending, keys) = &mut self.to_far;
            pending.extend(audio.iter().map(|&c| ulaw_to_linear(c)));
            while pending.len() >= CHUNK {
                keys.extend(detector.block(&pending[..CHUNK]));
                pending.drain(..CHUNK);
            }
        }
    }

    /// One tick of the audio ports: the microphone port's audio to the line, the
    /// line's (far end and hybrid echo) to the speaker port.
    fn port_tick(&mut self, now: Instant) {
        let count = self.analogue.tick();
        let (played, _) = self.analogue.play(count);
        self.send_to_far_end(now, &played);
        let Some((start, script)) = self.call.as_mut() else {
            return;
        };
        let mut audio = match script.answer_at {
            Some(at) if now.saturating_duration_since(*start) >= at => script.audio.next(count),
            _ => script.before_answer.next(count),
        };
        self.analogue.add_echo(&mut audio);
        self.speaker.extend(audio.iter().map(|&c| ulaw_to_linear(c)));
        let excess = self.speaker.len().saturating_sub(MAX_SPEAKER);
        self.speaker.drain(..excess);
    }

    /// Bytes the driver wrote.
    pub fn handle_bytes(&mut self, now: Instant, bytes: &[u8]) {
        let mut heard = Vec::new();
        for &b in bytes {
            if let Mode::Streaming { to_line, from_line } = self.mode {
                if self.after_dle {
                    self.after_dle = false;
                    match b {
                        DLE => heard.push(DLE),
                        b'^' | b'!' if !self.faults.stuck_in_duplex => self.end_stream(),
                        ETX if !from_line => {
                            // The end of +VTX data: the modem is back in command mode.
                            let rest = self.analogue.flush();
                            self.analogue.remember(&rest);
                            self.send_to_far_end(now, &rest);
                            self.mode = Mode::Command;
                            self.next_tick = None;
                            self.reply("OK");
                        }
                        ETX => {
                            // A stuck modem comes out on <DLE><ETX> (the driver's resync).
                            self.faults.stuck_in_duplex = false;
                            self.end_stream();
                        }
                        _ => {}
                    }
                } else if b == DLE {
                    self.after_dle = true;
                } else if to_line {
                    heard.push(b);
                }
                continue;
            }
            match b {
                b'\r' => {
                    let text = String::from_utf8_lossy(&self.line).into_owned();
                    self.line.clear();
                    if !text.trim().is_empty() {
                        self.command(now, &text);
                    }
                }
                b'\n' => {}
                _ if self.line.len() < 256 => self.line.push(b),
                _ => {}
            }
        }
        if !heard.is_empty() && !self.analogue.queue(&heard) {
            self.out.extend([DLE, b'o']);
        }
    }

    /// Bytes the modem sends, if any.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        (!self.out.is_empty()).then(|| self.out.drain(..).collect())
    }

    /// The next 20 ms tick while streaming.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_tick
    }

    /// Emits the audio and events that are due.
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(tick) = self.next_tick else { return };
        if now < tick {
            return;
        }
        self.next_tick = Some(tick + TICK);
        self.ticks += 1;
        let Mode::Streaming { to_line, from_line } = self.mode else {
            // Voice command mode (audio ports): the call's events, and its audio
            // on the ports when the line is routed to them.
            if let Some((start, script)) = self.call.as_mut() {
                let elapsed = now.saturating_duration_since(*start);
                for code in script.take_due(elapsed) {
                    self.out.extend([DLE, code]);
                }
            }
            if self.ports {
                self.port_tick(now);
            }
            return;
        };
        let count = self.analogue.tick();
        let mut chunk = Vec::with_capacity(count + 8);
        if to_line {
            let (played, short) = self.analogue.play(count);
            self.send_to_far_end(now, &played);
            if short {
                chunk.extend([DLE, b'u']);
            }
        } else {
            // We send nothing: the far end hears the line's silence.
            let silence = vec![0xFF; count];
            self.analogue.remember(&silence);
            self.send_to_far_end(now, &silence);
        }
        match self.call.as_mut() {
            Some((start, script)) => {
                let elapsed = now.saturating_duration_since(*start);
                for code in script.take_due(elapsed) {
                    chunk.extend([DLE, code]);
                }
                let mut audio = match script.answer_at {
                    Some(at) if elapsed >= at => script.audio.next(count),
                    _ => script.before_answer.next(count),
                };
                self.analogue.add_echo(&mut audio);
                if from_line {
                    let key = self
                        .from_far
                        .block(&audio.iter().map(|&c| ulaw_to_linear(c)).collect::<Vec<_>>());
                    if let Some(key) = key {
                        chunk.extend([DLE, key as u8]);
                    }
                    shield(&audio, &mut chunk);
                }
            }
            None if from_line => shield(&vec![0xFF; count], &mut chunk),
            None => {}
        }
        if self.faults.underruns && self.ticks.is_multiple_of(50) {
            chunk.extend([DLE, b'u']);
        }
        self.out.extend(chunk);
    }
}

#[cfg(test)]
mod tests;
