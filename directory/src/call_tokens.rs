//! Call tokens: what the click API hands a visitor's browser for one call through
//! one icon, and what signaling checks on the INVITE before dialing the icon's
//! number from the directory. A token is `v1.<icon>.<expires_ms>.<nonce>.<mac>`
//! with an HMAC-SHA256 over the rest, keyed by a secret kept in the directory so
//! every node agrees; spending its nonce is recorded, so it works once.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::db::Directory;
use crate::error::{DirectoryError, Result};
use crate::ids::now_ms;

type HmacSha256 = Hmac<Sha256>;

/// Name of the directory secret that signs call tokens (`Directory::shared_secret`).
pub const SECRET_NAME: &str = "call-token";

/// What a valid token grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallGrant {
    /// The icon's public id.
    pub icon: String,
    /// Expiry, Unix ms.
    pub expires_at: i64,
    /// Single-use nonce.
    pub nonce: String,
}

/// Why a token is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a token at all, or signed with another key.
    #[error("the call token is not valid")]
    Invalid,
    /// Valid but past its expiry.
    #[error("the call token has expired")]
    Expired,
    /// Valid but already used for a call.
    #[error("the call token was already used")]
    Used,
}

fn mac_hex(secret: &[u8], payload: &str) -> String {
    // HMAC accepts keys of any length.
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(payload.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Signs a grant for `icon` valid until `expires_at` (Unix ms).
pub fn sign(secret: &[u8], icon: &str, expires_at: i64) -> String {
    let nonce: String = hex::encode(crate::ids::random_bytes::<12>());
    let payload = format!("v1.{icon}.{expires_at}.{nonce}");
    let mac = mac_hex(secret, &payload);
    format!("{payload}.{mac}")
}

/// Checks a token's signature and expiry at `now` (Unix ms); does not spend it.
pub fn verify(secret: &[u8], token: &str, now: i64) -> Result<CallGrant, TokenError> {
    let (payload, mac) = token.rsplit_once('.').ok_or(TokenError::Invalid)?;
    let expected = mac_hex(secret, payload);
    // Constant-time comparison of the MACs.
    let same = mac.len() == expected.len()
        && mac
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if !same {
        return Err(TokenError::Invalid);
    }
    let mut parts = payload.split('.');
    let (Some("v1"), Some(icon), Some(expires), Some(nonce), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(TokenError::Invalid);
    };
    let expires_at: i64 = expires.parse().map_err(|_| TokenError::Invalid)?;
    if now >= expires_at {
        return Err(TokenError::Expired);
    }
    Ok(CallGrant {
        icon: icon.to_owned(),
        expires_at,
        nonce: nonce.to_owned(),
    })
}

impl Directory {
    /// The named shared secret, created (32 random bytes) on first use; every node
    /// on this directory gets the same bytes.
    pub async fn shared_secret(&self, name: &str) -> Result<Vec<u8>> {
        let fresh = hex::encode(crate::ids::random_bytes::<32>());
        sqlx::query(
            "INSERT INTO secrets (name, value, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(&fresh)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        let value: String = sqlx::query_scalar("SELECT value FROM secrets WHERE name = $1")
            .bind(name)
            .fetch_one(&self.pool)
            .await?;
        hex::decode(value).map_err(|_| DirectoryError::Conflict(format!("secret '{name}' is not hex")))
    }

    /// Spends a grant's nonce; `TokenError::Used` when it was spent before.
    pub async fn spend_call_token(&self, grant: &CallGrant) -> Result<Result<(), TokenError>> {
        let done = sqlx::query(
            "INSERT INTO used_call_tokens (nonce, expires_at) VALUES ($1, $2) ON CONFLICT (nonce) DO NOTHING",
        )
        .bind(&grant.nonce)
        .bind(grant.expires_at)
        .execute(&self.pool)
        .await?;
        sqlx::query("DELETE FROM used_call_tokens WHERE expires_at < $1")
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        Ok(if done.rows_affected() == 1 {
            Ok(())
        } else {
            Err(TokenError::Used)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_and_verifies() {
        let token = sign(b"key", "demo-echo", 10_000);
        let grant = verify(b"key", &token, 5_000).unwrap();
        assert_eq!(grant.icon, "demo-echo");
        assert_eq!(verify(b"key", &token, 10_000), Err(TokenError::Expired));
        assert_eq!(verify(b"other", &token, 5_000), Err(TokenError::Invalid));
        let forged = token.replace("demo-echo", "premium");
        assert_eq!(verify(b"key", &forged, 5_000), Err(TokenError::Invalid));
        for junk in ["", ".", "v1", "a.b.c.d.e.f", "\u{0}"] {
            assert_eq!(verify(b"key", junk, 0), Err(TokenError::Invalid));
        }
    }
}
