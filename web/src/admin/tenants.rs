//! `/api/v1/admin/tenants`: the ISP's customers. The operator creates, changes and
//! deletes them (`delete-impact` first tells what a delete takes with it) and
//! sets each one's destination policy (toll fraud: allowed and denied number
//! prefixes, calls at once); a tenant admin sees its own tenant and policy only.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use offhook_directory::{
    AuditChange, DeleteImpact, DestinationPolicy, NewTenant, PolicyUpdate, Tenant, TenantUpdate,
};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::audit;
use super::error::ApiResult;
use super::extract::{ApiJson, ApiPath};
use super::principal::Principal;
use crate::AppState;
use axum::Extension;

/// A new tenant.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateTenant {
    /// Short unique name: 1-63 lowercase letters, digits or '-'.
    pub name: String,
    /// The tenant's SIP domain (its accounts' digest realm).
    pub sip_domain: String,
}

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_tenants, create_tenant))
        .routes(routes!(get_tenant, update_tenant, delete_tenant))
        .routes(routes!(tenant_delete_impact))
        .routes(routes!(get_policy, update_policy))
}

/// Lists the tenants the caller sees.
#[utoipa::path(get, path = "/tenants", tag = "tenants", responses((status = 200, body = [Tenant])))]
async fn list_tenants(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
) -> ApiResult<Json<Vec<Tenant>>> {
    Ok(Json(state.directory.list_tenants(&who.scope()).await?))
}

/// Creates a tenant (operator only).
#[utoipa::path(post, path = "/tenants", tag = "tenants", request_body = CreateTenant,
    responses((status = 201, body = Tenant)))]
async fn create_tenant(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiJson(body): ApiJson<CreateTenant>,
) -> ApiResult<(StatusCode, Json<Tenant>)> {
    who.operator_only("create tenants")?;
    let tenant = state
        .directory
        .create_tenant(NewTenant {
            name: body.name,
            sip_domain: body.sip_domain,
        })
        .await?;
    let entry = AuditChange::created("tenant", &tenant.name, Some(&tenant.id), &tenant);
    audit::record(&state, &who, entry).await?;
    Ok((StatusCode::CREATED, Json(tenant)))
}

/// One tenant, by name or id.
#[utoipa::path(get, path = "/tenants/{id}", tag = "tenants", params(("id" = String, Path, description = "tenant name or id")),
    responses((status = 200, body = Tenant)))]
async fn get_tenant(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Tenant>> {
    Ok(Json(state.directory.tenant_in(&who.scope(), &id).await?))
}

/// Changes a tenant (operator only).
#[utoipa::path(patch, path = "/tenants/{id}", tag = "tenants", params(("id" = String, Path, description = "tenant name or id")),
    request_body = TenantUpdate, responses((status = 200, body = Tenant)))]
async fn update_tenant(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
    ApiJson(update): ApiJson<TenantUpdate>,
) -> ApiResult<Json<Tenant>> {
    let tenant = state.directory.tenant_in(&who.scope(), &id).await?;
    who.operator_only("change tenants")?;
    let updated = state.directory.update_tenant(&tenant.id, update).await?;
    let entry = AuditChange::updated("tenant", &tenant.name, Some(&tenant.id), &tenant, &updated);
    audit::record(&state, &who, entry).await?;
    Ok(Json(updated))
}

/// Deletes a tenant and everything it owns (operator only).
#[utoipa::path(delete, path = "/tenants/{id}", tag = "tenants", params(("id" = String, Path, description = "tenant name or id")),
    responses((status = 204, description = "deleted")))]
async fn delete_tenant(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let tenant = state.directory.tenant_in(&who.scope(), &id).await?;
    who.operator_only("delete tenants")?;
    let impact = state
        .directory
        .tenant_delete_impact(&who.scope(), &tenant.id)
        .await?;
    state.directory.delete_tenant(&tenant.id).await?;
    let entry = AuditChange::deleted("tenant", &tenant.name, Some(&tenant.id), &tenant, &impact);
    audit::record(&state, &who, entry).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What deleting a tenant would remove with it (its accounts, icons, lines,
/// tokens, webhooks, call records, …), counted; nothing is deleted.
#[utoipa::path(get, path = "/tenants/{id}/delete-impact", tag = "tenants",
    params(("id" = String, Path, description = "tenant name or id")), responses((status = 200, body = DeleteImpact)))]
async fn tenant_delete_impact(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<DeleteImpact>> {
    Ok(Json(
        state.directory.tenant_delete_impact(&who.scope(), &id).await?,
    ))
}

/// A tenant's destination policy (the built-in denials apply on top of it).
#[utoipa::path(get, path = "/tenants/{id}/policy", tag = "tenants",
    params(("id" = String, Path, description = "tenant name or id")), responses((status = 200, body = DestinationPolicy)))]
async fn get_policy(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<DestinationPolicy>> {
    let tenant = state.directory.tenant_in(&who.scope(), &id).await?;
    Ok(Json(state.directory.destination_policy(&tenant.id).await?))
}

/// Changes a tenant's destination policy (operator only: the ISP carries the
/// cost of toll fraud); 422 names a bad prefix or cap.
#[utoipa::path(patch, path = "/tenants/{id}/policy", tag = "tenants",
    params(("id" = String, Path, description = "tenant name or id")),
    request_body = PolicyUpdate, responses((status = 200, body = DestinationPolicy)))]
async fn update_policy(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
    ApiJson(update): ApiJson<PolicyUpdate>,
) -> ApiResult<Json<DestinationPolicy>> {
    let tenant = state.directory.tenant_in(&who.scope(), &id).await?;
    who.operator_only("change destination policies")?;
    let before = state.directory.destination_policy(&tenant.id).await?;
    let after = state
        .directory
        .update_destination_policy(&tenant.id, update)
        .await?;
    let entry = AuditChange::updated(
        "destination policy",
        &tenant.name,
        Some(&tenant.id),
        &before,
        &after,
    );
    audit::record(&state, &who, entry).await?;
    Ok(Json(after))
}
