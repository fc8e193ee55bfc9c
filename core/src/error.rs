//! The domain's error type. Callers map it to their own surface (style.md §5): the JSON API
//! to `ApiError`, server functions to `AppError`.

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
        /// A message that can be shown to the person who typed it.
        message: String,
    },
    /// The operation is not allowed for this actor or in this state.
    #[error("forbidden: {0}")]
    Forbidden(String),
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
    /// The server is at its bound for this kind of work (password hashing); the same request
    /// may succeed a moment later.
    #[error("busy, try again")]
    Busy,
    /// The request clashes with something already there (e.g. an open refund request of
    /// the same order): trying again will not help until that is settled.
    #[error("conflict: {0}")]
    Conflict(String),
    /// A database error; never shown to a client.
    #[error("database error")]
    Db(#[from] sqlx::Error),
    /// Anything else unexpected; never shown to a client.
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

impl CoreError {
    /// Shorthand for [`CoreError::Invalid`].
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        CoreError::Invalid {
            field,
            message: message.into(),
        }
    }
}

/// Whether a database error is a unique-constraint violation (works through `Any`, which
/// keeps the backend's own error).
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(e) if e.is_unique_violation())
}

/// A stored name that is no status or verdict this build knows (`paydesk-types`
/// parses them): the database holds something the code does not, an internal error as it
/// was when the enums lived here.
impl From<paydesk_types::UnknownName> for CoreError {
    fn from(e: paydesk_types::UnknownName) -> Self {
        CoreError::Internal(e.into())
    }
}
