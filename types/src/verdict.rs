//! What became of a WeChat Pay callback (style.md §5: callbacks have no error type, they
//! end as a verdict). The reply body itself is built in `paydesk_core::notify`, which knows
//! the protocol's XML.

use crate::wire::wire_enum;

wire_enum! {
    /// What became of a notification (stored in `notifications.verdict`).
    pub enum Verdict as "verdict" {
        /// Verified and applied: the order is now paid.
        Applied = "applied",
        /// Verified, and already applied earlier: nothing changed.
        Duplicate = "duplicate",
        /// The signature is missing, wrong, or uses a refused algorithm (spec §5.2, §5.3).
        BadSignature = "bad_signature",
        /// Not a well-formed notification (not XML, fields missing or invalid).
        Malformed = "malformed",
        /// XML with a DOCTYPE or entity declaration (spec §11.1).
        ForbiddenXml = "forbidden_xml",
        /// Signed, but for another appid (spec §11.2 item 4).
        WrongAppid = "wrong_appid",
        /// Signed, but for another merchant (spec §11.2 item 4).
        WrongMchId = "wrong_mch_id",
        /// Signed (a refund: decrypted), but we have no such order (or refund). Recorded,
        /// acknowledged, and shown as a failure for a person: WeChat Pay took money for
        /// something we do not know, and no resend can change that.
        UnknownOrder = "unknown_order",
        /// Signed, but `total_fee` differs from the order's (spec §8.8 item 2).
        AmountMismatch = "amount_mismatch",
        /// A refund notification's `req_info` could not be decrypted (spec §8.9).
        DecryptFailed = "decrypt_failed",
        /// Signed, `result_code=FAIL`: a payment attempt failed at the bank. Recorded and
        /// acknowledged; the order is `PAYERROR` and still payable.
        ResultFail = "result_fail",
        /// We could not process it (database failure, inconsistent state).
        InternalError = "internal_error",
    }
}

impl Verdict {
    /// Whether WeChat is told `SUCCESS` (stop sending): when the notification is in effect
    /// (applied now or before), and when it is verified and recorded but no resend could
    /// change what we do with it — a payment failure (spec §8.8), an order or refund we do
    /// not have (README "Unknown orders": 24 h of resends would only repeat it). Everything
    /// else is `FAIL`: WeChat resends.
    pub const fn acknowledged(self) -> bool {
        matches!(
            self,
            Verdict::Applied | Verdict::Duplicate | Verdict::ResultFail | Verdict::UnknownOrder
        )
    }

    /// Whether the callback is a failure for a person to look at (the failures page, the
    /// "callback rejected" event): every verdict but the applied, the duplicate and the
    /// verified payment failure (news about an order, not a fault of the callback). An
    /// unknown order is acknowledged *and* a failure: it needs a person.
    pub const fn is_failure(self) -> bool {
        !matches!(
            self,
            Verdict::Applied | Verdict::Duplicate | Verdict::ResultFail
        )
    }

    /// `SUCCESS` or `FAIL`, as stored in `notifications.reply`.
    pub const fn reply_code(self) -> &'static str {
        if self.acknowledged() {
            "SUCCESS"
        } else {
            "FAIL"
        }
    }
}
