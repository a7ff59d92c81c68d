//! What operators and tenant admins do beyond editing objects, through the real
//! router on SQLite and PostgreSQL: call records with names, billable time,
//! search and paging; hang-up and reset requests (202, one open per target,
//! scoped, operator-only reset) and their listing; line diagnostics; what a
//! cascading delete removes, counted before it; the audit log (who, what, from
//! and to; never a secret; a tenant admin sees its own tenant's); webhooks (the
//! secret once, internal URLs refused unless allowed, scoped) and deliveries.

mod common;

use axum::http::{Method, StatusCode};
use common::{Api, ids};
use offhook_directory::testing::{TestDb, backends};
use offhook_directory::*;
use offhook_web::{AppState, WebhookConfig};
use serde_json::{Value, json};

struct Fixture {
    operator: String,
    acme_admin: String,
    other_admin: String,
    live_call: String,
}

async fn fixture(d: &Directory) -> Fixture {
    let (operator, admins) = common::tenants_with_admins(d, &["acme", "other"]).await;
    let (acme_admin, other_admin) = (admins[0].1.clone(), admins[1].1.clone());
    let acme = d.tenant("acme").await.unwrap();
    let icon = d
        .create_icon(NewIcon {
            public_id: Some("acme-sales".into()),
            ..NewIcon::new("acme", "+4930123456", "Call sales")
        })
        .await
        .unwrap();
    d.create_line(NewLine {
        name: "line-1".into(),
        relay: "relay-1".into(),
        tenant: None,
        device_path: "emulated".into(),
        kind: LineKind::Emulated,
    })
    .await
    .unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    for n in 0..12 {
        let cdr = d
            .start_cdr(NewCdr {
                tenant_id: acme.id.clone(),
                icon_id: Some(icon.id.clone()),
                account_id: None,
                call_id: format!("call-{n}"),
                number: icon.number.clone(),
                line_id: None,
                started_at: now - 100_000 + n,
            })
            .await
            .unwrap();
        d.answer_cdr(&cdr.id, now - 95_000, AnswerSource::RingbackStopped)
            .await
            .unwrap();
        d.end_cdr(
            &cdr.id,
            now - 34_500,
            if n == 0 {
                HangupCause::Busy
            } else {
                HangupCause::Normal
            },
        )
        .await
        .unwrap();
    }
    let live = d
        .start_cdr(NewCdr {
            tenant_id: acme.id.clone(),
            icon_id: Some(icon.id.clone()),
            account_id: None,
            call_id: "live".into(),
            number: icon.number.clone(),
            line_id: None,
            started_at: now,
        })
        .await
        .unwrap();
    Fixture {
        operator,
        acme_admin,
        other_admin,
        live_call: live.id,
    }
}

#[tokio::test]
async fn call_records_hang_up_and_reset() {
    for backend in backends() {
        let db = TestDb::new(backend).await;
        let f = fixture(&db.directory).await;
        let api = Api::new(&db.directory).await;

        let page = api
            .get("/api/v1/admin/cdrs?limit=5&offset=5", &f.acme_admin)
            .await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        assert_eq!(
            (page.body["total"].as_i64(), ids(&page).len()),
            (Some(13), 5),
            "{backend:?}"
        );
        let record = &page.body["items"][0];
        assert_eq!(record["tenant_name"], "acme");
        assert_eq!(record["icon_public_id"], "acme-sales");
        assert_eq!(record["icon_label"], "Call sales");
        assert_eq!(record["duration_s"], 66, "65.5 s rounds up");
        assert_eq!(record["billable_s"], 61, "from the answer: 60.5 s");
        let searched = api.get("/api/v1/admin/cdrs?q=CALL-1", &f.acme_admin).await;
        assert_eq!(
            searched.body["total"], 3,
            "call-1, call-10, call-11: {}",
            searched.body
        );
        let none = api.get("/api/v1/admin/cdrs?q=call-1", &f.other_admin).await;
        assert_eq!(none.body["total"], 0);
        let csv = api.get("/api/v1/admin/cdrs.csv?cause=busy", &f.acme_admin).await;
        assert!(csv.content_type.starts_with("text/csv"));
        assert_eq!(
            csv.body.as_str().unwrap().lines().count(),
            2,
            "the header and the busy call"
        );
        for bad in ["limit=0", "limit=5000", "offset=-1"] {
            let reply = api.get(&format!("/api/v1/admin/cdrs?{bad}"), &f.acme_admin).await;
            assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        }

        // Hang up: accepted, once; not another tenant's; not a call that ended.
        let path = format!("/api/v1/admin/calls/{}/hangup", f.live_call);
        let first = api.post(&path, &f.acme_admin, None).await;
        assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.body);
        assert_eq!(first.body["kind"], "hangup-call");
        assert_eq!(first.body["result"], Value::Null);
        assert_eq!(first.body["requested_by"], "acme admin");
        let again = api.post(&path, &f.operator, None).await;
        assert_eq!(again.body["id"], first.body["id"], "one open request per call");
        assert_eq!(
            api.post(&path, &f.other_admin, None).await.status,
            StatusCode::NOT_FOUND
        );
        let ended = page.body["items"][0]["id"].as_str().unwrap().to_owned();
        let reply = api
            .post(&format!("/api/v1/admin/calls/{ended}/hangup"), &f.operator, None)
            .await;
        assert_eq!(reply.status, StatusCode::CONFLICT, "{}", reply.body);
        let action = first.body["id"].as_str().unwrap();
        let shown = api
            .get(&format!("/api/v1/admin/actions/{action}"), &f.acme_admin)
            .await;
        assert_eq!(shown.body["target_id"], f.live_call.as_str());
        assert_eq!(
            api.get(&format!("/api/v1/admin/actions/{action}"), &f.other_admin)
                .await
                .status,
            StatusCode::NOT_FOUND
        );

        // Reset: the operator's only; the shared line's request is not a tenant's to see.
        let reset = api
            .post("/api/v1/admin/lines/line-1/reset", &f.acme_admin, None)
            .await;
        assert_eq!(reset.status, StatusCode::FORBIDDEN);
        let reset = api
            .post("/api/v1/admin/lines/line-1/reset", &f.operator, None)
            .await;
        assert_eq!(
            (reset.status, &reset.body["kind"]),
            (StatusCode::ACCEPTED, &json!("reset-line"))
        );
        let open = api.get("/api/v1/admin/actions?open=true", &f.operator).await;
        assert_eq!(open.body["total"], 2);
        let theirs = api.get("/api/v1/admin/actions", &f.acme_admin).await;
        assert_eq!(ids(&theirs), vec![action.to_owned()]);

        // The owner completes it; the listing shows how it went.
        let d = &db.directory;
        let now = chrono::Utc::now().timestamp_millis();
        assert!(
            d.claim_operator_action(action, "node-1", now, now + 10_000)
                .await
                .unwrap()
        );
        assert!(
            d.complete_operator_action(action, "node-1", ActionResult::Done, "BYE sent", now)
                .await
                .unwrap()
        );
        let done = api
            .get(&format!("/api/v1/admin/actions/{action}"), &f.acme_admin)
            .await;
        assert_eq!(
            (&done.body["result"], &done.body["detail"]),
            (&json!("done"), &json!("BYE sent"))
        );

        // Diagnostics: the operator's; they say why.
        let diag = api
            .get("/api/v1/admin/lines/line-1/diagnostics", &f.operator)
            .await;
        assert_eq!(diag.status, StatusCode::OK, "{}", diag.body);
        assert_eq!(diag.body["relay"]["name"], "relay-1");
        let problems = diag.body["problems"].as_array().unwrap();
        assert!(
            problems
                .iter()
                .any(|p| p.as_str().unwrap().contains("no live registration")),
            "{problems:?}"
        );
        assert_eq!(diag.body["open_actions"][0]["kind"], "reset-line");
        let diag = api
            .get("/api/v1/admin/lines/line-1/diagnostics", &f.acme_admin)
            .await;
        assert_eq!(diag.status, StatusCode::FORBIDDEN);
        db.finish().await;
    }
}

#[tokio::test]
async fn deletes_are_counted_first_and_every_change_is_audited() {
    for backend in backends() {
        let db = TestDb::new(backend).await;
        let f = fixture(&db.directory).await;
        let api = Api::new(&db.directory).await;

        let impact = api
            .get("/api/v1/admin/tenants/acme/delete-impact", &f.operator)
            .await;
        assert_eq!(impact.body["kind"], "tenant");
        let removes: Vec<(String, i64)> = impact.body["removes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| {
                (
                    x["what"].as_str().unwrap().to_owned(),
                    x["count"].as_i64().unwrap(),
                )
            })
            .collect();
        assert!(
            removes.contains(&("icon".into(), 1)) && removes.contains(&("call records".into(), 13)),
            "{removes:?}"
        );
        assert!(removes.contains(&("API token".into(), 1)), "{removes:?}");
        let icon_impact = api
            .get("/api/v1/admin/icons/acme-sales/delete-impact", &f.acme_admin)
            .await;
        assert_eq!(icon_impact.body["unlinks"][0]["count"], 13);
        let relay = api
            .get("/api/v1/admin/relays/relay-1/delete-impact", &f.operator)
            .await;
        assert_eq!(relay.body["removes"][0], json!({"what": "line", "count": 1}));
        assert_eq!(
            api.get("/api/v1/admin/tenants/acme/delete-impact", &f.other_admin)
                .await
                .status,
            StatusCode::NOT_FOUND
        );

        // Changes by a tenant admin and by the operator.
        let changed = api
            .call(
                Method::PATCH,
                "/api/v1/admin/icons/acme-sales",
                Some(&f.acme_admin),
                Some(json!({"label": "Sales desk", "ring_timeout_s": 25})),
            )
            .await;
        assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
        assert_eq!(changed.body["ring_timeout_s"], 25);
        let created = api
            .post(
                "/api/v1/admin/accounts",
                &f.acme_admin,
                Some(json!({"username": "alice", "password": "correct horse battery"})),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED);
        let account = created.body["id"].as_str().unwrap();
        api.call(
            Method::PATCH,
            &format!("/api/v1/admin/accounts/{account}"),
            Some(&f.acme_admin),
            Some(json!({"password": "another long secret"})),
        )
        .await;
        assert_eq!(
            api.call(
                Method::DELETE,
                "/api/v1/admin/tenants/other",
                Some(&f.operator),
                None
            )
            .await
            .status,
            StatusCode::NO_CONTENT
        );

        let log = api.get("/api/v1/admin/audit", &f.operator).await;
        let entries = log.body["items"].as_array().unwrap();
        let text = log.body.to_string();
        assert!(
            !text.contains("correct horse") && !text.contains("another long secret"),
            "no password: {text}"
        );
        let icon_entry = entries.iter().find(|e| e["object_kind"] == "icon").unwrap();
        assert_eq!(icon_entry["actor"], "acme admin");
        assert_eq!(icon_entry["action"], "update");
        assert_eq!(
            icon_entry["changes"]["label"],
            json!({"from": "Call sales", "to": "Sales desk"})
        );
        assert_eq!(
            icon_entry["changes"]["ring_timeout_s"],
            json!({"from": null, "to": 25})
        );
        let password = entries
            .iter()
            .find(|e| e["object_kind"] == "account" && e["action"] == "update")
            .unwrap();
        assert_eq!(password["changes"]["password"], "changed");
        let deleted = entries.iter().find(|e| e["object_kind"] == "tenant").unwrap();
        assert_eq!(
            (&deleted["actor"], &deleted["action"]),
            (&json!("ops"), &json!("delete"))
        );
        assert!(deleted["changes"]["removed"].is_array(), "{deleted}");
        // A tenant admin reads its own tenant's entries only.
        let own = api.get("/api/v1/admin/audit", &f.acme_admin).await;
        assert_eq!(own.body["total"], 3, "{}", own.body);
        let by_kind = api
            .get("/api/v1/admin/audit?object_kind=account", &f.acme_admin)
            .await;
        assert_eq!(by_kind.body["total"], 2);
        db.finish().await;
    }
}

#[tokio::test]
async fn webhooks_show_their_secret_once_and_stay_out_of_internal_networks() {
    for backend in backends() {
        let db = TestDb::new(backend).await;
        let f = fixture(&db.directory).await;
        let api = Api::new(&db.directory).await;
        let internal = api
            .post(
                "/api/v1/admin/webhooks",
                &f.acme_admin,
                Some(json!({"url": "http://10.0.0.5/billing"})),
            )
            .await;
        assert_eq!(
            internal.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            internal.body
        );
        assert_eq!(internal.body["field"], "url");
        let made = api
            .post(
                "/api/v1/admin/webhooks",
                &f.acme_admin,
                Some(json!({"url": "https://billing.example/offhook", "events": ["call.ended", "call.started"]})),
            )
            .await;
        assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
        let secret = made.body["secret"].as_str().unwrap().to_owned();
        let id = made.body["webhook"]["id"].as_str().unwrap().to_owned();
        assert_eq!(
            made.body["webhook"]["events"],
            json!(["call.started", "call.ended"])
        );
        let listed = api.get("/api/v1/admin/webhooks", &f.acme_admin).await;
        assert!(!listed.body.to_string().contains(&secret), "never listed");
        assert_eq!(ids(&listed), vec![id.clone()]);
        assert!(ids(&api.get("/api/v1/admin/webhooks", &f.other_admin).await).is_empty());
        let path = format!("/api/v1/admin/webhooks/{id}");
        assert_eq!(api.get(&path, &f.other_admin).await.status, StatusCode::NOT_FOUND);
        let rotated = api.post(&format!("{path}/secret"), &f.acme_admin, None).await;
        let new_secret = rotated.body["secret"].as_str().unwrap();
        assert!(new_secret.starts_with("whsec_") && new_secret != secret);
        let log = api
            .get("/api/v1/admin/audit?object_kind=webhook", &f.operator)
            .await;
        assert!(
            !log.body.to_string().contains("whsec_"),
            "no secret in the log: {}",
            log.body
        );

        // The call that ends now is delivered to it: pending in the outbox.
        let d = &db.directory;
        d.end_cdr(
            &f.live_call,
            chrono::Utc::now().timestamp_millis(),
            HangupCause::Normal,
        )
        .await
        .unwrap();
        let deliveries = api
            .get(&format!("/api/v1/admin/deliveries?webhook={id}"), &f.acme_admin)
            .await;
        assert_eq!(deliveries.body["total"], 1, "{}", deliveries.body);
        assert_eq!(deliveries.body["items"][0]["state"], "pending");
        assert_eq!(deliveries.body["items"][0]["event"], "call.ended");
        let delivery = deliveries.body["items"][0]["id"].as_str().unwrap();
        let retry = api
            .post(
                &format!("/api/v1/admin/deliveries/{delivery}/retry"),
                &f.acme_admin,
                None,
            )
            .await;
        assert_eq!(retry.status, StatusCode::OK, "{}", retry.body);
        assert_eq!(
            api.post(
                &format!("/api/v1/admin/deliveries/{delivery}/retry"),
                &f.other_admin,
                None
            )
            .await
            .status,
            StatusCode::NOT_FOUND
        );
        let pending = api
            .get("/api/v1/admin/deliveries?state=pending", &f.operator)
            .await;
        assert_eq!(pending.body["total"], 1);

        // The operator may allow internal targets (tests, trusted tenants).
        let state = AppState::new(d.clone(), "ws://127.0.0.1:5066".into())
            .await
            .unwrap()
            .with_webhooks(WebhookConfig {
                allow_internal_targets: true,
                ..WebhookConfig::default()
            });
        let allowing = Api::with_state(state);
        let made = allowing
            .post(
                "/api/v1/admin/webhooks",
                &f.acme_admin,
                Some(json!({"url": "http://10.0.0.5/billing"})),
            )
            .await;
        assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
        let deleted = api.call(Method::DELETE, &path, Some(&f.acme_admin), None).await;
        assert_eq!(deleted.status, StatusCode::NO_CONTENT);
        assert_eq!(
            api.get("/api/v1/admin/deliveries", &f.operator).await.body["total"],
            0
        );
        db.finish().await;
    }
}
