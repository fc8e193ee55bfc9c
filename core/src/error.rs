//! The domain's error type. Callers map it to their own surface (docs/style.md §5): the JSON API
//! to `ApiError`, server functions to `AppError`. Refusals carry a reason as a small enum
//! ([`ConflictReason`], [`ForbiddenReason`], [`InvalidReason`] from `paydesk-types`) that
//! each surface words itself; the two unexpected kinds carry their cause in `Display`, so a
//! log line `error = %e` says what the database answered.

pub use paydesk_types::{ConflictReason, ForbiddenReason, InvalidReason};

/// What went wrong in a domain operation.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// The thing asked for does not exist.
    #[error("not found")]
    NotFound,
    /// The input was understood but is not acceptable; `field` names the offending input.
    #[error("{field}: {message}")]
    Invalid {
        /// The input field at fault (`username`, `password`, …).
        field: &'static str,
        /// A message that can be shown to the person who typed it (English).
        message: String,
        /// The reason as a code, for the refusals the dashboard words itself.
        reason: Option<InvalidReason>,
    },
    /// This actor may not do this, whatever the state (nobody decides their own refund
    /// request, nobody disables their own account).
    #[error("forbidden: {0}")]
    Forbidden(ForbiddenReason),
    /// Too many wrong passwords for this account or address recently; the next attempt is
    /// accepted after this many minutes (at least 1).
    #[error("too many failed attempts; try again in {minutes} minutes")]
    Throttled {
        /// Whole minutes until the next attempt is accepted, rounded up.
        minutes: i64,
    },
    /// Refused approval: the order was paid by `openid`, which the approver recorded as
    /// their own (My account). Somebody else must approve the refund.
    #[error(
        "the order was paid by your own openid {openid}; someone else must approve its refund"
    )]
    OwnPayment {
        /// The approver's openid that paid the order.
        openid: String,
    },
    /// The same work ran moments ago and may run again only after a pause (the pre-flight
    /// check, `crate::doctor::MIN_INTERVAL`).
    #[error("ran moments ago; try again in {seconds} s")]
    TooSoon {
        /// Whole seconds until it may run again, rounded up (at least 1).
        seconds: u64,
    },
    /// The server is at its bound for this kind of work (password hashing); the same request
    /// may succeed a moment later.
    #[error("busy, try again")]
    Busy,
    /// The request clashes with the state things are in (already decided, not refundable,
    /// a refund request already open, …): trying again will not help until that changes.
    #[error("conflict: {0}")]
    Conflict(ConflictReason),
    /// A database error; never shown to a client. `Display` includes the driver's text
    /// (and so no `source()`: a chain printer would say it twice).
    #[error("database error: {0}")]
    Db(sqlx::Error),
    /// Anything else unexpected; never shown to a client. `Display` includes the whole
    /// context chain (`{:#}`), for the same reason as [`CoreError::Db`].
    #[error("internal error: {0:#}")]
    Internal(anyhow::Error),
}

impl From<sqlx::Error> for CoreError {
    fn from(e: sqlx::Error) -> Self {
        CoreError::Db(e)
    }
}

impl From<anyhow::Error> for CoreError {
    fn from(e: anyhow::Error) -> Self {
        CoreError::Internal(e)
    }
}

impl CoreError {
    /// Shorthand for [`CoreError::Invalid`] with a message only.
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        CoreError::Invalid {
            field,
            message: message.into(),
            reason: None,
        }
    }

    /// [`CoreError::Invalid`] for a reason the dashboard words itself; the message is the
    /// reason's English text.
    pub fn invalid_because(field: &'static str, reason: InvalidReason) -> Self {
        CoreError::Invalid {
            field,
            message: reason.to_string(),
            reason: Some(reason),
        }
    }
}

/// Whether a database error is a unique-constraint violation (works through `Any`, which
/// keeps the backend's own error).
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(e) if e.is_unique_violation())
}

/// A unique key of the schema that callers turn into a refusal. The two engines name a
/// violation differently: PostgreSQL reports the constraint or index name (the migrations
/// name them `<table>_<column>_key`), SQLite only the columns (`UNIQUE constraint failed:
/// users.username`). [`unique_violation`] knows both, so no caller reads error text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UniqueKey {
    /// `users.username`.
    Username,
    /// `user_openids (user_id, openid)`.
    UserOpenid,
    /// `orders.out_trade_no`.
    OrderOutTradeNo,
    /// `orders.idempotency_key`.
    OrderIdempotencyKey,
    /// The partial index allowing one open customer request per order (`refunds.order_id`).
    OneOpenCustomerRequest,
}

impl UniqueKey {
    const ALL: [UniqueKey; 5] = [
        UniqueKey::Username,
        UniqueKey::UserOpenid,
        UniqueKey::OrderOutTradeNo,
        UniqueKey::OrderIdempotencyKey,
        UniqueKey::OneOpenCustomerRequest,
    ];

    /// The constraint or index name (what PostgreSQL reports).
    pub fn name(self) -> &'static str {
        match self {
            UniqueKey::Username => "users_username_key",
            UniqueKey::UserOpenid => "user_openids_user_id_openid_key",
            UniqueKey::OrderOutTradeNo => "orders_out_trade_no_key",
            UniqueKey::OrderIdempotencyKey => "orders_idempotency_key_key",
            UniqueKey::OneOpenCustomerRequest => "refunds_one_open_customer_request",
        }
    }

    /// The columns as SQLite lists them after `UNIQUE constraint failed: `.
    fn sqlite_columns(self) -> &'static str {
        match self {
            UniqueKey::Username => "users.username",
            UniqueKey::UserOpenid => "user_openids.user_id, user_openids.openid",
            UniqueKey::OrderOutTradeNo => "orders.out_trade_no",
            UniqueKey::OrderIdempotencyKey => "orders.idempotency_key",
            UniqueKey::OneOpenCustomerRequest => "refunds.order_id",
        }
    }
}

/// Which of our unique keys `err` violates, if it is a unique violation of one of them.
pub fn unique_violation(err: &sqlx::Error) -> Option<UniqueKey> {
    let sqlx::Error::Database(e) = err else {
        return None;
    };
    if !e.is_unique_violation() {
        return None;
    }
    if let Some(name) = e.constraint() {
        return UniqueKey::ALL.into_iter().find(|k| k.name() == name);
    }
    // SQLite: the extended code says "unique", the message lists the columns.
    let columns = e.message().strip_prefix("UNIQUE constraint failed: ")?;
    UniqueKey::ALL
        .into_iter()
        .find(|k| k.sqlite_columns() == columns)
}

/// A stored name that is no status or verdict this build knows (`paydesk-types`
/// parses them): the database holds something the code does not, an internal error as it
/// was when the enums lived here.
impl From<paydesk_types::UnknownName> for CoreError {
    fn from(e: paydesk_types::UnknownName) -> Self {
        CoreError::Internal(e.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_database_error_says_what_the_database_answered() {
        // Arrange: a real driver error
        let pool = sqlx::SqlitePool::connect("sqlite::memory:").await.unwrap();
        let err = sqlx::query("select x from no_such_table")
            .execute(&pool)
            .await
            .unwrap_err();

        // Act
        let logged = CoreError::from(err).to_string();

        // Assert: what `error = %e` prints names the cause
        assert!(logged.starts_with("database error: "), "{logged}");
        assert!(logged.contains("no such table: no_such_table"), "{logged}");
        let internal = CoreError::from(anyhow::anyhow!("disk full").context("writing the export"));
        assert_eq!(
            internal.to_string(),
            "internal error: writing the export: disk full"
        );
    }

    #[tokio::test]
    async fn sqlite_unique_violations_are_named_by_their_columns() {
        let pool = sqlx::SqlitePool::connect("sqlite::memory:").await.unwrap();
        sqlx::query(
            "create table users (username text not null constraint users_username_key unique)",
        )
        .execute(&pool)
        .await
        .unwrap();
        sqlx::query("create table refunds (order_id integer, status text)")
            .execute(&pool)
            .await
            .unwrap();
        sqlx::query("create unique index refunds_one_open_customer_request on refunds (order_id) where status = 'open'")
            .execute(&pool)
            .await
            .unwrap();
        for (sql, key) in [
            (
                "insert into users (username) values ('a')",
                UniqueKey::Username,
            ),
            (
                "insert into refunds (order_id, status) values (1, 'open')",
                UniqueKey::OneOpenCustomerRequest,
            ),
        ] {
            sqlx::query(sql).execute(&pool).await.unwrap();
            let err = sqlx::query(sql).execute(&pool).await.unwrap_err();
            assert_eq!(unique_violation(&err), Some(key), "{err}");
        }
        assert_eq!(
            unique_violation(&sqlx::Error::RowNotFound),
            None,
            "not a database error"
        );
    }
}
