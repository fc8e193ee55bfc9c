//! What the Orders pages receive: a page of the filtered list with its totals, and one
//! order with its timeline.

use paydesk_types::{NotificationSummary, OrderEvent, OrderStatus};
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

/// What a timeline entry records: the domain's entry (`paydesk_types::OrderEvent`) with a
/// call as the page shows it (a callback's detail is cut to a line).
pub type TimelineWhat = OrderEvent<TimelineCall, NotificationSummary>;

/// A call to WeChat Pay on the timeline; raw record at `/api-calls/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineCall {
    /// `api_calls.id`.
    pub id: i64,
    /// Endpoint path.
    pub endpoint: String,
    /// Answered SUCCESS.
    pub ok: bool,
    /// `err_code`, `result_code`, `return_code` or the error, whichever says most.
    pub outcome: Option<String>,
    /// The refund it concerned.
    pub out_refund_no: Option<String>,
    /// Round trip in milliseconds.
    pub latency_ms: i64,
}
