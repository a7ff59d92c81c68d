//! Who is calling the admin API: the tower layer [`require_token`] turns the
//! `Authorization: Bearer …` token into a [`Principal`] (operator or tenant admin)
//! before any handler runs, and every handler asks it for the scope its queries
//! run in, so tenant isolation is decided server-side, in one place.

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use offhook_directory::{Actor, ApiToken, Directory, Scope};

use super::error::{ApiError, ApiResult};
use crate::AppState;

/// The authenticated caller of an admin request.
#[derive(Debug, Clone)]
pub(super) struct Principal(pub ApiToken);

impl Principal {
    /// The scope of every query this caller makes.
    pub(super) fn scope(&self) -> Scope {
        self.0.scope()
    }

    /// The caller as the audit log names it.
    pub(super) fn actor(&self) -> Actor {
        Actor {
            name: self.0.name.clone(),
            token_id: Some(self.0.id.clone()),
            tenant_id: self.0.tenant_id.clone(),
        }
    }

    /// Refuses a tenant admin: `what` is what only the operator may do.
    pub(super) fn operator_only(&self, what: &'static str) -> ApiResult<()> {
        match self.scope() {
            Scope::Operator => Ok(()),
            Scope::Tenant(_) => Err(ApiError::Forbidden(what)),
        }
    }

    /// The tenant id a new object goes to: the one asked for (by name or id, and
    /// visible to the caller), or a tenant admin's own tenant when none is named.
    pub(super) async fn tenant_for(
        &self,
        directory: &Directory,
        requested: Option<&str>,
    ) -> ApiResult<String> {
        match (self.scope(), requested) {
            (scope, Some(key)) => Ok(directory.tenant_in(&scope, key).await?.id),
            (Scope::Tenant(own), None) => Ok(own),
            (Scope::Operator, None) => Err(ApiError::Unprocessable {
                field: "tenant".to_owned(),
                reason: "required: the tenant (name or id) the object belongs to".to_owned(),
            }),
        }
    }
}

/// The tower layer in front of every admin route: a known token, or 401.
pub(super) async fn require_token(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(presented) = presented else {
        return ApiError::Unauthorized.into_response();
    };
    match state.directory.authenticate_api_token(presented).await {
        Ok(Some(token)) => {
            request.extensions_mut().insert(Principal(token));
            next.run(request).await
        }
        Ok(None) => ApiError::Unauthorized.into_response(),
        Err(err) => ApiError::Directory(err).into_response(),
    }
}
