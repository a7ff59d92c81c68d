//! Icons: the call buttons site owners embed. Each belongs to a tenant and dials one
//! number from the directory (never one from the visitor), only from allowed web
//! origins, within opening hours and rate limits.

use serde::Serialize;
use sqlx::{FromRow, Row, any::AnyRow};

use crate::db::{Directory, Scope};
use crate::error::{DirectoryError, Result};
use crate::hours::{self, OpeningHours};
use crate::ids::{new_id, now_ms};
use crate::validate;

/// Shortest ring timeout an icon may set: a phone needs a few rings to be picked up.
const MIN_RING_TIMEOUT_S: i64 = 5;
/// Longest ring timeout an icon may set.
const MAX_RING_TIMEOUT_S: i64 = 600;

/// An icon row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Icon {
    /// Generated internal id (`icn_…`).
    pub id: String,
    /// The id used in embed snippets and the click API.
    pub public_id: String,
    /// Owning tenant id.
    pub tenant_id: String,
    /// The number dialed.
    pub number: String,
    /// Text shown next to the icon.
    pub label: String,
    /// Disabled icons refuse calls.
    pub enabled: bool,
    /// Web origins allowed to place calls (`https://shop.example`).
    pub allowed_origins: Vec<String>,
    /// Opening hours text (empty: always open); see [`OpeningHours`].
    pub opening_hours: String,
    /// IANA time zone the opening hours are in.
    pub timezone: String,
    /// Calls through this icon at once.
    pub max_concurrent_calls: i64,
    /// New calls per minute through this icon.
    pub calls_per_minute: i64,
    /// Seconds a call through this icon rings before it ends as no answer;
    /// `None`: the relay's own timeout (`media.no_answer_s`).
    pub ring_timeout_s: Option<i64>,
    /// Creation time, Unix ms.
    pub created_at: i64,
}

impl Icon {
    /// Whether the icon is open at `at` (its hours were validated when stored).
    pub fn is_open(&self, at: chrono::DateTime<chrono::Utc>) -> bool {
        match (
            OpeningHours::parse(&self.opening_hours),
            hours::timezone(&self.timezone),
        ) {
            (Ok(hours), Ok(tz)) => hours.is_open(at, tz),
            _ => false,
        }
    }
}

impl Icon {
    /// When the icon next opens after `at`, if it has opening hours.
    pub fn next_opening(&self, at: chrono::DateTime<chrono::Utc>) -> Option<chrono::DateTime<chrono::Utc>> {
        let hours = OpeningHours::parse(&self.opening_hours).ok()?;
        hours.next_opening(at, hours::timezone(&self.timezone).ok()?)
    }
}

impl FromRow<'_, AnyRow> for Icon {
    fn from_row(row: &AnyRow) -> sqlx::Result<Self> {
        let origins: String = row.try_get("allowed_origins")?;
        Ok(Self {
            id: row.try_get("id")?,
            public_id: row.try_get("public_id")?,
            tenant_id: row.try_get("tenant_id")?,
            number: row.try_get("number")?,
            label: row.try_get("label")?,
            enabled: row.try_get::<i64, _>("enabled")? != 0,
            allowed_origins: origins.lines().map(str::to_owned).collect(),
            opening_hours: row.try_get("opening_hours")?,
            timezone: row.try_get("timezone")?,
            max_concurrent_calls: row.try_get("max_concurrent_calls")?,
            calls_per_minute: row.try_get("calls_per_minute")?,
            ring_timeout_s: row.try_get("ring_timeout_s")?,
            created_at: row.try_get("created_at")?,
        })
    }
}

/// Input for [`Directory::create_icon`].
#[derive(Debug, Clone)]
pub struct NewIcon {
    /// Tenant name or id.
    pub tenant: String,
    /// Public id; generated when `None`.
    pub public_id: Option<String>,
    /// Number to dial.
    pub number: String,
    /// Label.
    pub label: String,
    /// Enabled at creation.
    pub enabled: bool,
    /// Allowed web origins.
    pub allowed_origins: Vec<String>,
    /// Opening hours text.
    pub opening_hours: String,
    /// IANA time zone.
    pub timezone: String,
    /// Concurrent call limit.
    pub max_concurrent_calls: i64,
    /// Calls per minute limit.
    pub calls_per_minute: i64,
    /// Ring timeout in seconds; `None`: the relay's.
    pub ring_timeout_s: Option<i64>,
}

impl NewIcon {
    /// An enabled, always-open icon with default limits and no allowed origin yet.
    pub fn new(tenant: &str, number: &str, label: &str) -> Self {
        Self {
            tenant: tenant.to_owned(),
            public_id: None,
            number: number.to_owned(),
            label: label.to_owned(),
            enabled: true,
            allowed_origins: Vec::new(),
            opening_hours: String::new(),
            timezone: "UTC".to_owned(),
            max_concurrent_calls: 2,
            calls_per_minute: 10,
            ring_timeout_s: None,
        }
    }
}

/// Changes for [`Directory::update_icon`]; `None` keeps the current value.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IconUpdate {
    /// New number.
    pub number: Option<String>,
    /// New label.
    pub label: Option<String>,
    /// Enable or disable.
    pub enabled: Option<bool>,
    /// Replace the allowed origins.
    pub allowed_origins: Option<Vec<String>>,
    /// New opening hours.
    pub opening_hours: Option<String>,
    /// New time zone.
    pub timezone: Option<String>,
    /// New concurrent call limit.
    pub max_concurrent_calls: Option<i64>,
    /// New calls per minute limit.
    pub calls_per_minute: Option<i64>,
    /// New ring timeout in seconds (5-600); `null` goes back to the relay's.
    #[serde(default, deserialize_with = "validate::present")]
    #[schema(value_type = Option<i64>)]
    pub ring_timeout_s: Option<Option<i64>>,
}

/// Checks every field of an icon; returns it normalised.
fn validated(mut icon: Icon) -> Result<Icon> {
    icon.number = validate::number(&icon.number)?;
    icon.label = validate::label("label", &icon.label)?;
    icon.allowed_origins = icon
        .allowed_origins
        .iter()
        .map(|o| validate::origin(o))
        .collect::<Result<_>>()?;
    OpeningHours::parse(&icon.opening_hours)?;
    hours::timezone(&icon.timezone)?;
    icon.max_concurrent_calls =
        validate::bounded("max_concurrent_calls", icon.max_concurrent_calls, 1, 1000)?;
    icon.calls_per_minute = validate::bounded("calls_per_minute", icon.calls_per_minute, 1, 10_000)?;
    icon.ring_timeout_s = icon
        .ring_timeout_s
        .map(|s| validate::bounded("ring_timeout_s", s, MIN_RING_TIMEOUT_S, MAX_RING_TIMEOUT_S))
        .transpose()?;
    let id_ok = (3..=64).contains(&icon.public_id.len())
        && icon
            .public_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !id_ok {
        return Err(DirectoryError::invalid(
            "public_id",
            "must be 3-64 letters, digits, '-' or '_'",
        ));
    }
    Ok(icon)
}

impl Directory {
    /// Creates an icon after validating every field.
    pub async fn create_icon(&self, new: NewIcon) -> Result<Icon> {
        let tenant = self.tenant(&new.tenant).await?;
        let icon = validated(Icon {
            id: new_id("icn"),
            public_id: new.public_id.unwrap_or_else(|| new_id("ic")),
            tenant_id: tenant.id,
            number: new.number,
            label: new.label,
            enabled: new.enabled,
            allowed_origins: new.allowed_origins,
            opening_hours: new.opening_hours,
            timezone: new.timezone,
            max_concurrent_calls: new.max_concurrent_calls,
            calls_per_minute: new.calls_per_minute,
            ring_timeout_s: new.ring_timeout_s,
            created_at: now_ms(),
        })?;
        self.allowed_destination(&icon.tenant_id, "number", &icon.number)
            .await?;
        sqlx::query(
            "INSERT INTO icons (id, public_id, tenant_id, number, label, enabled, allowed_origins, opening_hours, \
             timezone, max_concurrent_calls, calls_per_minute, ring_timeout_s, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(&icon.id)
        .bind(&icon.public_id)
        .bind(&icon.tenant_id)
        .bind(&icon.number)
        .bind(&icon.label)
        .bind(i64::from(icon.enabled))
        .bind(icon.allowed_origins.join("\n"))
        .bind(&icon.opening_hours)
        .bind(&icon.timezone)
        .bind(icon.max_concurrent_calls)
        .bind(icon.calls_per_minute)
        .bind(icon.ring_timeout_s)
        .bind(icon.created_at)
        .execute(&self.pool)
        .await
        .map_err(DirectoryError::on_unique(|| format!("icon '{}' exists", icon.public_id)))?;
        Ok(icon)
    }

    /// Lists the icons visible in `scope`.
    pub async fn list_icons(&self, scope: &Scope) -> Result<Vec<Icon>> {
        let rows = match scope {
            Scope::Operator => {
                sqlx::query_as("SELECT * FROM icons ORDER BY tenant_id, created_at")
                    .fetch_all(&self.pool)
                    .await?
            }
            Scope::Tenant(tenant) => {
                sqlx::query_as("SELECT * FROM icons WHERE tenant_id = $1 ORDER BY created_at")
                    .bind(tenant)
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        Ok(rows)
    }

    /// Finds an icon by public id (or internal id), within `scope`.
    pub async fn icon(&self, scope: &Scope, key: &str) -> Result<Icon> {
        let icon: Option<Icon> = sqlx::query_as("SELECT * FROM icons WHERE public_id = $1 OR id = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        icon.filter(|icon| match scope {
            Scope::Operator => true,
            Scope::Tenant(tenant) => &icon.tenant_id == tenant,
        })
        .ok_or_else(|| DirectoryError::not_found("icon", key))
    }

    /// Changes an icon; the whole result is validated before anything is written.
    pub async fn update_icon(&self, scope: &Scope, key: &str, update: IconUpdate) -> Result<Icon> {
        let current = self.icon(scope, key).await?;
        let number_changed = update.number.is_some();
        let icon = validated(Icon {
            number: update.number.unwrap_or(current.number),
            label: update.label.unwrap_or(current.label),
            enabled: update.enabled.unwrap_or(current.enabled),
            allowed_origins: update.allowed_origins.unwrap_or(current.allowed_origins),
            opening_hours: update.opening_hours.unwrap_or(current.opening_hours),
            timezone: update.timezone.unwrap_or(current.timezone),
            max_concurrent_calls: update
                .max_concurrent_calls
                .unwrap_or(current.max_concurrent_calls),
            calls_per_minute: update.calls_per_minute.unwrap_or(current.calls_per_minute),
            ring_timeout_s: update.ring_timeout_s.unwrap_or(current.ring_timeout_s),
            ..current
        })?;
        if number_changed {
            self.allowed_destination(&icon.tenant_id, "number", &icon.number)
                .await?;
        }
        sqlx::query(
            "UPDATE icons SET number = $1, label = $2, enabled = $3, allowed_origins = $4, opening_hours = $5, \
             timezone = $6, max_concurrent_calls = $7, calls_per_minute = $8, ring_timeout_s = $9 WHERE id = $10",
        )
        .bind(&icon.number)
        .bind(&icon.label)
        .bind(i64::from(icon.enabled))
        .bind(icon.allowed_origins.join("\n"))
        .bind(&icon.opening_hours)
        .bind(&icon.timezone)
        .bind(icon.max_concurrent_calls)
        .bind(icon.calls_per_minute)
        .bind(icon.ring_timeout_s)
        .bind(&icon.id)
        .execute(&self.pool)
        .await?;
        Ok(icon)
    }

    /// Deletes an icon within `scope`.
    pub async fn delete_icon(&self, scope: &Scope, key: &str) -> Result<()> {
        let icon = self.icon(scope, key).await?;
        sqlx::query("DELETE FROM icons WHERE id = $1")
            .bind(&icon.id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
