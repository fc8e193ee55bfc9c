//! Orders: the merchant order number, the stored order and its lines (docs/design.md "Data",
//! "Pay"; docs/wechatpay-v2.md §8.1, §10). The queries are in [`repository`], every change of
//! `orders.status` in [`transitions`], the state machine in [`status`].

use std::fmt;

use sqlx::FromRow;
use wxpay::SignType;

pub mod actions;
pub mod export;
pub mod filter;
pub(crate) mod keys;
pub mod list;
pub mod lookup;
mod repository;
mod status;
pub mod timeline;
pub mod totals;
pub(crate) mod transitions;

pub(crate) use keys::OrderKey;
pub(crate) use repository::find_key_by_out_trade_no;
pub use repository::{
    claim_status_query, close_at, create_order, find_by_idempotency_key, find_by_out_trade_no,
    first_paid_between, items, list_for_openid, newest, paid_between, set_prepay,
};
pub use status::{IllegalTransition, OrderStatus};
pub use transitions::transition;

/// A merchant order number (`out_trade_no`, docs/wechatpay-v2.md §8.1): 1–32 characters of
/// `[0-9A-Za-z_-|*]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OutTradeNo(String);

/// Why a string is not an [`OutTradeNo`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutTradeNoError {
    /// Empty or longer than 32 characters.
    #[error("out_trade_no must have 1 to 32 characters")]
    Length,
    /// A character outside `[0-9A-Za-z_-|*]`.
    #[error("out_trade_no may only contain letters, digits and _ - | *")]
    Charset,
}

impl OutTradeNo {
    /// The longest `out_trade_no` WeChat Pay accepts (docs/wechatpay-v2.md §8.1).
    pub const MAX_LEN: usize = 32;

    /// Parses an order number (docs/wechatpay-v2.md §8.1 field limits).
    pub fn parse(s: &str) -> Result<Self, OutTradeNoError> {
        if s.is_empty() || s.len() > Self::MAX_LEN {
            return Err(OutTradeNoError::Length);
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'|' | b'*'))
        {
            return Err(OutTradeNoError::Charset);
        }
        Ok(OutTradeNo(s.to_owned()))
    }

    /// The order number as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OutTradeNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A stored order.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct Order {
    /// Row id.
    pub id: i64,
    /// The merchant order number.
    pub out_trade_no: String,
    /// The payer's openid.
    pub openid: String,
    /// The `body` sent to unifiedorder.
    pub description: String,
    /// The amount in fen.
    pub total_fee: i64,
    /// Where the order is in its state machine.
    #[sqlx(try_from = "String")]
    pub status: OrderStatus,
    /// The algorithm the order was created (and its notifications are verified) with.
    #[sqlx(try_from = "String")]
    pub sign_type: SignType,
    /// `prepay_id` from unifiedorder.
    pub prepay_id: Option<String>,
    /// When the prepay_id expires (UTC ms).
    pub prepay_expires_at: Option<i64>,
    /// WeChat's `transaction_id`, once paid.
    pub transaction_id: Option<String>,
    /// The payer's bank (`bank_type`).
    pub bank_type: Option<String>,
    /// When it was paid (from `time_end`, UTC ms).
    pub paid_at: Option<i64>,
    /// The shopper's IP address.
    pub client_ip: Option<String>,
    /// The client's idempotency key.
    pub idempotency_key: Option<String>,
    /// When the order stops being payable (`time_expire`, UTC ms).
    pub expires_at: Option<i64>,
    /// When the sync job next looks at it (UTC ms), while it awaits its payment.
    pub next_sync_at: Option<i64>,
    /// How many times the sync job has asked WeChat about it.
    pub sync_attempts: i64,
    /// Created (UTC ms).
    pub created_at: i64,
    /// Last changed (UTC ms).
    pub updated_at: i64,
}

pub(crate) const ORDER_COLUMNS: &str = "id, out_trade_no, openid, description, total_fee, \
    status, sign_type, prepay_id, prepay_expires_at, transaction_id, bank_type, paid_at, \
    client_ip, idempotency_key, expires_at, next_sync_at, sync_attempts, created_at, updated_at";

/// One line of a new order. The amount comes from the caller (later: from `products`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrderItem {
    /// The product, when the line is a catalogue product.
    pub product_id: Option<i64>,
    /// The name shown to the shopper.
    pub name: String,
    /// Unit price in fen (> 0).
    pub unit_price_fen: i64,
    /// Quantity (> 0).
    pub quantity: i64,
}

/// An order to create (status `NOTPAY`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrder {
    /// The merchant order number.
    pub out_trade_no: OutTradeNo,
    /// The payer's openid.
    pub openid: String,
    /// The `body` for unifiedorder.
    pub description: String,
    /// The lines; `total_fee` is their sum.
    pub items: Vec<NewOrderItem>,
    /// The algorithm for this order's signatures.
    pub sign_type: SignType,
    /// The shopper's IP address.
    pub client_ip: Option<String>,
    /// The client's idempotency key (unique when set).
    pub idempotency_key: Option<String>,
    /// When the order stops being payable (UTC ms), if it expires.
    pub expires_at: Option<i64>,
    /// When the sync job should first ask WeChat about it (UTC ms), if at all.
    pub next_sync_at: Option<i64>,
}

impl NewOrder {
    /// The sum of the lines in fen, or `None` on overflow.
    pub fn total_fee(&self) -> Option<i64> {
        self.items.iter().try_fold(0i64, |acc, item| {
            acc.checked_add(item.unit_price_fen.checked_mul(item.quantity)?)
        })
    }
}

/// One line of a stored order.
#[derive(Debug, Clone, PartialEq, Eq, FromRow, serde::Serialize)]
pub struct OrderItem {
    /// The catalogue product, if it was one.
    pub product_id: Option<i64>,
    /// The name at the time of the order.
    pub name: String,
    /// The unit price at the time of the order (fen).
    pub unit_price_fen: i64,
    /// How many.
    pub quantity: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn out_trade_no_accepts_the_documented_charset_and_length() {
        assert!(OutTradeNo::parse("A1_b-2|c*3").is_ok());
        assert!(OutTradeNo::parse(&"x".repeat(32)).is_ok());
        assert_eq!(
            OutTradeNo::parse(&"x".repeat(33)),
            Err(OutTradeNoError::Length)
        );
        assert_eq!(OutTradeNo::parse(""), Err(OutTradeNoError::Length));
        for bad in ["a b", "订单1", "a/b", "a.b", "<x>"] {
            assert_eq!(
                OutTradeNo::parse(bad),
                Err(OutTradeNoError::Charset),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_documented_transitions_are_allowed() {
        use OrderStatus::*;
        for (from, to) in [
            (NotPay, Paid),
            (NotPay, Closed),
            (NotPay, PayError),
            (PayError, Paid),
            (PayError, Closed),
            (Paid, PartiallyRefunded),
            (Paid, Refunded),
            (PartiallyRefunded, Refunded),
        ] {
            assert_eq!(from.transition_to(to), Ok(to), "{from} -> {to}");
        }
    }

    #[test]
    fn nothing_moves_backwards_and_closed_orders_stay_closed() {
        use OrderStatus::*;
        for (from, to) in [
            (Paid, NotPay),
            (Refunded, Paid),
            (PartiallyRefunded, Paid),
            (Closed, Paid),
            (PayError, NotPay),
            (PayError, Refunded),
            (NotPay, Refunded),
            (Paid, Paid),
        ] {
            assert_eq!(
                from.transition_to(to),
                Err(IllegalTransition { from, to }),
                "{from} -> {to}"
            );
        }
    }

    #[test]
    fn status_names_round_trip() {
        for s in OrderStatus::ALL {
            assert_eq!(s.as_str().parse::<OrderStatus>().unwrap(), s);
        }
        assert!("SUCCESS".parse::<OrderStatus>().is_err());
    }

    /// How far along the life of an order a status is; transitions never decrease it.
    fn rank(s: OrderStatus) -> u8 {
        match s {
            OrderStatus::NotPay => 0,
            OrderStatus::PayError => 1,
            OrderStatus::Closed | OrderStatus::Paid => 2,
            OrderStatus::PartiallyRefunded => 3,
            OrderStatus::Refunded => 4,
        }
    }

    fn status() -> impl Strategy<Value = OrderStatus> {
        prop::sample::select(OrderStatus::ALL.to_vec())
    }

    proptest! {
        #[test]
        fn any_walk_only_moves_forward_and_never_returns_to_notpay(
            steps in prop::collection::vec(status(), 0..20)
        ) {
            let mut current = OrderStatus::NotPay;
            for next in steps {
                match current.transition_to(next) {
                    Ok(s) => {
                        prop_assert!(rank(s) >= rank(current));
                        prop_assert_ne!(s, OrderStatus::NotPay);
                        prop_assert!(!current.was_paid() || s.was_paid(), "{current} -> {s}");
                        current = s;
                    }
                    Err(e) => prop_assert_eq!(e, IllegalTransition { from: current, to: next }),
                }
            }
        }

        #[test]
        fn terminal_statuses_have_no_way_out(next in status()) {
            for terminal in [OrderStatus::Closed, OrderStatus::Refunded] {
                prop_assert!(terminal.transition_to(next).is_err());
            }
        }

        #[test]
        fn new_order_total_is_the_checked_sum_of_its_lines(
            lines in prop::collection::vec((1i64..1_000_000, 1i64..100), 1..10)
        ) {
            let order = NewOrder {
                out_trade_no: OutTradeNo::parse("T1").unwrap(),
                openid: "o".into(),
                description: "d".into(),
                items: lines.iter().map(|(p, q)| NewOrderItem {
                    product_id: None, name: "n".into(), unit_price_fen: *p, quantity: *q,
                }).collect(),
                sign_type: SignType::Md5,
                client_ip: None,
                idempotency_key: None,
                expires_at: None,
                next_sync_at: None,
            };
            prop_assert_eq!(order.total_fee(), Some(lines.iter().map(|(p, q)| p * q).sum()));
        }
    }
}
