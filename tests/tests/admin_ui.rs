//! The admin UI in a real browser: `offhook demo` serves `/admin`; Debian's
//! headless Chromium signs in with an operator token made by
//! `offhook directory token create`, sees the live board of the demo line and the
//! chart, creates an icon with the form and sees it listed with its embed snippet,
//! and sees the API's reason for an invalid one. The screenshot is kept as a test
//! artifact in `target/tmp/admin-ui.png`.

use offhook_directory::testing::Backend;
use offhook_tests::browser::{node, npm_ci, strings};
use offhook_tests::{ANY_PORTS, Offhook};
use serde_json::Value;

#[tokio::test]
async fn admin_ui_signs_in_creates_an_icon_and_lists_it() {
    npm_ci();
    let offhook = Offhook::new(Backend::Sqlite).await;
    let mut demo = offhook.spawn(&["demo"], ANY_PORTS);
    let base = format!("http://{}/", demo.wait_for_web_address().await);
    let made = offhook
        .run(&["directory", "token", "create", "admin-ui-test"])
        .await;
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let token = String::from_utf8(made.stdout).unwrap().trim().to_owned();
    assert!(token.starts_with("ohk_"), "{token}");

    let screenshot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("admin-ui.png");
    let report = node("admin.mjs", &[&base, &token, screenshot.to_str().unwrap()]).await;
    assert!(report["error"].is_null(), "{report}");
    assert!(report["who"].as_str().unwrap().contains("operator"), "{report}");
    let lines = strings(&report, "boardLines");
    assert!(
        lines.contains(&"demo-line-1"),
        "the demo line on the board: {report}"
    );
    assert_eq!(report["chartBars"], 24, "{report}");
    let row = report["listedRow"].as_str().unwrap();
    assert!(
        row.contains("browser-made") && row.contains("+4930555123"),
        "{row}"
    );
    assert!(
        report["embed"]
            .as_str()
            .unwrap()
            .contains("data-icon=\"browser-made\""),
        "{report}"
    );
    assert!(
        report["invalidError"].as_str().unwrap().contains("number"),
        "{report}"
    );
    assert_eq!(
        report["brokenListed"], 0,
        "an invalid icon is not written: {report}"
    );
    assert!(
        std::fs::metadata(&screenshot).unwrap().len() > 10_000,
        "screenshot saved"
    );
    eprintln!("admin UI screenshot: {}", screenshot.display());

    // The icon is in the directory, owned by the demo tenant.
    let icons = offhook.run(&["directory", "icon", "list", "--json"]).await;
    let icons: Value = serde_json::from_slice(&icons.stdout).unwrap();
    assert!(
        icons
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["public_id"] == "browser-made")
    );
    assert!(demo.stop().await.success());
    offhook.db.finish().await;
}
