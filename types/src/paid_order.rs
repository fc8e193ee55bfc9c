//! One recent payment, as the home page lists it (`paydesk_core::stats`).

use serde::{Deserialize, Serialize};

use crate::OrderStatus;

/// One recent payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaidOrder {
    /// The merchant order number.
    pub out_trade_no: String,
    /// The amount in fen.
    pub total_fee: i64,
    /// When it was paid (UTC ms).
    pub paid_at: i64,
    /// WeChat's transaction id.
    pub transaction_id: Option<String>,
    /// The order's status now (it may have been refunded since).
    pub status: OrderStatus,
    /// What was bought.
    pub description: String,
}
