//! `offhook directory …`: administration from the shell. Create, list, update and
//! delete tenants, accounts, icons, lines and tokens ([`objects`]); a tenant's
//! toll-fraud policy ([`policy`]); call records,
//! calls in progress, hang-up and reset requests and line diagnostics
//! ([`calls`]); billing webhooks and their deliveries ([`webhooks`]); the audit
//! log ([`audit`]), which every change made here writes to as `cli:USER`. Output
//! is a table or JSON. All validation happens in the directory crate before
//! anything is written; errors there exit with code 2.

mod audit;
mod calls;
mod objects;
mod policy;
mod webhooks;

use offhook_directory::{Actor, AuditChange, DeleteImpact, Directory, Scope};
use serde::Serialize;

use crate::cli::{DirectoryCommand, ListFormat};
use crate::config::Config;
use crate::table;

/// Command-line input that is wrong before the directory is asked (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct BadInput(String);

/// A vocabulary word given on the command line (`--kind`, `--state`, `--cause`).
fn word<W: std::str::FromStr<Err = offhook_directory::vocab::UnknownWord>>(
    option: &str,
    text: &str,
) -> Result<W, BadInput> {
    text.parse().map_err(|e| BadInput(format!("--{option}: {e}")))
}

/// What every command works with.
struct Ctx {
    directory: Directory,
    /// Who the audit log says made the changes.
    actor: Actor,
    /// Webhook URLs may point into internal networks (`web.webhooks.allow_internal_targets`).
    allow_internal_targets: bool,
}

impl Ctx {
    /// Writes the audit entry of a change just made.
    async fn audit(&self, change: AuditChange) -> anyhow::Result<()> {
        let now = chrono::Utc::now().timestamp_millis();
        self.directory.record_audit(&self.actor, change, now).await?;
        Ok(())
    }
}

/// The operating system user running the command (the one behind `sudo`, if any).
fn os_user() -> String {
    ["SUDO_USER", "USER", "LOGNAME"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Runs one directory command.
pub(crate) async fn run(config: &Config, command: DirectoryCommand) -> anyhow::Result<()> {
    let ctx = Ctx {
        directory: Directory::connect(&config.database_url).await?,
        actor: Actor::command_line(&os_user()),
        allow_internal_targets: config.web.webhooks.allow_internal_targets,
    };
    let result = match command {
        DirectoryCommand::Tenant(c) => objects::tenant(&ctx, c).await,
        DirectoryCommand::Account(c) => objects::account(&ctx, c).await,
        DirectoryCommand::Icon(c) => objects::icon(&ctx, c).await,
        DirectoryCommand::Line(c) => objects::line(&ctx, c).await,
        DirectoryCommand::Token(c) => objects::token(&ctx, c).await,
        DirectoryCommand::Cdr(c) => calls::cdr(&ctx, c).await,
        DirectoryCommand::Call(c) => calls::call(&ctx, c).await,
        DirectoryCommand::Action(c) => calls::action(&ctx, c).await,
        DirectoryCommand::Webhook(c) => webhooks::webhook(&ctx, c).await,
        DirectoryCommand::Audit(c) => audit::audit(&ctx, c).await,
    };
    ctx.directory.close().await;
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

fn opt(value: Option<&str>) -> String {
    value.unwrap_or("-").to_owned()
}

fn ms_text(ms: Option<i64>) -> String {
    ms.and_then(chrono::DateTime::from_timestamp_millis)
        .map(|at| at.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| "-".to_owned())
}

/// "3 icons, 2 accounts" (empty when nothing).
fn counted(dependents: &[offhook_directory::Dependents]) -> String {
    let parts: Vec<String> = dependents
        .iter()
        .map(|d| format!("{} {}", d.count, d.what))
        .collect();
    parts.join(", ")
}

/// Refuses a delete that would remove other objects unless `--yes` was given,
/// naming them; otherwise the words for what goes with it (" and 3 icons, …").
fn confirmed(impact: &DeleteImpact, yes: bool) -> anyhow::Result<String> {
    let removes = counted(&impact.removes);
    if removes.is_empty() {
        return Ok(String::new());
    }
    if !yes {
        return Err(BadInput(format!(
            "deleting {} {} also deletes {removes}; add --yes to delete them too",
            impact.kind, impact.name
        ))
        .into());
    }
    Ok(format!(" and {removes}"))
}
