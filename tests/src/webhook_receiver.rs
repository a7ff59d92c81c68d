//! A billing system's webhook receiver for the tests: a real HTTP server on
//! 127.0.0.1 (axum) that checks each delivery's signature the way the README
//! tells receivers to (`offhook_web::webhook_delivery::signature::verify`),
//! answers 500 until a given instant ("down for a while"), then 200, and keeps
//! what it saw.
#![allow(
    clippy::disallowed_methods,
    reason = "an edge: it reads the real clock and the OS generator"
)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use offhook_web::webhook_delivery::signature;
use serde_json::Value;

/// What the receiver saw.
#[derive(Debug, Default)]
pub struct Seen {
    /// Every request: its `Offhook-Delivery` id and the status answered.
    pub requests: Vec<(String, u16)>,
    /// The bodies it accepted (200), by delivery id.
    pub accepted: HashMap<String, Value>,
    /// Requests whose signature did not verify (answered 401).
    pub bad_signatures: usize,
}

/// The receiver; its secret is set once the webhook is made.
#[derive(Debug)]
pub struct Receiver {
    seen: Mutex<Seen>,
    secret: Mutex<String>,
    failing_until: Instant,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Plain data: a panicking handler cannot leave it half-changed.
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl Receiver {
    /// Starts one that answers 500 for `failing_for`, then 200; and its address.
    ///
    /// # Panics
    /// When it cannot listen.
    pub async fn start(failing_for: Duration) -> (Arc<Self>, SocketAddr) {
        let receiver = Arc::new(Self {
            seen: Mutex::default(),
            secret: Mutex::default(),
            failing_until: Instant::now() + failing_for,
        });
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(hook))
            .with_state(Arc::clone(&receiver));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("listen");
        let address = listener.local_addr().expect("its address");
        tokio::spawn(async move { axum::serve(listener, app).await });
        (receiver, address)
    }

    /// The webhook's secret, which signatures must verify with.
    pub fn set_secret(&self, secret: &str) {
        *lock(&self.secret) = secret.trim().to_owned();
    }

    /// How many deliveries it accepted so far.
    pub fn accepted(&self) -> usize {
        lock(&self.seen).accepted.len()
    }

    /// What it saw, taken out (so no lock is held while a test looks at it).
    pub fn take(&self) -> Seen {
        std::mem::take(&mut *lock(&self.seen))
    }
}

async fn hook(State(receiver): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let id = headers
        .get("offhook-delivery")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let signed = headers
        .get(signature::HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let secret = lock(&receiver.secret).clone();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let mut seen = lock(&receiver.seen);
    let status = if !signature::verify(&secret, signed, &body, now) {
        seen.bad_signatures += 1;
        StatusCode::UNAUTHORIZED
    } else if Instant::now() < receiver.failing_until {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        seen.accepted
            .insert(id.clone(), serde_json::from_slice(&body).unwrap_or(Value::Null));
        StatusCode::OK
    };
    seen.requests.push((id, status.as_u16()));
    status
}
