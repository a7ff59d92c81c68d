//! `/api/v1/admin/tokens` and `/api/v1/admin/me`: API tokens and who the caller
//! is. The operator makes operator tokens and any tenant's; a tenant admin makes
//! and revokes tokens of its own tenant only. A token's secret is in the answer
//! to its creation and nowhere else.

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use offhook_directory::{ApiToken, AuditChange, NewApiToken, Scope};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::audit;
use super::error::ApiResult;
use super::extract::{ApiJson, ApiPath};
use super::principal::Principal;
use crate::AppState;

/// A new token.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateToken {
    /// What the token is for.
    pub name: String,
    /// Tenant (name or id) for a tenant admin's token; absent: an operator token
    /// (when the operator asks) or the caller's own tenant (a tenant admin).
    pub tenant: Option<String>,
}

/// A token just made, with its secret (shown this once).
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct CreatedToken {
    /// The stored token.
    pub token: ApiToken,
    /// The secret to send as `Authorization: Bearer …`.
    pub secret: String,
}

/// The caller.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Me {
    /// `operator` or `tenant-admin`.
    pub role: String,
    /// The tenant of a tenant admin.
    pub tenant_id: Option<String>,
    /// The token's name.
    pub token_name: String,
}

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(me))
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(get_token, delete_token))
}

/// Who the presented token belongs to.
#[utoipa::path(get, path = "/me", tag = "tokens", responses((status = 200, body = Me)))]
async fn me(Extension(who): Extension<Principal>) -> Json<Me> {
    let role = match who.scope() {
        Scope::Operator => "operator",
        Scope::Tenant(_) => "tenant-admin",
    };
    Json(Me {
        role: role.to_owned(),
        tenant_id: who.0.tenant_id.clone(),
        token_name: who.0.name.clone(),
    })
}

/// Lists the tokens the caller sees (never their secrets).
#[utoipa::path(get, path = "/tokens", tag = "tokens", responses((status = 200, body = [ApiToken])))]
async fn list_tokens(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
) -> ApiResult<Json<Vec<ApiToken>>> {
    Ok(Json(state.directory.list_api_tokens(&who.scope()).await?))
}

/// Makes a token.
#[utoipa::path(post, path = "/tokens", tag = "tokens", request_body = CreateToken,
    responses((status = 201, body = CreatedToken)))]
async fn create_token(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiJson(body): ApiJson<CreateToken>,
) -> ApiResult<(StatusCode, Json<CreatedToken>)> {
    let tenant = match (who.scope(), body.tenant) {
        (Scope::Operator, None) => None,
        (_, requested) => Some(who.tenant_for(&state.directory, requested.as_deref()).await?),
    };
    let (token, secret) = state
        .directory
        .create_api_token(NewApiToken {
            name: body.name,
            tenant,
        })
        .await?;
    let entry = AuditChange::created("token", &token.id, token.tenant_id.as_deref(), &token);
    audit::record(&state, &who, entry).await?;
    Ok((StatusCode::CREATED, Json(CreatedToken { token, secret })))
}

/// One token, by id (never its secret).
#[utoipa::path(get, path = "/tokens/{id}", tag = "tokens", params(("id" = String, Path, description = "token id")),
    responses((status = 200, body = ApiToken)))]
async fn get_token(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<ApiToken>> {
    Ok(Json(state.directory.api_token(&who.scope(), &id).await?))
}

/// Revokes a token.
#[utoipa::path(delete, path = "/tokens/{id}", tag = "tokens", params(("id" = String, Path, description = "token id")),
    responses((status = 204, description = "revoked")))]
async fn delete_token(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let token = state.directory.api_token(&who.scope(), &id).await?;
    state.directory.delete_api_token(&who.scope(), &id).await?;
    let entry = AuditChange::new(
        offhook_directory::AuditAction::Delete,
        "token",
        &token.id,
        token.tenant_id.as_deref(),
        serde_json::json!({ "deleted": token }),
    );
    audit::record(&state, &who, entry).await?;
    Ok(StatusCode::NO_CONTENT)
}
