//! Publishes a process's counters into the shared directory every few seconds
//! (see `offhook_directory::NodeMetric`), so that `/metrics` of any web process
//! reports every signaling node and media relay. A failed write is logged and
//! retried at the next tick; the counters themselves live in the process.

use std::time::Duration;

use offhook_directory::Directory;
use tokio::task::JoinHandle;

/// How often a process publishes.
const EVERY: Duration = Duration::from_secs(5);

/// The publishing task; stops when dropped.
#[derive(Debug)]
pub struct Publisher(JoinHandle<()>);

impl Drop for Publisher {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Publishes `values()` as `node`'s metrics now and every [`EVERY`].
pub fn spawn(
    directory: Directory,
    node: String,
    values: impl Fn() -> Vec<(String, String, i64)> + Send + 'static,
) -> Publisher {
    Publisher(tokio::spawn(async move {
        let mut tick = tokio::time::interval(EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let now = chrono::Utc::now().timestamp_millis();
            if let Err(err) = directory.publish_node_metrics(&node, &values(), now).await {
                tracing::warn!(%err, %node, "cannot publish metrics to the directory");
            }
        }
    }))
}
