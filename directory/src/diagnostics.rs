//! Why a line is (not) working, in one answer for the operator: the line with its
//! state and fault reason, its relay's health and when it was last seen, the
//! relay's live registrations of the line (without one, no call reaches it), the
//! call on it now and the last one, the open operator requests on it, its sound
//! card as the relay last published it (a modem + sound card line: devices, rate,
//! device latency, underruns; from the relay's `offhook_soundcard_*` metrics), and
//! the problems these show, in plain words.

use serde::Serialize;

use crate::call_records::CallRecord;
use crate::db::{Directory, Scope};
use crate::error::Result;
use crate::lines::{Line, LineState, Relay};
use crate::node_metrics::NodeMetric;
use crate::operator_actions::{ActionKind, OperatorAction};
use crate::registrations::Registration;

/// A line on a long call is worth a look after this long.
const LONG_CALL_MS: i64 = 4 * 3_600_000;

/// Everything known about one line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct LineDiagnostics {
    /// The line, with its state, fault reason and when its state changed.
    pub line: Line,
    /// Its relay, with its health and when it was last seen.
    pub relay: Relay,
    /// The relay's live registrations of this line.
    pub registrations: Vec<Registration>,
    /// The call on the line now, if any.
    pub active_call: Option<CallRecord>,
    /// The last call that ended on it.
    pub last_call: Option<CallRecord>,
    /// Hang-up and reset requests on the line or its call not completed yet.
    pub open_actions: Vec<OperatorAction>,
    /// Its sound card, if its relay publishes one for it.
    pub sound_card: Option<SoundCardDiagnostics>,
    /// What looks wrong, in plain words; empty when nothing does.
    pub problems: Vec<String>,
}

/// A line's sound card as its relay last published it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SoundCardDiagnostics {
    /// The playback device (played into the modem's line input).
    pub playback: String,
    /// The capture device (recording the modem's line output).
    pub capture: String,
    /// The rate the card runs at, Hz (8000 unless resampled).
    pub rate_hz: i64,
    /// Device latency of playback the sound host reports, µs.
    pub playback_latency_us: i64,
    /// Device latency of capture the sound host reports, µs.
    pub capture_latency_us: i64,
    /// Samples waiting to be played.
    pub queued_samples: i64,
    /// Samples played as silence for lack of audio during calls, since the relay started.
    pub underrun_samples: i64,
    /// Captured samples the relay did not read in time.
    pub overrun_samples: i64,
    /// Samples the drift compensator dropped to hold the play queue's depth
    /// (the card's clock slow against the relay's, or what a stall left standing).
    pub drift_dropped_samples: i64,
    /// Samples the drift compensator repeated (the card's clock fast, or a queue too shallow).
    pub drift_repeated_samples: i64,
    /// Samples played.
    pub played_samples: i64,
    /// Samples captured.
    pub captured_samples: i64,
    /// When the relay published these, Unix ms.
    pub published_at: i64,
}

/// The value of `name="…"` in Prometheus `labels` (escapes undone).
fn label<'a>(labels: &'a str, name: &str) -> Option<std::borrow::Cow<'a, str>> {
    // A label starts the list or follows a comma.
    let start = format!(",{labels}").find(&format!(",{name}=\""))? + name.len() + 2;
    let rest = &labels[start..];
    let (mut end, mut escaped) = (None, false);
    for (i, c) in rest.char_indices() {
        match (escaped, c) {
            (false, '\\') => escaped = true,
            (false, '"') => {
                end = Some(i);
                break;
            }
            _ => escaped = false,
        }
    }
    let raw = &rest[..end?];
    Some(match raw.contains('\\') {
        true => raw.replace("\\\"", "\"").replace("\\\\", "\\").into(),
        false => raw.into(),
    })
}

/// The sound card of `line` in a relay's published `metrics`.
fn sound_card(metrics: &[NodeMetric], line: &str) -> Option<SoundCardDiagnostics> {
    let ours: Vec<&NodeMetric> = metrics
        .iter()
        .filter(|m| label(&m.labels, "line").as_deref() == Some(line))
        .collect();
    let info = ours.iter().find(|m| m.name == "offhook_soundcard_info")?;
    let value = |name: &str| ours.iter().find(|m| m.name == name).map_or(0, |m| m.value);
    Some(SoundCardDiagnostics {
        playback: label(&info.labels, "playback").unwrap_or_default().into_owned(),
        capture: label(&info.labels, "capture").unwrap_or_default().into_owned(),
        rate_hz: value("offhook_soundcard_rate_hz"),
        playback_latency_us: value("offhook_soundcard_playback_latency_us"),
        capture_latency_us: value("offhook_soundcard_capture_latency_us"),
        queued_samples: value("offhook_soundcard_queued_samples"),
        underrun_samples: value("offhook_soundcard_underrun_samples_total"),
        overrun_samples: value("offhook_soundcard_overrun_samples_total"),
        drift_dropped_samples: value("offhook_soundcard_drift_dropped_samples_total"),
        drift_repeated_samples: value("offhook_soundcard_drift_repeated_samples_total"),
        played_samples: value("offhook_soundcard_played_samples_total"),
        captured_samples: value("offhook_soundcard_captured_samples_total"),
        published_at: info.updated_at,
    })
}

fn time_text(ms: Option<i64>) -> String {
    ms.and_then(chrono::DateTime::from_timestamp_millis).map_or_else(
        || "never".to_owned(),
        |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    )
}

/// The problems the facts show.
fn problems(d: &LineDiagnostics, now: i64) -> Vec<String> {
    let mut problems = Vec::new();
    match d.line.state {
        LineState::Fault => problems.push(format!(
            "the line is in fault since {}: {}",
            time_text(d.line.state_changed_at),
            d.line.fault_reason.as_deref().unwrap_or("no reason recorded")
        )),
        LineState::Offline => problems.push("the line is offline: its relay does not use it".to_owned()),
        LineState::InCall | LineState::Dialing if d.active_call.is_none() => problems.push(format!(
            "the line is {} but no call on it is open: a reset returns it to idle",
            d.line.state
        )),
        _ => {}
    }
    if d.relay.state == "down" {
        problems.push(format!(
            "its relay {} does not answer health checks (last seen {})",
            d.relay.name,
            time_text(d.relay.last_seen_at)
        ));
    }
    if d.registrations.is_empty() {
        problems.push(format!(
            "relay {} has no live registration of this line: no call can reach it",
            d.relay.name
        ));
    }
    if let Some(call) = &d.active_call
        && now - call.cdr.started_at > LONG_CALL_MS
    {
        problems.push(format!(
            "its call has lasted since {}: hang it up if it is stuck",
            time_text(Some(call.cdr.started_at))
        ));
    }
    problems
}

impl Directory {
    /// The diagnostics of a line (by name or id) at `now` (Unix ms).
    pub async fn line_diagnostics(&self, line: &str, now: i64) -> Result<LineDiagnostics> {
        let line = self.line(line).await?;
        let relay = self.relay(&line.relay_id).await?;
        let registrations: Vec<Registration> = sqlx::query_as(
            "SELECT r.* FROM registrations r JOIN accounts a ON a.tenant_id = r.tenant_id AND a.username = r.aor \
             WHERE a.kind = 'relay' AND r.aor = $1 AND r.contact_user = $2 AND r.expires_at > $3 \
             ORDER BY r.updated_at DESC",
        )
        .bind(&relay.name)
        .bind(&line.name)
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        let call_on_line = |ended: bool| {
            let sql = if ended {
                "SELECT id FROM cdrs WHERE line_id = $1 AND ended_at IS NOT NULL ORDER BY ended_at DESC, id LIMIT 1"
            } else {
                "SELECT id FROM cdrs WHERE line_id = $1 AND ended_at IS NULL ORDER BY started_at DESC, id LIMIT 1"
            };
            sqlx::query_scalar::<_, String>(sql)
                .bind(&line.id)
                .fetch_optional(&self.pool)
        };
        let active_call = match call_on_line(false).await? {
            Some(id) => Some(self.call_record(&Scope::Operator, &id).await?),
            None => None,
        };
        let last_call = match call_on_line(true).await? {
            Some(id) => Some(self.call_record(&Scope::Operator, &id).await?),
            None => None,
        };
        let (mut open_actions, _) = self
            .list_operator_actions(&Scope::Operator, true, 1000, 0, now)
            .await?;
        let call_id = active_call.as_ref().map(|c| c.cdr.id.as_str());
        open_actions.retain(|a| match a.kind {
            ActionKind::ResetLine => a.target_id == line.id,
            ActionKind::HangupCall => Some(a.target_id.as_str()) == call_id,
        });
        let metrics: Vec<NodeMetric> = sqlx::query_as(
            "SELECT node, name, labels, value, updated_at FROM node_metrics \
             WHERE node = $1 AND name LIKE 'offhook_soundcard_%'",
        )
        .bind(&relay.name)
        .fetch_all(&self.pool)
        .await?;
        let sound_card = sound_card(&metrics, &line.name);
        let mut diagnostics = LineDiagnostics {
            line,
            relay,
            registrations,
            active_call,
            last_call,
            open_actions,
            sound_card,
            problems: Vec::new(),
        };
        diagnostics.problems = problems(&diagnostics, now);
        Ok(diagnostics)
    }
}

#[cfg(test)]
mod tests {
    use super::{NodeMetric, label, sound_card};

    fn metric(name: &str, labels: &str, value: i64) -> NodeMetric {
        NodeMetric {
            node: "relay".into(),
            name: name.into(),
            labels: labels.into(),
            value,
            updated_at: 7,
        }
    }

    #[test]
    fn labels_are_read_whole_and_unescaped() {
        let labels = r#"line="l1",xplayback="no",playback="a \"b\" c\\",capture="m""#;
        assert_eq!(label(labels, "line").as_deref(), Some("l1"));
        assert_eq!(label(labels, "playback").as_deref(), Some(r#"a "b" c\"#));
        assert_eq!(label(labels, "capture").as_deref(), Some("m"));
        assert_eq!(label(labels, "rate"), None);
        assert_eq!(label(r#"line="open"#, "line"), None);
    }

    #[test]
    fn a_line_s_card_comes_from_its_own_series_only() {
        let metrics = [
            metric(
                "offhook_soundcard_info",
                r#"line="l1",playback="sink",capture="src""#,
                1,
            ),
            metric("offhook_soundcard_rate_hz", r#"line="l1""#, 48_000),
            metric("offhook_soundcard_playback_latency_us", r#"line="l1""#, 40_000),
            metric("offhook_soundcard_underrun_samples_total", r#"line="l1""#, 3),
            metric("offhook_soundcard_underrun_samples_total", r#"line="l10""#, 99),
        ];
        let card = sound_card(&metrics, "l1").expect("l1 has a card");
        assert_eq!((card.playback.as_str(), card.capture.as_str()), ("sink", "src"));
        assert_eq!(
            (card.rate_hz, card.playback_latency_us, card.underrun_samples),
            (48_000, 40_000, 3)
        );
        assert_eq!(card.published_at, 7);
        assert!(sound_card(&metrics, "l10").is_none(), "no info series: no card");
    }
}
