//! Staff accounts: create, list, change role, disable, passwords (docs/design.md "Users").
//!
//! Every change is written to the audit log in the same transaction as the change.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sqlx::FromRow;

use crate::audit::{self, action, Actor, Entry};
use crate::error::{unique_violation, ConflictReason, ForbiddenReason, InvalidReason, UniqueKey};
use crate::{auth, now_ms, password, Backend, CoreError, Db, Role, Username};

/// A staff account as the rest of the program sees it: no password hash in here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Row id.
    pub id: i64,
    /// Lowercase username.
    pub username: Username,
    /// The account's role.
    pub role: Role,
    /// When the account was disabled (UTC ms); a disabled account cannot sign in.
    pub disabled_at: Option<i64>,
    /// The last successful sign-in (UTC ms).
    pub last_login_at: Option<i64>,
    /// When the password was last set (UTC ms): sessions signed in before it are over.
    pub password_changed_at: i64,
    /// When the account was created (UTC ms).
    pub created_at: i64,
}

impl User {
    /// Whether the account may sign in and act.
    pub fn is_active(&self) -> bool {
        self.disabled_at.is_none()
    }

    /// This user as the actor of an audited change made from `ip`.
    pub fn actor(&self, ip: Option<String>) -> Actor {
        Actor {
            user_id: Some(self.id),
            name: self.username.to_string(),
            ip,
        }
    }
}

#[derive(FromRow)]
struct UserRow {
    id: i64,
    username: String,
    password_hash: String,
    role: String,
    disabled_at: Option<i64>,
    last_login_at: Option<i64>,
    password_changed_at: i64,
    created_at: i64,
}

impl fmt::Debug for UserRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserRow")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("password_hash", &"[redacted]")
            .finish_non_exhaustive()
    }
}

impl UserRow {
    fn into_user(self) -> Result<(User, String), CoreError> {
        let role = self
            .role
            .parse::<Role>()
            .map_err(|e| anyhow::anyhow!("user {} has a bad role in the database: {e}", self.id))?;
        let username = Username::parse(&self.username).map_err(|e| {
            anyhow::anyhow!("user {} has a bad username in the database: {e}", self.id)
        })?;
        Ok((
            User {
                id: self.id,
                username,
                role,
                disabled_at: self.disabled_at,
                last_login_at: self.last_login_at,
                password_changed_at: self.password_changed_at,
                created_at: self.created_at,
            },
            self.password_hash,
        ))
    }
}

const USER_COLUMNS: &str = "id, username, password_hash, role, disabled_at, last_login_at, \
     password_changed_at, created_at";

/// A user and their password hash; only sign-in and password changes need the hash.
pub(crate) async fn find_with_hash(
    db: &Db,
    username: &Username,
) -> Result<Option<(User, String)>, CoreError> {
    let row = sqlx::query_as::<_, UserRow>(&format!(
        "select {USER_COLUMNS} from users where username = $1"
    ))
    .bind(username.as_str())
    .fetch_optional(db.reader())
    .await?;
    row.map(UserRow::into_user).transpose()
}

async fn get_with_hash(db: &Db, id: i64) -> Result<(User, String), CoreError> {
    let row =
        sqlx::query_as::<_, UserRow>(&format!("select {USER_COLUMNS} from users where id = $1"))
            .bind(id)
            .fetch_optional(db.reader())
            .await?;
    row.ok_or(CoreError::NotFound)?.into_user()
}

/// The user with this id.
pub async fn get(db: &Db, id: i64) -> Result<User, CoreError> {
    get_with_hash(db, id).await.map(|(u, _)| u)
}

/// The user with this username, if any.
pub async fn find(db: &Db, username: &Username) -> Result<Option<User>, CoreError> {
    Ok(find_with_hash(db, username).await?.map(|(u, _)| u))
}

/// Every account, active ones first, then by name.
pub async fn list(db: &Db) -> Result<Vec<User>, CoreError> {
    let rows = sqlx::query_as::<_, UserRow>(&format!(
        "select {USER_COLUMNS} from users order by (case when disabled_at is null then 0 else 1 end), username"
    ))
    .fetch_all(db.reader())
    .await?;
    rows.into_iter()
        .map(|r| r.into_user().map(|(u, _)| u))
        .collect()
}

/// How many accounts exist.
pub async fn count(db: &Db) -> Result<i64, CoreError> {
    Ok(sqlx::query_scalar::<_, i64>("select count(*) from users")
        .fetch_one(db.reader())
        .await?)
}

/// Creates an account. The username must be free; the password must meet the policy.
pub async fn create(
    db: &Db,
    actor: &Actor,
    username: &Username,
    password: SecretString,
    role: Role,
) -> Result<User, CoreError> {
    password::check_policy(password.expose_secret())?;
    let hash = password::hash(db.hash_slots(), password).await?;
    let now = now_ms();
    let mut tx = db.begin_write().await?;
    let id = sqlx::query_scalar::<_, i64>(
        r#"insert into users (username, password_hash, role, password_changed_at, created_at, updated_at)
           values ($1, $2, $3, $4, $4, $4)
           returning id"#,
    )
    .bind(username.as_str())
    .bind(&hash)
    .bind(role.as_str())
    .bind(now)
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| {
        if unique_violation(&e) == Some(UniqueKey::Username) {
            CoreError::invalid_because("username", InvalidReason::UsernameTaken)
        } else {
            CoreError::from(e)
        }
    })?;
    let detail = format!("role={role}");
    audit::record(
        &mut *tx,
        Entry {
            actor,
            action: action::USER_CREATE,
            target: Some(username.as_str()),
            detail: Some(&detail),
        },
    )
    .await?;
    tx.commit().await?;
    get(db, id).await
}

/// Refuses a change that would leave no active admin: `target` is an active admin about to
/// stop being one. Runs inside the change's write transaction, so two admins demoting or
/// disabling each other at once cannot both pass: on SQLite the transaction holds the single
/// write lock from its start (`BEGIN IMMEDIATE`); on PostgreSQL the active admins' rows are
/// locked (`for update`), so the second transaction waits for the first to commit and then
/// re-reads them without the one it changed.
async fn keep_an_active_admin(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    backend: Backend,
    target_id: i64,
) -> Result<(), CoreError> {
    let lock = match backend {
        Backend::Sqlite => "",
        Backend::Postgres => "for update",
    };
    let admins: Vec<i64> = sqlx::query_scalar(&format!(
        "select id from users where role = 'admin' and disabled_at is null {lock}"
    ))
    .fetch_all(&mut **tx)
    .await?;
    if admins.contains(&target_id) && admins.len() <= 1 {
        return Err(CoreError::Conflict(ConflictReason::LastActiveAdmin));
    }
    Ok(())
}

/// The user `id` as of inside `tx` (after any lock it waited for).
async fn get_in(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    id: i64,
) -> Result<User, CoreError> {
    let row =
        sqlx::query_as::<_, UserRow>(&format!("select {USER_COLUMNS} from users where id = $1"))
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?;
    Ok(row.ok_or(CoreError::NotFound)?.into_user()?.0)
}

fn refuse_self(actor: &Actor, target: &User) -> Result<(), CoreError> {
    if actor.user_id == Some(target.id) {
        return Err(CoreError::Forbidden(ForbiddenReason::OwnAccount));
    }
    Ok(())
}

/// Changes a user's role. Nobody changes their own role, and the last active admin stays
/// an admin (checked inside the write transaction: [`keep_an_active_admin`]).
pub async fn set_role(db: &Db, actor: &Actor, id: i64, role: Role) -> Result<User, CoreError> {
    let mut tx = db.begin_write().await?;
    let target = get_in(&mut tx, id).await?;
    refuse_self(actor, &target)?;
    if target.role == role {
        return Ok(target);
    }
    if target.role == Role::Admin && target.is_active() {
        keep_an_active_admin(&mut tx, db.backend(), target.id).await?;
    }
    sqlx::query("update users set role = $1, updated_at = $2 where id = $3")
        .bind(role.as_str())
        .bind(now_ms())
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let detail = format!("{} -> {}", target.role, role);
    audit::record(
        &mut *tx,
        Entry {
            actor,
            action: action::USER_ROLE,
            target: Some(target.username.as_str()),
            detail: Some(&detail),
        },
    )
    .await?;
    tx.commit().await?;
    get(db, id).await
}

/// Disables or re-enables an account. A disabled account cannot sign in, and its open
/// sessions stop working at their next request. Nobody disables themselves or the last
/// active admin (checked inside the write transaction: [`keep_an_active_admin`]).
pub async fn set_disabled(
    db: &Db,
    actor: &Actor,
    id: i64,
    disabled: bool,
) -> Result<User, CoreError> {
    let mut tx = db.begin_write().await?;
    let target = get_in(&mut tx, id).await?;
    if target.is_active() != disabled {
        return Ok(target);
    }
    if disabled {
        refuse_self(actor, &target)?;
        if target.role == Role::Admin {
            keep_an_active_admin(&mut tx, db.backend(), target.id).await?;
        }
    }
    let now = now_ms();
    sqlx::query("update users set disabled_at = $1, updated_at = $2 where id = $3")
        .bind(disabled.then_some(now))
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let act = if disabled {
        action::USER_DISABLE
    } else {
        action::USER_ENABLE
    };
    audit::record(
        &mut *tx,
        Entry {
            actor,
            action: act,
            target: Some(target.username.as_str()),
            detail: None,
        },
    )
    .await?;
    tx.commit().await?;
    get(db, id).await
}

async fn store_password(
    db: &Db,
    actor: &Actor,
    user: &User,
    new: SecretString,
    act: &str,
) -> Result<(), CoreError> {
    password::check_policy(new.expose_secret())?;
    let hash = password::hash(db.hash_slots(), new).await?;
    let now = now_ms();
    let mut tx = db.begin_write().await?;
    sqlx::query("update users set password_hash = $1, password_changed_at = $2, updated_at = $2 where id = $3")
        .bind(&hash)
        .bind(now)
        .bind(user.id)
        .execute(&mut *tx)
        .await?;
    audit::record(
        &mut *tx,
        Entry {
            actor,
            action: act,
            target: Some(user.username.as_str()),
            detail: None,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Sets another user's password (an admin reset or `paydesk user passwd`). Every session
/// the user had ends at its next request (`User::password_changed_at`).
pub async fn reset_password(
    db: &Db,
    actor: &Actor,
    id: i64,
    new: SecretString,
) -> Result<(), CoreError> {
    let user = get(db, id).await?;
    store_password(db, actor, &user, new, action::USER_PASSWORD_RESET).await
}

/// A signed-in user changes their own password; the current one must be given. Their
/// other sessions end at their next request (`User::password_changed_at`); the caller
/// renews the session the change was made from.
///
/// Throttled like sign-in, in the same count (it guesses the same secret): a wrong current
/// password is a failed attempt of the account and the address, and past the limit the
/// change is refused with [`CoreError::Throttled`] before any hashing.
pub async fn change_own_password(
    db: &Db,
    user: &User,
    ip: Option<String>,
    current: SecretString,
    new: SecretString,
) -> Result<(), CoreError> {
    password::check_policy(new.expose_secret())?;
    let attempt = match auth::begin_attempt(db, &user.username, ip.as_deref()).await? {
        Ok(attempt) => attempt,
        Err(minutes) => return Err(CoreError::Throttled { minutes }),
    };
    let (_, hash) = get_with_hash(db, user.id).await?;
    let current_ok = match password::verify(db.hash_slots(), current, Some(hash)).await {
        Ok(ok) => ok,
        Err(e) => {
            attempt.abandon(db).await?;
            return Err(e);
        }
    };
    if !current_ok {
        attempt.failed();
        return Err(CoreError::invalid_because(
            "current_password",
            InvalidReason::WrongCurrentPassword,
        ));
    }
    attempt.succeeded(db).await?;
    store_password(
        db,
        &user.actor(ip),
        user,
        new,
        action::ACCOUNT_PASSWORD_CHANGE,
    )
    .await
}

/// Records a successful sign-in time.
pub(crate) async fn touch_login(db: &Db, id: i64) -> Result<(), CoreError> {
    sqlx::query("update users set last_login_at = $1, updated_at = $1 where id = $2")
        .bind(now_ms())
        .bind(id)
        .execute(db.writer())
        .await?;
    Ok(())
}

/// On an empty database, creates the `admin` account. Returns the generated password when
/// none was supplied, so the caller can print it once; `None` when accounts already exist
/// or the password was supplied.
pub async fn ensure_first_admin(
    db: &Db,
    supplied: Option<SecretString>,
) -> Result<FirstAdmin, CoreError> {
    if count(db).await? > 0 {
        return Ok(FirstAdmin::AlreadySetUp);
    }
    let username = Username::parse("admin").map_err(|e| anyhow::anyhow!("{e}"))?;
    let (password, generated) = match supplied {
        Some(p) => (p, None),
        None => {
            let p = password::generate(20);
            (SecretString::from(p.clone()), Some(p))
        }
    };
    create(db, &Actor::system(), &username, password, Role::Admin).await?;
    Ok(match generated {
        Some(p) => FirstAdmin::Generated(SecretString::from(p)),
        None => FirstAdmin::FromConfig,
    })
}

/// What [`ensure_first_admin`] did.
#[derive(Debug)]
pub enum FirstAdmin {
    /// Accounts already existed; nothing was done.
    AlreadySetUp,
    /// `admin` was created with the configured password.
    FromConfig,
    /// `admin` was created with this generated password, to be printed once.
    Generated(SecretString),
}
