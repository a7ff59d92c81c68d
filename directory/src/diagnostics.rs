//! Why a line is (not) working, in one answer for the operator: the line with its
//! state and fault reason, its relay's health and when it was last seen, the
//! relay's live registrations of the line (without one, no call reaches it), the
//! call on it now and the last one, the open operator requests on it, and the
//! problems these show, in plain words.

use serde::Serialize;

use crate::call_records::CallRecord;
use crate::db::{Directory, Scope};
use crate::error::Result;
use crate::lines::{Line, LineState, Relay};
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
    /// What looks wrong, in plain words; empty when nothing does.
    pub problems: Vec<String>,
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
        let mut diagnostics = LineDiagnostics {
            line,
            relay,
            registrations,
            active_call,
            last_call,
            open_actions,
            problems: Vec::new(),
        };
        diagnostics.problems = problems(&diagnostics, now);
        Ok(diagnostics)
    }
}
