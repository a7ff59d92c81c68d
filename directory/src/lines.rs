//! Relays and their lines. A relay is a media process that owns modems; each line
//! is one modem (optionally with a sound card carrying its audio) or an emulated
//! modem. A line belongs to one tenant or, with no tenant, to the ISP's shared pool.

use serde::Serialize;
use sqlx::{FromRow, Row, any::AnyRow};

use crate::db::{Directory, Scope};
use crate::error::{DirectoryError, Result};
use crate::ids::{new_id, now_ms};
use crate::validate;
use crate::words::word;
pub(crate) use offhook_vocab::{LineKind, LineState};

/// Sets a line's state (`$1`) at `$2` (Unix ms) for the line `$3`: a fault
/// reason stays only while the line is in fault.
pub(crate) const SET_LINE_STATE: &str = "UPDATE lines SET state = $1, state_changed_at = $2, \
     fault_reason = CASE WHEN $1 = 'fault' THEN fault_reason ELSE NULL END WHERE id = $3";

/// A relay row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Relay {
    /// Generated id (`rel_…`).
    pub id: String,
    /// Unique name (also its SIP user name when it registers).
    pub name: String,
    /// Where signaling reaches it (its registered contact), once known.
    pub sip_uri: String,
    /// `unknown`, `up` or `down` from health checks.
    pub state: String,
    /// Last successful health check or registration, Unix ms.
    pub last_seen_at: Option<i64>,
    /// Creation time, Unix ms.
    pub created_at: i64,
}

impl FromRow<'_, AnyRow> for Relay {
    fn from_row(row: &AnyRow) -> sqlx::Result<Self> {
        Ok(Self {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            sip_uri: row.try_get("sip_uri")?,
            state: row.try_get("state")?,
            last_seen_at: row.try_get("last_seen_at")?,
            created_at: row.try_get("created_at")?,
        })
    }
}

/// Input for [`Directory::create_relay`].
#[derive(Debug, Clone)]
pub struct NewRelay {
    /// Unique name.
    pub name: String,
}

/// A line row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Line {
    /// Generated id (`lin_…`).
    pub id: String,
    /// Unique name.
    pub name: String,
    /// Relay that owns the device.
    pub relay_id: String,
    /// Tenant that owns the line; `None` for the shared pool.
    pub tenant_id: Option<String>,
    /// Serial device path (`/dev/ttyACM0`), or `emulated`.
    pub device_path: String,
    /// Backend kind.
    pub kind: LineKind,
    /// What it is doing.
    pub state: LineState,
    /// Why the line is in `fault`, as its relay reported it.
    pub fault_reason: Option<String>,
    /// When the state last changed, Unix ms (unknown for lines not changed since).
    pub state_changed_at: Option<i64>,
    /// Creation time, Unix ms.
    pub created_at: i64,
}

impl Line {
    /// Reads a line from columns named `{prefix}id`, `{prefix}name`, ...
    pub(crate) fn from_prefixed_row(row: &AnyRow, prefix: &str) -> sqlx::Result<Self> {
        let col = |name: &str| format!("{prefix}{name}");
        Ok(Self {
            id: row.try_get(col("id").as_str())?,
            name: row.try_get(col("name").as_str())?,
            relay_id: row.try_get(col("relay_id").as_str())?,
            tenant_id: row.try_get(col("tenant_id").as_str())?,
            device_path: row.try_get(col("device_path").as_str())?,
            kind: word(row, &col("kind"))?,
            state: word(row, &col("state"))?,
            fault_reason: row.try_get(col("fault_reason").as_str())?,
            state_changed_at: row.try_get(col("state_changed_at").as_str())?,
            created_at: row.try_get(col("created_at").as_str())?,
        })
    }
}

impl FromRow<'_, AnyRow> for Line {
    fn from_row(row: &AnyRow) -> sqlx::Result<Self> {
        Self::from_prefixed_row(row, "")
    }
}

/// Input for [`Directory::create_line`].
#[derive(Debug, Clone)]
pub struct NewLine {
    /// Unique name.
    pub name: String,
    /// Relay name or id; created when it does not exist yet.
    pub relay: String,
    /// Tenant name or id; `None` for the shared pool.
    pub tenant: Option<String>,
    /// Device path.
    pub device_path: String,
    /// Backend kind.
    pub kind: LineKind,
}

/// Changes for [`Directory::update_line`]; `None` keeps the current value.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LineUpdate {
    /// New device path.
    pub device_path: Option<String>,
    /// New kind.
    pub kind: Option<LineKind>,
    /// New state.
    pub state: Option<LineState>,
}

fn device_path(value: &str) -> Result<String> {
    let ok = !value.is_empty() && value.len() <= 255 && !value.chars().any(char::is_control);
    if ok {
        Ok(value.to_owned())
    } else {
        Err(DirectoryError::invalid(
            "device",
            "must be a path of 1-255 characters",
        ))
    }
}

/// How a fault the relay reported begins (see [`Directory::mirror_relay_line`]).
const RELAY_FAULT: &str = "relay: ";

impl Directory {
    /// Creates a relay.
    pub async fn create_relay(&self, new: NewRelay) -> Result<Relay> {
        let relay = Relay {
            id: new_id("rel"),
            name: validate::name("relay", &new.name)?,
            sip_uri: String::new(),
            state: "unknown".to_owned(),
            last_seen_at: None,
            created_at: now_ms(),
        };
        sqlx::query("INSERT INTO relays (id, name, sip_uri, state, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(&relay.id)
            .bind(&relay.name)
            .bind(&relay.sip_uri)
            .bind(&relay.state)
            .bind(relay.created_at)
            .execute(&self.pool)
            .await
            .map_err(DirectoryError::on_unique(|| {
                format!("relay '{}' exists", relay.name)
            }))?;
        Ok(relay)
    }

    /// Finds a relay by name or id.
    pub async fn relay(&self, name_or_id: &str) -> Result<Relay> {
        sqlx::query_as("SELECT * FROM relays WHERE name = $1 OR id = $1")
            .bind(name_or_id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| DirectoryError::not_found("relay", name_or_id))
    }

    /// Lists all relays (operator data: relays are the ISP's).
    pub async fn list_relays(&self) -> Result<Vec<Relay>> {
        Ok(sqlx::query_as("SELECT * FROM relays ORDER BY name")
            .fetch_all(&self.pool)
            .await?)
    }

    /// Deletes a relay and, by cascade, its lines.
    pub async fn delete_relay(&self, name_or_id: &str) -> Result<()> {
        let relay = self.relay(name_or_id).await?;
        sqlx::query("DELETE FROM relays WHERE id = $1")
            .bind(&relay.id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records a relay's contact and health (`up`/`down`) at `at` (Unix ms).
    pub async fn set_relay_seen(&self, name_or_id: &str, sip_uri: &str, state: &str, at: i64) -> Result<()> {
        let relay = self.relay(name_or_id).await?;
        sqlx::query("UPDATE relays SET sip_uri = $1, state = $2, last_seen_at = $3 WHERE id = $4")
            .bind(sip_uri)
            .bind(state)
            .bind(at)
            .bind(&relay.id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records a relay's health (`up`/`down`) without touching when it was last seen.
    pub async fn set_relay_state(&self, name_or_id: &str, state: &str) -> Result<()> {
        let relay = self.relay(name_or_id).await?;
        sqlx::query("UPDATE relays SET state = $1 WHERE id = $2")
            .bind(state)
            .bind(&relay.id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Creates a line, and its relay if that does not exist yet.
    pub async fn create_line(&self, new: NewLine) -> Result<Line> {
        let name = validate::name("line", &new.name)?;
        let device_path = device_path(&new.device_path)?;
        let tenant_id = match &new.tenant {
            Some(tenant) => Some(self.tenant(tenant).await?.id),
            None => None,
        };
        let relay = match self.relay(&new.relay).await {
            Err(DirectoryError::NotFound { .. }) => {
                self.create_relay(NewRelay {
                    name: new.relay.clone(),
                })
                .await?
            }
            other => other?,
        };
        let line = Line {
            id: new_id("lin"),
            name,
            relay_id: relay.id,
            tenant_id,
            device_path,
            kind: new.kind,
            state: LineState::Idle,
            fault_reason: None,
            state_changed_at: None,
            created_at: now_ms(),
        };
        sqlx::query(
            "INSERT INTO lines (id, name, relay_id, tenant_id, device_path, kind, state, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&line.id)
        .bind(&line.name)
        .bind(&line.relay_id)
        .bind(&line.tenant_id)
        .bind(&line.device_path)
        .bind(line.kind.as_str())
        .bind(line.state.as_str())
        .bind(line.created_at)
        .execute(&self.pool)
        .await
        .map_err(DirectoryError::on_unique(|| {
            format!("line '{}' exists", line.name)
        }))?;
        Ok(line)
    }

    /// Lists lines visible in `scope`: a tenant sees its own lines and the shared pool.
    pub async fn list_lines(&self, scope: &Scope) -> Result<Vec<Line>> {
        let rows = match scope {
            Scope::Operator => {
                sqlx::query_as("SELECT * FROM lines ORDER BY name")
                    .fetch_all(&self.pool)
                    .await?
            }
            Scope::Tenant(tenant) => {
                sqlx::query_as("SELECT * FROM lines WHERE tenant_id = $1 OR tenant_id IS NULL ORDER BY name")
                    .bind(tenant)
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        Ok(rows)
    }

    /// Lists the lines of one relay (what it registers).
    pub async fn relay_lines(&self, relay: &str) -> Result<Vec<Line>> {
        let relay = self.relay(relay).await?;
        Ok(
            sqlx::query_as("SELECT * FROM lines WHERE relay_id = $1 ORDER BY name")
                .bind(&relay.id)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// Finds a line by name or id.
    pub async fn line(&self, name_or_id: &str) -> Result<Line> {
        sqlx::query_as("SELECT * FROM lines WHERE name = $1 OR id = $1")
            .bind(name_or_id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| DirectoryError::not_found("line", name_or_id))
    }

    /// Finds a line by name or id, within `scope` (a tenant sees its own lines and
    /// the shared pool).
    pub async fn line_in(&self, scope: &Scope, name_or_id: &str) -> Result<Line> {
        let line = self.line(name_or_id).await?;
        if scope.sees(line.tenant_id.as_deref(), true) {
            Ok(line)
        } else {
            Err(DirectoryError::not_found("line", name_or_id))
        }
    }

    /// Changes a line.
    pub async fn update_line(&self, name_or_id: &str, update: LineUpdate) -> Result<Line> {
        let mut line = self.line(name_or_id).await?;
        if let Some(path) = update.device_path {
            line.device_path = device_path(&path)?;
        }
        if let Some(state) = update.state {
            if state != line.state {
                line.state_changed_at = Some(now_ms());
                if state != LineState::Fault {
                    line.fault_reason = None;
                }
            }
            line.state = state;
        }
        line.kind = update.kind.unwrap_or(line.kind);
        sqlx::query(
            "UPDATE lines SET device_path = $1, kind = $2, state = $3, fault_reason = $4, state_changed_at = $5 \
             WHERE id = $6",
        )
        .bind(&line.device_path)
        .bind(line.kind.as_str())
        .bind(line.state.as_str())
        .bind(&line.fault_reason)
        .bind(line.state_changed_at)
        .bind(&line.id)
        .execute(&self.pool)
        .await?;
        Ok(line)
    }

    /// For the relay owning a line: puts it in `fault` at `at` (Unix ms) and says
    /// why (a serial error, a modem that stopped answering, …), for the operator.
    pub async fn set_line_fault(&self, line_id: &str, reason: &str, at: i64) -> Result<()> {
        let reason: String = reason.chars().filter(|c| !c.is_control()).take(300).collect();
        let done = sqlx::query(
            "UPDATE lines SET state = 'fault', fault_reason = $1, state_changed_at = $2 WHERE id = $3",
        )
        .bind(reason)
        .bind(at)
        .bind(line_id)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(DirectoryError::not_found("line", line_id));
        }
        Ok(())
    }

    /// For the relay owning `line` (by name): mirrors what its modem says, where
    /// no call holds the line. `Some(why)`: the modem is faulty, the line goes to
    /// `fault` with the reason (`relay: …`); `None`: it works, a line the relay
    /// had put in `fault` goes back to `idle` (one an operator put there stays).
    /// True when the line changed. (A line a node holds is the node's:
    /// its call ends `line-fault` and frees it, and the next mirror marks it.)
    pub async fn mirror_relay_line(
        &self,
        relay: &str,
        line: &str,
        fault: Option<&str>,
        at: i64,
    ) -> Result<bool> {
        // $1 the reason (NULL: it works), $2 when, $3 the line, $4 its relay.
        let why: Option<String> = fault.map(|why| {
            let why: String = why.chars().filter(|c| !c.is_control()).take(290).collect();
            format!("{RELAY_FAULT}{why}")
        });
        let sql = if why.is_some() {
            "UPDATE lines SET state = 'fault', fault_reason = $1, state_changed_at = $2 \
             WHERE name = $3 AND relay_id = (SELECT id FROM relays WHERE name = $4) \
             AND owner_id IS NULL AND state <> 'fault'"
        } else {
            "UPDATE lines SET state = 'idle', fault_reason = $1, state_changed_at = $2 \
             WHERE name = $3 AND relay_id = (SELECT id FROM relays WHERE name = $4) \
             AND owner_id IS NULL AND state = 'fault' AND fault_reason LIKE 'relay: %'"
        };
        let done = sqlx::query(sql)
            .bind(why)
            .bind(at)
            .bind(line)
            .bind(relay)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// An operator's reset of a line no live call holds (no owner, or `owner`
    /// itself): back to `idle` at `at` (Unix ms), fault reason cleared. False
    /// when another owner holds it (that owner resets it).
    pub async fn reset_unheld_line(&self, line_id: &str, owner: &str, at: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE lines SET state = 'idle', fault_reason = NULL, state_changed_at = $1, owner_id = NULL \
             WHERE id = $2 AND (owner_id IS NULL OR owner_id = $3)",
        )
        .bind(at)
        .bind(line_id)
        .bind(owner)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Deletes a line.
    pub async fn delete_line(&self, name_or_id: &str) -> Result<()> {
        let line = self.line(name_or_id).await?;
        sqlx::query("DELETE FROM lines WHERE id = $1")
            .bind(&line.id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

impl Directory {
    /// Lines per state (`idle`, `dialing`, `in-call`, `fault`, `offline`).
    pub async fn line_states(&self) -> Result<Vec<(String, i64)>> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT state, COUNT(*) AS lines FROM lines GROUP BY state ORDER BY state")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows)
    }
}
