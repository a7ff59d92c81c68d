//! The click API: `POST /api/v1/icons/{public_id}/calls` turns a visitor's click
//! into a short-lived, single-use call token, after checking the icon is enabled,
//! the page's Origin is one the icon allows, the icon is open now, and the rate
//! limits (per icon, per visitor address). The token names the icon, never a
//! number: signaling dials the icon's number from the directory. Also the public
//! icon info the widget shows (`GET /api/v1/icons/{public_id}`), with CORS for the
//! allowed origins.

use std::net::SocketAddr;
use std::time::Instant;

use axum::Json;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use offhook_directory::call_tokens;
use offhook_directory::limits::{CallLimits, Refusal};
use offhook_directory::{DirectoryError, Icon, Scope};
use serde::Serialize;
use serde_json::json;

use crate::AppState;

/// How long a call token stays valid.
pub const TOKEN_LIFETIME_MS: i64 = 3 * 60 * 1000;

/// Token requests per minute from one visitor address.
const PER_SOURCE_PER_MINUTE: u32 = 20;

/// What the widget needs to place the call.
#[derive(Debug, Serialize)]
pub struct CallGrantResponse {
    /// The single-use token, sent in the INVITE's `X-Offhook-Token` header.
    pub token: String,
    /// The SIP WebSocket URL to call over.
    pub ws_url: String,
    /// The Request-URI: the icon at its tenant's domain.
    pub target: String,
    /// The tenant's SIP domain.
    pub domain: String,
    /// Seconds the token stays valid.
    pub expires_in: i64,
}

fn refuse(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

fn allow_origin(response: &mut Response, origin: &str) {
    if let Ok(value) = HeaderValue::from_str(origin) {
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
        headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    }
}

async fn find_icon(state: &AppState, public_id: &str) -> Result<Icon, Response> {
    match state.directory.icon(&Scope::Operator, public_id).await {
        Ok(icon) => Ok(icon),
        Err(DirectoryError::NotFound { .. }) => {
            Err(refuse(StatusCode::NOT_FOUND, "There is no such call icon."))
        }
        Err(err) => {
            tracing::error!(%err, "click API: directory unavailable");
            Err(refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "Calls are unavailable right now.",
            ))
        }
    }
}

/// `POST /api/v1/icons/{public_id}/calls`.
pub async fn create_call(
    State(state): State<AppState>,
    Path(public_id): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let icon = match find_icon(&state, &public_id).await {
        Ok(icon) => icon,
        Err(response) => return response,
    };
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let result = grant(&state, &icon, origin, peer).await;
    let mut response = match result {
        Ok(grant) => (StatusCode::CREATED, Json(grant)).into_response(),
        Err(response) => response,
    };
    if icon.allowed_origins.iter().any(|o| o == origin) {
        allow_origin(&mut response, origin);
    }
    response
}

async fn grant(
    state: &AppState,
    icon: &Icon,
    origin: &str,
    peer: SocketAddr,
) -> Result<CallGrantResponse, Response> {
    if !icon.enabled {
        return Err(refuse(StatusCode::FORBIDDEN, "This call icon is disabled."));
    }
    if !icon
        .allowed_origins
        .iter()
        .any(|o| o.eq_ignore_ascii_case(origin))
    {
        let shown = if origin.is_empty() { "(none)" } else { origin };
        return Err(refuse(
            StatusCode::FORBIDDEN,
            format!("Calls through this icon are not allowed from this page (origin {shown})."),
        ));
    }
    if !icon.is_open(chrono::Utc::now()) {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            format!(
                "Closed now. Opening hours: {} ({}).",
                icon.opening_hours, icon.timezone
            ),
        ));
    }
    let limits = CallLimits {
        max_concurrent: u32::MAX,
        per_minute: u32::try_from(icon.calls_per_minute).unwrap_or(u32::MAX),
        per_source_per_minute: PER_SOURCE_PER_MINUTE,
    };
    let admitted = {
        // Held only for the counter update; never across an await.
        let mut limiter = state.click_limiter.lock().unwrap_or_else(|p| p.into_inner());
        let admitted = limiter.admit(&icon.id, peer.ip(), limits, Instant::now());
        // A token is not a call: only the per-minute windows count here.
        if admitted.is_ok() {
            limiter.end(&icon.id);
        }
        admitted
    };
    if let Err(refusal) = admitted {
        let retry_after = match refusal {
            Refusal::RateLimited { retry_after } => retry_after,
            Refusal::TooManyConcurrent => 1,
        };
        let mut response = refuse(
            StatusCode::TOO_MANY_REQUESTS,
            format!("Too many calls right now. Please try again in {retry_after} s."),
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
        return Err(response);
    }
    let tenant = state.directory.tenant(&icon.tenant_id).await.map_err(|err| {
        tracing::error!(%err, "click API: tenant lookup failed");
        refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "Calls are unavailable right now.",
        )
    })?;
    let expires_at = chrono::Utc::now().timestamp_millis() + TOKEN_LIFETIME_MS;
    Ok(CallGrantResponse {
        token: call_tokens::sign(&state.call_token_secret, &icon.public_id, expires_at),
        ws_url: state.sip_ws_url.clone(),
        target: format!("sip:{}@{}", icon.public_id, tenant.sip_domain),
        domain: tenant.sip_domain,
        expires_in: TOKEN_LIFETIME_MS / 1000,
    })
}

/// `GET /api/v1/icons/{public_id}`: what the widget shows before a call.
pub async fn icon_info(State(state): State<AppState>, Path(public_id): Path<String>) -> Response {
    match find_icon(&state, &public_id).await {
        Ok(icon) => {
            let open = icon.is_open(chrono::Utc::now());
            let mut response = Json(json!({
                "public_id": icon.public_id,
                "label": icon.label,
                "enabled": icon.enabled,
                "open": open,
            }))
            .into_response();
            response
                .headers_mut()
                .insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
            response
        }
        Err(response) => response,
    }
}

/// `OPTIONS /api/v1/icons/{public_id}/calls`: CORS preflight for allowed origins.
pub async fn preflight(
    State(state): State<AppState>,
    Path(public_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mut response = StatusCode::NO_CONTENT.into_response();
    if let Ok(icon) = find_icon(&state, &public_id).await
        && icon.allowed_origins.iter().any(|o| o == origin)
    {
        allow_origin(&mut response, origin);
        let h = response.headers_mut();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("POST"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("content-type"),
        );
        h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    }
    response
}
