//! The click API through the real router (`oneshot`) on SQLite and PostgreSQL:
//! a call token only for an enabled, open icon, from an allowed origin, within
//! the rate limit; the token names the icon and verifies with the shared secret.
//! Refusals (and the preflight) carry CORS so that the widget on any page reads
//! why, with a code; a grant carries it only for an allowed origin. The icon
//! info says what the widget shows before a click. The start page lists one
//! tenant's icons only.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt as _;
use offhook_directory::call_tokens::verify;
use offhook_directory::testing::{Backend, TestDb, backends};
use offhook_directory::{IconUpdate, NewIcon, NewTenant, Scope};
use offhook_web::{AppState, TrustedProxies, router};
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
async fn a_grant_carries_turn_credentials_that_expire_with_the_ttl() {
    for backend in backends() {
        let db = TestDb::new(backend).await;
        let state = setup(&db).await.with_ice(&offhook_web::IceConfig {
            stun: vec!["stun:turn.shop.example:3478".into()],
            turn: vec!["turn:turn.shop.example:3478?transport=tcp".into()],
            turn_secret: Some("coturn-shared-secret".into()),
            credential_ttl_s: 600,
        });
        let before = chrono::Utc::now().timestamp();
        let (status, body) = click(&state, "shop-sales", Some(ORIGIN), [10, 0, 0, 1]).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let servers = body["ice_servers"].as_array().unwrap();
        assert_eq!(servers.len(), 2, "{body}");
        assert_eq!(servers[0]["urls"][0], "stun:turn.shop.example:3478");
        let turn = &servers[1];
        assert_eq!(turn["urls"][0], "turn:turn.shop.example:3478?transport=tcp");
        let username = turn["username"].as_str().unwrap();
        let (expiry, id) = username.split_once(':').unwrap();
        let expiry: i64 = expiry.parse().unwrap();
        assert!((before + 600..=chrono::Utc::now().timestamp() + 600).contains(&expiry));
        assert_eq!(id, "shop-sales");
        let secret = offhook_vocab::Secret::new("coturn-shared-secret");
        let (_, password) = offhook_web::ice::turn_credentials(&secret, expiry, id);
        assert_eq!(turn["credential"], password.as_str());
        db.finish().await;
    }
}

#[tokio::test]
async fn a_grant_names_the_media_profile_the_widget_asks_for() {
    let db = TestDb::new(Backend::Sqlite).await;
    let state = setup(&db).await;
    let (_, body) = click(&state, "shop-sales", Some(ORIGIN), [10, 0, 0, 1]).await;
    assert_eq!(body["link_profile"], "auto", "{body}");
    let state = state.with_link_profile(offhook_web::LinkProfile::Narrow);
    let (status, body) = click(&state, "shop-sales", Some(ORIGIN), [10, 0, 0, 2]).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["link_profile"], "narrow", "{body}");
    db.finish().await;
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
async fn one_client_cannot_use_up_an_icons_clicks_for_everyone() {
    for backend in backends() {
        let db = TestDb::new(backend).await;
        let state = setup(&db).await;
        // 3 a minute for the icon: one address gets one of them, however often it clicks.
        let flooder = [203, 0, 113, 7];
        let mut granted = 0;
        for _ in 0..10 {
            let (status, _) = click(&state, "shop-sales", Some(ORIGIN), flooder).await;
            granted += usize::from(status == StatusCode::CREATED);
        }
        assert_eq!(granted, 1, "the flooder's share of the icon's minute");
        for n in 1..=2u8 {
            let (status, body) = click(&state, "shop-sales", Some(ORIGIN), [198, 51, 100, n]).await;
            assert_eq!(status, StatusCode::CREATED, "visitor {n}: {body}");
        }
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
    assert_eq!(
        response.headers()["timing-allow-origin"],
        "*",
        "any page's widget may time its own download"
    );
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

/// A request through the router; status, headers, JSON body.
async fn send(state: &AppState, request: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Value) {
    let mut request = request;
    request
        .extensions_mut()
        .insert(ConnectInfo(SocketAddr::from(([10, 0, 0, 7], 40000))));
    let response = router(state.clone()).oneshot(request).await.unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        headers,
        serde_json::from_slice(&body).unwrap_or(Value::Null),
    )
}

fn allow_origin(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get("access-control-allow-origin")
        .and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn refusals_reach_the_widget_on_any_page_and_grants_only_allowed_ones() {
    for backend in backends() {
        let db = TestDb::new(backend).await;
        let state = setup(&db).await;
        let post = |icon: &str, origin: &str| {
            Request::post(format!("/api/v1/icons/{icon}/calls"))
                .header("Origin", origin)
                .body(Body::empty())
                .unwrap()
        };
        let (status, headers, body) = send(&state, post("shop-sales", ORIGIN)).await;
        assert_eq!(status, StatusCode::CREATED);
        assert_eq!(allow_origin(&headers), Some(ORIGIN));
        assert!(body["token"].is_string());
        let (status, headers, body) = send(&state, post("shop-sales", "https://evil.example")).await;
        assert_eq!(
            (status, allow_origin(&headers)),
            (StatusCode::FORBIDDEN, Some("*"))
        );
        assert_eq!(body["code"], "origin-not-allowed");
        assert!(body.get("token").is_none());
        let (status, headers, body) = send(&state, post("no-such-icon", "https://evil.example")).await;
        assert_eq!(
            (status, allow_origin(&headers)),
            (StatusCode::NOT_FOUND, Some("*"))
        );
        assert_eq!(
            body,
            serde_json::json!({"error": "There is no call icon with this id.", "code": "unknown-icon"})
        );
        // The preflight answers every origin: the POST is what gets refused.
        let preflight = Request::builder()
            .method("OPTIONS")
            .uri("/api/v1/icons/shop-sales/calls")
            .header("Origin", "https://evil.example")
            .header("Access-Control-Request-Method", "POST")
            .body(Body::empty())
            .unwrap();
        let (status, headers, _) = send(&state, preflight).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        assert_eq!(allow_origin(&headers), Some("https://evil.example"));
        assert_eq!(headers["access-control-allow-methods"], "POST");
        db.finish().await;
    }
}

#[tokio::test]
async fn icon_info_tells_the_widget_what_to_show_before_a_click() {
    for backend in backends() {
        let db = TestDb::new(backend).await;
        let state = setup(&db).await;
        let d = &db.directory;
        let info = |icon: &str, header: Option<(&str, &str)>| {
            let mut request = Request::get(format!("/api/v1/icons/{icon}"));
            if let Some((name, value)) = header {
                request = request.header(name, value);
            }
            request.body(Body::empty()).unwrap()
        };
        let (_, headers, body) = send(&state, info("shop-sales", Some(("Origin", ORIGIN)))).await;
        assert_eq!(allow_origin(&headers), Some("*"));
        assert_eq!(
            (&body["status"], &body["allowed_here"]),
            (&"ready".into(), &true.into()),
            "{body}"
        );
        assert_eq!(body["hours"], Value::Null, "always open");
        let (_, _, body) = send(
            &state,
            info("shop-sales", Some(("Referer", "https://evil.example/page"))),
        )
        .await;
        assert_eq!(
            (&body["status"], &body["allowed_here"]),
            (&"not-allowed".into(), &false.into())
        );
        let (_, _, body) = send(&state, info("shop-sales", None)).await;
        assert_eq!(
            (&body["status"], &body["allowed_here"]),
            (&"ready".into(), &Value::Null)
        );
        // Closed: open on another day only, in Berlin; the next opening is in the coming week.
        let other_day = if chrono::Datelike::weekday(&chrono::Utc::now()) == chrono::Weekday::Mon {
            "tue"
        } else {
            "mon"
        };
        let closed = IconUpdate {
            opening_hours: Some(format!("{other_day} 09:00-12:00 13:00-17:00")),
            timezone: Some("Europe/Berlin".into()),
            ..Default::default()
        };
        d.update_icon(&Scope::Operator, "shop-sales", closed)
            .await
            .unwrap();
        let (_, _, body) = send(&state, info("shop-sales", Some(("Origin", ORIGIN)))).await;
        assert_eq!(
            (&body["status"], &body["open"]),
            (&"closed".into(), &false.into()),
            "{body}"
        );
        assert_eq!(body["timezone"], "Europe/Berlin");
        let day = if other_day == "mon" { 0 } else { 1 };
        assert_eq!(
            body["hours"][day],
            serde_json::json!([["09:00", "12:00"], ["13:00", "17:00"]])
        );
        let next = body["next_open_at"].as_i64().unwrap();
        let now = chrono::Utc::now().timestamp_millis();
        assert!(next > now && next < now + 8 * 86_400_000, "{body}");
        let disabled = IconUpdate {
            enabled: Some(false),
            ..Default::default()
        };
        d.update_icon(&Scope::Operator, "shop-sales", disabled)
            .await
            .unwrap();
        let (_, _, body) = send(
            &state,
            info("shop-sales", Some(("Origin", "https://evil.example"))),
        )
        .await;
        assert_eq!(body["status"], "disabled", "disabled first");
        let (status, headers, body) = send(&state, info("no-such-icon", None)).await;
        assert_eq!(
            (status, allow_origin(&headers)),
            (StatusCode::NOT_FOUND, Some("*"))
        );
        assert_eq!(body["code"], "unknown-icon");
        db.finish().await;
    }
}

#[tokio::test]
async fn the_start_page_lists_one_tenants_icons_only() {
    let db = TestDb::new(backends()[0]).await;
    let state = setup(&db).await;
    let d = &db.directory;
    d.create_tenant(NewTenant {
        name: "demo".into(),
        sip_domain: "demo.example".into(),
    })
    .await
    .unwrap();
    for (id, label) in [("demo-echo", "Call the echo"), ("demo-busy", "A busy line")] {
        d.create_icon(NewIcon {
            public_id: Some(id.into()),
            ..NewIcon::new("demo", "5550100", label)
        })
        .await
        .unwrap();
    }
    let page = |state: AppState| async move {
        let response = router(state)
            .oneshot(Request::get("/").body(Body::empty()).unwrap())
            .await
            .unwrap();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8_lossy(&body).into_owned()
    };
    let none = page(state.clone()).await;
    assert!(!none.contains("data-icon"), "no tenant named: no icon listed");
    assert!(none.contains("name=\"viewport\""));
    let demo = page(state.with_start_page_tenant(Some("demo".into()))).await;
    let (echo, busy) = (demo.find("demo-echo").unwrap(), demo.find("demo-busy").unwrap());
    assert!(echo < busy, "the echo first");
    assert!(
        !demo.contains("shop-sales"),
        "another tenant's icon is never listed"
    );
    db.finish().await;
}

/// One click over a real TCP connection to `address`, with these extra headers; the status.
async fn click_over_tcp(address: SocketAddr, extra: &str) -> u16 {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let request = format!(
        "POST /api/v1/icons/shop-sales/calls HTTP/1.1\r\nHost: shop.example\r\nOrigin: {ORIGIN}\r\n{extra}\
         Content-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let text = String::from_utf8_lossy(&response);
    let status = text.split(' ').nth(1).unwrap_or_default();
    status.parse().unwrap_or_else(|_| panic!("no status in {text}"))
}

/// The web server on a loopback port with `state`; stops when the sender drops.
async fn serve_on_loopback(state: AppState) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(offhook_web::serve(listener, state, async move {
        let _ = stopped.await;
    }));
    (address, stop)
}

#[tokio::test]
async fn forwarded_for_counts_only_from_a_trusted_proxy() {
    let db = TestDb::new(offhook_directory::testing::Backend::Sqlite).await;
    // The icon takes 3 clicks a minute, one address 1 of them.
    let state = setup(&db).await;
    // Nobody trusted: a visitor naming a new address in every header gets no fresh budget.
    let (address, stop) = serve_on_loopback(state.clone()).await;
    assert_eq!(
        click_over_tcp(address, "X-Forwarded-For: 198.51.100.1\r\n").await,
        201
    );
    for forged in [
        "X-Forwarded-For: 198.51.100.2\r\n",
        "Forwarded: for=198.51.100.3\r\n",
        "",
    ] {
        assert_eq!(click_over_tcp(address, forged).await, 429, "{forged}");
    }
    drop(stop);
    // Loopback is the trusted proxy: each visitor it names has its own share.
    let proxies = TrustedProxies::new(vec!["127.0.0.0/8".parse().unwrap()]);
    let trusting = AppState::new(db.directory.clone(), "ws://127.0.0.1:5066".into())
        .await
        .unwrap()
        .with_trusted_proxies(proxies);
    let (address, stop) = serve_on_loopback(trusting).await;
    let a = "X-Forwarded-For: 198.51.100.1\r\n";
    assert_eq!(click_over_tcp(address, a).await, 201);
    assert_eq!(click_over_tcp(address, a).await, 429, "the same visitor again");
    // The visitor forges the left-most entry; the proxy appended the real one.
    let forged_left = "X-Forwarded-For: 198.51.100.9, 198.51.100.1\r\n";
    assert_eq!(click_over_tcp(address, forged_left).await, 429, "still visitor A");
    assert_eq!(
        click_over_tcp(address, "Forwarded: for=198.51.100.2\r\n").await,
        201
    );
    assert_eq!(
        click_over_tcp(address, "X-Forwarded-For: 198.51.100.3\r\n").await,
        201
    );
    drop(stop);
    db.finish().await;
}
