//! Real-browser test support: the scripts in `tests/browser/` (playwright-core
//! and puppeteer-core driving Debian's headless Chromium and Firefox ESR, axe-core
//! scanning pages) installed from npm on first use, and run with their JSON
//! report read back.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_json::Value;

use crate::STEP_TIMEOUT;

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("browser")
}

/// Installs the packages of `tests/browser/package.json` (playwright-core,
/// puppeteer-core, axe-core, JsSIP, esbuild) from npm, locked, unless every one
/// is there already.
///
/// # Panics
/// When npm fails: the browser tests cannot run without them.
pub fn npm_ci() {
    let manifest =
        std::fs::read_to_string(browser_dir().join("package.json")).expect("tests/browser/package.json");
    let manifest: Value = serde_json::from_str(&manifest).expect("package.json is JSON");
    let installed = manifest["dependencies"].as_object().is_some_and(|deps| {
        deps.keys()
            .all(|name| browser_dir().join("node_modules").join(name).exists())
    });
    if installed {
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
    node_with(tokio::process::Command::new("node"), script, args).await
}

/// Runs a browser script inside `network`; its JSON report.
///
/// # Panics
/// As [`node`].
pub async fn node_in(network: &impl crate::netns::Namespace, script: &str, args: &[&str]) -> Value {
    node_with(network.command(std::path::Path::new("node")), script, args).await
}

async fn node_with(mut command: tokio::process::Command, script: &str, args: &[&str]) -> Value {
    let run = command
        .arg(browser_dir().join(script))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(STEP_TIMEOUT * 6, run)
        .await
        .expect("browser script in time")
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let errors = String::from_utf8_lossy(&out.stderr);
    eprint!("{errors}");
    serde_json::from_str(text.trim())
        .unwrap_or_else(|_| panic!("{script} ({}) report: {text}; its errors: {errors}", out.status))
}

/// The strings of the array `key` of a script's report (empty when absent).
pub fn strings<'a>(report: &'a Value, key: &str) -> Vec<&'a str> {
    report[key]
        .as_array()
        .map(|items| items.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}
