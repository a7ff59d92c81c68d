//! `/api/v1/admin/icons`: the call icons a tenant embeds on its pages, and the
//! snippet that embeds one.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::{Extension, Json};
use offhook_directory::{AuditChange, DeleteImpact, Icon, IconUpdate, NewIcon};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::audit;
use super::error::ApiResult;
use super::extract::{ApiJson, ApiPath};
use super::principal::Principal;
use crate::AppState;

/// A new icon; limits and hours have the defaults of [`NewIcon::new`].
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateIcon {
    /// Tenant name or id; a tenant admin's own tenant when absent.
    pub tenant: Option<String>,
    /// The id used in embed snippets (3-64 letters, digits, '-', '_'); generated when absent.
    pub public_id: Option<String>,
    /// The number the icon dials.
    pub number: String,
    /// Text shown next to the icon.
    pub label: String,
    /// Enabled at creation (default true).
    pub enabled: Option<bool>,
    /// Web origins allowed to place calls (`https://shop.example`).
    pub allowed_origins: Option<Vec<String>>,
    /// Opening hours, e.g. `mon-fri 09:00-17:00`; empty means always open.
    pub opening_hours: Option<String>,
    /// IANA time zone of the opening hours (default UTC).
    pub timezone: Option<String>,
    /// Calls through this icon at once (1-1000, default 2).
    pub max_concurrent_calls: Option<i64>,
    /// New calls per minute (1-10000, default 10).
    pub calls_per_minute: Option<i64>,
    /// Seconds a call rings before it ends as no answer (5-600); absent: the
    /// relay's own timeout.
    pub ring_timeout_s: Option<i64>,
}

/// The HTML that embeds an icon on a page.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct EmbedSnippet {
    /// One `<script>` tag to paste into the page.
    pub html: String,
}

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_icons, create_icon))
        .routes(routes!(get_icon, update_icon, delete_icon))
        .routes(routes!(embed_icon))
        .routes(routes!(icon_delete_impact))
}

/// Lists the icons the caller sees.
#[utoipa::path(get, path = "/icons", tag = "icons", responses((status = 200, body = [Icon])))]
async fn list_icons(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
) -> ApiResult<Json<Vec<Icon>>> {
    Ok(Json(state.directory.list_icons(&who.scope()).await?))
}

/// Creates an icon.
#[utoipa::path(post, path = "/icons", tag = "icons", request_body = CreateIcon,
    responses((status = 201, body = Icon)))]
async fn create_icon(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiJson(body): ApiJson<CreateIcon>,
) -> ApiResult<(StatusCode, Json<Icon>)> {
    let tenant = who.tenant_for(&state.directory, body.tenant.as_deref()).await?;
    let defaults = NewIcon::new(&tenant, &body.number, &body.label);
    let new = NewIcon {
        public_id: body.public_id,
        enabled: body.enabled.unwrap_or(defaults.enabled),
        allowed_origins: body.allowed_origins.unwrap_or_default(),
        opening_hours: body.opening_hours.unwrap_or_default(),
        timezone: body.timezone.unwrap_or(defaults.timezone.clone()),
        max_concurrent_calls: body.max_concurrent_calls.unwrap_or(defaults.max_concurrent_calls),
        calls_per_minute: body.calls_per_minute.unwrap_or(defaults.calls_per_minute),
        ring_timeout_s: body.ring_timeout_s,
        ..defaults
    };
    let icon = state.directory.create_icon(new).await?;
    let entry = AuditChange::created("icon", &icon.public_id, Some(&icon.tenant_id), &icon);
    audit::record(&state, &who, entry).await?;
    Ok((StatusCode::CREATED, Json(icon)))
}

/// One icon, by public id or id.
#[utoipa::path(get, path = "/icons/{id}", tag = "icons", params(("id" = String, Path, description = "icon public id or id")),
    responses((status = 200, body = Icon)))]
async fn get_icon(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Icon>> {
    Ok(Json(state.directory.icon(&who.scope(), &id).await?))
}

/// Changes an icon; the whole result is validated before anything is written.
#[utoipa::path(patch, path = "/icons/{id}", tag = "icons", params(("id" = String, Path, description = "icon public id or id")),
    request_body = IconUpdate, responses((status = 200, body = Icon)))]
async fn update_icon(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
    ApiJson(update): ApiJson<IconUpdate>,
) -> ApiResult<Json<Icon>> {
    let before = state.directory.icon(&who.scope(), &id).await?;
    let after = state.directory.update_icon(&who.scope(), &id, update).await?;
    let entry = AuditChange::updated("icon", &after.public_id, Some(&after.tenant_id), &before, &after);
    audit::record(&state, &who, entry).await?;
    Ok(Json(after))
}

/// Deletes an icon.
#[utoipa::path(delete, path = "/icons/{id}", tag = "icons", params(("id" = String, Path, description = "icon public id or id")),
    responses((status = 204, description = "deleted")))]
async fn delete_icon(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let icon = state.directory.icon(&who.scope(), &id).await?;
    let impact = state.directory.icon_delete_impact(&who.scope(), &id).await?;
    state.directory.delete_icon(&who.scope(), &id).await?;
    let entry = AuditChange::deleted("icon", &icon.public_id, Some(&icon.tenant_id), &icon, &impact);
    audit::record(&state, &who, entry).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What deleting an icon would unlink (its call records keep their times).
#[utoipa::path(get, path = "/icons/{id}/delete-impact", tag = "icons",
    params(("id" = String, Path, description = "icon public id or id")), responses((status = 200, body = DeleteImpact)))]
async fn icon_delete_impact(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<DeleteImpact>> {
    Ok(Json(state.directory.icon_delete_impact(&who.scope(), &id).await?))
}

/// The snippet that embeds an icon, pointing at this server.
#[utoipa::path(get, path = "/icons/{id}/embed", tag = "icons", params(("id" = String, Path, description = "icon public id or id")),
    responses((status = 200, body = EmbedSnippet)))]
async fn embed_icon(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
) -> ApiResult<Json<EmbedSnippet>> {
    let icon = state.directory.icon(&who.scope(), &id).await?;
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| {
            h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .unwrap_or("127.0.0.1:8080");
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .filter(|p| *p == "https")
        .unwrap_or("http");
    let html = crate::widget::embed_snippet(&format!("{scheme}://{host}"), &icon.public_id);
    Ok(Json(EmbedSnippet { html }))
}
