//! The relay's lines as its gateway sees them: each line's state (offline until
//! its modem is ready, idle, dialing, in call, or faulty with why), the call
//! that holds it (from the INVITE until the line is on hook again), and its
//! registration with signaling. A line takes a call only when it is idle and
//! held by none; a fault reported while no call holds it puts it out of use
//! until the modem is ready or on hook again.

use std::collections::BTreeMap;

use offhook_sip::ua::{RegistrationId, SessionId};
use offhook_vocab::LineState;

/// Where a line's registration with signaling stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registration {
    /// Not asked for yet (the modem is not ready).
    NotYet,
    /// The first REGISTER is out.
    Pending,
    /// Registered.
    Registered,
    /// The registrar refused it (or did not answer) with this status; retried.
    Failed(u16),
}

/// A line's state, as [`super::Gateway::line`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineStatus {
    /// What it is doing.
    pub state: LineState,
    /// Why it is faulty.
    pub fault: Option<String>,
    /// Its registration.
    pub registration: Registration,
}

#[derive(Debug)]
struct Line {
    status: LineStatus,
    call: Option<SessionId>,
    registration: Option<RegistrationId>,
}

/// Why a line cannot take a call now (the caller gets 503: signaling tries
/// another line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unavailable {
    /// No line of that name here.
    Unknown,
    /// Its modem failed.
    Faulty,
    /// Another call holds it (or is still hanging it up).
    InUse,
    /// Its modem is not ready yet.
    NotReady,
}

/// All lines of a relay, by name.
#[derive(Debug, Default)]
pub(crate) struct Lines {
    lines: BTreeMap<String, Line>,
}

impl Lines {
    /// Lines with these names, all offline.
    pub(crate) fn new<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        let lines = names
            .into_iter()
            .map(|name| {
                let line = Line {
                    status: LineStatus {
                        state: LineState::Offline,
                        fault: None,
                        registration: Registration::NotYet,
                    },
                    call: None,
                    registration: None,
                };
                (name.to_owned(), line)
            })
            .collect();
        Self { lines }
    }

    /// The status of `name`.
    pub(crate) fn status(&self, name: &str) -> Option<&LineStatus> {
        self.lines.get(name).map(|l| &l.status)
    }

    /// Every line's status, by name.
    pub(crate) fn all(&self) -> impl Iterator<Item = (&str, &LineStatus)> {
        self.lines.iter().map(|(n, l)| (n.as_str(), &l.status))
    }

    /// The call holding `name`.
    pub(crate) fn holder(&self, name: &str) -> Option<SessionId> {
        self.lines.get(name)?.call
    }

    /// `call` claims `name` for dialing.
    pub(crate) fn claim(&mut self, name: &str, call: SessionId) -> Result<(), Unavailable> {
        let line = self.lines.get_mut(name).ok_or(Unavailable::Unknown)?;
        match (&line.status.state, line.call) {
            (LineState::Idle, None) => {
                line.call = Some(call);
                line.status.state = LineState::Dialing;
                Ok(())
            }
            (LineState::Fault, _) => Err(Unavailable::Faulty),
            (LineState::Offline, None) => Err(Unavailable::NotReady),
            _ => Err(Unavailable::InUse),
        }
    }

    /// The call on `name` was answered.
    pub(crate) fn answered(&mut self, name: &str) {
        if let Some(line) = self.lines.get_mut(name) {
            line.status.state = LineState::InCall;
        }
    }

    /// The call on `name` let go of it: idle again, or faulty with `fault`.
    pub(crate) fn release(&mut self, name: &str, fault: Option<String>) {
        if let Some(line) = self.lines.get_mut(name) {
            line.call = None;
            line.status.state = match fault {
                Some(_) => LineState::Fault,
                None => LineState::Idle,
            };
            line.status.fault = fault;
        }
    }

    /// The modem of `name` is ready or on hook with no call holding it: idle
    /// (a fault is over). Returns whether it still needs registering.
    pub(crate) fn ready(&mut self, name: &str) -> bool {
        let Some(line) = self.lines.get_mut(name) else {
            return false;
        };
        line.status.state = LineState::Idle;
        line.status.fault = None;
        line.registration.is_none()
    }

    /// The modem of `name` failed with no call holding it.
    pub(crate) fn fault(&mut self, name: &str, why: String) {
        if let Some(line) = self.lines.get_mut(name) {
            line.status.state = LineState::Fault;
            line.status.fault = Some(why);
        }
    }

    /// `name` is being registered as `registration`.
    pub(crate) fn registering(&mut self, name: &str, registration: RegistrationId) {
        if let Some(line) = self.lines.get_mut(name) {
            line.registration = Some(registration);
            line.status.registration = Registration::Pending;
        }
    }

    /// What became of the registration `registration`; the line's name.
    pub(crate) fn registration(&mut self, registration: RegistrationId, now: Registration) -> Option<&str> {
        let (name, line) = self
            .lines
            .iter_mut()
            .find(|(_, l)| l.registration == Some(registration))?;
        line.status.registration = now;
        Some(name)
    }
}
