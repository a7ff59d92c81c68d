//! What deleting an object takes with it, counted before the delete so that the
//! confirmation can name it ("tenant acme: 3 icons, 2 accounts, 120 call
//! records"): rows removed by a cascade, and rows that stay but lose their link.

use serde::Serialize;

use crate::db::{Directory, Scope};
use crate::error::Result;

/// Rows of one kind a delete affects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Dependents {
    /// What they are, in the number of `count` (`icon`, `icons`, `call records`, …).
    pub what: String,
    /// How many.
    pub count: i64,
}

/// What deleting one object does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DeleteImpact {
    /// Kind of object: `tenant`, `relay`, `line`, `icon`, `account`, `webhook`.
    pub kind: String,
    /// Its name (or public id).
    pub name: String,
    /// Rows deleted with it (only kinds with at least one row).
    pub removes: Vec<Dependents>,
    /// Rows kept but no longer linked to it (call records keep their times and number).
    pub unlinks: Vec<Dependents>,
}

/// `(one, many, SQL counting them with the object's id as $1)`.
type Count = (&'static str, &'static str, &'static str);

const TENANT_REMOVES: &[Count] = &[
    (
        "account",
        "accounts",
        "SELECT COUNT(*) FROM accounts WHERE tenant_id = $1",
    ),
    ("icon", "icons", "SELECT COUNT(*) FROM icons WHERE tenant_id = $1"),
    ("line", "lines", "SELECT COUNT(*) FROM lines WHERE tenant_id = $1"),
    (
        "API token",
        "API tokens",
        "SELECT COUNT(*) FROM api_tokens WHERE tenant_id = $1",
    ),
    (
        "webhook",
        "webhooks",
        "SELECT COUNT(*) FROM webhooks WHERE tenant_id = $1",
    ),
    (
        "webhook delivery",
        "webhook deliveries",
        "SELECT COUNT(*) FROM webhook_deliveries WHERE tenant_id = $1",
    ),
    (
        "registration",
        "registrations",
        "SELECT COUNT(*) FROM registrations WHERE tenant_id = $1",
    ),
    (
        "call record",
        "call records",
        "SELECT COUNT(*) FROM cdrs WHERE tenant_id = $1",
    ),
];
const RELAY_REMOVES: &[Count] = &[("line", "lines", "SELECT COUNT(*) FROM lines WHERE relay_id = $1")];
const RELAY_UNLINKS: &[Count] = &[(
    "call record",
    "call records",
    "SELECT COUNT(*) FROM cdrs WHERE line_id IN (SELECT id FROM lines WHERE relay_id = $1)",
)];
const LINE_UNLINKS: &[Count] = &[(
    "call record",
    "call records",
    "SELECT COUNT(*) FROM cdrs WHERE line_id = $1",
)];
const ICON_UNLINKS: &[Count] = &[(
    "call record",
    "call records",
    "SELECT COUNT(*) FROM cdrs WHERE icon_id = $1",
)];
const ACCOUNT_UNLINKS: &[Count] = &[(
    "call record",
    "call records",
    "SELECT COUNT(*) FROM cdrs WHERE account_id = $1",
)];
const WEBHOOK_REMOVES: &[Count] = &[(
    "webhook delivery",
    "webhook deliveries",
    "SELECT COUNT(*) FROM webhook_deliveries WHERE webhook_id = $1",
)];

impl Directory {
    async fn counted(&self, id: &str, counts: &[Count]) -> Result<Vec<Dependents>> {
        let mut found = Vec::new();
        for (one, many, sql) in counts {
            let count: i64 = sqlx::query_scalar(*sql).bind(id).fetch_one(&self.pool).await?;
            if count > 0 {
                let what = if count == 1 { one } else { many };
                found.push(Dependents {
                    what: (*what).to_owned(),
                    count,
                });
            }
        }
        Ok(found)
    }

    async fn impact(
        &self,
        kind: &str,
        name: String,
        id: &str,
        removes: &[Count],
        unlinks: &[Count],
    ) -> Result<DeleteImpact> {
        Ok(DeleteImpact {
            kind: kind.to_owned(),
            name,
            removes: self.counted(id, removes).await?,
            unlinks: self.counted(id, unlinks).await?,
        })
    }

    /// What deleting a tenant (name or id, within `scope`) removes.
    pub async fn tenant_delete_impact(&self, scope: &Scope, key: &str) -> Result<DeleteImpact> {
        let tenant = self.tenant_in(scope, key).await?;
        self.impact("tenant", tenant.name, &tenant.id, TENANT_REMOVES, &[])
            .await
    }

    /// What deleting a relay (name or id) removes.
    pub async fn relay_delete_impact(&self, key: &str) -> Result<DeleteImpact> {
        let relay = self.relay(key).await?;
        self.impact("relay", relay.name, &relay.id, RELAY_REMOVES, RELAY_UNLINKS)
            .await
    }

    /// What deleting a line (name or id, within `scope`) unlinks.
    pub async fn line_delete_impact(&self, scope: &Scope, key: &str) -> Result<DeleteImpact> {
        let line = self.line_in(scope, key).await?;
        self.impact("line", line.name, &line.id, &[], LINE_UNLINKS).await
    }

    /// What deleting an icon (public id or id, within `scope`) unlinks.
    pub async fn icon_delete_impact(&self, scope: &Scope, key: &str) -> Result<DeleteImpact> {
        let icon = self.icon(scope, key).await?;
        self.impact("icon", icon.public_id, &icon.id, &[], ICON_UNLINKS)
            .await
    }

    /// What deleting an account (by id, within `scope`) unlinks.
    pub async fn account_delete_impact(&self, scope: &Scope, id: &str) -> Result<DeleteImpact> {
        let account = self.account_by_id(scope, id).await?;
        self.impact("account", account.username, &account.id, &[], ACCOUNT_UNLINKS)
            .await
    }

    /// What deleting a webhook (by id, within `scope`) removes.
    pub async fn webhook_delete_impact(&self, scope: &Scope, id: &str) -> Result<DeleteImpact> {
        let webhook = self.webhook(scope, id).await?;
        self.impact("webhook", webhook.url, &webhook.id, WEBHOOK_REMOVES, &[])
            .await
    }
}
