//! A call's audio between its network leg ([`MediaLeg`]: RTP/AVP or WebRTC)
//! and its line, sans-IO: datagrams and line audio go in as they come; once the
//! call is answered a 20 ms playout clock gives the line a frame of mu-law per
//! tick (and the caller's keys, RFC 4733 events or SIP INFO, as line commands),
//! and adds what the leg counted to the relay's metrics. The leg runs from the
//! moment its socket is bound (WebRTC's ICE and DTLS may start before the
//! answer); its datagrams out, RTCP included, are polled here. While the
//! caller holds the call (`sendonly`, `inactive`) the line's audio is not sent
//! to it; RTCP goes on.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::legs::{MediaLeg, Port, Reoffer};
use super::liveness::Health;
use super::stats::{LegCounts, RelayStats};
use crate::modem::LineCommand;
use crate::rtp::jitter::FRAME_PERIOD;

/// Behind the playout clock by more than this (a stalled loop), it skips ahead
/// instead of bursting the frames it missed into the line.
const MAX_BEHIND: Duration = Duration::from_millis(100);

/// Keys waiting for the line, at most.
const MAX_KEYS: usize = 16;

/// One call's media (see the module comment).
pub(crate) struct Bridge {
    leg: Box<dyn MediaLeg>,
    /// The next 20 ms playout tick, once answered.
    next_tick: Option<Instant>,
    /// What the leg had counted when the metrics last heard of it.
    counted: LegCounts,
    /// Keys the caller sent by SIP INFO, for the next playout ticks (bounded).
    keys: VecDeque<char>,
    /// The caller takes our audio (not while it holds the call).
    sending: bool,
}

impl std::fmt::Debug for Bridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bridge")
            .field("next_tick", &self.next_tick)
            .field("counted", &self.counted)
            .finish()
    }
}

impl Bridge {
    pub(crate) fn new(leg: Box<dyn MediaLeg>) -> Self {
        Self {
            leg,
            next_tick: None,
            counted: LegCounts::default(),
            keys: VecDeque::new(),
            sending: true,
        }
    }

    /// Whether the line's audio goes to the caller, from now on.
    pub(crate) fn set_sending(&mut self, sending: bool) {
        self.sending = sending;
    }

    /// A new offer in the dialog, for the leg (see [`MediaLeg::reoffer`]).
    pub(crate) fn reoffer(&mut self, offer: Reoffer<'_>) -> Result<Option<String>, String> {
        self.leg.reoffer(offer)
    }

    /// A key the caller sent outside the media (SIP INFO), for the line; a
    /// caller who sends more than [`MAX_KEYS`] at once loses the oldest.
    pub(crate) fn play_key(&mut self, key: char) {
        if self.keys.len() == MAX_KEYS {
            self.keys.pop_front();
        }
        self.keys.push_back(key);
    }

    /// The call is answered: the playout clock starts at `now`.
    pub(crate) fn start(&mut self, now: Instant) {
        self.next_tick = Some(now);
    }

    /// A datagram from the caller.
    pub(crate) fn on_datagram(&mut self, now: Instant, port: Port, from: SocketAddr, bytes: &[u8]) {
        self.leg.on_datagram(now, port, from, bytes);
    }

    /// 20 ms of the line's audio, to the caller.
    pub(crate) fn on_line_audio(&mut self, now: Instant, mulaw: &[u8]) {
        if self.sending {
            self.leg.on_line_audio(now, mulaw);
        }
    }

    /// A key pressed at the line's far end, to the caller.
    pub(crate) fn on_line_key(&mut self, key: char) {
        self.leg.send_dtmf(key);
    }

    /// The next deadline: the leg's, or the playout tick.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.leg.poll_timeout().into_iter().chain(self.next_tick).min()
    }

    /// Fires what is due at `now`: the leg's timers, then each playout tick due,
    /// whose keys and frame go to `line`; the metrics of `line_name` hear the
    /// leg's counts.
    pub(crate) fn handle_timeout(
        &mut self,
        now: Instant,
        line: &mut Vec<LineCommand>,
        stats: &RelayStats,
        line_name: &str,
    ) {
        if self.leg.poll_timeout().is_some_and(|at| at <= now) {
            self.leg.handle_timeout(now);
        }
        let Some(mut tick) = self.next_tick else { return };
        if now.saturating_duration_since(tick) > MAX_BEHIND {
            tick = now;
        }
        while tick <= now {
            if let Some(key) = self.keys.pop_front().or_else(|| self.leg.poll_dtmf()) {
                // The line plays it: +VTS, or its dual tone in place of our audio.
                line.push(LineCommand::Dtmf(key));
            }
            line.push(LineCommand::Audio(self.leg.next_line_frame(tick).to_vec()));
            tick += FRAME_PERIOD;
        }
        self.next_tick = Some(tick);
        let counts = self.leg.counts();
        stats.add(line_name, &self.counted, &counts);
        self.counted = counts;
    }

    /// A datagram for the caller, and the socket it leaves from.
    pub(crate) fn poll_datagram(&mut self) -> Option<(Port, SocketAddr, Vec<u8>)> {
        self.leg.poll_datagram()
    }

    /// What the leg knows of the caller's media liveness.
    pub(crate) fn health(&self) -> Health {
        self.leg.health()
    }

    /// The caller's RTCP view of our stream, for an `X-Offhook-RTCP` header
    /// (RTP/AVP legs; str0m keeps WebRTC's to itself); asked for as the call
    /// ends, so our own counts of the leg go to the log then too.
    pub(crate) fn closing_rtcp_header(&self) -> Option<String> {
        let c = self.leg.counts();
        tracing::info!(
            received = c.received,
            sent = c.sent,
            lost = c.lost,
            late = c.late,
            invalid = c.invalid,
            "call media counts"
        );
        let reports = self.leg.peer_reports()?;
        let header = reports.to_header();
        tracing::info!(rtcp = %header, "call media ended");
        Some(header)
    }
}
