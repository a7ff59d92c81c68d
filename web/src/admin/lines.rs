//! `/api/v1/admin/lines` and `/api/v1/admin/relays`: the telephone lines (modems)
//! and the media relays that own them. They are the ISP's hardware: the operator
//! changes them, reads their diagnostics (why a line is in fault, its relay's
//! health, its registrations and calls) and asks for a line reset (carried out by
//! the relay that owns it, see `offhook_directory`'s operator actions); a tenant
//! admin sees its own lines and the shared pool, read-only, and no relays.

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use offhook_directory::{
    AuditAction, AuditChange, DeleteImpact, Line, LineDiagnostics, LineKind, LineUpdate, NewLine, NewRelay,
    OperatorAction, Relay,
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

/// A new line.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateLine {
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
pub(super) struct CreateRelay {
    /// Unique name (its SIP user name when it registers).
    pub name: String,
}

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_lines, create_line))
        .routes(routes!(get_line, update_line, delete_line))
        .routes(routes!(line_diagnostics))
        .routes(routes!(reset_line))
        .routes(routes!(line_delete_impact))
        .routes(routes!(list_relays, create_relay))
        .routes(routes!(get_relay, delete_relay))
        .routes(routes!(relay_delete_impact))
}

/// How long a reset request waits for its relay before it ends as expired.
const RESET_TTL_MS: i64 = 2 * 60 * 1000;

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
    let entry = AuditChange::created("line", &line.name, line.tenant_id.as_deref(), &line);
    audit::record(&state, &who, entry).await?;
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
    let after = state.directory.update_line(&line.id, update).await?;
    let entry = AuditChange::updated("line", &line.name, line.tenant_id.as_deref(), &line, &after);
    audit::record(&state, &who, entry).await?;
    Ok(Json(after))
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
    let impact = state.directory.line_delete_impact(&who.scope(), &line.id).await?;
    state.directory.delete_line(&line.id).await?;
    let entry = AuditChange::deleted("line", &line.name, line.tenant_id.as_deref(), &line, &impact);
    audit::record(&state, &who, entry).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Why a line is (not) working: its state and fault reason, its relay's health and
/// when it was last seen, the relay's registrations of it, its current and last
/// call, open requests on it, and the problems these show (operator only).
#[utoipa::path(get, path = "/lines/{id}/diagnostics", tag = "lines",
    params(("id" = String, Path, description = "line name or id")), responses((status = 200, body = LineDiagnostics)))]
async fn line_diagnostics(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<LineDiagnostics>> {
    let line = state.directory.line_in(&who.scope(), &id).await?;
    who.operator_only("see line diagnostics")?;
    let now = chrono::Utc::now().timestamp_millis();
    Ok(Json(state.directory.line_diagnostics(&line.id, now).await?))
}

/// Asks the relay that owns the line to reset it (end its call, re-open its
/// device, back to idle); answered at once with the request, which the relay
/// completes (operator only). Asking again while one is open returns that one.
#[utoipa::path(post, path = "/lines/{id}/reset", tag = "lines",
    params(("id" = String, Path, description = "line name or id")),
    responses((status = 202, body = OperatorAction, description = "requested; see /actions/{id} for how it went")))]
async fn reset_line(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<(StatusCode, Json<OperatorAction>)> {
    let line = state.directory.line_in(&who.scope(), &id).await?;
    who.operator_only("reset lines")?;
    let now = chrono::Utc::now().timestamp_millis();
    let action = state
        .directory
        .request_line_reset(&line.id, &who.0.name, now, RESET_TTL_MS)
        .await?;
    let entry = AuditChange::new(
        AuditAction::Reset,
        "line",
        &line.name,
        line.tenant_id.as_deref(),
        serde_json::json!({ "request": action.id, "state": line.state }),
    );
    audit::record(&state, &who, entry).await?;
    Ok((StatusCode::ACCEPTED, Json(action)))
}

/// What deleting a line would unlink (its call records keep their times).
#[utoipa::path(get, path = "/lines/{id}/delete-impact", tag = "lines",
    params(("id" = String, Path, description = "line name or id")), responses((status = 200, body = DeleteImpact)))]
async fn line_delete_impact(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<DeleteImpact>> {
    Ok(Json(state.directory.line_delete_impact(&who.scope(), &id).await?))
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
    audit::record(
        &state,
        &who,
        AuditChange::created("relay", &relay.name, None, &relay),
    )
    .await?;
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
    let relay = state.directory.relay(&id).await?;
    let impact = state.directory.relay_delete_impact(&relay.id).await?;
    state.directory.delete_relay(&relay.id).await?;
    audit::record(
        &state,
        &who,
        AuditChange::deleted("relay", &relay.name, None, &relay, &impact),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What deleting a relay would remove with it (its lines), counted (operator only).
#[utoipa::path(get, path = "/relays/{id}/delete-impact", tag = "relays",
    params(("id" = String, Path, description = "relay name or id")), responses((status = 200, body = DeleteImpact)))]
async fn relay_delete_impact(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<DeleteImpact>> {
    who.operator_only("see relays")?;
    Ok(Json(state.directory.relay_delete_impact(&id).await?))
}
