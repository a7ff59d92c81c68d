//! `/api/v1/admin/lines` and `/api/v1/admin/relays`: the telephone lines (modems)
//! and the media relays that own them. They are the ISP's hardware: the operator
//! changes them; a tenant admin sees its own lines and the shared pool, read-only,
//! and no relays.

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use offhook_directory::{Line, LineKind, LineUpdate, NewLine, NewRelay, Relay};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ApiResult;
use super::extract::{ApiJson, ApiPath};
use super::principal::Principal;
use crate::AppState;

/// A new line.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateLine {
    /// Unique name: 1-63 lowercase letters, digits or '-'.
    pub name: String,
    /// The relay (name or id) that owns the device; created if it does not exist.
    pub relay: String,
    /// Tenant name or id owning the line; absent for the shared pool.
    pub tenant: Option<String>,
    /// Serial device path (`/dev/ttyACM0`), or `emulated`.
    pub device_path: String,
    /// `modem`, `modem+soundcard` or `emulated`.
    pub kind: LineKind,
}

/// A new relay.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRelay {
    /// Unique name (its SIP user name when it registers).
    pub name: String,
}

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_lines, create_line))
        .routes(routes!(get_line, update_line, delete_line))
        .routes(routes!(list_relays, create_relay))
        .routes(routes!(get_relay, delete_relay))
}

/// Lists the lines the caller sees, with their live state.
#[utoipa::path(get, path = "/lines", tag = "lines", responses((status = 200, body = [Line])))]
async fn list_lines(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
) -> ApiResult<Json<Vec<Line>>> {
    Ok(Json(state.directory.list_lines(&who.scope()).await?))
}

/// Creates a line (operator only).
#[utoipa::path(post, path = "/lines", tag = "lines", request_body = CreateLine,
    responses((status = 201, body = Line)))]
async fn create_line(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiJson(body): ApiJson<CreateLine>,
) -> ApiResult<(StatusCode, Json<Line>)> {
    who.operator_only("create lines")?;
    let line = state
        .directory
        .create_line(NewLine {
            name: body.name,
            relay: body.relay,
            tenant: body.tenant,
            device_path: body.device_path,
            kind: body.kind,
        })
        .await?;
    Ok((StatusCode::CREATED, Json(line)))
}

/// One line, by name or id.
#[utoipa::path(get, path = "/lines/{id}", tag = "lines", params(("id" = String, Path, description = "line name or id")),
    responses((status = 200, body = Line)))]
async fn get_line(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Line>> {
    Ok(Json(state.directory.line_in(&who.scope(), &id).await?))
}

/// Changes a line (operator only).
#[utoipa::path(patch, path = "/lines/{id}", tag = "lines", params(("id" = String, Path, description = "line name or id")),
    request_body = LineUpdate, responses((status = 200, body = Line)))]
async fn update_line(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
    ApiJson(update): ApiJson<LineUpdate>,
) -> ApiResult<Json<Line>> {
    let line = state.directory.line_in(&who.scope(), &id).await?;
    who.operator_only("change lines")?;
    Ok(Json(state.directory.update_line(&line.id, update).await?))
}

/// Deletes a line (operator only).
#[utoipa::path(delete, path = "/lines/{id}", tag = "lines", params(("id" = String, Path, description = "line name or id")),
    responses((status = 204, description = "deleted")))]
async fn delete_line(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let line = state.directory.line_in(&who.scope(), &id).await?;
    who.operator_only("delete lines")?;
    state.directory.delete_line(&line.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Lists the media relays and their health (operator only).
#[utoipa::path(get, path = "/relays", tag = "relays", responses((status = 200, body = [Relay])))]
async fn list_relays(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
) -> ApiResult<Json<Vec<Relay>>> {
    who.operator_only("see relays")?;
    Ok(Json(state.directory.list_relays().await?))
}

/// Creates a relay (operator only).
#[utoipa::path(post, path = "/relays", tag = "relays", request_body = CreateRelay,
    responses((status = 201, body = Relay)))]
async fn create_relay(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiJson(body): ApiJson<CreateRelay>,
) -> ApiResult<(StatusCode, Json<Relay>)> {
    who.operator_only("create relays")?;
    let relay = state.directory.create_relay(NewRelay { name: body.name }).await?;
    Ok((StatusCode::CREATED, Json(relay)))
}

/// One relay, by name or id (operator only).
#[utoipa::path(get, path = "/relays/{id}", tag = "relays", params(("id" = String, Path, description = "relay name or id")),
    responses((status = 200, body = Relay)))]
async fn get_relay(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Relay>> {
    who.operator_only("see relays")?;
    Ok(Json(state.directory.relay(&id).await?))
}

/// Deletes a relay and its lines (operator only).
#[utoipa::path(delete, path = "/relays/{id}", tag = "relays", params(("id" = String, Path, description = "relay name or id")),
    responses((status = 204, description = "deleted")))]
async fn delete_relay(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    who.operator_only("delete relays")?;
    state.directory.delete_relay(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}
