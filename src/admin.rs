//! `offhook directory …`: create, list, update and delete tenants, accounts, icons
//! and lines, and list CDRs, as a table or JSON. All validation happens in the
//! directory crate before anything is written; errors there exit with code 2.

use std::io::BufRead as _;

use offhook_directory::{
    AccountKind, AccountUpdate, CdrFilter, Directory, IconUpdate, LineKind, LineUpdate, NewAccount,
    NewApiToken, NewIcon, NewLine, NewTenant, Scope, TenantUpdate,
};
use serde::Serialize;

use crate::cli::{
    AccountCommand, CdrCommand, DirectoryCommand, IconCommand, IconSettings, LineCommand, ListFormat,
    TenantCommand, TenantList, TokenCommand,
};
use crate::config::Config;
use crate::table;

/// Command-line input that is wrong before the directory is asked (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(String);

/// A vocabulary word given on the command line (`--kind`, `--state`, `--cause`).
fn word<W: std::str::FromStr<Err = offhook_directory::vocab::UnknownWord>>(
    option: &str,
    text: &str,
) -> Result<W, BadInput> {
    text.parse().map_err(|e| BadInput(format!("--{option}: {e}")))
}

/// Runs one directory command.
pub async fn run(config: &Config, command: DirectoryCommand) -> anyhow::Result<()> {
    let directory = Directory::connect(&config.database_url).await?;
    let result = match command {
        DirectoryCommand::Tenant(c) => tenant(&directory, c).await,
        DirectoryCommand::Account(c) => account(&directory, c).await,
        DirectoryCommand::Icon(c) => icon(&directory, c).await,
        DirectoryCommand::Line(c) => line(&directory, c).await,
        DirectoryCommand::Cdr(c) => cdr(&directory, c).await,
        DirectoryCommand::Token(c) => token(&directory, c).await,
    };
    directory.close().await;
    result
}

/// Prints rows as JSON or as a table.
fn print_list<T: Serialize>(
    format: &ListFormat,
    items: &[T],
    header: &[&str],
    row: impl Fn(&T) -> Vec<String>,
) -> anyhow::Result<()> {
    if format.json {
        println!("{}", serde_json::to_string_pretty(items)?);
    } else {
        let rows: Vec<Vec<String>> = items.iter().map(row).collect();
        print!("{}", table::render(header, &rows));
    }
    Ok(())
}

/// The scope of `--tenant NAME`, or the operator's.
async fn scope(directory: &Directory, tenant: Option<&str>) -> anyhow::Result<Scope> {
    Ok(match tenant {
        Some(name) => Scope::Tenant(directory.tenant(name).await?.id),
        None => Scope::Operator,
    })
}

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

fn time_ms(flag: &str, text: Option<&str>) -> anyhow::Result<Option<i64>> {
    text.map(|t| {
        chrono::DateTime::parse_from_rfc3339(t)
            .map(|at| at.timestamp_millis())
            .map_err(|_| {
                BadInput(format!(
                    "--{flag} '{t}' is not an RFC 3339 time like 2026-11-24T09:00:00Z"
                ))
                .into()
            })
    })
    .transpose()
}

fn opt(value: Option<&str>) -> String {
    value.unwrap_or("-").to_owned()
}

fn ms_text(ms: Option<i64>) -> String {
    ms.and_then(chrono::DateTime::from_timestamp_millis)
        .map(|at| at.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| "-".to_owned())
}

async fn tenant(directory: &Directory, command: TenantCommand) -> anyhow::Result<()> {
    match command {
        TenantCommand::Create { name, domain } => {
            let t = directory
                .create_tenant(NewTenant {
                    name,
                    sip_domain: domain,
                })
                .await?;
            println!(
                "created tenant {} ({}) with domain {}",
                t.name, t.id, t.sip_domain
            );
        }
        TenantCommand::List(format) => {
            let tenants = directory.list_tenants(&Scope::Operator).await?;
            print_list(&format, &tenants, &["NAME", "DOMAIN", "ID"], |t| {
                vec![t.name.clone(), t.sip_domain.clone(), t.id.clone()]
            })?;
        }
        TenantCommand::Update { name, domain } => {
            let t = directory
                .update_tenant(&name, TenantUpdate { sip_domain: domain })
                .await?;
            println!("updated tenant {} (domain {})", t.name, t.sip_domain);
        }
        TenantCommand::Delete { name } => {
            directory.delete_tenant(&name).await?;
            println!("deleted tenant {name}");
        }
    }
    Ok(())
}

async fn account(directory: &Directory, command: AccountCommand) -> anyhow::Result<()> {
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
            let a = directory
                .create_account(NewAccount {
                    tenant,
                    username,
                    password,
                    display_name,
                    number,
                    kind,
                })
                .await?;
            println!("created {} account {} ({})", a.kind.as_str(), a.username, a.id);
        }
        AccountCommand::List(TenantList { tenant, format }) => {
            let accounts = directory
                .list_accounts(&scope(directory, tenant.as_deref()).await?)
                .await?;
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
            let a = directory.update_account(&tenant, &username, update).await?;
            println!("updated account {}", a.username);
        }
        AccountCommand::Delete { tenant, username } => {
            directory.delete_account(&tenant, &username).await?;
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
    }
}

async fn icon(directory: &Directory, command: IconCommand) -> anyhow::Result<()> {
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
            let i = directory
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
                    ..defaults
                })
                .await?;
            println!("created icon {} dialing {}", i.public_id, i.number);
        }
        IconCommand::List(TenantList { tenant, format }) => {
            let icons = directory
                .list_icons(&scope(directory, tenant.as_deref()).await?)
                .await?;
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
            let i = directory
                .update_icon(&Scope::Operator, &public_id, update)
                .await?;
            println!("updated icon {}", i.public_id);
        }
        IconCommand::Delete { public_id } => {
            directory.delete_icon(&Scope::Operator, &public_id).await?;
            println!("deleted icon {public_id}");
        }
    }
    Ok(())
}

async fn line(directory: &Directory, command: LineCommand) -> anyhow::Result<()> {
    match command {
        LineCommand::Create {
            name,
            relay,
            device,
            kind,
            tenant,
        } => {
            let kind: LineKind = word("kind", &kind)?;
            let l = directory
                .create_line(NewLine {
                    name,
                    relay,
                    tenant,
                    device_path: device,
                    kind,
                })
                .await?;
            println!("created {} line {} ({})", l.kind.as_str(), l.name, l.id);
        }
        LineCommand::List(TenantList { tenant, format }) => {
            let lines = directory
                .list_lines(&scope(directory, tenant.as_deref()).await?)
                .await?;
            print_list(
                &format,
                &lines,
                &["NAME", "KIND", "DEVICE", "STATE", "TENANT", "RELAY"],
                |l| {
                    vec![
                        l.name.clone(),
                        l.kind.as_str().to_owned(),
                        l.device_path.clone(),
                        l.state.to_string(),
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
            let l = directory
                .update_line(
                    &name,
                    LineUpdate {
                        device_path: device,
                        kind,
                        state,
                    },
                )
                .await?;
            println!("updated line {}", l.name);
        }
        LineCommand::Delete { name } => {
            directory.delete_line(&name).await?;
            println!("deleted line {name}");
        }
    }
    Ok(())
}

async fn cdr(directory: &Directory, command: CdrCommand) -> anyhow::Result<()> {
    let CdrCommand::List {
        tenant,
        icon,
        cause,
        since,
        until,
        limit,
        format,
    } = command;
    let scope = scope(directory, tenant.as_deref()).await?;
    let icon_id = match icon {
        Some(key) => Some(directory.icon(&scope, &key).await?.id),
        None => None,
    };
    let filter = CdrFilter {
        since: time_ms("since", since.as_deref())?,
        until: time_ms("until", until.as_deref())?,
        icon_id,
        cause: cause.map(|c| word("cause", &c)).transpose()?,
        active: false,
        limit: Some(limit),
    };
    let cdrs = directory.list_cdrs(&scope, &filter).await?;
    print_list(
        &format,
        &cdrs,
        &[
            "STARTED",
            "NUMBER",
            "ANSWERED",
            "ENDED",
            "ANSWER BY",
            "CAUSE",
            "CALL-ID",
        ],
        |c| {
            vec![
                ms_text(Some(c.started_at)),
                c.number.clone(),
                ms_text(c.answered_at),
                ms_text(c.ended_at),
                opt(c.answer_source.map(|s| s.to_string()).as_deref()),
                opt(c.hangup_cause.map(|c| c.to_string()).as_deref()),
                c.call_id.clone(),
            ]
        },
    )
}

async fn token(directory: &Directory, command: TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::Create { name, tenant } => {
            let (token, secret) = directory.create_api_token(NewApiToken { name, tenant }).await?;
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
            let scope = scope(directory, tenant.as_deref()).await?;
            let tokens = directory.list_api_tokens(&scope).await?;
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
            directory.delete_api_token(&Scope::Operator, &id).await?;
            println!("revoked token {id}");
        }
    }
    Ok(())
}
