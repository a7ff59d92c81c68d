//! The V.253 voice-modem driver as a sans-IO state machine: bytes from the serial
//! port, commands from the relay and the time go in; bytes to write and events for
//! the relay come out, with the next deadline. It initialises the modem (voice
//! class, mu-law picked by name from `+VSM=?`, no silence detection or inactivity
//! timer), dials (`+VLS=1`, `ATDT`, full-duplex `+VTR`, half-duplex `+VRX` when
//! `+VTR` is refused — probed by trying it, since Conexant firmware answers ERROR to
//! `AT+VTR=?` while `AT+VTR` works), reports call progress from result codes and
//! DLE events, presumes or observes the answer, carries audio both ways with DLE
//! shielding, hangs up, and resynchronises a modem stuck in a stream.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::stream::{DLE, ETX, ModemOutput, StreamParser, shield};

/// How the answer of a call was known (recorded in the CDR).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerHow {
    /// Ringback was heard, then stopped (V.253 `+VRA`).
    RingbackStopped,
    /// No ringback came at all (V.253 `+VRN`).
    NoRingback,
    /// The exchange reversed the line polarity (`<DLE>L`).
    PolarityReversal,
}

impl AnswerHow {
    /// The CDR spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RingbackStopped => "ringback-stopped",
            Self::NoRingback => "no-ringback",
            Self::PolarityReversal => "polarity-reversal",
        }
    }
}

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
    Answered(AnswerHow),
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
    /// On hook again, ready for the next call.
    Idle,
    /// The modem misbehaves or a command was refused; says what.
    Fault(String),
}

/// Timing of the driver.
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
}

impl Default for DriverConfig {
    fn default() -> Self {
        Self {
            command_timeout: Duration::from_secs(3),
            ringback_gap: Duration::from_secs(3),
            no_ringback: Duration::from_secs(8),
            no_answer: Duration::from_secs(60),
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
}

/// A command sent, waiting for its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Reset,
    Echo,
    VoiceClass,
    QueryFormats,
    SetFormat,
    SilenceOff,
    InactivityOff,
    OffHook,
    Dial,
    FullDuplex,
    HalfDuplex,
    LeaveStream,
    Resync,
    OnHook,
}

#[derive(Debug)]
struct Call {
    dialed_at: Instant,
    last_ringback: Option<Instant>,
    answered: bool,
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
    /// Times the stream had to be resynchronised.
    pub resyncs: u32,
    /// Underrun / overrun events reported by the modem.
    pub underruns: u32,
    /// Overrun events reported by the modem.
    pub overruns: u32,
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
            resyncs: 0,
            underruns: 0,
            overruns: 0,
        };
        driver.send(now, Step::Reset, "ATZ");
        driver
    }

    /// Whether the line is streaming half-duplex (receive only) for lack of `+VTR`.
    pub fn is_half_duplex(&self) -> bool {
        self.half_duplex
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
        if self.parser.is_streaming() {
            self.out.push_back(DriverOutput::Write(vec![DLE, b'^']));
            self.waiting = Some((Step::LeaveStream, now + self.config.command_timeout));
        } else {
            self.send(now, Step::OnHook, "ATH");
        }
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
                    last_ringback: None,
                    answered: false,
                });
                self.event(LineEvent::Dialing);
                self.send(now, Step::OffHook, "AT+VLS=1");
            }
            LineCommand::HangUp => {
                if self.call.is_some() || self.parser.is_streaming() {
                    self.ended = true;
                    self.hang_up(now);
                }
            }
            LineCommand::Audio(audio) => {
                if self.parser.is_streaming() && !self.half_duplex {
                    let mut bytes = Vec::with_capacity(audio.len() + 8);
                    shield(&audio, &mut bytes);
                    self.out.push_back(DriverOutput::Write(bytes));
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
                ModemOutput::Audio(audio) => {
                    if self.call.as_ref().is_some_and(|c| c.answered) {
                        self.event(LineEvent::Audio(audio));
                    }
                }
                ModemOutput::Event(code) => self.on_dle(now, code),
                ModemOutput::Line(line) => self.on_line(now, &line),
            }
        }
    }

    fn answered(&mut self, how: AnswerHow) {
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
                if let Some(call) = self.call.as_mut() {
                    let first = call.last_ringback.is_none();
                    call.last_ringback = Some(now);
                    if first && !call.answered {
                        self.event(LineEvent::Ringing);
                    }
                }
            }
            b'L' => self.answered(AnswerHow::PolarityReversal),
            b'b' if answered => self.end_call(now, LineEvent::RemoteHangup(HangupReason::BusyTone)),
            b'b' if self.call.is_some() => self.end_call(now, LineEvent::Busy),
            b'J' if self.call.is_some() => self.end_call(now, LineEvent::Invalid),
            b'l' if answered => self.end_call(now, LineEvent::RemoteHangup(HangupReason::LoopBreak)),
            b'l' if self.call.is_some() => self.end_call(now, LineEvent::Fault("loop current lost".into())),
            b's' if answered => self.end_call(now, LineEvent::RemoteHangup(HangupReason::Silence)),
            b'u' => self.underruns += 1,
            b'o' => self.overruns += 1,
            ETX => {
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
            return;
        };
        let ok = line == "OK" || line == "VCON";
        let error = line == "ERROR";
        match (step, line) {
            (Step::QueryFormats, _) if !ok && !error => self.info_lines.push(line.to_owned()),
            (Step::Reset, _) if ok => self.send(now, Step::Echo, "ATE0V1Q0"),
            (Step::Echo, _) if ok => self.send(now, Step::VoiceClass, "AT+FCLASS=8"),
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
                self.waiting = None;
                self.event(LineEvent::Ready);
            }
            (Step::OffHook, _) if ok => {
                let dial = format!("ATDT{}", self.number);
                self.send(now, Step::Dial, &dial);
            }
            (Step::Dial, _) if ok => self.send(now, Step::FullDuplex, "AT+VTR"),
            (Step::FullDuplex, "CONNECT") | (Step::HalfDuplex, "CONNECT") => {
                self.half_duplex = step == Step::HalfDuplex;
                self.waiting = None;
                self.parser.set_streaming(true);
            }
            (Step::FullDuplex, "ERROR") => self.send(now, Step::HalfDuplex, "AT+VRX"),
            (Step::OffHook | Step::Dial | Step::FullDuplex | Step::HalfDuplex, "BUSY") => {
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
        let command = self.waiting.as_ref().map(|(_, at)| *at);
        let call = self.call.as_ref().filter(|c| !c.answered).map(|c| {
            let ringing = match c.last_ringback {
                Some(last) => last + self.config.ringback_gap,
                None => c.dialed_at + self.config.no_ringback,
            };
            ringing.min(c.dialed_at + self.config.no_answer)
        });
        command.into_iter().chain(call).min()
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
        let Some(call) = self.call.as_ref().filter(|c| !c.answered) else {
            return;
        };
        if now >= call.dialed_at + self.config.no_answer {
            self.end_call(now, LineEvent::NoAnswer);
        } else if let Some(last) = call.last_ringback {
            if now >= last + self.config.ringback_gap {
                self.answered(AnswerHow::RingbackStopped);
            }
        } else if now >= call.dialed_at + self.config.no_ringback {
            self.answered(AnswerHow::NoRingback);
        }
    }
}
