//! API tokens of the admin REST API: an operator token (the ISP: sees and changes
//! everything) or a tenant admin's (one tenant only). A token is 32 random bytes
//! shown once when it is made (`ohk_…`); only its SHA-256 is stored, so a copy of
//! the database does not let anyone in. Tokens are random, not chosen by people,
//! so one unsalted hash suffices and lookups stay one indexed query.

use serde::Serialize;
use sha2::{Digest as _, Sha256};
use sqlx::{FromRow, Row, any::AnyRow};

use crate::db::{Directory, Scope};
use crate::error::{DirectoryError, Result};
use crate::ids::{new_id, now_ms};
use crate::validate;

/// Prefix of every token's text, so that a leaked one is recognisable.
const TOKEN_PREFIX: &str = "ohk_";

/// A stored API token (without its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ApiToken {
    /// Generated id (`tok_…`).
    pub id: String,
    /// What the token is for, in the operator's words.
    pub name: String,
    /// The tenant a tenant admin's token is bound to; `None` for an operator token.
    pub tenant_id: Option<String>,
    /// Creation time, Unix ms.
    pub created_at: i64,
}

impl ApiToken {
    /// The scope every request with this token runs in.
    pub fn scope(&self) -> Scope {
        match &self.tenant_id {
            None => Scope::Operator,
            Some(tenant) => Scope::Tenant(tenant.clone()),
        }
    }
}

impl FromRow<'_, AnyRow> for ApiToken {
    fn from_row(row: &AnyRow) -> sqlx::Result<Self> {
        Ok(Self {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            tenant_id: row.try_get("tenant_id")?,
            created_at: row.try_get("created_at")?,
        })
    }
}

/// Input for [`Directory::create_api_token`].
#[derive(Debug, Clone)]
pub struct NewApiToken {
    /// What it is for (1-200 printable characters).
    pub name: String,
    /// Tenant name or id for a tenant admin's token; `None` for an operator token.
    pub tenant: Option<String>,
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl Directory {
    /// Makes a token; returns it with its secret text, which is not kept.
    pub async fn create_api_token(&self, new: NewApiToken) -> Result<(ApiToken, String)> {
        let name = validate::label("name", &new.name)?;
        let tenant_id = match &new.tenant {
            Some(tenant) => Some(self.tenant(tenant).await?.id),
            None => None,
        };
        let secret = format!("{TOKEN_PREFIX}{}", hex::encode(crate::ids::random_bytes::<32>()));
        let token = ApiToken {
            id: new_id("tok"),
            name,
            tenant_id,
            created_at: now_ms(),
        };
        sqlx::query(
            "INSERT INTO api_tokens (id, name, tenant_id, token_hash, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&token.id)
        .bind(&token.name)
        .bind(&token.tenant_id)
        .bind(token_hash(&secret))
        .bind(token.created_at)
        .execute(&self.pool)
        .await?;
        Ok((token, secret))
    }

    /// The token whose secret text is `secret`, if any.
    pub async fn authenticate_api_token(&self, secret: &str) -> Result<Option<ApiToken>> {
        if !secret.starts_with(TOKEN_PREFIX) {
            return Ok(None);
        }
        Ok(
            sqlx::query_as("SELECT id, name, tenant_id, created_at FROM api_tokens WHERE token_hash = $1")
                .bind(token_hash(secret))
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Lists the tokens visible in `scope` (a tenant sees its own).
    pub async fn list_api_tokens(&self, scope: &Scope) -> Result<Vec<ApiToken>> {
        let tenant = scope.tenant_id();
        Ok(sqlx::query_as(
            "SELECT id, name, tenant_id, created_at FROM api_tokens \
             WHERE CAST($1 AS TEXT) IS NULL OR tenant_id = $1 ORDER BY created_at, id",
        )
        .bind(tenant)
        .fetch_all(&self.pool)
        .await?)
    }

    /// One token by id, within `scope`.
    pub async fn api_token(&self, scope: &Scope, id: &str) -> Result<ApiToken> {
        let token: Option<ApiToken> =
            sqlx::query_as("SELECT id, name, tenant_id, created_at FROM api_tokens WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        token
            .filter(|t| scope.sees(t.tenant_id.as_deref(), false))
            .ok_or_else(|| DirectoryError::not_found("token", id))
    }

    /// Revokes a token by id, within `scope`.
    pub async fn delete_api_token(&self, scope: &Scope, id: &str) -> Result<()> {
        let token = self.api_token(scope, id).await?;
        sqlx::query("DELETE FROM api_tokens WHERE id = $1")
            .bind(&token.id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
