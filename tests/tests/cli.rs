//! The real `offhook` binary: directory administration from the shell and
//! `offhook demo`, on SQLite and PostgreSQL.

use offhook_directory::testing::backends;
use offhook_tests::{Offhook, http_get, wait_for_metric};
use serde_json::Value;

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

async fn icons_json(offhook: &Offhook) -> Vec<Value> {
    let out = offhook.run(&["directory", "icon", "list", "--json"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_str::<Value>(&stdout(&out))
        .expect("JSON")
        .as_array()
        .expect("a JSON array")
        .clone()
}

#[tokio::test]
async fn directory_commands_create_list_update_delete() {
    for backend in backends() {
        let offhook = Offhook::new(backend).await;
        let ok = |out: &std::process::Output| assert!(out.status.success(), "{backend:?}: {}", stderr(out));
        ok(&offhook
            .run(&[
                "directory",
                "tenant",
                "create",
                "acme",
                "--domain",
                "acme.example",
            ])
            .await);
        ok(&offhook
            .run(&[
                "directory",
                "account",
                "create",
                "--tenant",
                "acme",
                "alice",
                "--password",
                "s3cret-pass",
                "--number",
                "201",
            ])
            .await);
        ok(&offhook
            .run(&[
                "directory",
                "icon",
                "create",
                "--tenant",
                "acme",
                "--number",
                "+4930123456",
                "--public-id",
                "acme-sales",
                "--label",
                "Sales",
                "--origin",
                "https://acme.example",
                "--hours",
                "mon-fri 09:00-17:00",
                "--timezone",
                "Europe/Berlin",
            ])
            .await);
        ok(&offhook
            .run(&[
                "directory",
                "line",
                "create",
                "line-1",
                "--relay",
                "relay-a",
                "--device",
                "/dev/ttyACM0",
                "--kind",
                "modem",
            ])
            .await);

        let table = offhook.run(&["directory", "icon", "list"]).await;
        assert!(stdout(&table).contains("acme-sales") && stdout(&table).contains("+4930123456"));
        let icons = icons_json(&offhook).await;
        assert_eq!(icons.len(), 1);
        assert_eq!(icons[0]["allowed_origins"][0], "https://acme.example");
        assert_eq!(icons[0]["timezone"], "Europe/Berlin");

        ok(&offhook
            .run(&[
                "directory",
                "icon",
                "update",
                "acme-sales",
                "--number",
                "5550101",
                "--disable",
            ])
            .await);
        let icons = icons_json(&offhook).await;
        assert_eq!(
            (icons[0]["number"].as_str(), icons[0]["enabled"].as_bool()),
            (Some("5550101"), Some(false))
        );

        let accounts = offhook
            .run(&["directory", "account", "list", "--tenant", "acme", "--json"])
            .await;
        let accounts: Value = serde_json::from_str(&stdout(&accounts)).unwrap();
        assert_eq!(accounts[0]["username"], "alice");
        assert!(accounts[0].get("ha1_md5").is_none(), "credentials never printed");

        let lines = offhook.run(&["directory", "line", "list", "--json"]).await;
        assert!(stdout(&lines).contains("\"kind\": \"modem\""));
        let cdrs = offhook.run(&["directory", "cdr", "list", "--json"]).await;
        assert_eq!(stdout(&cdrs).trim(), "[]");

        ok(&offhook.run(&["directory", "icon", "delete", "acme-sales"]).await);
        assert!(icons_json(&offhook).await.is_empty());
        // The tenant still owns an account: the delete names it and stops without --yes.
        let refused = offhook.run(&["directory", "tenant", "delete", "acme"]).await;
        assert_eq!(refused.status.code(), Some(2));
        assert!(
            stderr(&refused).contains("also deletes 1 account; add --yes"),
            "{}",
            stderr(&refused)
        );
        let deleted = offhook
            .run(&["directory", "tenant", "delete", "acme", "--yes"])
            .await;
        ok(&deleted);
        assert_eq!(stdout(&deleted).trim(), "deleted tenant acme and 1 account");
        let audit = offhook.run(&["directory", "audit", "list", "--json"]).await;
        let audit: Value = serde_json::from_str(&stdout(&audit)).unwrap();
        let actions: Vec<(&str, &str)> = audit
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["action"].as_str().unwrap(), e["object_kind"].as_str().unwrap()))
            .collect();
        assert_eq!(actions[0], ("delete", "tenant"), "newest first: {actions:?}");
        assert!(actions.contains(&("create", "icon")) && actions.contains(&("update", "icon")));
        assert!(audit[0]["actor"].as_str().unwrap().starts_with("cli:"));
        offhook.db.finish().await;
    }
}

#[tokio::test]
async fn bad_input_exits_2_with_one_line_and_changes_nothing() {
    for backend in backends() {
        let offhook = Offhook::new(backend).await;
        offhook
            .run(&[
                "directory",
                "tenant",
                "create",
                "acme",
                "--domain",
                "acme.example",
            ])
            .await;
        let cases: [&[&str]; 6] = [
            &[
                "directory",
                "icon",
                "create",
                "--tenant",
                "nobody",
                "--number",
                "5550100",
            ],
            &[
                "directory",
                "icon",
                "create",
                "--tenant",
                "acme",
                "--number",
                "555 0100",
            ],
            &[
                "directory",
                "icon",
                "create",
                "--tenant",
                "acme",
                "--number",
                "5550100;ATH",
            ],
            &[
                "directory",
                "icon",
                "create",
                "--tenant",
                "acme",
                "--number",
                "5550100",
                "--origin",
                "acme.example/x",
            ],
            &[
                "directory",
                "account",
                "create",
                "--tenant",
                "acme",
                "bob",
                "--password",
                "short",
            ],
            &[
                "directory",
                "line",
                "create",
                "l1",
                "--relay",
                "r",
                "--device",
                "/dev/x",
                "--kind",
                "fax",
            ],
        ];
        for args in cases {
            let out = offhook.run(args).await;
            assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
            let err = stderr(&out);
            assert_eq!(err.lines().count(), 1, "one line: {err}");
            assert!(err.starts_with("offhook: error: "), "{err}");
        }
        assert!(icons_json(&offhook).await.is_empty());
        let accounts = offhook.run(&["directory", "account", "list", "--json"]).await;
        assert_eq!(stdout(&accounts).trim(), "[]");
        let lines = offhook.run(&["directory", "line", "list", "--json"]).await;
        assert_eq!(stdout(&lines).trim(), "[]");
        offhook.db.finish().await;
    }
}

#[tokio::test]
async fn demo_seeds_and_serves_until_terminated() {
    for backend in backends() {
        let offhook = Offhook::new(backend).await;
        let mut demo = offhook.spawn(&["demo"], offhook_tests::ANY_PORTS);
        let address = demo.wait_for_web_address().await;
        let health = http_get(&address, "/healthz").await;
        assert!(
            health.starts_with("HTTP/1.0 200") && health.ends_with("ok\n"),
            "{health}"
        );
        let ready = http_get(&address, "/readyz").await;
        assert!(ready.starts_with("HTTP/1.0 200"), "{ready}");
        let page = http_get(&address, "/").await;
        assert!(page.contains("demo-echo"), "{page}");
        // The signaling node publishes its counters (every 5 s): the relay's REGISTERs.
        let registers = "offhook_sip_requests_received_total{node=\"node-1\",method=\"REGISTER\"}";
        wait_for_metric(&address, registers, 1).await;
        let metrics = http_get(&address, "/metrics").await;
        assert!(metrics.contains("offhook_registered_lines 1"), "{metrics}");

        // The shell sees what the demo seeded, while it runs.
        let icons = icons_json(&offhook).await;
        let echo = icons
            .iter()
            .find(|i| i["public_id"] == "demo-echo")
            .expect("the demo icon");
        assert_eq!(echo["number"], "5550100", "{backend:?}");

        assert!(demo.stop().await.success(), "clean exit on SIGTERM");
        // Seeding again is idempotent.
        let again = offhook.run(&["demo", "--seed-only"]).await;
        assert!(again.status.success(), "{}", stderr(&again));
        assert_eq!(icons_json(&offhook).await.len(), icons.len());
        offhook.db.finish().await;
    }
}

#[tokio::test]
async fn operator_commands_hang_up_reset_diagnose_and_manage_webhooks() {
    for backend in backends() {
        let offhook = Offhook::new(backend).await;
        let ok = |out: &std::process::Output| assert!(out.status.success(), "{backend:?}: {}", stderr(out));
        let seeded = offhook.run(&["demo", "--seed-only"]).await;
        ok(&seeded);
        ok(&offhook
            .run(&["directory", "icon", "update", "demo-echo", "--ring-timeout", "25"])
            .await);
        let icons = icons_json(&offhook).await;
        let echo = icons.iter().find(|i| i["public_id"] == "demo-echo").unwrap();
        assert_eq!(echo["ring_timeout_s"], 25);
        let refused = offhook
            .run(&["directory", "icon", "update", "demo-echo", "--ring-timeout", "2"])
            .await;
        assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));

        // A call in progress, as signaling writes it.
        let d = &offhook.db.directory;
        let tenant = d.tenant("demo").await.unwrap();
        let icon = d
            .icon(&offhook_directory::Scope::Operator, "demo-echo")
            .await
            .unwrap();
        let line = d.line("demo-line-1").await.unwrap();
        let cdr = d
            .start_cdr(offhook_directory::NewCdr {
                tenant_id: tenant.id,
                icon_id: Some(icon.id),
                account_id: None,
                call_id: "cli-call".into(),
                number: icon.number,
                line_id: Some(line.id),
                started_at: chrono::Utc::now().timestamp_millis(),
            })
            .await
            .unwrap();
        let calls = offhook.run(&["directory", "call", "list"]).await;
        assert!(
            stdout(&calls).contains(&cdr.id) && stdout(&calls).contains("demo-echo"),
            "{}",
            stdout(&calls)
        );
        let hangup = offhook.run(&["directory", "call", "hangup", &cdr.id]).await;
        ok(&hangup);
        assert!(
            stdout(&hangup).contains("waiting for the node that owns it"),
            "{}",
            stdout(&hangup)
        );
        let reset = offhook.run(&["directory", "line", "reset", "demo-line-1"]).await;
        ok(&reset);
        let actions = offhook
            .run(&["directory", "action", "list", "--open", "--json"])
            .await;
        let actions: Value = serde_json::from_str(&stdout(&actions)).unwrap();
        let kinds: Vec<&str> = actions
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["kind"].as_str().unwrap())
            .collect();
        assert_eq!(kinds.len(), 2);
        assert!(
            kinds.contains(&"hangup-call") && kinds.contains(&"reset-line"),
            "{kinds:?}"
        );
        let diagnose = offhook
            .run(&["directory", "line", "diagnose", "demo-line-1"])
            .await;
        ok(&diagnose);
        let text = stdout(&diagnose);
        assert!(text.contains(&format!("in call {}", cdr.id)), "{text}");
        assert!(
            text.contains("problem: relay demo-relay has no live registration"),
            "{text}"
        );
        assert!(text.contains("reset-line"), "{text}");

        // Webhooks: internal URLs refused unless the operator allows them.
        let internal = offhook
            .run(&[
                "directory",
                "webhook",
                "create",
                "--tenant",
                "demo",
                "--url",
                "http://127.0.0.1:9/hook",
            ])
            .await;
        assert_eq!(internal.status.code(), Some(2), "{}", stderr(&internal));
        assert!(
            stderr(&internal).contains("allow_internal_targets"),
            "{}",
            stderr(&internal)
        );
        let made = offhook
            .run(&[
                "directory",
                "webhook",
                "create",
                "--tenant",
                "demo",
                "--url",
                "https://billing.example/hook",
                "--event",
                "call.ended",
                "--event",
                "call.answered",
            ])
            .await;
        ok(&made);
        let secret = stdout(&made).trim().to_owned();
        assert!(secret.starts_with("whsec_"), "{secret}");
        let listed = offhook.run(&["directory", "webhook", "list", "--json"]).await;
        assert!(!stdout(&listed).contains(&secret), "the secret is shown once");
        let listed: Value = serde_json::from_str(&stdout(&listed)).unwrap();
        assert_eq!(
            listed[0]["events"],
            serde_json::json!(["call.answered", "call.ended"])
        );
        d.end_cdr(
            &cdr.id,
            chrono::Utc::now().timestamp_millis(),
            offhook_directory::HangupCause::Normal,
        )
        .await
        .unwrap();
        let deliveries = offhook.run(&["directory", "webhook", "deliveries"]).await;
        assert!(stdout(&deliveries).contains("call.ended") && stdout(&deliveries).contains("pending"));
        let records = offhook
            .run(&["directory", "cdr", "list", "--search", "cli-call"])
            .await;
        assert!(
            stdout(&records).contains("demo-echo") && stdout(&records).contains("normal"),
            "{}",
            stdout(&records)
        );
        offhook.db.finish().await;
    }
}

#[tokio::test]
async fn tenant_policy_show_and_set() {
    for backend in backends() {
        let offhook = Offhook::new(backend).await;
        let create = [
            "directory",
            "tenant",
            "create",
            "acme",
            "--domain",
            "acme.example",
        ];
        offhook.run(&create).await;
        let show_json = ["directory", "tenant", "policy", "show", "acme", "--json"];
        let policy = |out: &std::process::Output| -> Value { serde_json::from_str(&stdout(out)).unwrap() };
        let defaults = policy(&offhook.run(&show_json).await);
        assert_eq!(defaults["max_concurrent_calls"], 10, "{defaults}");
        assert_eq!(defaults["allow"], serde_json::json!([]));
        let shown = offhook
            .run(&["directory", "tenant", "policy", "show", "acme"])
            .await;
        assert!(stdout(&shown).contains("built-in deny:"), "{}", stdout(&shown));
        assert!(stdout(&shown).contains("+882"), "{}", stdout(&shown));

        let set = offhook
            .run(&[
                "directory",
                "tenant",
                "policy",
                "set",
                "acme",
                "--max-concurrent",
                "3",
                "--daily",
                "50",
                "--tenant-daily",
                "400",
                "--allow",
                "+44",
                "--allow",
                "0049",
                "--deny",
                "+1900",
                "--monthly",
                "900",
                "--minutes-daily",
                "120",
                "--tenant-minutes-monthly",
                "9000",
            ])
            .await;
        assert!(set.status.success(), "{}", stderr(&set));
        assert!(
            stdout(&set).starts_with("updated the policy of tenant acme"),
            "{}",
            stdout(&set)
        );
        let after = policy(&offhook.run(&show_json).await);
        assert_eq!(after["max_concurrent_calls"], 3);
        assert_eq!(after["calls_per_day"], 50);
        assert_eq!(after["tenant_calls_per_day"], 400);
        assert_eq!(after["calls_per_month"], 900);
        assert_eq!(after["minutes_per_day"], 120);
        assert_eq!(after["tenant_minutes_per_month"], 9000);
        assert_eq!(after["minutes_per_month"], 24000, "not given: unchanged");
        assert_eq!(after["allow"], serde_json::json!(["+44", "0049"]));
        assert_eq!(after["deny"], serde_json::json!(["+1900"]));
        // The policy is the one icons obey: an icon may now dial through 0049, not +1900.
        let icon = |number: &'static str| {
            [
                "directory",
                "icon",
                "create",
                "--tenant",
                "acme",
                "--number",
                number,
            ]
        };
        assert!(offhook.run(&icon("004930123456")).await.status.success());
        let refused = offhook.run(&icon("+19005550100")).await;
        assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
        assert!(stderr(&refused).contains("prefix +1900"), "{}", stderr(&refused));

        // Only what is given changes; --clear-deny empties a list.
        let cleared = offhook
            .run(&["directory", "tenant", "policy", "set", "acme", "--clear-deny"])
            .await;
        assert!(cleared.status.success(), "{}", stderr(&cleared));
        let after_clear = policy(&offhook.run(&show_json).await);
        assert_eq!(after_clear["deny"], serde_json::json!([]));
        assert_eq!(after_clear["allow"], after["allow"]);

        // Bad input: one line, exit 2, nothing changed.
        let bad: [&[&str]; 6] = [
            &[
                "directory",
                "tenant",
                "policy",
                "set",
                "acme",
                "--minutes-monthly",
                "0",
            ],
            &["directory", "tenant", "policy", "set", "acme", "--deny", "+19x"],
            &[
                "directory",
                "tenant",
                "policy",
                "set",
                "acme",
                "--max-concurrent",
                "0",
            ],
            &[
                "directory",
                "tenant",
                "policy",
                "set",
                "acme",
                "--daily",
                "5",
                "--deny",
                "",
            ],
            &["directory", "tenant", "policy", "set", "acme"],
            &["directory", "tenant", "policy", "show", "nobody"],
        ];
        for args in bad {
            let out = offhook.run(args).await;
            assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
            let err = stderr(&out);
            assert_eq!(err.lines().count(), 1, "{args:?}: one line: {err}");
            assert!(err.starts_with("offhook: error: "), "{err}");
        }
        assert_eq!(policy(&offhook.run(&show_json).await), after_clear);
        let audit = offhook.run(&["directory", "audit", "list", "--json"]).await;
        let audit: Value = serde_json::from_str(&stdout(&audit)).unwrap();
        let policy_changes = audit
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["object_kind"] == "destination policy")
            .count();
        assert_eq!(policy_changes, 2, "{audit}");
        offhook.db.finish().await;
    }
}
