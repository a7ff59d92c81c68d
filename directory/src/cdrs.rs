//! Call detail records: one row written when a call starts (so that a crash never
//! loses a call), updated when it is answered and when it ends (then the tenant's
//! webhooks get their outbox rows in the same transaction, see [`crate::outbox`]).
//! Times are given by the caller (Unix ms), so signaling's clock decides, not the
//! database's. Listing them, with names and paging, is [`crate::call_records`].

use serde::Serialize;
use sqlx::{FromRow, Row, any::AnyRow};

use crate::db::{Directory, Scope};
use crate::error::{DirectoryError, Result};
use crate::ids::new_id;
use crate::outbox::{self, WebhookEvent};
use crate::usage_counters::{self, Counted, UsageDeltas};
use crate::words::optional_word;
pub(crate) use offhook_vocab::{AnswerSource, HangupCause};

/// What the far end's RTCP receiver reports said about our stream, last word of
/// the call (RFC 3550 6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CallQuality {
    /// Fraction lost in its last interval, per mille.
    pub loss_permille: Option<i64>,
    /// Cumulative packets lost.
    pub lost_packets: Option<i64>,
    /// Interarrival jitter, ms.
    pub jitter_ms: Option<i64>,
    /// Round trip, ms, once the peer echoed one of our sender reports.
    pub rtt_ms: Option<i64>,
}

impl CallQuality {
    /// Reads the relay's `X-Offhook-RTCP` header value
    /// (`sent=3;received=2;fraction-lost=0.250;cumulative-lost=10;jitter-ms=10;rtt-ms=1`).
    /// Unknown or unreadable parts are skipped; `None` when nothing is readable.
    /// Never panics: the value comes from the network.
    pub fn parse_rtcp_header(value: &str) -> Option<Self> {
        let mut quality = Self {
            loss_permille: None,
            lost_packets: None,
            jitter_ms: None,
            rtt_ms: None,
        };
        for (key, number) in value.split(';').filter_map(|part| part.trim().split_once('=')) {
            let Ok(number) = number.trim().parse::<f64>() else {
                continue;
            };
            if !number.is_finite() || number.abs() > 1e12 {
                continue;
            }
            // Rounded and within ±1e12 (checked above): the cast cannot saturate.
            let whole = |scale: f64| Some((number * scale).round() as i64);
            match key.trim() {
                "fraction-lost" if (0.0..=1.0).contains(&number) => quality.loss_permille = whole(1000.0),
                "cumulative-lost" => quality.lost_packets = whole(1.0),
                "jitter-ms" if number >= 0.0 => quality.jitter_ms = whole(1.0),
                "rtt-ms" if number >= 0.0 => quality.rtt_ms = whole(1.0),
                _ => {}
            }
        }
        let known = [
            quality.loss_permille,
            quality.lost_packets,
            quality.jitter_ms,
            quality.rtt_ms,
        ];
        known.iter().any(Option::is_some).then_some(quality)
    }

    fn from_row(row: &AnyRow) -> sqlx::Result<Option<Self>> {
        let quality = Self {
            loss_permille: row.try_get("rtcp_loss_permille")?,
            lost_packets: row.try_get("rtcp_lost_packets")?,
            jitter_ms: row.try_get("rtcp_jitter_ms")?,
            rtt_ms: row.try_get("rtcp_rtt_ms")?,
        };
        let known = [
            quality.loss_permille,
            quality.lost_packets,
            quality.jitter_ms,
            quality.rtt_ms,
        ];
        Ok(known.iter().any(Option::is_some).then_some(quality))
    }
}

/// A CDR row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Cdr {
    /// Generated id (`cdr_…`).
    pub id: String,
    /// Tenant the call is billed to.
    pub tenant_id: String,
    /// Icon the call came through, if any.
    pub icon_id: Option<String>,
    /// Calling account, if any.
    pub account_id: Option<String>,
    /// SIP Call-ID.
    pub call_id: String,
    /// Number dialed.
    pub number: String,
    /// Line used, once chosen.
    pub line_id: Option<String>,
    /// Start (INVITE received), Unix ms.
    pub started_at: i64,
    /// Answer, Unix ms.
    pub answered_at: Option<i64>,
    /// End, Unix ms.
    pub ended_at: Option<i64>,
    /// How the answer was known (see [`AnswerSource`]).
    pub answer_source: Option<AnswerSource>,
    /// Why the call ended.
    pub hangup_cause: Option<HangupCause>,
    /// RTCP figures of the call, when the relay reported them.
    pub quality: Option<CallQuality>,
}

impl FromRow<'_, AnyRow> for Cdr {
    fn from_row(row: &AnyRow) -> sqlx::Result<Self> {
        Ok(Self {
            id: row.try_get("id")?,
            tenant_id: row.try_get("tenant_id")?,
            icon_id: row.try_get("icon_id")?,
            account_id: row.try_get("account_id")?,
            call_id: row.try_get("call_id")?,
            number: row.try_get("number")?,
            line_id: row.try_get("line_id")?,
            started_at: row.try_get("started_at")?,
            answered_at: row.try_get("answered_at")?,
            ended_at: row.try_get("ended_at")?,
            answer_source: optional_word(row, "answer_source")?,
            hangup_cause: optional_word(row, "hangup_cause")?,
            quality: CallQuality::from_row(row)?,
        })
    }
}

/// Input for [`Directory::start_cdr`].
#[derive(Debug, Clone)]
pub struct NewCdr {
    /// Tenant id.
    pub tenant_id: String,
    /// Icon id, for click-to-call.
    pub icon_id: Option<String>,
    /// Account id, for softphone calls.
    pub account_id: Option<String>,
    /// SIP Call-ID.
    pub call_id: String,
    /// Number dialed.
    pub number: String,
    /// Line, if already chosen.
    pub line_id: Option<String>,
    /// Start time, Unix ms.
    pub started_at: i64,
}

/// Which CDRs to list; every field narrows the result.
#[derive(Debug, Clone, Default)]
pub struct CdrFilter {
    /// Started at or after, Unix ms.
    pub since: Option<i64>,
    /// Started before, Unix ms.
    pub until: Option<i64>,
    /// Through this icon id.
    pub icon_id: Option<String>,
    /// With this hang-up cause.
    pub cause: Option<HangupCause>,
    /// Only calls that have not ended yet (the active calls).
    pub active: bool,
    /// Text found in the number, the Call-ID, the record's id, the tenant's name,
    /// the icon's public id or label, or the account's user name (any case).
    pub search: Option<String>,
    /// At most this many, newest first (default 1000).
    pub limit: Option<i64>,
    /// Skip this many first (paging).
    pub offset: Option<i64>,
}

impl NewCdr {
    /// The row of a call that starts now, with a fresh id; the number validated.
    ///
    /// # Errors
    /// A number the directory refuses.
    pub fn into_cdr(self) -> Result<Cdr> {
        let new = self;
        Ok(Cdr {
            id: new_id("cdr"),
            tenant_id: new.tenant_id,
            icon_id: new.icon_id,
            account_id: new.account_id,
            call_id: new.call_id,
            number: crate::validate::number(&new.number)?,
            line_id: new.line_id,
            started_at: new.started_at,
            answered_at: None,
            ended_at: None,
            answer_source: None,
            hangup_cause: None,
            quality: None,
        })
    }
}

impl Directory {
    /// Writes the CDR row of a call that starts now.
    pub async fn start_cdr(&self, new: NewCdr) -> Result<Cdr> {
        let cdr = new.into_cdr()?;
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO cdrs (id, tenant_id, icon_id, account_id, call_id, number, line_id, started_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&cdr.id)
        .bind(&cdr.tenant_id)
        .bind(&cdr.icon_id)
        .bind(&cdr.account_id)
        .bind(&cdr.call_id)
        .bind(&cdr.number)
        .bind(&cdr.line_id)
        .bind(cdr.started_at)
        .execute(&mut *tx)
        .await?;
        let mut usage = UsageDeltas::default();
        usage.add(&Counted::of(&cdr), 1, 0);
        usage.write(&mut tx).await?;
        outbox::enqueue(&mut tx, WebhookEvent::CallStarted, &[&cdr.id]).await?;
        tx.commit().await?;
        Ok(cdr)
    }

    /// Records the line a call uses.
    pub async fn set_cdr_line(&self, cdr_id: &str, line_id: &str) -> Result<()> {
        let query = sqlx::query("UPDATE cdrs SET line_id = $1 WHERE id = $2")
            .bind(line_id)
            .bind(cdr_id);
        self.update_cdr(query, cdr_id, None).await
    }

    /// Records the answer of a call.
    pub async fn answer_cdr(&self, cdr_id: &str, at: i64, source: AnswerSource) -> Result<()> {
        let query = sqlx::query("UPDATE cdrs SET answered_at = $1, answer_source = $2 WHERE id = $3")
            .bind(at)
            .bind(source.as_str())
            .bind(cdr_id);
        self.update_cdr(query, cdr_id, Some(WebhookEvent::CallAnswered))
            .await
    }

    /// Records the end of a call and why it ended.
    pub async fn end_cdr(&self, cdr_id: &str, at: i64, cause: HangupCause) -> Result<()> {
        let query = sqlx::query("UPDATE cdrs SET ended_at = $1, hangup_cause = $2 WHERE id = $3")
            .bind(at)
            .bind(cause.to_string())
            .bind(cdr_id);
        self.update_cdr(query, cdr_id, Some(WebhookEvent::CallEnded))
            .await
    }

    /// Runs one change of a CDR and, in the same transaction, adds what it
    /// changed of its billed time to the usage counters and queues the webhook
    /// deliveries of `event`.
    async fn update_cdr(
        &self,
        query: sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments>,
        cdr_id: &str,
        event: Option<WebhookEvent>,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let before = usage_counters::before_change(&mut tx, &[cdr_id]).await?;
        let done = query.execute(&mut *tx).await?;
        if done.rows_affected() == 0 {
            return Err(DirectoryError::not_found("cdr", cdr_id));
        }
        usage_counters::bill_change(&mut tx, &[cdr_id], before).await?;
        if let Some(event) = event {
            outbox::enqueue(&mut tx, event, &[cdr_id]).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

impl Directory {
    /// Calls started per hour in `scope` since `since` (Unix ms): the start of each
    /// hour (Unix ms) that had calls, and how many, oldest first.
    pub async fn calls_per_hour(&self, scope: &Scope, since: i64) -> Result<Vec<(i64, i64)>> {
        let rows: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT (started_at / 3600000) * 3600000 AS hour, COUNT(*) AS calls FROM cdrs \
             WHERE started_at >= $1 AND (CAST($2 AS TEXT) IS NULL OR tenant_id = $2) \
             GROUP BY (started_at / 3600000) * 3600000 ORDER BY hour",
        )
        .bind(since)
        .bind(scope.tenant_id())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }

    /// Calls by how they ended (`active` for calls not ended yet), all tenants.
    pub async fn cdr_outcomes(&self) -> Result<Vec<(String, i64)>> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT COALESCE(hangup_cause, 'active') AS outcome, COUNT(*) AS calls FROM cdrs \
             GROUP BY COALESCE(hangup_cause, 'active') ORDER BY outcome",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }
}
