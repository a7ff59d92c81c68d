//! Operator requests on live things: hang up a call, reset a line. The admin API
//! and the command line write a durable request here; the node that owns the call
//! or line (it alone can act on it) picks it up and completes it:
//!
//! 1. [`Directory::open_operator_actions`]: the open requests (poll it every
//!    second or so and keep those whose target you own);
//! 2. [`Directory::claim_operator_action`]: take one for a while, so that no
//!    other node acts on it too;
//! 3. [`Directory::complete_operator_action`]: say how it went (`done`,
//!    `failed`, `not-found`).
//!
//! A request nobody completes by its `expires_at` ends as `expired`, so the
//! requester always learns an outcome. One open request per target: asking again
//! returns the open one.

use serde::Serialize;
use sqlx::{FromRow, Row, any::AnyRow};

use crate::db::{Directory, Scope};
use crate::error::{DirectoryError, Result};
use crate::ids::new_id;

/// What is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ActionKind {
    /// End a call on both sides (target: its CDR id).
    HangupCall,
    /// Put a line back to a known state: end its call, re-open its device, and
    /// return it to `idle` (target: the line id).
    ResetLine,
}

impl ActionKind {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HangupCall => "hangup-call",
            Self::ResetLine => "reset-line",
        }
    }

    fn parse(text: &str) -> sqlx::Result<Self> {
        match text {
            "hangup-call" => Ok(Self::HangupCall),
            "reset-line" => Ok(Self::ResetLine),
            other => Err(sqlx::Error::Decode(
                format!("operator action kind '{other}'").into(),
            )),
        }
    }
}

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ActionResult {
    /// Carried out.
    Done,
    /// Tried and failed (the detail says why).
    Failed,
    /// The owner no longer had the target (the call had ended, the line was gone).
    NotFound,
    /// Nobody completed it in time.
    Expired,
}

impl ActionResult {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Done => "done",
            Self::Failed => "failed",
            Self::NotFound => "not-found",
            Self::Expired => "expired",
        }
    }

    fn parse(text: &str) -> sqlx::Result<Self> {
        match text {
            "done" => Ok(Self::Done),
            "failed" => Ok(Self::Failed),
            "not-found" => Ok(Self::NotFound),
            "expired" => Ok(Self::Expired),
            other => Err(sqlx::Error::Decode(
                format!("operator action result '{other}'").into(),
            )),
        }
    }
}

/// A request and where it stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct OperatorAction {
    /// Generated id (`act_…`).
    pub id: String,
    /// What is asked.
    pub kind: ActionKind,
    /// The CDR id (hang-up) or line id (reset).
    pub target_id: String,
    /// What the requester saw: the line's name, or the call's number and start.
    pub target_label: String,
    /// The tenant of the call or line (`None`: a shared line).
    pub tenant_id: Option<String>,
    /// Who asked (token name or `cli:USER`).
    pub requested_by: String,
    /// When, Unix ms.
    pub requested_at: i64,
    /// Ends as `expired` if not completed by then, Unix ms.
    pub expires_at: i64,
    /// The node working on it, while it does.
    pub claimed_by: Option<String>,
    /// Its claim runs out then, Unix ms.
    pub claim_until: Option<i64>,
    /// When it was completed, Unix ms.
    pub done_at: Option<i64>,
    /// How it ended; `None` while open.
    pub result: Option<ActionResult>,
    /// The owner's words on it.
    pub detail: String,
}

impl FromRow<'_, AnyRow> for OperatorAction {
    fn from_row(row: &AnyRow) -> sqlx::Result<Self> {
        let kind: String = row.try_get("kind")?;
        let result: Option<String> = row.try_get("result")?;
        Ok(Self {
            id: row.try_get("id")?,
            kind: ActionKind::parse(&kind)?,
            target_id: row.try_get("target_id")?,
            target_label: row.try_get("target_label")?,
            tenant_id: row.try_get("tenant_id")?,
            requested_by: row.try_get("requested_by")?,
            requested_at: row.try_get("requested_at")?,
            expires_at: row.try_get("expires_at")?,
            claimed_by: row.try_get("claimed_by")?,
            claim_until: row.try_get("claim_until")?,
            done_at: row.try_get("done_at")?,
            result: result.as_deref().map(ActionResult::parse).transpose()?,
            detail: row.try_get("detail")?,
        })
    }
}

/// A request to write.
#[derive(Debug, Clone)]
struct NewAction<'a> {
    kind: ActionKind,
    target_id: &'a str,
    target_label: String,
    tenant_id: Option<&'a str>,
    requested_by: &'a str,
    now: i64,
    expires_at: i64,
}

const LONGEST_DETAIL: usize = 300;

/// Open requests handed to a node at once.
pub(crate) const OPEN_REQUESTS: i64 = 100;

impl Directory {
    /// Asks the owner of a call (by CDR id, visible in `scope`) to hang it up;
    /// the open request when there is one already. A call that has ended is a
    /// conflict. The request expires `ttl_ms` after `now`.
    pub async fn request_hangup(
        &self,
        scope: &Scope,
        cdr_id: &str,
        requested_by: &str,
        now: i64,
        ttl_ms: i64,
    ) -> Result<OperatorAction> {
        let call = self.call_record(scope, cdr_id).await?;
        if call.cdr.ended_at.is_some() {
            return Err(DirectoryError::Conflict(format!(
                "call '{cdr_id}' has ended already"
            )));
        }
        let started = chrono::DateTime::from_timestamp_millis(call.cdr.started_at)
            .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
            .unwrap_or_default();
        self.request_action(NewAction {
            kind: ActionKind::HangupCall,
            target_id: &call.cdr.id,
            target_label: format!("call to {} started {started}", call.cdr.number),
            tenant_id: Some(&call.cdr.tenant_id),
            requested_by,
            now,
            expires_at: now.saturating_add(ttl_ms),
        })
        .await
    }

    /// Asks the relay owning a line (by name or id) to reset it; the open
    /// request when there is one already. It expires `ttl_ms` after `now`.
    pub async fn request_line_reset(
        &self,
        line: &str,
        requested_by: &str,
        now: i64,
        ttl_ms: i64,
    ) -> Result<OperatorAction> {
        let line = self.line(line).await?;
        self.request_action(NewAction {
            kind: ActionKind::ResetLine,
            target_id: &line.id,
            target_label: format!("line {} ({})", line.name, line.state),
            tenant_id: line.tenant_id.as_deref(),
            requested_by,
            now,
            expires_at: now.saturating_add(ttl_ms),
        })
        .await
    }

    async fn request_action(&self, new: NewAction<'_>) -> Result<OperatorAction> {
        self.expire_operator_actions(new.now).await?;
        sqlx::query(
            "INSERT INTO operator_actions (id, kind, target_id, target_label, tenant_id, requested_by, \
             requested_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (kind, target_id) WHERE done_at IS NULL DO NOTHING",
        )
        .bind(new_id("act"))
        .bind(new.kind.as_str())
        .bind(new.target_id)
        .bind(&new.target_label)
        .bind(new.tenant_id)
        .bind(new.requested_by)
        .bind(new.now)
        .bind(new.expires_at)
        .execute(&self.pool)
        .await?;
        let open: Option<OperatorAction> = sqlx::query_as(
            "SELECT * FROM operator_actions WHERE kind = $1 AND target_id = $2 AND done_at IS NULL",
        )
        .bind(new.kind.as_str())
        .bind(new.target_id)
        .fetch_optional(&self.pool)
        .await?;
        // Just inserted, or the open one that kept it out; completed in between
        // only by a node that acted within microseconds: ask again then.
        open.ok_or_else(|| {
            DirectoryError::Conflict("the request was completed at once; ask again".to_owned())
        })
    }

    /// Ends the open requests whose time ran out at `now` as `expired`.
    pub async fn expire_operator_actions(&self, now: i64) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE operator_actions SET done_at = $1, result = 'expired', \
             detail = 'nobody carried it out in time (is the node that owns it running?)' \
             WHERE done_at IS NULL AND expires_at <= $1",
        )
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Requests in `scope`, newest first (only open ones with `open_only`), and
    /// how many match.
    pub async fn list_operator_actions(
        &self,
        scope: &Scope,
        open_only: bool,
        limit: i64,
        offset: i64,
        now: i64,
    ) -> Result<(Vec<OperatorAction>, i64)> {
        self.expire_operator_actions(now).await?;
        const WHERE: &str =
            "WHERE (CAST($1 AS TEXT) IS NULL OR tenant_id = $1) AND ($2 = 0 OR done_at IS NULL)";
        let sql = format!(
            "SELECT * FROM operator_actions {WHERE} ORDER BY requested_at DESC, id LIMIT $3 OFFSET $4"
        );
        let actions = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(scope.tenant_id())
            .bind(i64::from(open_only))
            .bind(limit.clamp(1, 1000))
            .bind(offset.max(0))
            .fetch_all(&self.pool)
            .await?;
        let count = format!("SELECT COUNT(*) FROM operator_actions {WHERE}");
        let total: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(count))
            .bind(scope.tenant_id())
            .bind(i64::from(open_only))
            .fetch_one(&self.pool)
            .await?;
        Ok((actions, total))
    }

    /// One request by id, within `scope`.
    pub async fn operator_action(&self, scope: &Scope, id: &str) -> Result<OperatorAction> {
        let action: Option<OperatorAction> = sqlx::query_as("SELECT * FROM operator_actions WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        action
            .filter(|a| scope.sees(a.tenant_id.as_deref(), false))
            .ok_or_else(|| DirectoryError::not_found("action", id))
    }

    /// For the owners of calls and lines: the open requests at `now` that nobody
    /// holds a live claim on, oldest first (at most [`OPEN_REQUESTS`]), each with
    /// whether its call has ended already (for hang-ups: then any node may
    /// complete it as `not-found`).
    pub async fn open_operator_actions(&self, now: i64) -> Result<Vec<(OperatorAction, bool)>> {
        self.expire_operator_actions(now).await?;
        let rows: Vec<AnyRow> = sqlx::query(
            "SELECT a.*, c.ended_at AS call_ended_at FROM operator_actions a \
             LEFT JOIN cdrs c ON a.kind = 'hangup-call' AND c.id = a.target_id \
             WHERE a.done_at IS NULL AND (a.claim_until IS NULL OR a.claim_until < $1) \
             ORDER BY a.requested_at, a.id LIMIT $2",
        )
        .bind(now)
        .bind(OPEN_REQUESTS)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let ended: Option<i64> = row.try_get("call_ended_at")?;
                Ok((OperatorAction::from_row(row)?, ended.is_some()))
            })
            .collect::<sqlx::Result<_>>()
            .map_err(Into::into)
    }

    /// For the owner: takes an open request for `owner` until `claim_until`
    /// (Unix ms); false when it is done or another node holds a live claim.
    pub async fn claim_operator_action(
        &self,
        id: &str,
        owner: &str,
        now: i64,
        claim_until: i64,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE operator_actions SET claimed_by = $1, claim_until = $2 WHERE id = $3 AND done_at IS NULL \
             AND expires_at > $4 AND (claim_until IS NULL OR claim_until < $4 OR claimed_by = $1)",
        )
        .bind(owner)
        .bind(claim_until)
        .bind(id)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// For the owner: completes a request it claimed; false when it did not hold
    /// the claim (nothing written).
    pub async fn complete_operator_action(
        &self,
        id: &str,
        owner: &str,
        result: ActionResult,
        detail: &str,
        now: i64,
    ) -> Result<bool> {
        let detail: String = detail.chars().take(LONGEST_DETAIL).collect();
        let done = sqlx::query(
            "UPDATE operator_actions SET done_at = $1, result = $2, detail = $3 \
             WHERE id = $4 AND claimed_by = $5 AND done_at IS NULL",
        )
        .bind(now)
        .bind(result.as_str())
        .bind(detail)
        .bind(id)
        .bind(owner)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
