//! Shoppers and their mini-program sessions (docs/design.md "Data": customers).
//!
//! `POST /api/mp/login` trades a `wx.login` code for an openid (jscode2session), keeps the
//! customer row and gives the mini program our own opaque bearer token. Only a SHA-256 of
//! the token is stored, so a database leak does not hand out sessions; WeChat's
//! `session_key` is stored beside it and never leaves the server.

use base64::Engine as _;
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};
use sqlx::FromRow;

use crate::{now_ms, CoreError, Db};

/// How long a mini-program token lasts without a new login (7 days).
pub const TOKEN_TTL_MS: i64 = 7 * 24 * 3600 * 1000;

/// A shopper.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct Customer {
    /// Row id.
    pub id: i64,
    /// The shopper's openid under our appid.
    pub openid: String,
    /// The unionid, when WeChat gave one.
    pub unionid: Option<String>,
    /// First login (UTC ms).
    pub first_seen: i64,
    /// Latest login (UTC ms).
    pub last_seen: i64,
}

/// A new session: the token to hand to the mini program (shown once, never stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    /// The bearer token.
    pub token: String,
    /// When it stops working (UTC ms).
    pub expires_at: i64,
    /// Whose it is.
    pub customer: Customer,
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Records a login: the customer row (created on first login, `last_seen` updated after)
/// and a new session holding WeChat's `session_key`.
pub async fn login(
    db: &Db,
    openid: &str,
    unionid: Option<&str>,
    session_key: &str,
) -> Result<NewSession, CoreError> {
    if openid.is_empty() || openid.len() > 128 {
        return Err(CoreError::invalid(
            "openid",
            "jscode2session returned no usable openid",
        ));
    }
    let now = now_ms();
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let expires_at = now + TOKEN_TTL_MS;
    let mut tx = db.begin_write().await?;
    let customer = sqlx::query_as::<_, Customer>(
        r#"insert into customers (openid, unionid, first_seen, last_seen, created_at, updated_at)
           values ($1, $2, $3, $3, $3, $3)
           on conflict (openid) do update
               set unionid = coalesce(excluded.unionid, customers.unionid),
                   last_seen = excluded.last_seen, updated_at = excluded.updated_at
           returning id, openid, unionid, first_seen, last_seen"#,
    )
    .bind(openid)
    .bind(unionid)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query(
        r#"insert into mp_sessions (token_hash, customer_id, session_key, expires_at, created_at,
               updated_at)
           values ($1, $2, $3, $4, $5, $5)"#,
    )
    .bind(token_hash(&token))
    .bind(customer.id)
    .bind(session_key)
    .bind(expires_at)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    // Expired sessions of this customer go when they log in again.
    sqlx::query("delete from mp_sessions where customer_id = $1 and expires_at <= $2")
        .bind(customer.id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(NewSession {
        token,
        expires_at,
        customer,
    })
}

/// The customer a bearer token belongs to, if it is ours and not expired.
pub async fn authenticate(db: &Db, token: &str) -> Result<Option<Customer>, CoreError> {
    if token.is_empty() || token.len() > 128 {
        return Ok(None);
    }
    Ok(sqlx::query_as::<_, Customer>(
        r#"select c.id, c.openid, c.unionid, c.first_seen, c.last_seen
           from mp_sessions s join customers c on c.id = s.customer_id
           where s.token_hash = $1 and s.expires_at > $2"#,
    )
    .bind(token_hash(token))
    .bind(now_ms())
    .fetch_optional(db.reader())
    .await?)
}

/// Ends a session (logout).
pub async fn logout(db: &Db, token: &str) -> Result<(), CoreError> {
    sqlx::query("delete from mp_sessions where token_hash = $1")
        .bind(token_hash(token))
        .execute(db.writer())
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_hash_is_sha256_hex() {
        assert_eq!(
            token_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
