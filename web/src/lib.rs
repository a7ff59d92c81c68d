//! offhook's HTTP side (axum): the start page, health (`/healthz`, `/readyz`), and,
//! as later parts land, the widget, the click API and the admin API. The router is
//! built by [`router`] so that tests call it with `oneshot` and processes serve it
//! with [`serve`].

mod pages;

use std::future::Future;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use offhook_directory::Directory;
use tokio::net::TcpListener;

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The SQL directory.
    pub directory: Directory,
}

/// All routes of the web process.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(pages::index))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(state)
}

/// Serves the router on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

/// Liveness: the process answers.
async fn healthz() -> &'static str {
    "ok\n"
}

/// Readiness: the directory database answers.
async fn readyz(State(state): State<AppState>) -> (StatusCode, &'static str) {
    match state.directory.ping().await {
        Ok(()) => (StatusCode::OK, "ready\n"),
        Err(err) => {
            tracing::warn!(%err, "readiness: directory unreachable");
            (StatusCode::SERVICE_UNAVAILABLE, "directory unreachable\n")
        }
    }
}
