//! `offhook directory tenant policy show|set`: a tenant's toll-fraud policy
//! (destination prefixes, calls at once, daily caps), each change written to
//! the audit log like the admin API's.

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
    };
    let PolicyUpdate {
        allow,
        deny,
        max_concurrent_calls,
        tenant_calls_per_day,
        calls_per_day,
    } = &update;
    if allow.is_none()
        && deny.is_none()
        && max_concurrent_calls.is_none()
        && tenant_calls_per_day.is_none()
        && calls_per_day.is_none()
    {
        return Err(BadInput(
            "nothing to change: give --max-concurrent, --tenant-daily, --daily, --allow, --deny, \
             --clear-allow or --clear-deny"
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
    format!(
        "tenant:                       {tenant}\n\
         calls at once:                {}\n\
         calls a day (tenant):         {}\n\
         calls a day (icon, account):  {}\n\
         allow:                        {}\n\
         deny:                         {}\n\
         built-in deny:                {}\n",
        p.max_concurrent_calls,
        p.tenant_calls_per_day,
        p.calls_per_day,
        prefixes(&p.allow),
        prefixes(&p.deny),
        prefixes(DEFAULT_DENY),
    )
}
