//! `/api/v1/admin/actions`: the hang-up and reset requests made through the API
//! or the command line, and how each went (open, then `done`, `failed`,
//! `not-found` or `expired`), so an operator sees whether the node that owns
//! the call or line carried it out. Scoped like the calls and lines they name.

use axum::extract::State;
use axum::{Extension, Json};
use offhook_directory::OperatorAction;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ApiResult;
use super::extract::{ApiPath, ApiQuery};
use super::principal::Principal;
use crate::AppState;

/// Which requests to list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct ActionQuery {
    /// Only those not completed yet.
    pub open: Option<bool>,
    /// At most this many, newest first (1-1000, default 100).
    pub limit: Option<i64>,
    /// Skip this many first.
    pub offset: Option<i64>,
}

/// A page of requests.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct ActionPage {
    /// The requests, newest first.
    pub items: Vec<OperatorAction>,
    /// How many match in all.
    pub total: i64,
}

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_actions))
        .routes(routes!(get_action))
}

/// Lists hang-up and reset requests, newest first.
#[utoipa::path(get, path = "/actions", tag = "calls", params(ActionQuery), responses((status = 200, body = ActionPage)))]
async fn list_actions(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiQuery(query): ApiQuery<ActionQuery>,
) -> ApiResult<Json<ActionPage>> {
    let now = chrono::Utc::now().timestamp_millis();
    let (items, total) = state
        .directory
        .list_operator_actions(
            &who.scope(),
            query.open.unwrap_or(false),
            query.limit.unwrap_or(100),
            query.offset.unwrap_or(0),
            now,
        )
        .await?;
    Ok(Json(ActionPage { items, total }))
}

/// One request and how it went.
#[utoipa::path(get, path = "/actions/{id}", tag = "calls", params(("id" = String, Path, description = "request id (act_…)")),
    responses((status = 200, body = OperatorAction)))]
async fn get_action(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<OperatorAction>> {
    let now = chrono::Utc::now().timestamp_millis();
    state.directory.expire_operator_actions(now).await?;
    Ok(Json(state.directory.operator_action(&who.scope(), &id).await?))
}
