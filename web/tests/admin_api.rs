//! The admin REST API through the real router (`oneshot`) on SQLite and
//! PostgreSQL: tokens and roles, the tenant isolation matrix (tenant B's admin can
//! neither read, list, change nor delete any of tenant A's objects), validation
//! (422 naming the field, nothing written), CSV export, active calls, calls per
//! hour, and the served OpenAPI document.

mod common;

use axum::http::{Method, StatusCode};
use common::{Api, ids};
use offhook_directory::testing::{TestDb, backends};
use offhook_directory::{Directory, LineKind, NewCdr, NewIcon, NewLine, Scope};
use serde_json::json;

/// Ids of tenant alpha's objects, one of each kind.
struct Alpha {
    tenant: String,
    account: String,
    icon: String,
    line: String,
    cdr: String,
    token: String,
}

/// Two tenants with an admin token each, an operator token, and one object of
/// each kind in tenant alpha (plus a shared line).
struct Fixture {
    operator: String,
    alpha_admin: String,
    beta_admin: String,
    alpha: Alpha,
}

async fn fixture(d: &Directory) -> Fixture {
    let (operator, admins) = common::tenants_with_admins(d, &["alpha", "beta"]).await;
    let [(alpha_token, alpha_admin), (_, beta_admin)] = <[_; 2]>::try_from(admins).unwrap();
    let tenant = d.tenant("alpha").await.unwrap();
    let account = d
        .create_account(offhook_directory::NewAccount {
            tenant: "alpha".into(),
            username: "alice".into(),
            password: "correct horse".into(),
            display_name: "Alice".into(),
            number: Some("201".into()),
            kind: offhook_directory::AccountKind::User,
        })
        .await
        .unwrap();
    let icon = d
        .create_icon(NewIcon {
            public_id: Some("alpha-sales".into()),
            ..NewIcon::new("alpha", "5550100", "Sales")
        })
        .await
        .unwrap();
    let mut lines = Vec::new();
    for (name, owner) in [("alpha-line", Some("alpha")), ("shared-line", None)] {
        let line = d
            .create_line(NewLine {
                name: name.into(),
                relay: "relay-1".into(),
                tenant: owner.map(Into::into),
                device_path: "emulated".into(),
                kind: LineKind::Emulated,
            })
            .await
            .unwrap();
        lines.push(line.id);
    }
    let cdr = d
        .start_cdr(NewCdr {
            tenant_id: tenant.id.clone(),
            icon_id: Some(icon.id.clone()),
            account_id: None,
            call_id: "call-1@alpha".into(),
            number: "5550100".into(),
            line_id: Some(lines[0].clone()),
            started_at: chrono::Utc::now().timestamp_millis(),
        })
        .await
        .unwrap();
    Fixture {
        operator,
        alpha_admin,
        beta_admin,
        alpha: Alpha {
            tenant: tenant.id,
            account: account.id,
            icon: icon.id,
            line: lines[0].clone(),
            cdr: cdr.id,
            token: alpha_token.id,
        },
    }
}

#[tokio::test]
async fn tenant_b_can_neither_read_list_change_nor_delete_tenant_a_objects() {
    for backend in backends() {
        let db = TestDb::new(backend).await;
        let f = fixture(&db.directory).await;
        let api = Api::new(&db.directory).await;
        let a = &f.alpha;
        // (list path, object path, a valid change) for every object type.
        let objects = [
            (
                "/api/v1/admin/tenants",
                format!("/api/v1/admin/tenants/{}", a.tenant),
                json!({"sip_domain": "evil.example"}),
            ),
            (
                "/api/v1/admin/tenants",
                "/api/v1/admin/tenants/alpha".to_owned(),
                json!({"sip_domain": "evil.example"}),
            ),
            (
                "/api/v1/admin/accounts",
                format!("/api/v1/admin/accounts/{}", a.account),
                json!({"display_name": "Mallory"}),
            ),
            (
                "/api/v1/admin/icons",
                format!("/api/v1/admin/icons/{}", a.icon),
                json!({"number": "5550199"}),
            ),
            (
                "/api/v1/admin/icons",
                "/api/v1/admin/icons/alpha-sales".to_owned(),
                json!({"label": "Mine"}),
            ),
            (
                "/api/v1/admin/lines",
                format!("/api/v1/admin/lines/{}", a.line),
                json!({"state": "fault"}),
            ),
            (
                "/api/v1/admin/tokens",
                format!("/api/v1/admin/tokens/{}", a.token),
                json!({}),
            ),
        ];
        for (list, object, change) in &objects {
            let listed = api.get(list, &f.beta_admin).await;
            assert_eq!(listed.status, StatusCode::OK, "{list}");
            let seen = ids(&listed);
            for id in [&a.tenant, &a.account, &a.icon, &a.line, &a.token] {
                assert!(!seen.contains(id), "{list} shows alpha's {id} to beta: {seen:?}");
            }
            let read = api.get(object, &f.beta_admin).await;
            assert_eq!(read.status, StatusCode::NOT_FOUND, "GET {object}: {}", read.body);
            assert!(!read.body.to_string().contains("Alice"), "{}", read.body);
            if !object.contains("/tokens/") {
                let changed = api
                    .call(Method::PATCH, object, Some(&f.beta_admin), Some(change.clone()))
                    .await;
                assert_eq!(
                    changed.status,
                    StatusCode::NOT_FOUND,
                    "PATCH {object}: {}",
                    changed.body
                );
            }
            let deleted = api.call(Method::DELETE, object, Some(&f.beta_admin), None).await;
            assert_eq!(
                deleted.status,
                StatusCode::NOT_FOUND,
                "DELETE {object}: {}",
                deleted.body
            );
            // Still there, unchanged, for its own admin.
            let own = api.get(list, &f.alpha_admin).await;
            assert!(
                ids(&own)
                    .iter()
                    .any(|id| [&a.tenant, &a.account, &a.icon, &a.line, &a.token].contains(&id))
            );
        }
        // Calls and CDRs: beta sees none of alpha's, even by icon filter.
        for path in ["/api/v1/admin/cdrs", "/api/v1/admin/calls"] {
            assert_eq!(
                ids(&api.get(path, &f.beta_admin).await),
                Vec::<String>::new(),
                "{path}"
            );
            assert_eq!(
                ids(&api.get(path, &f.alpha_admin).await),
                vec![a.cdr.clone()],
                "{path}"
            );
        }
        let by_icon = api
            .get("/api/v1/admin/cdrs?icon=alpha-sales", &f.beta_admin)
            .await;
        assert_eq!(by_icon.status, StatusCode::NOT_FOUND);
        let csv = api.get("/api/v1/admin/cdrs.csv", &f.beta_admin).await;
        assert!(!csv.body.as_str().unwrap().contains(&a.cdr), "{}", csv.body);
        let chart = api.get("/api/v1/admin/stats/calls-per-hour", &f.beta_admin).await;
        let total: i64 = chart
            .body
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["calls"].as_i64().unwrap())
            .sum();
        assert_eq!(total, 0);
        // Beta cannot create objects in alpha either.
        let planted = api
            .call(
                Method::POST,
                "/api/v1/admin/icons",
                Some(&f.beta_admin),
                Some(json!({"tenant": "alpha", "number": "5550100", "label": "Planted"})),
            )
            .await;
        assert_eq!(planted.status, StatusCode::NOT_FOUND, "{}", planted.body);
        let planted = api
            .call(
                Method::POST,
                "/api/v1/admin/tokens",
                Some(&f.beta_admin),
                Some(json!({"name": "x", "tenant": "alpha"})),
            )
            .await;
        assert_eq!(planted.status, StatusCode::NOT_FOUND, "{}", planted.body);
        // Nothing of alpha changed.
        let icon = api.get("/api/v1/admin/icons/alpha-sales", &f.operator).await;
        assert_eq!(icon.body["number"], "5550100");
        assert_eq!(icon.body["label"], "Sales");
        let tenant = api.get("/api/v1/admin/tenants/alpha", &f.operator).await;
        assert_eq!(tenant.body["sip_domain"], "alpha.example");
        assert_eq!(ids(&api.get("/api/v1/admin/icons", &f.operator).await).len(), 1);
        db.finish().await;
    }
}

#[tokio::test]
async fn roles_tokens_and_validation() {
    for backend in backends() {
        let db = TestDb::new(backend).await;
        let f = fixture(&db.directory).await;
        let api = Api::new(&db.directory).await;

        // No token, a bad token: 401 with a JSON reason.
        let none = api.call(Method::GET, "/api/v1/admin/icons", None, None).await;
        assert_eq!(none.status, StatusCode::UNAUTHORIZED);
        assert!(none.body["error"].as_str().unwrap().contains("Bearer"));
        let bad = api.get("/api/v1/admin/icons", "ohk_not-a-token").await;
        assert_eq!(bad.status, StatusCode::UNAUTHORIZED);

        let me = api.get("/api/v1/admin/me", &f.alpha_admin).await;
        assert_eq!(me.body["role"], "tenant-admin");
        assert_eq!(me.body["tenant_id"], f.alpha.tenant.as_str());
        assert_eq!(
            api.get("/api/v1/admin/me", &f.operator).await.body["role"],
            "operator"
        );

        // The operator sees everything; a tenant admin its tenant, its lines and the shared pool.
        assert_eq!(ids(&api.get("/api/v1/admin/tenants", &f.operator).await).len(), 2);
        assert_eq!(
            ids(&api.get("/api/v1/admin/tenants", &f.alpha_admin).await),
            vec![f.alpha.tenant.clone()]
        );
        assert_eq!(
            ids(&api.get("/api/v1/admin/lines", &f.alpha_admin).await).len(),
            2
        );
        assert_eq!(ids(&api.get("/api/v1/admin/lines", &f.beta_admin).await).len(), 1);

        // Operator-only changes: 403 for a tenant admin, on its own objects too.
        for (method, path, body) in [
            (
                Method::POST,
                "/api/v1/admin/tenants".to_owned(),
                Some(json!({"name": "gamma", "sip_domain": "gamma.example"})),
            ),
            (
                Method::PATCH,
                "/api/v1/admin/tenants/alpha".to_owned(),
                Some(json!({"sip_domain": "new.example"})),
            ),
            (Method::DELETE, "/api/v1/admin/tenants/alpha".to_owned(), None),
            (
                Method::POST,
                "/api/v1/admin/lines".to_owned(),
                Some(
                    json!({"name": "l2", "relay": "relay-1", "device_path": "/dev/ttyACM1", "kind": "modem"}),
                ),
            ),
            (
                Method::PATCH,
                format!("/api/v1/admin/lines/{}", f.alpha.line),
                Some(json!({"state": "fault"})),
            ),
            (Method::GET, "/api/v1/admin/relays".to_owned(), None),
        ] {
            let reply = api.call(method.clone(), &path, Some(&f.alpha_admin), body).await;
            assert_eq!(
                reply.status,
                StatusCode::FORBIDDEN,
                "{method} {path}: {}",
                reply.body
            );
        }
        assert_eq!(ids(&api.get("/api/v1/admin/tenants", &f.operator).await).len(), 2);
        assert_eq!(
            api.get("/api/v1/admin/relays", &f.operator).await.status,
            StatusCode::OK
        );

        // A tenant admin manages its icons and accounts; the tenant is implied.
        let icon = api
            .call(
                Method::POST,
                "/api/v1/admin/icons",
                Some(&f.alpha_admin),
                Some(json!({
                    "number": "+4930123456", "label": "Support", "allowed_origins": ["https://alpha.example"],
                    "opening_hours": "mon-fri 09:00-17:00", "timezone": "Europe/Berlin"
                })),
            )
            .await;
        assert_eq!(icon.status, StatusCode::CREATED, "{}", icon.body);
        assert_eq!(icon.body["tenant_id"], f.alpha.tenant.as_str());
        assert_eq!(icon.body["max_concurrent_calls"], 2);
        let icon_path = format!("/api/v1/admin/icons/{}", icon.body["public_id"].as_str().unwrap());
        let embed = api.get(&format!("{icon_path}/embed"), &f.alpha_admin).await;
        assert!(
            embed.body["html"].as_str().unwrap().contains("data-icon="),
            "{}",
            embed.body
        );

        // Validation: 422 naming the field, and nothing written, not even the valid part.
        let count = ids(&api.get("/api/v1/admin/icons", &f.operator).await).len();
        for (body, field) in [
            (json!({"number": "12a", "label": "x"}), "number"),
            (json!({"number": "123", "label": ""}), "label"),
            (
                json!({"number": "123", "label": "x", "allowed_origins": ["https://a.example/path"]}),
                "origin",
            ),
            (
                json!({"number": "123", "label": "x", "opening_hours": "someday"}),
                "opening_hours",
            ),
            (
                json!({"number": "123", "label": "x", "calls_per_minute": 0}),
                "calls_per_minute",
            ),
            (
                json!({"number": "123", "label": "x", "calls_per_minute": "many"}),
                "calls_per_minute",
            ),
            (json!({"label": "x"}), "number"),
            (json!({"number": "123", "label": "x", "colour": "red"}), "colour"),
            // The tenant's destination policy: international premium, an access code.
            (json!({"number": "+88212345678", "label": "x"}), "number"),
            (json!({"number": "0044201234567", "label": "x"}), "number"),
        ] {
            let reply = api
                .call(
                    Method::POST,
                    "/api/v1/admin/icons",
                    Some(&f.alpha_admin),
                    Some(body.clone()),
                )
                .await;
            assert_eq!(
                reply.status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{body}: {}",
                reply.body
            );
            assert!(
                reply.body["field"].as_str().unwrap().contains(field),
                "{body}: field {} (want {field})",
                reply.body["field"]
            );
            assert!(!reply.body["reason"].as_str().unwrap().is_empty());
        }
        assert_eq!(
            ids(&api.get("/api/v1/admin/icons", &f.operator).await).len(),
            count
        );
        let half = api
            .call(
                Method::PATCH,
                &icon_path,
                Some(&f.alpha_admin),
                Some(json!({"label": "Renamed", "timezone": "Mars/Base"})),
            )
            .await;
        assert_eq!(half.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(half.body["field"], "timezone");
        let premium = api
            .call(
                Method::PATCH,
                &icon_path,
                Some(&f.alpha_admin),
                Some(json!({"number": "+49900123456"})),
            )
            .await;
        assert_eq!(premium.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(premium.body["field"], "number");
        let reason = premium.body["reason"].as_str().unwrap();
        assert!(
            reason.contains("built-in rule for prefix +49900") && !reason.contains("123456"),
            "a clear reason, the number masked: {reason}"
        );
        assert_eq!(api.get(&icon_path, &f.alpha_admin).await.body["label"], "Support");
        let operator_needs_tenant = api
            .call(
                Method::POST,
                "/api/v1/admin/icons",
                Some(&f.operator),
                Some(json!({"number": "1", "label": "x"})),
            )
            .await;
        assert_eq!(operator_needs_tenant.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(operator_needs_tenant.body["field"], "tenant");
        let not_json = api
            .call(Method::POST, "/api/v1/admin/icons", Some(&f.alpha_admin), None)
            .await;
        assert_eq!(not_json.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let dup = api
            .call(
                Method::POST,
                "/api/v1/admin/tenants",
                Some(&f.operator),
                Some(json!({"name": "alpha", "sip_domain": "x.example"})),
            )
            .await;
        assert_eq!(dup.status, StatusCode::CONFLICT, "{}", dup.body);

        // Accounts: created with a password that never comes back; number removed with null.
        let acc = api
            .call(
                Method::POST,
                "/api/v1/admin/accounts",
                Some(&f.alpha_admin),
                Some(json!({"username": "bob", "password": "long enough", "number": "202"})),
            )
            .await;
        assert_eq!(acc.status, StatusCode::CREATED, "{}", acc.body);
        assert!(!acc.body.to_string().contains("ha1") && !acc.body.to_string().contains("long enough"));
        let acc_path = format!("/api/v1/admin/accounts/{}", acc.body["id"].as_str().unwrap());
        let short = api
            .call(
                Method::PATCH,
                &acc_path,
                Some(&f.alpha_admin),
                Some(json!({"password": "short"})),
            )
            .await;
        assert_eq!(short.body["field"], "password");
        let cleared = api
            .call(
                Method::PATCH,
                &acc_path,
                Some(&f.alpha_admin),
                Some(json!({"number": null})),
            )
            .await;
        assert_eq!(cleared.status, StatusCode::OK);
        assert!(cleared.body["number"].is_null());
        assert_eq!(
            api.call(Method::DELETE, &acc_path, Some(&f.alpha_admin), None)
                .await
                .status,
            StatusCode::NO_CONTENT
        );
        assert_eq!(
            api.get(&acc_path, &f.alpha_admin).await.status,
            StatusCode::NOT_FOUND
        );

        // Tokens: a tenant admin makes one for its tenant; it works, and revoked it does not.
        let made = api
            .call(
                Method::POST,
                "/api/v1/admin/tokens",
                Some(&f.alpha_admin),
                Some(json!({"name": "ci"})),
            )
            .await;
        assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
        assert_eq!(made.body["token"]["tenant_id"], f.alpha.tenant.as_str());
        let secret = made.body["secret"].as_str().unwrap().to_owned();
        assert_eq!(
            api.get("/api/v1/admin/icons", &secret).await.status,
            StatusCode::OK
        );
        let listed = api.get("/api/v1/admin/tokens", &f.alpha_admin).await;
        assert!(!listed.body.to_string().contains(&secret));
        let token_path = format!(
            "/api/v1/admin/tokens/{}",
            made.body["token"]["id"].as_str().unwrap()
        );
        assert_eq!(
            api.call(Method::DELETE, &token_path, Some(&f.alpha_admin), None)
                .await
                .status,
            StatusCode::NO_CONTENT
        );
        assert_eq!(
            api.get("/api/v1/admin/icons", &secret).await.status,
            StatusCode::UNAUTHORIZED
        );
        db.finish().await;
    }
}

#[tokio::test]
async fn the_operator_sets_a_tenants_destination_policy_and_icons_obey_it() {
    for backend in backends() {
        let db = TestDb::new(backend).await;
        let f = fixture(&db.directory).await;
        let api = Api::new(&db.directory).await;
        let path = "/api/v1/admin/tenants/alpha/policy";
        let shown = api.get(path, &f.alpha_admin).await;
        assert_eq!(shown.status, StatusCode::OK);
        assert_eq!(
            shown.body,
            json!({"allow": [], "deny": [], "max_concurrent_calls": 10, "tenant_calls_per_day": 1000, "calls_per_day": 200,
                "tenant_calls_per_month": 20000, "calls_per_month": 4000, "tenant_minutes_per_day": 6000,
                "minutes_per_day": 1200, "tenant_minutes_per_month": 120000, "minutes_per_month": 24000})
        );
        assert_eq!(
            api.get("/api/v1/admin/tenants/alpha/policy", &f.beta_admin)
                .await
                .status,
            StatusCode::NOT_FOUND,
            "another tenant's policy is invisible"
        );
        // Only the operator changes it: a tenant cannot lift its own restrictions.
        let change = json!({"allow": ["+8821"], "deny": ["+49"], "max_concurrent_calls": 4,
            "calls_per_month": 300, "minutes_per_day": 90, "tenant_minutes_per_month": 5000});
        let by_tenant = api
            .call(Method::PATCH, path, Some(&f.alpha_admin), Some(change.clone()))
            .await;
        assert_eq!(by_tenant.status, StatusCode::FORBIDDEN);
        let bad = api
            .call(
                Method::PATCH,
                path,
                Some(&f.operator),
                Some(json!({"deny": ["+49x"]})),
            )
            .await;
        assert_eq!(
            (bad.status, bad.body["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("deny"))
        );
        let changed = api
            .call(Method::PATCH, path, Some(&f.operator), Some(change))
            .await;
        assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
        assert_eq!(api.get(path, &f.alpha_admin).await.body, changed.body);
        let caps = &changed.body;
        assert_eq!(
            (
                &caps["calls_per_month"],
                &caps["minutes_per_day"],
                &caps["tenant_minutes_per_month"]
            ),
            (&json!(300), &json!(90), &json!(5000))
        );
        assert_eq!(caps["minutes_per_month"], 24000, "what was not given stays");
        let zero = api
            .call(
                Method::PATCH,
                path,
                Some(&f.operator),
                Some(json!({"minutes_per_day": 0})),
            )
            .await;
        assert_eq!(
            (zero.status, zero.body["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("minutes_per_day"))
        );
        // Germany is denied now, the allowed satellite range is not.
        let create = async |number: &str| {
            api.call(
                Method::POST,
                "/api/v1/admin/icons",
                Some(&f.alpha_admin),
                Some(json!({"number": number, "label": "x"})),
            )
            .await
        };
        let denied = create("+4930123456").await;
        assert_eq!(denied.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            denied.body["reason"]
                .as_str()
                .unwrap()
                .contains("tenant's rule for prefix +49"),
            "{}",
            denied.body
        );
        assert_eq!(create("+88212345678").await.status, StatusCode::CREATED);
        db.finish().await;
    }
}

#[tokio::test]
async fn cdrs_filter_export_and_chart() {
    for backend in backends() {
        let db = TestDb::new(backend).await;
        let f = fixture(&db.directory).await;
        let d = &db.directory;
        let api = Api::new(d).await;
        let cdr = d
            .list_cdrs(&Scope::Operator, &Default::default())
            .await
            .unwrap()
            .remove(0);
        d.end_cdr(
            &cdr.id,
            cdr.started_at + 5_000,
            offhook_directory::HangupCause::Busy,
        )
        .await
        .unwrap();

        let busy = api
            .get("/api/v1/admin/cdrs?cause=busy&icon=alpha-sales", &f.alpha_admin)
            .await;
        assert_eq!(ids(&busy), vec![f.alpha.cdr.clone()]);
        let normal = api.get("/api/v1/admin/cdrs?cause=normal", &f.alpha_admin).await;
        assert_eq!(ids(&normal), Vec::<String>::new());
        let later = api
            .get(
                &format!("/api/v1/admin/cdrs?since={}", cdr.started_at + 1),
                &f.alpha_admin,
            )
            .await;
        assert_eq!(ids(&later), Vec::<String>::new());
        let bad = api
            .get("/api/v1/admin/cdrs?since=yesterday", &f.alpha_admin)
            .await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);
        assert!(bad.body["error"].is_string(), "{}", bad.body);
        assert_eq!(
            ids(&api.get("/api/v1/admin/calls", &f.alpha_admin).await),
            Vec::<String>::new()
        );

        let csv = api.get("/api/v1/admin/cdrs.csv", &f.alpha_admin).await;
        assert!(csv.content_type.starts_with("text/csv"));
        let text = csv.body.as_str().unwrap();
        let rows: Vec<&str> = text.lines().collect();
        assert_eq!(rows.len(), 2, "{text}");
        assert!(rows[0].starts_with("id,tenant,icon,account,call_id,number,line,"));
        assert!(
            rows[1].starts_with(&format!(
                "{},alpha,alpha-sales,,call-1@alpha,5550100,alpha-line,",
                f.alpha.cdr
            )) && rows[1].ends_with(",5,0,,busy,,,"),
            "{}",
            rows[1]
        );

        let chart = api
            .get("/api/v1/admin/stats/calls-per-hour?hours=3", &f.operator)
            .await;
        let hours = chart.body.as_array().unwrap();
        assert_eq!(hours.len(), 3);
        assert_eq!(hours[2]["calls"], 1, "{}", chart.body);
        let too_far = api
            .get("/api/v1/admin/stats/calls-per-hour?hours=9999", &f.operator)
            .await;
        assert_eq!(too_far.status, StatusCode::UNPROCESSABLE_ENTITY);
        db.finish().await;
    }
}

#[tokio::test]
async fn openapi_document_describes_every_admin_route() {
    let db = TestDb::new(offhook_directory::testing::Backend::Sqlite).await;
    let api = Api::new(&db.directory).await;
    let doc = api.call(Method::GET, "/api/v1/openapi.json", None, None).await;
    assert_eq!(doc.status, StatusCode::OK);
    assert!(doc.body["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc.body["paths"].as_object().unwrap();
    for path in [
        "/api/v1/admin/tenants",
        "/api/v1/admin/tenants/{id}",
        "/api/v1/admin/accounts/{id}",
        "/api/v1/admin/icons/{id}/embed",
        "/api/v1/admin/lines",
        "/api/v1/admin/relays/{id}",
        "/api/v1/admin/cdrs",
        "/api/v1/admin/cdrs.csv",
        "/api/v1/admin/calls",
        "/api/v1/admin/stats/calls-per-hour",
        "/api/v1/admin/tokens/{id}",
        "/api/v1/admin/me",
        "/api/v1/admin/calls/{id}/hangup",
        "/api/v1/admin/lines/{id}/reset",
        "/api/v1/admin/lines/{id}/diagnostics",
        "/api/v1/admin/tenants/{id}/delete-impact",
        "/api/v1/admin/actions",
        "/api/v1/admin/audit",
        "/api/v1/admin/webhooks",
        "/api/v1/admin/webhooks/{id}/secret",
        "/api/v1/admin/deliveries",
        "/api/v1/admin/deliveries/{id}/retry",
    ] {
        assert!(paths.contains_key(path), "{path} in {:?}", paths.keys());
    }
    for (path, item) in paths {
        for (method, operation) in item.as_object().unwrap() {
            let responses = operation["responses"].as_object().unwrap();
            for status in ["401", "404", "422"] {
                assert!(
                    responses.contains_key(status),
                    "{method} {path} documents {status}"
                );
            }
        }
    }
    assert_eq!(
        doc.body["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert!(doc.body["components"]["schemas"]["Icon"]["properties"]["allowed_origins"].is_object());
    assert!(doc.body["components"]["schemas"]["Account"]["properties"]["ha1_md5"].is_null());
    db.finish().await;
}
