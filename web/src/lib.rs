//! offhook's HTTP side (axum): the start page with the call icons, the embeddable
//! widget (`/widget.js`), the click API that hands out call tokens, health
//! (`/healthz`, `/readyz`), metrics, the admin REST API with its OpenAPI document
//! and the admin UI (`/admin`), and the delivery of billing webhooks
//! ([`webhook_delivery`]). The router is built by [`router`] so that tests call it
//! with `oneshot` and processes serve it with [`serve`].

mod admin;
mod admin_ui;
mod click;
pub mod client_addr;
pub mod ice;
mod link_profile;
mod metrics;
mod pages;
pub mod relay_health;
pub mod webhook_delivery;
mod widget;

pub use click::{CallGrantResponse, TOKEN_LIFETIME_MS};
pub use client_addr::TrustedProxies;
pub use ice::{IceConfig, IceServer, IceServers};
pub use link_profile::LinkProfile;
pub use webhook_delivery::WebhookConfig;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use offhook_directory::Directory;
use offhook_directory::limits::Limiter;
use tokio::net::TcpListener;
use tower::limit::ConcurrencyLimitLayer;
use tower_http::timeout::TimeoutLayer;

/// Public requests (pages, widget, click API) served at once; more wait.
const PUBLIC_CONCURRENCY: usize = 256;
/// A public request that takes longer is answered 408.
const PUBLIC_TIMEOUT: Duration = Duration::from_secs(10);

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The SQL directory.
    pub directory: Directory,
    /// Key of the call tokens (shared with signaling through the directory).
    pub call_token_secret: Arc<Vec<u8>>,
    /// The SIP WebSocket URL browsers call over.
    pub sip_ws_url: String,
    /// Per-minute limits of the click API.
    pub click_limiter: Arc<Mutex<Limiter>>,
    /// The tenant whose enabled icons the start page shows (`offhook demo`: the
    /// demo tenant); none shows no icon.
    pub start_page_tenant: Option<String>,
    /// Webhook settings (what URLs tenant admins may set).
    pub webhooks: WebhookConfig,
    /// STUN/TURN servers handed to the widget with each grant.
    pub ice: Arc<IceServers>,
    /// Reverse proxies whose `X-Forwarded-For`/`Forwarded` names the visitor.
    pub trusted_proxies: Arc<TrustedProxies>,
    /// The media profile the widget asks for.
    pub link_profile: LinkProfile,
}

impl AppState {
    /// State for a web process whose browsers call over `sip_ws_url`.
    pub async fn new(directory: Directory, sip_ws_url: String) -> offhook_directory::Result<Self> {
        let secret = directory
            .shared_secret(offhook_directory::call_tokens::SECRET_NAME)
            .await?;
        Ok(Self {
            directory,
            call_token_secret: Arc::new(secret),
            sip_ws_url,
            click_limiter: Arc::default(),
            start_page_tenant: None,
            webhooks: WebhookConfig::default(),
            ice: Arc::default(),
            trusted_proxies: Arc::default(),
            link_profile: LinkProfile::default(),
        })
    }

    /// Shows `tenant`'s enabled icons on the start page.
    pub fn with_start_page_tenant(mut self, tenant: Option<String>) -> Self {
        self.start_page_tenant = tenant;
        self
    }

    /// Hands browsers these STUN/TURN servers.
    pub fn with_ice(mut self, ice: &IceConfig) -> Self {
        self.ice = Arc::new(IceServers::new(ice));
        self
    }

    /// Believes the forwarding headers of these reverse proxies only.
    pub fn with_trusted_proxies(mut self, proxies: TrustedProxies) -> Self {
        self.trusted_proxies = Arc::new(proxies);
        self
    }

    /// Has the widget ask for this media profile.
    pub fn with_link_profile(mut self, profile: LinkProfile) -> Self {
        self.link_profile = profile;
        self
    }

    /// Uses these webhook settings.
    pub fn with_webhooks(mut self, webhooks: WebhookConfig) -> Self {
        self.webhooks = webhooks;
        self
    }
}

/// All routes of the web process.
pub fn router(state: AppState) -> Router {
    let (admin, openapi) = admin::router(&state);
    let openapi = Arc::new(openapi);
    let public = Router::new()
        .route("/admin", get(admin_ui::page))
        .route("/admin/admin.js", get(admin_ui::script))
        .route("/", get(pages::index))
        .route("/widget.js", get(widget::script))
        .route("/api/v1/icons/{public_id}", get(click::icon_info))
        .route(
            "/api/v1/icons/{public_id}/calls",
            post(click::create_call).options(click::preflight),
        )
        .layer(ConcurrencyLimitLayer::new(PUBLIC_CONCURRENCY))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            PUBLIC_TIMEOUT,
        ));
    Router::new()
        .merge(admin)
        .merge(public)
        .route(
            "/api/v1/openapi.json",
            get(move || {
                let doc = Arc::clone(&openapi);
                async move { axum::Json(doc.as_ref().clone()) }
            }),
        )
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics::metrics))
        .with_state(state)
}

/// Serves the router on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}

/// Liveness: the process answers.
async fn healthz() -> &'static str {
    "ok\n"
}

/// Readiness: the directory database answers and at least one line that a
/// relay registered works (idle, dialing or in a call; otherwise no call
/// could be placed), like the relay's own `/readyz`.
async fn readyz(State(state): State<AppState>) -> (StatusCode, &'static str) {
    let now = chrono::Utc::now().timestamp_millis();
    match state.directory.working_lines(now).await {
        Ok(0) => (StatusCode::SERVICE_UNAVAILABLE, "no registered line works\n"),
        Ok(_) => (StatusCode::OK, "ready\n"),
        Err(err) => {
            tracing::warn!(%err, "readiness: directory unreachable");
            (StatusCode::SERVICE_UNAVAILABLE, "directory unreachable\n")
        }
    }
}
