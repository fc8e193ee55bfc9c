//! Order and refund statuses (design.md "Data"): the state machines and their stored names.

use crate::wire::wire_enum;

wire_enum! {
    /// An order's status (design.md "Data"): `NOTPAY → PAID | CLOSED | PAYERROR`,
    /// `PAYERROR → PAID | CLOSED`, `PAID → PARTIALLY_REFUNDED → REFUNDED`, `PAID → REFUNDED`.
    /// Nothing moves backwards, so a replayed payment notification can never undo a refund
    /// (spec §11.2 item 6). A failed payment attempt does not end the order: the shopper
    /// may pay again until it expires (spec §8.8), so `PAYERROR` can still become `PAID`.
    pub enum OrderStatus as "order status" {
        /// Created, not paid yet.
        NotPay = "NOTPAY",
        /// Paid (a verified notification or orderquery said so).
        Paid = "PAID",
        /// Closed unpaid (closeorder or expiry).
        Closed = "CLOSED",
        /// A payment attempt failed (a verified `result_code=FAIL` notification or
        /// orderquery's `PAYERROR`). Still payable until it expires, so still asked about.
        PayError = "PAYERROR",
        /// Part of the amount was refunded.
        PartiallyRefunded = "PARTIALLY_REFUNDED",
        /// The whole amount was refunded.
        Refunded = "REFUNDED",
    }
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
    /// Whether money was received for the order (it may have been refunded since).
    pub const fn was_paid(self) -> bool {
        matches!(
            self,
            OrderStatus::Paid | OrderStatus::PartiallyRefunded | OrderStatus::Refunded
        )
    }

    /// Whether the order still waits for its payment (`NOTPAY`, or `PAYERROR` after a failed
    /// attempt): the sync job keeps asking orderquery about it until it is paid or expires,
    /// and a verified payment still marks it `PAID`.
    pub const fn awaits_payment(self) -> bool {
        matches!(self, OrderStatus::NotPay | OrderStatus::PayError)
    }

    /// The next status if the state machine allows it. A second partial refund keeps
    /// `PARTIALLY_REFUNDED`; every other self-transition is refused.
    pub fn transition_to(self, next: OrderStatus) -> Result<OrderStatus, IllegalTransition> {
        use OrderStatus::*;
        let allowed = matches!(
            (self, next),
            (NotPay, Paid | Closed | PayError)
                | (PayError, Paid | Closed)
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

wire_enum! {
    /// A refund's status (design.md "Refunds"; the state machine is
    /// [`RefundStatus::can_move_to`]).
    pub enum RefundStatus as "refund status" {
        /// Requested, waiting for a manager.
        PendingApproval = "PENDING_APPROVAL",
        /// Approved; the refund job will submit it.
        Approved = "APPROVED",
        /// Being sent to WeChat Pay (committed before each call), or the outcome of the last
        /// call is unknown: it is asked about before it is sent again.
        Submitted = "SUBMITTED",
        /// Accepted by WeChat Pay; the money is on its way (spec §8.5).
        Processing = "PROCESSING",
        /// Refunded (spec §8.6).
        Success = "SUCCESS",
        /// A manager said no.
        Rejected = "REJECTED",
        /// Abnormal: e.g. the payer's card was cancelled; the money is parked with the merchant
        /// and needs manual handling. Not final (spec §8.6): it is still asked about.
        Change = "CHANGE",
        /// Closed by WeChat Pay: failed, final; the amount is refundable again (spec §8.6).
        RefundClose = "REFUNDCLOSE",
        /// WeChat Pay refused it (a business error such as `NOTENOUGH`), or it could not be sent
        /// at all (no or a refused client certificate). `last_error` says why in plain words.
        Failed = "FAILED",
    }
}

impl RefundStatus {
    /// Whether the amount is taken from what the order can still refund: everything but
    /// `REJECTED`, `FAILED` and `REFUNDCLOSE` (design.md "Data": the sum of these never
    /// exceeds the order's total_fee).
    pub const fn counts_against_order(self) -> bool {
        !matches!(
            self,
            RefundStatus::Rejected | RefundStatus::Failed | RefundStatus::RefundClose
        )
    }

    /// Whether nothing more will happen to the refund.
    pub const fn is_final(self) -> bool {
        matches!(
            self,
            RefundStatus::Success
                | RefundStatus::Rejected
                | RefundStatus::RefundClose
                | RefundStatus::Failed
        )
    }

    /// The state machine in `paydesk_core::refunds`' module docs. `SUBMITTED → SUBMITTED` is
    /// a retry; a result may arrive for a `SUBMITTED` refund whose acceptance we never
    /// recorded (crash, timeout).
    pub const fn can_move_to(self, next: RefundStatus) -> bool {
        use RefundStatus::*;
        matches!(
            (self, next),
            (PendingApproval, Approved | Rejected)
                | (Approved, Submitted)
                | (
                    Submitted,
                    Submitted | Processing | Success | Change | RefundClose | Failed
                )
                | (Processing, Success | Change | RefundClose)
                | (Change, Success | RefundClose)
                // WeChat Pay's word beats ours: a refund we gave up on after an unknown
                // outcome may still have gone through (a late notification or query says so).
                | (Failed, Processing | Success | Change | RefundClose)
        )
    }
}
