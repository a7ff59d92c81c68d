//! What administration and billing add to the directory, on every backend:
//! call records with names, durations, search and paging; the webhook outbox
//! written with the CDR change and claimed under a lease; operator requests and
//! their life; the audit log's scoping; delete impact counts; line diagnostics.

use offhook_directory::testing::{TestDb, backends};
use offhook_directory::*;

async fn tenant(d: &Directory, name: &str) -> Tenant {
    d.create_tenant(NewTenant {
        name: name.into(),
        sip_domain: format!("{name}.example"),
    })
    .await
    .unwrap()
}

/// Tenants acme and other, and acme's icon dialing the echo number.
async fn acme_and_other_with_echo(d: &Directory) -> (Tenant, Tenant, Icon) {
    let (acme, other) = (tenant(d, "acme").await, tenant(d, "other").await);
    let icon = d
        .create_icon(NewIcon::new("acme", "5550100", "Echo"))
        .await
        .unwrap();
    (acme, other, icon)
}

fn call(tenant: &Tenant, icon: &Icon, call_id: &str, started_at: i64) -> NewCdr {
    NewCdr {
        tenant_id: tenant.id.clone(),
        icon_id: Some(icon.id.clone()),
        account_id: None,
        call_id: call_id.into(),
        number: icon.number.clone(),
        line_id: None,
        started_at,
    }
}

fn webhook(tenant: &str, events: &[WebhookEvent]) -> NewWebhook {
    NewWebhook {
        tenant: tenant.into(),
        url: "https://billing.example/offhook".into(),
        description: "billing".into(),
        events: events.to_vec(),
    }
}

#[tokio::test]
async fn call_records_have_names_times_search_and_pages() {
    for backend in backends() {
        let db = TestDb::new(backend).await;
        let d = &db.directory;
        let (acme, other) = (tenant(d, "acme").await, tenant(d, "other").await);
        let sales = d
            .create_icon(NewIcon {
                public_id: Some("acme-sales".into()),
                ..NewIcon::new("acme", "+4930123456", "Call sales")
            })
            .await
            .unwrap();
        let theirs = d
            .create_icon(NewIcon::new("other", "5550100", "Theirs"))
            .await
            .unwrap();
        for n in 0..25 {
            let cdr = d
                .start_cdr(call(&acme, &sales, &format!("acme-{n}"), 1_000 * n))
                .await
                .unwrap();
            d.answer_cdr(&cdr.id, 1_000 * n + 2_500, AnswerSource::RingbackStopped)
                .await
                .unwrap();
            d.end_cdr(&cdr.id, 1_000 * n + 63_001, HangupCause::Normal)
                .await
                .unwrap();
        }
        let busy = d
            .start_cdr(call(&acme, &sales, "acme-busy", 100_000))
            .await
            .unwrap();
        d.end_cdr(&busy.id, 104_000, HangupCause::Busy).await.unwrap();
        d.start_cdr(call(&other, &theirs, "other-1", 200_000))
            .await
            .unwrap();

        let scope = Scope::Tenant(acme.id.clone());
        let page = CdrFilter {
            limit: Some(10),
            offset: Some(10),
            ..Default::default()
        };
        let (records, total) = d.list_call_records(&scope, &page).await.unwrap();
        assert_eq!((records.len(), total), (10, 26), "{backend:?}");
        let first = &records[0];
        assert_eq!(first.tenant_name, "acme");
        assert_eq!(first.icon_public_id.as_deref(), Some("acme-sales"));
        assert_eq!(first.icon_label.as_deref(), Some("Call sales"));
        assert_eq!(first.duration_s, Some(64), "63.001 s rounds up");
        assert_eq!(first.billable_s, Some(61), "from the answer: 60.501 s");
        let (busy_only, _) = d
            .list_call_records(
                &scope,
                &CdrFilter {
                    search: Some("BUSY".into()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(busy_only.len(), 1);
        assert_eq!(busy_only[0].billable_s, Some(0), "never answered");
        assert_eq!(busy_only[0].duration_s, Some(4));
        for (search, found) in [
            ("call sales", 26),
            ("acme-sales", 26),
            ("+4930", 26),
            ("theirs", 0),
            ("50%", 0),
        ] {
            let filter = CdrFilter {
                search: Some(search.into()),
                ..Default::default()
            };
            assert_eq!(
                d.list_call_records(&scope, &filter).await.unwrap().1,
                found,
                "{search}"
            );
        }
        let (all, total) = d
            .list_call_records(&Scope::Operator, &CdrFilter::default())
            .await
            .unwrap();
        assert_eq!((all.len(), total), (27, 27));
        let open = all.iter().find(|r| r.cdr.call_id == "other-1").unwrap();
        assert_eq!((open.duration_s, open.billable_s), (None, None), "in progress");
        assert!(matches!(
            d.call_record(&scope, &open.cdr.id).await,
            Err(DirectoryError::NotFound { .. })
        ));
        // A deleted icon leaves its calls, unnamed.
        d.delete_icon(&Scope::Operator, "acme-sales").await.unwrap();
        let kept = d.call_record(&scope, &busy.id).await.unwrap();
        assert_eq!((kept.icon_public_id, kept.cdr.icon_id), (None, None));
        db.finish().await;
    }
}

#[tokio::test]
async fn quality_from_the_relays_rtcp_header() {
    let quality = CallQuality::parse_rtcp_header(
        "sent=3;received=2;fraction-lost=0.250;cumulative-lost=10;jitter-ms=12;rtt-ms=61",
    )
    .unwrap();
    assert_eq!(
        quality,
        CallQuality {
            loss_permille: Some(250),
            lost_packets: Some(10),
            jitter_ms: Some(12),
            rtt_ms: Some(61),
        }
    );
    let partial = CallQuality::parse_rtcp_header("jitter-ms=3; fraction-lost=7; rtt-ms=-1; x=y").unwrap();
    assert_eq!(
        (partial.jitter_ms, partial.loss_permille, partial.rtt_ms),
        (Some(3), None, None)
    );
    for junk in [
        "",
        ";;;",
        "jitter-ms=NaN",
        "rtt-ms=1e300",
        "=",
        "\u{0}=\u{0}",
        "fraction-lost=inf",
    ] {
        assert_eq!(CallQuality::parse_rtcp_header(junk), None, "{junk:?}");
    }
    for backend in backends() {
        let db = TestDb::new(backend).await;
        let d = &db.directory;
        let acme = tenant(d, "acme").await;
        let icon = d
            .create_icon(NewIcon::new("acme", "5550100", "Echo"))
            .await
            .unwrap();
        let writer = d.call_writer("test-owner");
        let cdr = {
            let cdr = (call(&acme, &icon, "q1", 1_000)).into_cdr().unwrap();
            writer.start_cdr(cdr.clone());
            cdr
        };
        writer.set_cdr_quality(&cdr.id, quality);
        writer.end_cdr(&cdr.id, 9_000, HangupCause::Normal).await;
        let record = d.call_record(&Scope::Operator, &cdr.id).await.unwrap();
        assert_eq!(record.cdr.quality, Some(quality), "{backend:?}");
        writer.close().await;
        db.finish().await;
    }
}

#[tokio::test]
async fn call_ends_fill_the_outbox_in_their_transaction_once() {
    for backend in backends() {
        let db = TestDb::new(backend).await;
        let d = &db.directory;
        let (acme, other, icon) = acme_and_other_with_echo(d).await;
        let theirs = d
            .create_icon(NewIcon::new("other", "5550100", "Echo"))
            .await
            .unwrap();
        let (ends, secret) = d
            .create_webhook(webhook("acme", &[WebhookEvent::CallEnded]), false)
            .await
            .unwrap();
        assert!(secret.starts_with("whsec_") && secret.len() > 40);
        let (all_events, _) = d
            .create_webhook(webhook("acme", &WebhookEvent::ALL), false)
            .await
            .unwrap();
        let (disabled, _) = d
            .create_webhook(webhook("acme", &WebhookEvent::ALL), false)
            .await
            .unwrap();
        d.update_webhook(
            &Scope::Operator,
            &disabled.id,
            WebhookUpdate {
                enabled: Some(false),
                ..Default::default()
            },
            false,
        )
        .await
        .unwrap();

        let writer = d.call_writer("test-owner");
        let mut ids = Vec::new();
        for n in 0..40 {
            let cdr = {
                let cdr = (call(&acme, &icon, &format!("c{n}"), 1_000 + n))
                    .into_cdr()
                    .unwrap();
                writer.start_cdr(cdr.clone());
                cdr
            };
            writer.answer_cdr(&cdr.id, 2_000 + n, AnswerSource::Sip);
            ids.push(cdr.id);
        }
        writer.start_cdr(call(&other, &theirs, "not-acme", 1_000).into_cdr().unwrap());
        let ended: Vec<_> = ids
            .iter()
            .map(|id| writer.end_cdr(id, 9_000, HangupCause::Normal))
            .collect();
        for end in ended {
            end.await;
        }
        let (deliveries, total) = d
            .list_deliveries(&Scope::Operator, &DeliveryFilter::default())
            .await
            .unwrap();
        assert_eq!(total, 40 + 40 * 3, "{backend:?}: one per webhook, call and event");
        assert!(
            deliveries
                .iter()
                .all(|x| x.tenant_id == acme.id && x.webhook_id != disabled.id)
        );
        let of_ends = DeliveryFilter {
            webhook_id: Some(ends.id.clone()),
            ..Default::default()
        };
        let (end_rows, _) = d.list_deliveries(&Scope::Operator, &of_ends).await.unwrap();
        assert!(end_rows.iter().all(|x| x.event == WebhookEvent::CallEnded
            && x.state == DeliveryState::Pending
            && x.next_attempt_at == 9_000
            && x.id == format!("{}.{}.call.ended", ends.id, x.cdr_id)));
        // Ending again (a retried batch, a second writer) adds nothing.
        d.end_cdr(&ids[0], 9_500, HangupCause::Normal).await.unwrap();
        assert_eq!(d.list_deliveries(&Scope::Operator, &of_ends).await.unwrap().1, 40);

        // Two nodes claim at once: every due row goes to one of them at most.
        let (a, b) = tokio::join!(
            d.claim_due_deliveries("node-a", 10_000, 70_000, 100),
            d.claim_due_deliveries("node-b", 10_000, 70_000, 100),
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        let rest = d
            .claim_due_deliveries("node-c", 10_000, 70_000, 1000)
            .await
            .unwrap();
        let mut claimed: Vec<&str> = a
            .iter()
            .chain(&b)
            .chain(&rest)
            .map(|x| x.delivery.id.as_str())
            .collect();
        claimed.sort_unstable();
        claimed.dedup();
        assert_eq!(claimed.len(), 160, "{backend:?}: every row claimed once");
        assert_eq!(a.len() + b.len() + rest.len(), 160, "none twice");
        assert!(
            d.claim_due_deliveries("node-c", 10_000, 70_000, 1000)
                .await
                .unwrap()
                .is_empty()
        );
        let (due, holder) = match a.first() {
            Some(due) => (due, "node-a"),
            None => (&b[0], "node-b"),
        };
        let stranger = if holder == "node-a" { "node-b" } else { "node-a" };
        assert_eq!(due.url, "https://billing.example/offhook");
        assert!(due.secret.starts_with("whsec_"));
        assert_eq!(due.record.cdr.id, due.delivery.cdr_id);
        assert_eq!(due.record.tenant_name, "acme");

        // Only the lease holder records; a failure is retried when told; expired leases are taken again.
        let failed = Attempt::Failed {
            status: Some(500),
            error: "HTTP 500".into(),
            retry_at: Some(20_000),
        };
        assert!(
            !d.record_delivery_attempt(stranger, &due.delivery.id, 11_000, &failed)
                .await
                .unwrap()
        );
        assert!(
            d.record_delivery_attempt(holder, &due.delivery.id, 11_000, &failed)
                .await
                .unwrap()
        );
        assert!(
            d.claim_due_deliveries("node-b", 19_999, 80_000, 1000)
                .await
                .unwrap()
                .is_empty()
        );
        let again = d
            .claim_due_deliveries("node-b", 20_000, 80_000, 1000)
            .await
            .unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(
            (again[0].delivery.attempts, again[0].delivery.last_status),
            (1, Some(500))
        );
        let after_lease = d
            .claim_due_deliveries("node-c", 80_001, 140_000, 1000)
            .await
            .unwrap();
        assert_eq!(after_lease.len(), 160, "every lease ran out");
        assert!(
            d.record_delivery_attempt(
                "node-c",
                &after_lease[0].delivery.id,
                80_002,
                &Attempt::Delivered { status: 204 }
            )
            .await
            .unwrap()
        );
        let gave_up = Attempt::Failed {
            status: None,
            error: "x".repeat(5_000),
            retry_at: None,
        };
        assert!(
            d.record_delivery_attempt("node-c", &after_lease[1].delivery.id, 80_003, &gave_up)
                .await
                .unwrap()
        );
        let (failed_rows, _) = d
            .list_deliveries(
                &Scope::Tenant(acme.id.clone()),
                &DeliveryFilter {
                    state: Some(DeliveryState::Failed),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(failed_rows.len(), 1);
        assert_eq!(failed_rows[0].last_error.len(), 300, "errors are kept short");
        let retried = d
            .retry_delivery(&Scope::Operator, &failed_rows[0].id, 90_000)
            .await
            .unwrap();
        assert_eq!(
            (retried.state, retried.next_attempt_at),
            (DeliveryState::Pending, 90_000)
        );
        assert!(matches!(
            d.retry_delivery(&Scope::Operator, &after_lease[0].delivery.id, 90_000)
                .await,
            Err(DirectoryError::Conflict(_))
        ));
        assert!(matches!(
            d.retry_delivery(&Scope::Tenant(other.id.clone()), &failed_rows[0].id, 90_000)
                .await,
            Err(DirectoryError::NotFound { .. })
        ));
        assert_eq!(
            d.prune_deliveries(i64::MAX).await.unwrap(),
            1,
            "the delivered one"
        );

        // The secret is never listed; deleting the webhook deletes its outbox rows.
        let listed = d.list_webhooks(&Scope::Tenant(acme.id.clone())).await.unwrap();
        assert_eq!(listed.len(), 3);
        assert_eq!(
            listed.iter().find(|w| w.id == all_events.id).unwrap().events,
            WebhookEvent::ALL
        );
        let of_all = DeliveryFilter {
            webhook_id: Some(all_events.id.clone()),
            ..Default::default()
        };
        let its_rows = d.list_deliveries(&Scope::Operator, &of_all).await.unwrap().1;
        let impact = d
            .webhook_delete_impact(&Scope::Operator, &all_events.id)
            .await
            .unwrap();
        assert_eq!(impact.removes[0].count, its_rows);
        d.delete_webhook(&Scope::Operator, &all_events.id).await.unwrap();
        assert_eq!(
            d.list_deliveries(&Scope::Operator, &DeliveryFilter::default())
                .await
                .unwrap()
                .1,
            159 - its_rows
        );
        writer.close().await;
        db.finish().await;
    }
}

#[tokio::test]
async fn webhooks_are_checked_and_bounded() {
    for backend in backends() {
        let db = TestDb::new(backend).await;
        let d = &db.directory;
        let acme = tenant(d, "acme").await;
        let other = tenant(d, "other").await;
        let internal = NewWebhook {
            url: "http://169.254.169.254/latest".into(),
            ..webhook("acme", &[WebhookEvent::CallEnded])
        };
        assert!(matches!(
            d.create_webhook(internal.clone(), false).await,
            Err(DirectoryError::Invalid { field: "url", .. })
        ));
        assert!(
            d.create_webhook(internal, true).await.is_ok(),
            "allowed by the operator"
        );
        assert!(matches!(
            d.create_webhook(webhook("acme", &[]), false).await,
            Err(DirectoryError::Invalid { field: "events", .. })
        ));
        for _ in 1..MAX_WEBHOOKS_PER_TENANT {
            d.create_webhook(webhook("acme", &[WebhookEvent::CallEnded]), false)
                .await
                .unwrap();
        }
        assert!(matches!(
            d.create_webhook(webhook("acme", &[WebhookEvent::CallEnded]), false)
                .await,
            Err(DirectoryError::Conflict(_))
        ));
        let mine = d.list_webhooks(&Scope::Tenant(acme.id.clone())).await.unwrap();
        let theirs = Scope::Tenant(other.id.clone());
        assert!(d.list_webhooks(&theirs).await.unwrap().is_empty());
        assert!(d.webhook(&theirs, &mine[0].id).await.is_err());
        assert!(d.rotate_webhook_secret(&theirs, &mine[0].id).await.is_err());
        let (_, first) = d
            .rotate_webhook_secret(&Scope::Operator, &mine[0].id)
            .await
            .unwrap();
        let (_, second) = d
            .rotate_webhook_secret(&Scope::Operator, &mine[0].id)
            .await
            .unwrap();
        assert_ne!(first, second);
        let update = WebhookUpdate {
            url: Some("http://localhost/hook".into()),
            ..Default::default()
        };
        assert!(
            d.update_webhook(&Scope::Operator, &mine[0].id, update, false)
                .await
                .is_err()
        );
        db.finish().await;
    }
}

#[tokio::test]
async fn operator_requests_are_claimed_completed_or_expire() {
    for backend in backends() {
        let db = TestDb::new(backend).await;
        let d = &db.directory;
        let (acme, other, icon) = acme_and_other_with_echo(d).await;
        d.create_line(NewLine {
            name: "line-1".into(),
            relay: "relay-1".into(),
            tenant: None,
            device_path: "emulated".into(),
            kind: LineKind::Emulated,
        })
        .await
        .unwrap();
        let live = d.start_cdr(call(&acme, &icon, "live", 1_000)).await.unwrap();
        let ended = d.start_cdr(call(&acme, &icon, "over", 1_000)).await.unwrap();
        d.end_cdr(&ended.id, 2_000, HangupCause::Normal).await.unwrap();
        let scope = Scope::Tenant(acme.id.clone());

        let hangup = d
            .request_hangup(&scope, &live.id, "ops", 10_000, 60_000)
            .await
            .unwrap();
        assert_eq!(
            (hangup.kind, hangup.result, hangup.expires_at),
            (ActionKind::HangupCall, None, 70_000)
        );
        assert!(hangup.target_label.contains("5550100"), "{}", hangup.target_label);
        let again = d
            .request_hangup(&scope, &live.id, "someone else", 11_000, 60_000)
            .await
            .unwrap();
        assert_eq!(again.id, hangup.id, "one open request per call");
        assert!(matches!(
            d.request_hangup(&scope, &ended.id, "ops", 10_000, 60_000).await,
            Err(DirectoryError::Conflict(_))
        ));
        assert!(matches!(
            d.request_hangup(&Scope::Tenant(other.id.clone()), &live.id, "x", 10_000, 60_000)
                .await,
            Err(DirectoryError::NotFound { .. })
        ));
        let reset = d
            .request_line_reset("line-1", "ops", 10_000, 60_000)
            .await
            .unwrap();
        assert_eq!(
            (reset.kind, reset.tenant_id.as_deref()),
            (ActionKind::ResetLine, None)
        );

        // The owner: sees it, claims it (another node cannot), completes it.
        let open = d.open_operator_actions(12_000).await.unwrap();
        assert_eq!(open.len(), 2, "the hang-up and the reset");
        assert!(open.iter().any(|(a, ended)| a.id == hangup.id && !ended));
        assert!(
            d.claim_operator_action(&hangup.id, "node-a", 12_000, 22_000)
                .await
                .unwrap()
        );
        assert!(
            !d.claim_operator_action(&hangup.id, "node-b", 12_000, 22_000)
                .await
                .unwrap()
        );
        assert!(
            d.open_operator_actions(12_000)
                .await
                .unwrap()
                .iter()
                .all(|(a, _)| a.kind == ActionKind::ResetLine),
            "the claimed hang-up is not offered again"
        );
        assert!(
            !d.complete_operator_action(&hangup.id, "node-b", ActionResult::Done, "", 13_000)
                .await
                .unwrap()
        );
        assert!(
            d.complete_operator_action(
                &hangup.id,
                "node-a",
                ActionResult::Done,
                "BYE sent both ways",
                13_000
            )
            .await
            .unwrap()
        );
        let done = d.operator_action(&scope, &hangup.id).await.unwrap();
        assert_eq!(
            (done.result, done.done_at, done.detail.as_str()),
            (Some(ActionResult::Done), Some(13_000), "BYE sent both ways")
        );
        assert!(
            d.operator_action(&Scope::Tenant(other.id.clone()), &hangup.id)
                .await
                .is_err()
        );
        // A new request for the same call can be made once the first is done.
        let second = d
            .request_hangup(&scope, &live.id, "ops", 14_000, 1_000)
            .await
            .unwrap();
        assert_ne!(second.id, hangup.id);
        // Nobody picks it up: it expires, with the reason.
        let (listed, total) = d
            .list_operator_actions(&scope, false, 10, 0, 15_000)
            .await
            .unwrap();
        assert_eq!(
            total, 2,
            "the tenant sees its calls' requests, not the shared line's"
        );
        let expired = listed.iter().find(|a| a.id == second.id).unwrap();
        assert_eq!(expired.result, Some(ActionResult::Expired));
        assert!(!expired.detail.is_empty());
        let (open, _) = d
            .list_operator_actions(&Scope::Operator, true, 10, 0, 15_000)
            .await
            .unwrap();
        assert_eq!(
            open.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(),
            [reset.id.as_str()]
        );
        db.finish().await;
    }
}

#[tokio::test]
async fn audit_log_is_scoped_to_the_objects_tenant() {
    for backend in backends() {
        let db = TestDb::new(backend).await;
        let d = &db.directory;
        let (acme, other) = (tenant(d, "acme").await, tenant(d, "other").await);
        let admin = Actor {
            name: "acme-admin".into(),
            token_id: Some("tok_1".into()),
            tenant_id: Some(acme.id.clone()),
        };
        let cli = Actor::command_line("root");
        for (actor, tenant_id, key, at) in [
            (&admin, Some(acme.id.clone()), "acme-sales", 1_000),
            (&cli, Some(other.id.clone()), "other-1", 2_000),
            (&cli, None, "line-1", 3_000),
        ] {
            d.record_audit(
                actor,
                AuditChange {
                    tenant_id,
                    action: AuditAction::Update,
                    object_kind: "icon",
                    object_key: key.into(),
                    changes: serde_json::json!({ "label": "New" }),
                },
                at,
            )
            .await
            .unwrap();
        }
        let (mine, total) = d
            .list_audit(&Scope::Tenant(acme.id.clone()), &AuditFilter::default())
            .await
            .unwrap();
        assert_eq!(total, 1);
        assert_eq!(
            (mine[0].actor.as_str(), mine[0].object_key.as_str()),
            ("acme-admin", "acme-sales")
        );
        assert_eq!(mine[0].changes["label"], "New");
        let (all, _) = d
            .list_audit(&Scope::Operator, &AuditFilter::default())
            .await
            .unwrap();
        assert_eq!(
            all.iter().map(|e| e.at).collect::<Vec<_>>(),
            [3_000, 2_000, 1_000],
            "newest first"
        );
        assert_eq!(all[0].actor, "cli:root");
        let since = AuditFilter {
            since: Some(2_000),
            limit: Some(1),
            ..Default::default()
        };
        let (page, total) = d.list_audit(&Scope::Operator, &since).await.unwrap();
        assert_eq!((page.len(), total), (1, 2));
        db.finish().await;
    }
}

#[tokio::test]
async fn delete_impact_counts_what_goes_and_line_diagnostics_say_why() {
    for backend in backends() {
        let db = TestDb::new(backend).await;
        let d = &db.directory;
        let acme = tenant(d, "acme").await;
        let icon = d.create_icon(NewIcon::new("acme", "5550100", "A")).await.unwrap();
        d.create_icon(NewIcon::new("acme", "5550101", "B")).await.unwrap();
        d.create_account(NewAccount {
            tenant: "acme".into(),
            username: "relay-1".into(),
            password: "relay-secret".into(),
            display_name: String::new(),
            number: None,
            kind: AccountKind::Relay,
        })
        .await
        .unwrap();
        let line = d
            .create_line(NewLine {
                name: "line-1".into(),
                relay: "relay-1".into(),
                tenant: Some("acme".into()),
                device_path: "emulated".into(),
                kind: LineKind::Emulated,
            })
            .await
            .unwrap();
        d.create_api_token(NewApiToken {
            name: "acme admin".into(),
            tenant: Some("acme".into()),
        })
        .await
        .unwrap();
        let cdr = d
            .start_cdr(NewCdr {
                line_id: Some(line.id.clone()),
                ..call(&acme, &icon, "c1", 1_000)
            })
            .await
            .unwrap();
        let impact = d.tenant_delete_impact(&Scope::Operator, "acme").await.unwrap();
        let counts: Vec<(&str, i64)> = impact
            .removes
            .iter()
            .map(|x| (x.what.as_str(), x.count))
            .collect();
        assert_eq!(
            counts,
            [
                ("account", 1),
                ("icons", 2),
                ("line", 1),
                ("API token", 1),
                ("call record", 1)
            ],
            "{backend:?}"
        );
        let relay = d.relay_delete_impact("relay-1").await.unwrap();
        assert_eq!((relay.removes[0].count, relay.unlinks[0].count), (1, 1));
        assert_eq!(
            d.icon_delete_impact(&Scope::Operator, &icon.id)
                .await
                .unwrap()
                .unlinks[0]
                .count,
            1
        );

        // Diagnostics: in a call, no registration, relay down.
        d.set_line_state(&line.id, LineState::InCall).await.unwrap();
        d.set_relay_state("relay-1", "down").await.unwrap();
        let diag = d.line_diagnostics("line-1", 10_000).await.unwrap();
        assert_eq!(
            diag.active_call.as_ref().map(|c| c.cdr.id.as_str()),
            Some(cdr.id.as_str())
        );
        assert!(diag.line.state_changed_at.is_some());
        assert!(
            diag.problems.iter().any(|p| p.contains("no live registration")),
            "{:?}",
            diag.problems
        );
        assert!(
            diag.problems.iter().any(|p| p.contains("health checks")),
            "{:?}",
            diag.problems
        );
        // A fault says why; the reason goes when the line leaves fault.
        d.end_cdr(&cdr.id, 5_000, HangupCause::LineFault).await.unwrap();
        d.set_line_fault(
            &line.id,
            "serial port /dev/ttyACM0: read error (device unplugged?)",
            6_000,
        )
        .await
        .unwrap();
        let diag = d.line_diagnostics("line-1", 10_000).await.unwrap();
        assert_eq!(
            diag.last_call.as_ref().map(|c| c.cdr.hangup_cause),
            Some(Some(HangupCause::LineFault))
        );
        assert!(diag.problems[0].contains("read error"), "{:?}", diag.problems);
        assert_eq!(diag.line.state_changed_at, Some(6_000));
        d.set_line_state(&line.id, LineState::Idle).await.unwrap();
        assert_eq!(d.line("line-1").await.unwrap().fault_reason, None);
        db.finish().await;
    }
}

#[tokio::test]
async fn a_relay_mirrors_its_modems_faults_where_no_call_holds_the_line() {
    for backend in backends() {
        let db = TestDb::new(backend).await;
        let d = &db.directory;
        tenant(d, "acme").await;
        let line = |name: &str| NewLine {
            name: name.into(),
            relay: "relay-1".into(),
            tenant: None,
            device_path: "/dev/ttyACM0".into(),
            kind: LineKind::Modem,
        };
        d.create_line(line("line-1")).await.unwrap();
        d.create_line(line("line-2")).await.unwrap();

        // Faulty: fault with the modem's reason, once.
        assert!(
            d.mirror_relay_line("relay-1", "line-1", Some("no such device"), 1_000)
                .await
                .unwrap()
        );
        assert!(
            !d.mirror_relay_line("relay-1", "line-1", Some("no such device"), 2_000)
                .await
                .unwrap()
        );
        let faulty = d.line("line-1").await.unwrap();
        assert_eq!(faulty.state, LineState::Fault);
        assert_eq!(faulty.fault_reason.as_deref(), Some("relay: no such device"));
        // Another relay's name changes nothing.
        assert!(
            !d.mirror_relay_line("relay-2", "line-2", Some("x"), 2_000)
                .await
                .unwrap()
        );
        // Working again: idle, reason gone.
        assert!(
            d.mirror_relay_line("relay-1", "line-1", None, 3_000)
                .await
                .unwrap()
        );
        let healed = d.line("line-1").await.unwrap();
        assert_eq!((healed.state, healed.fault_reason), (LineState::Idle, None));
        // A fault an operator set stays until the operator lifts it.
        d.set_line_fault(&healed.id, "maintenance", 4_000).await.unwrap();
        assert!(
            !d.mirror_relay_line("relay-1", "line-1", None, 5_000)
                .await
                .unwrap()
        );
        assert_eq!(d.line("line-1").await.unwrap().state, LineState::Fault);
        // A line a node holds is the node's.
        let owner = d
            .start_owner("node-a", 5_000, std::time::Duration::from_secs(20))
            .await
            .unwrap();
        let line_2 = d.line("line-2").await.unwrap();
        assert!(d.call_writer(&owner).claim_line(&line_2.id).await);
        assert!(
            !d.mirror_relay_line("relay-1", "line-2", Some("gone"), 6_000)
                .await
                .unwrap()
        );
        assert_eq!(d.line("line-2").await.unwrap().state, LineState::Dialing);
        db.finish().await;
    }
}
