//! Owners: every start of a signaling node is an owner with a lease in the
//! directory, and the CDRs it opens and the lines it claims carry its id (see
//! [`crate::CallWriter`]). The node refreshes its lease while it lives; when it
//! dies, its lease runs out, and when it starts again under the same name, its
//! old incarnation is over at once. Whoever notices first (the restarted node,
//! or any node on its timer: [`Directory::reap_owners`]) ends the lost owner's
//! open CDRs with cause `node-lost` at the last moment the owner was known alive
//! (its last refresh, never before the call's start or answer), releases its
//! lines, writes the webhook outbox rows of those ends (and their billed time
//! to the usage counters), and removes it, in one
//! transaction: a line or a call record is never left held by a dead process.
//! Several nodes reaping the same owner at once is harmless: the second finds
//! nothing left to change.
//!
//! Rows held by nobody alive are treated the same way: a line `dialing` or
//! `in-call`, or an open CDR, whose owner is unknown (written before owners
//! existed, or by an owner already removed) is released and ended as well.

use std::time::Duration;

use sqlx::{Any, Transaction};

use offhook_vocab::HangupCause;

use crate::db::Directory;
use crate::error::Result;
use crate::ids::new_id;
use crate::outbox::{self, WebhookEvent};
use crate::usage_counters;
use crate::write_behind::statement_chunks;

/// What one reaping released.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reaped {
    /// The owners found lost (and removed).
    pub owners: Vec<String>,
    /// The CDRs ended `node-lost`.
    pub cdrs: Vec<String>,
    /// The lines released (now `idle`).
    pub lines: Vec<String>,
}

impl Reaped {
    /// Whether nothing was found.
    pub fn is_empty(&self) -> bool {
        self.owners.is_empty() && self.cdrs.is_empty() && self.lines.is_empty()
    }
}

fn millis(span: Duration) -> i64 {
    i64::try_from(span.as_millis()).unwrap_or(i64::MAX)
}

impl Directory {
    /// Records a new start of node `name` at `now` (Unix ms) holding a lease of
    /// `lease`; returns the owner id its call writer writes.
    pub async fn start_owner(&self, name: &str, now: i64, lease: Duration) -> Result<String> {
        let id = new_id("own");
        sqlx::query(
            "INSERT INTO owners (id, kind, name, started_at, alive_at, lease_ms) VALUES ($1, 'node', $2, $3, $3, $4)",
        )
        .bind(&id)
        .bind(name)
        .bind(now)
        .bind(millis(lease))
        .execute(&self.pool)
        .await?;
        Ok(id)
    }

    /// Refreshes owner `id`'s lease at `now`. False when the owner was gone (its
    /// lease ran out and another node reaped it): its calls are ended in the
    /// directory and its lines released, so its process should end them too. The
    /// owner is recorded again either way, so that what it does next is owned.
    pub async fn refresh_owner(&self, id: &str, name: &str, now: i64, lease: Duration) -> Result<bool> {
        let refreshed = sqlx::query("UPDATE owners SET alive_at = $1, lease_ms = $2 WHERE id = $3")
            .bind(now)
            .bind(millis(lease))
            .bind(id)
            .execute(&self.pool)
            .await?;
        if refreshed.rows_affected() > 0 {
            return Ok(true);
        }
        sqlx::query(
            "INSERT INTO owners (id, kind, name, started_at, alive_at, lease_ms) VALUES ($1, 'node', $2, $3, $3, $4) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(id)
        .bind(name)
        .bind(now)
        .bind(millis(lease))
        .execute(&self.pool)
        .await?;
        Ok(false)
    }

    /// Removes owner `id` at a clean stop (its calls are ended and written).
    pub async fn end_owner(&self, id: &str) -> Result<()> {
        sqlx::query("DELETE FROM owners WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Reaps, for owner `me` (named `name`) at `now`: every owner whose lease ran
    /// out, every other owner of the same name (earlier starts of this node), and
    /// whatever is held by no known owner (see the module comment).
    pub async fn reap_owners(&self, me: &str, name: &str, now: i64) -> Result<Reaped> {
        let lost: Vec<(String, i64)> = sqlx::query_as(
            "SELECT id, alive_at FROM owners WHERE id <> $1 AND (alive_at + lease_ms < $2 OR (kind = 'node' AND name = $3)) \
             ORDER BY id",
        )
        .bind(me)
        .bind(now)
        .bind(name)
        .fetch_all(&self.pool)
        .await?;
        let mut reaped = Reaped::default();
        for (owner, alive_at) in lost {
            let mut tx = self.begin_write().await?;
            let cdrs: Vec<String> = sqlx::query_scalar(
                "SELECT id FROM cdrs WHERE owner_id = $1 AND ended_at IS NULL ORDER BY id",
            )
            .bind(&owner)
            .fetch_all(&mut *tx)
            .await?;
            end_lost_cdrs(&mut tx, alive_at, &cdrs).await?;
            let lines: Vec<String> = sqlx::query_scalar(
                "UPDATE lines SET state = 'idle', owner_id = NULL, state_changed_at = $1, fault_reason = NULL \
                 WHERE owner_id = $2 AND state IN ('dialing', 'in-call') RETURNING id",
            )
            .bind(now)
            .bind(&owner)
            .fetch_all(&mut *tx)
            .await?;
            sqlx::query("UPDATE lines SET owner_id = NULL WHERE owner_id = $1")
                .bind(&owner)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM owners WHERE id = $1")
                .bind(&owner)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            tracing::warn!(%owner, cdrs = cdrs.len(), lines = lines.len(), "owner lost: its calls ended, its lines released");
            reaped.owners.push(owner);
            reaped.cdrs.extend(cdrs);
            reaped.lines.extend(lines);
        }
        self.reap_orphans(now, &mut reaped).await?;
        Ok(reaped)
    }

    /// Ends and releases what no known owner holds.
    async fn reap_orphans(&self, now: i64, reaped: &mut Reaped) -> Result<()> {
        const ORPHAN: &str = "(owner_id IS NULL OR owner_id NOT IN (SELECT id FROM owners))";
        let mut tx = self.begin_write().await?;
        let cdrs: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT id FROM cdrs WHERE ended_at IS NULL AND {ORPHAN} ORDER BY id"
        )))
        .fetch_all(&mut *tx)
        .await?;
        // No evidence of life after the start or the answer: that is the end.
        end_lost_cdrs(&mut tx, i64::MIN, &cdrs).await?;
        let lines: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "UPDATE lines SET state = 'idle', owner_id = NULL, state_changed_at = $1, fault_reason = NULL \
             WHERE state IN ('dialing', 'in-call') AND {ORPHAN} RETURNING id"
        )))
        .bind(now)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        if !cdrs.is_empty() || !lines.is_empty() {
            tracing::warn!(
                cdrs = cdrs.len(),
                lines = lines.len(),
                "calls and lines held by no owner: ended, released"
            );
        }
        reaped.cdrs.extend(cdrs);
        reaped.lines.extend(lines);
        Ok(())
    }
}

/// Ends these open CDRs as `node-lost` at `alive_at`, never before their start
/// or answer, with their webhook outbox rows.
async fn end_lost_cdrs(tx: &mut Transaction<'_, Any>, alive_at: i64, cdrs: &[String]) -> Result<()> {
    let ids: Vec<&str> = cdrs.iter().map(String::as_str).collect();
    let before = usage_counters::before_change(tx, &ids).await?;
    for chunk in statement_chunks(&ids) {
        let params: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 3)).collect();
        let sql = format!(
            "UPDATE cdrs SET hangup_cause = $1, ended_at = CASE WHEN COALESCE(answered_at, started_at) > $2 \
             THEN COALESCE(answered_at, started_at) ELSE $2 END WHERE ended_at IS NULL AND id IN ({})",
            params.join(", ")
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(HangupCause::NodeLost.to_string())
            .bind(alive_at);
        for id in chunk {
            query = query.bind(*id);
        }
        query.execute(&mut **tx).await?;
    }
    usage_counters::bill_change(tx, &ids, before).await?;
    if ids.is_empty() {
        return Ok(());
    }
    outbox::enqueue(tx, WebhookEvent::CallEnded, &ids).await
}
