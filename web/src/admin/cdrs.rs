//! `/api/v1/admin/cdrs` (filtered by time, icon and cause; also as CSV), the
//! active calls (`/calls`: CDRs not ended yet) and calls per hour for the chart.
//! All scoped: a tenant admin sees its own tenant's calls only.

use std::fmt::Write as _;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::{Extension, Json};
use offhook_directory::{Cdr, CdrFilter, Directory, Scope};
use offhook_vocab::UnknownWord;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ApiResult};
use super::extract::ApiQuery;
use super::principal::Principal;
use crate::AppState;

/// Which CDRs to list; every parameter narrows the result.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CdrQuery {
    /// Started at or after this time, Unix ms.
    pub since: Option<i64>,
    /// Started before this time, Unix ms.
    pub until: Option<i64>,
    /// Through this icon (public id or id).
    pub icon: Option<String>,
    /// With this hang-up cause (`normal`, `busy`, `no-answer`, `invalid-number`, …).
    pub cause: Option<String>,
    /// At most this many, newest first (1-100000, default 1000).
    pub limit: Option<i64>,
}

/// How far back the calls-per-hour chart goes.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HoursQuery {
    /// Hours back from now (1-720, default 24).
    pub hours: Option<i64>,
}

/// Calls started in one hour.
#[derive(Debug, Serialize, ToSchema)]
pub struct HourCount {
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
        .routes(routes!(calls_per_hour))
}

async fn filter(directory: &Directory, scope: &Scope, query: CdrQuery) -> ApiResult<CdrFilter> {
    let icon_id = match query.icon {
        Some(key) => Some(directory.icon(scope, &key).await?.id),
        None => None,
    };
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
        limit: query.limit,
    })
}

/// Lists call detail records, newest first.
#[utoipa::path(get, path = "/cdrs", tag = "calls", params(CdrQuery), responses((status = 200, body = [Cdr])))]
async fn list_cdrs(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiQuery(query): ApiQuery<CdrQuery>,
) -> ApiResult<Json<Vec<Cdr>>> {
    let scope = who.scope();
    let filter = filter(&state.directory, &scope, query).await?;
    Ok(Json(state.directory.list_cdrs(&scope, &filter).await?))
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
    let filter = filter(&state.directory, &scope, query).await?;
    let cdrs = state.directory.list_cdrs(&scope, &filter).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"cdrs.csv\""),
        ],
        csv(&cdrs),
    ))
}

const CSV_HEADER: &str = "id,tenant_id,icon_id,account_id,call_id,number,line_id,started_at,answered_at,ended_at,answer_source,hangup_cause";

/// CDRs as RFC 4180 CSV.
fn csv(cdrs: &[Cdr]) -> String {
    let mut out = String::with_capacity(64 + cdrs.len() * 160);
    out.push_str(CSV_HEADER);
    out.push_str("\r\n");
    for c in cdrs {
        let time = |ms: Option<i64>| {
            ms.and_then(chrono::DateTime::from_timestamp_millis)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
                .unwrap_or_default()
        };
        let fields = [
            c.id.clone(),
            c.tenant_id.clone(),
            c.icon_id.clone().unwrap_or_default(),
            c.account_id.clone().unwrap_or_default(),
            c.call_id.clone(),
            c.number.clone(),
            c.line_id.clone().unwrap_or_default(),
            time(Some(c.started_at)),
            time(c.answered_at),
            time(c.ended_at),
            c.answer_source.map(|s| s.to_string()).unwrap_or_default(),
            c.hangup_cause.map(|c| c.to_string()).unwrap_or_default(),
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
#[utoipa::path(get, path = "/calls", tag = "calls", responses((status = 200, body = [Cdr])))]
async fn active_calls(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
) -> ApiResult<Json<Vec<Cdr>>> {
    let filter = CdrFilter {
        active: true,
        ..CdrFilter::default()
    };
    Ok(Json(state.directory.list_cdrs(&who.scope(), &filter).await?))
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
    let hours = query.hours.unwrap_or(24);
    if !(1..=720).contains(&hours) {
        return Err(ApiError::Unprocessable {
            field: "hours".to_owned(),
            reason: format!("{hours} is outside 1..=720"),
        });
    }
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
    use offhook_vocab::HangupCause;

    use super::*;

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
            answered_at: None,
            ended_at: Some(1500),
            answer_source: None,
            hangup_cause: Some(HangupCause::Normal),
        };
        let text = csv(&[cdr]);
        let row = text.lines().nth(1).unwrap();
        assert_eq!(
            row,
            "cdr_1,ten_1,,,\"a,b\"\"c\",+4930123,,1970-01-01T00:00:00.000Z,,1970-01-01T00:00:01.500Z,,normal"
        );
        assert!(text.starts_with(CSV_HEADER));
    }
}
