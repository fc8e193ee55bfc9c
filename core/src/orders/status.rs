//! The order state machine (docs/design.md "Data").

use std::fmt;
use std::str::FromStr;

/// An order's status (docs/design.md "Data"): `NOTPAY → PAID | CLOSED | PAYERROR`,
/// `PAID → PARTIALLY_REFUNDED → REFUNDED`, `PAID → REFUNDED`. Nothing moves backwards, so a
/// replayed payment notification can never undo a refund (docs/wechatpay-v2.md §11.2 item 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderStatus {
    /// Created, not paid yet.
    NotPay,
    /// Paid (a verified notification or orderquery said so).
    Paid,
    /// Closed unpaid (closeorder or expiry).
    Closed,
    /// The payment failed.
    PayError,
    /// Part of the amount was refunded.
    PartiallyRefunded,
    /// The whole amount was refunded.
    Refunded,
}

/// A status change the state machine does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an order cannot go from {from} to {to}")]
pub struct IllegalTransition {
    /// The current status.
    pub from: OrderStatus,
    /// The status asked for.
    pub to: OrderStatus,
}

impl OrderStatus {
    /// Every status, for tests and listings.
    pub const ALL: [OrderStatus; 6] = [
        OrderStatus::NotPay,
        OrderStatus::Paid,
        OrderStatus::Closed,
        OrderStatus::PayError,
        OrderStatus::PartiallyRefunded,
        OrderStatus::Refunded,
    ];

    /// The stored (and WeChat-style) name.
    pub const fn as_str(self) -> &'static str {
        match self {
            OrderStatus::NotPay => "NOTPAY",
            OrderStatus::Paid => "PAID",
            OrderStatus::Closed => "CLOSED",
            OrderStatus::PayError => "PAYERROR",
            OrderStatus::PartiallyRefunded => "PARTIALLY_REFUNDED",
            OrderStatus::Refunded => "REFUNDED",
        }
    }

    /// Whether money was received for the order (it may have been refunded since).
    pub const fn was_paid(self) -> bool {
        matches!(
            self,
            OrderStatus::Paid | OrderStatus::PartiallyRefunded | OrderStatus::Refunded
        )
    }

    /// The next status if the state machine allows it. A second partial refund keeps
    /// `PARTIALLY_REFUNDED`; every other self-transition is refused.
    pub fn transition_to(self, next: OrderStatus) -> Result<OrderStatus, IllegalTransition> {
        use OrderStatus::*;
        let allowed = matches!(
            (self, next),
            (NotPay, Paid | Closed | PayError)
                | (Paid, PartiallyRefunded | Refunded)
                | (PartiallyRefunded, PartiallyRefunded | Refunded)
        );
        if allowed {
            Ok(next)
        } else {
            Err(IllegalTransition {
                from: self,
                to: next,
            })
        }
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for OrderStatus {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        OrderStatus::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| anyhow::anyhow!("unknown order status {s:?}"))
    }
}
