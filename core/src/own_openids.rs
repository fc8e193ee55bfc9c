//! A staff member's own WeChat openids (issue 15): each person records the openids they shop
//! with on 我的账户 (My account), and nobody approves the refund of an order paid by one of
//! their own openids ([`crate::refunds::approve`] checks it inside its transaction). The
//! person keeps the list themself; every addition and removal is audited, so a removal just
//! before an approval shows in the audit log.

use serde::{Deserialize, Serialize};
use sqlx::FromRow;

use crate::audit::{self, action, Entry};
use crate::error::{unique_violation, UniqueKey};
use crate::users::User;
use crate::{now_ms, CoreError, Db};

/// Openids one person may record (a handful in practice; the bound keeps the list small).
pub const MAX_PER_USER: i64 = 20;

/// One recorded openid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, FromRow)]
pub struct OwnOpenid {
    /// The openid.
    pub openid: String,
    /// When it was recorded (UTC ms).
    pub created_at: i64,
}

/// An openid as typed: trimmed, 1 to 128 characters of `A-Z a-z 0-9 _ -` (WeChat's are 28).
fn parse_openid(input: &str) -> Result<String, CoreError> {
    let openid = input.trim();
    if openid.is_empty()
        || openid.len() > 128
        || !openid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(CoreError::invalid(
            "openid",
            "an openid has 1 to 128 letters, digits, '_' or '-'",
        ));
    }
    Ok(openid.to_owned())
}

/// `user`'s recorded openids, oldest first.
pub async fn list(db: &Db, user_id: i64) -> Result<Vec<OwnOpenid>, CoreError> {
    Ok(sqlx::query_as::<_, OwnOpenid>(
        "select openid, created_at from user_openids where user_id = $1 order by created_at, id",
    )
    .bind(user_id)
    .fetch_all(db.reader())
    .await?)
}

/// Records one of `user`'s own openids (audited `account.openid_add`). Recording one twice
/// is [`CoreError::Invalid`] `openid`.
pub async fn add(
    db: &Db,
    user: &User,
    ip: Option<String>,
    openid: &str,
) -> Result<OwnOpenid, CoreError> {
    let openid = parse_openid(openid)?;
    let now = now_ms();
    let mut tx = db.begin_write().await?;
    let count: i64 = sqlx::query_scalar("select count(*) from user_openids where user_id = $1")
        .bind(user.id)
        .fetch_one(&mut *tx)
        .await?;
    if count >= MAX_PER_USER {
        return Err(CoreError::invalid(
            "openid",
            format!("at most {MAX_PER_USER} openids per account"),
        ));
    }
    sqlx::query(
        r#"insert into user_openids (user_id, openid, created_at, updated_at)
           values ($1, $2, $3, $3)"#,
    )
    .bind(user.id)
    .bind(&openid)
    .bind(now)
    .execute(&mut *tx)
    .await
    .map_err(|e| {
        if unique_violation(&e) == Some(UniqueKey::UserOpenid) {
            CoreError::invalid("openid", "this openid is already recorded")
        } else {
            CoreError::from(e)
        }
    })?;
    audit::record(
        &mut *tx,
        Entry {
            actor: &user.actor(ip),
            action: action::ACCOUNT_OPENID_ADD,
            target: Some(&openid),
            detail: None,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(OwnOpenid {
        openid,
        created_at: now,
    })
}

/// Removes one of `user`'s recorded openids (audited `account.openid_remove`);
/// [`CoreError::NotFound`] when it is not recorded.
pub async fn remove(
    db: &Db,
    user: &User,
    ip: Option<String>,
    openid: &str,
) -> Result<(), CoreError> {
    let openid = openid.trim();
    let mut tx = db.begin_write().await?;
    let removed = sqlx::query("delete from user_openids where user_id = $1 and openid = $2")
        .bind(user.id)
        .bind(openid)
        .execute(&mut *tx)
        .await?;
    if removed.rows_affected() == 0 {
        return Err(CoreError::NotFound);
    }
    audit::record(
        &mut *tx,
        Entry {
            actor: &user.actor(ip),
            action: action::ACCOUNT_OPENID_REMOVE,
            target: Some(openid),
            detail: None,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openids_are_checked_for_shape() {
        assert_eq!(
            parse_openid(" oUpF8uMuAJO_M2pxb1Q9zNjWeS6o ").unwrap(),
            "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
        );
        for bad in ["", "   ", "has space", "o'; drop", &"x".repeat(129)] {
            assert!(parse_openid(bad).is_err(), "{bad:?}");
        }
    }
}
