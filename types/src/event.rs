//! The live event: what `paydesk_core::events` publishes after a commit and the dashboard's
//! `/api/events` stream sends as JSON (`event:` is [`Event::kind`], `data:` the JSON below),
//! read back by the browser. The JSON is a contract between the two.

use serde::{Deserialize, Serialize};

/// How an order came to be paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaidVia {
    /// A verified payment notification.
    Notification,
    /// An orderquery by the sync job or the mini program's status call.
    Query,
}

/// Something that happened, published after it was committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// An order became `PAID`.
    OrderPaid {
        /// Row id.
        order_id: i64,
        /// The merchant order number.
        out_trade_no: String,
        /// The amount in fen.
        total_fee: i64,
        /// WeChat's transaction id.
        transaction_id: Option<String>,
        /// When it was paid (UTC ms).
        paid_at: i64,
        /// How we learnt it.
        via: PaidVia,
    },
    /// An order ended unpaid (`CLOSED` or `PAYERROR`).
    OrderClosed {
        /// Row id.
        order_id: i64,
        /// The merchant order number.
        out_trade_no: String,
        /// The new status.
        status: String,
    },
    /// A callback was refused (any verdict but applied/duplicate).
    NotificationRejected {
        /// The `notifications` row.
        notification_id: Option<i64>,
        /// `payment` or `refund`.
        kind: String,
        /// The verdict's stored name.
        verdict: String,
        /// The order number it claimed, unverified.
        out_trade_no: Option<String>,
    },
    /// The exceptions inbox changed (items raised, cleared or closed).
    ExceptionsChanged {
        /// How many items are open now.
        open: i64,
    },
    /// A refund changed status.
    RefundChanged {
        /// Row id of the refund.
        refund_id: i64,
        /// Its number.
        out_refund_no: String,
        /// The order it belongs to.
        order_id: i64,
        /// The new status.
        status: String,
    },
}

impl Event {
    /// The event's type name, as in its JSON `type` (the SSE `event:` field).
    pub fn kind(&self) -> &'static str {
        match self {
            Event::OrderPaid { .. } => "order_paid",
            Event::OrderClosed { .. } => "order_closed",
            Event::NotificationRejected { .. } => "notification_rejected",
            Event::RefundChanged { .. } => "refund_changed",
            Event::ExceptionsChanged { .. } => "exceptions_changed",
        }
    }
}
