//! The V.253 voice-modem driver as a sans-IO state machine: bytes from the serial
//! port, commands from the relay and the time go in; bytes to write and events for
//! the relay come out, with the next deadline. It initialises the modem (the
//! line's country by `+GCI` when it has one, voice class, mu-law picked by name
//! from `+VSM=?`, no silence detection or inactivity timer), dials (`+VLS=1`, or
//! the line's own value on a sound card line; `ATDT`, full-duplex `+VTR`,
//! half-duplex `+VRX` when `+VTR` is refused — probed by trying it, since Conexant
//! firmware answers ERROR to `AT+VTR=?` while `AT+VTR` works), reports call progress from result codes and
//! DLE events, presumes or observes the answer, carries audio both ways with DLE
//! shielding, hangs up, and resynchronises a modem stuck in a stream.
//!
//! Answer supervision: polarity reversal (`<DLE>L`) where the exchange signals
//! it; a voice on the line ([`crate::dsp::voice`]: loud and not a call-progress
//! tone, for [`VOICE_FRAMES`] frames) the moment the callee speaks; otherwise
//! presumed when ringback (`<DLE>r`, then also its tone in the line audio) has been gone
//! longer than the line's country's longest ringback silence plus a margin
//! ([`DriverConfig::for_country`]), or never came. The same timers go to the
//! modem as `+VRA`/`+VRN` where it has them. The line's audio before the answer
//! goes to the relay as early media ([`LineEvent::EarlyAudio`]), so nothing of
//! the callee's first words is lost while the answer is being recognised.
//!
//! Sound card ([`LineAudio::SoundCard`]): the modem's audio ports are wired to a
//! sound card. The modem is initialised and dials the same way, but after `ATDT`
//! it stays in voice command mode holding the line: no stream, no audio on the
//! serial port. Call progress and the far end hanging up come as DLE events (or
//! result codes) in command mode; the line's audio is the card's: what the relay
//! gives the line comes out as [`DriverOutput::Play`] once answered, and what the
//! card captured goes in by [`ModemDriver::handle_card_audio`].
//!
//! Half duplex: the line receives (`+VRX`) until the caller's side has something
//! to say — voice above a threshold, or a key as its dual tone — then transmits
//! (`+VTX`) until it has been quiet for [`DriverConfig::talk_hangover`], then
//! receives again. Keys go out by `AT+VTS` where the modem has it (probed with
//! `AT+VTS=?`; the stream is left for it and entered again), else as their dual
//! tone in place of the caller's audio.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use offhook_vocab::AnswerSource;

use super::edge::LineEdge;
use super::stream::{DLE, ETX, ModemOutput, StreamParser, shield};
use crate::dsp::cadence::Country;
use crate::dsp::g711::ulaw_to_linear;
use crate::dsp::tone::{dtmf_frames, dtmf_frequencies};
use crate::dsp::voice::{QUIET_LEVEL, Sound, VoiceDetector};

/// Why the far end is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HangupReason {
    /// Loop current broke (`<DLE>l`).
    LoopBreak,
    /// Silence after the answer (`<DLE>s`).
    Silence,
    /// Busy tone after the answer (`<DLE>b`).
    BusyTone,
}

/// What the relay asks of the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineCommand {
    /// Go off hook and dial (digits, `*`, `#`, `,` only).
    Dial(String),
    /// Hang up.
    HangUp,
    /// 8 kHz mu-law audio to play into the line.
    Audio(Vec<u8>),
    /// A key (`0-9 * # A-D`) to play into the line as DTMF.
    Dtmf(char),
}

/// What the line tells the relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineEvent {
    /// Initialised; ready to dial.
    Ready,
    /// Dialing started.
    Dialing,
    /// Ringback heard.
    Ringing,
    /// The far end answered.
    Answered(AnswerSource),
    /// Busy.
    Busy,
    /// No dial tone (line unplugged or faulty).
    NoDialTone,
    /// Nobody answered in time.
    NoAnswer,
    /// Special information tone: the number is invalid or unreachable.
    Invalid,
    /// The far end hung up after answering.
    RemoteHangup(HangupReason),
    /// A DTMF key pressed at the far end.
    Dtmf(char),
    /// 8 kHz mu-law audio from the line.
    Audio(Vec<u8>),
    /// 8 kHz mu-law audio from the line before the answer (dialing, ringback,
    /// busy, an announcement, the callee's first words): early media.
    EarlyAudio(Vec<u8>),
    /// On hook again, ready for the next call.
    Idle,
    /// The modem misbehaves or a command was refused; says what.
    Fault(String),
}

/// Where a line's audio goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LineAudio {
    /// Over the serial port, in a voice stream (`+VTR`; `+VRX`/`+VTX` half duplex).
    #[default]
    Serial,
    /// Through a sound card wired to the modem's audio ports: the modem only
    /// dials and holds the line, in voice command mode.
    SoundCard,
}

/// Timing and audio path of the driver.
#[derive(Debug, Clone, Copy)]
pub struct DriverConfig {
    /// How long a command may wait for its result.
    pub command_timeout: Duration,
    /// Ringback silent this long after it was heard: answered (`+VRA`).
    pub ringback_gap: Duration,
    /// No ringback this long after dialing: answered (`+VRN`).
    pub no_ringback: Duration,
    /// Ringing this long: no answer.
    pub no_answer: Duration,
    /// Half duplex: quiet this long while transmitting, back to receiving.
    pub talk_hangover: Duration,
    /// Where the audio goes.
    pub audio: LineAudio,
    /// The `+VLS` value that takes the line off hook with its audio where it
    /// goes: 1 (the telephone line, audio in the voice stream) by default; on a
    /// modem + sound card line the modem's own value that routes line audio to its
    /// speaker-out and microphone-in ports (modem-specific: see its `+VLS=?`).
    pub vls: u8,
    /// Whose call-progress tones the line hears (how long a ringback burst lasts
    /// after its `<DLE>r`); `None`: the burst is taken as instantaneous.
    pub country: Option<Country>,
    /// Full duplex: hold the modem's playout buffer against clock drift
    /// ([`super::drift`]).
    pub compensate_drift: bool,
    /// Full duplex: cancel the line's hybrid echo in what goes to the caller
    /// ([`crate::dsp::echo`]).
    pub cancel_echo: bool,
}

/// Ringback gone this much longer than its cadence's longest silence: answered.
pub const RINGBACK_MARGIN: Duration = Duration::from_millis(1500);

impl DriverConfig {
    /// The defaults with answer presumption for a line in `country`: ringback
    /// gone for its longest silence plus [`RINGBACK_MARGIN`].
    pub fn for_country(country: Country) -> Self {
        Self {
            ringback_gap: country.ringback().longest_silence() + RINGBACK_MARGIN,
            country: Some(country),
            ..Self::default()
        }
    }
}

impl Default for DriverConfig {
    fn default() -> Self {
        Self {
            command_timeout: Duration::from_secs(3),
            ringback_gap: Duration::from_secs(3),
            no_ringback: Duration::from_secs(8),
            no_answer: Duration::from_secs(60),
            talk_hangover: Duration::from_millis(400),
            audio: LineAudio::Serial,
            vls: 1,
            country: None,
            compensate_drift: true,
            cancel_echo: true,
        }
    }
}

/// What the driver asks its I/O wrapper to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DriverOutput {
    /// Write these bytes to the serial port.
    Write(Vec<u8>),
    /// Tell the relay.
    Event(LineEvent),
    /// 20 ms of 8 kHz mu-law for the sound card to play into the line
    /// ([`LineAudio::SoundCard`], once answered).
    Play(Vec<u8>),
}

/// A command sent, waiting for its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Reset,
    Echo,
    /// `AT+GCI=` (the line's country, so the modem's dial-tone and
    /// call-progress detection use its tones).
    Country,
    VoiceClass,
    QueryFormats,
    SetFormat,
    SilenceOff,
    InactivityOff,
    RingbackAway,
    RingbackNever,
    ProbeTones,
    OffHook,
    Dial,
    FullDuplex,
    HalfDuplex,
    LeaveStream,
    Resync,
    OnHook,
    /// Left a stream to switch (direction, or to send keys): waiting for OK.
    Switch,
    /// `AT+VTS` sent.
    Tone,
    /// `AT+VTR`, `AT+VRX` or `AT+VTX` sent during a call: waiting for CONNECT.
    Enter(Stream),
}

/// The voice stream the modem is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// `+VTR`: both ways.
    Duplex,
    /// `+VRX`: from the line only.
    Receive,
    /// `+VTX`: to the line only.
    Transmit,
}

impl Stream {
    fn command(self) -> &'static str {
        match self {
            Self::Duplex => "AT+VTR",
            Self::Receive => "AT+VRX",
            Self::Transmit => "AT+VTX",
        }
    }

    /// What the DTE sends to end the stream (V.253: `<DLE>^` ends +VTR, `<DLE>!`
    /// aborts +VRX, `<DLE><ETX>` ends +VTX data).
    fn end(self) -> [u8; 2] {
        match self {
            Self::Duplex => [DLE, b'^'],
            Self::Receive => [DLE, b'!'],
            Self::Transmit => [DLE, ETX],
        }
    }
}

/// Most 20 ms frames held while the line turns round to transmit.
const MAX_BACKLOG: usize = 10;
/// Consecutive voice frames (20 ms) before the answer that make it answered.
pub const VOICE_FRAMES: u32 = 2;

fn is_voice(mulaw: &[u8]) -> bool {
    let sum: i32 = mulaw.iter().map(|&c| i32::from(ulaw_to_linear(c)).abs()).sum();
    sum > QUIET_LEVEL * mulaw.len() as i32
}

#[derive(Debug)]
struct Call {
    dialed_at: Instant,
    /// Until when ringback was heard (its last tone frame, or a `<DLE>r` plus a burst).
    ringback_until: Option<Instant>,
    answered: bool,
    detector: VoiceDetector,
    /// Voice frames in a row before the answer.
    voiced: u32,
}

/// The driver.
#[derive(Debug)]
pub struct ModemDriver {
    config: DriverConfig,
    parser: StreamParser,
    out: VecDeque<DriverOutput>,
    waiting: Option<(Step, Instant)>,
    info_lines: Vec<String>,
    number: String,
    call: Option<Call>,
    ended: bool,
    half_duplex: bool,
    /// The modem has `+VTS`.
    vts: bool,
    /// The stream we are in, if any.
    stream: Option<Stream>,
    /// Where a switch is going once out of the stream (`None`: back where we were).
    switch_to: Option<Stream>,
    /// Keys waiting for `AT+VTS`.
    keys: VecDeque<char>,
    /// Keys as dual-tone frames, in place of the caller's audio (no `+VTS`).
    key_frames: VecDeque<[u8; 160]>,
    /// Half duplex: audio waiting for `+VTX` to connect.
    backlog: VecDeque<Vec<u8>>,
    /// Half duplex: when the caller's side last had something to say.
    last_voice: Option<Instant>,
    /// Times the stream had to be resynchronised.
    pub resyncs: u32,
    /// Underrun / overrun events reported by the modem.
    pub underruns: u32,
    /// Overrun events reported by the modem.
    pub overruns: u32,
    /// The full-duplex stream's audio edge, for the call.
    edge: Option<LineEdge>,
}

/// Picks the mu-law format id from `+VSM=?` lines, by name (ids differ by chipset).
pub fn pick_ulaw(lines: &[String]) -> Option<u32> {
    lines.iter().find_map(|line| {
        let body = line.strip_prefix("+VSM:").unwrap_or(line).trim();
        let (id, rest) = body.split_once(',')?;
        let name = rest
            .split(',')
            .next()?
            .trim()
            .trim_matches('"')
            .to_ascii_uppercase();
        let ulaw = ["ULAW", "G711U", "G.711U", "G.711 U", "MU-LAW", "G711 U"].contains(&name.as_str());
        ulaw.then(|| id.trim().parse().ok()).flatten()
    })
}

impl ModemDriver {
    /// A driver that starts initialising the modem at `now`.
    pub fn new(config: DriverConfig, now: Instant) -> Self {
        let mut driver = Self {
            config,
            parser: StreamParser::default(),
            out: VecDeque::new(),
            waiting: None,
            info_lines: Vec::new(),
            number: String::new(),
            call: None,
            ended: false,
            half_duplex: false,
            vts: false,
            stream: None,
            switch_to: None,
            keys: VecDeque::new(),
            key_frames: VecDeque::new(),
            backlog: VecDeque::new(),
            last_voice: None,
            resyncs: 0,
            underruns: 0,
            overruns: 0,
            edge: None,
        };
        driver.send(now, Step::Reset, "ATZ");
        driver
    }

    /// Whether the line is streaming half-duplex for lack of `+VTR`.
    pub fn is_half_duplex(&self) -> bool {
        self.half_duplex
    }

    /// The voice stream the modem is in, if any.
    pub fn stream(&self) -> Option<Stream> {
        self.stream
    }

    /// Whether a call is answered and up (the line carries its audio).
    pub fn is_answered(&self) -> bool {
        self.call.as_ref().is_some_and(|c| c.answered)
    }

    /// The full-duplex stream's audio edge (drift compensation, echo canceller).
    pub fn edge(&self) -> Option<&LineEdge> {
        self.edge.as_ref()
    }

    /// A full-duplex stream began: its edge starts (or starts over).
    fn duplex_started(&mut self) {
        match self.edge.as_mut() {
            Some(edge) => edge.restart(),
            None => {
                self.edge = Some(LineEdge::new(
                    self.config.compensate_drift,
                    self.config.cancel_echo,
                ));
            }
        }
    }

    /// Whether the modem plays keys itself (`+VTS`).
    pub fn has_tone_command(&self) -> bool {
        self.vts
    }

    fn send(&mut self, now: Instant, step: Step, command: &str) {
        self.out
            .push_back(DriverOutput::Write(format!("{command}\r").into_bytes()));
        self.waiting = Some((step, now + self.config.command_timeout));
    }

    fn event(&mut self, event: LineEvent) {
        self.out.push_back(DriverOutput::Event(event));
    }

    /// The call is over with `event`: report it once and hang up.
    fn end_call(&mut self, now: Instant, event: LineEvent) {
        if !self.ended {
            self.ended = true;
            self.event(event);
        }
        self.hang_up(now);
    }

    fn hang_up(&mut self, now: Instant) {
        self.call = None;
        self.edge = None;
        self.switch_to = None;
        self.keys.clear();
        self.key_frames.clear();
        self.backlog.clear();
        match self.stream.take() {
            Some(Stream::Transmit) => {
                // No <DLE><ETX> comes back from +VTX: the modem answers OK.
                self.out
                    .push_back(DriverOutput::Write(Stream::Transmit.end().to_vec()));
                self.parser.set_streaming(false);
                self.waiting = Some((Step::LeaveStream, now + self.config.command_timeout));
            }
            Some(stream) => {
                self.out.push_back(DriverOutput::Write(stream.end().to_vec()));
                self.waiting = Some((Step::LeaveStream, now + self.config.command_timeout));
            }
            None if self.parser.is_streaming() => {
                self.out.push_back(DriverOutput::Write(vec![DLE, b'^']));
                self.waiting = Some((Step::LeaveStream, now + self.config.command_timeout));
            }
            None => self.send(now, Step::OnHook, "ATH"),
        }
    }

    /// Leaves the stream we are in towards `to` (`None`: where we were, after keys).
    fn switch(&mut self, now: Instant, to: Option<Stream>) {
        if self.waiting.is_some() {
            return;
        }
        self.switch_to = to;
        match self.stream.take() {
            Some(stream) => {
                self.out.push_back(DriverOutput::Write(stream.end().to_vec()));
                if stream == Stream::Transmit {
                    self.parser.set_streaming(false);
                }
                self.waiting = Some((Step::Switch, now + self.config.command_timeout));
            }
            None => self.after_switch(now),
        }
    }

    /// Out of the stream: keys first, then the stream the call needs.
    fn after_switch(&mut self, now: Instant) {
        if let Some(key) = self.keys.pop_front() {
            return self.send(now, Step::Tone, &format!("AT+VTS={key}"));
        }
        let home = if self.half_duplex {
            Stream::Receive
        } else {
            Stream::Duplex
        };
        let to = self.switch_to.take().unwrap_or(home);
        if self.config.audio == LineAudio::SoundCard {
            // Keys sent; the line stays held in command mode.
            return;
        }
        self.send(now, Step::Enter(to), to.command());
    }

    /// Audio for the line (a key's tone frame goes first).
    fn play(&mut self, now: Instant, audio: Vec<u8>) {
        let audio = self.key_frames.pop_front().map_or(audio, |frame| frame.to_vec());
        let answered = self.call.as_ref().is_some_and(|c| c.answered);
        if self.config.audio == LineAudio::SoundCard {
            // Before the answer (and after the call) the card plays silence.
            if answered {
                self.out.push_back(DriverOutput::Play(audio));
            }
            return;
        }
        match self.stream {
            Some(Stream::Duplex) => {
                let mut audio = audio;
                if let Some(edge) = self.edge.as_mut() {
                    edge.to_line(&mut audio);
                }
                self.write_audio(&audio)
            }
            Some(Stream::Transmit) => {
                if is_voice(&audio) {
                    self.last_voice = Some(now);
                }
                self.write_audio(&audio);
            }
            Some(Stream::Receive) if answered && is_voice(&audio) => {
                self.last_voice = Some(now);
                self.backlog.push_back(audio);
                self.switch(now, Some(Stream::Transmit));
            }
            None if self.switch_to == Some(Stream::Transmit) => {
                if self.backlog.len() == MAX_BACKLOG {
                    self.backlog.pop_front();
                }
                self.backlog.push_back(audio);
            }
            _ => {}
        }
    }

    fn write_audio(&mut self, audio: &[u8]) {
        let mut bytes = Vec::with_capacity(audio.len() + 8);
        shield(audio, &mut bytes);
        self.out.push_back(DriverOutput::Write(bytes));
    }

    /// Half duplex: when transmitting turns back to receiving.
    fn talk_ends_at(&self) -> Option<Instant> {
        let idle = self.keys.is_empty() && self.key_frames.is_empty() && self.waiting.is_none();
        (self.stream == Some(Stream::Transmit) && idle)
            .then(|| self.last_voice.map(|at| at + self.config.talk_hangover))
            .flatten()
    }

    /// A command from the relay.
    pub fn handle_command(&mut self, now: Instant, command: LineCommand) {
        match command {
            LineCommand::Dial(number) => {
                if let Some(bad) = number
                    .chars()
                    .find(|c| !(c.is_ascii_digit() || "*#,".contains(*c)))
                {
                    self.event(LineEvent::Fault(format!(
                        "refusing to dial '{bad}': only digits, *, # and ,"
                    )));
                    return;
                }
                if self.call.is_some() || self.waiting.is_some() {
                    self.event(LineEvent::Fault("line busy with another call".into()));
                    return;
                }
                self.number = number;
                self.ended = false;
                self.call = Some(Call {
                    dialed_at: now,
                    ringback_until: None,
                    answered: false,
                    detector: VoiceDetector::default(),
                    voiced: 0,
                });
                self.event(LineEvent::Dialing);
                let off_hook = format!("AT+VLS={}", self.config.vls);
                self.send(now, Step::OffHook, &off_hook);
            }
            LineCommand::HangUp => {
                if self.call.is_some() || self.parser.is_streaming() || self.stream.is_some() {
                    self.ended = true;
                    self.hang_up(now);
                }
            }
            LineCommand::Audio(audio) => self.play(now, audio),
            LineCommand::Dtmf(key) => {
                if !self.call.as_ref().is_some_and(|c| c.answered) {
                    return;
                }
                if self.vts && dtmf_frequencies(key).is_some() {
                    self.keys.push_back(key.to_ascii_uppercase());
                    self.switch(now, None);
                } else {
                    self.key_frames.extend(dtmf_frames(key));
                }
            }
        }
    }

    /// Bytes read from the serial port.
    pub fn handle_bytes(&mut self, now: Instant, bytes: &[u8]) {
        let mut parsed = Vec::new();
        self.parser.push(bytes, &mut parsed);
        for item in parsed {
            match item {
                ModemOutput::Audio(audio) => self.line_audio(now, audio),
                ModemOutput::Event(code) => self.on_dle(now, code),
                ModemOutput::Line(line) => self.on_line(now, &line),
            }
        }
    }

    /// 20 ms of mu-law the sound card captured from the line
    /// ([`LineAudio::SoundCard`]); reported once the far end has answered.
    pub fn handle_card_audio(&mut self, now: Instant, mulaw: &[u8]) {
        self.line_audio(now, mulaw.to_vec());
    }

    /// Audio from the line: passed on (as early media before the answer), and
    /// before the answer listened to for ringback and for a voice answering.
    fn line_audio(&mut self, now: Instant, mut audio: Vec<u8>) {
        if let Some(edge) = self.edge.as_mut().filter(|_| self.stream == Some(Stream::Duplex)) {
            edge.from_line(&mut audio);
        }
        let Some(call) = self.call.as_mut() else { return };
        if call.answered {
            return self.event(LineEvent::Audio(audio));
        }
        let sound = call.detector.classify(&audio);
        self.event(LineEvent::EarlyAudio(audio));
        let Some(call) = self.call.as_mut() else { return };
        match sound {
            Sound::Tone => {
                call.voiced = 0;
                // Once the modem reported ringback, its tone keeps it heard; a tone
                // before that may be busy, which shares ringback's frequencies.
                if call.ringback_until.is_some() {
                    self.ringback_heard(now, now);
                }
            }
            Sound::Voice => {
                call.voiced += 1;
                if call.voiced >= VOICE_FRAMES {
                    self.answered(AnswerSource::VoiceDetected);
                }
            }
            Sound::Quiet => call.voiced = 0,
        }
    }

    /// Ringback heard at `now`, sounding until `until`.
    fn ringback_heard(&mut self, now: Instant, until: Instant) {
        let Some(call) = self.call.as_mut().filter(|c| !c.answered) else {
            return;
        };
        let first = call.ringback_until.is_none();
        call.ringback_until = Some(call.ringback_until.map_or(until, |at| at.max(until)).max(now));
        if first {
            self.event(LineEvent::Ringing);
        }
    }

    fn answered(&mut self, how: AnswerSource) {
        if let Some(call) = self.call.as_mut()
            && !call.answered
        {
            call.answered = true;
            self.event(LineEvent::Answered(how));
        }
    }

    fn on_dle(&mut self, now: Instant, code: u8) {
        let answered = self.call.as_ref().is_some_and(|c| c.answered);
        match code {
            b'r' => {
                let burst = self
                    .config
                    .country
                    .map_or(Duration::ZERO, |c| c.ringback().burst_span());
                self.ringback_heard(now, now + burst);
            }
            b'L' => self.answered(AnswerSource::PolarityReversal),
            b'b' if answered => self.end_call(now, LineEvent::RemoteHangup(HangupReason::BusyTone)),
            b'b' if self.call.is_some() => self.end_call(now, LineEvent::Busy),
            b'J' if self.call.is_some() => self.end_call(now, LineEvent::Invalid),
            b'l' if answered => self.end_call(now, LineEvent::RemoteHangup(HangupReason::LoopBreak)),
            b'l' if self.call.is_some() => self.end_call(now, LineEvent::Fault("loop current lost".into())),
            b's' if answered => self.end_call(now, LineEvent::RemoteHangup(HangupReason::Silence)),
            b'u' => self.underruns += 1,
            b'o' => self.overruns += 1,
            ETX => {
                self.stream = None;
                if matches!(self.waiting, Some((Step::LeaveStream, _))) {
                    self.send(now, Step::OnHook, "ATH");
                }
            }
            digit if answered && (digit.is_ascii_digit() || b"*#ABCD".contains(&digit)) => {
                self.event(LineEvent::Dtmf(char::from(digit)));
            }
            _ => {}
        }
    }

    fn on_line(&mut self, now: Instant, line: &str) {
        let Some((step, _)) = self.waiting else {
            return self.on_unsolicited(now, line);
        };
        let ok = line == "OK" || line == "VCON";
        let error = line == "ERROR";
        match (step, line) {
            (Step::QueryFormats, _) if !ok && !error => self.info_lines.push(line.to_owned()),
            (Step::Reset, _) if ok => self.send(now, Step::Echo, "ATE0V1Q0"),
            (Step::Echo, _) if ok => match self.config.country {
                Some(country) => self.send(now, Step::Country, &format!("AT+GCI={:02X}", country.t35_code())),
                None => self.send(now, Step::VoiceClass, "AT+FCLASS=8"),
            },
            // A modem without country selection keeps its own: go on, and say so.
            (Step::Country, _) if ok || error => {
                if error {
                    tracing::warn!(country = ?self.config.country, "the modem refused +GCI: its own country's tones apply");
                }
                self.send(now, Step::VoiceClass, "AT+FCLASS=8")
            }
            (Step::VoiceClass, _) if ok => {
                self.info_lines.clear();
                self.send(now, Step::QueryFormats, "AT+VSM=?");
            }
            (Step::QueryFormats, _) if ok => match pick_ulaw(&self.info_lines) {
                Some(id) => self.send(now, Step::SetFormat, &format!("AT+VSM={id},8000")),
                None => self.fault("the modem offers no mu-law voice format"),
            },
            (Step::SetFormat, _) if ok => self.send(now, Step::SilenceOff, "AT+VSD=0,0"),
            // Not every modem has silence tuning or an inactivity timer: go on.
            (Step::SilenceOff, _) if ok || error => self.send(now, Step::InactivityOff, "AT+VIT=0"),
            (Step::InactivityOff, _) if ok || error => {
                let tenths = (self.config.ringback_gap.as_millis() / 100).min(255);
                self.send(now, Step::RingbackAway, &format!("AT+VRA={tenths}"))
            }
            (Step::RingbackAway, _) if ok || error => {
                let secs = self.config.no_ringback.as_secs().min(255);
                self.send(now, Step::RingbackNever, &format!("AT+VRN={secs}"))
            }
            (Step::RingbackNever, _) if ok || error => self.send(now, Step::ProbeTones, "AT+VTS=?"),
            (Step::ProbeTones, _) if ok || error => {
                self.vts = ok;
                self.waiting = None;
                self.event(LineEvent::Ready);
            }
            (Step::OffHook, _) if ok => {
                let dial = format!("ATDT{}", self.number);
                self.send(now, Step::Dial, &dial);
            }
            (Step::Dial, _) if ok => match self.config.audio {
                LineAudio::Serial => self.send(now, Step::FullDuplex, "AT+VTR"),
                // The line is held; its audio is the sound card's.
                LineAudio::SoundCard => self.waiting = None,
            },
            (Step::FullDuplex, "CONNECT") | (Step::HalfDuplex, "CONNECT") => {
                self.half_duplex = step == Step::HalfDuplex;
                self.waiting = None;
                self.stream = Some(if self.half_duplex {
                    Stream::Receive
                } else {
                    Stream::Duplex
                });
                self.parser.set_streaming(true);
                if !self.half_duplex {
                    self.duplex_started();
                }
            }
            (Step::Switch, _) if ok => {
                self.waiting = None;
                self.after_switch(now);
            }
            (Step::Tone, _) if ok || error => {
                if error {
                    // Refused after all: the remaining keys go as tones.
                    self.vts = false;
                    for key in std::mem::take(&mut self.keys) {
                        self.key_frames.extend(dtmf_frames(key));
                    }
                }
                self.waiting = None;
                self.after_switch(now);
            }
            (Step::Enter(stream), "CONNECT") => {
                self.waiting = None;
                self.stream = Some(stream);
                self.parser.set_streaming(true);
                if stream == Stream::Duplex {
                    self.duplex_started();
                }
                if stream == Stream::Transmit {
                    self.last_voice = Some(now);
                    for audio in std::mem::take(&mut self.backlog) {
                        self.write_audio(&audio);
                    }
                }
            }
            (Step::FullDuplex, "ERROR") => self.send(now, Step::HalfDuplex, "AT+VRX"),
            (Step::OffHook | Step::Dial | Step::FullDuplex | Step::HalfDuplex | Step::Enter(_), "BUSY") => {
                self.end_call(now, LineEvent::Busy)
            }
            (
                Step::OffHook | Step::Dial | Step::FullDuplex | Step::HalfDuplex,
                "NO DIALTONE" | "NO DIAL TONE",
            ) => self.end_call(now, LineEvent::NoDialTone),
            (
                Step::OffHook | Step::Dial | Step::FullDuplex | Step::HalfDuplex,
                "NO ANSWER" | "NO CARRIER",
            ) => self.end_call(now, LineEvent::NoAnswer),
            (Step::Enter(_) | Step::Switch | Step::Tone, "NO CARRIER") => {
                self.end_call(now, LineEvent::RemoteHangup(HangupReason::LoopBreak))
            }
            (Step::LeaveStream, _) if ok => self.send(now, Step::OnHook, "ATH"),
            (Step::Resync, _) if ok => self.send(now, Step::OnHook, "ATH"),
            (Step::OnHook, _) if ok || error => {
                self.waiting = None;
                self.event(LineEvent::Idle);
            }
            (_, _) if error => {
                let what = format!("the modem refused a command ({step:?})");
                self.end_call(now, LineEvent::Fault(what));
            }
            _ => {}
        }
    }

    /// A result code with no command waiting: a modem holding the line in
    /// command mode may report the call's end this way rather than by DLE event.
    fn on_unsolicited(&mut self, now: Instant, line: &str) {
        let Some(call) = self.call.as_ref() else {
            return;
        };
        let event = match (call.answered, line) {
            (true, "NO CARRIER") => LineEvent::RemoteHangup(HangupReason::LoopBreak),
            (true, "BUSY") => LineEvent::RemoteHangup(HangupReason::BusyTone),
            (false, "BUSY") => LineEvent::Busy,
            (false, "NO ANSWER" | "NO CARRIER") => LineEvent::NoAnswer,
            (false, "NO DIALTONE" | "NO DIAL TONE") => LineEvent::NoDialTone,
            _ => return,
        };
        self.end_call(now, event);
    }

    fn fault(&mut self, what: &str) {
        self.waiting = None;
        self.event(LineEvent::Fault(what.to_owned()));
    }

    /// The next output, if any.
    pub fn poll_output(&mut self) -> Option<DriverOutput> {
        self.out.pop_front()
    }

    /// The next deadline: a command's timeout or a call-progress timer.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let command = self
            .waiting
            .as_ref()
            .map(|(_, at)| *at)
            .into_iter()
            .chain(self.talk_ends_at());
        let call = self.call.as_ref().filter(|c| !c.answered).map(|c| {
            let ringing = match c.ringback_until {
                Some(last) => last + self.config.ringback_gap,
                None => c.dialed_at + self.config.no_ringback,
            };
            ringing.min(c.dialed_at + self.config.no_answer)
        });
        command.chain(call).min()
    }

    /// Fires what is due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some((step, at)) = self.waiting
            && at <= now
        {
            match step {
                Step::LeaveStream | Step::OnHook if self.resyncs < 3 => {
                    // A modem stuck in (or after) a stream: end it every way we know.
                    self.resyncs += 1;
                    self.parser.set_streaming(false);
                    self.out
                        .push_back(DriverOutput::Write(vec![DLE, ETX, DLE, b'^', b'\r']));
                    self.send(now, Step::Resync, "AT");
                }
                Step::Resync if self.resyncs < 3 => {
                    self.resyncs += 1;
                    self.send(now, Step::Resync, "AT");
                }
                _ => {
                    self.call = None;
                    self.fault(&format!("no answer from the modem to {step:?}"));
                }
            }
            return;
        }
        if self.talk_ends_at().is_some_and(|at| at <= now) {
            self.switch(now, Some(Stream::Receive));
            return;
        }
        let Some(call) = self.call.as_ref().filter(|c| !c.answered) else {
            return;
        };
        if now >= call.dialed_at + self.config.no_answer {
            self.end_call(now, LineEvent::NoAnswer);
        } else if let Some(last) = call.ringback_until {
            if now >= last + self.config.ringback_gap {
                self.answered(AnswerSource::RingbackStopped);
            }
        } else if now >= call.dialed_at + self.config.no_ringback {
            self.answered(AnswerSource::NoRingback);
        }
    }
}
