//! The `usage_days` counters behind [`crate::Usage`]: per tenant, icon and
//! account and UTC day of the calls' start, the calls started and the billed
//! (answered) time of those that ended. Every write that starts a CDR or sets
//! its answer or end adds its change here in the same transaction, so reading a
//! tenant's use is a few counter rows and its calls still open, not a scan of
//! the month's CDRs (which made each admission cache miss cost O(CDRs) and cut
//! the proxy's calls per second as the month filled). Migration 0020 counted
//! the CDRs written before it.

use std::collections::BTreeMap;

use sqlx::{Any, FromRow, Transaction};

use crate::cdrs::Cdr;
use crate::error::Result;
use crate::policy::DAY_MS;
use crate::write_behind::statement_chunks;

/// Billed time of a call answered at `answered` and ended at `ended`: none
/// until it has both.
pub(crate) fn billed(answered: Option<i64>, ended: Option<i64>) -> i64 {
    match (answered, ended) {
        (Some(answered), Some(ended)) => ended - answered,
        _ => 0,
    }
}

/// What a CDR counts under: its tenant, icon and account, and its start.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub(crate) struct Counted {
    pub tenant_id: String,
    pub icon_id: Option<String>,
    pub account_id: Option<String>,
    pub started_at: i64,
    pub answered_at: Option<i64>,
    pub ended_at: Option<i64>,
}

impl Counted {
    /// What `cdr` counts under.
    pub(crate) fn of(cdr: &Cdr) -> Self {
        Self {
            tenant_id: cdr.tenant_id.clone(),
            icon_id: cdr.icon_id.clone(),
            account_id: cdr.account_id.clone(),
            started_at: cdr.started_at,
            answered_at: cdr.answered_at,
            ended_at: cdr.ended_at,
        }
    }

    /// The row of CDR `id` as it stands in `tx`.
    pub(crate) async fn read(tx: &mut Transaction<'_, Any>, id: &str) -> Result<Option<Self>> {
        Ok(sqlx::query_as(
            "SELECT tenant_id, icon_id, account_id, started_at, answered_at, ended_at FROM cdrs WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?)
    }

    /// Its billed time so far.
    pub(crate) fn billed(&self) -> i64 {
        billed(self.answered_at, self.ended_at)
    }
}

/// The rows of CDRs `ids` before a change that may bill them (an answer, an end).
pub(crate) async fn before_change(
    tx: &mut Transaction<'_, Any>,
    ids: &[&str],
) -> Result<Vec<Option<Counted>>> {
    let mut rows = Vec::with_capacity(ids.len());
    for id in ids {
        rows.push(Counted::read(tx, id).await?);
    }
    Ok(rows)
}

/// Adds to the counters what a change of CDRs `ids` billed since `before`
/// (their rows from [`before_change`]).
pub(crate) async fn bill_change(
    tx: &mut Transaction<'_, Any>,
    ids: &[&str],
    before: Vec<Option<Counted>>,
) -> Result<()> {
    let mut usage = UsageDeltas::default();
    for (id, before) in ids.iter().zip(before) {
        if let (Some(before), Some(after)) = (before, Counted::read(tx, id).await?) {
            usage.add(&after, 0, after.billed() - before.billed());
        }
    }
    usage.write(tx).await
}

/// Changes to the counters, summed per (kind, subject, day) before they are
/// written: one row each, so that one multi-row upsert never touches a counter twice,
/// in key order, so that two nodes' transactions lock shared counters (a busy
/// tenant's day) in the same order and never deadlock on PostgreSQL.
#[derive(Debug, Default)]
pub(crate) struct UsageDeltas(BTreeMap<(&'static str, String, i64), (i64, i64)>);

impl UsageDeltas {
    /// Adds `calls` and `billed_ms` to the counters of `cdr`'s tenant, icon and account.
    pub(crate) fn add(&mut self, cdr: &Counted, calls: i64, billed_ms: i64) {
        if calls == 0 && billed_ms == 0 {
            return;
        }
        let day = cdr.started_at / DAY_MS;
        let subjects = [
            ("tenant", Some(&cdr.tenant_id)),
            ("icon", cdr.icon_id.as_ref()),
            ("account", cdr.account_id.as_ref()),
        ];
        for (kind, subject) in subjects {
            if let Some(subject) = subject {
                let counter = self.0.entry((kind, subject.clone(), day)).or_default();
                counter.0 += calls;
                counter.1 += billed_ms;
            }
        }
    }

    /// Adds them to the counters in `tx`.
    pub(crate) async fn write(&self, tx: &mut Transaction<'_, Any>) -> Result<()> {
        let rows: Vec<_> = self.0.iter().collect();
        for chunk in statement_chunks(&rows) {
            let values: Vec<String> = (0..chunk.len())
                .map(|n| {
                    let p = n * 5;
                    format!("(${}, ${}, ${}, ${}, ${})", p + 1, p + 2, p + 3, p + 4, p + 5)
                })
                .collect();
            let sql = format!(
                "INSERT INTO usage_days (kind, subject_id, utc_day, calls, billed_ms) VALUES {} \
                 ON CONFLICT (kind, subject_id, utc_day) DO UPDATE SET \
                 calls = usage_days.calls + excluded.calls, billed_ms = usage_days.billed_ms + excluded.billed_ms",
                values.join(", ")
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for ((kind, subject, day), (calls, billed_ms)) in chunk {
                query = query
                    .bind(*kind)
                    .bind(subject.clone())
                    .bind(*day)
                    .bind(*calls)
                    .bind(*billed_ms);
            }
            query.execute(&mut **tx).await?;
        }
        Ok(())
    }
}
