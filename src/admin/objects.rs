//! `offhook directory tenant|account|icon|line|token …`: the directory's
//! objects, each change written to the audit log.

use std::io::BufRead as _;

use offhook_directory::{
    AccountKind, AccountUpdate, AuditAction, AuditChange, IconUpdate, LineKind, LineUpdate, NewAccount,
    NewApiToken, NewIcon, NewLine, NewTenant, Scope, TenantUpdate,
};

use super::{BadInput, Ctx, confirmed, ms_text, opt, print_list, scope, word};
use crate::cli::{
    AccountCommand, IconCommand, IconSettings, LineCommand, TenantCommand, TenantList, TokenCommand,
};

fn password(inline: Option<String>, from_stdin: bool) -> anyhow::Result<Option<String>> {
    if !from_stdin {
        return Ok(inline);
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let line = line.trim_end_matches(['\r', '\n']).to_owned();
    if line.is_empty() {
        return Err(BadInput("no password on standard input".into()).into());
    }
    Ok(Some(line))
}

pub(super) async fn tenant(ctx: &Ctx, command: TenantCommand) -> anyhow::Result<()> {
    let d = &ctx.directory;
    match command {
        TenantCommand::Create { name, domain } => {
            let t = d
                .create_tenant(NewTenant {
                    name,
                    sip_domain: domain,
                })
                .await?;
            ctx.audit(AuditChange::created("tenant", &t.name, Some(&t.id), &t))
                .await?;
            println!(
                "created tenant {} ({}) with domain {}",
                t.name, t.id, t.sip_domain
            );
        }
        TenantCommand::List(format) => {
            let tenants = d.list_tenants(&Scope::Operator).await?;
            print_list(&format, &tenants, &["NAME", "DOMAIN", "ID"], |t| {
                vec![t.name.clone(), t.sip_domain.clone(), t.id.clone()]
            })?;
        }
        TenantCommand::Update { name, domain } => {
            let before = d.tenant(&name).await?;
            let t = d
                .update_tenant(&name, TenantUpdate { sip_domain: domain })
                .await?;
            ctx.audit(AuditChange::updated("tenant", &t.name, Some(&t.id), &before, &t))
                .await?;
            println!("updated tenant {} (domain {})", t.name, t.sip_domain);
        }
        TenantCommand::Delete { name, confirm } => {
            let tenant = d.tenant(&name).await?;
            let impact = d.tenant_delete_impact(&Scope::Operator, &tenant.id).await?;
            let with = confirmed(&impact, confirm.yes)?;
            d.delete_tenant(&tenant.id).await?;
            ctx.audit(AuditChange::deleted(
                "tenant",
                &tenant.name,
                Some(&tenant.id),
                &tenant,
                &impact,
            ))
            .await?;
            println!("deleted tenant {}{with}", tenant.name);
        }
        TenantCommand::Policy(command) => super::policy::policy(ctx, command).await?,
    }
    Ok(())
}

pub(super) async fn account(ctx: &Ctx, command: AccountCommand) -> anyhow::Result<()> {
    let d = &ctx.directory;
    match command {
        AccountCommand::Create {
            tenant,
            username,
            password: pw,
            display_name,
            number,
            kind,
        } => {
            let kind = AccountKind::parse(&kind)?;
            let password = password(pw.password, pw.password_stdin)?.unwrap_or_default();
            let a = d
                .create_account(NewAccount {
                    tenant,
                    username,
                    password,
                    display_name,
                    number,
                    kind,
                })
                .await?;
            ctx.audit(AuditChange::created(
                "account",
                &a.username,
                Some(&a.tenant_id),
                &a,
            ))
            .await?;
            println!("created {} account {} ({})", a.kind.as_str(), a.username, a.id);
        }
        AccountCommand::List(TenantList { tenant, format }) => {
            let accounts = d.list_accounts(&scope(d, tenant.as_deref()).await?).await?;
            print_list(
                &format,
                &accounts,
                &["USER", "KIND", "NUMBER", "ENABLED", "TENANT", "ID"],
                |a| {
                    vec![
                        a.username.clone(),
                        a.kind.as_str().to_owned(),
                        opt(a.number.as_deref()),
                        a.enabled.to_string(),
                        a.tenant_id.clone(),
                        a.id.clone(),
                    ]
                },
            )?;
        }
        AccountCommand::Update {
            tenant,
            username,
            password: pw,
            display_name,
            number,
            no_number,
            enabled,
        } => {
            let update = AccountUpdate {
                password: password(pw.password, pw.password_stdin)?,
                display_name,
                number: if no_number { Some(None) } else { number.map(Some) },
                enabled: enabled.value(),
            };
            let new_password = update.password.is_some();
            let before = d.account(&d.tenant(&tenant).await?.id, &username).await?;
            let a = d.update_account(&tenant, &username, update).await?;
            let mut change = AuditChange::updated("account", &a.username, Some(&a.tenant_id), &before, &a);
            if new_password {
                // Never the password itself: only that it changed.
                change.changes["password"] = "changed".into();
            }
            ctx.audit(change).await?;
            println!("updated account {}", a.username);
        }
        AccountCommand::Delete { tenant, username } => {
            let account = d.account(&d.tenant(&tenant).await?.id, &username).await?;
            let impact = d.account_delete_impact(&Scope::Operator, &account.id).await?;
            d.delete_account(&tenant, &username).await?;
            let change =
                AuditChange::deleted("account", &username, Some(&account.tenant_id), &account, &impact);
            ctx.audit(change).await?;
            println!("deleted account {username}");
        }
    }
    Ok(())
}

fn icon_update(number: Option<String>, settings: IconSettings, enabled: Option<bool>) -> IconUpdate {
    IconUpdate {
        number,
        label: settings.label,
        enabled,
        allowed_origins: (!settings.origins.is_empty()).then_some(settings.origins),
        opening_hours: settings.hours,
        timezone: settings.timezone,
        max_concurrent_calls: settings.max_concurrent,
        calls_per_minute: settings.per_minute,
        // 0: back to the relay's own timeout.
        ring_timeout_s: settings.ring_timeout.map(|s| (s != 0).then_some(s)),
    }
}

pub(super) async fn icon(ctx: &Ctx, command: IconCommand) -> anyhow::Result<()> {
    let d = &ctx.directory;
    match command {
        IconCommand::Create {
            tenant,
            number,
            public_id,
            disabled,
            settings,
        } => {
            let label = settings.label.clone().unwrap_or_else(|| "Call us".to_owned());
            let defaults = NewIcon::new(&tenant, &number, &label);
            let given = icon_update(None, settings, None);
            let i = d
                .create_icon(NewIcon {
                    public_id,
                    enabled: !disabled,
                    allowed_origins: given.allowed_origins.unwrap_or_default(),
                    opening_hours: given.opening_hours.unwrap_or_default(),
                    timezone: given.timezone.unwrap_or(defaults.timezone.clone()),
                    max_concurrent_calls: given
                        .max_concurrent_calls
                        .unwrap_or(defaults.max_concurrent_calls),
                    calls_per_minute: given.calls_per_minute.unwrap_or(defaults.calls_per_minute),
                    ring_timeout_s: given.ring_timeout_s.flatten(),
                    ..defaults
                })
                .await?;
            ctx.audit(AuditChange::created("icon", &i.public_id, Some(&i.tenant_id), &i))
                .await?;
            println!("created icon {} dialing {}", i.public_id, i.number);
        }
        IconCommand::List(TenantList { tenant, format }) => {
            let icons = d.list_icons(&scope(d, tenant.as_deref()).await?).await?;
            print_list(
                &format,
                &icons,
                &["PUBLIC ID", "NUMBER", "LABEL", "ENABLED", "ORIGINS", "HOURS"],
                |i| {
                    vec![
                        i.public_id.clone(),
                        i.number.clone(),
                        i.label.clone(),
                        i.enabled.to_string(),
                        i.allowed_origins.join(","),
                        if i.opening_hours.is_empty() {
                            "always".into()
                        } else {
                            i.opening_hours.clone()
                        },
                    ]
                },
            )?;
        }
        IconCommand::Update {
            public_id,
            number,
            settings,
            enabled,
        } => {
            let update = icon_update(number, settings, enabled.value());
            let before = d.icon(&Scope::Operator, &public_id).await?;
            let i = d.update_icon(&Scope::Operator, &public_id, update).await?;
            ctx.audit(AuditChange::updated(
                "icon",
                &i.public_id,
                Some(&i.tenant_id),
                &before,
                &i,
            ))
            .await?;
            println!("updated icon {}", i.public_id);
        }
        IconCommand::Delete { public_id } => {
            let icon = d.icon(&Scope::Operator, &public_id).await?;
            let impact = d.icon_delete_impact(&Scope::Operator, &icon.id).await?;
            d.delete_icon(&Scope::Operator, &icon.id).await?;
            let change = AuditChange::deleted("icon", &icon.public_id, Some(&icon.tenant_id), &icon, &impact);
            ctx.audit(change).await?;
            println!("deleted icon {public_id}");
        }
    }
    Ok(())
}

pub(super) async fn line(ctx: &Ctx, command: LineCommand) -> anyhow::Result<()> {
    let d = &ctx.directory;
    match command {
        LineCommand::Create {
            name,
            relay,
            device,
            kind,
            tenant,
        } => {
            let kind: LineKind = word("kind", &kind)?;
            let l = d
                .create_line(NewLine {
                    name,
                    relay,
                    tenant,
                    device_path: device,
                    kind,
                })
                .await?;
            ctx.audit(AuditChange::created("line", &l.name, l.tenant_id.as_deref(), &l))
                .await?;
            println!("created {} line {} ({})", l.kind.as_str(), l.name, l.id);
        }
        LineCommand::List(TenantList { tenant, format }) => {
            let lines = d.list_lines(&scope(d, tenant.as_deref()).await?).await?;
            print_list(
                &format,
                &lines,
                &[
                    "NAME", "KIND", "DEVICE", "STATE", "SINCE", "FAULT", "TENANT", "RELAY",
                ],
                |l| {
                    vec![
                        l.name.clone(),
                        l.kind.as_str().to_owned(),
                        l.device_path.clone(),
                        l.state.to_string(),
                        ms_text(l.state_changed_at),
                        opt(l.fault_reason.as_deref()),
                        l.tenant_id.clone().unwrap_or_else(|| "(shared)".into()),
                        l.relay_id.clone(),
                    ]
                },
            )?;
        }
        LineCommand::Update {
            name,
            device,
            kind,
            state,
        } => {
            let kind = kind.map(|k| word("kind", &k)).transpose()?;
            let state = state.map(|s| word("state", &s)).transpose()?;
            let before = d.line(&name).await?;
            let update = LineUpdate {
                device_path: device,
                kind,
                state,
            };
            let l = d.update_line(&name, update).await?;
            ctx.audit(AuditChange::updated(
                "line",
                &l.name,
                l.tenant_id.as_deref(),
                &before,
                &l,
            ))
            .await?;
            println!("updated line {}", l.name);
        }
        LineCommand::Delete { name } => {
            let line = d.line(&name).await?;
            let impact = d.line_delete_impact(&Scope::Operator, &line.id).await?;
            d.delete_line(&line.id).await?;
            let change = AuditChange::deleted("line", &line.name, line.tenant_id.as_deref(), &line, &impact);
            ctx.audit(change).await?;
            println!("deleted line {name}");
        }
        LineCommand::DeleteRelay { name, confirm } => {
            let relay = d.relay(&name).await?;
            let impact = d.relay_delete_impact(&relay.id).await?;
            let with = confirmed(&impact, confirm.yes)?;
            d.delete_relay(&relay.id).await?;
            ctx.audit(AuditChange::deleted("relay", &relay.name, None, &relay, &impact))
                .await?;
            println!("deleted relay {}{with}", relay.name);
        }
        LineCommand::Reset { name } => super::calls::reset_line(ctx, &name).await?,
        LineCommand::Diagnose { name, json } => super::calls::diagnose_line(ctx, &name, json).await?,
    }
    Ok(())
}

pub(super) async fn token(ctx: &Ctx, command: TokenCommand) -> anyhow::Result<()> {
    let d = &ctx.directory;
    match command {
        TokenCommand::Create { name, tenant } => {
            let (token, secret) = d.create_api_token(NewApiToken { name, tenant }).await?;
            ctx.audit(AuditChange::created(
                "token",
                &token.id,
                token.tenant_id.as_deref(),
                &token,
            ))
            .await?;
            let role = match &token.tenant_id {
                None => "operator".to_owned(),
                Some(tenant) => format!("tenant admin of {tenant}"),
            };
            eprintln!(
                "created token {} ({role}); its secret, shown this once:",
                token.id
            );
            println!("{secret}");
        }
        TokenCommand::List(TenantList { tenant, format }) => {
            let scope = scope(d, tenant.as_deref()).await?;
            let tokens = d.list_api_tokens(&scope).await?;
            print_list(&format, &tokens, &["ID", "NAME", "TENANT", "CREATED"], |t| {
                vec![
                    t.id.clone(),
                    t.name.clone(),
                    opt(t.tenant_id.as_deref()),
                    ms_text(Some(t.created_at)),
                ]
            })?;
        }
        TokenCommand::Delete { id } => {
            let token = d.api_token(&Scope::Operator, &id).await?;
            d.delete_api_token(&Scope::Operator, &id).await?;
            let change = AuditChange::new(
                AuditAction::Delete,
                "token",
                &token.id,
                token.tenant_id.as_deref(),
                serde_json::json!({ "deleted": token }),
            );
            ctx.audit(change).await?;
            println!("revoked token {id}");
        }
    }
    Ok(())
}
