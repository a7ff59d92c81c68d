//! Server-rendered pages: the start page says what this server is and shows the
//! enabled call icons of one tenant only, each as its widget, in the order they
//! were made (`offhook demo`: the demo tenant, the echo first, to hear yourself).
//! No other tenant's icons are ever listed: a deployment shows none unless the
//! operator names a tenant (`web.start_page_tenant`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Html;
use offhook_directory::{DirectoryError, Icon, Scope};

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

/// The start page's tenant's enabled icons (none when no tenant is named, or it
/// is gone).
async fn shown_icons(state: &AppState) -> offhook_directory::Result<Vec<Icon>> {
    let Some(name) = &state.start_page_tenant else {
        return Ok(Vec::new());
    };
    let tenant = match state.directory.tenant(name).await {
        Ok(tenant) => tenant,
        Err(DirectoryError::NotFound { .. }) => return Ok(Vec::new()),
        Err(err) => return Err(err),
    };
    let mut icons = state.directory.list_icons(&Scope::Tenant(tenant.id)).await?;
    icons.retain(|icon| icon.enabled);
    Ok(icons)
}

/// `GET /`: what this offhook serves.
pub(crate) async fn index(State(state): State<AppState>) -> Result<Html<String>, StatusCode> {
    let icons = shown_icons(&state).await.map_err(|err| {
        tracing::error!(%err, "start page: cannot list icons");
        StatusCode::SERVICE_UNAVAILABLE
    })?;
    let items: String = icons
        .iter()
        .map(|icon| {
            let id = escape(&icon.public_id);
            let widget = crate::widget::embed_snippet("", &id);
            format!(
                "<li><h2>{}</h2><p><code>{id}</code> dials {}</p>{widget}</li>\n",
                escape(&icon.label),
                escape(&icon.number)
            )
        })
        .collect();
    let list = if items.is_empty() {
        String::new()
    } else {
        format!("<ul class=\"icons\">\n{items}</ul>\n")
    };
    Ok(Html(format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>offhook</title>\
         <style>body {{ font: 16px/1.5 system-ui, sans-serif; color: #1f2328; margin: 0 auto; max-width: 46rem; \
         padding: 1rem; }} ul.icons {{ list-style: none; padding: 0; display: grid; gap: 1rem; }} \
         ul.icons li {{ border: 1px solid #d0d7de; border-radius: 12px; padding: 0.75rem 1rem; }} \
         h2 {{ font-size: 1.1rem; margin: 0 0 0.25rem; }} p {{ margin: 0 0 0.5rem; }} \
         a {{ color: #0550ae; }}</style></head>\n\
         <body><main><h1>offhook</h1>\n<p>Click-to-call gateway. Click an icon and talk: the call goes to a telephone line.</p>\n\
         {list}<p>Health: <a href=\"/healthz\">/healthz</a>, <a href=\"/readyz\">/readyz</a>. \
         Administration: <a href=\"/admin\">/admin</a>.</p>\n</main></body></html>\n"
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
