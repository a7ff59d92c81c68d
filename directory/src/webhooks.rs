//! Webhooks: where a tenant's billing system wants to be told about calls (a URL,
//! the events, a secret that signs each delivery). The secret is made here,
//! returned once (on creation and rotation) and never listed. A URL that points
//! into the server's own networks is refused unless the operator allows it (see
//! [`crate::validate::webhook_url`]); the web nodes check again where the name
//! resolves when they deliver.

use serde::{Deserialize, Serialize};
use sqlx::{FromRow, Row, any::AnyRow};

use crate::db::{Directory, Scope};
use crate::error::{DirectoryError, Result};
use crate::ids::{new_id, now_ms};
use crate::outbox::WebhookEvent;
use crate::validate;

/// Webhooks one tenant may have.
pub const MAX_WEBHOOKS_PER_TENANT: i64 = 10;

/// Prefix of every webhook secret.
const SECRET_PREFIX: &str = "whsec_";

/// A webhook (its secret is never part of it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Webhook {
    /// Generated id (`whk_…`).
    pub id: String,
    /// The tenant whose calls it reports.
    pub tenant_id: String,
    /// Where deliveries are posted.
    pub url: String,
    /// What it is for, in the tenant's words.
    pub description: String,
    /// The events it is sent.
    pub events: Vec<WebhookEvent>,
    /// Disabled webhooks get no new deliveries.
    pub enabled: bool,
    /// Creation time, Unix ms.
    pub created_at: i64,
}

impl FromRow<'_, AnyRow> for Webhook {
    fn from_row(row: &AnyRow) -> sqlx::Result<Self> {
        let mut events = Vec::new();
        for event in WebhookEvent::ALL {
            if row.try_get::<i64, _>(event.flag_column())? != 0 {
                events.push(event);
            }
        }
        Ok(Self {
            id: row.try_get("id")?,
            tenant_id: row.try_get("tenant_id")?,
            url: row.try_get("url")?,
            description: row.try_get("description")?,
            events,
            enabled: row.try_get::<i64, _>("enabled")? != 0,
            created_at: row.try_get("created_at")?,
        })
    }
}

/// Input for [`Directory::create_webhook`].
#[derive(Debug, Clone)]
pub struct NewWebhook {
    /// Tenant name or id.
    pub tenant: String,
    /// Where to post.
    pub url: String,
    /// What it is for.
    pub description: String,
    /// The events (at least one).
    pub events: Vec<WebhookEvent>,
}

/// Changes for [`Directory::update_webhook`]; `None` keeps the current value.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookUpdate {
    /// New URL.
    pub url: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New events (at least one).
    pub events: Option<Vec<WebhookEvent>>,
    /// Enable or disable.
    pub enabled: Option<bool>,
}

fn fresh_secret() -> String {
    format!("{SECRET_PREFIX}{}", hex::encode(crate::ids::random_bytes::<32>()))
}

fn events(events: &[WebhookEvent]) -> Result<[i64; 3]> {
    if events.is_empty() {
        return Err(DirectoryError::invalid("events", "name at least one event"));
    }
    Ok(WebhookEvent::ALL.map(|e| i64::from(events.contains(&e))))
}

fn description(text: &str) -> Result<String> {
    if text.is_empty() {
        return Ok(String::new());
    }
    validate::label("description", text)
}

impl Directory {
    /// Makes a webhook; returns it with its secret (not shown again).
    /// `allow_internal` lets the URL point into private networks (operator setting).
    pub async fn create_webhook(&self, new: NewWebhook, allow_internal: bool) -> Result<(Webhook, String)> {
        let tenant = self.tenant(&new.tenant).await?;
        let url = validate::webhook_url(&new.url, allow_internal)?;
        let flags = events(&new.events)?;
        let webhook = Webhook {
            id: new_id("whk"),
            tenant_id: tenant.id,
            url,
            description: description(&new.description)?,
            events: WebhookEvent::ALL
                .into_iter()
                .filter(|e| new.events.contains(e))
                .collect(),
            enabled: true,
            created_at: now_ms(),
        };
        let secret = fresh_secret();
        let mut tx = self.begin_write().await?;
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM webhooks WHERE tenant_id = $1")
            .bind(&webhook.tenant_id)
            .fetch_one(&mut *tx)
            .await?;
        if count >= MAX_WEBHOOKS_PER_TENANT {
            return Err(DirectoryError::Conflict(format!(
                "tenant '{}' has {count} webhooks, the most allowed; delete one first",
                tenant.name
            )));
        }
        sqlx::query(
            "INSERT INTO webhooks (id, tenant_id, url, secret, description, on_call_start, on_call_answer, \
             on_call_end, enabled, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1, $9)",
        )
        .bind(&webhook.id)
        .bind(&webhook.tenant_id)
        .bind(&webhook.url)
        .bind(&secret)
        .bind(&webhook.description)
        .bind(flags[0])
        .bind(flags[1])
        .bind(flags[2])
        .bind(webhook.created_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok((webhook, secret))
    }

    /// The webhooks visible in `scope`.
    pub async fn list_webhooks(&self, scope: &Scope) -> Result<Vec<Webhook>> {
        Ok(sqlx::query_as(
            "SELECT * FROM webhooks WHERE CAST($1 AS TEXT) IS NULL OR tenant_id = $1 ORDER BY tenant_id, created_at, id",
        )
        .bind(scope.tenant_id())
        .fetch_all(&self.pool)
        .await?)
    }

    /// One webhook by id, within `scope`.
    pub async fn webhook(&self, scope: &Scope, id: &str) -> Result<Webhook> {
        let webhook: Option<Webhook> = sqlx::query_as("SELECT * FROM webhooks WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        webhook
            .filter(|w| scope.sees(Some(&w.tenant_id), false))
            .ok_or_else(|| DirectoryError::not_found("webhook", id))
    }

    /// Changes a webhook; everything is checked before anything is written.
    pub async fn update_webhook(
        &self,
        scope: &Scope,
        id: &str,
        update: WebhookUpdate,
        allow_internal: bool,
    ) -> Result<Webhook> {
        let current = self.webhook(scope, id).await?;
        let url = match &update.url {
            Some(url) => validate::webhook_url(url, allow_internal)?,
            None => current.url.clone(),
        };
        let chosen = update.events.unwrap_or(current.events.clone());
        let flags = events(&chosen)?;
        let webhook = Webhook {
            url,
            description: match update.description {
                Some(text) => description(&text)?,
                None => current.description.clone(),
            },
            events: WebhookEvent::ALL
                .into_iter()
                .filter(|e| chosen.contains(e))
                .collect(),
            enabled: update.enabled.unwrap_or(current.enabled),
            ..current
        };
        sqlx::query(
            "UPDATE webhooks SET url = $1, description = $2, on_call_start = $3, on_call_answer = $4, \
             on_call_end = $5, enabled = $6 WHERE id = $7",
        )
        .bind(&webhook.url)
        .bind(&webhook.description)
        .bind(flags[0])
        .bind(flags[1])
        .bind(flags[2])
        .bind(i64::from(webhook.enabled))
        .bind(&webhook.id)
        .execute(&self.pool)
        .await?;
        Ok(webhook)
    }

    /// Replaces a webhook's secret; returns the new one (not shown again).
    pub async fn rotate_webhook_secret(&self, scope: &Scope, id: &str) -> Result<(Webhook, String)> {
        let webhook = self.webhook(scope, id).await?;
        let secret = fresh_secret();
        sqlx::query("UPDATE webhooks SET secret = $1 WHERE id = $2")
            .bind(&secret)
            .bind(&webhook.id)
            .execute(&self.pool)
            .await?;
        Ok((webhook, secret))
    }

    /// Deletes a webhook and its deliveries.
    pub async fn delete_webhook(&self, scope: &Scope, id: &str) -> Result<Webhook> {
        let webhook = self.webhook(scope, id).await?;
        sqlx::query("DELETE FROM webhooks WHERE id = $1")
            .bind(&webhook.id)
            .execute(&self.pool)
            .await?;
        Ok(webhook)
    }
}
