//! Toll-fraud policy per tenant: which numbers its icons and accounts may dial,
//! how many of its calls may run at once, how many may start in one UTC day and
//! month, and how many billed minutes they may use in one UTC day and month (the
//! tenant's, and each icon's or account's; counted from the CDRs by
//! [`crate::usage`]). A number is judged by the longest
//! prefix that matches it among the built-in defaults ([`DEFAULT_DENY`]) and the
//! tenant's own allow and deny lists; at equal length the tenant's rule beats a
//! default, and a tenant's deny beats its allow. A number no rule matches is
//! allowed. Checked when an icon's number is written (the admin API answers 422)
//! and on every call to a number (signaling answers 403, nothing is dialed).

use serde::Serialize;
use sqlx::{FromRow, Row, any::AnyRow};

use crate::db::Directory;
use crate::error::{DirectoryError, Result};
use crate::ids::now_ms;
use crate::validate;

/// Denied unless a tenant allows a longer (or the same) prefix:
/// international access codes typed in front of a number (`00` in most of the
/// world, `011` in North America; an international call is written in E.164
/// with `+` so that the policy sees its country); international premium-rate,
/// shared-cost and network ranges without a country (`+979`, `+808`, `+881`
/// satellite, `+882`/`+883` international networks, `+870` Inmarsat); national
/// premium rate (`0900`/`+49900`, `0190`/`+49190`, `0137`/`+49137` in Germany;
/// `1900`/`+1900`, `1976`/`+1976` in North America; in E.164 only where the
/// national form means something else elsewhere: `+449` in the UK, `+3389` in
/// France). A tenant denies more (`+` for every international number) or
/// allows a longer prefix.
pub const DEFAULT_DENY: &[&str] = &[
    "00", "011", "+979", "+808", "+881", "+882", "+883", "+870", "0900", "+49900", "0190", "+49190", "0137",
    "+49137", "1900", "+1900", "1976", "+1976", "+449", "+3389",
];

/// Calls of one tenant at once, unless its policy says otherwise.
pub const DEFAULT_MAX_CONCURRENT_CALLS: i64 = 10;

/// Calls of one tenant started in one UTC day, unless its policy says otherwise.
pub const DEFAULT_TENANT_CALLS_PER_DAY: i64 = 1000;

/// Calls through one icon or account started in one UTC day, by default.
pub const DEFAULT_CALLS_PER_DAY: i64 = 200;

/// Calls of one tenant started in one UTC month, by default.
pub(crate) const DEFAULT_TENANT_CALLS_PER_MONTH: i64 = 20_000;

/// Calls through one icon or account started in one UTC month, by default.
pub(crate) const DEFAULT_CALLS_PER_MONTH: i64 = 4_000;

/// Billed minutes of one tenant in one UTC day, by default.
pub(crate) const DEFAULT_TENANT_MINUTES_PER_DAY: i64 = 6_000;

/// Billed minutes through one icon or account in one UTC day, by default.
pub(crate) const DEFAULT_MINUTES_PER_DAY: i64 = 1_200;

/// Billed minutes of one tenant in one UTC month, by default.
pub(crate) const DEFAULT_TENANT_MINUTES_PER_MONTH: i64 = 120_000;

/// Billed minutes through one icon or account in one UTC month, by default.
pub(crate) const DEFAULT_MINUTES_PER_MONTH: i64 = 24_000;

/// Milliseconds in a day: days are numbered from the Unix epoch, in UTC.
pub const DAY_MS: i64 = 86_400_000;

/// Most prefixes in one list.
const MAX_PREFIXES: usize = 200;

/// One tenant's policy (the defaults when it never set one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DestinationPolicy {
    /// Prefixes allowed (over shorter denials, the defaults' included).
    pub allow: Vec<String>,
    /// Prefixes denied, on top of [`DEFAULT_DENY`].
    pub deny: Vec<String>,
    /// Calls of the tenant at once, all icons and accounts together.
    pub max_concurrent_calls: i64,
    /// Calls of the tenant started in one UTC day.
    pub tenant_calls_per_day: i64,
    /// Calls through one of its icons or accounts started in one UTC day.
    pub calls_per_day: i64,
    /// Calls of the tenant started in one UTC month.
    pub tenant_calls_per_month: i64,
    /// Calls through one of its icons or accounts started in one UTC month.
    pub calls_per_month: i64,
    /// Billed (answered) minutes of the tenant in one UTC day.
    pub tenant_minutes_per_day: i64,
    /// Billed minutes through one of its icons or accounts in one UTC day.
    pub minutes_per_day: i64,
    /// Billed minutes of the tenant in one UTC month.
    pub tenant_minutes_per_month: i64,
    /// Billed minutes through one of its icons or accounts in one UTC month.
    pub minutes_per_month: i64,
}

impl Default for DestinationPolicy {
    fn default() -> Self {
        Self {
            allow: Vec::new(),
            deny: Vec::new(),
            max_concurrent_calls: DEFAULT_MAX_CONCURRENT_CALLS,
            tenant_calls_per_day: DEFAULT_TENANT_CALLS_PER_DAY,
            calls_per_day: DEFAULT_CALLS_PER_DAY,
            tenant_calls_per_month: DEFAULT_TENANT_CALLS_PER_MONTH,
            calls_per_month: DEFAULT_CALLS_PER_MONTH,
            tenant_minutes_per_day: DEFAULT_TENANT_MINUTES_PER_DAY,
            minutes_per_day: DEFAULT_MINUTES_PER_DAY,
            tenant_minutes_per_month: DEFAULT_TENANT_MINUTES_PER_MONTH,
            minutes_per_month: DEFAULT_MINUTES_PER_MONTH,
        }
    }
}

/// Why a number may not be dialed: the rule that decided.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{number} is denied by the {} rule for prefix {prefix}", if *.built_in { "built-in" } else { "tenant's" })]
pub struct Denied {
    /// The number, masked (phone numbers are personal data).
    pub number: String,
    /// The matching prefix.
    pub prefix: String,
    /// Whether it is one of [`DEFAULT_DENY`].
    pub built_in: bool,
}

/// A rule's weight: longer prefix first, then the tenant's over a default, then deny over allow.
fn weight(prefix: &str, tenant: bool, deny: bool) -> (usize, bool, bool) {
    (prefix.len(), tenant, deny)
}

impl DestinationPolicy {
    /// Whether `number` may be dialed; the deciding denial otherwise.
    pub fn check(&self, number: &str) -> std::result::Result<(), Denied> {
        let defaults = DEFAULT_DENY.iter().map(|p| (*p, false, true));
        let allow = self.allow.iter().map(|p| (p.as_str(), true, false));
        let deny = self.deny.iter().map(|p| (p.as_str(), true, true));
        let decisive = defaults
            .chain(allow)
            .chain(deny)
            .filter(|(prefix, _, _)| number.starts_with(prefix))
            .max_by_key(|&(prefix, tenant, deny)| weight(prefix, tenant, deny));
        match decisive {
            Some((prefix, tenant, true)) => Err(Denied {
                number: offhook_vocab::mask_number(number),
                prefix: prefix.to_owned(),
                built_in: !tenant,
            }),
            _ => Ok(()),
        }
    }
}

/// A prefix list: each a dialable number prefix; no more than [`MAX_PREFIXES`].
fn prefixes(field: &'static str, list: Vec<String>) -> Result<Vec<String>> {
    if list.len() > MAX_PREFIXES {
        return Err(DirectoryError::invalid(
            field,
            format!("at most {MAX_PREFIXES} prefixes"),
        ));
    }
    list.iter()
        .map(|p| {
            validate::number(p.trim()).map_err(|_| {
                DirectoryError::invalid(
                    field,
                    format!("'{p}' is not a number prefix (digits, '*', '#', a leading '+')"),
                )
            })
        })
        .collect()
}

/// A cap from an update (or the current one), 1..=`max`.
fn cap(field: &'static str, update: Option<i64>, current: i64, max: i64) -> Result<i64> {
    validate::bounded(field, update.unwrap_or(current), 1, max)
}

fn lines(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

impl FromRow<'_, AnyRow> for DestinationPolicy {
    fn from_row(row: &AnyRow) -> sqlx::Result<Self> {
        Ok(Self {
            allow: lines(&row.try_get::<String, _>("allow")?),
            deny: lines(&row.try_get::<String, _>("deny")?),
            max_concurrent_calls: row.try_get("max_concurrent_calls")?,
            tenant_calls_per_day: row.try_get("tenant_calls_per_day")?,
            calls_per_day: row.try_get("calls_per_day")?,
            tenant_calls_per_month: row.try_get("tenant_calls_per_month")?,
            calls_per_month: row.try_get("calls_per_month")?,
            tenant_minutes_per_day: row.try_get("tenant_minutes_per_day")?,
            minutes_per_day: row.try_get("minutes_per_day")?,
            tenant_minutes_per_month: row.try_get("tenant_minutes_per_month")?,
            minutes_per_month: row.try_get("minutes_per_month")?,
        })
    }
}

/// Changes for [`Directory::update_destination_policy`]; `None` keeps the current value.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyUpdate {
    /// New allow list.
    pub allow: Option<Vec<String>>,
    /// New deny list.
    pub deny: Option<Vec<String>>,
    /// New cap on the tenant's calls at once (1-1000).
    pub max_concurrent_calls: Option<i64>,
    /// New cap on the tenant's calls a day (1-1000000).
    pub tenant_calls_per_day: Option<i64>,
    /// New cap on the calls a day through each icon or account (1-1000000).
    pub calls_per_day: Option<i64>,
    /// New cap on the tenant's calls a month (1-10000000).
    pub tenant_calls_per_month: Option<i64>,
    /// New cap on the calls a month through each icon or account (1-10000000).
    pub calls_per_month: Option<i64>,
    /// New cap on the tenant's billed minutes a day (1-10000000).
    pub tenant_minutes_per_day: Option<i64>,
    /// New cap on the billed minutes a day through each icon or account (1-10000000).
    pub minutes_per_day: Option<i64>,
    /// New cap on the tenant's billed minutes a month (1-100000000).
    pub tenant_minutes_per_month: Option<i64>,
    /// New cap on the billed minutes a month through each icon or account (1-100000000).
    pub minutes_per_month: Option<i64>,
}

impl Directory {
    /// The policy of tenant `tenant_id` (the defaults when it has none).
    pub async fn destination_policy(&self, tenant_id: &str) -> Result<DestinationPolicy> {
        let row: Option<DestinationPolicy> = sqlx::query_as(
            "SELECT allow, deny, max_concurrent_calls, tenant_calls_per_day, calls_per_day, \
             tenant_calls_per_month, calls_per_month, tenant_minutes_per_day, minutes_per_day, \
             tenant_minutes_per_month, minutes_per_month FROM destination_policies WHERE tenant_id = $1",
        )
        .bind(tenant_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.unwrap_or_default())
    }

    /// Changes the policy of a tenant (by name or id); the whole result is
    /// validated before anything is written.
    pub async fn update_destination_policy(
        &self,
        tenant: &str,
        update: PolicyUpdate,
    ) -> Result<DestinationPolicy> {
        let tenant = self.tenant(tenant).await?;
        let current = self.destination_policy(&tenant.id).await?;
        let policy = DestinationPolicy {
            allow: prefixes("allow", update.allow.unwrap_or(current.allow))?,
            deny: prefixes("deny", update.deny.unwrap_or(current.deny))?,
            max_concurrent_calls: validate::bounded(
                "max_concurrent_calls",
                update
                    .max_concurrent_calls
                    .unwrap_or(current.max_concurrent_calls),
                1,
                1000,
            )?,
            tenant_calls_per_day: validate::bounded(
                "tenant_calls_per_day",
                update
                    .tenant_calls_per_day
                    .unwrap_or(current.tenant_calls_per_day),
                1,
                1_000_000,
            )?,
            calls_per_day: validate::bounded(
                "calls_per_day",
                update.calls_per_day.unwrap_or(current.calls_per_day),
                1,
                1_000_000,
            )?,
            tenant_calls_per_month: cap(
                "tenant_calls_per_month",
                update.tenant_calls_per_month,
                current.tenant_calls_per_month,
                10_000_000,
            )?,
            calls_per_month: cap(
                "calls_per_month",
                update.calls_per_month,
                current.calls_per_month,
                10_000_000,
            )?,
            tenant_minutes_per_day: cap(
                "tenant_minutes_per_day",
                update.tenant_minutes_per_day,
                current.tenant_minutes_per_day,
                10_000_000,
            )?,
            minutes_per_day: cap(
                "minutes_per_day",
                update.minutes_per_day,
                current.minutes_per_day,
                10_000_000,
            )?,
            tenant_minutes_per_month: cap(
                "tenant_minutes_per_month",
                update.tenant_minutes_per_month,
                current.tenant_minutes_per_month,
                100_000_000,
            )?,
            minutes_per_month: cap(
                "minutes_per_month",
                update.minutes_per_month,
                current.minutes_per_month,
                100_000_000,
            )?,
        };
        sqlx::query(
            "INSERT INTO destination_policies (tenant_id, allow, deny, max_concurrent_calls, tenant_calls_per_day, \
             calls_per_day, tenant_calls_per_month, calls_per_month, tenant_minutes_per_day, minutes_per_day, \
             tenant_minutes_per_month, minutes_per_month, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT (tenant_id) DO UPDATE SET \
             allow = excluded.allow, deny = excluded.deny, max_concurrent_calls = excluded.max_concurrent_calls, \
             tenant_calls_per_day = excluded.tenant_calls_per_day, calls_per_day = excluded.calls_per_day, \
             tenant_calls_per_month = excluded.tenant_calls_per_month, calls_per_month = excluded.calls_per_month, \
             tenant_minutes_per_day = excluded.tenant_minutes_per_day, minutes_per_day = excluded.minutes_per_day, \
             tenant_minutes_per_month = excluded.tenant_minutes_per_month, \
             minutes_per_month = excluded.minutes_per_month, updated_at = excluded.updated_at",
        )
        .bind(&tenant.id)
        .bind(policy.allow.join("\n"))
        .bind(policy.deny.join("\n"))
        .bind(policy.max_concurrent_calls)
        .bind(policy.tenant_calls_per_day)
        .bind(policy.calls_per_day)
        .bind(policy.tenant_calls_per_month)
        .bind(policy.calls_per_month)
        .bind(policy.tenant_minutes_per_day)
        .bind(policy.minutes_per_day)
        .bind(policy.tenant_minutes_per_month)
        .bind(policy.minutes_per_month)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(policy)
    }

    /// `number` checked against the policy of tenant `tenant_id`, as a
    /// validation error of `field` when it is denied.
    pub(crate) async fn allowed_destination(
        &self,
        tenant_id: &str,
        field: &'static str,
        number: &str,
    ) -> Result<()> {
        self.destination_policy(tenant_id)
            .await?
            .check(number)
            .map_err(|denied| {
                DirectoryError::invalid(field, format!("{denied}: not a destination this tenant may dial"))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::{Denied, DestinationPolicy};

    fn policy(allow: &[&str], deny: &[&str]) -> DestinationPolicy {
        DestinationPolicy {
            allow: allow.iter().map(|p| (*p).to_owned()).collect(),
            deny: deny.iter().map(|p| (*p).to_owned()).collect(),
            ..DestinationPolicy::default()
        }
    }

    fn prefix(result: Result<(), Denied>) -> Option<(String, bool)> {
        result.err().map(|d| (d.prefix, d.built_in))
    }

    #[test]
    fn the_defaults_deny_international_access_and_premium_ranges() {
        let p = DestinationPolicy::default();
        for (number, by) in [
            ("+88212345678", "+882"),
            ("+8831234", "+883"),
            ("+979123456", "+979"),
            ("0044201234567", "00"),
            ("01144201234", "011"),
            ("09001234567", "0900"),
            ("+449012345678", "+449"),
            ("+499001234567", "+49900"),
            ("19005551234", "1900"),
        ] {
            assert_eq!(prefix(p.check(number)), Some((by.to_owned(), true)), "{number}");
        }
        for number in ["5550100", "+4930123456", "030123456", "+12125551234"] {
            assert!(p.check(number).is_ok(), "{number}");
        }
    }

    #[test]
    fn the_longest_prefix_decides_and_the_tenant_beats_a_default_of_equal_length() {
        // International via 00 allowed to Germany only; Germany's premium range still denied.
        let p = policy(&["0049"], &["+44"]);
        assert!(p.check("004930123").is_ok());
        assert_eq!(prefix(p.check("0033123")), Some(("00".into(), true)));
        assert_eq!(prefix(p.check("+4420123")), Some(("+44".into(), false)));
        let p = policy(&["+882", "0049"], &["00499"]);
        assert!(
            p.check("+88212345").is_ok(),
            "the tenant's allow of equal length wins"
        );
        assert_eq!(prefix(p.check("004990012")), Some(("00499".into(), false)));
        // Deny beats allow at the same length within the tenant's lists.
        let p = policy(&["+4930"], &["+4930"]);
        assert_eq!(prefix(p.check("+4930123")), Some(("+4930".into(), false)));
    }

    #[test]
    fn a_denial_masks_the_number() {
        let denied = DestinationPolicy::default().check("+88212345678").unwrap_err();
        assert!(!denied.number.contains("2345"), "{}", denied.number);
        assert!(
            denied.to_string().contains("built-in rule for prefix +882"),
            "{denied}"
        );
    }
}
