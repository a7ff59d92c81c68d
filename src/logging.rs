//! Log setup: tracing-subscriber to stderr, filtered by `RUST_LOG` (or the
//! configured filter), as text or one JSON object per line; colours only when
//! stderr is a terminal (a journal or a file gets plain text).

use tracing_subscriber::EnvFilter;

use crate::config::LogConfig;

/// webrtc-sdp warns about every SDP attribute it does not model (`a=tool`,
/// `a=minptime`, …), which real softphones send on every call: quiet unless asked.
const QUIET_BY_DEFAULT: &str = "webrtc_sdp=error";

/// Installs the global subscriber once.
pub(crate) fn init(config: &LogConfig) {
    let mut filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.filter));
    let asked = std::env::var("RUST_LOG").unwrap_or_else(|_| config.filter.clone());
    if !asked.contains("webrtc_sdp")
        && let Ok(quiet) = QUIET_BY_DEFAULT.parse()
    {
        filter = filter.add_directive(quiet);
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if config.json {
        builder.json().init();
    } else {
        builder.init();
    }
}
