//! Real-browser test support: the scripts in `tests/browser/` (playwright-core
//! driving Debian's headless Chromium) installed from npm on first use, and run
//! with their JSON report read back.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_json::Value;

use crate::STEP_TIMEOUT;

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("browser")
}

/// Installs playwright-core and JsSIP from npm (locked) on first use.
///
/// # Panics
/// When npm fails: the browser tests cannot run without them.
pub fn npm_ci() {
    if browser_dir().join("node_modules/playwright-core").exists() {
        return;
    }
    let status = std::process::Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--prefix"])
        .arg(browser_dir())
        .status()
        .expect("npm is installed");
    assert!(status.success(), "npm ci in tests/browser");
}

/// Runs a browser script; its JSON report.
///
/// # Panics
/// When the script does not finish in time or prints no JSON report.
pub async fn node(script: &str, args: &[&str]) -> Value {
    let run = tokio::process::Command::new("node")
        .arg(browser_dir().join(script))
        .args(args)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(STEP_TIMEOUT * 3, run)
        .await
        .expect("browser script in time")
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim()).unwrap_or_else(|_| panic!("{script} report: {text}"))
}

/// The strings of the array `key` of a script's report (empty when absent).
pub fn strings<'a>(report: &'a Value, key: &str) -> Vec<&'a str> {
    report[key]
        .as_array()
        .map(|items| items.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}
