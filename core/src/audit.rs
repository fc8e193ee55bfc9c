//! The audit log: who did what, to what, when, from where (docs/design.md "Data").

use serde::{Deserialize, Serialize};
use sqlx::{Any, Executor, FromRow};

use crate::{now_ms, CoreError, Db};

/// Who is acting: a signed-in user, the command line, or the system itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The user's id, when a user acts.
    pub user_id: Option<i64>,
    /// The username, `cli` or `system`.
    pub name: String,
    /// The client address, when acting over HTTP.
    pub ip: Option<String>,
}

impl Actor {
    /// The `paydesk` command line (an operator with shell access).
    pub fn cli() -> Self {
        Actor {
            user_id: None,
            name: "cli".into(),
            ip: None,
        }
    }

    /// paydesk itself (first start, background jobs).
    pub fn system() -> Self {
        Actor {
            user_id: None,
            name: "system".into(),
            ip: None,
        }
    }
}

/// The audit actions, as stored in `audit_log.action`.
pub mod action {
    /// A successful sign-in.
    pub const LOGIN_SUCCESS: &str = "login.success";
    /// A failed sign-in (unknown user, wrong password, disabled account).
    pub const LOGIN_FAILURE: &str = "login.failure";
    /// A sign-in refused because of too many recent failures.
    pub const LOGIN_THROTTLED: &str = "login.throttled";
    /// A sign-out.
    pub const LOGOUT: &str = "logout";
    /// A user was created.
    pub const USER_CREATE: &str = "user.create";
    /// A user's role was changed.
    pub const USER_ROLE: &str = "user.role";
    /// A user was disabled.
    pub const USER_DISABLE: &str = "user.disable";
    /// A user was enabled again.
    pub const USER_ENABLE: &str = "user.enable";
    /// A user's password was set by someone else (admin or CLI).
    pub const USER_PASSWORD_RESET: &str = "user.password_reset";
    /// A user changed their own password.
    pub const ACCOUNT_PASSWORD_CHANGE: &str = "account.password_change";
    /// A user recorded one of their own openids (My account).
    pub const ACCOUNT_OPENID_ADD: &str = "account.openid_add";
    /// A user removed one of their own openids (My account).
    pub const ACCOUNT_OPENID_REMOVE: &str = "account.openid_remove";
    /// A product was added to the catalogue.
    pub const PRODUCT_CREATE: &str = "product.create";
    /// A product's name, price or availability changed.
    pub const PRODUCT_UPDATE: &str = "product.update";
    /// A refund was requested (by a customer in the mini program or by support).
    pub const REFUND_REQUEST: &str = "refund.request";
    /// A refund request was approved.
    pub const REFUND_APPROVE: &str = "refund.approve";
    /// A refund request was rejected.
    pub const REFUND_REJECT: &str = "refund.reject";
    /// Orders were exported as CSV (the detail names the filter).
    pub const ORDER_EXPORT: &str = "order.export";
    /// Staff asked WeChat Pay about an order now (orderquery from the order's page).
    pub const ORDER_SYNC: &str = "order.sync";
    /// Staff closed an unpaid order (closeorder from the order's page).
    pub const ORDER_CLOSE: &str = "order.close";
    /// Old rows were pruned by the retention policy (the detail counts them per line).
    pub const RETENTION_PRUNE: &str = "retention.prune";
    /// A day was reconciled with WeChat Pay's bill on request (the page, `paydesk
    /// reconcile`); the detail gives the outcome.
    pub const RECONCILE_RUN: &str = "reconcile.run";
    /// A reconciliation difference was resolved by a person, with a note.
    pub const RECONCILE_RESOLVE: &str = "reconcile.resolve";
    /// 补单: a payment WeChat Pay had and we did not was asked about and applied.
    pub const RECONCILE_SYNC: &str = "reconcile.sync";
    /// An item of the exceptions inbox was closed by a person, with a note.
    pub const EXCEPTION_CLOSE: &str = "exception.close";
    /// An admin ran the pre-flight check from the Settings page (calls to WeChat Pay that
    /// move no money; the detail names where they went).
    pub const DOCTOR_RUN: &str = "doctor.run";
}

/// The note a person gives when closing something by hand (a reconciliation difference, an
/// exception): trimmed, 1 to 500 characters.
pub fn required_note(note: &str) -> Result<&str, CoreError> {
    let note = note.trim();
    if note.is_empty() || note.chars().count() > 500 {
        return Err(CoreError::invalid(
            "note",
            "say in 1 to 500 characters what was done",
        ));
    }
    Ok(note)
}

/// One audit entry to write.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    /// Who acted.
    pub actor: &'a Actor,
    /// One of [`action`].
    pub action: &'a str,
    /// What it was done to (a username, an order number, …).
    pub target: Option<&'a str>,
    /// Free text for people reading the log. Never a secret.
    pub detail: Option<&'a str>,
}

/// Writes an audit entry with whatever executor the caller holds (a pool or the caller's
/// transaction, so the entry commits or rolls back with the change it describes).
pub async fn record<'e, E>(executor: E, entry: Entry<'_>) -> Result<(), CoreError>
where
    E: Executor<'e, Database = Any>,
{
    sqlx::query(
        r#"insert into audit_log (created_at, actor_user_id, actor, action, target, detail, ip)
           values ($1, $2, $3, $4, $5, $6, $7)"#,
    )
    .bind(now_ms())
    .bind(entry.actor.user_id)
    .bind(storable(&entry.actor.name))
    .bind(entry.action)
    .bind(entry.target.map(storable))
    .bind(entry.detail.map(storable))
    .bind(entry.actor.ip.as_deref())
    .execute(executor)
    .await?;
    Ok(())
}

/// Text as stored: NUL, which PostgreSQL's text cannot hold, becomes U+FFFD (as in a
/// stored callback body), so what a caller typed is written on either engine.
fn storable(text: &str) -> String {
    text.replace('\0', "\u{FFFD}")
}

/// An audit entry as read back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, FromRow)]
pub struct AuditRecord {
    /// Row id.
    pub id: i64,
    /// When (UTC ms).
    pub created_at: i64,
    /// The acting user's id, if a user acted.
    pub actor_user_id: Option<i64>,
    /// The acting user's name, `cli` or `system`.
    pub actor: String,
    /// What was done.
    pub action: String,
    /// To what.
    pub target: Option<String>,
    /// Details.
    pub detail: Option<String>,
    /// From which address.
    pub ip: Option<String>,
}

/// The newest entries, optionally only those by one user or of one action, newest first.
pub async fn list(
    db: &Db,
    actor_user_id: Option<i64>,
    action: Option<&str>,
    limit: i64,
) -> Result<Vec<AuditRecord>, CoreError> {
    let rows = sqlx::query_as::<_, AuditRecord>(
        r#"select id, created_at, actor_user_id, actor, action, target, detail, ip
           from audit_log
           where ($1 is null or actor_user_id = $1) and ($2 is null or action = $2)
           order by created_at desc, id desc
           limit $3"#,
    )
    .bind(actor_user_id)
    .bind(action)
    .bind(limit.clamp(1, 1000))
    .fetch_all(db.reader())
    .await?;
    Ok(rows)
}

/// Every action, for the audit page's filter.
pub const ACTIONS: [&str; 26] = [
    action::LOGIN_SUCCESS,
    action::LOGIN_FAILURE,
    action::LOGIN_THROTTLED,
    action::LOGOUT,
    action::USER_CREATE,
    action::USER_ROLE,
    action::USER_DISABLE,
    action::USER_ENABLE,
    action::USER_PASSWORD_RESET,
    action::ACCOUNT_PASSWORD_CHANGE,
    action::ACCOUNT_OPENID_ADD,
    action::ACCOUNT_OPENID_REMOVE,
    action::PRODUCT_CREATE,
    action::PRODUCT_UPDATE,
    action::REFUND_REQUEST,
    action::REFUND_APPROVE,
    action::REFUND_REJECT,
    action::ORDER_EXPORT,
    action::ORDER_SYNC,
    action::ORDER_CLOSE,
    action::RETENTION_PRUNE,
    action::RECONCILE_RUN,
    action::RECONCILE_RESOLVE,
    action::RECONCILE_SYNC,
    action::EXCEPTION_CLOSE,
    action::DOCTOR_RUN,
];

/// What the audit page filters by; every field optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Only this action.
    pub action: Option<String>,
    /// Only entries by this actor (a username, `cli` or `system`; exact).
    pub actor: Option<String>,
    /// At or after (UTC ms).
    pub from: Option<i64>,
    /// Before (UTC ms).
    pub to: Option<i64>,
}

/// Where the next (older) page starts: the last entry shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditCursor {
    /// Its time.
    pub created_at: i64,
    /// Its id.
    pub id: i64,
}

impl AuditCursor {
    /// `created_at.id`, for a URL.
    pub fn encode(&self) -> String {
        format!("{}.{}", self.created_at, self.id)
    }

    /// The reverse of [`AuditCursor::encode`]; `None` for anything else.
    pub fn decode(text: &str) -> Option<AuditCursor> {
        let (created_at, id) = text.split_once('.')?;
        Some(AuditCursor {
            created_at: created_at.parse().ok()?,
            id: id.parse().ok()?,
        })
    }
}

/// One page of the audit log, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditPage {
    /// The entries.
    pub entries: Vec<AuditRecord>,
    /// Where the next page starts, when there are older entries.
    pub next: Option<AuditCursor>,
}

/// The audit page: entries matching `filter`, newest first, `limit` per page, keyset-paged
/// on `(created_at, id)` (`after` is the last entry of the previous page). The
/// `created_at <= …` term makes the cursor an index range on `created_at` on both engines.
pub async fn search(
    db: &Db,
    filter: &AuditFilter,
    after: Option<AuditCursor>,
    limit: i64,
) -> Result<AuditPage, CoreError> {
    let limit = limit.clamp(1, 500);
    let mut rows = sqlx::query_as::<_, AuditRecord>(
        r#"select id, created_at, actor_user_id, actor, action, target, detail, ip
           from audit_log
           where ($1 is null or action = $1)
             and ($2 is null or actor = $2)
             and ($3 is null or created_at >= $3)
             and ($4 is null or created_at < $4)
             and ($5 is null or (created_at <= $5 and (created_at < $5 or id < $6)))
           order by created_at desc, id desc
           limit $7"#,
    )
    .bind(filter.action.as_deref())
    .bind(filter.actor.as_deref())
    .bind(filter.from)
    .bind(filter.to)
    .bind(after.map(|c| c.created_at))
    .bind(after.map(|c| c.id))
    .bind(limit + 1)
    .fetch_all(db.reader())
    .await?;
    let next = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|r| AuditCursor {
            created_at: r.created_at,
            id: r.id,
        })
    } else {
        None
    };
    Ok(AuditPage {
        entries: rows,
        next,
    })
}
