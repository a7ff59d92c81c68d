//! The admin web UI at `/admin`: one page and one script (`assets/admin.html`,
//! `assets/admin.js`, embedded at compile time, no build step). The page signs in
//! with an API token (kept in the tab's session storage) and drives the admin REST
//! API: lists and forms for tenants, accounts, icons (with each one's embed
//! snippet), lines, relays, CDRs and tokens; a live board of lines and active
//! calls; a calls-per-hour chart. All it shows comes from the API, so it sees
//! exactly what the token's scope allows.

use std::sync::LazyLock;

use axum::http::header;
use axum::response::{Html, IntoResponse};

use crate::widget::with_vocabulary;

static ADMIN_JS: LazyLock<String> = LazyLock::new(|| with_vocabulary(include_str!("../assets/admin.js")));

/// `GET /admin`.
pub(crate) async fn page() -> impl IntoResponse {
    (
        [(header::CACHE_CONTROL, "no-store")],
        Html(include_str!("../assets/admin.html")),
    )
}

/// `GET /admin/admin.js`.
pub(crate) async fn script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "application/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        ADMIN_JS.as_str(),
    )
}
