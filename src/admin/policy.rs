//! `offhook directory tenant policy show|set`: a tenant's toll-fraud policy
//! (destination prefixes, calls at once, caps on calls and billed minutes a day
//! and a month), each change written to the audit log like the admin API's.

use offhook_directory::{AuditChange, DEFAULT_DENY, DestinationPolicy, PolicyUpdate};

use super::{BadInput, Ctx};
use crate::cli::{PolicyCommand, PolicySettings};

pub(super) async fn policy(ctx: &Ctx, command: PolicyCommand) -> anyhow::Result<()> {
    let d = &ctx.directory;
    match command {
        PolicyCommand::Show { tenant, format } => {
            let tenant = d.tenant(&tenant).await?;
            let policy = d.destination_policy(&tenant.id).await?;
            if format.json {
                println!("{}", serde_json::to_string_pretty(&policy)?);
            } else {
                print!("{}", text(&tenant.name, &policy));
            }
        }
        PolicyCommand::Set(settings) => {
            let tenant = d.tenant(&settings.tenant).await?;
            let update = update(settings)?;
            let before = d.destination_policy(&tenant.id).await?;
            let after = d.update_destination_policy(&tenant.id, update).await?;
            ctx.audit(AuditChange::updated(
                "destination policy",
                &tenant.name,
                Some(&tenant.id),
                &before,
                &after,
            ))
            .await?;
            print!(
                "updated the policy of tenant {}\n{}",
                tenant.name,
                text(&tenant.name, &after)
            );
        }
    }
    Ok(())
}

/// The change the options ask for; nothing asked is an error.
fn update(s: PolicySettings) -> Result<PolicyUpdate, BadInput> {
    let list = |given: Vec<String>, clear: bool| (clear || !given.is_empty()).then_some(given);
    let update = PolicyUpdate {
        allow: list(s.allow, s.clear_allow),
        deny: list(s.deny, s.clear_deny),
        max_concurrent_calls: s.max_concurrent,
        tenant_calls_per_day: s.tenant_daily,
        calls_per_day: s.daily,
        tenant_calls_per_month: s.tenant_monthly,
        calls_per_month: s.monthly,
        tenant_minutes_per_day: s.tenant_minutes_daily,
        minutes_per_day: s.minutes_daily,
        tenant_minutes_per_month: s.tenant_minutes_monthly,
        minutes_per_month: s.minutes_monthly,
    };
    let caps = [
        update.max_concurrent_calls,
        update.tenant_calls_per_day,
        update.calls_per_day,
        update.tenant_calls_per_month,
        update.calls_per_month,
        update.tenant_minutes_per_day,
        update.minutes_per_day,
        update.tenant_minutes_per_month,
        update.minutes_per_month,
    ];
    if update.allow.is_none() && update.deny.is_none() && caps.iter().all(Option::is_none) {
        return Err(BadInput(
            "nothing to change: give a cap (--max-concurrent, --daily, --monthly, --minutes-daily, …), \
             --allow, --deny, --clear-allow or --clear-deny"
                .into(),
        ));
    }
    Ok(update)
}

fn prefixes(list: &[impl AsRef<str>]) -> String {
    if list.is_empty() {
        return "(none)".to_owned();
    }
    list.iter().map(AsRef::as_ref).collect::<Vec<_>>().join(" ")
}

/// The policy as the shell shows it.
fn text(tenant: &str, p: &DestinationPolicy) -> String {
    let rows = [
        ("tenant", tenant.to_owned()),
        ("calls at once", p.max_concurrent_calls.to_string()),
        ("calls a day (tenant)", p.tenant_calls_per_day.to_string()),
        ("calls a day (icon, account)", p.calls_per_day.to_string()),
        ("calls a month (tenant)", p.tenant_calls_per_month.to_string()),
        ("calls a month (icon, account)", p.calls_per_month.to_string()),
        ("minutes a day (tenant)", p.tenant_minutes_per_day.to_string()),
        ("minutes a day (icon, account)", p.minutes_per_day.to_string()),
        ("minutes a month (tenant)", p.tenant_minutes_per_month.to_string()),
        ("minutes a month (icon, account)", p.minutes_per_month.to_string()),
        ("allow", prefixes(&p.allow)),
        ("deny", prefixes(&p.deny)),
        ("built-in deny", prefixes(DEFAULT_DENY)),
    ];
    rows.iter()
        .map(|(label, value)| format!("{:<34}{value}\n", format!("{label}:")))
        .collect()
}
