//! Accounts: SIP users of a tenant (softphones) and media relays (which register
//! their lines with their own credentials). Passwords are never stored: only the
//! digest HA1 for MD5 and SHA-256, computed with the tenant's domain as realm.

use serde::{Deserialize, Serialize};
use sqlx::{FromRow, Row, any::AnyRow};

use crate::db::{Directory, Scope};
use crate::error::{DirectoryError, Result};
use crate::ids::{new_id, now_ms};
use crate::tenants::Tenant;
use offhook_vocab::DigestAlgorithm;

use crate::validate;

/// What an account is used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AccountKind {
    /// A person's softphone.
    User,
    /// A media relay registering its lines.
    Relay,
}

impl AccountKind {
    /// The stored and command-line spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Relay => "relay",
        }
    }

    /// Parses `user` or `relay`.
    pub fn parse(text: &str) -> Result<Self> {
        match text {
            "user" => Ok(Self::User),
            "relay" => Ok(Self::Relay),
            other => Err(DirectoryError::invalid(
                "kind",
                format!("'{other}' is not an account kind (user, relay)"),
            )),
        }
    }
}

/// An account row. The HA1 values are not serialized.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Account {
    /// Generated id (`acc_…`).
    pub id: String,
    /// Owning tenant id.
    pub tenant_id: String,
    /// SIP user name (unique within the tenant).
    pub username: String,
    /// Name shown to callees.
    pub display_name: String,
    /// The account's own phone number (callable from other accounts), if any.
    pub number: Option<String>,
    /// HA1 for `algorithm=MD5`.
    #[serde(skip)]
    pub ha1_md5: String,
    /// HA1 for `algorithm=SHA-256`.
    #[serde(skip)]
    pub ha1_sha256: String,
    /// User or relay.
    pub kind: AccountKind,
    /// Disabled accounts cannot register or call.
    pub enabled: bool,
    /// Creation time, Unix ms.
    pub created_at: i64,
}

impl Account {
    /// The stored HA1 for a digest algorithm.
    pub fn ha1(&self, algorithm: DigestAlgorithm) -> &str {
        match algorithm {
            DigestAlgorithm::Md5 => &self.ha1_md5,
            DigestAlgorithm::Sha256 => &self.ha1_sha256,
        }
    }
}

impl FromRow<'_, AnyRow> for Account {
    fn from_row(row: &AnyRow) -> sqlx::Result<Self> {
        let kind: String = row.try_get("kind")?;
        Ok(Self {
            id: row.try_get("id")?,
            tenant_id: row.try_get("tenant_id")?,
            username: row.try_get("username")?,
            display_name: row.try_get("display_name")?,
            number: row.try_get("number")?,
            ha1_md5: row.try_get("ha1_md5")?,
            ha1_sha256: row.try_get("ha1_sha256")?,
            kind: AccountKind::parse(&kind).map_err(|e| sqlx::Error::Decode(e.into()))?,
            enabled: row.try_get::<i64, _>("enabled")? != 0,
            created_at: row.try_get("created_at")?,
        })
    }
}

/// Input for [`Directory::create_account`].
#[derive(Debug, Clone)]
pub struct NewAccount {
    /// Tenant name or id.
    pub tenant: String,
    /// SIP user name.
    pub username: String,
    /// Password; only its HA1 values are kept.
    pub password: String,
    /// Display name.
    pub display_name: String,
    /// Optional phone number of the account.
    pub number: Option<String>,
    /// User or relay.
    pub kind: AccountKind,
}

/// Changes for [`Directory::update_account`]; `None` keeps the current value.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountUpdate {
    /// New password (HA1 recomputed).
    pub password: Option<String>,
    /// New display name.
    pub display_name: Option<String>,
    /// New number; `Some(None)` (JSON `null`) removes it.
    #[serde(default, deserialize_with = "validate::present")]
    #[schema(value_type = Option<String>)]
    pub number: Option<Option<String>>,
    /// Enable or disable.
    pub enabled: Option<bool>,
}

const MIN_PASSWORD_LEN: usize = 8;

fn password(value: &str) -> Result<&str> {
    if value.chars().count() < MIN_PASSWORD_LEN {
        return Err(DirectoryError::invalid(
            "password",
            format!("must be at least {MIN_PASSWORD_LEN} characters"),
        ));
    }
    Ok(value)
}

impl Directory {
    /// Creates an account in a tenant.
    pub async fn create_account(&self, new: NewAccount) -> Result<Account> {
        let tenant = self.tenant(&new.tenant).await?;
        let username = validate::username(&new.username)?;
        let password = password(&new.password)?;
        let account = Account {
            id: new_id("acc"),
            tenant_id: tenant.id,
            ha1_md5: DigestAlgorithm::Md5.ha1(&username, &tenant.sip_domain, password),
            ha1_sha256: DigestAlgorithm::Sha256.ha1(&username, &tenant.sip_domain, password),
            username,
            display_name: new.display_name,
            number: new.number.as_deref().map(validate::number).transpose()?,
            kind: new.kind,
            enabled: true,
            created_at: now_ms(),
        };
        sqlx::query(
            "INSERT INTO accounts (id, tenant_id, username, display_name, number, ha1_md5, ha1_sha256, kind, enabled, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&account.id)
        .bind(&account.tenant_id)
        .bind(&account.username)
        .bind(&account.display_name)
        .bind(&account.number)
        .bind(&account.ha1_md5)
        .bind(&account.ha1_sha256)
        .bind(account.kind.as_str())
        .bind(i64::from(account.enabled))
        .bind(account.created_at)
        .execute(&self.pool)
        .await
        .map_err(DirectoryError::on_unique(|| {
            format!("account '{}' exists in tenant '{}'", account.username, new.tenant)
        }))?;
        Ok(account)
    }

    /// Lists the accounts visible in `scope`.
    pub async fn list_accounts(&self, scope: &Scope) -> Result<Vec<Account>> {
        let rows = match scope {
            Scope::Operator => {
                sqlx::query_as("SELECT * FROM accounts ORDER BY tenant_id, username")
                    .fetch_all(&self.pool)
                    .await?
            }
            Scope::Tenant(tenant) => {
                sqlx::query_as("SELECT * FROM accounts WHERE tenant_id = $1 ORDER BY username")
                    .bind(tenant)
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        Ok(rows)
    }

    /// Finds an account by tenant id and user name (the registrar's lookup).
    pub async fn account(&self, tenant_id: &str, username: &str) -> Result<Account> {
        sqlx::query_as("SELECT * FROM accounts WHERE tenant_id = $1 AND username = $2")
            .bind(tenant_id)
            .bind(username)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| DirectoryError::not_found("account", username))
    }

    /// Finds the account that owns a number in a tenant (account-to-account calls).
    pub async fn account_by_number(&self, tenant_id: &str, number: &str) -> Result<Account> {
        sqlx::query_as("SELECT * FROM accounts WHERE tenant_id = $1 AND number = $2")
            .bind(tenant_id)
            .bind(number)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| DirectoryError::not_found("number", number))
    }

    /// Finds an account by id, within `scope`.
    pub async fn account_by_id(&self, scope: &Scope, id: &str) -> Result<Account> {
        let account: Option<Account> = sqlx::query_as("SELECT * FROM accounts WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        account
            .filter(|a| scope.sees(Some(&a.tenant_id), false))
            .ok_or_else(|| DirectoryError::not_found("account", id))
    }

    /// Changes an account, named by tenant (name or id) and user name.
    pub async fn update_account(
        &self,
        tenant: &str,
        username: &str,
        update: AccountUpdate,
    ) -> Result<Account> {
        let tenant = self.tenant(tenant).await?;
        let account = self.account(&tenant.id, username).await?;
        self.change_account(&tenant, account, update).await
    }

    /// Changes an account named by id, within `scope`.
    pub async fn update_account_by_id(
        &self,
        scope: &Scope,
        id: &str,
        update: AccountUpdate,
    ) -> Result<Account> {
        let account = self.account_by_id(scope, id).await?;
        let tenant = self.tenant(&account.tenant_id).await?;
        self.change_account(&tenant, account, update).await
    }

    /// Validates every change, then writes them all at once.
    async fn change_account(
        &self,
        tenant: &Tenant,
        mut account: Account,
        update: AccountUpdate,
    ) -> Result<Account> {
        if let Some(new) = update.password {
            let new = password(&new)?;
            account.ha1_md5 = DigestAlgorithm::Md5.ha1(&account.username, &tenant.sip_domain, new);
            account.ha1_sha256 = DigestAlgorithm::Sha256.ha1(&account.username, &tenant.sip_domain, new);
        }
        if let Some(number) = update.number {
            account.number = number.as_deref().map(validate::number).transpose()?;
        }
        account.display_name = update.display_name.unwrap_or(account.display_name);
        account.enabled = update.enabled.unwrap_or(account.enabled);
        sqlx::query(
            "UPDATE accounts SET display_name = $1, number = $2, ha1_md5 = $3, ha1_sha256 = $4, enabled = $5 WHERE id = $6",
        )
        .bind(&account.display_name)
        .bind(&account.number)
        .bind(&account.ha1_md5)
        .bind(&account.ha1_sha256)
        .bind(i64::from(account.enabled))
        .bind(&account.id)
        .execute(&self.pool)
        .await?;
        Ok(account)
    }

    /// Deletes an account, named by tenant (name or id) and user name.
    pub async fn delete_account(&self, tenant: &str, username: &str) -> Result<()> {
        let tenant = self.tenant(tenant).await?;
        let account = self.account(&tenant.id, username).await?;
        self.remove_account(&account.id).await
    }

    /// Deletes an account named by id, within `scope`.
    pub async fn delete_account_by_id(&self, scope: &Scope, id: &str) -> Result<()> {
        let account = self.account_by_id(scope, id).await?;
        self.remove_account(&account.id).await
    }

    async fn remove_account(&self, id: &str) -> Result<()> {
        sqlx::query("DELETE FROM accounts WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
