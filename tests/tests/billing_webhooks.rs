//! Billing webhooks end to end, with the real binary: `offhook demo` and a second
//! `offhook web` share one directory (PostgreSQL when it is there), so two web
//! nodes deliver from one outbox; a tenant's webhook made with `offhook directory
//! webhook create` points at a receiver here that answers 500 for the first
//! seconds, then 200. Real calls through signaling and the relay (three to a busy
//! line, one answered by the echo and hung up) end in CDRs whose outbox rows are
//! written in the same transaction; the receiver must get each call's record
//! exactly once with a 2xx, signed with the webhook's secret, and the outbox must
//! say delivered with every attempt counted.
#![allow(
    clippy::disallowed_methods,
    reason = "an edge: it reads the real clock and the OS generator"
)]

use std::time::{Duration, Instant};

use offhook_directory::testing::backends;
use offhook_tests::ua::{TestUa, click};
use offhook_tests::webhook_receiver::Receiver;
use offhook_tests::{ANY_PORTS, Offhook, STEP_TIMEOUT};
use serde_json::Value;
use tokio::net::UdpSocket;

const FAST_WEBHOOKS: &[(&str, &str)] = &[
    ("OFFHOOK_WEB__WEBHOOKS__ALLOW_INTERNAL_TARGETS", "true"),
    ("OFFHOOK_WEB__WEBHOOKS__RETRY_INITIAL_MS", "300"),
    ("OFFHOOK_WEB__WEBHOOKS__RETRY_MAX_MS", "1000"),
    ("OFFHOOK_WEB__WEBHOOKS__POLL_MS", "100"),
];

#[tokio::test]
async fn two_web_nodes_deliver_every_call_record_exactly_once_after_the_receiver_recovers() {
    let backend = *backends().last().unwrap();
    let offhook = Offhook::new(backend).await;
    let demo = offhook.demo(FAST_WEBHOOKS).await;
    let envs = [ANY_PORTS, FAST_WEBHOOKS].concat();
    let mut second_web = offhook.spawn(&["web"], &envs);
    second_web.wait_for_web_address().await;

    let (receiver, address) = Receiver::start(Duration::from_secs(4)).await;
    let url = format!("http://{address}/hook");
    let made = offhook
        .command(&[
            "directory",
            "webhook",
            "create",
            "--tenant",
            "demo",
            "--url",
            &url,
        ])
        .envs(FAST_WEBHOOKS.iter().copied())
        .output()
        .await
        .unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    receiver.set_secret(&String::from_utf8(made.stdout).unwrap());

    // Real calls: busy three times, then the echo, answered and hung up.
    let mut ua = TestUa::bind().await;
    let rtp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut placed = Vec::new();
    for icon in ["demo-busy", "demo-busy", "demo-busy", "demo-echo"] {
        // After a call the line may still be going on hook (503): try again then.
        for _ in 0..50 {
            let grant = click(&demo.web, icon).await;
            let call = ua.call(demo.sip_udp, &grant, rtp.local_addr().unwrap()).await;
            if call.status == 503 {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            if call.status == 200 {
                tokio::time::sleep(Duration::from_millis(1500)).await;
                assert_eq!(ua.hang_up(call.session).await.status, 200);
            } else {
                assert_eq!(call.status, 486, "{icon}");
            }
            placed.push(call.call_id);
            break;
        }
    }
    assert_eq!(placed.len(), 4, "every call placed: {placed:?}");

    // Every record arrives, once the receiver answers 200.
    let deadline = Instant::now() + STEP_TIMEOUT * 2;
    while receiver.accepted() < 4 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let deliveries = offhook
        .command(&["directory", "webhook", "deliveries", "--json"])
        .output()
        .await
        .unwrap();
    let deliveries: Value = serde_json::from_slice(&deliveries.stdout).unwrap();
    let deliveries = deliveries.as_array().unwrap().clone();
    assert!(demo.running.stop().await.success());
    assert!(second_web.stop().await.success());

    // What it saw, taken out: no lock is held from here on.
    let seen = receiver.take();
    assert_eq!(seen.bad_signatures, 0);
    assert_eq!(seen.accepted.len(), 4, "{:?}", seen.requests);
    for id in seen.accepted.keys() {
        let ok = seen.requests.iter().filter(|(i, s)| i == id && *s == 200).count();
        assert_eq!(ok, 1, "{id} accepted exactly once: {:?}", seen.requests);
    }
    assert!(
        seen.requests.iter().any(|(_, status)| *status == 500),
        "the receiver was down for a while"
    );
    assert_eq!(deliveries.len(), 4, "{deliveries:?}");
    assert!(
        deliveries.iter().all(|d| d["state"] == "delivered"),
        "{deliveries:?}"
    );
    let attempts: i64 = deliveries.iter().map(|d| d["attempts"].as_i64().unwrap()).sum();
    assert_eq!(attempts, seen.requests.len() as i64, "every attempt counted");
    let calls: Vec<&Value> = seen.accepted.values().map(|body| &body["call"]).collect();
    for call_id in &placed {
        let call = calls.iter().find(|c| c["call_id"] == call_id.as_str()).unwrap();
        assert_eq!(call["tenant_name"], "demo");
        if call["icon_public_id"] == "demo-echo" {
            assert_eq!(call["answer_source"], "ringback-stopped", "{call}");
            assert_eq!(call["hangup_cause"], "normal");
            assert!(call["billable_s"].as_i64().unwrap() >= 1, "{call}");
        } else {
            assert_eq!(
                (&call["hangup_cause"], &call["billable_s"]),
                (&"busy".into(), &0.into()),
                "{call}"
            );
        }
    }
    offhook.db.finish().await;
}
