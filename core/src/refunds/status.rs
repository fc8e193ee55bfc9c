//! The refund state machine (stored in `refunds.status`).

use std::fmt;
use std::str::FromStr;

/// Where a refund is in its life (stored in `refunds.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefundStatus {
    /// Requested, waiting for a manager.
    PendingApproval,
    /// Approved; the refund job will submit it.
    Approved,
    /// Being sent to WeChat Pay (committed before each call), or the outcome of the last
    /// call is unknown: it is asked about before it is sent again.
    Submitted,
    /// Accepted by WeChat Pay; the money is on its way (docs/wechatpay-v2.md §8.5).
    Processing,
    /// Refunded (docs/wechatpay-v2.md §8.6).
    Success,
    /// A manager said no.
    Rejected,
    /// Abnormal: e.g. the payer's card was cancelled; the money is parked with the merchant
    /// and needs manual handling. Not final (docs/wechatpay-v2.md §8.6): it is still asked about.
    Change,
    /// Closed by WeChat Pay: failed, final; the amount is refundable again (docs/wechatpay-v2.md §8.6).
    RefundClose,
    /// WeChat Pay refused it (a business error such as `NOTENOUGH`), or it could not be sent
    /// at all (no or a refused client certificate). `last_error` says why in plain words.
    Failed,
}

impl RefundStatus {
    /// Every status.
    pub const ALL: [RefundStatus; 9] = [
        RefundStatus::PendingApproval,
        RefundStatus::Approved,
        RefundStatus::Submitted,
        RefundStatus::Processing,
        RefundStatus::Success,
        RefundStatus::Rejected,
        RefundStatus::Change,
        RefundStatus::RefundClose,
        RefundStatus::Failed,
    ];

    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            RefundStatus::PendingApproval => "PENDING_APPROVAL",
            RefundStatus::Approved => "APPROVED",
            RefundStatus::Submitted => "SUBMITTED",
            RefundStatus::Processing => "PROCESSING",
            RefundStatus::Success => "SUCCESS",
            RefundStatus::Rejected => "REJECTED",
            RefundStatus::Change => "CHANGE",
            RefundStatus::RefundClose => "REFUNDCLOSE",
            RefundStatus::Failed => "FAILED",
        }
    }

    /// Whether the amount is taken from what the order can still refund: everything but
    /// `REJECTED`, `FAILED` and `REFUNDCLOSE` (docs/design.md "Data": the sum of these never
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

    /// The state machine in the module docs. `SUBMITTED → SUBMITTED` is a retry; a result
    /// may arrive for a `SUBMITTED` refund whose acceptance we never recorded (crash, timeout).
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

    /// The stored names of the statuses `next` may be reached from, as an SQL list
    /// (`'A', 'B'`): the condition of every status update.
    pub(crate) fn sql_sources(next: RefundStatus) -> String {
        RefundStatus::ALL
            .into_iter()
            .filter(|s| s.can_move_to(next))
            .map(|s| format!("'{}'", s.as_str()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for RefundStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RefundStatus {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RefundStatus::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| anyhow::anyhow!("unknown refund status {s:?}"))
    }
}
