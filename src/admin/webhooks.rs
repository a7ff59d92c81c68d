//! `offhook directory webhook …`: a tenant's billing webhooks (the secret is
//! printed once, when made or rotated) and their deliveries.

use offhook_directory::{
    AuditAction, AuditChange, DeliveryFilter, DeliveryState, NewWebhook, Scope, WebhookEvent, WebhookUpdate,
};

use super::{BadInput, Ctx, counted, ms_text, opt, print_list, scope};
use crate::cli::{TenantList, WebhookCommand};

fn events(names: &[String]) -> anyhow::Result<Option<Vec<WebhookEvent>>> {
    if names.is_empty() {
        return Ok(None);
    }
    Ok(Some(
        names
            .iter()
            .map(|n| WebhookEvent::parse(n))
            .collect::<Result<_, _>>()?,
    ))
}

fn delivery_state(text: &str) -> anyhow::Result<DeliveryState> {
    match text {
        "pending" => Ok(DeliveryState::Pending),
        "delivered" => Ok(DeliveryState::Delivered),
        "failed" => Ok(DeliveryState::Failed),
        other => Err(BadInput(format!("--state '{other}' is not pending, delivered or failed")).into()),
    }
}

pub(super) async fn webhook(ctx: &Ctx, command: WebhookCommand) -> anyhow::Result<()> {
    let d = &ctx.directory;
    let allow = ctx.allow_internal_targets;
    match command {
        WebhookCommand::Create {
            tenant,
            url,
            events: names,
            description,
        } => {
            let new = NewWebhook {
                tenant,
                url,
                description,
                events: events(&names)?.unwrap_or_else(|| vec![WebhookEvent::CallEnded]),
            };
            let (w, secret) = d.create_webhook(new, allow).await?;
            ctx.audit(AuditChange::created("webhook", &w.id, Some(&w.tenant_id), &w))
                .await?;
            eprintln!(
                "created webhook {} posting to {}; its secret, shown this once:",
                w.id, w.url
            );
            println!("{secret}");
        }
        WebhookCommand::List(TenantList { tenant, format }) => {
            let webhooks = d.list_webhooks(&scope(d, tenant.as_deref()).await?).await?;
            print_list(
                &format,
                &webhooks,
                &["ID", "URL", "EVENTS", "ENABLED", "TENANT"],
                |w| {
                    let events: Vec<&str> = w.events.iter().map(|e| e.as_str()).collect();
                    vec![
                        w.id.clone(),
                        w.url.clone(),
                        events.join(","),
                        w.enabled.to_string(),
                        w.tenant_id.clone(),
                    ]
                },
            )?;
        }
        WebhookCommand::Update {
            id,
            url,
            events: names,
            enabled,
        } => {
            let before = d.webhook(&Scope::Operator, &id).await?;
            let update = WebhookUpdate {
                url,
                description: None,
                events: events(&names)?,
                enabled: enabled.value(),
            };
            let w = d.update_webhook(&Scope::Operator, &id, update, allow).await?;
            ctx.audit(AuditChange::updated(
                "webhook",
                &w.id,
                Some(&w.tenant_id),
                &before,
                &w,
            ))
            .await?;
            println!("updated webhook {}", w.id);
        }
        WebhookCommand::RotateSecret { id } => {
            let (w, secret) = d.rotate_webhook_secret(&Scope::Operator, &id).await?;
            let change = AuditChange::new(
                AuditAction::RotateSecret,
                "webhook",
                &w.id,
                Some(&w.tenant_id),
                serde_json::json!({}),
            );
            ctx.audit(change).await?;
            eprintln!("new secret of webhook {}, shown this once:", w.id);
            println!("{secret}");
        }
        WebhookCommand::Delete { id } => {
            let impact = d.webhook_delete_impact(&Scope::Operator, &id).await?;
            let w = d.delete_webhook(&Scope::Operator, &id).await?;
            ctx.audit(AuditChange::deleted(
                "webhook",
                &w.id,
                Some(&w.tenant_id),
                &w,
                &impact,
            ))
            .await?;
            // Its deliveries go with it (no --yes asked): they are the webhook's own.
            println!("deleted webhook {} ({})", w.id, counted(&impact.removes));
        }
        WebhookCommand::Deliveries {
            webhook,
            state,
            limit,
            format,
        } => {
            let filter = DeliveryFilter {
                webhook_id: webhook,
                state: state.as_deref().map(delivery_state).transpose()?,
                limit: Some(limit),
                offset: None,
            };
            let (deliveries, _) = d.list_deliveries(&Scope::Operator, &filter).await?;
            print_list(
                &format,
                &deliveries,
                &[
                    "EVENT",
                    "STATE",
                    "ATTEMPTS",
                    "NEXT",
                    "LAST STATUS",
                    "LAST ERROR",
                    "ID",
                ],
                |x| {
                    vec![
                        x.event.as_str().to_owned(),
                        format!("{:?}", x.state).to_lowercase(),
                        x.attempts.to_string(),
                        ms_text(Some(x.next_attempt_at)),
                        x.last_status.map_or_else(|| "-".to_owned(), |s| s.to_string()),
                        opt(Some(&x.last_error).filter(|e| !e.is_empty()).map(String::as_str)),
                        x.id.clone(),
                    ]
                },
            )?;
        }
        WebhookCommand::Retry { id } => {
            let now = chrono::Utc::now().timestamp_millis();
            let x = d.retry_delivery(&Scope::Operator, &id, now).await?;
            let change = AuditChange::new(
                AuditAction::Retry,
                "delivery",
                &x.id,
                Some(&x.tenant_id),
                serde_json::json!({}),
            );
            ctx.audit(change).await?;
            println!("delivery {} is sent again now", x.id);
        }
    }
    Ok(())
}
