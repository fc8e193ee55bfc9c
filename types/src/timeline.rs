//! What happened to an order, entry by entry, as its timeline shows it: the one definition
//! the domain (`paydesk_core::timeline`, which reads it from the database) and the order's
//! page (which shows it) share. A call to WeChat Pay and a callback are the type's
//! parameters: the domain keeps what it reasons with (`CallSummary`, a
//! [`NotificationSummary`]), the page what it shows, and [`OrderEvent::map`] turns one into
//! the other.

use serde::{Deserialize, Serialize};

use crate::{RefundStatus, Verdict};

/// One thing that happened to an order. `C` is a call to WeChat Pay about it (raw record:
/// `api_calls.id`), `N` a callback that concerned or claimed it (raw record:
/// `notifications.id`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderEvent<C, N> {
    /// The order was stored (`NOTPAY`).
    Created {
        /// The amount in fen.
        total_fee: i64,
    },
    /// A call to WeChat Pay.
    ApiCall(C),
    /// A callback.
    Notification(N),
    /// The order became paid (`time_end` from WeChat Pay).
    Paid {
        /// WeChat's transaction id (微信支付单号).
        transaction_id: Option<String>,
    },
    /// A refund was requested.
    RefundRequested {
        /// The refund number.
        out_refund_no: String,
        /// The amount in fen.
        amount_fen: i64,
        /// Why.
        reason: String,
        /// `customer` or `staff`.
        requester_kind: String,
        /// The username, or the customer's openid.
        requester: String,
    },
    /// A manager approved or rejected a refund.
    RefundDecided {
        /// The refund number.
        out_refund_no: String,
        /// Approved (else rejected).
        approved: bool,
        /// Who decided.
        by: String,
        /// Their reason.
        reason: Option<String>,
    },
    /// A refund reached an outcome: `SUCCESS`, or `FAILED` / `REFUNDCLOSE` / `CHANGE`.
    RefundOutcome {
        /// The refund number.
        out_refund_no: String,
        /// The refund's status.
        status: RefundStatus,
        /// The amount in fen.
        amount_fen: i64,
        /// WeChat's refund id.
        refund_id: Option<String>,
        /// Why it failed, in plain words.
        last_error: Option<String>,
    },
    /// A staff action from the audit log (raw record: `audit_log.id`).
    Staff {
        /// The audit row.
        audit_id: i64,
        /// Who.
        actor: String,
        /// The audit action (`order.sync`, `order.close`, …).
        action: String,
        /// What the log says about it.
        detail: Option<String>,
    },
}

/// One callback on an order's timeline, without its raw body (that is on the
/// notification's own page).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationSummary {
    /// `notifications.id`.
    pub id: i64,
    /// `payment` or `refund`.
    pub kind: String,
    /// The verdict (`Duplicate` marks a repeat).
    pub verdict: Verdict,
    /// Why, for people.
    pub detail: String,
    /// What we answered.
    pub reply: String,
    /// The refund it was about (refund notifications).
    pub out_refund_no: Option<String>,
}

impl<C, N> OrderEvent<C, N> {
    /// Orders entries with the same timestamp: what causes comes before what follows.
    pub fn rank(&self) -> u8 {
        match self {
            OrderEvent::Created { .. } => 0,
            OrderEvent::RefundRequested { .. } => 1,
            OrderEvent::RefundDecided { .. } => 2,
            OrderEvent::ApiCall(_) => 3,
            OrderEvent::Notification(_) => 4,
            OrderEvent::Paid { .. } => 5,
            // Staff actions are audited once their call has answered.
            OrderEvent::Staff { .. } => 6,
            OrderEvent::RefundOutcome { .. } => 7,
        }
    }

    /// The same event with its call or callback turned into another form by `call` or
    /// `notification` (what the page shows of it); every other entry stays as it is.
    pub fn map<C2, N2>(
        self,
        call: impl FnOnce(C) -> C2,
        notification: impl FnOnce(N) -> N2,
    ) -> OrderEvent<C2, N2> {
        use OrderEvent as E;
        match self {
            E::ApiCall(c) => E::ApiCall(call(c)),
            E::Notification(n) => E::Notification(notification(n)),
            E::Created { total_fee } => E::Created { total_fee },
            E::Paid { transaction_id } => E::Paid { transaction_id },
            E::RefundRequested {
                out_refund_no,
                amount_fen,
                reason,
                requester_kind,
                requester,
            } => E::RefundRequested {
                out_refund_no,
                amount_fen,
                reason,
                requester_kind,
                requester,
            },
            E::RefundDecided {
                out_refund_no,
                approved,
                by,
                reason,
            } => E::RefundDecided {
                out_refund_no,
                approved,
                by,
                reason,
            },
            E::RefundOutcome {
                out_refund_no,
                status,
                amount_fen,
                refund_id,
                last_error,
            } => E::RefundOutcome {
                out_refund_no,
                status,
                amount_fen,
                refund_id,
                last_error,
            },
            E::Staff {
                audit_id,
                actor,
                action,
                detail,
            } => E::Staff {
                audit_id,
                actor,
                action,
                detail,
            },
        }
    }
}
