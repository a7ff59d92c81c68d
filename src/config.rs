//! Configuration: built-in defaults that need no file, overridden by an optional
//! TOML file (`--config` or `OFFHOOK_CONFIG`), overridden by `OFFHOOK_*` environment
//! variables (nested keys with `__`, e.g. `OFFHOOK_WEB__LISTEN=0.0.0.0:8080`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use figment::Figment;
use figment::providers::{Env, Format as _, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// Everything offhook can be told.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Config {
    /// `sqlite://path` (created on first start) or `postgres://…`.
    pub database_url: String,
    /// Logging.
    pub log: LogConfig,
    /// The web process.
    pub web: WebConfig,
    /// The signaling process.
    pub signaling: offhook_signaling::config::SignalingConfig,
    /// The media relay process.
    pub media: offhook_media::relay::RelayConfig,
}

/// Log output.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct LogConfig {
    /// One JSON object per line instead of text.
    pub json: bool,
    /// Filter used when `RUST_LOG` is not set.
    pub filter: String,
}

/// The web process.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct WebConfig {
    /// Address the HTTP server listens on.
    pub listen: SocketAddr,
    /// SIP WebSocket URL that browsers call over (the signaling WS listener).
    pub sip_ws_url: String,
    /// The tenant whose enabled icons the start page shows; none shows no icon
    /// (`offhook demo` shows the demo tenant's).
    #[serde(default)]
    pub start_page_tenant: Option<String>,
    /// Delivery of billing webhooks.
    #[serde(default)]
    pub webhooks: offhook_web::WebhookConfig,
    /// STUN/TURN servers for browsers (`[web.ice]`).
    #[serde(default)]
    pub ice: offhook_web::IceConfig,
    /// Reverse proxies (CIDRs) whose `X-Forwarded-For`/`Forwarded` is believed
    /// for the visitor's address; nobody else's header is.
    #[serde(default)]
    pub trusted_proxies: offhook_web::TrustedProxies,
    /// The media profile the widget asks for: auto, narrow or wide.
    #[serde(default)]
    pub link_profile: offhook_web::LinkProfile,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            database_url: default_database_url(),
            log: LogConfig {
                json: false,
                filter: "info".to_owned(),
            },
            web: WebConfig {
                listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
                sip_ws_url: "ws://127.0.0.1:5066".to_owned(),
                start_page_tenant: None,
                webhooks: offhook_web::WebhookConfig::default(),
                ice: offhook_web::IceConfig::default(),
                trusted_proxies: offhook_web::TrustedProxies::default(),
                link_profile: offhook_web::LinkProfile::default(),
            },
            signaling: Default::default(),
            media: Default::default(),
        }
    }
}

/// `$XDG_DATA_HOME/offhook/offhook.db`, else `~/.local/share/offhook/offhook.db`,
/// else `./offhook.db`.
fn default_database_url() -> String {
    let data_home = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".local/share")));
    let path = match data_home {
        Some(dir) => dir.join("offhook").join("offhook.db"),
        None => PathBuf::from("offhook.db"),
    };
    format!("sqlite://{}", path.display())
}

impl Config {
    /// Loads defaults, then the file (if any), then the environment.
    pub(crate) fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        let mut figment = Figment::from(Serialized::defaults(Self::default()));
        if let Some(file) = file {
            anyhow::ensure!(file.exists(), "config file {} does not exist", file.display());
            figment = figment.merge(Toml::file(file));
        }
        figment
            .merge(Env::prefixed("OFFHOOK_").split("__").ignore(&["config"]))
            .extract()
            .context("invalid configuration")
    }

    /// Makes sure the folder of a SQLite database file exists.
    pub(crate) fn prepare_storage(&self) -> anyhow::Result<()> {
        let Some(path) = self.database_url.strip_prefix("sqlite://") else {
            return Ok(());
        };
        let path = Path::new(path.split('?').next().unwrap_or(path));
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create the database folder {}", dir.display()))?;
        }
        Ok(())
    }
}
