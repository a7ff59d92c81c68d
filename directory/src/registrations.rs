//! SIP registrations (RFC 3261 s10 bindings) kept in the directory so that every
//! signaling node sharing it sees them, plus the line claims that keep two calls
//! off one line: a line is free when it is `idle` and its relay has registered a
//! contact for it; claiming flips `idle` to `dialing` in one conditional UPDATE,
//! which only one node can win.

use serde::Serialize;
use sqlx::{FromRow, Row, any::AnyRow};

use crate::db::Directory;
use crate::error::Result;
use crate::ids::{new_id, now_ms};
use crate::lines::{Line, LineState};

/// One binding of an address of record to a contact, and the flow it came over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Registration {
    /// Generated id (`reg_…`).
    pub id: String,
    /// Tenant whose domain the AOR is in.
    pub tenant_id: String,
    /// The account's user name.
    pub aor: String,
    /// Contact URI as registered.
    pub contact: String,
    /// User part of the contact URI (for relays: the line name).
    pub contact_user: String,
    /// `+sip.instance` (RFC 5626), if given.
    pub instance: String,
    /// Transport of the flow: `udp`, `tcp`, `tls`, `ws`, `wss`.
    pub transport: String,
    /// Remote address of the flow, `ip:port`.
    pub source: String,
    /// Signaling node holding the flow's connection.
    pub node: String,
    /// Connection id on that node (stream transports).
    pub connection: String,
    /// Call-ID of the REGISTER.
    pub call_id: String,
    /// CSeq of the REGISTER.
    pub cseq: i64,
    /// Expiry, Unix ms.
    pub expires_at: i64,
    /// Last refresh, Unix ms.
    pub updated_at: i64,
}

impl Registration {
    /// Reads a registration from columns named `{prefix}id`, `{prefix}aor`, ...
    fn from_prefixed_row(row: &AnyRow, prefix: &str) -> sqlx::Result<Self> {
        let col = |name: &str| format!("{prefix}{name}");
        Ok(Self {
            id: row.try_get(col("id").as_str())?,
            tenant_id: row.try_get(col("tenant_id").as_str())?,
            aor: row.try_get(col("aor").as_str())?,
            contact: row.try_get(col("contact").as_str())?,
            contact_user: row.try_get(col("contact_user").as_str())?,
            instance: row.try_get(col("instance").as_str())?,
            transport: row.try_get(col("transport").as_str())?,
            source: row.try_get(col("source").as_str())?,
            node: row.try_get(col("node").as_str())?,
            connection: row.try_get(col("connection").as_str())?,
            call_id: row.try_get(col("call_id").as_str())?,
            cseq: row.try_get(col("cseq").as_str())?,
            expires_at: row.try_get(col("expires_at").as_str())?,
            updated_at: row.try_get(col("updated_at").as_str())?,
        })
    }
}

impl FromRow<'_, AnyRow> for Registration {
    fn from_row(row: &AnyRow) -> sqlx::Result<Self> {
        Self::from_prefixed_row(row, "")
    }
}

/// A free line and the registration that reaches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FreeLine {
    /// The line.
    pub line: Line,
    /// Its relay's binding for it.
    pub registration: Registration,
}

/// A line, the registration that reaches it, and its relay's health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutableLine {
    /// The line (with its state when read).
    pub line: Line,
    /// Its relay's binding for it.
    pub registration: Registration,
    /// The relay's name.
    pub relay: String,
    /// The relay's health: `unknown`, `up` or `down`.
    pub relay_state: String,
    /// The key signaling signs the requests it sends this relay with (its
    /// account's SHA-256 HA1; see `offhook_sip::trust`).
    pub relay_key: offhook_vocab::Secret,
}

impl FromRow<'_, AnyRow> for RoutableLine {
    fn from_row(row: &AnyRow) -> sqlx::Result<Self> {
        Ok(Self {
            line: Line::from_prefixed_row(row, "l_")?,
            registration: Registration::from_prefixed_row(row, "r_")?,
            relay: row.try_get("rel_name")?,
            relay_state: row.try_get("rel_state")?,
            relay_key: offhook_vocab::Secret::new(row.try_get::<String, _>("a_key")?),
        })
    }
}

/// The columns of a line (`l_…`), its relay's binding (`r_…`) and its relay
/// (`rel_…`), for lines whose relay account is enabled and has registered them.
macro_rules! line_with_registration {
    () => {
        "SELECT l.id AS l_id, l.name AS l_name, l.relay_id AS l_relay_id, l.tenant_id AS l_tenant_id, \
         l.device_path AS l_device_path, l.kind AS l_kind, l.state AS l_state, l.fault_reason AS l_fault_reason, \
         l.state_changed_at AS l_state_changed_at, l.created_at AS l_created_at, \
         r.id AS r_id, r.tenant_id AS r_tenant_id, r.aor AS r_aor, r.contact AS r_contact, \
         r.contact_user AS r_contact_user, r.instance AS r_instance, r.transport AS r_transport, \
         r.source AS r_source, r.node AS r_node, r.connection AS r_connection, r.call_id AS r_call_id, \
         r.cseq AS r_cseq, r.expires_at AS r_expires_at, r.updated_at AS r_updated_at, \
         rel.name AS rel_name, rel.state AS rel_state, a.ha1_sha256 AS a_key \
         FROM lines l \
         JOIN relays rel ON rel.id = l.relay_id \
         JOIN accounts a ON a.username = rel.name AND a.kind = 'relay' AND a.enabled = 1 \
         JOIN registrations r ON r.tenant_id = a.tenant_id AND r.aor = a.username AND r.contact_user = l.name"
    };
}

impl Directory {
    /// Adds or refreshes a binding (same tenant, AOR and contact).
    pub async fn upsert_registration(&self, mut reg: Registration) -> Result<Registration> {
        reg.id = new_id("reg");
        sqlx::query(
            "INSERT INTO registrations (id, tenant_id, aor, contact, contact_user, instance, transport, source, node, \
             connection, call_id, cseq, expires_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
             ON CONFLICT (tenant_id, aor, contact) DO UPDATE SET contact_user = excluded.contact_user, \
             instance = excluded.instance, transport = excluded.transport, source = excluded.source, \
             node = excluded.node, connection = excluded.connection, call_id = excluded.call_id, \
             cseq = excluded.cseq, expires_at = excluded.expires_at, updated_at = excluded.updated_at",
        )
        .bind(&reg.id)
        .bind(&reg.tenant_id)
        .bind(&reg.aor)
        .bind(&reg.contact)
        .bind(&reg.contact_user)
        .bind(&reg.instance)
        .bind(&reg.transport)
        .bind(&reg.source)
        .bind(&reg.node)
        .bind(&reg.connection)
        .bind(&reg.call_id)
        .bind(reg.cseq)
        .bind(reg.expires_at)
        .bind(reg.updated_at)
        .execute(&self.pool)
        .await?;
        Ok(reg)
    }

    /// Removes one binding; `contact = None` removes every binding of the AOR.
    pub async fn remove_registration(&self, tenant_id: &str, aor: &str, contact: Option<&str>) -> Result<()> {
        sqlx::query(
            "DELETE FROM registrations WHERE tenant_id = $1 AND aor = $2 AND (CAST($3 AS TEXT) IS NULL OR contact = $3)",
        )
        .bind(tenant_id)
        .bind(aor)
        .bind(contact)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The bindings of an AOR that have not expired at `now` (Unix ms), newest first.
    pub async fn registrations(&self, tenant_id: &str, aor: &str, now: i64) -> Result<Vec<Registration>> {
        Ok(sqlx::query_as(
            "SELECT * FROM registrations WHERE tenant_id = $1 AND aor = $2 AND expires_at > $3 \
             ORDER BY updated_at DESC, id",
        )
        .bind(tenant_id)
        .bind(aor)
        .bind(now)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Deletes bindings expired at `now`; returns how many.
    pub async fn purge_registrations(&self, now: i64) -> Result<u64> {
        let done = sqlx::query("DELETE FROM registrations WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// Idle lines usable by `tenant_id` (its own and the shared pool) whose relay has
    /// a live binding for them at `now`, the tenant's own lines first.
    pub async fn free_lines(&self, tenant_id: &str, now: i64) -> Result<Vec<FreeLine>> {
        let rows: Vec<AnyRow> = sqlx::query(concat!(
            line_with_registration!(),
            " WHERE l.state = 'idle' AND (l.tenant_id = $1 OR l.tenant_id IS NULL) AND r.expires_at > $2 \
             ORDER BY CASE WHEN l.tenant_id IS NULL THEN 1 ELSE 0 END, r.updated_at DESC"
        ))
        .bind(tenant_id)
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        let free = rows
            .iter()
            .map(|row| {
                let routable = RoutableLine::from_row(row)?;
                Ok(FreeLine {
                    line: routable.line,
                    registration: routable.registration,
                })
            })
            .collect::<sqlx::Result<Vec<_>>>()?;
        Ok(free)
    }

    /// Lines (in any state) whose relay has a live binding for them at `now`: what
    /// readiness and the metrics call registered lines.
    pub async fn registered_lines(&self, now: i64) -> Result<i64> {
        self.count_registered_lines(now, "").await
    }

    /// Of [`Directory::registered_lines`], those that work at `now`: idle,
    /// dialing or in a call (not faulty or offline), as the relay set them.
    pub async fn working_lines(&self, now: i64) -> Result<i64> {
        self.count_registered_lines(now, " AND l.state IN ('idle', 'dialing', 'in-call')")
            .await
    }

    async fn count_registered_lines(&self, now: i64, and_state: &'static str) -> Result<i64> {
        let sql = format!(
            "SELECT COUNT(DISTINCT l.id) FROM lines l \
             JOIN relays rel ON rel.id = l.relay_id \
             JOIN accounts a ON a.username = rel.name AND a.kind = 'relay' AND a.enabled = 1 \
             JOIN registrations r ON r.tenant_id = a.tenant_id AND r.aor = a.username AND r.contact_user = l.name \
             WHERE r.expires_at > $1{and_state}"
        );
        Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(now)
            .fetch_one(&self.pool)
            .await?)
    }

    /// Every line of every tenant whose relay has a live binding for it at `now`,
    /// whatever its state, with its relay's health: what a signaling node keeps in
    /// memory to route calls. Ordered like [`Directory::free_lines`] within a tenant.
    pub async fn routable_lines(&self, now: i64) -> Result<Vec<RoutableLine>> {
        let rows: Vec<AnyRow> = sqlx::query(concat!(
            line_with_registration!(),
            " WHERE r.expires_at > $1 ORDER BY CASE WHEN l.tenant_id IS NULL THEN 1 ELSE 0 END, r.updated_at DESC"
        ))
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        let lines = rows
            .iter()
            .map(RoutableLine::from_row)
            .collect::<sqlx::Result<Vec<_>>>()?;
        Ok(lines)
    }

    /// Claims an idle line for a call; false when another call got it first.
    pub async fn claim_line(&self, line_id: &str) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE lines SET state = 'dialing', state_changed_at = $1 WHERE id = $2 AND state = 'idle'",
        )
        .bind(now_ms())
        .bind(line_id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Sets a claimed line's state (`in-call`, or `idle` to release it).
    pub async fn set_line_state(&self, line_id: &str, state: LineState) -> Result<()> {
        sqlx::query(crate::lines::SET_LINE_STATE)
            .bind(state.as_str())
            .bind(now_ms())
            .bind(line_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
