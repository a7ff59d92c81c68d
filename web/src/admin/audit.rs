//! `/api/v1/admin/audit`: the audit log (the operator reads every entry, a tenant
//! admin those about its own tenant's objects), and [`record`], which every
//! changing handler calls after its change: who (the token), what (kind and key),
//! and how (the fields that changed, from and to; the object and what went with
//! it, for a delete; see `offhook_directory::AuditChange`). Objects serialize
//! without their secrets, so none reaches the log.

use axum::extract::State;
use axum::{Extension, Json};
use offhook_directory::{AuditChange, AuditEntry, AuditFilter};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ApiResult;
use super::extract::ApiQuery;
use super::principal::Principal;
use crate::AppState;

/// Which entries to list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct AuditQuery {
    /// Of this kind of object only (`tenant`, `icon`, `line`, `call`, …).
    pub object_kind: Option<String>,
    /// Of this object only (its name or id as recorded).
    pub object_key: Option<String>,
    /// At or after this time, Unix ms.
    pub since: Option<i64>,
    /// At most this many, newest first (1-1000, default 100).
    pub limit: Option<i64>,
    /// Skip this many first.
    pub offset: Option<i64>,
}

/// A page of the audit log.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct AuditPage {
    /// The entries, newest first.
    pub items: Vec<AuditEntry>,
    /// How many match in all.
    pub total: i64,
}

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_audit))
}

/// Lists who changed what, newest first.
#[utoipa::path(get, path = "/audit", tag = "audit", params(AuditQuery), responses((status = 200, body = AuditPage)))]
async fn list_audit(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> ApiResult<Json<AuditPage>> {
    let filter = AuditFilter {
        object_kind: query.object_kind,
        object_key: query.object_key,
        since: query.since,
        limit: query.limit,
        offset: query.offset,
    };
    let (items, total) = state.directory.list_audit(&who.scope(), &filter).await?;
    Ok(Json(AuditPage { items, total }))
}

/// Writes the entry for a change the caller just made.
pub(super) async fn record(state: &AppState, who: &Principal, change: AuditChange) -> ApiResult<()> {
    let now = chrono::Utc::now().timestamp_millis();
    state.directory.record_audit(&who.actor(), change, now).await?;
    Ok(())
}
