//! The embeddable widget: `GET /widget.js` serves, as one script (a site owner
//! pastes a single `<script>` tag): the in-project SIP-over-WebSocket client
//! (`assets/sipws.js`), the widget's words in English, German and French
//! (`assets/i18n.js`), the JavaScript API `Offhook.device(…)` with its calls
//! (`assets/device.js`), and the call icon built on it (`assets/widget.js`),
//! behind the shared vocabulary ([`with_vocabulary`]). No build step: the files
//! are embedded at compile time.

use std::sync::LazyLock;

use axum::http::{HeaderName, header};
use axum::response::IntoResponse;

/// A script of ours behind `const OffhookVocab = {…};`: the word lists and header
/// names of [`offhook_vocab`], so no script spells them on its own. Scoped to the
/// script's own block, so it defines nothing on the embedding page.
pub(crate) fn with_vocabulary(script: &str) -> String {
    format!(
        "{{\nconst OffhookVocab = {};\n{script}\n}}\n",
        offhook_vocab::javascript()
    )
}

/// The script, assembled once.
static WIDGET_JS: LazyLock<String> = LazyLock::new(|| {
    with_vocabulary(concat!(
        include_str!("../assets/sipws.js"),
        "\n",
        include_str!("../assets/i18n.js"),
        "\n",
        include_str!("../assets/device.js"),
        "\n",
        include_str!("../assets/widget.js")
    ))
});

/// `GET /widget.js`.
pub(crate) async fn script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "application/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
            // The widget on any site may time its own download (narrow links).
            (HeaderName::from_static("timing-allow-origin"), "*"),
        ],
        WIDGET_JS.as_str(),
    )
}

/// The snippet a site owner pastes to embed an icon.
pub(crate) fn embed_snippet(base_url: &str, public_id: &str) -> String {
    format!("<script src=\"{base_url}/widget.js\" data-icon=\"{public_id}\" async></script>")
}
