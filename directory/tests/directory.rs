//! Directory behaviour on every backend (SQLite file, PostgreSQL schema), each test
//! on a fresh migrated database.

use offhook_directory::testing::{TestDb, backends};
use offhook_directory::*;

async fn two_tenants(d: &Directory) -> (Tenant, Tenant) {
    let a = d
        .create_tenant(NewTenant {
            name: "alpha".into(),
            sip_domain: "alpha.example".into(),
        })
        .await
        .unwrap();
    let b = d
        .create_tenant(NewTenant {
            name: "beta".into(),
            sip_domain: "beta.example".into(),
        })
        .await
        .unwrap();
    (a, b)
}

fn account(tenant: &str, username: &str, password: &str, kind: AccountKind) -> NewAccount {
    NewAccount {
        tenant: tenant.into(),
        username: username.into(),
        password: password.into(),
        display_name: String::new(),
        number: None,
        kind,
    }
}

/// [`three_lines`] with `relay-1` as an account of alpha.
async fn relay_with_three_lines(d: &Directory) {
    d.create_account(account("alpha", "relay-1", "relay-secret", AccountKind::Relay))
        .await
        .unwrap();
    three_lines(d).await;
}

/// Lines of relay `relay-1`: one of alpha, one of beta, one shared.
async fn three_lines(d: &Directory) {
    for (name, tenant) in [
        ("line-a", Some("alpha")),
        ("line-b", Some("beta")),
        ("shared", None),
    ] {
        d.create_line(NewLine {
            name: name.into(),
            relay: "relay-1".into(),
            tenant: tenant.map(Into::into),
            device_path: "emulated".into(),
            kind: LineKind::Emulated,
        })
        .await
        .unwrap();
    }
}

/// Tenant alpha (of two), its icon dialing 5550100, and the relay's three lines.
async fn alpha_icon_and_lines(d: &Directory) -> (Tenant, Icon) {
    let a = two_tenants(d).await.0;
    let icon = d
        .create_icon(NewIcon::new("alpha", "5550100", "A"))
        .await
        .unwrap();
    relay_with_three_lines(d).await;
    (a, icon)
}

fn cdr_for(tenant: &Tenant, icon: &Icon, call_id: &str) -> NewCdr {
    NewCdr {
        tenant_id: tenant.id.clone(),
        icon_id: Some(icon.id.clone()),
        account_id: None,
        call_id: call_id.into(),
        number: icon.number.clone(),
        line_id: None,
        started_at: 1_000,
    }
}

#[tokio::test]
async fn tenant_isolation() {
    for backend in backends() {
        let db = TestDb::new(backend).await;
        let d = &db.directory;
        let (a, b) = two_tenants(d).await;
        let icon_a = d
            .create_icon(NewIcon::new("alpha", "5550100", "A"))
            .await
            .unwrap();
        let icon_b = d.create_icon(NewIcon::new("beta", "5550101", "B")).await.unwrap();
        for (t, user) in [(&a, "alice"), (&b, "bob")] {
            d.create_account(account(&t.name, user, "correct horse", AccountKind::User))
                .await
                .unwrap();
        }
        three_lines(d).await;
        d.start_cdr(cdr_for(&a, &icon_a, "call-a")).await.unwrap();
        d.start_cdr(cdr_for(&b, &icon_b, "call-b")).await.unwrap();

        let scope_a = Scope::Tenant(a.id.clone());
        let icons = d.list_icons(&scope_a).await.unwrap();
        assert_eq!(
            icons.iter().map(|i| &i.id).collect::<Vec<_>>(),
            [&icon_a.id],
            "{backend:?}"
        );
        let accounts = d.list_accounts(&scope_a).await.unwrap();
        assert!(accounts.iter().all(|acc| acc.tenant_id == a.id) && accounts.len() == 1);
        let lines = d.list_lines(&scope_a).await.unwrap();
        let names: Vec<_> = lines.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["line-a", "shared"], "{backend:?}");
        let cdrs = d.list_cdrs(&scope_a, &CdrFilter::default()).await.unwrap();
        assert_eq!(cdrs.len(), 1);
        assert_eq!(cdrs[0].call_id, "call-a");
        let tenants = d.list_tenants(&scope_a).await.unwrap();
        assert_eq!(tenants, std::slice::from_ref(&a));

        // Another tenant's icon by key: not found, never its data; nor changed or deleted.
        assert!(matches!(
            d.icon(&scope_a, &icon_b.public_id).await,
            Err(DirectoryError::NotFound { .. })
        ));
        let update = IconUpdate {
            label: Some("hijacked".into()),
            ..Default::default()
        };
        assert!(d.update_icon(&scope_a, &icon_b.public_id, update).await.is_err());
        assert!(d.delete_icon(&scope_a, &icon_b.public_id).await.is_err());
        assert_eq!(d.icon(&Scope::Operator, &icon_b.public_id).await.unwrap(), icon_b);

        // The operator sees both.
        assert_eq!(d.list_icons(&Scope::Operator).await.unwrap().len(), 2);
        assert_eq!(
            d.list_cdrs(&Scope::Operator, &CdrFilter::default())
                .await
                .unwrap()
                .len(),
            2
        );
        db.finish().await;
    }
}

#[tokio::test]
async fn cdr_exists_from_call_start_and_is_completed() {
    for backend in backends() {
        let db = TestDb::new(backend).await;
        let d = &db.directory;
        let (a, _) = two_tenants(d).await;
        let icon = d
            .create_icon(NewIcon::new("alpha", "5550100", "Echo"))
            .await
            .unwrap();
        let cdr = d.start_cdr(cdr_for(&a, &icon, "c1")).await.unwrap();
        let listed = d
            .list_cdrs(&Scope::Operator, &CdrFilter::default())
            .await
            .unwrap();
        assert_eq!(
            listed,
            std::slice::from_ref(&cdr),
            "row exists as soon as the call starts"
        );
        assert_eq!(listed[0].ended_at, None);

        d.answer_cdr(&cdr.id, 3_000, AnswerSource::PolarityReversal)
            .await
            .unwrap();
        d.end_cdr(&cdr.id, 9_000, HangupCause::Normal).await.unwrap();
        let done = &d
            .list_cdrs(&Scope::Operator, &CdrFilter::default())
            .await
            .unwrap()[0];
        assert_eq!(done.answered_at, Some(3_000));
        assert_eq!(done.ended_at, Some(9_000));
        assert_eq!(done.answer_source, Some(AnswerSource::PolarityReversal));
        assert_eq!(done.hangup_cause, Some(HangupCause::Normal));

        let busy = d
            .start_cdr(NewCdr {
                started_at: 20_000,
                ..cdr_for(&a, &icon, "c2")
            })
            .await
            .unwrap();
        d.end_cdr(&busy.id, 21_000, HangupCause::Busy).await.unwrap();
        let filter = CdrFilter {
            cause: Some(HangupCause::Busy),
            ..Default::default()
        };
        let busy_only = d.list_cdrs(&Scope::Operator, &filter).await.unwrap();
        assert_eq!(busy_only.len(), 1);
        assert_eq!(busy_only[0].call_id, "c2");
        let filter = CdrFilter {
            since: Some(10_000),
            ..Default::default()
        };
        assert_eq!(d.list_cdrs(&Scope::Operator, &filter).await.unwrap().len(), 1);
        assert!(matches!(
            d.end_cdr("cdr_missing", 1, HangupCause::Normal).await,
            Err(DirectoryError::NotFound { .. })
        ));
        db.finish().await;
    }
}

#[tokio::test]
async fn invalid_input_is_refused_and_writes_nothing() {
    for backend in backends() {
        let db = TestDb::new(backend).await;
        let d = &db.directory;
        two_tenants(d).await;
        for bad in ["555-0100", "5550100;ATH0", "", "12a", "+"] {
            let err = d.create_icon(NewIcon::new("alpha", bad, "x")).await.unwrap_err();
            assert!(
                matches!(err, DirectoryError::Invalid { field: "number", .. }),
                "{bad}: {err}"
            );
        }
        let unknown = d
            .create_icon(NewIcon::new("gamma", "5550100", "x"))
            .await
            .unwrap_err();
        assert!(matches!(unknown, DirectoryError::NotFound { what: "tenant", .. }));
        assert!(d.list_icons(&Scope::Operator).await.unwrap().is_empty());

        let icon = d
            .create_icon(NewIcon::new("alpha", "5550100", "Echo"))
            .await
            .unwrap();
        // One bad field in an update: nothing of it is written.
        let update = IconUpdate {
            label: Some("new label".into()),
            allowed_origins: Some(vec!["not an origin".into()]),
            ..Default::default()
        };
        assert!(
            d.update_icon(&Scope::Operator, &icon.public_id, update)
                .await
                .is_err()
        );
        assert_eq!(d.icon(&Scope::Operator, &icon.public_id).await.unwrap(), icon);
        let hours = IconUpdate {
            opening_hours: Some("someday".into()),
            ..Default::default()
        };
        assert!(
            d.update_icon(&Scope::Operator, &icon.public_id, hours)
                .await
                .is_err()
        );

        let dup = d
            .create_tenant(NewTenant {
                name: "alpha".into(),
                sip_domain: "other.example".into(),
            })
            .await
            .unwrap_err();
        assert!(matches!(dup, DirectoryError::Conflict(_)), "{dup}");
        db.finish().await;
    }
}

#[tokio::test]
async fn accounts_keep_ha1_only_and_bind_the_realm() {
    for backend in backends() {
        let db = TestDb::new(backend).await;
        let d = &db.directory;
        let (a, _) = two_tenants(d).await;
        let account = d
            .create_account(NewAccount {
                tenant: "alpha".into(),
                username: "alice".into(),
                password: "correct horse".into(),
                display_name: "Alice".into(),
                number: Some("201".into()),
                kind: AccountKind::User,
            })
            .await
            .unwrap();
        let stored = d.account(&a.id, "alice").await.unwrap();
        assert_eq!(
            stored.ha1(DigestAlgorithm::Md5),
            DigestAlgorithm::Md5.ha1("alice", "alpha.example", "correct horse")
        );
        assert_eq!(stored.ha1_sha256.len(), 64);
        assert!(!serde_json::to_string(&stored).unwrap().contains(&stored.ha1_md5));
        assert_eq!(d.account_by_number(&a.id, "201").await.unwrap().id, account.id);
        // The realm is bound into HA1, so the domain cannot change under accounts.
        let change = TenantUpdate {
            sip_domain: Some("new.example".into()),
        };
        assert!(matches!(
            d.update_tenant("alpha", change).await,
            Err(DirectoryError::Conflict(_))
        ));
        let short = AccountUpdate {
            password: Some("short".into()),
            ..Default::default()
        };
        assert!(d.update_account("alpha", "alice", short).await.is_err());
        d.delete_tenant("alpha").await.unwrap();
        assert!(
            d.list_accounts(&Scope::Operator).await.unwrap().is_empty(),
            "cascade"
        );
        db.finish().await;
    }
}

fn binding(tenant: &Tenant, aor: &str, contact_user: &str, expires_at: i64) -> Registration {
    Registration {
        id: String::new(),
        tenant_id: tenant.id.clone(),
        aor: aor.into(),
        contact: format!("sip:{contact_user}@127.0.0.1:5070"),
        contact_user: contact_user.into(),
        instance: String::new(),
        transport: "udp".into(),
        source: "127.0.0.1:5070".into(),
        node: "node-1".into(),
        connection: String::new(),
        call_id: "reg-call".into(),
        cseq: 1,
        expires_at,
        updated_at: 0,
    }
}

#[tokio::test]
async fn registrations_and_line_claims() {
    for backend in backends() {
        let db = TestDb::new(backend).await;
        let d = &db.directory;
        let (a, b) = two_tenants(d).await;
        // The ISP's relay registers with a relay account; its lines are contacts.
        relay_with_three_lines(d).await;
        assert!(
            d.free_lines(&a.id, 100).await.unwrap().is_empty(),
            "nothing registered yet"
        );
        for line in ["line-a", "line-b", "shared"] {
            d.upsert_registration(binding(&a, "relay-1", line, 10_000))
                .await
                .unwrap();
        }
        // Refreshing a binding replaces it.
        d.upsert_registration(binding(&a, "relay-1", "shared", 20_000))
            .await
            .unwrap();
        assert_eq!(d.registrations(&a.id, "relay-1", 100).await.unwrap().len(), 3);

        let free: Vec<_> = d.free_lines(&a.id, 100).await.unwrap();
        let names: Vec<_> = free.iter().map(|f| f.line.name.as_str()).collect();
        assert_eq!(names, ["line-a", "shared"], "own lines first, never beta's");
        assert_eq!(free[1].registration.expires_at, 20_000);
        let free_b: Vec<_> = d.free_lines(&b.id, 100).await.unwrap();
        assert_eq!(
            free_b.iter().map(|f| f.line.name.as_str()).collect::<Vec<_>>(),
            ["line-b", "shared"]
        );

        // Only one claim wins.
        let line_a = &free[0].line.id;
        assert!(d.claim_line(line_a).await.unwrap());
        assert!(!d.claim_line(line_a).await.unwrap());
        assert_eq!(d.free_lines(&a.id, 100).await.unwrap().len(), 1);
        d.set_line_state(line_a, LineState::Idle).await.unwrap();

        // Expiry.
        assert_eq!(d.free_lines(&a.id, 15_000).await.unwrap().len(), 1);
        assert_eq!(d.purge_registrations(15_000).await.unwrap(), 2);
        d.remove_registration(&a.id, "relay-1", None).await.unwrap();
        assert!(d.registrations(&a.id, "relay-1", 0).await.unwrap().is_empty());
        db.finish().await;
    }
}

#[tokio::test]
async fn call_tokens_share_one_secret_and_work_once() {
    use offhook_directory::call_tokens::{TokenError, sign, verify};
    for backend in backends() {
        let db = TestDb::new(backend).await;
        let d = &db.directory;
        let secret = d.shared_secret("call-token").await.unwrap();
        assert_eq!(secret.len(), 32);
        assert_eq!(
            d.shared_secret("call-token").await.unwrap(),
            secret,
            "stable across calls and nodes"
        );
        let far_future = i64::MAX / 2;
        let grant = verify(&secret, &sign(&secret, "demo-echo", far_future), 0).unwrap();
        assert_eq!(d.spend_call_token(&grant).await.unwrap(), Ok(()));
        assert_eq!(d.spend_call_token(&grant).await.unwrap(), Err(TokenError::Used));
        db.finish().await;
    }
}

#[tokio::test]
async fn call_writer_batches_cdrs_and_claims_lines_in_queue_order() {
    for backend in backends() {
        let db = TestDb::new(backend).await;
        let d = &db.directory;
        let (a, icon) = alpha_icon_and_lines(d).await;
        d.upsert_registration(binding(&a, "relay-1", "line-a", i64::MAX / 2))
            .await
            .unwrap();
        let writer = d.call_writer("test-owner");
        // 500 calls queued at once: one batch or a few, every row complete.
        let mut ended = Vec::new();
        for n in 0..500 {
            let cdr = cdr_for(&a, &icon, &format!("c{n}")).into_cdr().unwrap();
            writer.start_cdr(cdr.clone());
            writer.answer_cdr(&cdr.id, 2_000, AnswerSource::Sip);
            ended.push(cdr.id);
        }
        assert!(
            NewCdr {
                number: "55x".into(),
                ..cdr_for(&a, &icon, "bad")
            }
            .into_cdr()
            .is_err()
        );
        // Each end is queued when called; waiting for the last waits for all.
        let ends: Vec<_> = ended
            .iter()
            .map(|id| writer.end_cdr(id, 3_000, HangupCause::Normal))
            .collect();
        for end in ends {
            end.await;
        }
        let cdrs = d
            .list_cdrs(&Scope::Operator, &CdrFilter::default())
            .await
            .unwrap();
        assert_eq!(cdrs.len(), 500);
        assert!(cdrs.iter().all(|c| c.answered_at == Some(2_000)
            && c.answer_source == Some(AnswerSource::Sip)
            && c.hangup_cause == Some(HangupCause::Normal)));
        let batches = writer.stats().batches.load(std::sync::atomic::Ordering::Relaxed);
        assert!(batches < 50, "{batches} transactions for 1,000 changes");
        // The usage counters went with the rows: 500 calls of 1 s each.
        let usage = d.usage(&a.id, Some(&icon.id), None, 0, 9_000).await.unwrap();
        let counted = Used {
            calls: 500,
            billed_ms: 500_000,
        };
        assert_eq!((usage.tenant_day, usage.month), (counted, counted));

        // A claim queued after a release of the same line sees it idle.
        let line = d.line("line-a").await.unwrap().id;
        assert!(writer.claim_line(&line).await);
        assert!(!writer.claim_line(&line).await, "held");
        writer.set_line_state(&line, LineState::Idle);
        let again = writer.claim_line(&line);
        assert!(again.await, "released first, then claimed");
        let routable = d.routable_lines(0).await.unwrap();
        assert_eq!(routable.len(), 1);
        assert_eq!(routable[0].line.state, LineState::Dialing);
        assert_eq!(routable[0].relay, "relay-1");
        // Readiness counts it while it works, not once it is faulty.
        assert_eq!(d.working_lines(0).await.unwrap(), 1);
        d.set_line_state(&line, LineState::Fault).await.unwrap();
        assert_eq!(d.working_lines(0).await.unwrap(), 0);
        assert_eq!(d.registered_lines(0).await.unwrap(), 1);
        d.set_line_state(&line, LineState::Dialing).await.unwrap();

        // Closing writes what is queued.
        let cdr = cdr_for(&a, &icon, "last").into_cdr().unwrap();
        writer.start_cdr(cdr.clone());
        writer.set_cdr_line(&cdr.id, &line);
        writer.close().await;
        let last = d
            .list_cdrs(&Scope::Operator, &CdrFilter::default())
            .await
            .unwrap()
            .into_iter()
            .find(|c| c.call_id == "last")
            .unwrap();
        assert_eq!(last.line_id.as_deref(), Some(line.as_str()));
        db.finish().await;
    }
}

#[tokio::test]
async fn what_a_lost_owner_held_is_ended_and_released_once() {
    use std::time::Duration;
    const LEASE: Duration = Duration::from_secs(20);
    for backend in backends() {
        let db = TestDb::new(backend).await;
        let d = &db.directory;
        let (a, icon) = alpha_icon_and_lines(d).await;
        let (line_a, line_b) = (
            d.line("line-a").await.unwrap().id,
            d.line("line-b").await.unwrap().id,
        );

        // Node 1 answers a call on line-a and rings on line-b, refreshes its
        // lease at 6 s, then dies.
        let one = d.start_owner("node-1", 1_000, LEASE).await.unwrap();
        let writer = d.call_writer(&one);
        let talking = cdr_for(&a, &icon, "talking").into_cdr().unwrap();
        let ringing = cdr_for(&a, &icon, "ringing").into_cdr().unwrap();
        for (cdr, line) in [(&talking, &line_a), (&ringing, &line_b)] {
            writer.start_cdr(cdr.clone());
            assert!(writer.claim_line(line).await);
            writer.set_cdr_line(&cdr.id, line);
        }
        writer.set_line_state(&line_a, LineState::InCall);
        writer.answer_cdr(&talking.id, 4_000, AnswerSource::Sip);
        writer.flush().await;
        assert!(d.refresh_owner(&one, "node-1", 6_000, LEASE).await.unwrap());
        // Both calls count; the talking one is billed up to now while it runs.
        let usage_at = |now| d.usage(&a.id, Some(&icon.id), None, 0, now);
        let running = Used {
            calls: 2,
            billed_ms: 5_000,
        };
        assert_eq!(usage_at(9_000).await.unwrap().day, running);

        // Node 2 cannot release a line node 1 holds, and finds nothing to reap
        // while node 1's lease holds.
        let two = d.start_owner("node-2", 7_000, LEASE).await.unwrap();
        let other = d.call_writer(&two);
        other.set_line_state(&line_a, LineState::Idle);
        other.flush().await;
        assert_eq!(d.line(&line_a).await.unwrap().state, LineState::InCall);
        assert!(d.reap_owners(&two, "node-2", 25_000).await.unwrap().is_empty());

        // Once it ran out, node 2 reaps: both calls end node-lost, the talking
        // one billed up to node 1's last sign of life, and both lines are free.
        let reaped = d.reap_owners(&two, "node-2", 26_001).await.unwrap();
        assert_eq!(reaped.owners, std::slice::from_ref(&one));
        let mut cdrs = reaped.cdrs.clone();
        cdrs.sort();
        let mut expected = vec![talking.id.clone(), ringing.id.clone()];
        expected.sort();
        assert_eq!(cdrs, expected);
        let mut lines = reaped.lines.clone();
        lines.sort();
        let mut both = vec![line_a.clone(), line_b.clone()];
        both.sort();
        assert_eq!(lines, both);
        let rows = d
            .list_cdrs(&Scope::Operator, &CdrFilter::default())
            .await
            .unwrap();
        for row in &rows {
            assert_eq!(row.hangup_cause, Some(HangupCause::NodeLost), "{}", row.call_id);
        }
        let billed = rows.iter().find(|c| c.call_id == "talking").unwrap();
        assert_eq!((billed.answered_at, billed.ended_at), (Some(4_000), Some(6_000)));
        let reaped_use = Used {
            calls: 2,
            billed_ms: 2_000,
        };
        assert_eq!(usage_at(90_000).await.unwrap().tenant_month, reaped_use);
        let rang = rows.iter().find(|c| c.call_id == "ringing").unwrap();
        assert_eq!(rang.ended_at, Some(6_000));
        assert_eq!(d.line(&line_a).await.unwrap().state, LineState::Idle);
        assert_eq!(d.line(&line_b).await.unwrap().state, LineState::Idle);
        assert!(other.claim_line(&line_a).await, "node 2 can use the line now");

        // A second reaping finds nothing; node 1's writer, were it alive, learns
        // from its next refresh that it was reaped.
        assert!(d.reap_owners(&two, "node-2", 27_000).await.unwrap().is_empty());
        assert!(!d.refresh_owner(&one, "node-1", 27_000, LEASE).await.unwrap());

        // A restart of node 2 reaps its earlier life at once, lease or not.
        let again = d.start_owner("node-2", 28_000, LEASE).await.unwrap();
        let reaped = d.reap_owners(&again, "node-2", 28_000).await.unwrap();
        assert!(reaped.owners.contains(&two));
        assert_eq!(
            reaped.lines,
            std::slice::from_ref(&line_a),
            "the line node 2's first life claimed"
        );
        writer.close().await;
        other.close().await;
        db.finish().await;
    }
}

#[tokio::test]
async fn lines_and_calls_held_by_no_known_owner_are_reaped_too() {
    for backend in backends() {
        let db = TestDb::new(backend).await;
        let d = &db.directory;
        let (a, icon) = alpha_icon_and_lines(d).await;
        // As a version before owners left them: a line in call, a CDR open.
        let line = d.line("line-a").await.unwrap().id;
        d.set_line_state(&line, LineState::InCall).await.unwrap();
        let stranded = d.start_cdr(cdr_for(&a, &icon, "stranded")).await.unwrap();
        let me = d
            .start_owner("node-1", 50_000, std::time::Duration::from_secs(20))
            .await
            .unwrap();
        let reaped = d.reap_owners(&me, "node-1", 50_000).await.unwrap();
        assert_eq!(
            (reaped.cdrs.as_slice(), reaped.lines.as_slice()),
            ([stranded.id.clone()].as_slice(), [line.clone()].as_slice())
        );
        let row = d
            .list_cdrs(&Scope::Operator, &CdrFilter::default())
            .await
            .unwrap()
            .remove(0);
        assert_eq!(
            (row.ended_at, row.hangup_cause),
            (Some(1_000), Some(HangupCause::NodeLost))
        );
        assert_eq!(d.line(&line).await.unwrap().state, LineState::Idle);
        db.finish().await;
    }
}

#[tokio::test]
async fn icon_numbers_obey_the_tenant_destination_policy() {
    for backend in backends() {
        let db = TestDb::new(backend).await;
        let d = &db.directory;
        let (a, b) = two_tenants(d).await;
        assert_eq!(
            d.destination_policy(&a.id).await.unwrap(),
            DestinationPolicy::default()
        );
        // International premium and an international access code: refused by default.
        for number in ["+88212345678", "0044201234567"] {
            let err = d
                .create_icon(NewIcon::new("alpha", number, "Fraud"))
                .await
                .unwrap_err();
            let DirectoryError::Invalid { field, reason } = &err else {
                panic!("{number}: {err:?}");
            };
            assert_eq!(*field, "number");
            assert!(reason.contains("built-in rule"), "{reason}");
        }
        let icon = d
            .create_icon(NewIcon::new("alpha", "+4930123456", "Sales"))
            .await
            .unwrap();
        // Changing the number is checked too; nothing is written when refused.
        let to_premium = IconUpdate {
            number: Some("+49900123456".into()),
            ..IconUpdate::default()
        };
        assert!(matches!(
            d.update_icon(&Scope::Operator, &icon.id, to_premium).await,
            Err(DirectoryError::Invalid { field: "number", .. })
        ));
        assert_eq!(
            d.icon(&Scope::Operator, &icon.id).await.unwrap().number,
            "+4930123456"
        );
        // A tenant's own lists: beta denies Germany, alpha allows +882 1.
        let update = PolicyUpdate {
            deny: Some(vec!["+49".into()]),
            max_concurrent_calls: Some(3),
            ..PolicyUpdate::default()
        };
        let beta = d.update_destination_policy("beta", update).await.unwrap();
        assert_eq!(
            (beta.deny.clone(), beta.max_concurrent_calls),
            (vec!["+49".to_owned()], 3)
        );
        assert_eq!(d.destination_policy(&b.id).await.unwrap(), beta);
        assert!(matches!(
            d.create_icon(NewIcon::new("beta", "+4930123456", "Sales")).await,
            Err(DirectoryError::Invalid { field: "number", .. })
        ));
        let allow = PolicyUpdate {
            allow: Some(vec!["+8821".into()]),
            ..PolicyUpdate::default()
        };
        d.update_destination_policy("alpha", allow).await.unwrap();
        assert!(
            d.create_icon(NewIcon::new("alpha", "+88212345678", "Sat"))
                .await
                .is_ok()
        );
        assert!(
            d.create_icon(NewIcon::new("alpha", "+88312345678", "Net"))
                .await
                .is_err()
        );
        // Bad lists and caps are refused.
        for bad in [
            PolicyUpdate {
                deny: Some(vec!["+49x".into()]),
                ..PolicyUpdate::default()
            },
            PolicyUpdate {
                max_concurrent_calls: Some(0),
                ..PolicyUpdate::default()
            },
        ] {
            assert!(matches!(
                d.update_destination_policy("alpha", bad).await,
                Err(DirectoryError::Invalid { .. })
            ));
        }
        assert_eq!(
            d.destination_policy(&a.id).await.unwrap().allow,
            vec!["+8821".to_owned()]
        );
        // Use from the CDRs: calls started and billed (answered) time, the
        // tenant's and the icon's, on that UTC day and in its calendar month.
        let day = 20_789; // 2026-12-02; December 2026
        let start = |ms: i64, id: &str| NewCdr {
            started_at: day * DAY_MS + ms,
            ..cdr_for(&a, &icon, id)
        };
        let minute = 60_000;
        // (start, answered after, ended after): None never answered / still running.
        let calls: [(i64, Option<i64>, Option<i64>); 6] = [
            (0, Some(1_000), Some(1_000 + minute)),
            (1_000, Some(0), None),
            (DAY_MS - 1, None, Some(10)),
            (DAY_MS, Some(0), Some(minute / 2)),
            (-DAY_MS, Some(0), Some(5 * minute)),
            (-2 * DAY_MS, Some(0), Some(7 * minute)),
        ];
        for (n, (at, answered, ended)) in calls.into_iter().enumerate() {
            let cdr = d.start_cdr(start(at, &format!("use-{n}"))).await.unwrap();
            if let Some(after) = answered {
                d.answer_cdr(&cdr.id, day * DAY_MS + at + after, AnswerSource::Sip)
                    .await
                    .unwrap();
            }
            if let Some(after) = ended {
                let cause = offhook_directory::HangupCause::Normal;
                d.end_cdr(&cdr.id, day * DAY_MS + at + after, cause)
                    .await
                    .unwrap();
            }
        }
        // Now: two minutes into the call still running.
        let now = day * DAY_MS + 1_000 + 2 * minute;
        let used = |calls, billed_ms| Used { calls, billed_ms };
        let usage = d.usage(&a.id, Some(&icon.id), None, day, now).await.unwrap();
        assert_eq!(usage.tenant_day, used(3, 3 * minute));
        assert_eq!(usage.day, usage.tenant_day);
        assert_eq!(usage.tenant_month, used(5, 3 * minute + minute / 2 + 5 * minute));
        assert_eq!(usage.month, usage.tenant_month);
        let other = d.usage(&a.id, Some("icn_other"), None, day, now).await.unwrap();
        assert_eq!((other.tenant_day, other.day), (usage.tenant_day, Used::default()));
        assert_eq!(
            d.usage(&b.id, None, None, day, now).await.unwrap(),
            offhook_directory::Usage::default()
        );
        // 2026-11-30 is another month.
        let november = d.usage(&a.id, Some(&icon.id), None, day - 2, now).await.unwrap();
        assert_eq!(
            (november.day, november.month),
            (used(1, 7 * minute), used(1, 7 * minute))
        );
        // The caps are part of the policy: kept and validated like the daily ones.
        let caps = PolicyUpdate {
            calls_per_month: Some(5),
            minutes_per_day: Some(4),
            tenant_minutes_per_month: Some(100),
            ..PolicyUpdate::default()
        };
        let policy = d.update_destination_policy("alpha", caps).await.unwrap();
        assert_eq!(d.destination_policy(&a.id).await.unwrap(), policy);
        let reached = policy.admit(&usage).unwrap_err();
        assert_eq!(
            (reached.cap, reached.used, reached.limit),
            ("calls_per_month", 5, 5)
        );
        let policy = d
            .update_destination_policy(
                "alpha",
                PolicyUpdate {
                    calls_per_month: Some(6),
                    ..PolicyUpdate::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(
            policy.admit(&usage),
            Ok(minute),
            "a minute left of the icon's day"
        );
        for bad in [
            PolicyUpdate {
                minutes_per_month: Some(0),
                ..PolicyUpdate::default()
            },
            PolicyUpdate {
                tenant_calls_per_month: Some(10_000_001),
                ..PolicyUpdate::default()
            },
        ] {
            assert!(matches!(
                d.update_destination_policy("alpha", bad).await,
                Err(DirectoryError::Invalid { .. })
            ));
        }
        db.finish().await;
    }
}
