//! Why a request was refused, as small enums rather than sentences: the dashboard words
//! each one through its `messages!` table (Chinese first), the server logs and audits the
//! English `Display`, and nobody picks a translation by matching substrings of English text.
//! They cross the wire inside the app's `AppError`, so they live here (wasm-safe).

use serde::{Deserialize, Serialize};

use crate::UsernameError;

/// The request clashes with the state things are in (HTTP 409): sending it again changes
/// nothing until that state changes. Not a matter of who asks: that is [`ForbiddenReason`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum ConflictReason {
    /// The refund was approved or rejected already (two managers at once: one decides).
    #[error("already decided: the refund is {status}{}", by_suffix(by))]
    AlreadyDecided {
        /// The refund's status now (`APPROVED`, `REJECTED`, …).
        status: String,
        /// Who decided it, when known.
        by: Option<String>,
    },
    /// The order has no amount left: refunded in full.
    #[error("the order has been refunded in full")]
    RefundedInFull,
    /// Only a paid order can be refunded.
    #[error("only a paid order can be refunded; this one is {status}")]
    NotRefundable {
        /// The order's status (`NOTPAY`, `CLOSED`, …).
        status: String,
    },
    /// The shopper already has a refund request open for this order (one at a time).
    #[error("a refund request for this order is already open")]
    RefundRequestOpen,
    /// Only an unpaid order can be closed.
    #[error("only an unpaid order can be closed; this one is {status}")]
    NotClosable {
        /// The order's status.
        status: String,
    },
    /// The order's state machine has no such step.
    #[error("an order cannot go from {from} to {to}")]
    IllegalTransition {
        /// The order's status.
        from: String,
        /// The status asked for.
        to: String,
    },
    /// The order changed while this request was deciding (another writer won).
    #[error("the order is no longer {status}")]
    StatusChanged {
        /// The status this request had read.
        status: String,
    },
    /// The change would leave no active admin.
    #[error("this is the last active admin; make someone else admin first")]
    LastActiveAdmin,
    /// WeChat Pay closes an order only 5 minutes after it was created (closeorder); until
    /// then it stays payable, and it is closed at `closes_at` by the sync job.
    #[error("WeChat Pay closes an order only 5 minutes after it was created; this one closes at {}", crate::format_shanghai(*closes_at))]
    TooEarlyToClose {
        /// When it can be (and will be) closed, UTC ms.
        closes_at: i64,
    },
    /// A pre-flight check is under way already (one at a time per server).
    #[error("a pre-flight check is running already; its result shows when it ends")]
    DoctorRunning,
}

/// Signed in with the right role, yet this actor may not do this (HTTP 403 with a reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum ForbiddenReason {
    /// Nobody approves or rejects a refund they requested themselves.
    #[error("nobody approves or rejects a refund they requested themselves")]
    OwnRefundRequest,
    /// Nobody changes their own role or disables their own account.
    #[error("you cannot change the role of or disable your own account")]
    OwnAccount,
}

/// Input refused for a reason the dashboard words itself (HTTP 422); other invalid input
/// carries only an English message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum InvalidReason {
    /// A new password shorter than the policy allows.
    #[error("at least {min} characters")]
    PasswordTooShort {
        /// The fewest characters allowed.
        min: usize,
    },
    /// A new password longer than the policy allows.
    #[error("at most {max} characters")]
    PasswordTooLong {
        /// The most characters allowed.
        max: usize,
    },
    /// The current password given to change it is wrong.
    #[error("the current password is not correct")]
    WrongCurrentPassword,
    /// The two new passwords typed differ.
    #[error("the new passwords do not match")]
    PasswordsDiffer,
    /// Another account has this username.
    #[error("this username is already taken")]
    UsernameTaken,
    /// Not 2 to 32 characters.
    #[error("{}", UsernameError::Length)]
    UsernameLength,
    /// A character outside `a-z 0-9 _ . -`.
    #[error("{}", UsernameError::Charset)]
    UsernameCharset,
    /// Not one of the four roles.
    #[error("unknown role (expected staff, support, manager or admin)")]
    UnknownRole,
}

impl From<UsernameError> for InvalidReason {
    fn from(e: UsernameError) -> Self {
        match e {
            UsernameError::Length => InvalidReason::UsernameLength,
            UsernameError::Charset => InvalidReason::UsernameCharset,
        }
    }
}

fn by_suffix(by: &Option<String>) -> String {
    by.as_deref()
        .map(|by| format!(" (by {by})"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reason_travels_as_a_code_with_its_details() {
        let reason = ConflictReason::AlreadyDecided {
            status: "APPROVED".into(),
            by: Some("manager1".into()),
        };
        let json = serde_json::to_value(&reason).unwrap();
        assert_eq!(json["code"], "already_decided");
        assert_eq!(json["by"], "manager1");
        assert_eq!(
            serde_json::from_value::<ConflictReason>(json).unwrap(),
            reason
        );
        assert_eq!(
            reason.to_string(),
            "already decided: the refund is APPROVED (by manager1)"
        );
        let json = serde_json::to_value(ForbiddenReason::OwnAccount).unwrap();
        assert_eq!(json, serde_json::json!({"code": "own_account"}));
    }
}
