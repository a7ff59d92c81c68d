//! `offhook directory audit list`: who changed what, and when.

use super::{Ctx, ms_text, opt, print_list, scope};
use crate::cli::AuditCommand;

pub(super) async fn audit(ctx: &Ctx, command: AuditCommand) -> anyhow::Result<()> {
    let AuditCommand::List {
        tenant,
        kind,
        limit,
        format,
    } = command;
    let scope = scope(&ctx.directory, tenant.as_deref()).await?;
    let filter = offhook_directory::AuditFilter {
        object_kind: kind,
        limit: Some(limit),
        ..Default::default()
    };
    let (entries, _) = ctx.directory.list_audit(&scope, &filter).await?;
    print_list(
        &format,
        &entries,
        &["AT", "WHO", "ACTION", "KIND", "OBJECT", "TENANT", "CHANGES"],
        |e| {
            vec![
                ms_text(Some(e.at)),
                e.actor.clone(),
                e.action.clone(),
                e.object_kind.clone(),
                e.object_key.clone(),
                opt(e.tenant_id.as_deref()),
                e.changes.to_string(),
            ]
        },
    )
}
