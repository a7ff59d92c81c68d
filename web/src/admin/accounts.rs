//! `/api/v1/admin/accounts`: SIP accounts (softphone users and relays) of a
//! tenant. Passwords go in and never come out: only their digest HA1 is kept.

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use offhook_directory::{Account, AccountKind, AccountUpdate, AuditChange, DeleteImpact, NewAccount};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::audit;
use super::error::ApiResult;
use super::extract::{ApiJson, ApiPath};
use super::principal::Principal;
use crate::AppState;

/// A new account.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateAccount {
    /// Tenant name or id; a tenant admin's own tenant when absent.
    pub tenant: Option<String>,
    /// SIP user name.
    pub username: String,
    /// Password (at least 8 characters); only its HA1 is stored.
    pub password: String,
    /// Display name.
    #[serde(default)]
    pub display_name: String,
    /// The account's own phone number (digits, `*`, `#`, leading `+`).
    pub number: Option<String>,
    /// `user` (default) or `relay`.
    #[serde(default = "user_kind")]
    pub kind: AccountKind,
}

fn user_kind() -> AccountKind {
    AccountKind::User
}

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_accounts, create_account))
        .routes(routes!(get_account, update_account, delete_account))
        .routes(routes!(account_delete_impact))
}

/// Lists the accounts the caller sees.
#[utoipa::path(get, path = "/accounts", tag = "accounts", responses((status = 200, body = [Account])))]
async fn list_accounts(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
) -> ApiResult<Json<Vec<Account>>> {
    Ok(Json(state.directory.list_accounts(&who.scope()).await?))
}

/// Creates an account.
#[utoipa::path(post, path = "/accounts", tag = "accounts", request_body = CreateAccount,
    responses((status = 201, body = Account)))]
async fn create_account(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiJson(body): ApiJson<CreateAccount>,
) -> ApiResult<(StatusCode, Json<Account>)> {
    let tenant = who.tenant_for(&state.directory, body.tenant.as_deref()).await?;
    let account = state
        .directory
        .create_account(NewAccount {
            tenant,
            username: body.username,
            password: body.password,
            display_name: body.display_name,
            number: body.number,
            kind: body.kind,
        })
        .await?;
    let entry = AuditChange::created("account", &account.username, Some(&account.tenant_id), &account);
    audit::record(&state, &who, entry).await?;
    Ok((StatusCode::CREATED, Json(account)))
}

/// One account, by id.
#[utoipa::path(get, path = "/accounts/{id}", tag = "accounts", params(("id" = String, Path, description = "account id")),
    responses((status = 200, body = Account)))]
async fn get_account(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Account>> {
    Ok(Json(state.directory.account_by_id(&who.scope(), &id).await?))
}

/// Changes an account.
#[utoipa::path(patch, path = "/accounts/{id}", tag = "accounts", params(("id" = String, Path, description = "account id")),
    request_body = AccountUpdate, responses((status = 200, body = Account)))]
async fn update_account(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
    ApiJson(update): ApiJson<AccountUpdate>,
) -> ApiResult<Json<Account>> {
    let before = state.directory.account_by_id(&who.scope(), &id).await?;
    let new_password = update.password.is_some();
    let after = state
        .directory
        .update_account_by_id(&who.scope(), &id, update)
        .await?;
    let mut entry = AuditChange::updated(
        "account",
        &after.username,
        Some(&after.tenant_id),
        &before,
        &after,
    );
    if new_password {
        // Never the password itself: only that it changed.
        entry.changes["password"] = "changed".into();
    }
    audit::record(&state, &who, entry).await?;
    Ok(Json(after))
}

/// Deletes an account.
#[utoipa::path(delete, path = "/accounts/{id}", tag = "accounts", params(("id" = String, Path, description = "account id")),
    responses((status = 204, description = "deleted")))]
async fn delete_account(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let account = state.directory.account_by_id(&who.scope(), &id).await?;
    let impact = state.directory.account_delete_impact(&who.scope(), &id).await?;
    state.directory.delete_account_by_id(&who.scope(), &id).await?;
    let entry = AuditChange::deleted(
        "account",
        &account.username,
        Some(&account.tenant_id),
        &account,
        &impact,
    );
    audit::record(&state, &who, entry).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What deleting an account would unlink (its call records keep their times).
#[utoipa::path(get, path = "/accounts/{id}/delete-impact", tag = "accounts",
    params(("id" = String, Path, description = "account id")), responses((status = 200, body = DeleteImpact)))]
async fn account_delete_impact(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<DeleteImpact>> {
    Ok(Json(
        state.directory.account_delete_impact(&who.scope(), &id).await?,
    ))
}
