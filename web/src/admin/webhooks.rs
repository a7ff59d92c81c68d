//! `/api/v1/admin/webhooks` and `/api/v1/admin/deliveries`: a tenant's billing
//! hooks (tenant admins manage their own, the operator any) and the outbox of
//! their deliveries with where each stands. A webhook's secret is in the answer
//! to its creation and to a rotation, nowhere else. URLs into the server's own
//! networks are refused unless the operator's configuration allows them.

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use offhook_directory::{
    AuditAction, AuditChange, DeleteImpact, Delivery, DeliveryFilter, DeliveryState, NewWebhook, Webhook,
    WebhookEvent, WebhookUpdate,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::audit;
use super::error::ApiResult;
use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::principal::Principal;
use crate::AppState;

/// A new webhook.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateWebhook {
    /// Tenant name or id; a tenant admin's own tenant when absent.
    pub tenant: Option<String>,
    /// Where to post: `https://…` (or `http://…`), no credentials.
    pub url: String,
    /// What it is for.
    #[serde(default)]
    pub description: String,
    /// The events to send (default: `call.ended`).
    pub events: Option<Vec<WebhookEvent>>,
}

/// A webhook with its secret (shown this once).
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct WebhookWithSecret {
    /// The stored webhook.
    pub webhook: Webhook,
    /// The HMAC-SHA256 key of the `Offhook-Signature` header.
    pub secret: String,
}

/// Which deliveries to list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct DeliveryQuery {
    /// Of this webhook only.
    pub webhook: Option<String>,
    /// In this state only.
    pub state: Option<DeliveryState>,
    /// At most this many, newest first (1-1000, default 100).
    pub limit: Option<i64>,
    /// Skip this many first.
    pub offset: Option<i64>,
}

/// A page of deliveries.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct DeliveryPage {
    /// The deliveries, newest first.
    pub items: Vec<Delivery>,
    /// How many match in all.
    pub total: i64,
}

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_webhooks, create_webhook))
        .routes(routes!(get_webhook, update_webhook, delete_webhook))
        .routes(routes!(rotate_secret))
        .routes(routes!(webhook_delete_impact))
        .routes(routes!(list_deliveries))
        .routes(routes!(retry_delivery))
}

/// Lists the webhooks the caller sees (never their secrets).
#[utoipa::path(get, path = "/webhooks", tag = "webhooks", responses((status = 200, body = [Webhook])))]
async fn list_webhooks(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
) -> ApiResult<Json<Vec<Webhook>>> {
    Ok(Json(state.directory.list_webhooks(&who.scope()).await?))
}

/// Makes a webhook; the answer carries its secret, shown this once.
#[utoipa::path(post, path = "/webhooks", tag = "webhooks", request_body = CreateWebhook,
    responses((status = 201, body = WebhookWithSecret)))]
async fn create_webhook(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiJson(body): ApiJson<CreateWebhook>,
) -> ApiResult<(StatusCode, Json<WebhookWithSecret>)> {
    let tenant = who.tenant_for(&state.directory, body.tenant.as_deref()).await?;
    let new = NewWebhook {
        tenant,
        url: body.url,
        description: body.description,
        events: body.events.unwrap_or_else(|| vec![WebhookEvent::CallEnded]),
    };
    let (webhook, secret) = state
        .directory
        .create_webhook(new, state.webhooks.allow_internal_targets)
        .await?;
    let entry = AuditChange::created("webhook", &webhook.id, Some(&webhook.tenant_id), &webhook);
    audit::record(&state, &who, entry).await?;
    Ok((StatusCode::CREATED, Json(WebhookWithSecret { webhook, secret })))
}

/// One webhook, by id.
#[utoipa::path(get, path = "/webhooks/{id}", tag = "webhooks", params(("id" = String, Path, description = "webhook id")),
    responses((status = 200, body = Webhook)))]
async fn get_webhook(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Webhook>> {
    Ok(Json(state.directory.webhook(&who.scope(), &id).await?))
}

/// Changes a webhook.
#[utoipa::path(patch, path = "/webhooks/{id}", tag = "webhooks", params(("id" = String, Path, description = "webhook id")),
    request_body = WebhookUpdate, responses((status = 200, body = Webhook)))]
async fn update_webhook(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
    ApiJson(update): ApiJson<WebhookUpdate>,
) -> ApiResult<Json<Webhook>> {
    let before = state.directory.webhook(&who.scope(), &id).await?;
    let after = state
        .directory
        .update_webhook(&who.scope(), &id, update, state.webhooks.allow_internal_targets)
        .await?;
    let entry = AuditChange::updated("webhook", &after.id, Some(&after.tenant_id), &before, &after);
    audit::record(&state, &who, entry).await?;
    Ok(Json(after))
}

/// Deletes a webhook and its deliveries.
#[utoipa::path(delete, path = "/webhooks/{id}", tag = "webhooks", params(("id" = String, Path, description = "webhook id")),
    responses((status = 204, description = "deleted")))]
async fn delete_webhook(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let impact = state.directory.webhook_delete_impact(&who.scope(), &id).await?;
    let webhook = state.directory.delete_webhook(&who.scope(), &id).await?;
    let entry = AuditChange::deleted(
        "webhook",
        &webhook.id,
        Some(&webhook.tenant_id),
        &webhook,
        &impact,
    );
    audit::record(&state, &who, entry).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Replaces a webhook's secret; the answer carries the new one, shown this once.
/// Deliveries from then on are signed with it.
#[utoipa::path(post, path = "/webhooks/{id}/secret", tag = "webhooks", params(("id" = String, Path, description = "webhook id")),
    responses((status = 200, body = WebhookWithSecret)))]
async fn rotate_secret(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<WebhookWithSecret>> {
    let (webhook, secret) = state.directory.rotate_webhook_secret(&who.scope(), &id).await?;
    let entry = AuditChange::new(
        AuditAction::RotateSecret,
        "webhook",
        &webhook.id,
        Some(&webhook.tenant_id),
        serde_json::json!({}),
    );
    audit::record(&state, &who, entry).await?;
    Ok(Json(WebhookWithSecret { webhook, secret }))
}

/// What deleting a webhook would remove with it (its deliveries).
#[utoipa::path(get, path = "/webhooks/{id}/delete-impact", tag = "webhooks",
    params(("id" = String, Path, description = "webhook id")), responses((status = 200, body = DeleteImpact)))]
async fn webhook_delete_impact(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<DeleteImpact>> {
    Ok(Json(
        state.directory.webhook_delete_impact(&who.scope(), &id).await?,
    ))
}

/// Lists deliveries and where each stands (pending with its next attempt,
/// delivered, or failed), newest first.
#[utoipa::path(get, path = "/deliveries", tag = "webhooks", params(DeliveryQuery), responses((status = 200, body = DeliveryPage)))]
async fn list_deliveries(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiQuery(query): ApiQuery<DeliveryQuery>,
) -> ApiResult<Json<DeliveryPage>> {
    let filter = DeliveryFilter {
        webhook_id: query.webhook,
        state: query.state,
        limit: query.limit,
        offset: query.offset,
    };
    let (items, total) = state.directory.list_deliveries(&who.scope(), &filter).await?;
    Ok(Json(DeliveryPage { items, total }))
}

/// Sends a delivery that was given up on (or is waiting) again now; a delivered
/// one is never sent twice (409).
#[utoipa::path(post, path = "/deliveries/{id}/retry", tag = "webhooks",
    params(("id" = String, Path, description = "delivery id")), responses((status = 200, body = Delivery)))]
async fn retry_delivery(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Delivery>> {
    let now = chrono::Utc::now().timestamp_millis();
    let delivery = state.directory.retry_delivery(&who.scope(), &id, now).await?;
    let entry = AuditChange::new(
        AuditAction::Retry,
        "delivery",
        &delivery.id,
        Some(&delivery.tenant_id),
        serde_json::json!({}),
    );
    audit::record(&state, &who, entry).await?;
    Ok(Json(delivery))
}
