//! The audit log: who changed what in the directory, and when. The admin API and
//! the command line write an entry after each change they make (never with a
//! secret in it); the operator reads every entry, a tenant admin the entries
//! about its own tenant's objects.

use serde::Serialize;
use serde_json::{Map, Value, json};
use sqlx::{FromRow, Row, any::AnyRow};

use crate::db::{Directory, Scope};
use crate::error::Result;
use crate::ids::new_id;
use crate::impact::DeleteImpact;

/// Who made a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The API token's name, or `cli:USER`.
    pub name: String,
    /// The API token's id (none for the command line).
    pub token_id: Option<String>,
    /// A tenant admin's tenant; `None` for the operator and the command line.
    pub tenant_id: Option<String>,
}

impl Actor {
    /// The command line run by the operating system user `user`.
    pub fn command_line(user: &str) -> Self {
        Self {
            name: format!("cli:{user}"),
            token_id: None,
            tenant_id: None,
        }
    }
}

/// What was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum AuditAction {
    /// An object was made.
    Create,
    /// An object was changed.
    Update,
    /// An object (and what it owned) was removed.
    Delete,
    /// A hang-up of a call was requested.
    Hangup,
    /// A reset of a line was requested.
    Reset,
    /// A webhook's secret was replaced.
    RotateSecret,
    /// A webhook delivery was sent again.
    Retry,
}

impl AuditAction {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Update => "update",
            Self::Delete => "delete",
            Self::Hangup => "hangup",
            Self::Reset => "reset",
            Self::RotateSecret => "rotate-secret",
            Self::Retry => "retry",
        }
    }
}

/// One change to write to the log (the actor is given when it is written).
#[derive(Debug, Clone)]
pub struct AuditChange {
    /// The tenant the object belongs to (`None`: the ISP's own).
    pub tenant_id: Option<String>,
    /// What was done.
    pub action: AuditAction,
    /// Kind of object: `tenant`, `icon`, `line`, `call`, …
    pub object_kind: &'static str,
    /// Its name or id.
    pub object_key: String,
    /// The fields set, or the object removed; never a secret.
    pub changes: Value,
}

/// What changed between two serialized objects: `{field: {from, to}}`.
fn changed_fields(before: &impl Serialize, after: &impl Serialize) -> Value {
    let (before, after) = (json!(before), json!(after));
    let mut fields = Map::new();
    if let (Value::Object(before), Value::Object(after)) = (&before, &after) {
        for (field, to) in after {
            let from = before.get(field).unwrap_or(&Value::Null);
            if from != to {
                fields.insert(field.clone(), json!({ "from": from, "to": to }));
            }
        }
    }
    Value::Object(fields)
}

impl AuditChange {
    /// `object` was made.
    pub fn created(kind: &'static str, key: &str, tenant_id: Option<&str>, object: &impl Serialize) -> Self {
        Self::new(AuditAction::Create, kind, key, tenant_id, json!(object))
    }

    /// `before` became `after`.
    pub fn updated(
        kind: &'static str,
        key: &str,
        tenant_id: Option<&str>,
        before: &impl Serialize,
        after: &impl Serialize,
    ) -> Self {
        Self::new(
            AuditAction::Update,
            kind,
            key,
            tenant_id,
            changed_fields(before, after),
        )
    }

    /// `object` was removed, and with it what `impact` counted.
    pub fn deleted(
        kind: &'static str,
        key: &str,
        tenant_id: Option<&str>,
        object: &impl Serialize,
        impact: &DeleteImpact,
    ) -> Self {
        let changes = json!({ "deleted": object, "removed": impact.removes, "unlinked": impact.unlinks });
        Self::new(AuditAction::Delete, kind, key, tenant_id, changes)
    }

    /// Any action.
    pub fn new(
        action: AuditAction,
        kind: &'static str,
        key: &str,
        tenant_id: Option<&str>,
        changes: Value,
    ) -> Self {
        Self {
            tenant_id: tenant_id.map(str::to_owned),
            action,
            object_kind: kind,
            object_key: key.to_owned(),
            changes,
        }
    }
}

/// A stored entry.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    /// Generated id (`aud_…`).
    pub id: String,
    /// When, Unix ms.
    pub at: i64,
    /// The API token's name, or `cli:USER`.
    pub actor: String,
    /// The API token's id.
    pub actor_token_id: Option<String>,
    /// A tenant admin's tenant.
    pub actor_tenant_id: Option<String>,
    /// The tenant the object belongs to.
    pub tenant_id: Option<String>,
    /// `create`, `update`, `delete`, `hangup`, `reset`, `rotate-secret`, `retry`.
    pub action: String,
    /// Kind of object.
    pub object_kind: String,
    /// Its name or id.
    pub object_key: String,
    /// The fields set, or the object removed.
    #[schema(value_type = Object)]
    pub changes: serde_json::Value,
}

impl FromRow<'_, AnyRow> for AuditEntry {
    fn from_row(row: &AnyRow) -> sqlx::Result<Self> {
        let changes: String = row.try_get("changes")?;
        Ok(Self {
            id: row.try_get("id")?,
            at: row.try_get("at")?,
            actor: row.try_get("actor")?,
            actor_token_id: row.try_get("actor_token_id")?,
            actor_tenant_id: row.try_get("actor_tenant_id")?,
            tenant_id: row.try_get("tenant_id")?,
            action: row.try_get("action")?,
            object_kind: row.try_get("object_kind")?,
            object_key: row.try_get("object_key")?,
            changes: serde_json::from_str(&changes).unwrap_or(Value::String(changes)),
        })
    }
}

/// Which entries to list.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Of this kind of object only.
    pub object_kind: Option<String>,
    /// Of this object only (name or id as recorded).
    pub object_key: Option<String>,
    /// At or after, Unix ms.
    pub since: Option<i64>,
    /// At most this many (1-1000, default 100), newest first.
    pub limit: Option<i64>,
    /// Skip this many first.
    pub offset: Option<i64>,
}

impl Directory {
    /// Writes `actor`'s `change` at `at` (Unix ms).
    pub async fn record_audit(&self, actor: &Actor, change: AuditChange, at: i64) -> Result<AuditEntry> {
        let stored = AuditEntry {
            id: new_id("aud"),
            at,
            actor: actor.name.clone(),
            actor_token_id: actor.token_id.clone(),
            actor_tenant_id: actor.tenant_id.clone(),
            tenant_id: change.tenant_id,
            action: change.action.as_str().to_owned(),
            object_kind: change.object_kind.to_owned(),
            object_key: change.object_key,
            changes: change.changes,
        };
        sqlx::query(
            "INSERT INTO audit_log (id, at, actor, actor_token_id, actor_tenant_id, tenant_id, action, \
             object_kind, object_key, changes) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&stored.id)
        .bind(stored.at)
        .bind(&stored.actor)
        .bind(&stored.actor_token_id)
        .bind(&stored.actor_tenant_id)
        .bind(&stored.tenant_id)
        .bind(&stored.action)
        .bind(&stored.object_kind)
        .bind(&stored.object_key)
        .bind(stored.changes.to_string())
        .execute(&self.pool)
        .await?;
        Ok(stored)
    }

    /// Entries in `scope` matching `filter`, newest first, and how many match.
    pub async fn list_audit(&self, scope: &Scope, filter: &AuditFilter) -> Result<(Vec<AuditEntry>, i64)> {
        const WHERE: &str = "WHERE (CAST($1 AS TEXT) IS NULL OR tenant_id = $1) \
             AND (CAST($2 AS TEXT) IS NULL OR object_kind = $2) AND (CAST($3 AS TEXT) IS NULL OR object_key = $3) \
             AND (CAST($4 AS BIGINT) IS NULL OR at >= $4)";
        let sql = format!("SELECT * FROM audit_log {WHERE} ORDER BY at DESC, id DESC LIMIT $5 OFFSET $6");
        let entries = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(scope.tenant_id())
            .bind(filter.object_kind.as_deref())
            .bind(filter.object_key.as_deref())
            .bind(filter.since)
            .bind(filter.limit.unwrap_or(100).clamp(1, 1000))
            .bind(filter.offset.unwrap_or(0).max(0))
            .fetch_all(&self.pool)
            .await?;
        let count = format!("SELECT COUNT(*) FROM audit_log {WHERE}");
        let total: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(count))
            .bind(scope.tenant_id())
            .bind(filter.object_kind.as_deref())
            .bind(filter.object_key.as_deref())
            .bind(filter.since)
            .fetch_one(&self.pool)
            .await?;
        Ok((entries, total))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_names_only_what_differs() {
        let before = json!({ "label": "A", "number": "1", "enabled": true });
        let after = json!({ "label": "B", "number": "1", "enabled": false, "new": 1 });
        assert_eq!(
            changed_fields(&before, &after),
            json!({
                "label": { "from": "A", "to": "B" },
                "enabled": { "from": true, "to": false },
                "new": { "from": null, "to": 1 },
            })
        );
    }
}
