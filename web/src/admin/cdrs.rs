//! `/api/v1/admin/cdrs`: call records with the names of their tenant, icon,
//! account and line, duration and billable seconds (from the answer), answer
//! source, cause and RTCP figures, filtered (time, icon, cause), searched and
//! paged; also as CSV. The active calls (`/calls`), the request to hang one up
//! (`/calls/{id}/hangup`: the node that owns the call carries it out) and calls
//! per hour for the chart. All scoped: a tenant admin sees its own tenant's calls.

use std::fmt::Write as _;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::{Extension, Json};
use offhook_directory::{AuditAction, AuditChange, CallRecord, CdrFilter, Directory, OperatorAction, Scope};
use offhook_vocab::UnknownWord;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::audit;
use super::error::{ApiError, ApiResult};
use super::extract::{ApiPath, ApiQuery};
use super::principal::Principal;
use crate::AppState;

/// Records per page unless asked otherwise.
const DEFAULT_PAGE: i64 = 50;
/// Largest page of `/cdrs`; the CSV export takes up to 100,000.
const MAX_PAGE: i64 = 1000;
/// How long a hang-up request waits for the call's owner before it expires.
const HANGUP_TTL_MS: i64 = 2 * 60 * 1000;

/// Which call records to list; every parameter narrows the result.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct CdrQuery {
    /// Started at or after this time, Unix ms.
    pub since: Option<i64>,
    /// Started before this time, Unix ms.
    pub until: Option<i64>,
    /// Through this icon (public id or id).
    pub icon: Option<String>,
    /// With this hang-up cause (`normal`, `busy`, `no-answer`, `invalid-number`, …).
    pub cause: Option<String>,
    /// Text in the number, Call-ID, record id, tenant name, icon public id or
    /// label, or account user name (any case).
    pub q: Option<String>,
    /// At most this many, newest first (1-1000, default 50; the CSV: 1-100000, default 1000).
    pub limit: Option<i64>,
    /// Skip this many first (paging).
    pub offset: Option<i64>,
}

/// A page of call records.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct CallRecordPage {
    /// The records, newest first.
    pub items: Vec<CallRecord>,
    /// How many match in all.
    pub total: i64,
    /// The offset of the first item.
    pub offset: i64,
    /// The page size used.
    pub limit: i64,
}

/// How far back the calls-per-hour chart goes.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct HoursQuery {
    /// Hours back from now (1-720, default 24).
    pub hours: Option<i64>,
}

/// Calls started in one hour.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct HourCount {
    /// Start of the hour, Unix ms.
    pub hour: i64,
    /// Calls started in that hour.
    pub calls: i64,
}

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_cdrs))
        .routes(routes!(export_cdrs))
        .routes(routes!(active_calls))
        .routes(routes!(hang_up_call))
        .routes(routes!(calls_per_hour))
}

fn bounded(field: &str, value: Option<i64>, default: i64, max: i64) -> ApiResult<i64> {
    let value = value.unwrap_or(default);
    if (1..=max).contains(&value) {
        Ok(value)
    } else {
        Err(ApiError::Unprocessable {
            field: field.to_owned(),
            reason: format!("{value} is outside 1..={max}"),
        })
    }
}

async fn filter(directory: &Directory, scope: &Scope, query: CdrQuery, limit: i64) -> ApiResult<CdrFilter> {
    let icon_id = match query.icon {
        Some(key) => Some(directory.icon(scope, &key).await?.id),
        None => None,
    };
    let offset = query.offset.unwrap_or(0);
    if offset < 0 {
        return Err(ApiError::Unprocessable {
            field: "offset".to_owned(),
            reason: format!("{offset} is negative"),
        });
    }
    let cause = query
        .cause
        .map(|c| {
            c.parse().map_err(|e: UnknownWord| ApiError::Unprocessable {
                field: "cause".into(),
                reason: e.to_string(),
            })
        })
        .transpose()?;
    Ok(CdrFilter {
        since: query.since,
        until: query.until,
        icon_id,
        cause,
        active: false,
        search: query.q,
        limit: Some(limit),
        offset: Some(offset),
    })
}

/// Lists call records, newest first, a page at a time.
#[utoipa::path(get, path = "/cdrs", tag = "calls", params(CdrQuery), responses((status = 200, body = CallRecordPage)))]
async fn list_cdrs(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiQuery(query): ApiQuery<CdrQuery>,
) -> ApiResult<Json<CallRecordPage>> {
    let scope = who.scope();
    let limit = bounded("limit", query.limit, DEFAULT_PAGE, MAX_PAGE)?;
    let filter = filter(&state.directory, &scope, query, limit).await?;
    let (items, total) = state.directory.list_call_records(&scope, &filter).await?;
    Ok(Json(CallRecordPage {
        items,
        total,
        offset: filter.offset.unwrap_or(0),
        limit,
    }))
}

/// The same records as CSV, one call per row, times in RFC 3339 (UTC).
#[utoipa::path(get, path = "/cdrs.csv", tag = "calls", params(CdrQuery),
    responses((status = 200, content_type = "text/csv", body = String)))]
async fn export_cdrs(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiQuery(query): ApiQuery<CdrQuery>,
) -> ApiResult<impl IntoResponse> {
    let scope = who.scope();
    let limit = bounded("limit", query.limit, 1000, 100_000)?;
    let filter = filter(&state.directory, &scope, query, limit).await?;
    let (records, _) = state.directory.list_call_records(&scope, &filter).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"cdrs.csv\""),
        ],
        csv(&records),
    ))
}

const CSV_HEADER: &str = "id,tenant,icon,account,call_id,number,line,started_at,answered_at,ended_at,\
duration_s,billable_s,answer_source,hangup_cause,rtcp_loss_permille,rtcp_jitter_ms,rtcp_rtt_ms";

/// Call records as RFC 4180 CSV.
fn csv(records: &[CallRecord]) -> String {
    let mut out = String::with_capacity(64 + records.len() * 200);
    out.push_str(CSV_HEADER);
    out.push_str("\r\n");
    for r in records {
        let c = &r.cdr;
        let time = |ms: Option<i64>| {
            ms.and_then(chrono::DateTime::from_timestamp_millis)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
                .unwrap_or_default()
        };
        let number = |n: Option<i64>| n.map(|n| n.to_string()).unwrap_or_default();
        let quality = c.quality.unwrap_or(offhook_directory::CallQuality {
            loss_permille: None,
            lost_packets: None,
            jitter_ms: None,
            rtt_ms: None,
        });
        let fields = [
            c.id.clone(),
            r.tenant_name.clone(),
            r.icon_public_id.clone().unwrap_or_default(),
            r.account_username.clone().unwrap_or_default(),
            c.call_id.clone(),
            c.number.clone(),
            r.line_name.clone().unwrap_or_default(),
            time(Some(c.started_at)),
            time(c.answered_at),
            time(c.ended_at),
            number(r.duration_s),
            number(r.billable_s),
            c.answer_source.map(|s| s.to_string()).unwrap_or_default(),
            c.hangup_cause.map(|c| c.to_string()).unwrap_or_default(),
            number(quality.loss_permille),
            number(quality.jitter_ms),
            number(quality.rtt_ms),
        ];
        for (i, field) in fields.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            if field.contains([',', '"', '\r', '\n']) {
                let _ = write!(out, "\"{}\"", field.replace('"', "\"\""));
            } else {
                out.push_str(field);
            }
        }
        out.push_str("\r\n");
    }
    out
}

/// Calls in progress (started, not ended), newest first.
#[utoipa::path(get, path = "/calls", tag = "calls", responses((status = 200, body = [CallRecord])))]
async fn active_calls(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
) -> ApiResult<Json<Vec<CallRecord>>> {
    let filter = CdrFilter {
        active: true,
        limit: Some(MAX_PAGE),
        ..CdrFilter::default()
    };
    Ok(Json(
        state.directory.list_call_records(&who.scope(), &filter).await?.0,
    ))
}

/// Asks the node that owns a call in progress to hang it up (both sides); answered
/// at once with the request, which that node completes. Asking again while one is
/// open returns that one; a call that has ended is a conflict (409).
#[utoipa::path(post, path = "/calls/{id}/hangup", tag = "calls",
    params(("id" = String, Path, description = "the call's record id (cdr_…)")),
    responses((status = 202, body = OperatorAction, description = "requested; see /actions/{id} for how it went")))]
async fn hang_up_call(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<(StatusCode, Json<OperatorAction>)> {
    let now = chrono::Utc::now().timestamp_millis();
    let action = state
        .directory
        .request_hangup(&who.scope(), &id, &who.0.name, now, HANGUP_TTL_MS)
        .await?;
    let entry = AuditChange::new(
        AuditAction::Hangup,
        "call",
        &action.target_id,
        action.tenant_id.as_deref(),
        serde_json::json!({ "request": action.id, "call": action.target_label }),
    );
    audit::record(&state, &who, entry).await?;
    Ok((StatusCode::ACCEPTED, Json(action)))
}

const HOUR_MS: i64 = 3_600_000;

/// Calls started per hour over the last hours, every hour listed (zero included).
#[utoipa::path(get, path = "/stats/calls-per-hour", tag = "calls", params(HoursQuery),
    responses((status = 200, body = [HourCount])))]
async fn calls_per_hour(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiQuery(query): ApiQuery<HoursQuery>,
) -> ApiResult<Json<Vec<HourCount>>> {
    let hours = bounded("hours", query.hours, 24, 720)?;
    let now = chrono::Utc::now().timestamp_millis();
    let first = (now / HOUR_MS - (hours - 1)) * HOUR_MS;
    let counted = state.directory.calls_per_hour(&who.scope(), first).await?;
    let chart = (0..hours)
        .map(|i| {
            let hour = first + i * HOUR_MS;
            let calls = counted.iter().find(|(h, _)| *h == hour).map_or(0, |(_, n)| *n);
            HourCount { hour, calls }
        })
        .collect();
    Ok(Json(chart))
}

#[cfg(test)]
mod tests {
    use super::*;
    use offhook_directory::{AnswerSource, CallQuality, Cdr, HangupCause};

    #[test]
    fn csv_quotes_what_needs_quoting() {
        let cdr = Cdr {
            id: "cdr_1".into(),
            tenant_id: "ten_1".into(),
            icon_id: None,
            account_id: None,
            call_id: "a,b\"c".into(),
            number: "+4930123".into(),
            line_id: None,
            started_at: 0,
            answered_at: Some(500),
            ended_at: Some(1500),
            answer_source: Some(AnswerSource::Sip),
            hangup_cause: Some(HangupCause::Normal),
            quality: Some(CallQuality {
                loss_permille: Some(12),
                lost_packets: None,
                jitter_ms: Some(8),
                rtt_ms: None,
            }),
        };
        let record = CallRecord {
            cdr,
            tenant_name: "acme".into(),
            icon_public_id: Some("acme-sales".into()),
            icon_label: Some("Sales".into()),
            account_username: None,
            line_name: Some("line-1".into()),
            duration_s: Some(2),
            billable_s: Some(1),
        };
        let text = csv(&[record]);
        let row = text.lines().nth(1).unwrap();
        assert_eq!(
            row,
            "cdr_1,acme,acme-sales,,\"a,b\"\"c\",+4930123,line-1,1970-01-01T00:00:00.000Z,\
             1970-01-01T00:00:00.500Z,1970-01-01T00:00:01.500Z,2,1,sip,normal,12,8,"
        );
        assert!(text.starts_with(CSV_HEADER));
    }
}
