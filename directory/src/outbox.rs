//! The webhook outbox: one row per subscribed webhook, call and event, written in
//! the transaction that writes the CDR change (so a committed call end always has
//! its deliveries, and a rolled-back one has none), then delivered by the web
//! nodes: a node claims due rows with a lease (a conditional `UPDATE` only one
//! node wins), posts them, and records the outcome while it still holds the
//! lease. A row's id is `webhook.cdr.event`, so writing a batch twice adds nothing.

use serde::{Deserialize, Serialize};
use sqlx::{Any, FromRow, Row, Transaction, any::AnyRow};

use crate::call_records::CallRecord;
use crate::db::{Directory, Scope};
use crate::error::{DirectoryError, Result};
use crate::write_behind::statement_chunks;

/// What happened to a call that a webhook can be told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum WebhookEvent {
    /// The call started (the INVITE was accepted for routing).
    #[serde(rename = "call.started")]
    CallStarted,
    /// The call was answered.
    #[serde(rename = "call.answered")]
    CallAnswered,
    /// The call ended: the record is complete (what billing wants).
    #[serde(rename = "call.ended")]
    CallEnded,
}

impl WebhookEvent {
    /// Every event, in the order of a call.
    pub const ALL: [Self; 3] = [Self::CallStarted, Self::CallAnswered, Self::CallEnded];

    /// The name in payloads and headers.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CallStarted => "call.started",
            Self::CallAnswered => "call.answered",
            Self::CallEnded => "call.ended",
        }
    }

    /// The webhook's column that subscribes to it.
    pub(crate) fn flag_column(self) -> &'static str {
        match self {
            Self::CallStarted => "on_call_start",
            Self::CallAnswered => "on_call_answer",
            Self::CallEnded => "on_call_end",
        }
    }

    /// The CDR's column with the time it happened.
    fn time_column(self) -> &'static str {
        match self {
            Self::CallStarted => "started_at",
            Self::CallAnswered => "answered_at",
            Self::CallEnded => "ended_at",
        }
    }

    /// Parses `call.started`, `call.answered` or `call.ended`.
    pub fn parse(text: &str) -> Result<Self> {
        Self::ALL.into_iter().find(|e| e.as_str() == text).ok_or_else(|| {
            DirectoryError::invalid(
                "events",
                format!("'{text}' is not an event (call.started, call.answered, call.ended)"),
            )
        })
    }
}

/// Whether any webhook is enabled (seen inside `tx`): when none is, a batch of
/// call changes has no deliveries to queue, and one probe replaces a join per
/// event (a sixth of the call writer's time at 1,500 calls a second).
pub(crate) async fn any_enabled(tx: &mut Transaction<'_, Any>) -> Result<bool> {
    let found: Option<String> = sqlx::query_scalar("SELECT id FROM webhooks WHERE enabled = 1 LIMIT 1")
        .fetch_optional(&mut **tx)
        .await?;
    Ok(found.is_some())
}

/// Queues, inside `tx`, the deliveries of `event` for these CDRs to every
/// enabled webhook of their tenants that subscribes to it.
pub(crate) async fn enqueue(
    tx: &mut Transaction<'_, Any>,
    event: WebhookEvent,
    cdr_ids: &[&str],
) -> Result<()> {
    for chunk in statement_chunks(cdr_ids) {
        let params: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
        let (name, flag, time) = (event.as_str(), event.flag_column(), event.time_column());
        // Only names from the enum above are spliced in; the ids are parameters.
        let sql = format!(
            "INSERT INTO webhook_deliveries (id, webhook_id, tenant_id, event, cdr_id, created_at, next_attempt_at) \
             SELECT w.id || '.' || c.id || '.{name}', w.id, w.tenant_id, '{name}', c.id, c.{time}, c.{time} \
             FROM cdrs c JOIN webhooks w ON w.tenant_id = c.tenant_id \
             WHERE w.enabled = 1 AND w.{flag} = 1 AND c.{time} IS NOT NULL AND c.id IN ({}) \
             ON CONFLICT (id) DO NOTHING",
            params.join(", ")
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in chunk {
            query = query.bind(*id);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryState {
    /// Not delivered yet; tried again at `next_attempt_at`.
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// Given up after too long; can be retried by hand.
    Failed,
}

impl DeliveryState {
    fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }

    fn parse(text: &str) -> sqlx::Result<Self> {
        match text {
            "pending" => Ok(Self::Pending),
            "delivered" => Ok(Self::Delivered),
            "failed" => Ok(Self::Failed),
            other => Err(sqlx::Error::Decode(format!("delivery state '{other}'").into())),
        }
    }
}

/// One row of the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Delivery {
    /// `webhook.cdr.event`: also sent as the `Offhook-Delivery` header, so a
    /// receiver can drop a repeat.
    pub id: String,
    /// The webhook.
    pub webhook_id: String,
    /// Its tenant.
    pub tenant_id: String,
    /// What happened.
    pub event: WebhookEvent,
    /// The call.
    pub cdr_id: String,
    /// When it happened (Unix ms).
    pub created_at: i64,
    /// Where it stands.
    pub state: DeliveryState,
    /// Attempts made.
    pub attempts: i64,
    /// The next attempt (Unix ms), while pending.
    pub next_attempt_at: i64,
    /// The last attempt (Unix ms).
    pub last_attempt_at: Option<i64>,
    /// The receiver's HTTP status at the last attempt, if it answered.
    pub last_status: Option<i64>,
    /// Why the last attempt failed (empty when it did not).
    pub last_error: String,
    /// When the receiver took it (Unix ms).
    pub delivered_at: Option<i64>,
}

impl FromRow<'_, AnyRow> for Delivery {
    fn from_row(row: &AnyRow) -> sqlx::Result<Self> {
        let event: String = row.try_get("event")?;
        let state: String = row.try_get("state")?;
        Ok(Self {
            id: row.try_get("id")?,
            webhook_id: row.try_get("webhook_id")?,
            tenant_id: row.try_get("tenant_id")?,
            event: WebhookEvent::parse(&event).map_err(|e| sqlx::Error::Decode(e.into()))?,
            cdr_id: row.try_get("cdr_id")?,
            created_at: row.try_get("created_at")?,
            state: DeliveryState::parse(&state)?,
            attempts: row.try_get("attempts")?,
            next_attempt_at: row.try_get("next_attempt_at")?,
            last_attempt_at: row.try_get("last_attempt_at")?,
            last_status: row.try_get("last_status")?,
            last_error: row.try_get("last_error")?,
            delivered_at: row.try_get("delivered_at")?,
        })
    }
}

/// A delivery claimed by a node, with what it needs to post it.
#[derive(Debug, Clone)]
pub struct DueDelivery {
    /// The outbox row.
    pub delivery: Delivery,
    /// Where to post.
    pub url: String,
    /// The key of the signature.
    pub secret: String,
    /// The call as it stands now.
    pub record: CallRecord,
}

/// How an attempt went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// The receiver answered 2xx.
    Delivered {
        /// Its status.
        status: i64,
    },
    /// It did not; `retry_at` is the next attempt, or `None` to give up.
    Failed {
        /// The receiver's status, if it answered at all.
        status: Option<i64>,
        /// Why, for the operator.
        error: String,
        /// When to try again (Unix ms); `None`: give up (state `failed`).
        retry_at: Option<i64>,
    },
}

/// Which deliveries to list.
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    /// Of this webhook only.
    pub webhook_id: Option<String>,
    /// In this state only.
    pub state: Option<DeliveryState>,
    /// At most this many (1-1000, default 100), newest first.
    pub limit: Option<i64>,
    /// Skip this many first.
    pub offset: Option<i64>,
}

const LONGEST_ERROR: usize = 300;

impl Directory {
    /// Claims up to `max` deliveries due at `now` for `owner` until `lease_until`
    /// (Unix ms); a row another node holds under a live lease is never taken.
    pub async fn claim_due_deliveries(
        &self,
        owner: &str,
        now: i64,
        lease_until: i64,
        max: i64,
    ) -> Result<Vec<DueDelivery>> {
        let claimed: Vec<String> = sqlx::query_scalar(
            "UPDATE webhook_deliveries SET lease_owner = $1, lease_until = $2 \
             WHERE id IN (SELECT id FROM webhook_deliveries WHERE state = 'pending' AND next_attempt_at <= $3 \
                          AND (lease_until IS NULL OR lease_until < $3) ORDER BY next_attempt_at, id LIMIT $4) \
             AND state = 'pending' AND (lease_until IS NULL OR lease_until < $3) RETURNING id",
        )
        .bind(owner)
        .bind(lease_until)
        .bind(now)
        .bind(max.clamp(1, 1000))
        .fetch_all(&self.pool)
        .await?;
        let mut due = Vec::with_capacity(claimed.len());
        for id in claimed {
            let row: Option<AnyRow> = sqlx::query(
                "SELECT d.*, w.url AS webhook_url, w.secret AS webhook_secret FROM webhook_deliveries d \
                 JOIN webhooks w ON w.id = d.webhook_id WHERE d.id = $1 AND d.lease_owner = $2",
            )
            .bind(&id)
            .bind(owner)
            .fetch_optional(&self.pool)
            .await?;
            let Some(row) = row else { continue };
            let delivery = Delivery::from_row(&row)?;
            let record = self.call_record(&Scope::Operator, &delivery.cdr_id).await?;
            due.push(DueDelivery {
                url: row.try_get("webhook_url")?,
                secret: row.try_get("webhook_secret")?,
                delivery,
                record,
            });
        }
        Ok(due)
    }

    /// Records an attempt at `at` (Unix ms) by `owner`; false (nothing written)
    /// when its lease ran out and another node may have taken the row.
    pub async fn record_delivery_attempt(
        &self,
        owner: &str,
        id: &str,
        at: i64,
        attempt: &Attempt,
    ) -> Result<bool> {
        let (state, status, error, next, delivered) = match attempt {
            Attempt::Delivered { status } => (
                DeliveryState::Delivered,
                Some(*status),
                String::new(),
                at,
                Some(at),
            ),
            Attempt::Failed {
                status,
                error,
                retry_at,
            } => {
                let error: String = error.chars().take(LONGEST_ERROR).collect();
                match retry_at {
                    Some(next) => (DeliveryState::Pending, *status, error, *next, None),
                    None => (DeliveryState::Failed, *status, error, at, None),
                }
            }
        };
        let done = sqlx::query(
            "UPDATE webhook_deliveries SET state = $1, attempts = attempts + 1, last_attempt_at = $2, \
             last_status = $3, last_error = $4, next_attempt_at = $5, delivered_at = $6, \
             lease_owner = NULL, lease_until = NULL WHERE id = $7 AND lease_owner = $8",
        )
        .bind(state.as_str())
        .bind(at)
        .bind(status)
        .bind(error)
        .bind(next)
        .bind(delivered)
        .bind(id)
        .bind(owner)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Deliveries in `scope` matching `filter`, newest first, and how many match.
    pub async fn list_deliveries(
        &self,
        scope: &Scope,
        filter: &DeliveryFilter,
    ) -> Result<(Vec<Delivery>, i64)> {
        const WHERE: &str = "WHERE (CAST($1 AS TEXT) IS NULL OR tenant_id = $1) \
             AND (CAST($2 AS TEXT) IS NULL OR webhook_id = $2) AND (CAST($3 AS TEXT) IS NULL OR state = $3)";
        let state = filter.state.map(DeliveryState::as_str);
        let sql = format!(
            "SELECT * FROM webhook_deliveries {WHERE} ORDER BY created_at DESC, id LIMIT $4 OFFSET $5"
        );
        let rows = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(scope.tenant_id())
            .bind(filter.webhook_id.as_deref())
            .bind(state)
            .bind(filter.limit.unwrap_or(100).clamp(1, 1000))
            .bind(filter.offset.unwrap_or(0).max(0))
            .fetch_all(&self.pool)
            .await?;
        let count = format!("SELECT COUNT(*) FROM webhook_deliveries {WHERE}");
        let total: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(count))
            .bind(scope.tenant_id())
            .bind(filter.webhook_id.as_deref())
            .bind(state)
            .fetch_one(&self.pool)
            .await?;
        Ok((rows, total))
    }

    /// Sends a delivery that was given up on (or is waiting) again at `now`.
    /// A delivered one is not sent twice (conflict).
    pub async fn retry_delivery(&self, scope: &Scope, id: &str, now: i64) -> Result<Delivery> {
        let current: Option<Delivery> = sqlx::query_as("SELECT * FROM webhook_deliveries WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        let current = current
            .filter(|d| scope.sees(Some(&d.tenant_id), false))
            .ok_or_else(|| DirectoryError::not_found("delivery", id))?;
        if current.state == DeliveryState::Delivered {
            return Err(DirectoryError::Conflict(format!(
                "delivery '{id}' was delivered already"
            )));
        }
        sqlx::query("UPDATE webhook_deliveries SET state = 'pending', next_attempt_at = $1 WHERE id = $2 AND state <> 'delivered'")
            .bind(now)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(Delivery {
            state: DeliveryState::Pending,
            next_attempt_at: now,
            ..current
        })
    }

    /// Deletes delivered and failed rows older than `before` (Unix ms); how many.
    pub async fn prune_deliveries(&self, before: i64) -> Result<u64> {
        let done = sqlx::query("DELETE FROM webhook_deliveries WHERE state <> 'pending' AND created_at < $1")
            .bind(before)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}
