//! What a tenant, and one of its icons or accounts, has used of its
//! [`DestinationPolicy`] caps: calls started and billed (answered) time in a
//! UTC day and calendar month, from the day counters kept with the CDRs
//! ([`crate::usage_counters`]), a call still running counted up to now. [`DestinationPolicy::admit`] turns that into a refusal
//! naming the cap reached, or the billed time a new call may still use.

use chrono::{Datelike, NaiveDate};

use crate::db::Directory;
use crate::error::Result;
use crate::policy::{DAY_MS, DestinationPolicy};

/// Calls started and billed milliseconds in one period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Used {
    /// Calls started.
    pub calls: i64,
    /// Answered time, ms (up to now for calls still running).
    pub billed_ms: i64,
}

/// The tenant's use, and that of the icon or account a call goes through
/// (zero when it goes through neither), on one UTC day and in its month.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// All of the tenant's calls, that day.
    pub tenant_day: Used,
    /// All of the tenant's calls, that month.
    pub tenant_month: Used,
    /// Through the icon or account, that day.
    pub day: Used,
    /// Through the icon or account, that month.
    pub month: Used,
}

/// The cap a new call would go over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{cap} reached ({used} of {limit})")]
pub struct CapReached {
    /// The policy field (`calls_per_day`, `tenant_minutes_per_month`, …).
    pub cap: &'static str,
    /// What was used (calls, or minutes rounded down).
    pub used: i64,
    /// The cap.
    pub limit: i64,
}

impl CapReached {
    /// The SIP reason phrase of the refusal.
    pub fn reason(&self) -> &'static str {
        match (self.cap.contains("minutes"), self.cap.ends_with("month")) {
            (false, false) => "Daily call limit reached",
            (false, true) => "Monthly call limit reached",
            (true, false) => "Daily minutes used up",
            (true, true) => "Monthly minutes used up",
        }
    }
}

const MINUTE_MS: i64 = 60_000;

impl DestinationPolicy {
    /// Whether a new call may start after `usage`: the billed milliseconds it
    /// may still use (the smallest remaining minute budget), or the cap reached.
    pub fn admit(&self, usage: &Usage) -> std::result::Result<i64, CapReached> {
        let calls = [
            (
                "tenant_calls_per_day",
                usage.tenant_day,
                self.tenant_calls_per_day,
            ),
            ("calls_per_day", usage.day, self.calls_per_day),
            (
                "tenant_calls_per_month",
                usage.tenant_month,
                self.tenant_calls_per_month,
            ),
            ("calls_per_month", usage.month, self.calls_per_month),
        ];
        for (cap, used, limit) in calls {
            if used.calls >= limit {
                return Err(CapReached {
                    cap,
                    used: used.calls,
                    limit,
                });
            }
        }
        let minutes = [
            (
                "tenant_minutes_per_day",
                usage.tenant_day,
                self.tenant_minutes_per_day,
            ),
            ("minutes_per_day", usage.day, self.minutes_per_day),
            (
                "tenant_minutes_per_month",
                usage.tenant_month,
                self.tenant_minutes_per_month,
            ),
            ("minutes_per_month", usage.month, self.minutes_per_month),
        ];
        let mut budget = i64::MAX;
        for (cap, used, limit) in minutes {
            let left = limit.saturating_mul(MINUTE_MS) - used.billed_ms;
            if left <= 0 {
                return Err(CapReached {
                    cap,
                    used: used.billed_ms / MINUTE_MS,
                    limit,
                });
            }
            budget = budget.min(left);
        }
        Ok(budget)
    }
}

/// The Unix-ms bounds of UTC day `day` (days since the epoch) and of its calendar month.
pub fn day_and_month(day: i64) -> ((i64, i64), (i64, i64)) {
    let start = |date: NaiveDate| {
        date.and_hms_opt(0, 0, 0)
            .map_or(0, |t| t.and_utc().timestamp_millis())
    };
    let date = chrono::DateTime::from_timestamp_millis(day * DAY_MS).map_or_else(
        || NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default(),
        |t| t.date_naive(),
    );
    let first = date.with_day(1).unwrap_or(date);
    let next = first.checked_add_months(chrono::Months::new(1)).unwrap_or(first);
    ((day * DAY_MS, (day + 1) * DAY_MS), (start(first), start(next)))
}

impl Directory {
    /// What the tenant `tenant_id` used on UTC day `day` and in its month, and
    /// through its icon `icon` or else its account `account`; calls still
    /// running are billed up to `now_ms`.
    pub async fn usage(
        &self,
        tenant_id: &str,
        icon: Option<&str>,
        account: Option<&str>,
        day: i64,
        now_ms: i64,
    ) -> Result<Usage> {
        let (_, (month_from, month_to)) = day_and_month(day);
        let through = match (icon, account) {
            (Some(icon), _) => Some(("icon", icon)),
            (None, Some(account)) => Some(("account", account)),
            (None, None) => None,
        };
        let (kind, subject) = through.unwrap_or(("tenant", tenant_id));
        // The month's counter rows of the tenant and of the icon or account.
        let counters: Vec<(String, i64, i64, i64)> = sqlx::query_as(
            "SELECT kind, utc_day, calls, billed_ms FROM usage_days \
             WHERE ((kind = 'tenant' AND subject_id = $1) OR (kind = $2 AND subject_id = $3)) \
             AND utc_day >= $4 AND utc_day < $5",
        )
        .bind(tenant_id)
        .bind(kind)
        .bind(subject)
        .bind(month_from / DAY_MS)
        .bind(month_to / DAY_MS)
        .fetch_all(&self.pool)
        .await?;
        // The tenant's calls still open, answered in the month: billed up to now.
        let open: Vec<(Option<String>, Option<String>, i64, i64)> = sqlx::query_as(
            "SELECT icon_id, account_id, started_at, answered_at FROM cdrs \
             WHERE tenant_id = $1 AND ended_at IS NULL AND answered_at IS NOT NULL \
             AND started_at >= $2 AND started_at < $3",
        )
        .bind(tenant_id)
        .bind(month_from)
        .bind(month_to)
        .fetch_all(&self.pool)
        .await?;
        let mut usage = Usage::default();
        let mut count = |tenant: bool, through: bool, on_day: bool, calls: i64, billed_ms: i64| {
            let periods = [
                (tenant, &mut usage.tenant_month),
                (tenant && on_day, &mut usage.tenant_day),
                (through, &mut usage.month),
                (through && on_day, &mut usage.day),
            ];
            for (counts, used) in periods {
                if counts {
                    used.calls += calls;
                    used.billed_ms += billed_ms;
                }
            }
        };
        for (row_kind, utc_day, calls, billed_ms) in counters {
            let tenant = row_kind == "tenant";
            // The tenant's own row is also the "through" one when neither is given.
            let through_row = through.is_some() && row_kind == kind;
            count(tenant, through_row, utc_day == day, calls, billed_ms);
        }
        for (icon_id, account_id, started_at, answered_at) in open {
            let through_call = match through {
                Some(("icon", id)) => icon_id.as_deref() == Some(id),
                Some((_, id)) => account_id.as_deref() == Some(id),
                None => false,
            };
            count(
                true,
                through_call,
                started_at / DAY_MS == day,
                0,
                now_ms - answered_at,
            );
        }
        Ok(usage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_and_months_in_utc() {
        // 2026-12-02 is day 20789; December 2026 runs to 2027-01-01.
        let ((from, to), (m_from, m_to)) = day_and_month(20_789);
        assert_eq!((from, to - from), (20_789 * DAY_MS, DAY_MS));
        assert_eq!(m_from, 1_796_083_200_000, "2026-12-01T00:00Z");
        assert_eq!(m_to, 1_798_761_600_000, "2027-01-01T00:00Z");
    }

    #[test]
    fn the_first_cap_reached_refuses_and_the_smallest_minute_budget_is_left() {
        let p = DestinationPolicy {
            calls_per_day: 5,
            minutes_per_day: 10,
            tenant_minutes_per_month: 30,
            ..DestinationPolicy::default()
        };
        let used = |calls, minutes: i64| Used {
            calls,
            billed_ms: minutes * MINUTE_MS,
        };
        let mut usage = Usage::default();
        assert_eq!(p.admit(&usage), Ok(10 * MINUTE_MS));
        usage.day = used(4, 7);
        usage.tenant_month = used(4, 28);
        assert_eq!(
            p.admit(&usage),
            Ok(2 * MINUTE_MS),
            "the month's 2 minutes are the least"
        );
        usage.tenant_month = used(4, 30);
        let reached = p.admit(&usage).unwrap_err();
        assert_eq!(
            (reached.cap, reached.reason()),
            ("tenant_minutes_per_month", "Monthly minutes used up")
        );
        usage.day = used(5, 7);
        let reached = p.admit(&usage).unwrap_err();
        assert_eq!(
            (reached.cap, reached.used, reached.limit),
            ("calls_per_day", 5, 5)
        );
        assert_eq!(reached.reason(), "Daily call limit reached");
    }
}
