//! Counters that each process (signaling node, media relay) publishes into the
//! directory every few seconds, so that `/metrics` of any web process reports
//! every node sharing the directory: SIP messages by method and response class,
//! RTP packets, late and lost packets, jitter buffer depth. A row is one counter
//! of one node; a snapshot replaces the node's previous values.

use serde::Serialize;
use sqlx::FromRow;

use crate::db::Directory;
use crate::error::Result;

/// One published value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, FromRow)]
pub struct NodeMetric {
    /// The process that published it (`node-1`, `demo-relay`).
    pub node: String,
    /// Metric name, `offhook_…`.
    pub name: String,
    /// Prometheus label pairs without braces (`method="INVITE"`), or empty.
    pub labels: String,
    /// The value.
    pub value: i64,
    /// When it was published, Unix ms.
    pub updated_at: i64,
}

impl Directory {
    /// Replaces `node`'s published values with `values` (name, labels, value) at `at`.
    pub async fn publish_node_metrics(
        &self,
        node: &str,
        values: &[(String, String, i64)],
        at: i64,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM node_metrics WHERE node = $1")
            .bind(node)
            .execute(&mut *tx)
            .await?;
        for (name, labels, value) in values {
            sqlx::query(
                "INSERT INTO node_metrics (node, name, labels, value, updated_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(node)
            .bind(name)
            .bind(labels)
            .bind(*value)
            .bind(at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Every value published at or after `since` (Unix ms), by name, node and labels.
    pub async fn node_metrics(&self, since: i64) -> Result<Vec<NodeMetric>> {
        Ok(sqlx::query_as(
            "SELECT node, name, labels, value, updated_at FROM node_metrics WHERE updated_at >= $1 \
             ORDER BY name, node, labels",
        )
        .bind(since)
        .fetch_all(&self.pool)
        .await?)
    }
}
