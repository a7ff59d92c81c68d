//! Delivery of the webhook outbox (see `offhook_directory`'s outbox): a task in
//! every `offhook web` (and `offhook demo`) that claims due deliveries with a
//! lease (so several web nodes never send one twice at once), posts each as
//! signed JSON ([`signature`]) through a client that stays out of internal
//! networks ([`client`]), and records the outcome; a failure is tried again with
//! exponential backoff ([`retry`]) until the operator's limit, then it is
//! `failed` and shown in the admin API. Delivered and failed rows are pruned after
//! `keep_days`.
//!
//! The body:
//! `{"id": DELIVERY_ID, "event": "call.ended", "occurred_at": MS, "call": RECORD}`
//! where RECORD is the call record as the admin API shows it (`/cdrs`).
//! Headers: `Offhook-Event`, `Offhook-Delivery` (repeats of one delivery carry the
//! same id: drop what you have seen) and `Offhook-Signature`.

pub mod client;
pub mod retry;
pub mod signature;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use offhook_directory::{Attempt, Directory, DueDelivery};
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

use self::client::Client;
use self::retry::RetryPolicy;

/// Deliveries claimed per round.
const BATCH: i64 = 32;
/// How often old rows are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// `[web.webhooks]`: delivery of billing hooks.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookConfig {
    /// Let webhook URLs point into private networks (loopback, RFC 1918,
    /// link-local, …): off, so that a tenant cannot make the server attack its
    /// own network. Turn on only where every tenant admin is trusted (and in tests).
    pub allow_internal_targets: bool,
    /// Pause after a first failed attempt, ms; doubles per attempt.
    pub retry_initial_ms: u64,
    /// Longest pause between attempts, ms.
    pub retry_max_ms: u64,
    /// Give a delivery up (state `failed`) when its event is this old, s.
    pub give_up_after_s: u64,
    /// How often each node looks for due deliveries, ms.
    pub poll_ms: u64,
    /// Deadline of one POST, ms.
    pub timeout_ms: u64,
    /// Delivered and failed rows are deleted after this many days.
    pub keep_days: u64,
    /// PEM file of extra CA certificates trusted for HTTPS receivers.
    pub ca_file: Option<std::path::PathBuf>,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            allow_internal_targets: false,
            retry_initial_ms: 10_000,
            retry_max_ms: 900_000,
            give_up_after_s: 3 * 24 * 3600,
            poll_ms: 1_000,
            timeout_ms: 10_000,
            keep_days: 30,
            ca_file: None,
        }
    }
}

impl WebhookConfig {
    fn retry(&self) -> RetryPolicy {
        RetryPolicy {
            initial: Duration::from_millis(self.retry_initial_ms),
            max: Duration::from_millis(self.retry_max_ms),
            give_up_after: Duration::from_secs(self.give_up_after_s),
        }
    }

    /// How long a claim lasts: a POST's deadline twice, and a margin.
    fn lease_ms(&self) -> i64 {
        i64::try_from(self.timeout_ms.saturating_mul(2).saturating_add(30_000)).unwrap_or(i64::MAX)
    }
}

/// The delivery task; stops when dropped.
#[derive(Debug)]
pub struct Worker(JoinHandle<()>);

impl Drop for Worker {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The JSON body of a delivery.
#[derive(Serialize)]
struct Payload<'a> {
    id: &'a str,
    event: &'static str,
    occurred_at: i64,
    call: &'a offhook_directory::CallRecord,
}

/// Starts delivering for `node` (a name unique among the web nodes sharing the
/// directory, used for the leases).
pub fn spawn(directory: Directory, config: WebhookConfig, node: String) -> Result<Worker, String> {
    let extra_ca = match &config.ca_file {
        Some(path) => {
            Some(std::fs::read(path).map_err(|e| format!("webhook CA file {}: {e}", path.display()))?)
        }
        None => None,
    };
    let client = Client::new(
        config.allow_internal_targets,
        Duration::from_millis(config.timeout_ms),
        extra_ca.as_deref(),
    )?;
    let sender = Arc::new(Sender {
        directory,
        client,
        retry: config.retry(),
        node,
    });
    Ok(Worker(tokio::spawn(run(sender, config))))
}

struct Sender {
    directory: Directory,
    client: Client,
    retry: RetryPolicy,
    node: String,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

async fn run(sender: Arc<Sender>, config: WebhookConfig) {
    let mut tick = tokio::time::interval(Duration::from_millis(config.poll_ms.max(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let keep_ms = i64::try_from(config.keep_days.saturating_mul(86_400_000)).unwrap_or(i64::MAX);
    let mut pruned_at = tokio::time::Instant::now();
    loop {
        tick.tick().await;
        let now = now_ms();
        let due = match sender
            .directory
            .claim_due_deliveries(&sender.node, now, now.saturating_add(config.lease_ms()), BATCH)
            .await
        {
            Ok(due) => due,
            Err(err) => {
                tracing::warn!(%err, "webhooks: cannot claim deliveries");
                continue;
            }
        };
        let sends: Vec<_> = due
            .into_iter()
            .map(|delivery| {
                let sender = Arc::clone(&sender);
                tokio::spawn(async move { sender.deliver(delivery).await })
            })
            .collect();
        for send in sends {
            let _ = send.await;
        }
        if pruned_at.elapsed() >= PRUNE_EVERY {
            pruned_at = tokio::time::Instant::now();
            match sender
                .directory
                .prune_deliveries(now.saturating_sub(keep_ms))
                .await
            {
                Ok(0) => {}
                Ok(n) => tracing::info!(deleted = n, "webhooks: old deliveries pruned"),
                Err(err) => tracing::warn!(%err, "webhooks: cannot prune deliveries"),
            }
        }
    }
}

impl Sender {
    async fn deliver(&self, due: DueDelivery) {
        let d = &due.delivery;
        let payload = Payload {
            id: &d.id,
            event: d.event.as_str(),
            occurred_at: d.created_at,
            call: &due.record,
        };
        // A struct of strings and numbers: serializing it cannot fail.
        let body = Bytes::from(serde_json::to_vec(&payload).unwrap_or_default());
        let at = now_ms();
        let headers = [
            ("offhook-event", d.event.as_str().to_owned()),
            ("offhook-delivery", d.id.clone()),
            (signature::HEADER, signature::sign(&due.secret, at / 1000, &body)),
        ];
        let result = self.client.post(&due.url, &headers, body).await;
        let done = now_ms();
        let attempt = match result {
            Ok(status) if (200..300).contains(&status) => Attempt::Delivered {
                status: i64::from(status),
            },
            Ok(status) => self.failed(d, Some(i64::from(status)), format!("HTTP {status}"), done),
            Err(err) => self.failed(d, None, err.to_string(), done),
        };
        if let Attempt::Failed { error, retry_at, .. } = &attempt {
            tracing::info!(delivery = %d.id, %error, ?retry_at, "webhooks: delivery failed");
        }
        match self
            .directory
            .record_delivery_attempt(&self.node, &d.id, done, &attempt)
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(delivery = %d.id, "webhooks: lease ran out before the answer was recorded")
            }
            Err(err) => tracing::warn!(%err, delivery = %d.id, "webhooks: cannot record an attempt"),
        }
    }

    fn failed(
        &self,
        d: &offhook_directory::Delivery,
        status: Option<i64>,
        error: String,
        now: i64,
    ) -> Attempt {
        Attempt::Failed {
            status,
            error,
            retry_at: self.retry.next_attempt(&d.id, d.attempts + 1, d.created_at, now),
        }
    }
}
