//! What the Orders pages receive: a page of the filtered list with its totals, and one
//! order with its timeline.

use paydesk_types::{OrderStatus, RefundStatus, Verdict};
use serde::{Deserialize, Serialize};

/// One order in the list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderListItem {
    /// 商户订单号.
    pub out_trade_no: String,
    /// 微信支付单号, once paid.
    pub transaction_id: Option<String>,
    /// The payer's openid.
    pub openid: String,
    /// The amount in fen.
    pub total_fee: i64,
    /// Its status.
    pub status: OrderStatus,
    /// Created (UTC ms).
    pub created_at: i64,
    /// Paid (UTC ms).
    pub paid_at: Option<i64>,
}

/// What the orders page shows for its URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrdersView {
    /// The search box found exactly one thing: go there instead (`/orders/{no}`, or the
    /// list filtered to one customer).
    pub jump: Option<String>,
    /// The search box found nothing for this text.
    pub not_found: Option<String>,
    /// This page of the filtered list, newest first.
    pub orders: Vec<OrderListItem>,
    /// The cursor of the next page, if there is one.
    pub next: Option<String>,
    /// How many orders match the filter.
    pub count: i64,
    /// Their amounts' sum in fen.
    pub sum_fen: i64,
    /// The filter as a query string (for the export link and page links).
    pub filter_query: String,
    /// Whether the viewer may export (manager and up).
    pub can_export: bool,
}

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLine {
    /// Product name at the time of the order.
    pub name: String,
    /// Unit price in fen.
    pub unit_price_fen: i64,
    /// Quantity.
    pub quantity: i64,
}

/// Everything the order page shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderDetail {
    /// Row id (live refund events name orders by id).
    pub id: i64,
    /// 商户订单号.
    pub out_trade_no: String,
    /// 微信支付单号.
    pub transaction_id: Option<String>,
    /// The payer's openid.
    pub openid: String,
    /// The `body` sent to unifiedorder.
    pub description: String,
    /// The amount in fen.
    pub total_fee: i64,
    /// Its status.
    pub status: OrderStatus,
    /// `MD5` or `HMAC-SHA256`.
    pub sign_type: String,
    /// `trade_type` sent to unifiedorder, when the call is on record.
    pub trade_type: Option<String>,
    /// `prepay_id`.
    pub prepay_id: Option<String>,
    /// When the prepay_id expires (UTC ms).
    pub prepay_expires_at: Option<i64>,
    /// The payer's bank.
    pub bank_type: Option<String>,
    /// The shopper's IP address.
    pub client_ip: Option<String>,
    /// Created (UTC ms).
    pub created_at: i64,
    /// Paid (UTC ms).
    pub paid_at: Option<i64>,
    /// Stops being payable (UTC ms).
    pub expires_at: Option<i64>,
    /// Last changed (UTC ms).
    pub updated_at: i64,
    /// Times the sync job asked WeChat Pay about it.
    pub sync_attempts: i64,
    /// The lines.
    pub items: Vec<OrderLine>,
    /// Fen refunded (successful refunds).
    pub refunded_fen: i64,
    /// Fen still refundable.
    pub refundable_fen: i64,
    /// Everything that happened, oldest first.
    pub timeline: Vec<TimelineItem>,
    /// Whether the viewer may sync, close and file refunds (support and up).
    pub can_act: bool,
}

/// One timeline entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineItem {
    /// When (UTC ms).
    pub at: i64,
    /// What.
    pub what: TimelineWhat,
}

/// What a timeline entry records (see `paydesk_core::orders::timeline::Event`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TimelineWhat {
    /// The order was stored.
    Created {
        /// Amount in fen.
        total_fee: i64,
    },
    /// A call to WeChat Pay; raw record at `/api-calls/{id}`.
    ApiCall {
        /// `api_calls.id`.
        id: i64,
        /// Endpoint path.
        endpoint: String,
        /// Answered SUCCESS.
        ok: bool,
        /// `err_code`, `result_code`, `return_code` or the error, whichever says most.
        outcome: Option<String>,
        /// The refund it concerned.
        out_refund_no: Option<String>,
        /// Round trip in milliseconds.
        latency_ms: i64,
    },
    /// A callback; raw record at `/notifications/{id}`.
    Notification {
        /// `notifications.id`.
        id: i64,
        /// `payment` or `refund`.
        kind: String,
        /// What became of it.
        verdict: Verdict,
        /// Why, for people.
        detail: String,
        /// `SUCCESS` or `FAIL`.
        reply: String,
        /// The refund it was about.
        out_refund_no: Option<String>,
    },
    /// The order was paid.
    Paid {
        /// 微信支付单号.
        transaction_id: Option<String>,
    },
    /// A refund was requested.
    RefundRequested {
        /// Refund number.
        out_refund_no: String,
        /// Amount in fen.
        amount_fen: i64,
        /// Why.
        reason: String,
        /// `customer` or `staff`.
        requester_kind: String,
        /// Username or openid.
        requester: String,
    },
    /// A manager decided on a refund.
    RefundDecided {
        /// Refund number.
        out_refund_no: String,
        /// Approved (else rejected).
        approved: bool,
        /// Who.
        by: String,
        /// Their reason.
        reason: Option<String>,
    },
    /// A refund ended (or went abnormal).
    RefundOutcome {
        /// Refund number.
        out_refund_no: String,
        /// The refund's status.
        status: RefundStatus,
        /// Amount in fen.
        amount_fen: i64,
        /// WeChat's refund id.
        refund_id: Option<String>,
        /// Why it failed.
        last_error: Option<String>,
    },
    /// A staff action from the audit log.
    Staff {
        /// `audit_log.id`.
        audit_id: i64,
        /// Who.
        actor: String,
        /// Audit action.
        action: String,
        /// Detail.
        detail: Option<String>,
    },
}
