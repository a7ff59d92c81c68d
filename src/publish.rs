//! Publishes a process's counters into the shared directory every few seconds
//! (see `offhook_directory::NodeMetric`), so that `/metrics` of any web process
//! reports every signaling node and media relay. A failed write is logged and
//! retried at the next tick; the counters themselves live in the process.

use std::future::Future;
use std::time::Duration;

use offhook_directory::{Directory, LineState};
use tokio::task::JoinHandle;

/// How often a process publishes.
const EVERY: Duration = Duration::from_secs(5);

/// The publishing task; stops when dropped.
#[derive(Debug)]
pub(crate) struct Publisher(JoinHandle<()>);

impl Drop for Publisher {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs `tick` now and every [`EVERY`] until the publisher is dropped.
fn every<F, Fut>(mut tick: F) -> Publisher
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    Publisher(tokio::spawn(async move {
        let mut interval = tokio::time::interval(EVERY);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            tick().await;
        }
    }))
}

/// Publishes `values()` as `node`'s metrics now and every [`EVERY`].
pub(crate) fn spawn(
    directory: Directory,
    node: String,
    values: impl Fn() -> Vec<(String, String, i64)> + Send + 'static,
) -> Publisher {
    every(move || {
        let (directory, node, values) = (directory.clone(), node.clone(), values());
        async move {
            let now = chrono::Utc::now().timestamp_millis();
            if let Err(err) = directory.publish_node_metrics(&node, &values, now).await {
                tracing::warn!(%err, %node, "cannot publish metrics to the directory");
            }
        }
    })
}

/// Mirrors what `relay`'s modems say of its lines into the directory now and
/// every [`EVERY`]: a faulty one goes to `fault` with why, a working one back
/// to `idle`, where no call holds it ([`Directory::mirror_relay_line`]).
pub(crate) fn mirror_lines(
    directory: Directory,
    relay: String,
    lines: impl Fn() -> Vec<(String, LineState, Option<String>)> + Send + 'static,
) -> Publisher {
    every(move || {
        let (directory, relay, lines) = (directory.clone(), relay.clone(), lines());
        async move {
            let now = chrono::Utc::now().timestamp_millis();
            for (line, state, why) in lines {
                let fault = match state {
                    LineState::Fault => Some(why.unwrap_or_else(|| "the modem is faulty".to_owned())),
                    LineState::Idle => None,
                    _ => continue,
                };
                match directory
                    .mirror_relay_line(&relay, &line, fault.as_deref(), now)
                    .await
                {
                    Ok(true) => {
                        tracing::info!(%line, fault = fault.as_deref().unwrap_or(""), "line state written to the directory")
                    }
                    Ok(false) => {}
                    Err(err) => tracing::warn!(%err, %line, "cannot write the line's state to the directory"),
                }
            }
        }
    })
}
