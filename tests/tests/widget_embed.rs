//! The widget as site owners embed it, in real browsers: Debian's headless
//! Chromium and Firefox ESR (puppeteer-core; Firefox over WebDriver BiDi) open
//! pages of another origin that load `/widget.js` from `offhook demo` — the
//! snippet in `<head>`, a page that is only the snippet, an explicit container,
//! the snippet in the body — and see each icon's state before any click (closed
//! with its hours and next opening, switched off, unknown, not allowed on the
//! page), the refusal's reason through the JS API across origins, German and
//! French chosen by the page or `data-lang`, the keyboard flow with the focus on
//! hang-up and back, a phone viewport, and (Chromium) a whole call with its
//! quality line. axe-core finds no serious or critical violation in any state.
//! Screenshots: `target/tmp/widget-<browser>-<state>.png`.

use offhook_directory::testing::Backend;
use offhook_tests::browser::{node, npm_ci};
use offhook_tests::{Offhook, write_tone_wav};
use serde_json::Value;

fn assert_report(report: &Value) {
    let browser = report["browser"].as_str().unwrap_or("?");
    assert!(report["error"].is_null(), "{browser}: {}", report["error"]);
    let checks = report["checks"].as_object().expect("checks");
    let failed: Vec<String> = checks
        .iter()
        .filter(|(_, c)| c["ok"] != true)
        .map(|(name, c)| format!("{name}: {}", c["detail"]))
        .collect();
    assert!(failed.is_empty(), "{browser}: {failed:#?}");
    for state in [
        "ready",
        "closed",
        "disabled",
        "unknown",
        "not-allowed",
        "calling",
        "failed",
    ] {
        let violations = &report["axe"][state];
        assert_eq!(
            violations.as_array().map(Vec::len),
            Some(0),
            "{browser}, {state}: axe {violations}"
        );
    }
    for shot in report["screenshots"].as_array().expect("screenshots") {
        let path = shot.as_str().unwrap();
        assert!(std::fs::metadata(path).unwrap().len() > 5_000, "{path}");
    }
}

#[tokio::test]
async fn widget_embeds_anywhere_says_why_and_is_accessible_in_chromium_and_firefox() {
    npm_ci();
    let offhook = Offhook::new(Backend::Sqlite).await;
    let demo = offhook.demo(&[]).await;
    let made = offhook
        .run(&["directory", "token", "create", "widget-test"])
        .await;
    assert!(made.status.success());
    let token = String::from_utf8(made.stdout).unwrap().trim().to_owned();
    let shots = env!("CARGO_TARGET_TMPDIR");
    let wav = std::path::Path::new(shots).join("widget-tone.wav");
    write_tone_wav(&wav, 1000.0, 60).unwrap();
    let base = format!("http://{}/", demo.web);

    let chromium = node(
        "widget.mjs",
        &[&base, &token, "chromium", shots, wav.to_str().unwrap()],
    )
    .await;
    assert_report(&chromium);
    for state in ["in-call", "ended"] {
        assert_eq!(
            chromium["axe"][state].as_array().map(Vec::len),
            Some(0),
            "{state}: {chromium}"
        );
    }
    assert!(chromium["checks"]["in-call-quality"]["ok"] == true, "{chromium}");

    let firefox = node("widget.mjs", &[&base, &token, "firefox", shots, ""]).await;
    assert_report(&firefox);
    eprintln!("widget screenshots: {shots}/widget-*.png");

    // The calls the widget placed are in the directory, ended.
    assert!(demo.running.stop().await.success());
    let cdrs = offhook.run(&["directory", "cdr", "list", "--json"]).await;
    let cdrs: Value = serde_json::from_slice(&cdrs.stdout).unwrap();
    let causes: Vec<&str> = cdrs
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["hangup_cause"].as_str())
        .collect();
    assert!(causes.contains(&"busy") && causes.contains(&"normal"), "{cdrs}");
    offhook.db.finish().await;
}
