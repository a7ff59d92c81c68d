//! Tenants: the ISP's customers, each with its own SIP domain (the digest realm of
//! its accounts).

use serde::Serialize;
use sqlx::{FromRow, Row, any::AnyRow};

use crate::db::{Directory, Scope};
use crate::error::{DirectoryError, Result};
use crate::ids::{new_id, now_ms};
use crate::validate;

/// A tenant row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Tenant {
    /// Generated id (`ten_…`).
    pub id: String,
    /// Short unique name used on the command line (`acme`).
    pub name: String,
    /// The tenant's SIP domain and digest realm.
    pub sip_domain: String,
    /// Creation time, Unix ms.
    pub created_at: i64,
}

impl FromRow<'_, AnyRow> for Tenant {
    fn from_row(row: &AnyRow) -> sqlx::Result<Self> {
        Ok(Self {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            sip_domain: row.try_get("sip_domain")?,
            created_at: row.try_get("created_at")?,
        })
    }
}

/// Input for [`Directory::create_tenant`].
#[derive(Debug, Clone)]
pub struct NewTenant {
    /// Short unique name.
    pub name: String,
    /// SIP domain.
    pub sip_domain: String,
}

/// Changes for [`Directory::update_tenant`]; `None` keeps the current value.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantUpdate {
    /// New SIP domain; refused while the tenant has accounts (their HA1 is bound
    /// to the old realm).
    pub sip_domain: Option<String>,
}

impl Directory {
    /// Creates a tenant after validating its name and domain.
    pub async fn create_tenant(&self, new: NewTenant) -> Result<Tenant> {
        let tenant = Tenant {
            id: new_id("ten"),
            name: validate::name("tenant", &new.name)?,
            sip_domain: validate::domain(&new.sip_domain)?,
            created_at: now_ms(),
        };
        sqlx::query("INSERT INTO tenants (id, name, sip_domain, created_at) VALUES ($1, $2, $3, $4)")
            .bind(&tenant.id)
            .bind(&tenant.name)
            .bind(&tenant.sip_domain)
            .bind(tenant.created_at)
            .execute(&self.pool)
            .await
            .map_err(DirectoryError::on_unique(|| {
                format!(
                    "a tenant named '{}' or with domain '{}' exists",
                    tenant.name, tenant.sip_domain
                )
            }))?;
        Ok(tenant)
    }

    /// Lists the tenants visible in `scope`, by name.
    pub async fn list_tenants(&self, scope: &Scope) -> Result<Vec<Tenant>> {
        let rows = match scope {
            Scope::Operator => {
                sqlx::query_as("SELECT id, name, sip_domain, created_at FROM tenants ORDER BY name")
                    .fetch_all(&self.pool)
                    .await?
            }
            Scope::Tenant(id) => {
                sqlx::query_as("SELECT id, name, sip_domain, created_at FROM tenants WHERE id = $1")
                    .bind(id)
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        Ok(rows)
    }

    /// Finds a tenant by name or id.
    pub async fn tenant(&self, name_or_id: &str) -> Result<Tenant> {
        sqlx::query_as("SELECT id, name, sip_domain, created_at FROM tenants WHERE name = $1 OR id = $1")
            .bind(name_or_id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| DirectoryError::not_found("tenant", name_or_id))
    }

    /// Finds a tenant by name or id, within `scope` (a tenant sees itself only).
    pub async fn tenant_in(&self, scope: &Scope, name_or_id: &str) -> Result<Tenant> {
        let tenant = self.tenant(name_or_id).await?;
        if scope.sees(Some(&tenant.id), false) {
            Ok(tenant)
        } else {
            Err(DirectoryError::not_found("tenant", name_or_id))
        }
    }

    /// Finds the tenant that owns a SIP domain (the registrar's realm lookup).
    pub async fn tenant_by_domain(&self, domain: &str) -> Result<Tenant> {
        sqlx::query_as("SELECT id, name, sip_domain, created_at FROM tenants WHERE sip_domain = $1")
            .bind(domain.to_ascii_lowercase())
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| DirectoryError::not_found("domain", domain))
    }

    /// Changes a tenant.
    pub async fn update_tenant(&self, name_or_id: &str, update: TenantUpdate) -> Result<Tenant> {
        let mut tenant = self.tenant(name_or_id).await?;
        if let Some(domain) = update.sip_domain {
            tenant.sip_domain = validate::domain(&domain)?;
            let mut tx = self.begin_write().await?;
            let accounts: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM accounts WHERE tenant_id = $1")
                .bind(&tenant.id)
                .fetch_one(&mut *tx)
                .await?;
            if accounts > 0 {
                return Err(DirectoryError::Conflict(format!(
                    "tenant '{}' has {accounts} account(s) whose passwords are bound to the old domain; delete or recreate them first",
                    tenant.name
                )));
            }
            sqlx::query("UPDATE tenants SET sip_domain = $1 WHERE id = $2")
                .bind(&tenant.sip_domain)
                .bind(&tenant.id)
                .execute(&mut *tx)
                .await
                .map_err(DirectoryError::on_unique(|| {
                    format!("domain '{}' belongs to another tenant", tenant.sip_domain)
                }))?;
            tx.commit().await?;
        }
        Ok(tenant)
    }

    /// Deletes a tenant and, by cascade, everything it owns.
    pub async fn delete_tenant(&self, name_or_id: &str) -> Result<()> {
        let tenant = self.tenant(name_or_id).await?;
        sqlx::query("DELETE FROM tenants WHERE id = $1")
            .bind(&tenant.id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
