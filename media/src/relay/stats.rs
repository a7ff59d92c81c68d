//! The relay's media counters, for the metrics that `offhook media` publishes
//! into the directory: RTP packets received, sent and dropped as invalid, late and
//! lost packets (the jitter buffer's view), calls in progress, and each line's
//! jitter buffer depth. A call adds what its leg counted since it last reported,
//! once per 20 ms frame, so the counters move while calls run, not only at their end.
//! Sound card lines add their card's counters (samples played, captured, underruns
//! during calls, overruns, dropped, and what its drift compensator dropped and
//! repeated), read from the card's atomics, and its gauges:
//! the devices (`offhook_soundcard_info`, names as labels), the rate the card runs
//! at, the device latency each way and the play queue's depth. Each line's
//! state (idle, dialing, in call, fault, offline) is a gauge per state.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use offhook_vocab::LineState;

use crate::soundcard::CardCounters;

/// What one call's network leg has counted so far (all since the call began).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LegCounts {
    /// Media packets received and accepted.
    pub received: u64,
    /// Media packets sent.
    pub sent: u64,
    /// Datagrams dropped as invalid RTP or for coming from a foreign source.
    pub invalid: u64,
    /// Packets that arrived after their time to play.
    pub late: u64,
    /// Packets never received.
    pub lost: u64,
    /// Audio buffered ahead of the line, in milliseconds.
    pub depth_ms: u64,
}

/// Counters of the whole relay; shared by its calls.
#[derive(Debug, Default)]
pub struct RelayStats {
    received: AtomicU64,
    sent: AtomicU64,
    invalid: AtomicU64,
    late: AtomicU64,
    lost: AtomicU64,
    active_calls: AtomicI64,
    depth_ms: HashMap<String, AtomicU64>,
    /// Each line's state, as its index in [`LineState::ALL`].
    states: HashMap<String, AtomicUsize>,
    /// Why each faulty line is faulty.
    faults: Mutex<HashMap<String, String>>,
    /// Each sound card line's card, as last opened.
    cards: Mutex<std::collections::BTreeMap<String, Arc<CardCounters>>>,
}

fn state_index(state: LineState) -> usize {
    LineState::ALL.iter().position(|s| *s == state).unwrap_or(0)
}

impl RelayStats {
    /// Counters for a relay with these lines.
    pub fn new<'a>(lines: impl IntoIterator<Item = &'a str>) -> Self {
        let lines: Vec<&str> = lines.into_iter().collect();
        let offline = state_index(LineState::Offline);
        Self {
            depth_ms: lines
                .iter()
                .map(|l| ((*l).to_owned(), AtomicU64::default()))
                .collect(),
            states: lines
                .iter()
                .map(|l| ((*l).to_owned(), AtomicUsize::new(offline)))
                .collect(),
            ..Self::default()
        }
    }

    /// `line` is in `state` now (`fault`: why, when faulty).
    pub(crate) fn set_line_state(&self, line: &str, state: LineState, fault: Option<&str>) {
        if let Some(slot) = self.states.get(line) {
            slot.store(state_index(state), Ordering::Relaxed);
        }
        let mut faults = self
            .faults
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match (state, fault) {
            (LineState::Fault, Some(why)) => {
                faults.insert(line.to_owned(), why.to_owned());
            }
            _ => {
                faults.remove(line);
            }
        }
    }

    /// Each line's state now, with why it is faulty (for the directory).
    pub fn line_states(&self) -> Vec<(String, LineState, Option<String>)> {
        let faults = self
            .faults
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut states: Vec<_> = self
            .states
            .iter()
            .map(|(line, slot)| {
                let state = LineState::ALL
                    .get(slot.load(Ordering::Relaxed))
                    .copied()
                    .unwrap_or(LineState::Offline);
                (line.clone(), state, faults.get(line).cloned())
            })
            .collect();
        states.sort_by(|a, b| a.0.cmp(&b.0));
        states
    }

    /// `line`'s sound card is (again) open with these counters.
    pub(crate) fn set_card(&self, line: &str, counters: Arc<CardCounters>) {
        let mut cards = self
            .cards
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        cards.insert(line.to_owned(), counters);
    }

    /// A call starts.
    pub(crate) fn call_started(&self) {
        self.active_calls.fetch_add(1, Ordering::Relaxed);
    }

    /// A call on `line` ended; its buffer is gone.
    pub(crate) fn call_ended(&self, line: &str) {
        self.active_calls.fetch_sub(1, Ordering::Relaxed);
        if let Some(depth) = self.depth_ms.get(line) {
            depth.store(0, Ordering::Relaxed);
        }
    }

    /// Adds what a call on `line` counted between `before` and `now`.
    pub(crate) fn add(&self, line: &str, before: &LegCounts, now: &LegCounts) {
        let add = |counter: &AtomicU64, a: u64, b: u64| {
            if b > a {
                counter.fetch_add(b - a, Ordering::Relaxed);
            }
        };
        add(&self.received, before.received, now.received);
        add(&self.sent, before.sent, now.sent);
        add(&self.invalid, before.invalid, now.invalid);
        add(&self.late, before.late, now.late);
        add(&self.lost, before.lost, now.lost);
        if let Some(depth) = self.depth_ms.get(line) {
            depth.store(now.depth_ms, Ordering::Relaxed);
        }
    }

    /// The counters as (metric name, Prometheus labels, value), for the
    /// directory's node metrics.
    pub fn metric_values(&self) -> Vec<(String, String, i64)> {
        let value = |c: &AtomicU64| i64::try_from(c.load(Ordering::Relaxed)).unwrap_or(i64::MAX);
        let mut values = vec![
            (
                "offhook_rtp_packets_received_total".to_owned(),
                String::new(),
                value(&self.received),
            ),
            (
                "offhook_rtp_packets_sent_total".to_owned(),
                String::new(),
                value(&self.sent),
            ),
            (
                "offhook_rtp_packets_invalid_total".to_owned(),
                String::new(),
                value(&self.invalid),
            ),
            (
                "offhook_rtp_packets_late_total".to_owned(),
                String::new(),
                value(&self.late),
            ),
            (
                "offhook_rtp_packets_lost_total".to_owned(),
                String::new(),
                value(&self.lost),
            ),
            (
                "offhook_relay_active_calls".to_owned(),
                String::new(),
                self.active_calls.load(Ordering::Relaxed),
            ),
        ];
        let mut lines: Vec<_> = self.depth_ms.iter().collect();
        lines.sort_by(|a, b| a.0.cmp(b.0));
        values.extend(lines.into_iter().map(|(line, depth)| {
            (
                "offhook_jitter_buffer_depth_ms".to_owned(),
                format!("line=\"{line}\""),
                value(depth),
            )
        }));
        let mut states: Vec<_> = self.states.iter().collect();
        states.sort_by(|a, b| a.0.cmp(b.0));
        for (line, state) in states {
            let now = state.load(Ordering::Relaxed);
            for (i, word) in LineState::ALL.iter().enumerate() {
                values.push((
                    "offhook_relay_line_state".to_owned(),
                    format!("line=\"{line}\",state=\"{word}\""),
                    i64::from(i == now),
                ));
            }
        }
        let cards = self
            .cards
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (line, counters) in cards.iter() {
            let c = counters.read();
            for (name, count) in [
                ("offhook_soundcard_played_samples_total", c.played),
                ("offhook_soundcard_captured_samples_total", c.captured),
                ("offhook_soundcard_underrun_samples_total", c.underruns),
                ("offhook_soundcard_overrun_samples_total", c.overruns),
                ("offhook_soundcard_dropped_samples_total", c.dropped),
                ("offhook_soundcard_drift_dropped_samples_total", c.drift_dropped),
                ("offhook_soundcard_drift_repeated_samples_total", c.drift_repeated),
            ] {
                let count = i64::try_from(count).unwrap_or(i64::MAX);
                values.push((name.to_owned(), format!("line=\"{line}\""), count));
            }
            let label = |text: &str| text.replace('\\', "\\\\").replace('"', "\\\"");
            values.push((
                "offhook_soundcard_info".to_owned(),
                format!(
                    "line=\"{line}\",playback=\"{}\",capture=\"{}\"",
                    label(&counters.playback),
                    label(&counters.capture)
                ),
                1,
            ));
            for (name, gauge) in [
                (
                    "offhook_soundcard_playback_latency_us",
                    &counters.playback_latency_us,
                ),
                (
                    "offhook_soundcard_capture_latency_us",
                    &counters.capture_latency_us,
                ),
                ("offhook_soundcard_queued_samples", &counters.queued),
            ] {
                values.push((name.to_owned(), format!("line=\"{line}\""), value(gauge)));
            }
            values.push((
                "offhook_soundcard_rate_hz".to_owned(),
                format!("line=\"{line}\""),
                i64::from(counters.rate.load(Ordering::Relaxed)),
            ));
        }
        values
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_what_calls_counted_since_they_last_reported() {
        let stats = RelayStats::new(["line-1"]);
        stats.call_started();
        let first = LegCounts {
            received: 50,
            sent: 49,
            late: 1,
            depth_ms: 40,
            ..LegCounts::default()
        };
        stats.add("line-1", &LegCounts::default(), &first);
        let second = LegCounts {
            received: 100,
            sent: 99,
            lost: 2,
            depth_ms: 60,
            ..first
        };
        stats.add("line-1", &first, &second);
        let values = stats.metric_values();
        let get = |name: &str| values.iter().find(|(n, _, _)| n == name).map(|(_, _, v)| *v);
        assert_eq!(get("offhook_rtp_packets_received_total"), Some(100));
        assert_eq!(get("offhook_rtp_packets_sent_total"), Some(99));
        assert_eq!(get("offhook_rtp_packets_late_total"), Some(1));
        assert_eq!(get("offhook_rtp_packets_lost_total"), Some(2));
        assert_eq!(get("offhook_relay_active_calls"), Some(1));
        assert!(values.contains(&(
            "offhook_jitter_buffer_depth_ms".into(),
            "line=\"line-1\"".into(),
            60
        )));
        stats.call_ended("line-1");
        stats.set_line_state("line-1", LineState::Fault, Some("no modem"));
        let values = stats.metric_values();
        let state = |s: &str| {
            values
                .iter()
                .find(|(n, l, _)| n == "offhook_relay_line_state" && l.contains(&format!("state=\"{s}\"")))
                .map(|(_, _, v)| *v)
        };
        assert_eq!((state("fault"), state("idle")), (Some(1), Some(0)));
        assert!(values.contains(&(
            "offhook_jitter_buffer_depth_ms".into(),
            "line=\"line-1\"".into(),
            0
        )));
        assert!(values.contains(&("offhook_relay_active_calls".into(), String::new(), 0)));
    }
}
