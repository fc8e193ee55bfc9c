//! Staff sign-in with throttling (issue: foundation).
//!
//! The same [`LoginError::InvalidCredentials`] answers an unknown user, a wrong password and a
//! disabled account; the audit log keeps the real reason. Failures are counted from the
//! audit log itself: more than [`USER_LIMIT`] failures for one username, or
//! [`ADDRESS_LIMIT`] from one address, within [`WINDOW_MS`] refuse further attempts until
//! the oldest of them leaves the window.

use secrecy::SecretString;

use crate::audit::{self, action, Actor, Entry};
use crate::users::{self, User};
use crate::{now_ms, password, CoreError, Db, Username};

/// Failures per username within the window before sign-in is refused.
pub const USER_LIMIT: i64 = 5;
/// Failures per client address within the window (higher: a shop's staff share one NAT).
pub const ADDRESS_LIMIT: i64 = 20;
/// The throttle window: 15 minutes.
pub const WINDOW_MS: i64 = 15 * 60 * 1000;

/// Why a sign-in was refused.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Unknown user, wrong password or disabled account — deliberately indistinguishable.
    #[error("invalid username or password")]
    InvalidCredentials,
    /// Too many recent failures; try again after this many minutes (at least 1).
    #[error("too many failed sign-ins; try again in {minutes} minutes")]
    Throttled {
        /// Whole minutes until the next attempt is accepted, rounded up.
        minutes: i64,
    },
    /// Something broke; not the user's fault.
    #[error(transparent)]
    Core(#[from] CoreError),
}

/// Checks a username and password typed on the sign-in page.
#[tracing::instrument(skip_all, fields(ip = ip.as_deref().unwrap_or("-")))]
pub async fn authenticate(
    db: &Db,
    username_input: &str,
    password: SecretString,
    ip: Option<String>,
) -> Result<User, LoginError> {
    let key: String = username_input
        .trim()
        .to_ascii_lowercase()
        .chars()
        .take(64)
        .collect();
    let now = now_ms();
    if let Some(minutes) = throttled_for(db, &key, ip.as_deref(), now).await? {
        let actor = Actor {
            user_id: None,
            name: key.clone(),
            ip: ip.clone(),
        };
        audit::record(
            db.writer(),
            Entry {
                actor: &actor,
                action: action::LOGIN_THROTTLED,
                target: Some(&key),
                detail: None,
            },
        )
        .await?;
        return Err(LoginError::Throttled { minutes });
    }

    let found = match Username::parse(&key) {
        Ok(u) => users::find_with_hash(db, &u).await?,
        Err(_) => None,
    };
    let (user, hash) = match found {
        Some((u, h)) => (Some(u), Some(h)),
        None => (None, None),
    };
    let password_ok = password::verify(password, hash).await?;
    let reason = match &user {
        None => Some("unknown user"),
        Some(_) if !password_ok => Some("wrong password"),
        Some(u) if !u.is_active() => Some("account disabled"),
        Some(_) => None,
    };
    let actor = Actor {
        user_id: user.as_ref().map(|u| u.id),
        name: key.clone(),
        ip,
    };
    match (reason, user) {
        (None, Some(user)) => {
            users::touch_login(db, user.id).await?;
            audit::record(
                db.writer(),
                Entry {
                    actor: &actor,
                    action: action::LOGIN_SUCCESS,
                    target: Some(&key),
                    detail: None,
                },
            )
            .await?;
            Ok(users::get(db, user.id).await?)
        }
        (reason, _) => {
            tracing::info!(reason = reason.unwrap_or("?"), "sign-in refused");
            audit::record(
                db.writer(),
                Entry {
                    actor: &actor,
                    action: action::LOGIN_FAILURE,
                    target: Some(&key),
                    detail: reason,
                },
            )
            .await?;
            Err(LoginError::InvalidCredentials)
        }
    }
}

/// Minutes until the next sign-in for this username or address is accepted, or `None` when
/// it is accepted now. Failures before the user's last successful sign-in do not count
/// against the username.
async fn throttled_for(
    db: &Db,
    key: &str,
    ip: Option<&str>,
    now: i64,
) -> Result<Option<i64>, CoreError> {
    let since = now - WINDOW_MS;
    let user_failures: Vec<i64> = sqlx::query_scalar(
        r#"select created_at from audit_log
           where action = $1 and target = $2 and created_at > $3
             and created_at > coalesce((select max(created_at) from audit_log
                                        where action = $4 and target = $2), 0)
           order by created_at desc
           limit $5"#,
    )
    .bind(action::LOGIN_FAILURE)
    .bind(key)
    .bind(since)
    .bind(action::LOGIN_SUCCESS)
    .bind(USER_LIMIT)
    .fetch_all(db.reader())
    .await?;
    let mut until = None;
    if user_failures.len() as i64 >= USER_LIMIT {
        until = user_failures.last().map(|oldest| oldest + WINDOW_MS);
    }
    if let Some(ip) = ip {
        let ip_failures: Vec<i64> = sqlx::query_scalar(
            r#"select created_at from audit_log
               where action = $1 and ip = $2 and created_at > $3
               order by created_at desc
               limit $4"#,
        )
        .bind(action::LOGIN_FAILURE)
        .bind(ip)
        .bind(since)
        .bind(ADDRESS_LIMIT)
        .fetch_all(db.reader())
        .await?;
        if ip_failures.len() as i64 >= ADDRESS_LIMIT {
            let ip_until = ip_failures.last().map(|oldest| oldest + WINDOW_MS);
            until = until.max(ip_until);
        }
    }
    Ok(until.map(|t| ((t - now).max(1) + 59_999) / 60_000))
}

/// Records a sign-out.
pub async fn record_logout(db: &Db, user: &User, ip: Option<String>) -> Result<(), CoreError> {
    audit::record(
        db.writer(),
        Entry {
            actor: &user.actor(ip),
            action: action::LOGOUT,
            target: Some(user.username.as_str()),
            detail: None,
        },
    )
    .await
}
