//! The embeddable widget: `GET /widget.js` serves the in-project SIP-over-WebSocket
//! client (`assets/sipws.js`) followed by the call icon (`assets/widget.js`) as one
//! script, so a site owner pastes a single `<script>` tag. No build step: the files
//! are embedded at compile time.

use axum::http::header;
use axum::response::IntoResponse;

/// The script, assembled at compile time.
const WIDGET_JS: &str = concat!(
    include_str!("../assets/sipws.js"),
    "\n",
    include_str!("../assets/widget.js")
);

/// `GET /widget.js`.
pub async fn script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "application/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        WIDGET_JS,
    )
}

/// The snippet a site owner pastes to embed an icon.
pub fn embed_snippet(base_url: &str, public_id: &str) -> String {
    format!("<script src=\"{base_url}/widget.js\" data-icon=\"{public_id}\" async></script>")
}
