//! Server-rendered pages: the start page shows the enabled call icons of the
//! directory, each as its widget (on `offhook demo`: the echo, to hear yourself).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Html;
use offhook_directory::Scope;

use crate::AppState;

/// Escapes text for HTML element content and attribute values.
fn escape(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '&' => "&amp;".to_owned(),
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '"' => "&quot;".to_owned(),
            '\'' => "&#39;".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

/// `GET /`: what this offhook serves.
pub async fn index(State(state): State<AppState>) -> Result<Html<String>, StatusCode> {
    let icons = state
        .directory
        .list_icons(&Scope::Operator)
        .await
        .map_err(|err| {
            tracing::error!(%err, "start page: cannot list icons");
            StatusCode::SERVICE_UNAVAILABLE
        })?;
    let items: String = icons
        .iter()
        .filter(|icon| icon.enabled)
        .map(|icon| {
            let id = escape(&icon.public_id);
            let widget = crate::widget::embed_snippet("", &id);
            format!(
                "<li><code>{id}</code> — {}<br>{widget}</li>\n",
                escape(&icon.label)
            )
        })
        .collect();
    Ok(Html(format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>offhook</title></head>\n\
         <body><h1>offhook</h1>\n<p>Click-to-call gateway. Click an icon and talk: the call goes to a telephone line.</p>\n<ul>\n{items}</ul>\n\
         <p>Health: <a href=\"/healthz\">/healthz</a>, <a href=\"/readyz\">/readyz</a></p>\n</body></html>\n"
    )))
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_markup() {
        assert_eq!(
            super::escape("<a href='x'>&</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&lt;/a&gt;"
        );
    }
}
