//! The click API through the real router (`oneshot`) on SQLite and PostgreSQL:
//! a call token only for an enabled, open icon, from an allowed origin, within
//! the rate limit; the token names the icon and verifies with the shared secret.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt as _;
use offhook_directory::call_tokens::verify;
use offhook_directory::testing::{TestDb, backends};
use offhook_directory::{IconUpdate, NewIcon, NewTenant, Scope};
use offhook_web::{AppState, router};
use serde_json::Value;
use tower::ServiceExt as _;

const ORIGIN: &str = "https://shop.example";

async fn setup(db: &TestDb) -> AppState {
    let d = &db.directory;
    d.create_tenant(NewTenant {
        name: "shop".into(),
        sip_domain: "shop.example".into(),
    })
    .await
    .unwrap();
    let icon = NewIcon {
        public_id: Some("shop-sales".into()),
        allowed_origins: vec![ORIGIN.into()],
        calls_per_minute: 3,
        ..NewIcon::new("shop", "5550100", "Call sales")
    };
    d.create_icon(icon).await.unwrap();
    AppState::new(d.clone(), "ws://127.0.0.1:5066".into())
        .await
        .unwrap()
}

async fn click(state: &AppState, icon: &str, origin: Option<&str>, peer: [u8; 4]) -> (StatusCode, Value) {
    let mut request = Request::post(format!("/api/v1/icons/{icon}/calls"));
    if let Some(origin) = origin {
        request = request.header("Origin", origin);
    }
    let mut request = request.body(Body::from("{}")).unwrap();
    request
        .extensions_mut()
        .insert(ConnectInfo(SocketAddr::from((peer, 40000))));
    let response = router(state.clone()).oneshot(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

#[tokio::test]
async fn grants_a_token_for_the_icon_not_a_number() {
    for backend in backends() {
        let db = TestDb::new(backend).await;
        let state = setup(&db).await;
        let (status, body) = click(&state, "shop-sales", Some(ORIGIN), [10, 0, 0, 1]).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["target"], "sip:shop-sales@shop.example");
        assert_eq!(body["ws_url"], "ws://127.0.0.1:5066");
        let token = body["token"].as_str().unwrap();
        assert!(!token.contains("5550100"), "the token never carries the number");
        let grant = verify(
            &state.call_token_secret,
            token,
            chrono::Utc::now().timestamp_millis(),
        )
        .unwrap();
        assert_eq!(grant.icon, "shop-sales");
        db.finish().await;
    }
}

#[tokio::test]
async fn refuses_with_clear_errors() {
    for backend in backends() {
        let db = TestDb::new(backend).await;
        let state = setup(&db).await;
        let (status, body) = click(&state, "shop-sales", Some("https://evil.example"), [10, 0, 0, 1]).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains("not allowed from this page"),
            "{body}"
        );
        let (status, _) = click(&state, "shop-sales", None, [10, 0, 0, 1]).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, body) = click(&state, "nope", Some(ORIGIN), [10, 0, 0, 1]).await;
        assert_eq!(
            (status, body["error"].as_str().is_some()),
            (StatusCode::NOT_FOUND, true)
        );

        let d = &db.directory;
        // Open only on a day that is not today (UTC): closed now, whatever the time.
        let other_day = if chrono::Datelike::weekday(&chrono::Utc::now()) == chrono::Weekday::Mon {
            "tue"
        } else {
            "mon"
        };
        let hours = format!("{other_day} 09:00-17:00");
        let closed = IconUpdate {
            opening_hours: Some(hours),
            ..Default::default()
        };
        d.update_icon(&Scope::Operator, "shop-sales", closed)
            .await
            .unwrap();
        let (status, body) = click(&state, "shop-sales", Some(ORIGIN), [10, 0, 0, 1]).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(
            body["error"].as_str().unwrap().starts_with("Closed now"),
            "{body}"
        );
        let reopen = IconUpdate {
            opening_hours: Some(String::new()),
            enabled: Some(false),
            ..Default::default()
        };
        d.update_icon(&Scope::Operator, "shop-sales", reopen)
            .await
            .unwrap();
        let (status, body) = click(&state, "shop-sales", Some(ORIGIN), [10, 0, 0, 1]).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(body["error"], "This call icon is disabled.");
        db.finish().await;
    }
}

#[tokio::test]
async fn rate_limit_per_icon() {
    for backend in backends() {
        let db = TestDb::new(backend).await;
        let state = setup(&db).await;
        for n in 0..3u8 {
            let (status, _) = click(&state, "shop-sales", Some(ORIGIN), [10, 0, 0, n]).await;
            assert_eq!(status, StatusCode::CREATED);
        }
        let (status, body) = click(&state, "shop-sales", Some(ORIGIN), [10, 0, 0, 9]).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert!(body["error"].as_str().unwrap().contains("try again in"), "{body}");
        db.finish().await;
    }
}

#[tokio::test]
async fn serves_the_widget_and_icon_info() {
    let db = TestDb::new(backends()[0]).await;
    let state = setup(&db).await;
    let response = router(state.clone())
        .oneshot(Request::get("/widget.js").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let js = response.into_body().collect().await.unwrap().to_bytes();
    let js = String::from_utf8_lossy(&js);
    assert!(js.contains("OffhookSip") && js.contains("\"token\":\"X-Offhook-Token\""));
    let response = router(state)
        .oneshot(
            Request::get("/api/v1/icons/shop-sales")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let info: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(info["label"], "Call sales");
    assert!(info.get("number").is_none(), "the number is not public");
    db.finish().await;
}

#[tokio::test]
async fn metrics_count_calls_lines_and_node_counters() {
    for backend in backends() {
        let db = TestDb::new(backend).await;
        let state = setup(&db).await;
        let d = &db.directory;
        let tenant = d.tenant("shop").await.unwrap();
        let icon = d.icon(&Scope::Operator, "shop-sales").await.unwrap();
        let new_cdr = |call_id: &str| offhook_directory::NewCdr {
            tenant_id: tenant.id.clone(),
            icon_id: Some(icon.id.clone()),
            account_id: None,
            call_id: call_id.into(),
            number: "5550100".into(),
            line_id: None,
            started_at: 1,
        };
        let ended = d.start_cdr(new_cdr("c1")).await.unwrap();
        d.end_cdr(&ended.id, 2, offhook_directory::HangupCause::Busy)
            .await
            .unwrap();
        d.start_cdr(new_cdr("c2")).await.unwrap();
        let line = offhook_directory::NewLine {
            name: "line-1".into(),
            relay: "relay-1".into(),
            tenant: None,
            device_path: "emulated".into(),
            kind: offhook_directory::LineKind::Emulated,
        };
        d.create_line(line).await.unwrap();
        let now = chrono::Utc::now().timestamp_millis();
        let sip = |method: &str, n| {
            (
                "offhook_sip_requests_received_total".to_owned(),
                format!("method=\"{method}\""),
                n,
            )
        };
        d.publish_node_metrics("node-1", &[sip("INVITE", 3), sip("BYE", 2)], now)
            .await
            .unwrap();
        d.publish_node_metrics("gone-node", &[sip("INVITE", 99)], now - 60_000)
            .await
            .unwrap();
        let depth = ("offhook_jitter_depth_ms".to_owned(), String::new(), 40);
        d.publish_node_metrics("relay-1", &[depth], now).await.unwrap();
        let ready = router(state.clone())
            .oneshot(Request::get("/readyz").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(
            ready.status(),
            StatusCode::SERVICE_UNAVAILABLE,
            "no relay registered a line"
        );
        let response = router(state)
            .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&body);
        assert!(text.contains("offhook_calls{outcome=\"busy\"} 1"), "{text}");
        assert!(text.contains("offhook_calls{outcome=\"active\"} 1"), "{text}");
        assert!(text.contains("offhook_lines{state=\"idle\"} 1"), "{text}");
        assert!(text.contains("offhook_active_calls 1"), "{text}");
        assert!(text.contains("offhook_registered_lines 0"), "{text}");
        assert!(
            text.contains("# TYPE offhook_sip_requests_received_total counter"),
            "{text}"
        );
        assert!(
            text.contains("offhook_sip_requests_received_total{node=\"node-1\",method=\"INVITE\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("offhook_jitter_depth_ms{node=\"relay-1\"} 40"),
            "{text}"
        );
        assert!(text.contains("# TYPE offhook_jitter_depth_ms gauge"), "{text}");
        assert!(!text.contains("gone-node"), "stale nodes are left out: {text}");
        assert_eq!(
            text.matches("# TYPE offhook_sip_requests_received_total").count(),
            1
        );
        db.finish().await;
    }
}
