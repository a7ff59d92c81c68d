//! `offhook directory cdr|call|action …` and `line reset|diagnose`: call records
//! with their names and billable time, the calls in progress, hang-up and reset
//! requests (written to the directory; the node that owns the call or line
//! carries them out) and how they went, and why a line is (not) working.

use offhook_directory::{AuditAction, AuditChange, CallRecord, CdrFilter, OperatorAction, Scope};

use super::{BadInput, Ctx, ms_text, opt, print_list, scope, word};
use crate::cli::{ActionCommand, CallCommand, CdrCommand, ListFormat, TenantList};

/// How long a request waits for the owner of its call or line before it expires.
const REQUEST_TTL_MS: i64 = 2 * 60 * 1000;

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

fn seconds(value: Option<i64>) -> String {
    value.map_or_else(|| "-".to_owned(), |s| s.to_string())
}

/// Prints call records as a table (or JSON).
fn print_records(format: &ListFormat, records: &[CallRecord]) -> anyhow::Result<()> {
    print_list(
        format,
        records,
        &[
            "STARTED",
            "TENANT",
            "ICON",
            "NUMBER",
            "DURATION",
            "BILLABLE",
            "ANSWER BY",
            "CAUSE",
            "ID",
        ],
        |r| {
            vec![
                ms_text(Some(r.cdr.started_at)),
                r.tenant_name.clone(),
                opt(r.icon_public_id.as_deref().or(r.account_username.as_deref())),
                r.cdr.number.clone(),
                seconds(r.duration_s),
                seconds(r.billable_s),
                opt(r.cdr.answer_source.map(|s| s.to_string()).as_deref()),
                opt(r.cdr.hangup_cause.map(|c| c.to_string()).as_deref()),
                r.cdr.id.clone(),
            ]
        },
    )
}

pub(super) async fn cdr(ctx: &Ctx, command: CdrCommand) -> anyhow::Result<()> {
    let CdrCommand::List {
        tenant,
        icon,
        cause,
        search,
        since,
        until,
        limit,
        offset,
        format,
    } = command;
    let d = &ctx.directory;
    let scope = scope(d, tenant.as_deref()).await?;
    let icon_id = match icon {
        Some(key) => Some(d.icon(&scope, &key).await?.id),
        None => None,
    };
    let filter = CdrFilter {
        since: time_ms("since", since.as_deref())?,
        until: time_ms("until", until.as_deref())?,
        icon_id,
        cause: cause.map(|c| word("cause", &c)).transpose()?,
        active: false,
        search,
        limit: Some(limit),
        offset: Some(offset),
    };
    let (records, total) = d.list_call_records(&scope, &filter).await?;
    print_records(&format, &records)?;
    if !format.json && total > records.len() as i64 {
        eprintln!("{} of {total} records (--offset and --limit page)", records.len());
    }
    Ok(())
}

fn print_action(action: &OperatorAction) {
    let state = match (action.result, &action.claimed_by) {
        (Some(result), _) => result.as_str().to_owned(),
        (None, Some(node)) => format!("being carried out by {node}"),
        (None, None) => "waiting for the node that owns it".to_owned(),
    };
    println!(
        "request {} ({}) for {}: {state}",
        action.id,
        action.kind.as_str(),
        action.target_label
    );
}

pub(super) async fn call(ctx: &Ctx, command: CallCommand) -> anyhow::Result<()> {
    let d = &ctx.directory;
    match command {
        CallCommand::List(TenantList { tenant, format }) => {
            let filter = CdrFilter {
                active: true,
                limit: Some(1000),
                ..CdrFilter::default()
            };
            let (records, _) = d
                .list_call_records(&scope(d, tenant.as_deref()).await?, &filter)
                .await?;
            print_records(&format, &records)?;
        }
        CallCommand::Hangup { id } => {
            let now = chrono::Utc::now().timestamp_millis();
            let action = d
                .request_hangup(&Scope::Operator, &id, &ctx.actor.name, now, REQUEST_TTL_MS)
                .await?;
            let change = AuditChange::new(
                AuditAction::Hangup,
                "call",
                &action.target_id,
                action.tenant_id.as_deref(),
                serde_json::json!({ "request": action.id, "call": action.target_label }),
            );
            ctx.audit(change).await?;
            print_action(&action);
        }
    }
    Ok(())
}

pub(super) async fn action(ctx: &Ctx, command: ActionCommand) -> anyhow::Result<()> {
    let ActionCommand::List { open, format } = command;
    let now = chrono::Utc::now().timestamp_millis();
    let (actions, _) = ctx
        .directory
        .list_operator_actions(&Scope::Operator, open, 1000, 0, now)
        .await?;
    print_list(
        &format,
        &actions,
        &["REQUESTED", "KIND", "TARGET", "BY", "RESULT", "DETAIL", "ID"],
        |a| {
            vec![
                ms_text(Some(a.requested_at)),
                a.kind.as_str().to_owned(),
                a.target_label.clone(),
                a.requested_by.clone(),
                a.result.map_or("open", |r| r.as_str()).to_owned(),
                a.detail.clone(),
                a.id.clone(),
            ]
        },
    )
}

/// `line reset NAME`.
pub(super) async fn reset_line(ctx: &Ctx, name: &str) -> anyhow::Result<()> {
    let now = chrono::Utc::now().timestamp_millis();
    let line = ctx.directory.line(name).await?;
    let action = ctx
        .directory
        .request_line_reset(&line.id, &ctx.actor.name, now, REQUEST_TTL_MS)
        .await?;
    let change = AuditChange::new(
        AuditAction::Reset,
        "line",
        &line.name,
        line.tenant_id.as_deref(),
        serde_json::json!({ "request": action.id, "state": line.state }),
    );
    ctx.audit(change).await?;
    print_action(&action);
    Ok(())
}

/// `line diagnose NAME`.
pub(super) async fn diagnose_line(ctx: &Ctx, name: &str, json: bool) -> anyhow::Result<()> {
    let now = chrono::Utc::now().timestamp_millis();
    let diag = ctx.directory.line_diagnostics(name, now).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&diag)?);
        return Ok(());
    }
    let line = &diag.line;
    println!(
        "line {}: {} since {}{}",
        line.name,
        line.state,
        ms_text(line.state_changed_at),
        line.fault_reason
            .as_deref()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default()
    );
    println!(
        "relay {}: {}, last seen {}",
        diag.relay.name,
        diag.relay.state,
        ms_text(diag.relay.last_seen_at)
    );
    for r in &diag.registrations {
        println!(
            "registered as {} from {} over {} via node {}, until {}",
            r.contact,
            r.source,
            r.transport,
            r.node,
            ms_text(Some(r.expires_at))
        );
    }
    if let Some(c) = &diag.sound_card {
        println!(
            "sound card: plays into {}, captures from {} at {} Hz; device latency {:.1} ms out, \
             {:.1} ms in; {} underrun, {} overrun samples; drift compensation dropped {}, \
             repeated {} samples (as of {})",
            c.playback,
            c.capture,
            c.rate_hz,
            c.playback_latency_us as f64 / 1000.0,
            c.capture_latency_us as f64 / 1000.0,
            c.underrun_samples,
            c.overrun_samples,
            c.drift_dropped_samples,
            c.drift_repeated_samples,
            ms_text(Some(c.published_at))
        );
    }
    if let Some(call) = &diag.active_call {
        println!(
            "in call {} to {} since {}",
            call.cdr.id,
            call.cdr.number,
            ms_text(Some(call.cdr.started_at))
        );
    }
    if let Some(call) = &diag.last_call {
        println!(
            "last call {} ended {} ({})",
            call.cdr.id,
            ms_text(call.cdr.ended_at),
            opt(call.cdr.hangup_cause.map(|c| c.to_string()).as_deref())
        );
    }
    for action in &diag.open_actions {
        print_action(action);
    }
    if diag.problems.is_empty() {
        println!("no problem seen");
    }
    for problem in &diag.problems {
        println!("problem: {problem}");
    }
    Ok(())
}
