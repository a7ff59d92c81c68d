//! The admin UI in a real browser: `offhook demo` serves `/admin`; Debian's
//! headless Chromium signs in with an operator token made by
//! `offhook directory token create`, sees the live board with a real call in
//! progress (placed here through signaling to the echo) and asks for its hang-up
//! and for a reset of the line (open requests on the board), reads the line's
//! diagnostics, creates an icon with the form (and sees the API's reason for an
//! invalid one), searches and pages the call records, deletes a tenant after a
//! confirmation that names its icons and account, makes a webhook (secret shown
//! once) and reads the audit log. axe-core reports no serious or critical
//! violation on any view. Screenshots: `target/tmp/admin-<view>.png`.

use offhook_directory::testing::Backend;
use offhook_directory::{HangupCause, NewCdr, Scope};
use offhook_tests::Offhook;
use offhook_tests::browser::{node, npm_ci, strings};
use offhook_tests::ua::{TestUa, click};
use serde_json::Value;

#[tokio::test]
async fn admin_ui_runs_the_directory_calls_and_billing_hooks() {
    npm_ci();
    let offhook = Offhook::new(Backend::Sqlite).await;
    // The UI's requests stay open to be seen (carrying them out is
    // `whole_calls`' part), and the held call may be silent meanwhile.
    let demo = offhook
        .demo(&[
            ("OFFHOOK_SIGNALING__OPERATOR_POLL_MS", "0"),
            ("OFFHOOK_MEDIA__RTP_TIMEOUT_S", "600"),
        ])
        .await;
    let run = |args: &'static [&'static str]| offhook.run(args);
    for args in [
        &[
            "directory",
            "tenant",
            "create",
            "doomed",
            "--domain",
            "doomed.example",
        ][..],
        &[
            "directory",
            "icon",
            "create",
            "--tenant",
            "doomed",
            "--number",
            "5550100",
        ],
        &[
            "directory",
            "icon",
            "create",
            "--tenant",
            "doomed",
            "--number",
            "5550101",
        ],
        &[
            "directory",
            "account",
            "create",
            "--tenant",
            "doomed",
            "bob",
            "--password",
            "long enough secret",
        ],
    ] {
        let out = run(args).await;
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Sixty past calls to page through.
    let d = &offhook.db.directory;
    let tenant = d.tenant("demo").await.unwrap();
    let busy = d.icon(&Scope::Operator, "demo-busy").await.unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    for n in 0..60 {
        let cdr = d
            .start_cdr(NewCdr {
                tenant_id: tenant.id.clone(),
                icon_id: Some(busy.id.clone()),
                account_id: None,
                call_id: format!("past-{n}"),
                number: busy.number.clone(),
                line_id: None,
                started_at: now - 3_600_000 + n * 1000,
            })
            .await
            .unwrap();
        d.end_cdr(&cdr.id, now - 3_600_000 + n * 1000 + 4_000, HangupCause::Busy)
            .await
            .unwrap();
    }
    // A real call in progress: the echo, answered, held while the browser looks.
    let mut ua = TestUa::bind().await;
    let rtp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let grant = click(&demo.web, "demo-echo").await;
    let echo = ua.call(demo.sip_udp, &grant, rtp.local_addr().unwrap()).await;
    assert_eq!(echo.status, 200, "{echo:?}");

    let made = offhook
        .run(&["directory", "token", "create", "admin-ui-test"])
        .await;
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let token = String::from_utf8(made.stdout).unwrap().trim().to_owned();
    let shots = env!("CARGO_TARGET_TMPDIR");
    let base = format!("http://{}/", demo.web);
    let report = node("admin.mjs", &[&base, &token, shots]).await;
    assert_eq!(ua.hang_up(echo.session).await.status, 200);

    assert!(report["error"].is_null(), "{report}");
    for (view, violations) in report["axe"].as_object().unwrap() {
        assert_eq!(
            violations.as_array().map(Vec::len),
            Some(0),
            "axe on {view}: {violations}"
        );
    }
    assert_eq!(
        report["axe"].as_object().unwrap().len(),
        9,
        "every view scanned: {report}"
    );
    let text = |key: &str| report[key].as_str().unwrap_or_default().to_owned();
    assert!(text("who").contains("operator"), "{report}");
    assert!(
        strings(&report, "boardLines").contains(&"demo-line-1"),
        "{report}"
    );
    assert_eq!(report["chartBars"], 24);
    assert!(
        text("activeCall").contains("demo-echo (Call the echo)") && text("activeCall").contains("5550100"),
        "the call with its icon's names: {report}"
    );
    assert!(
        text("hangupNotice").contains("Hang-up of the call to 5550100 requested"),
        "{report}"
    );
    assert!(
        text("resetNotice").contains("Reset of line demo-line-1 requested"),
        "{report}"
    );
    let open = strings(&report, "openRequests").join("\n");
    assert!(
        open.contains("hangup-call") && open.contains("reset-line"),
        "{open}"
    );
    assert!(open.contains("waiting for the node that owns it"), "{open}");
    let diagnostics = text("diagnostics");
    assert!(
        diagnostics.contains("Relay demo-relay: up") && diagnostics.contains("Registered from"),
        "{diagnostics}"
    );
    assert!(diagnostics.contains("In call to 5550100"), "{diagnostics}");
    assert!(
        text("listedRow").contains("browser-made") && text("listedRow").contains("25"),
        "{report}"
    );
    assert!(
        text("createdNotice").contains("Created icon browser-made"),
        "{report}"
    );
    assert!(text("embed").contains("data-icon=\"browser-made\""), "{report}");
    assert!(text("invalidError").contains("number"), "{report}");
    assert_eq!(report["brokenListed"], 0, "an invalid icon is not written");
    for column in [
        "tenant",
        "icon",
        "duration",
        "billable",
        "answer by",
        "cause",
        "quality",
    ] {
        assert!(text("recordsHeader").contains(column), "{column}: {report}");
    }
    assert!(text("recordsPager").starts_with("1–50 of 6"), "{report}");
    let searched = strings(&report, "searchedRows");
    assert_eq!(searched.len(), 50, "a page of the 60 busy calls");
    assert!(
        searched[0].contains("demo (") || searched[0].contains("demo"),
        "{searched:?}"
    );
    assert!(
        searched
            .iter()
            .all(|r| r.contains("demo-busy") && r.contains("0 s")),
        "{searched:?}"
    );
    assert!(text("secondPage").starts_with("51–"), "{report}");
    let confirm = text("confirmText");
    assert!(
        confirm.contains("Delete tenant doomed?")
            && confirm.contains("2 icons")
            && confirm.contains("1 account"),
        "{confirm}"
    );
    assert_eq!(report["confirmFocus"], "Cancel", "the safe choice has the focus");
    assert_eq!(report["keptAfterCancel"], 1);
    assert!(
        text("deletedNotice").contains("Deleted tenant doomed and 1 account, 2 icons"),
        "{report}"
    );
    assert!(text("secret").starts_with("whsec_"), "{report}");
    assert!(!text("webhookRow").contains("whsec_"), "the secret is not listed");
    let audit = strings(&report, "audit").join("\n");
    for entry in [
        "admin-ui-testcreateiconbrowser-made",
        "admin-ui-testdeletetenantdoomed",
        "hangupcall",
        "resetline",
    ] {
        assert!(audit.replace(' ', "").contains(entry), "{entry} in {audit}");
    }
    assert!(strings(&report, "requests").len() >= 2, "{report}");
    eprintln!("admin UI screenshots: {shots}/admin-*.png");

    // The icon is in the directory, owned by the demo tenant; the tenant is gone.
    let icons = offhook.run(&["directory", "icon", "list", "--json"]).await;
    let icons: Value = serde_json::from_slice(&icons.stdout).unwrap();
    assert!(
        icons
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["public_id"] == "browser-made")
    );
    assert!(d.tenant("doomed").await.is_err());
    assert!(demo.running.stop().await.success());
    offhook.db.finish().await;
}
