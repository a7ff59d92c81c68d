//! The click API: `POST /api/v1/icons/{public_id}/calls` turns a visitor's click
//! into a short-lived, single-use call token, after checking the icon is enabled,
//! the page's Origin is one the icon allows, the icon is open now, and the rate
//! limits (per icon, per visitor address, and per visitor address on the icon:
//! half the icon's, so one visitor cannot use up an icon's minute; the
//! visitor's address is the TCP peer's unless that is a trusted reverse proxy,
//! see [`crate::client_addr`]). The token names the icon, never a
//! number: signaling dials the icon's number from the directory. Also the public
//! icon info the widget shows before any click (`GET /api/v1/icons/{public_id}`):
//! label, whether it is enabled, open (its hours and next opening) and allowed
//! on the asking page. A grant also names the STUN/TURN servers the widget
//! gathers candidates with, TURN with credentials short-lived like the token.
//!
//! CORS: the info is public (`*`). A grant carries `Access-Control-Allow-Origin`
//! only for an allowed origin (nothing else ever gets one). A refusal carries
//! `*`, so the widget on any page can read *why* (and its `code`): a refusal
//! says nothing the asker could not learn anyway (the info is public), and an
//! unknown id gets the same words whatever exists. The preflight answers every
//! origin, for the same reason: the server, not the browser, refuses.
#![allow(
    clippy::disallowed_methods,
    reason = "an edge: it reads the real clock and the OS generator"
)]

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use axum::Json;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use offhook_directory::call_tokens;
use offhook_directory::limits::{CallLimits, Refusal, source_share};
use offhook_directory::{DirectoryError, Icon, Scope};
use serde::Serialize;

use crate::{AppState, IceServer, LinkProfile};

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
    /// `RTCConfiguration.iceServers`: STUN, and TURN with credentials that
    /// expire (`[web.ice]`); empty when none is configured.
    pub ice_servers: Vec<IceServer>,
    /// The media profile the widget asks for (`[web] link_profile`).
    pub link_profile: LinkProfile,
}

/// Why a click was refused: a stable code the widget translates, and words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RefusalCode {
    UnknownIcon,
    Disabled,
    OriginNotAllowed,
    Closed,
    RateLimited,
    Unavailable,
}

impl RefusalCode {
    fn as_str(self) -> &'static str {
        match self {
            Self::UnknownIcon => "unknown-icon",
            Self::Disabled => "disabled",
            Self::OriginNotAllowed => "origin-not-allowed",
            Self::Closed => "closed",
            Self::RateLimited => "rate-limited",
            Self::Unavailable => "unavailable",
        }
    }

    fn status(self) -> StatusCode {
        match self {
            Self::UnknownIcon => StatusCode::NOT_FOUND,
            Self::Disabled | Self::OriginNotAllowed | Self::Closed => StatusCode::FORBIDDEN,
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

#[derive(Serialize)]
struct RefusalBody {
    error: String,
    code: &'static str,
}

/// A refusal anyone may read (see the module's note on CORS).
fn refuse(code: RefusalCode, message: impl Into<String>) -> Response {
    let body = RefusalBody {
        error: message.into(),
        code: code.as_str(),
    };
    let mut response = (code.status(), Json(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("retry-after"),
    );
    response
}

/// The page's origin: the `Origin` header, else the origin of the `Referer`
/// (browsers send no Origin on a same-origin GET); `None` when neither says.
fn page_origin(headers: &HeaderMap) -> Option<String> {
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        return Some(origin.to_owned());
    }
    let referer = headers.get(header::REFERER)?.to_str().ok()?;
    let (scheme, rest) = referer.split_once("://")?;
    let host = rest.split(['/', '?', '#']).next()?;
    Some(format!("{scheme}://{host}"))
}

fn allows(icon: &Icon, origin: &str) -> bool {
    icon.allowed_origins
        .iter()
        .any(|o| o.eq_ignore_ascii_case(origin))
}

async fn find_icon(state: &AppState, public_id: &str) -> Result<Icon, Response> {
    match state.directory.icon(&Scope::Operator, public_id).await {
        Ok(icon) => Ok(icon),
        Err(DirectoryError::NotFound { .. }) => Err(refuse(
            RefusalCode::UnknownIcon,
            "There is no call icon with this id.",
        )),
        Err(err) => {
            tracing::error!(%err, "click API: directory unavailable");
            Err(refuse(
                RefusalCode::Unavailable,
                "Calls are unavailable right now.",
            ))
        }
    }
}

/// `POST /api/v1/icons/{public_id}/calls`.
pub(crate) async fn create_call(
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
    let visitor = state.trusted_proxies.client(peer.ip(), &headers);
    match grant(&state, &icon, origin, visitor).await {
        Ok(grant) => {
            let mut response = (StatusCode::CREATED, Json(grant)).into_response();
            // grant() refuses every origin the icon does not allow: this one is allowed.
            if let Ok(value) = HeaderValue::from_str(origin) {
                let headers = response.headers_mut();
                headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
                headers.insert(header::VARY, HeaderValue::from_static("Origin"));
            }
            response
        }
        Err(response) => response,
    }
}

async fn grant(
    state: &AppState,
    icon: &Icon,
    origin: &str,
    visitor: IpAddr,
) -> Result<CallGrantResponse, Response> {
    if !icon.enabled {
        return Err(refuse(RefusalCode::Disabled, "This call icon is disabled."));
    }
    if !allows(icon, origin) {
        let shown = if origin.is_empty() { "(none)" } else { origin };
        return Err(refuse(
            RefusalCode::OriginNotAllowed,
            format!("Calls through this icon are not allowed from this page (origin {shown})."),
        ));
    }
    if !icon.is_open(chrono::Utc::now()) {
        return Err(refuse(
            RefusalCode::Closed,
            format!(
                "Closed now. Opening hours: {} ({}).",
                icon.opening_hours, icon.timezone
            ),
        ));
    }
    let per_minute = u32::try_from(icon.calls_per_minute).unwrap_or(u32::MAX);
    let limits = CallLimits {
        max_concurrent: u32::MAX,
        per_minute,
        per_source_per_minute: PER_SOURCE_PER_MINUTE,
        per_source_on_key: source_share(per_minute),
    };
    let admitted = {
        // Held only for the counter update; never across an await.
        let mut limiter = state.click_limiter.lock().unwrap_or_else(|p| p.into_inner());
        let admitted = limiter.admit(&icon.id, visitor, limits, Instant::now());
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
            RefusalCode::RateLimited,
            format!("Too many calls right now. Please try again in {retry_after} s."),
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
        return Err(response);
    }
    let tenant = state.directory.tenant(&icon.tenant_id).await.map_err(|err| {
        tracing::error!(%err, "click API: tenant lookup failed");
        refuse(RefusalCode::Unavailable, "Calls are unavailable right now.")
    })?;
    let now = chrono::Utc::now();
    let expires_at = now.timestamp_millis() + TOKEN_LIFETIME_MS;
    Ok(CallGrantResponse {
        ice_servers: state.ice.for_grant(now.timestamp(), &icon.public_id),
        link_profile: state.link_profile,
        token: call_tokens::sign(&state.call_token_secret, &icon.public_id, expires_at),
        ws_url: state.sip_ws_url.clone(),
        target: format!("sip:{}@{}", icon.public_id, tenant.sip_domain),
        domain: tenant.sip_domain,
        expires_in: TOKEN_LIFETIME_MS / 1000,
    })
}

/// What the widget shows before a click.
#[derive(Debug, Serialize)]
struct IconInfo {
    public_id: String,
    label: String,
    /// `ready`, `disabled`, `not-allowed` (on the asking page) or `closed`, in
    /// that order of precedence.
    status: &'static str,
    enabled: bool,
    open: bool,
    /// Whether the asking page's origin may place calls; `null` when the request
    /// did not say which page it came from.
    allowed_here: Option<bool>,
    /// IANA time zone of the hours.
    timezone: String,
    /// Open ranges per weekday, Monday first, as `["HH:MM", "HH:MM"]` in the
    /// icon's time zone; `null` when always open.
    hours: Option<Vec<Vec<[String; 2]>>>,
    /// When it next opens, Unix ms (while closed).
    next_open_at: Option<i64>,
}

fn clock(minute: u16) -> String {
    format!("{:02}:{:02}", minute / 60, minute % 60)
}

/// `GET /api/v1/icons/{public_id}`: what the widget shows before a call.
pub(crate) async fn icon_info(
    State(state): State<AppState>,
    Path(public_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let icon = match find_icon(&state, &public_id).await {
        Ok(icon) => icon,
        Err(response) => return response,
    };
    let now = chrono::Utc::now();
    let open = icon.is_open(now);
    let allowed_here = page_origin(&headers).map(|origin| allows(&icon, &origin));
    let status = match (icon.enabled, allowed_here, open) {
        (false, _, _) => "disabled",
        (true, Some(false), _) => "not-allowed",
        (true, _, false) => "closed",
        (true, _, true) => "ready",
    };
    let hours = offhook_directory::OpeningHours::parse(&icon.opening_hours)
        .ok()
        .and_then(|h| h.weekly())
        .map(|days| {
            days.iter()
                .map(|ranges| {
                    ranges
                        .iter()
                        .map(|&(from, to)| [clock(from), clock(to)])
                        .collect()
                })
                .collect()
        });
    let info = IconInfo {
        next_open_at: (!open)
            .then(|| icon.next_opening(now))
            .flatten()
            .map(|t| t.timestamp_millis()),
        public_id: icon.public_id,
        label: icon.label,
        status,
        enabled: icon.enabled,
        open,
        allowed_here,
        timezone: icon.timezone,
        hours,
    };
    let mut response = Json(info).into_response();
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    headers.insert(header::VARY, HeaderValue::from_static("Origin, Referer"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// `OPTIONS /api/v1/icons/{public_id}/calls`: the CORS preflight, for every
/// origin (the POST itself is what the server refuses).
pub(crate) async fn preflight(headers: HeaderMap) -> Response {
    let origin = headers
        .get(header::ORIGIN)
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_static("*"));
    let mut response = StatusCode::NO_CONTENT.into_response();
    let h = response.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    h.insert(header::VARY, HeaderValue::from_static("Origin"));
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("POST"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("content-type"),
    );
    h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_origin_from_origin_or_referer() {
        let mut headers = HeaderMap::new();
        assert_eq!(page_origin(&headers), None);
        headers.insert(
            header::REFERER,
            HeaderValue::from_static("https://shop.example:8443/a/b?c#d"),
        );
        assert_eq!(
            page_origin(&headers).as_deref(),
            Some("https://shop.example:8443")
        );
        headers.insert(header::ORIGIN, HeaderValue::from_static("https://other.example"));
        assert_eq!(page_origin(&headers).as_deref(), Some("https://other.example"));
        let mut junk = HeaderMap::new();
        junk.insert(header::REFERER, HeaderValue::from_static("not a url"));
        assert_eq!(page_origin(&junk), None);
    }
}
