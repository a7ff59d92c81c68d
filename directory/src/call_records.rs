//! Call records as administrators and billing read them: CDR rows with the
//! names of what they refer to (tenant, icon, account, line), their duration and
//! billable time, filtered, searched and paged, newest first, in a [`Scope`].

use serde::Serialize;
use sqlx::{FromRow, Row, any::AnyRow};

use crate::cdrs::{Cdr, CdrFilter};
use crate::db::{Directory, Scope};
use crate::error::Result;

/// Longest search text accepted (longer is cut: a search is not a payload).
const MAX_SEARCH_CHARS: usize = 100;

/// A CDR with the names of what it refers to and its times worked out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CallRecord {
    /// The stored row.
    #[serde(flatten)]
    pub cdr: Cdr,
    /// The tenant's name.
    pub tenant_name: String,
    /// The icon's public id (the one in its embed snippet), while it exists.
    pub icon_public_id: Option<String>,
    /// The icon's label, while it exists.
    pub icon_label: Option<String>,
    /// The calling account's user name, while it exists.
    pub account_username: Option<String>,
    /// The line's name, while it exists.
    pub line_name: Option<String>,
    /// Whole seconds from start to end (rounded up); `None` while in progress.
    pub duration_s: Option<i64>,
    /// Whole seconds from the answer to the end (rounded up): what is billed.
    /// 0 for a call never answered; `None` while in progress.
    pub billable_s: Option<i64>,
}

/// Whole seconds from `from` to `to` (Unix ms), rounded up; never negative.
fn whole_seconds(from: i64, to: i64) -> i64 {
    let ms = to.saturating_sub(from).max(0);
    ms / 1000 + i64::from(ms % 1000 != 0)
}

impl CallRecord {
    /// Adds the worked-out times to a row and its names.
    fn new(cdr: Cdr, names: Names) -> Self {
        let duration_s = cdr.ended_at.map(|end| whole_seconds(cdr.started_at, end));
        let billable_s = cdr
            .ended_at
            .map(|end| cdr.answered_at.map_or(0, |answer| whole_seconds(answer, end)));
        Self {
            cdr,
            tenant_name: names.tenant,
            icon_public_id: names.icon_public_id,
            icon_label: names.icon_label,
            account_username: names.account,
            line_name: names.line,
            duration_s,
            billable_s,
        }
    }
}

struct Names {
    tenant: String,
    icon_public_id: Option<String>,
    icon_label: Option<String>,
    account: Option<String>,
    line: Option<String>,
}

impl FromRow<'_, AnyRow> for CallRecord {
    fn from_row(row: &AnyRow) -> sqlx::Result<Self> {
        let names = Names {
            tenant: row.try_get("tenant_name")?,
            icon_public_id: row.try_get("icon_public_id")?,
            icon_label: row.try_get("icon_label")?,
            account: row.try_get("account_username")?,
            line: row.try_get("line_name")?,
        };
        Ok(Self::new(Cdr::from_row(row)?, names))
    }
}

/// The rows a filter selects, with the tables whose names the search looks in.
/// Each optional filter is a typed parameter; NULL means "any".
const SELECTED: &str = "FROM cdrs c JOIN tenants t ON t.id = c.tenant_id \
     LEFT JOIN icons i ON i.id = c.icon_id \
     LEFT JOIN accounts a ON a.id = c.account_id \
     LEFT JOIN lines l ON l.id = c.line_id \
     WHERE (CAST($1 AS TEXT) IS NULL OR c.tenant_id = $1) AND \
     (CAST($2 AS BIGINT) IS NULL OR c.started_at >= $2) AND \
     (CAST($3 AS BIGINT) IS NULL OR c.started_at < $3) AND \
     (CAST($4 AS TEXT) IS NULL OR c.icon_id = $4) AND \
     (CAST($5 AS TEXT) IS NULL OR c.hangup_cause = $5) AND \
     ($6 = 0 OR c.ended_at IS NULL) AND \
     (CAST($7 AS TEXT) IS NULL OR LOWER(c.number) LIKE $7 ESCAPE '\\' OR LOWER(c.call_id) LIKE $7 ESCAPE '\\' \
      OR LOWER(c.id) LIKE $7 ESCAPE '\\' OR LOWER(t.name) LIKE $7 ESCAPE '\\' \
      OR LOWER(COALESCE(i.public_id, '')) LIKE $7 ESCAPE '\\' OR LOWER(COALESCE(i.label, '')) LIKE $7 ESCAPE '\\' \
      OR LOWER(COALESCE(a.username, '')) LIKE $7 ESCAPE '\\')";

/// `%text%` for LIKE, lowercase, with LIKE's own characters escaped; `None` for
/// no or blank text.
fn like_pattern(search: Option<&str>) -> Option<String> {
    let text = search.map(str::trim).filter(|t| !t.is_empty())?;
    let mut pattern = String::from("%");
    for c in text.chars().take(MAX_SEARCH_CHARS).flat_map(char::to_lowercase) {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    Some(pattern)
}

/// Binds the filter's parameters `$1..$7` of [`SELECTED`].
fn bind_filter<'q, O>(
    query: sqlx::query::QueryAs<'q, sqlx::Any, O, sqlx::any::AnyArguments>,
    scope: &'q Scope,
    filter: &'q CdrFilter,
) -> sqlx::query::QueryAs<'q, sqlx::Any, O, sqlx::any::AnyArguments> {
    query
        .bind(scope.tenant_id())
        .bind(filter.since)
        .bind(filter.until)
        .bind(filter.icon_id.as_deref())
        .bind(filter.cause.map(|c| c.to_string()))
        .bind(i64::from(filter.active))
        .bind(like_pattern(filter.search.as_deref()))
}

impl Directory {
    /// CDR rows in `scope` matching `filter`, newest first.
    pub async fn list_cdrs(&self, scope: &Scope, filter: &CdrFilter) -> Result<Vec<Cdr>> {
        let sql = format!("SELECT c.* {SELECTED} ORDER BY c.started_at DESC, c.id LIMIT $8 OFFSET $9");
        let query = bind_filter(sqlx::query_as(sqlx::AssertSqlSafe(sql)), scope, filter);
        Ok(query
            .bind(filter.limit.unwrap_or(1000).clamp(1, 100_000))
            .bind(filter.offset.unwrap_or(0).max(0))
            .fetch_all(&self.pool)
            .await?)
    }

    /// Call records in `scope` matching `filter`, newest first, and how many
    /// match in all (for paging).
    pub async fn list_call_records(
        &self,
        scope: &Scope,
        filter: &CdrFilter,
    ) -> Result<(Vec<CallRecord>, i64)> {
        let sql = format!(
            "SELECT c.*, t.name AS tenant_name, i.public_id AS icon_public_id, i.label AS icon_label, \
             a.username AS account_username, l.name AS line_name {SELECTED} \
             ORDER BY c.started_at DESC, c.id LIMIT $8 OFFSET $9"
        );
        let query = bind_filter(sqlx::query_as(sqlx::AssertSqlSafe(sql)), scope, filter);
        let records = query
            .bind(filter.limit.unwrap_or(1000).clamp(1, 100_000))
            .bind(filter.offset.unwrap_or(0).max(0))
            .fetch_all(&self.pool)
            .await?;
        let count = format!("SELECT COUNT(*) {SELECTED}");
        let (total,): (i64,) = bind_filter(sqlx::query_as(sqlx::AssertSqlSafe(count)), scope, filter)
            .fetch_one(&self.pool)
            .await?;
        Ok((records, total))
    }

    /// One call record by CDR id, within `scope`.
    pub async fn call_record(&self, scope: &Scope, cdr_id: &str) -> Result<CallRecord> {
        let sql = format!(
            "SELECT c.*, t.name AS tenant_name, i.public_id AS icon_public_id, i.label AS icon_label, \
             a.username AS account_username, l.name AS line_name {SELECTED} AND c.id = $8"
        );
        let filter = CdrFilter::default();
        let record: Option<CallRecord> =
            bind_filter(sqlx::query_as(sqlx::AssertSqlSafe(sql)), scope, &filter)
                .bind(cdr_id)
                .fetch_optional(&self.pool)
                .await?;
        record.ok_or_else(|| crate::error::DirectoryError::not_found("call", cdr_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_round_up_and_never_go_negative() {
        assert_eq!(whole_seconds(1_000, 1_000), 0);
        assert_eq!(whole_seconds(1_000, 1_001), 1);
        assert_eq!(whole_seconds(1_000, 61_000), 60);
        assert_eq!(whole_seconds(5_000, 1_000), 0);
        assert_eq!(
            whole_seconds(i64::MIN, i64::MAX),
            i64::MAX / 1000 + 1,
            "saturates"
        );
    }

    #[test]
    fn search_text_is_escaped_for_like() {
        assert_eq!(
            like_pattern(Some(" 50%_off\\ ")).as_deref(),
            Some("%50\\%\\_off\\\\%")
        );
        assert_eq!(like_pattern(Some("ACME")).as_deref(), Some("%acme%"));
        assert_eq!(like_pattern(Some("   ")), None);
        assert_eq!(like_pattern(None), None);
        let long = "x".repeat(1000);
        assert_eq!(like_pattern(Some(&long)).unwrap().len(), MAX_SEARCH_CHARS + 2);
    }
}
