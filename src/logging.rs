//! Log setup: tracing-subscriber to stderr, filtered by `RUST_LOG` (or the
//! configured filter), as text or one JSON object per line.

use tracing_subscriber::EnvFilter;

use crate::config::LogConfig;

/// Installs the global subscriber once.
pub fn init(config: &LogConfig) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if config.json {
        builder.json().init();
    } else {
        builder.init();
    }
}
