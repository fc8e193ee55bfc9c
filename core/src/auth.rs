//! Staff sign-in with throttling (issue: foundation; issue 15 "Throttles that hold").
//!
//! The same [`LoginError::InvalidCredentials`] answers an unknown user, a wrong password and a
//! disabled account; the audit log keeps the real reason. Input that does not parse as a
//! username gets that answer at once, before any database or hashing work: no account can
//! have that name.
//!
//! Throttling counts *attempts*, keyed by the account the input resolves to (the normalised
//! [`Username`] the lookup uses, so `Admin` and ` admin ` share one count) and by client
//! address. An attempt is written to `login_attempts` (committed) **before** its password
//! hash runs, and only then are the attempts in the window counted, its own included and
//! any that arrived after it too. So of any number of parallel attempts at most
//! [`USER_LIMIT`] reach the hash: whichever of the passing attempts counted last saw every
//! other passing attempt's row, and it passed. The rows are in the database, so every
//! instance adds to the same count. A successful attempt clears its account's rows (earlier
//! failures no longer count, as before); a refused one removes its own row, so an attacker
//! cannot extend a lock-out by knocking. Changing one's own password goes through the same
//! count ([`begin_attempt`]): it guesses the same secret.

use secrecy::SecretString;

use crate::audit::{self, action, Actor, Entry};
use crate::users::{self, User};
use crate::{now_ms, password, CoreError, Db, Username};

/// Attempts per account within the window before further ones are refused.
pub const USER_LIMIT: i64 = 5;
/// Attempts per client address within the window (higher: a shop's staff share one NAT).
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
    /// Something broke, or the server is busy ([`CoreError::Busy`]); not the user's fault.
    #[error(transparent)]
    Core(#[from] CoreError),
}

/// A password attempt that has been counted and may now run its hash. Finish it with
/// [`Attempt::succeeded`] (clears the account's count) or [`Attempt::failed`] (the row stays
/// and counts as a failure); [`Attempt::abandon`] when the hash never ran.
#[derive(Debug)]
#[must_use = "an attempt must be finished: succeeded, failed or abandoned"]
pub(crate) struct Attempt {
    id: i64,
    username: String,
}

impl Attempt {
    /// The password was right: the account's earlier failures no longer count.
    pub(crate) async fn succeeded(self, db: &Db) -> Result<(), CoreError> {
        sqlx::query("delete from login_attempts where username = $1 and id <= $2")
            .bind(&self.username)
            .bind(self.id)
            .execute(db.writer())
            .await?;
        Ok(())
    }

    /// The password was wrong: the row stays, a failure until it leaves the window.
    pub(crate) fn failed(self) {}

    /// The hash never ran (the server was busy): the attempt does not count.
    pub(crate) async fn abandon(self, db: &Db) -> Result<(), CoreError> {
        sqlx::query("delete from login_attempts where id = $1")
            .bind(self.id)
            .execute(db.writer())
            .await?;
        Ok(())
    }
}

/// Counts a password attempt for `username` from `ip` before its hash runs: the attempt is
/// recorded, then the window's attempts are counted. `Ok(Err(minutes))` when it is refused
/// (its row is removed again); see the module documentation for why this order holds under
/// parallel attempts.
pub(crate) async fn begin_attempt(
    db: &Db,
    username: &Username,
    ip: Option<&str>,
) -> Result<Result<Attempt, i64>, CoreError> {
    let now = now_ms();
    let since = now - WINDOW_MS;
    // Keeps the table to one window of attempts (index on created_at: usually a no-op).
    sqlx::query("delete from login_attempts where created_at <= $1")
        .bind(since)
        .execute(db.writer())
        .await?;
    let id: i64 = sqlx::query_scalar(
        "insert into login_attempts (username, ip, created_at) values ($1, $2, $3) returning id",
    )
    .bind(username.as_str())
    .bind(ip)
    .bind(now)
    .fetch_one(db.writer())
    .await?;
    let attempt = Attempt {
        id,
        username: username.as_str().to_owned(),
    };
    match refused_for(db, &attempt, ip, now).await? {
        None => Ok(Ok(attempt)),
        Some(minutes) => {
            attempt.abandon(db).await?;
            Ok(Err(minutes))
        }
    }
}

/// Minutes until an attempt like `attempt` is accepted, or `None` when it is accepted now:
/// more than the limit of attempts in the window, `attempt` itself included, refuse it.
async fn refused_for(
    db: &Db,
    attempt: &Attempt,
    ip: Option<&str>,
    now: i64,
) -> Result<Option<i64>, CoreError> {
    let since = now - WINDOW_MS;
    // The others' times, newest first, at most `limit`: when there are `limit` of them, the
    // oldest of those leaving the window is when the next attempt fits.
    let user_others: Vec<i64> = sqlx::query_scalar(
        r#"select created_at from login_attempts
           where username = $1 and created_at > $2 and id <> $3
           order by created_at desc
           limit $4"#,
    )
    .bind(&attempt.username)
    .bind(since)
    .bind(attempt.id)
    .bind(USER_LIMIT)
    .fetch_all(db.reader())
    .await?;
    let mut until = None;
    if user_others.len() as i64 >= USER_LIMIT {
        until = user_others.last().map(|oldest| oldest + WINDOW_MS);
    }
    if let Some(ip) = ip {
        let ip_others: Vec<i64> = sqlx::query_scalar(
            r#"select created_at from login_attempts
               where ip = $1 and created_at > $2 and id <> $3
               order by created_at desc
               limit $4"#,
        )
        .bind(ip)
        .bind(since)
        .bind(attempt.id)
        .bind(ADDRESS_LIMIT)
        .fetch_all(db.reader())
        .await?;
        if ip_others.len() as i64 >= ADDRESS_LIMIT {
            let ip_until = ip_others.last().map(|oldest| oldest + WINDOW_MS);
            until = until.max(ip_until);
        }
    }
    // A parallel attempt may carry a later time than `now`: never say more than the window.
    Ok(until.map(|t| ((t - now).clamp(1, WINDOW_MS) + 59_999) / 60_000))
}

/// Whether a throttled sign-in for this account, or from this address, is already in the
/// audit log within the window. The audit log is kept for good, so a caller hammering the
/// sign-in page adds one row per account or address a window, not one per request.
async fn throttle_recorded(db: &Db, username: &str, ip: Option<&str>) -> Result<bool, CoreError> {
    let since = now_ms() - WINDOW_MS;
    let found: Option<i64> = sqlx::query_scalar(
        r#"select 1 from audit_log
           where action = $1 and created_at > $2 and (target = $3 or ip = $4)
           limit 1"#,
    )
    .bind(action::LOGIN_THROTTLED)
    .bind(since)
    .bind(username)
    .bind(ip)
    .fetch_optional(db.reader())
    .await?;
    Ok(found.is_some())
}

/// Checks a username and password typed on the sign-in page.
#[tracing::instrument(skip_all, fields(ip = ip.as_deref().unwrap_or("-")))]
pub async fn authenticate(
    db: &Db,
    username_input: &str,
    password: SecretString,
    ip: Option<String>,
) -> Result<User, LoginError> {
    // No account can have a name that does not parse: refused before any work.
    let Ok(username) = Username::parse(username_input) else {
        return Err(LoginError::InvalidCredentials);
    };
    let key = username.as_str();
    let attempt = match begin_attempt(db, &username, ip.as_deref()).await? {
        Ok(attempt) => attempt,
        Err(minutes) => {
            if !throttle_recorded(db, key, ip.as_deref()).await? {
                let actor = Actor {
                    user_id: None,
                    name: key.to_owned(),
                    ip: ip.clone(),
                };
                audit::record(
                    db.writer(),
                    Entry {
                        actor: &actor,
                        action: action::LOGIN_THROTTLED,
                        target: Some(key),
                        detail: None,
                    },
                )
                .await?;
            }
            return Err(LoginError::Throttled { minutes });
        }
    };

    let found = users::find_with_hash(db, &username).await?;
    let (user, hash) = match found {
        Some((u, h)) => (Some(u), Some(h)),
        None => (None, None),
    };
    let password_ok = match password::verify(db.hash_slots(), password, hash).await {
        Ok(ok) => ok,
        Err(e) => {
            attempt.abandon(db).await?;
            return Err(e.into());
        }
    };
    let reason = match &user {
        None => Some("unknown user"),
        Some(_) if !password_ok => Some("wrong password"),
        Some(u) if !u.is_active() => Some("account disabled"),
        Some(_) => None,
    };
    let actor = Actor {
        user_id: user.as_ref().map(|u| u.id),
        name: key.to_owned(),
        ip,
    };
    match (reason, user) {
        (None, Some(user)) => {
            attempt.succeeded(db).await?;
            users::touch_login(db, user.id).await?;
            audit::record(
                db.writer(),
                Entry {
                    actor: &actor,
                    action: action::LOGIN_SUCCESS,
                    target: Some(key),
                    detail: None,
                },
            )
            .await?;
            Ok(users::get(db, user.id).await?)
        }
        (reason, _) => {
            attempt.failed();
            tracing::info!(reason = reason.unwrap_or("?"), "sign-in refused");
            audit::record(
                db.writer(),
                Entry {
                    actor: &actor,
                    action: action::LOGIN_FAILURE,
                    target: Some(key),
                    detail: reason,
                },
            )
            .await?;
            Err(LoginError::InvalidCredentials)
        }
    }
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
