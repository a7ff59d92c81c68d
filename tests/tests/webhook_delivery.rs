//! Webhook delivery (`offhook_web::webhook_delivery`, in this process) against a
//! real HTTP receiver on 127.0.0.1, on SQLite and
//! PostgreSQL: call ends written by the directory's call writer fill the outbox;
//! two delivery workers (two web nodes) share it; the receiver answers 500 for a
//! while, then 200, and must get every record exactly once with 2xx, each signed
//! (HMAC-SHA256 over timestamp and body) and carrying the call record. A URL whose
//! name resolves to loopback is refused when internal targets are not allowed,
//! and the receiver never sees it.
#![allow(
    clippy::disallowed_methods,
    reason = "an edge: it reads the real clock and the OS generator"
)]

use std::time::{Duration, Instant};

use offhook_directory::testing::{TestDb, backends};
use offhook_directory::*;
use offhook_tests::webhook_receiver::Receiver;
use offhook_web::WebhookConfig;
use offhook_web::webhook_delivery;

fn fast(allow_internal_targets: bool) -> WebhookConfig {
    WebhookConfig {
        allow_internal_targets,
        retry_initial_ms: 100,
        retry_max_ms: 400,
        poll_ms: 50,
        timeout_ms: 2_000,
        ..WebhookConfig::default()
    }
}

async fn tenant_with_icon(d: &Directory) -> (Tenant, Icon) {
    let tenant = d
        .create_tenant(NewTenant {
            name: "acme".into(),
            sip_domain: "acme.example".into(),
        })
        .await
        .unwrap();
    let icon = d
        .create_icon(NewIcon {
            public_id: Some("acme-sales".into()),
            ..NewIcon::new("acme", "+4930123456", "Sales")
        })
        .await
        .unwrap();
    (tenant, icon)
}

/// Polls the outbox until `done` says so, for at most `within`.
async fn wait_for(d: &Directory, within: Duration, done: impl Fn(&[Delivery]) -> bool) -> Vec<Delivery> {
    let deadline = Instant::now() + within;
    loop {
        let filter = DeliveryFilter {
            limit: Some(1000),
            ..Default::default()
        };
        let (deliveries, _) = d.list_deliveries(&Scope::Operator, &filter).await.unwrap();
        if done(&deliveries) || Instant::now() > deadline {
            return deliveries;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_receiver_failing_for_a_while_gets_every_record_exactly_once() {
    for backend in backends() {
        let db = TestDb::new(backend).await;
        let d = &db.directory;
        let (tenant, icon) = tenant_with_icon(d).await;
        let (receiver, address) = Receiver::start(Duration::from_millis(1500)).await;
        let (webhook, secret) = d
            .create_webhook(
                NewWebhook {
                    tenant: "acme".into(),
                    url: format!("http://{address}/hook"),
                    description: "billing".into(),
                    events: vec![WebhookEvent::CallEnded],
                },
                true,
            )
            .await
            .unwrap();
        receiver.set_secret(&secret);
        // Two web nodes deliver from one outbox.
        let workers = [
            webhook_delivery::spawn(d.clone(), fast(true), "web-a".into()).unwrap(),
            webhook_delivery::spawn(d.clone(), fast(true), "web-b".into()).unwrap(),
        ];

        let writer = d.call_writer("test-owner");
        let now = chrono::Utc::now().timestamp_millis();
        let mut cdrs = Vec::new();
        for n in 0..20 {
            let cdr = {
                let cdr = (NewCdr {
                    tenant_id: tenant.id.clone(),
                    icon_id: Some(icon.id.clone()),
                    account_id: None,
                    call_id: format!("call-{n}"),
                    number: icon.number.clone(),
                    line_id: None,
                    started_at: now - 60_000,
                })
                .into_cdr()
                .unwrap();
                writer.start_cdr(cdr.clone());
                cdr
            };
            writer.answer_cdr(&cdr.id, now - 50_000, AnswerSource::PolarityReversal);
            writer.end_cdr(&cdr.id, now - 20_000, HangupCause::Normal).await;
            cdrs.push(cdr.id);
        }
        let deliveries = wait_for(d, Duration::from_secs(30), |all| {
            all.len() == 20 && all.iter().all(|x| x.state == DeliveryState::Delivered)
        })
        .await;
        drop(workers);
        writer.close().await;

        assert!(
            deliveries.iter().all(|x| x.state == DeliveryState::Delivered),
            "{backend:?}: {deliveries:#?}"
        );
        let seen = receiver.take();
        assert_eq!(seen.bad_signatures, 0, "every delivery is signed with the secret");
        let mut accepted: Vec<&String> = seen
            .requests
            .iter()
            .filter(|(_, status)| *status == 200)
            .map(|(id, _)| id)
            .collect();
        accepted.sort();
        let before = accepted.len();
        accepted.dedup();
        assert_eq!(
            (before, accepted.len()),
            (20, 20),
            "{backend:?}: every record once"
        );
        let refused = seen.requests.iter().filter(|(_, status)| *status == 500).count();
        assert!(refused >= 1, "the receiver failed for a while");
        assert!(
            deliveries
                .iter()
                .any(|x| x.attempts > 1 && x.last_status == Some(200)),
            "retried after the 500s: {deliveries:#?}"
        );
        assert_eq!(
            deliveries.iter().map(|x| x.attempts).sum::<i64>(),
            seen.requests.len() as i64,
            "every attempt recorded"
        );
        for cdr in &cdrs {
            let id = format!("{}.{cdr}.call.ended", webhook.id);
            let body = &seen.accepted[&id];
            assert_eq!(body["event"], "call.ended");
            assert_eq!(body["id"], id);
            let call = &body["call"];
            assert_eq!(call["id"], *cdr);
            assert_eq!(call["tenant_name"], "acme");
            assert_eq!(call["icon_public_id"], "acme-sales");
            assert_eq!(call["answer_source"], "polarity-reversal");
            assert_eq!(call["hangup_cause"], "normal");
            assert_eq!(call["billable_s"], 30, "from the answer to the end");
            assert_eq!(call["duration_s"], 40);
        }
        db.finish().await;
    }
}

#[tokio::test]
async fn internal_targets_are_refused_when_delivering_too() {
    let db = TestDb::new(offhook_directory::testing::Backend::Sqlite).await;
    let d = &db.directory;
    let (tenant, icon) = tenant_with_icon(d).await;
    let (receiver, address) = Receiver::start(Duration::ZERO).await;
    // Stored while allowed (or through a name that resolved elsewhere then): the
    // worker of a node that does not allow internal targets still refuses it.
    let (_, secret) = d
        .create_webhook(
            NewWebhook {
                tenant: "acme".into(),
                url: format!("http://localhost:{}/hook", address.port()),
                description: String::new(),
                events: vec![WebhookEvent::CallEnded],
            },
            true,
        )
        .await
        .unwrap();
    receiver.set_secret(&secret);
    let worker = webhook_delivery::spawn(d.clone(), fast(false), "web-a".into()).unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    let cdr = d
        .start_cdr(NewCdr {
            tenant_id: tenant.id.clone(),
            icon_id: Some(icon.id.clone()),
            account_id: None,
            call_id: "internal".into(),
            number: icon.number.clone(),
            line_id: None,
            started_at: now - 5_000,
        })
        .await
        .unwrap();
    d.end_cdr(&cdr.id, now, HangupCause::Busy).await.unwrap();
    let deliveries = wait_for(d, Duration::from_secs(10), |all| {
        all.iter().any(|x| x.attempts >= 2)
    })
    .await;
    drop(worker);
    let delivery = &deliveries[0];
    assert_eq!(
        delivery.state,
        DeliveryState::Pending,
        "still retried: the operator may allow it"
    );
    assert!(delivery.last_error.contains("internal address"), "{delivery:?}");
    assert!(receiver.take().requests.is_empty(), "nothing was sent");
    db.finish().await;
}
