//! Call detail records: one row written when a call starts (so that a crash never
//! loses a call), updated when it is answered and when it ends. Times are given by
//! the caller (Unix ms), so signaling's clock decides, not the database's.

use serde::Serialize;
use sqlx::{FromRow, Row, any::AnyRow};

use crate::db::{Directory, Scope};
use crate::error::{DirectoryError, Result};
use crate::ids::new_id;
use crate::words::optional_word;
pub use offhook_vocab::{AnswerSource, HangupCause};

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
    /// At most this many, newest first (default 1000).
    pub limit: Option<i64>,
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
        })
    }
}

impl Directory {
    /// Writes the CDR row of a call that starts now.
    pub async fn start_cdr(&self, new: NewCdr) -> Result<Cdr> {
        let cdr = new.into_cdr()?;
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
        .execute(&self.pool)
        .await?;
        Ok(cdr)
    }

    /// Records the line a call uses.
    pub async fn set_cdr_line(&self, cdr_id: &str, line_id: &str) -> Result<()> {
        self.update_cdr(
            sqlx::query("UPDATE cdrs SET line_id = $1 WHERE id = $2")
                .bind(line_id)
                .bind(cdr_id),
            cdr_id,
        )
        .await
    }

    /// Records the answer of a call.
    pub async fn answer_cdr(&self, cdr_id: &str, at: i64, source: AnswerSource) -> Result<()> {
        self.update_cdr(
            sqlx::query("UPDATE cdrs SET answered_at = $1, answer_source = $2 WHERE id = $3")
                .bind(at)
                .bind(source.as_str())
                .bind(cdr_id),
            cdr_id,
        )
        .await
    }

    /// Records the end of a call and why it ended.
    pub async fn end_cdr(&self, cdr_id: &str, at: i64, cause: HangupCause) -> Result<()> {
        self.update_cdr(
            sqlx::query("UPDATE cdrs SET ended_at = $1, hangup_cause = $2 WHERE id = $3")
                .bind(at)
                .bind(cause.to_string())
                .bind(cdr_id),
            cdr_id,
        )
        .await
    }

    async fn update_cdr(
        &self,
        query: sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments>,
        cdr_id: &str,
    ) -> Result<()> {
        let done = query.execute(&self.pool).await?;
        if done.rows_affected() == 0 {
            return Err(DirectoryError::not_found("cdr", cdr_id));
        }
        Ok(())
    }

    /// Lists CDRs in `scope` matching `filter`, newest first.
    pub async fn list_cdrs(&self, scope: &Scope, filter: &CdrFilter) -> Result<Vec<Cdr>> {
        let tenant = match scope {
            Scope::Operator => None,
            Scope::Tenant(tenant) => Some(tenant.as_str()),
        };
        // Each optional filter is a typed parameter; NULL means "any".
        let rows = sqlx::query_as(
            "SELECT * FROM cdrs WHERE \
             (CAST($1 AS TEXT) IS NULL OR tenant_id = $1) AND \
             (CAST($2 AS BIGINT) IS NULL OR started_at >= $2) AND \
             (CAST($3 AS BIGINT) IS NULL OR started_at < $3) AND \
             (CAST($4 AS TEXT) IS NULL OR icon_id = $4) AND \
             (CAST($5 AS TEXT) IS NULL OR hangup_cause = $5) AND \
             ($7 = 0 OR ended_at IS NULL) \
             ORDER BY started_at DESC, id LIMIT $6",
        )
        .bind(tenant)
        .bind(filter.since)
        .bind(filter.until)
        .bind(filter.icon_id.as_deref())
        .bind(filter.cause.map(|c| c.to_string()))
        .bind(filter.limit.unwrap_or(1000).clamp(1, 100_000))
        .bind(i64::from(filter.active))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
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
